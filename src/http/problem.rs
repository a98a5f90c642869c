//! `ApiError` as an RFC 9457 problem document: status, `code`, challenge
//! headers. The mapping policy is at the top of `error.rs`.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use crate::error::{ApiError, FieldError};

/// Seconds a client should wait before retrying a 503.
pub const RETRY_AFTER_SECS: &str = "5";

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
            ApiError::InvalidApiToken | ApiError::RevokedToken | ApiError::InsufficientUserAuthentication => {
                StatusCode::UNAUTHORIZED
            }
            ApiError::LastAdmin => StatusCode::CONFLICT,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::RequestHeaderTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ApiError::Unavailable(_) | ApiError::HashingBusy => StatusCode::SERVICE_UNAVAILABLE,
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
            ApiError::Unavailable(_) | ApiError::HashingBusy => {
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
            ApiError::InsufficientUserAuthentication => {
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"signet\", error=\"insufficient_user_authentication\""),
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

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(err: actix_web::error::BlockingError) -> Self {
        ApiError::internal(anyhow::anyhow!("blocking task failed: {err}"))
    }
}
