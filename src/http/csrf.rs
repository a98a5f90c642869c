//! CSRF defence for the requests the refresh cookie authenticates, and the
//! origin guard that blocks browsers of unlisted origins.
//!
//! A cookie-authenticated request must carry an `Origin` that is signet's own
//! (the origin the request was sent to) or listed in `cors.allowed_origins`,
//! and `X-Requested-With: signet`, a header a cross-site form cannot set and
//! a cross-origin `fetch` can only send after a CORS preflight.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method};
use actix_web::middleware::Next;
use actix_web::{web, HttpRequest};

use crate::config::Settings;
use crate::error::ApiError;
use crate::http::state::AppState;

pub const REQUESTED_WITH: &str = "signet";

/// The origin a request was addressed to, as a browser would write it: its
/// `Host`, with `X-Forwarded-Host`/`-Proto` believed only from a trusted proxy.
fn own_origin(req: &HttpRequest, settings: &Settings) -> Option<String> {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let via_proxy = req.peer_addr().is_some_and(|peer| settings.throttle.trusted_proxies.contains(&peer.ip()));
    let forwarded = |name: &str| {
        if via_proxy {
            header(name).and_then(|v| v.split(',').next().map(|s| s.trim().to_owned()))
        } else {
            None
        }
    };
    let host = forwarded("x-forwarded-host").or_else(|| header("host"))?;
    let scheme = forwarded("x-forwarded-proto").unwrap_or_else(|| "http".to_owned());
    Some(format!("{scheme}://{host}"))
}

/// The issuer's origin counts as signet's own too (its public URL).
fn issuer_origin(settings: &Settings) -> &str {
    let issuer = settings.tokens.issuer.as_str();
    let after_scheme = issuer.find("://").map_or(0, |i| i + 3);
    issuer[after_scheme..].find('/').map_or(issuer, |slash| &issuer[..after_scheme + slash])
}

fn origin_allowed(origin: &str, req: &HttpRequest, settings: &Settings) -> bool {
    own_origin(req, settings).is_some_and(|own| own == origin)
        || origin == issuer_origin(settings)
        || settings.cors.allowed_origins.iter().any(|o| o == origin)
}

/// 403 csrf_rejected unless the request is plainly from signet's own pages or
/// an allowed origin's script.
pub fn check(req: &HttpRequest, settings: &Settings) -> Result<(), ApiError> {
    let origin = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let requested_with = req.headers().get("x-requested-with").and_then(|v| v.to_str().ok());
    let origin_ok = origin.is_some_and(|o| origin_allowed(o, req, settings));
    if origin_ok && requested_with == Some(REQUESTED_WITH) {
        Ok(())
    } else {
        Err(ApiError::CsrfRejected)
    }
}

/// Browsers send `Origin` on cross-origin requests; one from an unlisted
/// origin is refused outright with 403 csrf_rejected (actix-cors would serve
/// it, only without CORS headers). Public metadata (`/.well-known/*`) stays
/// readable from anywhere.
pub async fn origin_guard(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let origin = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()).map(str::to_owned);
    if let (Some(origin), Some(state)) = (origin, req.app_data::<web::Data<AppState>>()) {
        let public = req.method() == Method::GET && req.path().starts_with("/.well-known/");
        if !public && !origin_allowed(&origin, req.request(), &state.settings) {
            return Err(ApiError::CsrfRejected.into());
        }
    }
    next.call(req).await
}
