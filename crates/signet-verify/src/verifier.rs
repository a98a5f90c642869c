use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{decode, decode_header, Validation};
use serde::de::DeserializeOwned;

use crate::cache::{Lookup, TokenCache, TokenDigest};
use crate::claims::AccessClaims;
use crate::keys::{KeyError, KeySet};
use crate::refresh::{FetchJwks, KeySourceStats, KeysRefreshed, RefreshPolicy, Refresher};

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

/// "Now" in Unix seconds. Token expiry is checked against it, cached
/// verifications included.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// Why a [`VerifierBuilder`] could not build.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("the static key source has no usable key")]
    NoUsableKey,
    #[error("cannot start the key refresh thread: {0}")]
    Spawn(#[source] std::io::Error),
}

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
}

/// Verifies access tokens against a replaceable set of public keys, with a
/// cache of verified tokens and, optionally, keys kept fresh from a remote
/// JWKS ([`Verifier::builder`]).
pub struct Verifier {
    keys: RwLock<Arc<KeySet>>,
    rules: Rules,
    now: Clock,
    cache: TokenCache,
    refresher: Option<Arc<Refresher>>,
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
    /// any, to refetch in the background).
    pub fn verify(&self, token: &str) -> Result<AccessClaims, VerifyError> {
        match self.verify_or_wait(token) {
            Verification::Done(result) => result,
            Verification::WaitForKeys(_) => Err(VerifyError::UnknownKid),
        }
    }

    /// Verifies; when the token's `kid` is unknown and a refetch is running
    /// (or was just started for it), waits for it without blocking the
    /// thread and tries once more. Runtime-agnostic.
    pub async fn verify_async(&self, token: &str) -> Result<AccessClaims, VerifyError> {
        match self.verify_or_wait(token) {
            Verification::Done(result) => result,
            Verification::WaitForKeys(refreshed) => {
                refreshed.await;
                self.verify(token)
            }
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
                Lookup::Hit(claims) => return Verification::Done(Ok((*claims).clone())),
                Lookup::Expired => return Verification::Done(Err(VerifyError::Expired)),
                Lookup::Miss => {}
            }
        }
        let keys = self.keys();
        let result = self.verify_with::<AccessClaims>(&keys, token, ACCESS_TOKEN_TYPE, &self.rules.audience, now);
        match result {
            Ok(claims) => {
                if let Some(digest) = digest {
                    let claims = Arc::new(claims);
                    self.cache.insert(digest, claims.clone(), self.leeway(), keys.generation, now);
                    return Verification::Done(Ok(Arc::unwrap_or_clone(claims)));
                }
                Verification::Done(Ok(claims))
            }
            Err(VerifyError::UnknownKid) => match self.ask_refetch(token) {
                Some(refreshed) => Verification::WaitForKeys(refreshed),
                None => Verification::Done(Err(VerifyError::UnknownKid)),
            },
            Err(err) => Verification::Done(Err(err)),
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
        let result = self.verify_with(&self.keys(), token, typ, audience, (self.now)());
        if result.as_ref().err() == Some(&VerifyError::UnknownKid) {
            // Let a remote key source catch up for the next attempt.
            let _ = self.ask_refetch(token);
        }
        result
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
        audience: &str,
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
    }
}

/// Configures a [`Verifier`]: [`Verifier::builder`].
///
/// Keys come from one of: [`keys`](Self::keys) (in-process, replaceable with
/// [`Verifier::set_keys`]), [`jwks`](Self::jwks) / [`jwks_json`](Self::jwks_json)
/// / [`pem`](Self::pem) (static), or a refreshing source —
/// [`discover`](Self::discover) / [`jwks_url`](Self::jwks_url) with the
/// `remote` feature, or any [`FetchJwks`] with [`fetcher`](Self::fetcher).
/// A refreshing source replaces the keys at each successful fetch.
pub struct VerifierBuilder {
    rules: Rules,
    keys: KeySet,
    error: Option<BuildError>,
    clock: Clock,
    cache_capacity: usize,
    fetcher: Option<Box<dyn FetchJwks>>,
    policy: RefreshPolicy,
}

impl VerifierBuilder {
    fn new(rules: Rules) -> Self {
        VerifierBuilder {
            rules,
            keys: KeySet::default(),
            error: None,
            clock: Arc::new(system_now),
            cache_capacity: DEFAULT_CACHE_CAPACITY,
            fetcher: None,
            policy: RefreshPolicy::default(),
        }
    }

