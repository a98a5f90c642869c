//! Why a token was refused, and why a verifier could not be built.

use crate::keys::KeyError;
use crate::verifier::MAX_TOKEN_BYTES;

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
    /// Its bit in the issuer's status list is set: revoked (logout, password
    /// change, admin action...).
    #[error("token has been revoked")]
    Revoked,
    /// Its `status` names a list outside `<issuer>/v1/status-lists/`; such a
    /// URI is never fetched.
    #[error("token status list is not the issuer's")]
    UntrustedStatusList,
    /// Its status list is not loaded, or the last good copy is older than
    /// `max_stale` (fail closed), or does not cover its index.
    #[error("token status cannot be checked now")]
    StatusUnavailable,
}

/// Why a [`VerifierBuilder`] could not build.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("the static key source has no usable key")]
    NoUsableKey,
    #[error("cannot start the key refresh thread: {0}")]
    Spawn(#[source] std::io::Error),
    /// A JWKS, discovery or status-list URL over plain `http://` to a host
    /// that is not loopback, without
    /// [`allow_insecure_http`](crate::VerifierBuilder::allow_insecure_http).
    #[error("refusing an insecure URL: {0}")]
    InsecureUrl(String),
}
