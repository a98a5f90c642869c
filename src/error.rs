//! The one error type at the HTTP boundary, rendered as RFC 9457 problem
//! documents with the stable `code`s of API.md.
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

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde::Serialize;
use serde_json::json;

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
    #[error("csrf rejected")]
    CsrfRejected,
    #[error("too many requests")]
    TooManyRequests { retry_after_secs: u64 },
    #[error("request headers too large")]
    RequestHeaderTooLarge,
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0:#}")]
    Internal(anyhow::Error),
}

/// Seconds a client should wait before retrying a 503.
const RETRY_AFTER_SECS: &str = "5";

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
            ApiError::CsrfRejected => "csrf_rejected",
            ApiError::TooManyRequests { .. } => "too_many_requests",
            ApiError::RequestHeaderTooLarge => "request_header_too_large",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal_error",
        }
    }

    fn detail(&self) -> String {
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
            ApiError::Internal(_) => "Internal error.".into(),
        }
    }

    fn field_errors(&self) -> Option<&[FieldError]> {
        match self {
            ApiError::ValidationFailed(errors) | ApiError::WeakPassword(errors) => Some(errors),
            _ => None,
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::MalformedRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::ValidationFailed(_) | ApiError::WeakPassword(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::InvalidCredentials | ApiError::InvalidRefreshToken | ApiError::RefreshTokenReused => {
                StatusCode::UNAUTHORIZED
            }
            ApiError::AccountDisabled | ApiError::RegistrationClosed => StatusCode::FORBIDDEN,
            ApiError::UsernameTaken => StatusCode::CONFLICT,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::CsrfRejected => StatusCode::FORBIDDEN,
            ApiError::InvalidApiToken | ApiError::RevokedToken => StatusCode::UNAUTHORIZED,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::RequestHeaderTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            ApiError::Internal(cause) => log::error!("internal error: {cause:#}"),
            ApiError::Unavailable(cause) => log::warn!("database unavailable: {cause}"),
            _ => {}
        }
        let mut response = problem_builder(self.status_code());
        match self {
            ApiError::InvalidCredentials | ApiError::InvalidRefreshToken | ApiError::RefreshTokenReused => {
                response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"signet\"")));
            }
            ApiError::Unavailable(_) => {
                response.insert_header((header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECS)));
            }
            ApiError::TooManyRequests { retry_after_secs } => {
                response.insert_header((header::RETRY_AFTER, HeaderValue::from(*retry_after_secs)));
            }
            ApiError::RevokedToken => {
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(
                        "Bearer realm=\"signet\", error=\"invalid_token\", error_description=\"revoked\"",
                    ),
                ));
            }
            ApiError::InvalidApiToken => {
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Token realm=\"signet\", error=\"invalid_token\""),
                ));
            }
            _ => {}
        }
        response.body(problem_body(self.status_code(), self.code(), &self.detail(), self.field_errors()).to_string())
    }
}

fn problem_builder(status: StatusCode) -> actix_web::HttpResponseBuilder {
    let mut response = HttpResponse::build(status);
    response.content_type("application/problem+json");
    response
}

/// The RFC 9457 body, shared with the verifier crate's shape.
pub fn problem_body(status: StatusCode, code: &str, detail: &str, errors: Option<&[FieldError]>) -> serde_json::Value {
    let mut body = json!({
        "type": format!("urn:signet:problem:{code}"),
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": detail,
        "code": code,
    });
    if let Some(errors) = errors {
        body["errors"] = json!(errors);
    }
    body
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

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(err: actix_web::error::BlockingError) -> Self {
        ApiError::internal(anyhow::anyhow!("blocking task failed: {err}"))
    }
}

/// True when a diesel error is a unique-constraint violation.
pub fn is_unique_violation(err: &DieselError) -> bool {
    matches!(err, DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _))
}
