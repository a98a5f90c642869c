//! The one response helper the handlers share.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, HttpResponseBuilder};

/// A response no cache may keep: token responses (RFC 6749 §5.1) and the one
/// response that shows an API token's secret.
pub fn no_store(status: StatusCode) -> HttpResponseBuilder {
    let mut response = HttpResponse::build(status);
    response.insert_header((header::CACHE_CONTROL, "no-store")).insert_header((header::PRAGMA, "no-cache"));
    response
}