    /// In-process keys (signet's own), replaceable later with [`Verifier::set_keys`].
    #[must_use]
    pub fn keys(mut self, keys: KeySet) -> Self {
        self.keys = keys;
        self
    }

    /// A static JWKS document. Unusable keys are logged and skipped; none
    /// usable is a build error.
    #[must_use]
    pub fn jwks(mut self, jwks: &jsonwebtoken::jwk::JwkSet) -> Self {
        let (keys, skipped) = KeySet::from_jwks(jwks);
        self.static_keys(keys, skipped);
        self
    }

    /// A static JWKS document as JSON text (e.g. read from a file).
    #[must_use]
    pub fn jwks_json(mut self, json: &str) -> Self {
        match KeySet::from_jwks_json(json) {
            Ok((keys, skipped)) => self.static_keys(keys, skipped),
            Err(err) => self.fail(err.into()),
        }
        self
    }

    /// Adds a static PEM public key, usable with `algorithm` only, under `kid`
    /// (the `kid` signet names it by: `signet keys list`). Call once per key.
    #[must_use]
    pub fn pem(mut self, kid: &str, algorithm: jsonwebtoken::Algorithm, pem: &[u8]) -> Self {
        if let Err(err) = self.keys.insert_pem(kid, algorithm, pem) {
            self.fail(err.into());
        }
        self
    }

    /// Keys from a custom source, refreshed by [`RefreshPolicy`].
    #[must_use]
    pub fn fetcher(mut self, fetcher: impl FetchJwks) -> Self {
        self.fetcher = Some(Box::new(fetcher));
        self
    }

    /// Keys from a JWKS URL (e.g. `http://signet:8080/.well-known/jwks.json`),
    /// kept fresh. The expected `iss` stays [`Rules::issuer`].
    #[cfg(feature = "remote")]
    #[must_use]
    pub fn jwks_url(self, url: impl Into<String>) -> Self {
        self.fetcher(crate::remote::HttpFetcher::jwks_url(url))
    }

    /// Keys found through OpenID discovery: `{issuer}/.well-known/openid-configuration`
    /// names the `jwks_uri` (its `issuer` must equal [`Rules::issuer`]).
    #[cfg(feature = "remote")]
    #[must_use]
    pub fn discover(self) -> Self {
        let issuer = self.rules.issuer.clone();
        self.fetcher(crate::remote::HttpFetcher::discover(issuer))
    }

    /// When a refreshing source fetches (defaults: [`RefreshPolicy::default`]).
    #[must_use]
    pub fn refresh_policy(mut self, policy: RefreshPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The source of "now" (Unix seconds); tests pass a manual clock.
    #[must_use]
    pub fn clock(mut self, now: Clock) -> Self {
        self.clock = now;
        self
    }

    /// How many verified tokens to remember (default
    /// [`DEFAULT_CACHE_CAPACITY`]); 0 turns the cache off.
    #[must_use]
    pub fn cache_capacity(mut self, capacity: usize) -> Self {
        self.cache_capacity = capacity;
        self
    }

    fn static_keys(&mut self, keys: KeySet, skipped: Vec<KeyError>) {
        for err in skipped {
            log::warn!("static JWKS: key skipped: {err}");
        }
        if keys.is_empty() {
            self.fail(BuildError::NoUsableKey);
        }
        self.keys = keys;
    }

    fn fail(&mut self, err: BuildError) {
        self.error.get_or_insert(err);
    }

    /// The verifier, shared (`web::Data::from(verifier)` in actix). With a
    /// refreshing source, its thread starts here and the first fetch at once;
    /// the thread ends when the last `Arc` is dropped.
    pub fn build(self) -> Result<Arc<Verifier>, BuildError> {
        if let Some(err) = self.error {
            return Err(err);
        }
        let (refresher, spawn) = match self.fetcher {
            Some(fetcher) => {
                let (refresher, spawn) = Refresher::start(fetcher, self.policy);
                (Some(refresher), Some(spawn))
            }
            None => (None, None),
        };
        let verifier = Arc::new(Verifier {
            keys: RwLock::new(Arc::new(self.keys)),
            rules: self.rules,
            now: self.clock,
            cache: TokenCache::new(self.cache_capacity),
            refresher,
        });
        if let Some(spawn) = spawn {
            spawn(Arc::downgrade(&verifier)).map_err(BuildError::Spawn)?;
        }
        Ok(verifier)
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

fn system_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)).unwrap_or(0)
}
