//! [`VerifierBuilder`]: where the keys come from, the clock, the cache.

use std::sync::{Arc, RwLock};

use crate::cache::TokenCache;
use crate::error::BuildError;
use crate::keys::{KeyError, KeySet};
use crate::refresh::{FetchJwks, RefreshPolicy, Refresher};
use crate::verifier::{system_now, Clock, Rules, Verifier, DEFAULT_CACHE_CAPACITY};

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
    pub(crate) fn new(rules: Rules) -> Self {
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
