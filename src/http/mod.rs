//! App assembly: routes, extractor limits and their problem documents,
//! middleware (CORS, security headers, request log), health endpoints.

pub mod caller;
pub mod client_ip;
pub mod csrf;
pub mod metrics;
pub mod rate_limit;

use actix_cors::Cors;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::error::{JsonPayloadError, PayloadError, QueryPayloadError};
use actix_web::http::header;
use actix_web::middleware::{from_fn, Condition, DefaultHeaders, Logger, Next};
use actix_web::{web, App, HttpRequest, HttpResponse, Resource};
use diesel::connection::SimpleConnection;
use serde_json::json;

use crate::config::Settings;
use crate::error::ApiError;
use crate::state::AppState;
use crate::{accounts, admin, api_tokens, compat, keys, sessions};

/// The OpenAPI document, kept in step with API.md.
pub const OPENAPI_YAML: &str = include_str!("../../openapi.yaml");

/// Registers every route; `main` and the tests build the same app with it.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/v1/auth")
            .service(resource("/register").route(web::post().to(accounts::handlers::register)))
            .service(resource("/login").route(web::post().to(sessions::handlers::login)))
            .service(resource("/refresh").route(web::post().to(sessions::handlers::refresh)))
            .service(resource("/logout").route(web::post().to(sessions::handlers::logout)))
            .service(resource("/logout-all").route(web::post().to(sessions::handlers::logout_all)))
            .service(resource("/me").route(web::get().to(accounts::handlers::me)))
            .service(
                resource("/api-tokens")
                    .route(web::get().to(api_tokens::handlers::list_own))
                    .route(web::post().to(api_tokens::handlers::create_own)),
            )
            .service(resource("/api-tokens/{id}").route(web::delete().to(api_tokens::handlers::revoke_own)))
            .service(resource("/token-exchange").route(web::post().to(api_tokens::handlers::exchange)))
            .service(resource("/password").route(web::post().to(accounts::handlers::change_password)))
            .service(resource("/sessions").route(web::get().to(sessions::handlers::list)))
            .service(resource("/sessions/{id}").route(web::delete().to(sessions::handlers::delete))),
    )
    .service(
        web::scope("/v1/admin")
            .service(resource("/users").route(web::get().to(admin::handlers::list_users)))
            .service(
                resource("/users/{id}")
                    .route(web::get().to(admin::handlers::get_user))
                    .route(web::patch().to(admin::handlers::patch_user))
                    .route(web::delete().to(admin::handlers::delete_user)),
            )
            .service(resource("/users/{id}/roles").route(web::put().to(admin::handlers::set_roles)))
            .service(
                resource("/users/{id}/api-tokens")
                    .route(web::get().to(api_tokens::handlers::list_for_user))
                    .route(web::post().to(api_tokens::handlers::create_for_user)),
            )
            .service(
                resource("/users/{id}/api-tokens/{token_id}")
                    .route(web::delete().to(api_tokens::handlers::revoke_for_user)),
            ),
    )
    .service(resource("/.well-known/jwks.json").route(web::get().to(keys::handlers::jwks)))
    .service(resource("/.well-known/openid-configuration").route(web::get().to(keys::handlers::openid_configuration)))
    .service(
        resource("/.well-known/oauth-authorization-server").route(web::get().to(keys::handlers::authorization_server)),
    )
    .service(resource("/api/token/").route(web::post().to(compat::simplejwt::obtain)))
    .service(resource("/api/token/refresh/").route(web::post().to(compat::simplejwt::refresh)))
    .service(resource("/api/token/verify/").route(web::post().to(compat::simplejwt::verify)))
    .service(resource("/api/token/blacklist/").route(web::post().to(compat::simplejwt::blacklist)))
    .service(resource("/api-token-auth/").route(web::post().to(compat::drf::obtain_auth_token)))
    .service(web::redirect("/demo", "/demo/"))
    .service(resource("/demo/").route(web::get().to(demo_page)))
    .service(resource("/demo/app.js").route(web::get().to(demo_script)))
    .service(resource("/demo/app.css").route(web::get().to(demo_style)))
    .service(resource("/healthz").route(web::get().to(healthz)))
    .service(resource("/readyz").route(web::get().to(readyz)))
    .service(resource("/openapi.yaml").route(web::get().to(openapi)));
}

