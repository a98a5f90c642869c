//! API tokens: long-lived opaque tokens for scripts and service accounts
//! (DRF's `Token`, done safely). `sgt_` + 256 random bits; only a keyed hash
//! is stored; shown once; listable, revocable, optionally expiring; accepted
//! as `Authorization: Token <key>` and exchangeable for a short access JWT.

pub mod model;
pub mod service;

/// `sid` of access tokens exchanged for an API token: this + the token's id.
pub const EXCHANGE_SID_PREFIX: &str = "api-token:";
