//! `GET /v1/status-lists/{n}` (a signed token status list) and
//! `GET /v1/status-lists/events` (server-sent events announcing changes).

use std::convert::Infallible;

use actix_web::http::{header, StatusCode};
use actix_web::web::Bytes;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::error::ApiError;
use crate::http::problem::problem_body;
use crate::http::state::AppState;
use crate::status_lists::service::Subscription;

pub const STATUS_LIST_CONTENT_TYPE: &str = "application/statuslist+jwt";
/// Seconds a refused event-stream subscriber is asked to wait.
const SUBSCRIBERS_RETRY_AFTER: &str = "30";

/// GET /v1/status-lists/{n}: served from memory (see `StatusLists::get`).
/// `Cache-Control: public, max-age=<ttl>`: the draft's `ttl` is exactly how
/// long a copy may be used, and the ETag makes the refetch after it a cheap 304.
pub async fn get_list(
    state: web::Data<AppState>,
    req: HttpRequest,
    n: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let lists = state.status_lists.clone();
    // Only plain positive integers name a list; anything else is unknown.
    let list = match n.parse::<i64>() {
        Ok(list) if list >= 1 && lists.enabled() && n.bytes().all(|b| b.is_ascii_digit()) => list,
        _ => return Err(ApiError::NotFound),
    };
    let signed = state.blocking(move || lists.get(list)).await??.ok_or(ApiError::NotFound)?;
    let cache_control = format!("public, max-age={}", state.status_lists.ttl());
    if if_none_match(&req, &signed.etag) {
        return Ok(HttpResponse::NotModified()
            .insert_header((header::ETAG, signed.etag.clone()))
            .insert_header((header::CACHE_CONTROL, cache_control))
            .finish());
    }
    Ok(HttpResponse::Ok()
        .content_type(STATUS_LIST_CONTENT_TYPE)
        .insert_header((header::ETAG, signed.etag.clone()))
        .insert_header((header::CACHE_CONTROL, cache_control))
        .body(signed.jwt.clone()))
}

/// Whether `If-None-Match` names `etag` (or is `*`). A header that is not
/// readable, or a list of garbage, matches nothing and is ignored.
fn if_none_match(req: &HttpRequest, etag: &str) -> bool {
    req.headers().get_all(header::IF_NONE_MATCH).filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(
        |candidate| {
            let candidate = candidate.trim();
            candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == etag
        },
    )
}

/// GET /v1/status-lists/events: a `text/event-stream` of `status` events
/// and keepalive comments. Async all the way (no worker is held); each
/// subscriber has a bounded buffer and is dropped when it falls behind; at
/// `revocation.max_subscribers` the answer is 503 with Retry-After.
pub async fn events(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if !state.status_lists.enabled() {
        return Err(ApiError::NotFound);
    }
    let receiver = match state.status_lists.subscribe() {
        Subscription::Open(receiver) => receiver,
        Subscription::Full => {
            let status = StatusCode::SERVICE_UNAVAILABLE;
            let body = problem_body(
                status,
                "too_many_subscribers",
                "This instance has as many event stream subscribers as it serves; retry later or poll the lists.",
                None,
            );
            return Ok(HttpResponse::build(status)
                .content_type("application/problem+json")
                .insert_header((header::RETRY_AFTER, SUBSCRIBERS_RETRY_AFTER))
                .body(body.to_string()));
        }
    };
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        let message: Bytes = receiver.recv().await?;
        Some((Ok::<_, Infallible>(message), receiver))
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        // Reverse proxies must pass events through at once.
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(stream))
}