/// A resource whose unmatched methods get a 405 problem document.
fn resource(path: &str) -> Resource {
    web::resource(path).default_service(web::to(|| async { Err::<HttpResponse, _>(ApiError::MethodNotAllowed) }))
}

/// Body and query limits, answered with problem documents.
pub fn extractor_config(
    settings: &Settings,
) -> (web::JsonConfig, web::PayloadConfig, web::QueryConfig, web::PathConfig) {
    let limit = settings.server.body_limit_bytes;
    let json = web::JsonConfig::default().limit(limit).error_handler(|err, _req| json_error(err).into());
    let payload = web::PayloadConfig::default().limit(limit);
    let query = web::QueryConfig::default().error_handler(|err: QueryPayloadError, _req| {
        ApiError::MalformedRequest(format!("invalid query: {err}")).into()
    });
    // Ids in paths are UUIDs; anything else names no resource (and never
    // reaches the database: PostgreSQL text cannot even hold a NUL byte).
    let path = web::PathConfig::default().error_handler(|_, _| ApiError::NotFound.into());
    (json, payload, query, path)
}

fn json_error(err: JsonPayloadError) -> ApiError {
    match err {
        JsonPayloadError::ContentType => ApiError::UnsupportedMediaType,
        JsonPayloadError::Overflow { .. }
        | JsonPayloadError::OverflowKnownLength { .. }
        | JsonPayloadError::Payload(PayloadError::Overflow) => ApiError::PayloadTooLarge,
        JsonPayloadError::Deserialize(err) => ApiError::MalformedRequest(describe_json_error(&err)),
        _ => ApiError::MalformedRequest("The request body could not be read.".into()),
    }
}

/// serde's messages can quote the offending value (a password sent as a
/// number, say); keep only the ones that name a field.
pub fn describe_json_error(err: &serde_json::Error) -> String {
    let message = err.to_string();
    if message.starts_with("missing field") || message.starts_with("unknown field") {
        return format!("Invalid JSON body: {message}.");
    }
    let what = match err.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => "is not valid JSON",
        serde_json::error::Category::Data => "has a field of the wrong type",
        serde_json::error::Category::Io => "could not be read",
    };
    format!("The JSON body {what} (line {}, column {}).", err.line(), err.column())
}

/// CORS from `cors.allowed_origins`: credentialed responses for listed origins
/// only, never a wildcard; preflights cached for an hour.
pub fn cors(settings: &Settings) -> Cors {
    let mut cors = Cors::default()
        .allowed_methods(["GET", "POST", "PUT", "PATCH", "DELETE"])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::HeaderName::from_static("x-requested-with"),
        ])
        .supports_credentials()
        .max_age(3600);
    for origin in &settings.cors.allowed_origins {
        cors = cors.allowed_origin(origin);
    }
    cors
}

/// 431 with a problem document when the request headers are larger than
/// `server.max_header_bytes` (actix's own hard limit, 32 KiB, answers plainly).
async fn limit_header_size(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let max = req.app_data::<web::Data<AppState>>().map_or(16384, |s| s.settings.server.max_header_bytes);
    let size: usize = req.headers().iter().map(|(name, value)| name.as_str().len() + value.len() + 4).sum();
    if size > max {
        return Err(ApiError::RequestHeaderTooLarge.into());
    }
    next.call(req).await
}

pub fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::REFERRER_POLICY, "no-referrer"))
        .add((header::X_FRAME_OPTIONS, "DENY"))
}

