//! OAuth 2.0 clients: service accounts with a `client_id` and a secret
//! (shown once, stored keyed-hashed like API tokens), the roles their
//! client-credentials tokens may carry and the audiences they may exchange
//! tokens for. The grants themselves live in `oauth`.

pub mod commands;
pub mod model;
pub mod service;
pub mod throttle;

/// `sid` prefix of client-credentials tokens: `client:<client_id>:<nonce>`.
pub const SESSION_PREFIX: &str = "client:";

/// The client id inside a client session id, if `sid` is one.
pub fn client_of_session(sid: &str) -> Option<&str> {
    sid.strip_prefix(SESSION_PREFIX)?.split_once(':').map(|(client, _)| client)
}
