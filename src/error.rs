//! The one error type of the domains and the faces, with the stable `code`s
//! of API.md. It knows no HTTP: the HTTP face renders it as an RFC 9457
//! problem document (`http::problem`), the CLI as a message.
//!
//! Policy:
//! - diesel `NotFound` → 404 `not_found`.
//! - unique violations are mapped by the caller to its own words (409
//!   `username_taken`); one that slips through is a 500.
//! - pool timeout, lost connection, SQLite busy → 503 `unavailable` with
//!   `Retry-After`; the pool replaces broken connections, so the service
//!   recovers when the database does.
//! - anything unexpected → 500 with an opaque body; the cause chain goes to the
//!   log only. Database text, key material and tokens never reach a client.

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde::Serialize;

/// One broken field rule, reported in `errors`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        FieldError { field, message: message.into() }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("malformed request: {0}")]
    MalformedRequest(String),
    #[error("validation failed")]
    ValidationFailed(Vec<FieldError>),
    #[error("weak password")]
    WeakPassword(Vec<FieldError>),
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("invalid refresh token")]
    InvalidRefreshToken,
    #[error("refresh token reused")]
    RefreshTokenReused,
    #[error("account disabled")]
    AccountDisabled,
    #[error("registration closed")]
    RegistrationClosed,
    #[error("username taken")]
    UsernameTaken,
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("payload too large")]
    PayloadTooLarge,
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("invalid API token")]
    InvalidApiToken,
    /// A well-signed access token whose session or index was revoked.
    #[error("revoked token")]
    RevokedToken,
    /// The route needs a password login (RFC 9470); the token is derived.
    #[error("insufficient user authentication")]
    InsufficientUserAuthentication,
    /// The change would leave no enabled admin.
    #[error("last admin")]
    LastAdmin,
    #[error("csrf rejected")]
    CsrfRejected,
    #[error("too many requests")]
    TooManyRequests { retry_after_secs: u64 },
    #[error("request headers too large")]
    RequestHeaderTooLarge,
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Every password-hashing place is taken: refused at once, not queued.
    #[error("password hashing queue full")]
    HashingBusy,
    #[error("internal error: {0:#}")]
    Internal(anyhow::Error),
}

impl ApiError {
    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        ApiError::Internal(err.into())
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::MalformedRequest(_) => "malformed_request",
            ApiError::ValidationFailed(_) => "validation_failed",
            ApiError::WeakPassword(_) => "weak_password",
            ApiError::InvalidCredentials => "invalid_credentials",
            ApiError::InvalidRefreshToken => "invalid_refresh_token",
            ApiError::RefreshTokenReused => "refresh_token_reused",
            ApiError::AccountDisabled => "account_disabled",
            ApiError::RegistrationClosed => "registration_closed",
            ApiError::UsernameTaken => "username_taken",
            ApiError::NotFound => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::InvalidApiToken => "invalid_token",
            ApiError::RevokedToken => "invalid_token",
            ApiError::InsufficientUserAuthentication => "insufficient_user_authentication",
            ApiError::LastAdmin => "last_admin",
            ApiError::CsrfRejected => "csrf_rejected",
            ApiError::TooManyRequests { .. } => "too_many_requests",
            ApiError::RequestHeaderTooLarge => "request_header_too_large",
            ApiError::Unavailable(_) | ApiError::HashingBusy => "unavailable",
            ApiError::Internal(_) => "internal_error",
        }
    }

    pub fn detail(&self) -> String {
        match self {
            ApiError::MalformedRequest(why) => why.clone(),
            ApiError::ValidationFailed(_) => "Some fields break a rule; see errors.".into(),
            ApiError::WeakPassword(_) => "The password breaks the password policy; see errors.".into(),
            ApiError::InvalidCredentials => "Unknown username or wrong password.".into(),
            ApiError::InvalidRefreshToken => "The refresh token is invalid, expired or revoked.".into(),
            ApiError::RefreshTokenReused => {
                "This refresh token was already used; its session has been revoked. Log in again.".into()
            }
            ApiError::AccountDisabled => "This account is disabled.".into(),
            ApiError::RegistrationClosed => "Self-service registration is closed on this server.".into(),
            ApiError::UsernameTaken => "This username is taken.".into(),
            ApiError::NotFound => "No such resource.".into(),
            ApiError::MethodNotAllowed => "This method is not allowed on this resource.".into(),
            ApiError::PayloadTooLarge => "The request body is larger than this server accepts.".into(),
            ApiError::UnsupportedMediaType => "Send the body as application/json.".into(),
            ApiError::InvalidApiToken => "The API token is invalid, expired or revoked.".into(),
            ApiError::RevokedToken => "The access token was refused: it has been revoked.".into(),
            ApiError::InsufficientUserAuthentication => {
                "This route needs an access token from a password login (or a refresh of one); log in again.".into()
            }
            ApiError::LastAdmin => "The change would leave no enabled user with the role admin.".into(),
            ApiError::CsrfRejected => {
                "Requests from this origin are not allowed; a cookie-authenticated request needs an allowed \
                 Origin and X-Requested-With: signet."
                    .into()
            }
            ApiError::TooManyRequests { retry_after_secs } => {
                format!("Too many attempts; retry in {retry_after_secs} seconds.")
            }
            ApiError::RequestHeaderTooLarge => "The request headers are larger than this server accepts.".into(),
            ApiError::Unavailable(_) => "The database is unavailable; retry shortly.".into(),
            ApiError::HashingBusy => "Too many password checks are waiting; retry shortly.".into(),
            ApiError::Internal(_) => "Internal error.".into(),
        }
    }

    pub fn field_errors(&self) -> Option<&[FieldError]> {
        match self {
            ApiError::ValidationFailed(errors) | ApiError::WeakPassword(errors) => Some(errors),
            _ => None,
        }
    }
}

impl From<DieselError> for ApiError {
    fn from(err: DieselError) -> Self {
        match err {
            DieselError::NotFound => ApiError::NotFound,
            DieselError::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                info,
            ) => ApiError::Unavailable(info.message().to_owned()),
            // SQLite reports lock contention beyond busy_timeout as a plain error.
            DieselError::DatabaseError(DatabaseErrorKind::Unknown, info)
                if info.message().contains("database is locked") || info.message().contains("database is busy") =>
            {
                ApiError::Unavailable(info.message().to_owned())
            }
            other => ApiError::internal(other),
        }
    }
}

impl From<r2d2::Error> for ApiError {
    fn from(err: r2d2::Error) -> Self {
        ApiError::Unavailable(err.to_string())
    }
}

/// True when a diesel error is a unique-constraint violation.
pub fn is_unique_violation(err: &DieselError) -> bool {
    matches!(err, DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _))
}