/// One line per request: peer, method, path without query, status, size, time.
/// No headers and no bodies, so no tokens or passwords.
pub fn request_log() -> Logger {
    Logger::new("%a \"%{method}xi %U\" %s %b %Dms").custom_request_replace("method", |req| req.method().to_string())
}

pub async fn not_found(_req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// 200 when the database answers, else 503 unavailable; 503 `stopping` as
/// soon as a graceful stop began, so load balancers drain this instance.
async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if state.shutdown.is_stopping() {
        return Ok(HttpResponse::ServiceUnavailable().json(json!({"status": "stopping"})));
    }
    state.db(|conn| conn.batch_execute("SELECT 1").map_err(|e| ApiError::Unavailable(e.to_string()))).await?;
    Ok(HttpResponse::Ok().json(json!({"status": "ready"})))
}

/// The demo SPA (examples/spa), compiled in; served only when `demo.enabled`.
const DEMO_HTML: &str = include_str!("../../examples/spa/index.html");
const DEMO_JS: &str = include_str!("../../examples/spa/app.js");
const DEMO_CSS: &str = include_str!("../../examples/spa/app.css");

async fn demo_page(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    demo_asset(&state, "text/html; charset=utf-8", DEMO_HTML)
}

async fn demo_script(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    demo_asset(&state, "text/javascript; charset=utf-8", DEMO_JS)
}

async fn demo_style(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
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

/// Reads a whole request body, refusing more than `limit` bytes (413).
/// For handlers that take the raw `web::Payload` instead of `web::Json`.
pub async fn read_body(mut payload: web::Payload, limit: usize) -> Result<web::BytesMut, ApiError> {
    use futures_util::StreamExt;
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| ApiError::MalformedRequest("The request body could not be read.".into()))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The media type of the body, lower case, without parameters ("" if none).
pub fn content_type_essence(req: &HttpRequest) -> String {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// A JSON body that may be absent (empty): `None` then. Otherwise the same
/// rules and problem documents as `web::Json` (415, 413, 400).
pub async fn optional_json<T: serde::de::DeserializeOwned>(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<Option<T>, ApiError> {
    let body = read_body(payload, limit).await?;
    if body.is_empty() {
        return Ok(None);
    }
    let essence = content_type_essence(req);
    if !(essence == "application/json" || essence.ends_with("+json")) {
        return Err(ApiError::UnsupportedMediaType);
    }
    serde_json::from_slice(&body).map(Some).map_err(|err| ApiError::MalformedRequest(describe_json_error(&err)))
}

async fn openapi() -> HttpResponse {
    HttpResponse::Ok().content_type("application/yaml").body(OPENAPI_YAML)
}

/// Builds the actix `App` for one worker; production and tests share it.
pub fn app(
    state: web::Data<AppState>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let (json, payload, query, path) = extractor_config(&state.settings);
    let metrics = &state.settings.metrics;
    // `/metrics` here unless `metrics.bind` gives it an address of its own.
    let metrics_here = metrics.enabled && metrics.bind_addr().is_none();
    let track_metrics = metrics.enabled;
    App::new()
        .wrap(from_fn(csrf::origin_guard))
        .wrap(from_fn(limit_header_size))
        .wrap(cors(&state.settings))
        .wrap(security_headers())
        .wrap(request_log())
        .wrap(Condition::new(track_metrics, from_fn(metrics::track)))
        .app_data(json)
        .app_data(payload)
        .app_data(query)
        .app_data(path)
        .app_data(state.keys.verifier().clone())
        .app_data(state)
        .configure(routes)
        .configure(|cfg| {
            if metrics_here {
                metrics::route(cfg);
            }
        })
        .default_service(web::to(not_found))
}

/// The app of the separate `metrics.bind` address: `/metrics` only.
pub fn metrics_app(
    state: web::Data<AppState>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new().app_data(state).configure(metrics::route).default_service(web::to(not_found))
}
