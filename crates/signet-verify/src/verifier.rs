use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{decode, decode_header, Validation};
use serde::de::DeserializeOwned;

use crate::claims::AccessClaims;
use crate::keys::KeySet;

/// The `typ` header of an access token (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";

/// Tokens longer than this are rejected before any parsing (RFC 8725 §3.x:
/// bound the work an attacker can make us do).
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// What a valid access token must say.
#[derive(Debug, Clone)]
pub struct Rules {
    /// Expected `iss`, exactly.
    pub issuer: String,
    /// `aud` must be, or contain, this value.
    pub audience: String,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    pub leeway_secs: u64,
}

/// Why a token was refused. The `Display` text is safe to log: it never
/// contains the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("token is empty")]
    Empty,
    #[error("token is longer than {MAX_TOKEN_BYTES} bytes")]
    TooLong,
    #[error("token is not a well-formed JWS")]
    Malformed,
    #[error("token type is not at+jwt")]
    WrongType,
    #[error("token has no kid")]
    MissingKid,
    #[error("token kid is unknown")]
    UnknownKid,
    #[error("token algorithm does not match its key")]
    AlgorithmMismatch,
    #[error("token signature is invalid")]
    BadSignature,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token issuer is wrong")]
    WrongIssuer,
    #[error("token audience is wrong")]
    WrongAudience,
    #[error("token lacks required claim or has a malformed one")]
    BadClaims,
}

type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// Verifies access tokens against a replaceable set of public keys.
pub struct Verifier {
    keys: RwLock<Arc<KeySet>>,
    rules: Rules,
    now: Clock,
}

impl Verifier {
    pub fn new(keys: KeySet, rules: Rules) -> Self {
        Self::with_clock(keys, rules, Arc::new(system_now))
    }

    /// Like [`Verifier::new`] with a custom source of "now" (Unix seconds), for tests.
    pub fn with_clock(keys: KeySet, rules: Rules, now: Clock) -> Self {
        Verifier {
            keys: RwLock::new(Arc::new(keys)),
            rules,
            now,
        }
    }

    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// Swaps in a new key set (after a key rotation or a JWKS refresh).
    pub fn set_keys(&self, keys: KeySet) {
        let mut guard = self
            .keys
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *guard = Arc::new(keys);
    }

    pub fn keys(&self) -> Arc<KeySet> {
        self.keys
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Verifies an access token and returns its claims.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, VerifyError> {
        self.verify_as(token, ACCESS_TOKEN_TYPE, &self.rules.audience)
    }

    /// Verifies a token of another `typ` and audience with the same keys and
    /// rules (signet uses it for its `refresh+jwt` tokens).
    pub fn verify_as<C: DeserializeOwned + TimeBound>(
        &self,
        token: &str,
        typ: &str,
        audience: &str,
    ) -> Result<C, VerifyError> {
        if token.is_empty() {
            return Err(VerifyError::Empty);
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(VerifyError::TooLong);
        }
        // `alg: none` and unknown algorithms fail here: jsonwebtoken has no
        // `none` variant.
        let header = decode_header(token).map_err(|_| VerifyError::Malformed)?;
        if !is_type(header.typ.as_deref(), typ) {
            return Err(VerifyError::WrongType);
        }
        let kid = header.kid.as_deref().ok_or(VerifyError::MissingKid)?;
        let keys = self.keys();
        let key = keys.get(kid).ok_or(VerifyError::UnknownKid)?;
        // The key decides the algorithm; a header naming another one (HS256
        // signed with the public key, say) is refused before any crypto.
        if header.alg != key.algorithm {
            return Err(VerifyError::AlgorithmMismatch);
        }

        let mut validation = Validation::new(key.algorithm);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.set_issuer(&[&self.rules.issuer]);
        validation.set_audience(&[audience]);
        // Time checks are ours, against the injected clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;

        let claims = decode::<C>(token, &key.key, &validation)
            .map_err(|err| match err.kind() {
                ErrorKind::InvalidSignature => VerifyError::BadSignature,
                ErrorKind::InvalidIssuer => VerifyError::WrongIssuer,
                ErrorKind::InvalidAudience => VerifyError::WrongAudience,
                ErrorKind::InvalidAlgorithm => VerifyError::AlgorithmMismatch,
                ErrorKind::MissingRequiredClaim(_)
                | ErrorKind::InvalidClaimFormat(_)
                | ErrorKind::Json(_) => VerifyError::BadClaims,
                _ => VerifyError::Malformed,
            })?
            .claims;

        let now = (self.now)();
        let leeway = i64::try_from(self.rules.leeway_secs).unwrap_or(i64::MAX);
        if claims.exp().saturating_add(leeway) <= now {
            return Err(VerifyError::Expired);
        }
        if let Some(nbf) = claims.nbf() {
            if nbf.saturating_sub(leeway) > now {
                return Err(VerifyError::NotYetValid);
            }
        }
        Ok(claims)
    }
}

/// RFC 9068 §4: `at+jwt`, or its full media type `application/at+jwt`,
/// compared without case.
fn is_type(found: Option<&str>, expected: &str) -> bool {
    found.is_some_and(|t| {
        let t = t.strip_prefix("application/").unwrap_or(t);
        t.eq_ignore_ascii_case(expected)
    })
}

/// The time claims checked against the clock.
pub trait TimeBound {
    fn exp(&self) -> i64;
    fn nbf(&self) -> Option<i64>;
}

impl TimeBound for AccessClaims {
    fn exp(&self) -> i64 {
        self.exp
    }
    fn nbf(&self) -> Option<i64> {
        self.nbf
    }
}

fn system_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
