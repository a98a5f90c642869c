//! Stateless verification of signet access tokens.
//!
//! A [`Verifier`] holds a set of public keys (a JWKS) and the validation
//! [`Rules`] of signet's API contract: the algorithm comes from the key found by
//! `kid` (never from the token header alone), `typ` must be `at+jwt`, and `iss`,
//! `aud`, `exp` and `nbf` are checked with a clock leeway. It knows nothing of
//! databases or passwords, so any service can use it; signet uses it for its own
//! routes too, so there is exactly one verification path.
//!
//! Keys come from signet's JWKS over HTTP (feature `remote`: a JWKS URL or
//! OpenID discovery from the issuer, refreshed in the background, refetched on
//! an unknown `kid` within a rate limit), from a static JWKS document or PEM
//! key, or from the embedding process ([`Verifier::set_keys`]). Successful
//! verifications are cached by the SHA-256 of the whole token until the
//! token expires (bounded, [`VerifierBuilder::cache_capacity`]).
//!
//! ```no_run
//! # #[cfg(feature = "remote")]
//! # fn main() -> Result<(), signet_verify::BuildError> {
//! use signet_verify::{Rules, Verifier};
//!
//! let verifier = Verifier::builder(Rules::new("https://id.example.com", "signet"))
//!     .discover() // keys from https://id.example.com/.well-known/openid-configuration
//!     .build()?;
//! # let token = "";
//! match verifier.verify(token) {
//!     Ok(claims) => println!("{} has roles {:?}", claims.sub, claims.roles),
//!     Err(why) => println!("refused: {why}"),
//! }
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "remote"))]
//! # fn main() {}
//! ```
//!
//! With the `actix` feature, [`actix::Authenticated`] is an actix-web extractor
//! and [`actix::RequireRole`] a role guard.
//!
//! # Revocation
//!
//! Tokens with a `status` claim are checked against signet's token status
//! lists on every verification, cached ones included; a revoked token fails
//! with [`VerifyError::Revoked`]. On by default with remote keys
//! ([`VerifierBuilder::status_lists`]). Only lists under
//! `<issuer>/v1/status-lists/` are trusted, and fetched in the background,
//! never on the request path. When signet is unreachable, the last good copy
//! of a list is used until [`StatusListPolicy::max_stale`] (300 s by
//! default); then its tokens are refused with [`VerifyError::StatusUnavailable`]
//! (fail closed) unless [`StatusListPolicy::fail_open`]. The details are in
//! the [`status`] module.
//!
//! # Transport
//!
//! JWKS, discovery and status-list URLs must be `https://`, or `http://` to a
//! loopback host; [`VerifierBuilder::allow_insecure_http`] opts in to plain
//! HTTP elsewhere.

mod builder;
mod cache;
mod claims;
mod error;
mod keys;
mod refresh;
#[cfg(feature = "remote")]
mod remote_status;
pub mod status;
mod verifier;

#[cfg(feature = "actix")]
pub mod actix;
#[cfg(feature = "remote")]
pub mod remote;

pub use builder::VerifierBuilder;
pub use claims::{AccessClaims, Actor, Audience, Status, StatusListRef, AMR_PASSWORD};
pub use error::{BuildError, VerifyError};
pub use keys::{KeyError, KeySet};
pub use refresh::{FetchError, FetchJwks, Fetched, KeySourceStats, KeysRefreshed, RefreshPolicy};
pub use status::{
    status_bit, StatusListError, StatusListPolicy, StatusListStats, StatusLoaded, DEFAULT_MAX_STALE,
    MAX_STATUS_LIST_BYTES, MAX_TRACKED_LISTS, STATUS_LIST_TYPE,
};
pub use verifier::{
    Clock, Rules, TimeBound, Verification, Verifier, ACCESS_TOKEN_TYPE, DEFAULT_CACHE_CAPACITY, DEFAULT_LEEWAY_SECS,
    MAX_TOKEN_BYTES,
};

/// Re-exported so users can name algorithms and build JWKS documents without
/// depending on jsonwebtoken.
pub use jsonwebtoken::jwk::{Jwk, JwkSet};
pub use jsonwebtoken::Algorithm;
