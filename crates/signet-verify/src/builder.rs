//! [`VerifierBuilder`]: where the keys come from, the clock, the cache.

use std::sync::{Arc, RwLock};

use crate::cache::TokenCache;
use crate::error::BuildError;
use crate::keys::{KeyError, KeySet};
use crate::refresh::{FetchJwks, RefreshPolicy, Refresher};
use crate::status::{StatusListPolicy, StatusLists};
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
    /// The HTTP key source, kept apart until `build` so that
    /// `allow_insecure_http` may come before or after it.
    #[cfg(feature = "remote")]
    http: Option<crate::remote::HttpFetcher>,
    policy: RefreshPolicy,
    /// `None`: on exactly when keys come from the issuer over HTTP.
    status: Option<bool>,
    status_policy: StatusListPolicy,
    allow_insecure_http: bool,
    status_origin: Option<String>,
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
            #[cfg(feature = "remote")]
            http: None,
            policy: RefreshPolicy::default(),
            status: None,
            status_policy: StatusListPolicy::default(),
            allow_insecure_http: false,
            status_origin: None,
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

    /// Keys from a JWKS URL (e.g. `https://signet.internal/.well-known/jwks.json`;
    /// plain `http://` only to loopback hosts unless
    /// [`allow_insecure_http`](Self::allow_insecure_http)), kept fresh. The
    /// expected `iss` stays [`Rules::issuer`].
    #[cfg(feature = "remote")]
    #[must_use]
    pub fn jwks_url(mut self, url: impl Into<String>) -> Self {
        self.http = Some(crate::remote::HttpFetcher::jwks_url(url));
        self
    }

    /// Keys found through OpenID discovery: `{issuer}/.well-known/openid-configuration`
    /// names the `jwks_uri` (its `issuer` must equal [`Rules::issuer`]).
    #[cfg(feature = "remote")]
    #[must_use]
    pub fn discover(mut self) -> Self {
        self.http = Some(crate::remote::HttpFetcher::discover(self.rules.issuer.clone()));
        self
    }

    /// Allows plain `http://` JWKS, discovery and status-list URLs to hosts
    /// that are not loopback (127.0.0.0/8, `::1`, `localhost`). Off by
    /// default: over plain HTTP anyone on the path can substitute keys or
    /// un-revoke tokens. Without it, such a URL is a
    /// [`BuildError::InsecureUrl`].
    #[must_use]
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// Whether to check the `status` claim of tokens against the issuer's
    /// token status lists (see the crate docs, "Revocation"). Default: on
    /// when keys come from the issuer over HTTP ([`discover`](Self::discover),
    /// [`jwks_url`](Self::jwks_url)), off otherwise (then lists come from
    /// [`Verifier::load_status_list`]).
    #[must_use]
    pub fn status_lists(mut self, check: bool) -> Self {
        self.status = Some(check);
        self
    }

    /// Fetch status lists (and the event stream) from this origin (e.g.
    /// `http://signet.internal:8080`) instead of the issuer URL, like
    /// [`jwks_url`](Self::jwks_url) for keys. Which lists are trusted does not
    /// change: a token's `status.uri` must still be under
    /// `<issuer>/v1/status-lists/`; only the path after the issuer is reused.
    #[must_use]
    pub fn status_origin(mut self, origin: impl Into<String>) -> Self {
        self.status_origin = Some(origin.into());
        self
    }

    /// How status lists are kept: `max_stale`, fail-open, schedule.
    #[must_use]
    pub fn status_policy(mut self, policy: StatusListPolicy) -> Self {
        self.status_policy = policy;
        self
    }

    /// Refuse tokens whose status list was last confirmed longer ago than
    /// this (default [`DEFAULT_MAX_STALE`](crate::DEFAULT_MAX_STALE), 300 s).
    #[must_use]
    pub fn max_stale(mut self, max_stale: std::time::Duration) -> Self {
        self.status_policy.max_stale = max_stale;
        self
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
    #[cfg_attr(not(feature = "remote"), expect(unused_mut, reason = "the remote key source takes parts of self"))]
    pub fn build(mut self) -> Result<Arc<Verifier>, BuildError> {
        if let Some(err) = self.error {
            return Err(err);
        }
        #[cfg(feature = "remote")]
        let remote_keys = self.http.is_some();
        #[cfg(not(feature = "remote"))]
        let remote_keys = false;
        let check_status = self.status.unwrap_or(remote_keys);
        #[cfg(feature = "remote")]
        {
            use crate::remote::check_transport;
            if let Some(http) = self.http.take() {
                check_transport(&http.configured_url(), self.allow_insecure_http).map_err(BuildError::InsecureUrl)?;
                self.fetcher = Some(Box::new(http.allow_insecure_http(self.allow_insecure_http)));
            }
            if check_status {
                let origin = self.status_origin.as_deref().unwrap_or(&self.rules.issuer);
                check_transport(origin, self.allow_insecure_http).map_err(BuildError::InsecureUrl)?;
            }
        }
        let status = check_status
            .then(|| Arc::new(StatusLists::new(&self.rules.issuer, self.status_origin.as_deref(), self.status_policy)));
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
            status,
        });
        if let Some(spawn) = spawn {
            spawn(Arc::downgrade(&verifier)).map_err(BuildError::Spawn)?;
        }
        #[cfg(feature = "remote")]
        if let Some(lists) = &verifier.status {
            crate::remote_status::spawn(lists.clone(), Arc::downgrade(&verifier), crate::remote::DEFAULT_TIMEOUT)
                .map_err(BuildError::Spawn)?;
        }
        Ok(verifier)
    }
}
