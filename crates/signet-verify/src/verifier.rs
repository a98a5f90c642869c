use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{decode, decode_header, Validation};
use serde::de::DeserializeOwned;

use crate::builder::VerifierBuilder;
use crate::cache::{Lookup, TokenCache, TokenDigest};
use crate::claims::AccessClaims;
use crate::error::VerifyError;
use crate::keys::KeySet;
use crate::refresh::{KeySourceStats, KeysRefreshed, Refresher};
use crate::status::{Check, Loaded, StatusListClaims, StatusListError, StatusListStats, StatusLists, StatusLoaded};

/// The `typ` header of an access token (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";

/// Tokens longer than this are rejected before any parsing (RFC 8725 §3.x:
/// bound the work an attacker can make us do).
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The clock leeway of [`Rules::new`] (API.md's default).
pub const DEFAULT_LEEWAY_SECS: u64 = 30;

/// Verified tokens remembered by default ([`VerifierBuilder::cache_capacity`]).
pub const DEFAULT_CACHE_CAPACITY: usize = 10_000;

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

impl Rules {
    /// Rules for `issuer` and `audience` with the default 30 s leeway.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Rules { issuer: issuer.into(), audience: audience.into(), leeway_secs: DEFAULT_LEEWAY_SECS }
    }
}

/// "Now" in Unix seconds. Token expiry is checked against it, cached
/// verifications included.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The result of [`Verifier::verify_or_wait`].
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "the common case carries the claims; boxing them would cost an allocation per request"
)]
pub enum Verification {
    Done(Result<AccessClaims, VerifyError>),
    /// The token's `kid` is unknown and a refetch of the keys is running:
    /// await this, then call [`Verifier::verify`] once more.
    WaitForKeys(KeysRefreshed),
    /// The token names a status list being fetched for the first time:
    /// await this, then call [`Verifier::verify`] once more.
    WaitForStatus(StatusLoaded),
}

/// Verifies access tokens against a replaceable set of public keys, with a
/// cache of verified tokens and, optionally, keys kept fresh from a remote
/// JWKS ([`Verifier::builder`]).
pub struct Verifier {
    pub(crate) keys: RwLock<Arc<KeySet>>,
    pub(crate) rules: Rules,
    pub(crate) now: Clock,
    pub(crate) cache: TokenCache,
    pub(crate) refresher: Option<Arc<Refresher>>,
    /// Status lists, when status checking is on.
    pub(crate) status: Option<Arc<StatusLists>>,
}

impl Verifier {
    /// A verifier of fixed (or [`set_keys`](Self::set_keys)-replaced) keys
    /// with the system clock and a cache of [`DEFAULT_CACHE_CAPACITY`].
    pub fn new(keys: KeySet, rules: Rules) -> Self {
        Self::with_clock(keys, rules, Arc::new(system_now))
    }

    /// Like [`Verifier::new`] with a custom source of "now" (Unix seconds), for tests.
    pub fn with_clock(keys: KeySet, rules: Rules, now: Clock) -> Self {
        Verifier {
            keys: RwLock::new(Arc::new(keys)),
            rules,
            now,
            cache: TokenCache::new(DEFAULT_CACHE_CAPACITY),
            refresher: None,
            status: None,
        }
    }

    /// Replaces the verified-token cache by one of `capacity` entries
    /// (0 turns caching off).
    #[must_use]
    pub fn with_cache_capacity(mut self, capacity: usize) -> Self {
        self.cache = TokenCache::new(capacity);
        self
    }

    /// Every way to configure a verifier: where the keys come from, the
    /// clock, the cache size, the refresh policy.
    pub fn builder(rules: Rules) -> VerifierBuilder {
        VerifierBuilder::new(rules)
    }

    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// Swaps in a new key set (after a key rotation or a JWKS refresh).
    /// Cached verifications survive only if the keys are the same.
    pub fn set_keys(&self, mut keys: KeySet) {
        let mut guard = self.keys.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        let changed = !guard.same_keys(&keys);
        keys.generation = guard.generation + u64::from(changed);
        *guard = Arc::new(keys);
        drop(guard);
        if changed {
            self.cache.clear();
        }
    }

