//! App assembly: routes, extractor limits and their problem documents,
//! middleware (CORS, security headers, request log), health endpoints.

pub mod caller;
pub mod client_ip;
pub mod csrf;
pub mod rate_limit;

use actix_cors::Cors;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::error::{JsonPayloadError, PayloadError, QueryPayloadError};
use actix_web::http::header;
use actix_web::http::Method;
use actix_web::middleware::{from_fn, DefaultHeaders, Logger, Next};
use actix_web::{web, App, FromRequest, Handler, HttpRequest, HttpResponse, Resource, Responder, ResponseError, Route};
use diesel::connection::SimpleConnection;
use serde_json::json;

use crate::config::Settings;
use crate::error::ApiError;
use crate::state::AppState;
use crate::{accounts, admin, api_tokens, compat, keys, sessions};

/// The OpenAPI document, kept in step with API.md.
pub const OPENAPI_YAML: &str = include_str!("../../openapi.yaml");

/// Every route the app serves, one entry per path with the methods it
/// answers. The single source of truth for `routes` (what is served, and the
/// `Allow` header of each 405) and for `registered_routes` (what the OpenAPI
/// parity test compares with openapi.yaml).
fn table() -> Vec<Endpoint> {
    type E = Endpoint;
    vec![
        E::new("/v1/auth/register").post(accounts::handlers::register),
        E::new("/v1/auth/login").post(sessions::handlers::login),
        E::new("/v1/auth/refresh").post(sessions::handlers::refresh),
        E::new("/v1/auth/logout").post(sessions::handlers::logout),
        E::new("/v1/auth/logout-all").post(sessions::handlers::logout_all),
        E::new("/v1/auth/me").get(accounts::handlers::me),
        E::new("/v1/auth/api-tokens").get(api_tokens::handlers::list_own).post(api_tokens::handlers::create_own),
        E::new("/v1/auth/api-tokens/{id}").delete(api_tokens::handlers::revoke_own),
        E::new("/v1/auth/token-exchange").post(api_tokens::handlers::exchange),
        E::new("/v1/auth/password").post(accounts::handlers::change_password),
        E::new("/v1/auth/sessions").get(sessions::handlers::list),
        E::new("/v1/auth/sessions/{id}").delete(sessions::handlers::delete),
        E::new("/v1/admin/users").get(admin::handlers::list_users),
        E::new("/v1/admin/users/{id}")
            .get(admin::handlers::get_user)
            .patch(admin::handlers::patch_user)
            .delete(admin::handlers::delete_user),
        E::new("/v1/admin/users/{id}/roles").put(admin::handlers::set_roles),
        E::new("/v1/admin/users/{id}/api-tokens")
            .get(api_tokens::handlers::list_for_user)
            .post(api_tokens::handlers::create_for_user),
        E::new("/v1/admin/users/{id}/api-tokens/{token_id}").delete(api_tokens::handlers::revoke_for_user),
        E::new("/.well-known/jwks.json").get(keys::handlers::jwks),
        E::new("/.well-known/openid-configuration").get(keys::handlers::openid_configuration),
        E::new("/.well-known/oauth-authorization-server").get(keys::handlers::authorization_server),
        E::drf("/api/token/").post(compat::simplejwt::obtain),
        E::drf("/api/token/refresh/").post(compat::simplejwt::refresh),
        E::drf("/api/token/verify/").post(compat::simplejwt::verify),
        E::drf("/api/token/blacklist/").post(compat::simplejwt::blacklist),
        E::drf("/api-token-auth/").post(compat::drf::obtain_auth_token),
        E::new("/demo").get(demo_redirect),
        E::new("/demo/").get(demo_page),
        E::new("/demo/app.js").get(demo_script),
        E::new("/demo/app.css").get(demo_style),
        E::new("/healthz").get(healthz),
        E::new("/readyz").get(readyz),
        E::new("/openapi.yaml").get(openapi),
    ]
}

/// Registers every route of `table`; `main` and the tests build the same app with it.
pub fn routes(cfg: &mut web::ServiceConfig) {
    for endpoint in table() {
        cfg.service(endpoint.into_resource());
    }
}

