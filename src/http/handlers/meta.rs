//! Health, readiness, the OpenAPI document and the demo SPA.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use diesel::connection::SimpleConnection;
use serde_json::json;

use crate::error::ApiError;
use crate::http::state::AppState;

/// The OpenAPI document, kept in step with API.md.
pub const OPENAPI_YAML: &str = include_str!("../../../openapi.yaml");

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// 200 when the database answers, else 503 unavailable.
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    // 503 `stopping` as soon as a graceful stop began, so load balancers drain us.
    if state.shutdown.is_stopping() {
        return Ok(HttpResponse::ServiceUnavailable().json(json!({"status": "stopping"})));
    }
    state.db(|conn| conn.batch_execute("SELECT 1").map_err(|e| ApiError::Unavailable(e.to_string()))).await?;
    Ok(HttpResponse::Ok().json(json!({"status": "ready"})))
}

/// The demo SPA (examples/spa), compiled in; served only when `demo.enabled`.
const DEMO_HTML: &str = include_str!("../../../examples/spa/index.html");
const DEMO_JS: &str = include_str!("../../../examples/spa/app.js");
const DEMO_CSS: &str = include_str!("../../../examples/spa/app.css");

pub async fn demo_page(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    demo_asset(&state, "text/html; charset=utf-8", DEMO_HTML)
}

pub async fn demo_script(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    demo_asset(&state, "text/javascript; charset=utf-8", DEMO_JS)
}

pub async fn demo_style(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    demo_asset(&state, "text/css; charset=utf-8", DEMO_CSS)
}

fn demo_asset(state: &AppState, content_type: &str, body: &'static str) -> Result<HttpResponse, ApiError> {
    if !state.settings.demo.enabled {
        return Err(ApiError::NotFound);
    }
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; form-action 'none'; \
             frame-ancestors 'none'",
        ))
        .body(body))
}

pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok().content_type("application/yaml").body(OPENAPI_YAML)
}

/// `/demo` → `/demo/` (whether or not the demo is enabled).
pub async fn demo_redirect() -> HttpResponse {
    HttpResponse::TemporaryRedirect().insert_header((header::LOCATION, "/demo/")).finish()
}