    pub fn keys(&self) -> Arc<KeySet> {
        self.read_keys().clone()
    }

    fn read_keys(&self) -> std::sync::RwLockReadGuard<'_, Arc<KeySet>> {
        self.keys.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The most verified tokens remembered (0: caching is off).
    pub fn cache_capacity(&self) -> usize {
        self.cache.capacity()
    }

    /// Verified tokens remembered now.
    pub fn cache_len(&self) -> usize {
        self.cache.len()
    }

    /// Counters of the remote key source; `None` without one.
    pub fn key_source_stats(&self) -> Option<KeySourceStats> {
        self.refresher.as_ref().map(|r| r.stats())
    }

    /// Counters of status list handling; `None` when status checking is off.
    pub fn status_list_stats(&self) -> Option<StatusListStats> {
        self.status.as_ref().map(|s| s.stats())
    }

    /// Whether tokens' `status` claims are checked.
    pub fn checks_status(&self) -> bool {
        self.status.is_some()
    }

    /// Loads a status list token (`statuslist+jwt`) fetched by the embedding
    /// process for `uri`, after the same checks as a fetched one (signature
    /// by the verifier's keys, `iss`, `sub` = `uri`, `exp`, bounded
    /// inflation). Needs status checking on; with the `remote` feature the
    /// verifier fetches lists itself.
    pub fn load_status_list(&self, uri: &str, token: &str) -> Result<(), StatusListError> {
        let lists = self.status.as_ref().ok_or(StatusListError::from("status checking is off"))?;
        if !lists.trusted(uri) {
            return Err(format!("{uri} is not under the issuer's /v1/status-lists/").into());
        }
        let list = self.decode_status_list(token, uri)?;
        lists.loaded(uri, list, None);
        Ok(())
    }

    /// Verifies a status list token fetched from `uri`.
    pub(crate) fn decode_status_list(&self, token: &str, uri: &str) -> Result<Loaded, StatusListError> {
        if token.len() > crate::status::MAX_STATUS_LIST_BYTES {
            return Err("the list token is too long".into());
        }
        let keys = self.keys();
        let claims = self
            .verify_with::<StatusListClaims>(&keys, token, crate::status::STATUS_LIST_TYPE, None, (self.now)())
            .map_err(|why| {
                if why == VerifyError::UnknownKid {
                    // Signed by a key not fetched yet: let the key source catch up.
                    let _ = self.ask_refetch(token);
                }
                StatusListError(format!("the list token is invalid: {why}"))
            })?;
        Loaded::from_claims(claims, uri)
    }

    /// Blocks (do not call on an async worker) until the remote key source
    /// has loaded keys once, at most `timeout`; whether keys are there. With
    /// static keys, whether there are any.
    pub fn wait_for_keys(&self, timeout: Duration) -> bool {
        match &self.refresher {
            Some(refresher) => refresher.wait_for_success(timeout),
            None => !self.keys().is_empty(),
        }
    }

    /// Verifies an access token and returns its claims. Never blocks: a
    /// token whose `kid` is unknown fails at once with
    /// [`VerifyError::UnknownKid`] (after asking a remote key source, if
    /// any, to refetch in the background), and a token naming a status list
    /// not loaded yet with [`VerifyError::StatusUnavailable`] (its fetch
    /// starts in the background).
    pub fn verify(&self, token: &str) -> Result<AccessClaims, VerifyError> {
        match self.verify_or_wait(token) {
            Verification::Done(result) => result,
            Verification::WaitForKeys(_) => Err(VerifyError::UnknownKid),
            Verification::WaitForStatus(_) => Err(VerifyError::StatusUnavailable),
        }
    }