/// (method, path) of every registered route, paths in the `{param}` form
/// openapi.yaml uses.
pub fn registered_routes() -> Vec<(Method, &'static str)> {
    table().into_iter().flat_map(|e| e.routes.into_iter().map(move |(method, _)| (method, e.path))).collect()
}

/// Whose wire format a route speaks, which decides the body of its 405.
#[derive(Clone, Copy)]
enum Wire {
    Signet,
    /// The compat routes: DRF's `{"detail": "Method \"GET\" not allowed."}`.
    Drf,
}

/// One path of `table` and the routes registered on it.
struct Endpoint {
    path: &'static str,
    wire: Wire,
    routes: Vec<(Method, Route)>,
}

impl Endpoint {
    fn new(path: &'static str) -> Self {
        Endpoint { path, wire: Wire::Signet, routes: Vec::new() }
    }

    fn drf(path: &'static str) -> Self {
        Endpoint { wire: Wire::Drf, ..Endpoint::new(path) }
    }

    fn on<F, Args>(mut self, method: Method, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.routes.push((method.clone(), web::route().method(method).to(handler)));
        self
    }

    fn get<F: Handler<A>, A: FromRequest + 'static>(self, h: F) -> Self
    where
        F::Output: Responder + 'static,
    {
        self.on(Method::GET, h)
    }

    fn post<F: Handler<A>, A: FromRequest + 'static>(self, h: F) -> Self
    where
        F::Output: Responder + 'static,
    {
        self.on(Method::POST, h)
    }

    fn put<F: Handler<A>, A: FromRequest + 'static>(self, h: F) -> Self
    where
        F::Output: Responder + 'static,
    {
        self.on(Method::PUT, h)
    }

    fn patch<F: Handler<A>, A: FromRequest + 'static>(self, h: F) -> Self
    where
        F::Output: Responder + 'static,
    {
        self.on(Method::PATCH, h)
    }

    fn delete<F: Handler<A>, A: FromRequest + 'static>(self, h: F) -> Self
    where
        F::Output: Responder + 'static,
    {
        self.on(Method::DELETE, h)
    }

    /// The actix resource; any other method answers 405 with the `Allow`
    /// header RFC 9110 requires, listing exactly the methods registered here.
    fn into_resource(self) -> Resource {
        let allow = self.routes.iter().map(|(m, _)| m.as_str()).collect::<Vec<_>>().join(", ");
        let wire = self.wire;
        let mut resource = web::resource(self.path);
        for (_, route) in self.routes {
            resource = resource.route(route);
        }
        resource.default_service(web::to(move |req: HttpRequest| {
            let allow = allow.clone();
            async move { method_not_allowed(&req, wire, &allow) }
        }))
    }
}

fn method_not_allowed(req: &HttpRequest, wire: Wire, allow: &str) -> HttpResponse {
    let mut response = match wire {
        Wire::Signet => ApiError::MethodNotAllowed.error_response(),
        Wire::Drf => {
            let compat_on = req.app_data::<web::Data<AppState>>().is_some_and(|s| {
                if req.path() == "/api-token-auth/" {
                    s.settings.compat.drf
                } else {
                    s.settings.compat.simplejwt
                }
            });
            // A disabled compat route does not exist, whatever the method.
            if !compat_on {
                return ApiError::NotFound.error_response();
            }
            HttpResponse::MethodNotAllowed()
                .json(json!({"detail": format!("Method \"{}\" not allowed.", req.method())}))
        }
    };
    if let Ok(value) = header::HeaderValue::from_str(allow) {
        response.headers_mut().insert(header::ALLOW, value);
    }
    response
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

/// `/demo` → `/demo/` (whether or not the demo is enabled).
async fn demo_redirect() -> HttpResponse {
    HttpResponse::TemporaryRedirect().insert_header((header::LOCATION, "/demo/")).finish()
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// 200 when the database answers, else 503 unavailable.
async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
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
    App::new()
        .wrap(from_fn(csrf::origin_guard))
        .wrap(from_fn(limit_header_size))
        .wrap(cors(&state.settings))
        .wrap(security_headers())
        .wrap(request_log())
        .app_data(json)
        .app_data(payload)
        .app_data(query)
        .app_data(path)
        .app_data(state.keys.verifier().clone())
        .app_data(state)
        .configure(routes)
        .default_service(web::to(not_found))
}
