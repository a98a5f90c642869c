//! The HTTP face: the actix app over the domains. Routes (`routes`), thin
//! handlers (`handlers/`, one file per domain), extractors (`caller`), the
//! app state, problem documents, body reading, CSRF and cookies, the login
//! and refresh flows that need the request, and the compatibility routes.
//! Nothing below `http` imports it back.

pub mod batches;
pub mod body;
pub mod caller;
pub mod client_ip;
pub mod compat;
pub mod cookie;
pub mod csrf;
pub mod db_gate;
pub mod flows;
pub mod handlers;
pub mod hash_pool;
pub mod metrics;
pub mod problem;
pub mod rate_limit;
pub mod response;
pub mod routes;
pub mod sqlite_writer;
pub mod state;

use actix_cors::Cors;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::{from_fn, Condition, DefaultHeaders, Logger, Next};
use actix_web::{web, App, HttpRequest, HttpResponse};

use crate::config::Settings;
use crate::error::ApiError;
use state::AppState;

pub use body::{describe_json_error, extractor_config};
pub use handlers::meta::OPENAPI_YAML;
pub use routes::{registered_routes, routes};

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
        .wrap(from_fn(hash_pool::count_in_flight))
        .wrap(cors(&state.settings))
        .wrap(security_headers())
        .wrap(request_log())
        .wrap(Condition::new(track_metrics, from_fn(metrics::track)))
        .app_data(json)
        .app_data(payload)
        .app_data(query)
        .app_data(path)
        .app_data(web::Data::from(state.keys.verifier().clone()))
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