    /// Verifies; when the token's `kid` is unknown and a refetch is running
    /// (or was just started for it), or its status list is being fetched for
    /// the first time, waits for that without blocking the thread and tries
    /// once more. Runtime-agnostic.
    pub async fn verify_async(&self, token: &str) -> Result<AccessClaims, VerifyError> {
        match self.verify_or_wait(token) {
            Verification::Done(result) => result,
            Verification::WaitForKeys(refreshed) => {
                refreshed.await;
                // The token may also name a list not loaded yet.
                match self.verify_or_wait(token) {
                    Verification::WaitForStatus(loaded) => {
                        loaded.await;
                        self.verify(token)
                    }
                    other => Self::settle(other),
                }
            }
            Verification::WaitForStatus(loaded) => {
                loaded.await;
                self.verify(token)
            }
        }
    }

    fn settle(verification: Verification) -> Result<AccessClaims, VerifyError> {
        match verification {
            Verification::Done(result) => result,
            Verification::WaitForKeys(_) => Err(VerifyError::UnknownKid),
            Verification::WaitForStatus(_) => Err(VerifyError::StatusUnavailable),
        }
    }

    /// The building block of [`verify_async`](Self::verify_async) for
    /// integrations that must own their future (the actix extractor).
    pub fn verify_or_wait(&self, token: &str) -> Verification {
        if token.is_empty() {
            return Verification::Done(Err(VerifyError::Empty));
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Verification::Done(Err(VerifyError::TooLong));
        }
        let now = (self.now)();
        let digest = self.cache.enabled().then(|| TokenDigest::of(token));
        if let Some(digest) = &digest {
            let generation = self.read_keys().generation;
            match self.cache.get(digest, now, generation) {
                // The status is checked on every hit: a cached token fails
                // once its bit flips.
                Lookup::Hit(claims) => {
                    return match self.check_status(&claims, now) {
                        None => Verification::Done(Ok((*claims).clone())),
                        Some(refused) => refused,
                    }
                }
                Lookup::Expired => return Verification::Done(Err(VerifyError::Expired)),
                Lookup::Miss => {}
            }
        }
        let keys = self.keys();
        let result = self.verify_with::<AccessClaims>(&keys, token, ACCESS_TOKEN_TYPE, Some(&self.rules.audience), now);
        match result {
            Ok(claims) => {
                // Cached even when its status refuses it: the signature work
                // is done once, the status is read on every verification.
                let status = self.check_status(&claims, now);
                if let Some(digest) = digest {
                    let claims = Arc::new(claims);
                    self.cache.insert(digest, claims.clone(), self.leeway(), keys.generation, now);
                    return status.unwrap_or_else(|| Verification::Done(Ok(Arc::unwrap_or_clone(claims))));
                }
                status.unwrap_or(Verification::Done(Ok(claims)))
            }
            Err(VerifyError::UnknownKid) => match self.ask_refetch(token) {
                Some(refreshed) => Verification::WaitForKeys(refreshed),
                None => Verification::Done(Err(VerifyError::UnknownKid)),
            },
            Err(err) => Verification::Done(Err(err)),
        }
    }

    /// `None` when the token may pass: no `status` claim, status checking
    /// off, or its bit is 0 in a current list.
    fn check_status(&self, claims: &AccessClaims, now: i64) -> Option<Verification> {
        let (lists, status) = (self.status.as_ref()?, claims.status.as_ref()?);
        match lists.check(&status.status_list, now) {
            Check::Valid => None,
            Check::Refused(why) => Some(Verification::Done(Err(why))),
            Check::Wait(loaded) => Some(Verification::WaitForStatus(loaded)),
        }
    }

