//! Stateless verification of signet access tokens.
//!
//! A [`Verifier`] holds a set of public keys (a JWKS) and the validation
//! [`Rules`] of signet's API contract: the algorithm comes from the key found by
//! `kid` (never from the token header alone), `typ` must be `at+jwt`, and `iss`,
//! `aud`, `exp` and `nbf` are checked with a clock leeway. It knows nothing of
//! databases or passwords, so any service can use it; signet uses it for its own
//! routes too, so there is exactly one verification path.
//!
//! With the `actix` feature, [`actix::Authenticated`] is an actix-web extractor
//! and [`actix::RequireRole`] a role guard.

mod claims;
mod keys;
mod verifier;

#[cfg(feature = "actix")]
pub mod actix;

pub use claims::{AccessClaims, Audience};
pub use keys::{KeyError, KeySet};
pub use verifier::{Rules, TimeBound, Verifier, VerifyError, ACCESS_TOKEN_TYPE, MAX_TOKEN_BYTES};

/// Re-exported so users can build JWKS documents without naming jsonwebtoken.
pub use jsonwebtoken::jwk::{Jwk, JwkSet};
