//! The OAuth 2.0 grants and token endpoints' logic, over clients, sessions
//! and tokens: client credentials (RFC 6749 §4.4, RFC 9068 tokens), token
//! exchange (RFC 8693), introspection (RFC 7662) and revocation (RFC 7009).
//! The refresh-token grant is `sessions::service::rotate`, the very code of
//! `/v1/auth/refresh`. Knows no HTTP: `http::handlers::oauth` renders
//! [`OAuthError`] as RFC 6749 §5.2 error objects.

pub mod grants;
pub mod introspection;

use crate::error::ApiError;

pub const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// An RFC 6749 §5.2 error (or what the token endpoint answers instead of one:
/// throttling, body size, database outage).
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("invalid_request: {0}")]
    InvalidRequest(String),
    /// 401: client authentication failed (unknown client, wrong secret, none given).
    #[error("invalid_client")]
    InvalidClient,
    #[error("invalid_grant: {0}")]
    InvalidGrant(String),
    #[error("unauthorized_client: {0}")]
    UnauthorizedClient(String),
    #[error("unsupported_grant_type")]
    UnsupportedGrantType,
    #[error("invalid_scope: {0}")]
    InvalidScope(String),
    /// RFC 8693 §2.2.2: an audience the client may not have.
    #[error("invalid_target: {0}")]
    InvalidTarget(String),
    #[error("too many failed attempts")]
    TooManyRequests { retry_after_secs: u64 },
    #[error("payload too large")]
    PayloadTooLarge,
    /// Database outage (503) or an unexpected failure (500).
    #[error(transparent)]
    Api(ApiError),
}

impl OAuthError {
    /// The RFC 6749 `error` code.
    pub fn code(&self) -> &'static str {
        match self {
            OAuthError::InvalidRequest(_) | OAuthError::PayloadTooLarge => "invalid_request",
            OAuthError::InvalidClient => "invalid_client",
            OAuthError::InvalidGrant(_) => "invalid_grant",
            OAuthError::UnauthorizedClient(_) => "unauthorized_client",
            OAuthError::UnsupportedGrantType => "unsupported_grant_type",
            OAuthError::InvalidScope(_) => "invalid_scope",
            OAuthError::InvalidTarget(_) => "invalid_target",
            OAuthError::TooManyRequests { .. } | OAuthError::Api(ApiError::Unavailable(_)) => "temporarily_unavailable",
            OAuthError::Api(_) => "server_error",
        }
    }

    /// The `error_description`: never a secret, a token or database text.
    pub fn description(&self) -> String {
        match self {
            OAuthError::InvalidRequest(why)
            | OAuthError::InvalidGrant(why)
            | OAuthError::UnauthorizedClient(why)
            | OAuthError::InvalidScope(why)
            | OAuthError::InvalidTarget(why) => why.clone(),
            OAuthError::InvalidClient => "Client authentication failed.".into(),
            OAuthError::UnsupportedGrantType => "The grant_type is not supported by this server.".into(),
            OAuthError::TooManyRequests { retry_after_secs } => {
                format!("Too many failed attempts; retry in {retry_after_secs} seconds.")
            }
            OAuthError::PayloadTooLarge => "The request body is larger than this server accepts.".into(),
            OAuthError::Api(err) => err.detail(),
        }
    }
}

impl From<ApiError> for OAuthError {
    fn from(err: ApiError) -> Self {
        match err {
            ApiError::InvalidRefreshToken => {
                OAuthError::InvalidGrant("The refresh token is invalid, expired or revoked.".into())
            }
            ApiError::RefreshTokenReused => {
                OAuthError::InvalidGrant("This refresh token was already used; its session has been revoked.".into())
            }
            ApiError::TooManyRequests { retry_after_secs } => OAuthError::TooManyRequests { retry_after_secs },
            ApiError::PayloadTooLarge => OAuthError::PayloadTooLarge,
            ApiError::MalformedRequest(why) => OAuthError::InvalidRequest(why),
            other => OAuthError::Api(other),
        }
    }
}

impl From<diesel::result::Error> for OAuthError {
    fn from(err: diesel::result::Error) -> Self {
        OAuthError::Api(err.into())
    }
}