    /// Verifies a token of another `typ` and audience with the same keys and
    /// rules (signet uses it for its `refresh+jwt` tokens). Not cached.
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
        let result = self.verify_with(&self.keys(), token, typ, Some(audience), (self.now)());
        if result.as_ref().err() == Some(&VerifyError::UnknownKid) {
            // Let a remote key source catch up for the next attempt.
            let _ = self.ask_refetch(token);
        }
        result
    }

    /// Verifies a token of this issuer whatever its audience: for the
    /// issuer's own introspection and revocation endpoints, which answer for
    /// tokens narrowed to other audiences (token exchange). Resource servers
    /// use [`verify`](Self::verify), which checks the audience.
    pub fn verify_any_audience<C: DeserializeOwned + TimeBound>(
        &self,
        token: &str,
        typ: &str,
    ) -> Result<C, VerifyError> {
        if token.is_empty() {
            return Err(VerifyError::Empty);
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(VerifyError::TooLong);
        }
        self.verify_with(&self.keys(), token, typ, None, (self.now)())
    }

    fn ask_refetch(&self, token: &str) -> Option<KeysRefreshed> {
        let refresher = self.refresher.as_ref()?;
        let header = decode_header(token).ok()?;
        refresher.unknown_kid(header.kid.as_deref()?)
    }

    fn leeway(&self) -> i64 {
        i64::try_from(self.rules.leeway_secs).unwrap_or(i64::MAX)
    }

    /// The rules of API.md, in order: type, `kid`, the key's algorithm,
    /// signature and claims, then time against the injected clock.
    fn verify_with<C: DeserializeOwned + TimeBound>(
        &self,
        keys: &KeySet,
        token: &str,
        typ: &str,
        audience: Option<&str>,
        now: i64,
    ) -> Result<C, VerifyError> {
        // JSON must be UTF-8 (RFC 8259 §8.1), also in members serde skips
        // without looking (unknown claims).
        if !segments_are_utf8(token) {
            return Err(VerifyError::Malformed);
        }
        // `alg: none` and unknown algorithms fail here: jsonwebtoken has no
        // `none` variant.
        let header = decode_header(token).map_err(|_| VerifyError::Malformed)?;
        if !is_type(header.typ.as_deref(), typ) {
            return Err(VerifyError::WrongType);
        }
        let kid = header.kid.as_deref().ok_or(VerifyError::MissingKid)?;
        let key = keys.get(kid).ok_or(VerifyError::UnknownKid)?;
        // The key decides the algorithm; a header naming another one (HS256
        // signed with the public key, say) is refused before any crypto.
        if header.alg != key.algorithm {
            return Err(VerifyError::AlgorithmMismatch);
        }

        let mut validation = Validation::new(key.algorithm);
        validation.set_issuer(&[&self.rules.issuer]);
        match audience {
            Some(audience) => {
                validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
                validation.set_audience(&[audience]);
            }
            // Status list tokens have no audience.
            None => {
                validation.set_required_spec_claims(&["exp", "iss", "sub"]);
                validation.validate_aud = false;
            }
        }
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
                ErrorKind::MissingRequiredClaim(_) | ErrorKind::InvalidClaimFormat(_) | ErrorKind::Json(_) => {
                    VerifyError::BadClaims
                }
                _ => VerifyError::Malformed,
            })?
            .claims;

        let leeway = self.leeway();
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

impl Drop for Verifier {
    fn drop(&mut self) {
        if let Some(refresher) = &self.refresher {
            refresher.shutdown();
        }
        if let Some(status) = &self.status {
            status.shutdown();
        }
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

/// Whether the header and payload segments decode (base64url, no padding) to UTF-8.
fn segments_are_utf8(token: &str) -> bool {
    use base64::Engine;
    let mut parts = token.split('.');
    [parts.next(), parts.next()].into_iter().all(|part| {
        part.and_then(|p| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p).ok())
            .is_some_and(|bytes| std::str::from_utf8(&bytes).is_ok())
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

pub(crate) fn system_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)).unwrap_or(0)
}
