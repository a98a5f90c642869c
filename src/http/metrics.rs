//! Prometheus metrics of the HTTP face (API.md "Operations").
//!
//! One middleware counts every request by route *pattern* (never the raw
//! path, whose ids would make a series per user), method and status, and
//! times it per route. Domain outcomes are counted where the face learns
//! them, without the domains knowing about metrics:
//! - the shared login/refresh flows (`sessions::flows`) attach an [`Event`]
//!   to the request ([`record`]), which the middleware counts after the
//!   response; the compatibility routes go through the same flows;
//! - revocations and API tokens are known from the route and a 2xx status
//!   ([`route_events`]).
//!
//! Pool, signing-key and build gauges are read at scrape time.

use std::sync::atomic::AtomicU64;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use prometheus_client::encoding::prometheus_text;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use super::state::AppState;
use crate::error::ApiError;
use crate::keys::model::{self as key_rows, STATE_ACTIVE};

/// Route label of requests no route matched (404s from the default service).
pub const UNMATCHED: &str = "unmatched";
/// Route label of requests a middleware refused before routing (431, CSRF).
pub const UNROUTED: &str = "unrouted";

/// Latency buckets, seconds: from a cached token check to a slow bcrypt.
const DURATION_BUCKETS: [f64; 14] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

/// Every metric family signet exports, and the registry that encodes them.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<RouteLabels, Histogram, fn() -> Histogram>,
    logins: Family<OutcomeLabels, Counter>,
    refreshes: Family<OutcomeLabels, Counter>,
    lockouts: Counter,
    revocations: Family<ReasonLabels, Counter>,
    tokens_issued: Family<KindLabels, Counter>,
    pool: Family<StateLabels, Gauge>,
    key_age: Gauge<f64, AtomicU64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "signet_http_requests",
            "HTTP requests by route pattern, method and status",
            requests.clone(),
        );
        let durations = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(duration_histogram);
        registry.register(
            "signet_http_request_duration_seconds",
            "Time from request to response head, by route pattern",
            durations.clone(),
        );
        let logins = Family::<OutcomeLabels, Counter>::default();
        registry.register("signet_logins", "Password logins by outcome", logins.clone());
        let refreshes = Family::<OutcomeLabels, Counter>::default();
        registry.register("signet_refreshes", "Refresh-token exchanges by outcome", refreshes.clone());
        let lockouts = Counter::default();
        registry.register("signet_lockouts", "Usernames locked out after repeated failed logins", lockouts.clone());
        let revocations = Family::<ReasonLabels, Counter>::default();
        registry.register("signet_revocations", "Revocations (sessions, API tokens) by reason", revocations.clone());
        let tokens_issued = Family::<KindLabels, Counter>::default();
        registry.register("signet_tokens_issued", "Tokens issued by kind", tokens_issued.clone());
        let pool = Family::<StateLabels, Gauge>::default();
        registry.register("signet_db_pool_connections", "Database pool connections by state", pool.clone());
        let key_age = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "signet_signing_key_age_seconds",
            "Seconds since the active signing key started signing",
            key_age.clone(),
        );
        registry.register(
            "signet_build",
            "Build of this signet binary",
            Info::new([("version", env!("CARGO_PKG_VERSION"))]),
        );
        // Known outcomes start at 0, so rates and alerts work before the first event.
        for outcome in ["success", "invalid_credentials", "locked", "disabled"] {
            drop(logins.get_or_create(&OutcomeLabels { outcome }));
        }
        for outcome in ["rotated", "grace", "reused", "invalid"] {
            drop(refreshes.get_or_create(&OutcomeLabels { outcome }));
        }
        Metrics {
            registry,
            requests,
            durations,
            logins,
            refreshes,
            lockouts,
            revocations,
            tokens_issued,
            pool,
            key_age,
        }
    }

    /// Counts one finished request and the events attached to it.
    fn observe(&self, route: String, method: &Method, status: StatusCode, elapsed_secs: f64, events: &[Event]) {
        let method = method_label(method);
        for event in route_events(&route, method, status).iter().chain(events) {
            self.count(*event);
        }
        self.durations.get_or_create(&RouteLabels { route: route.clone() }).observe(elapsed_secs);
        self.requests.get_or_create(&RequestLabels { route, method, status: status.as_u16() }).inc();
    }

    fn count(&self, event: Event) {
        match event {
            Event::Login(outcome) => {
                self.logins.get_or_create(&OutcomeLabels { outcome: outcome.label() }).inc();
            }
            Event::Refresh(outcome) => {
                self.refreshes.get_or_create(&OutcomeLabels { outcome: outcome.label() }).inc();
            }
            Event::Lockout => {
                self.lockouts.inc();
            }
            Event::Revoked(reason) => {
                self.revocations.get_or_create(&ReasonLabels { reason }).inc();
            }
            Event::Issued(kind) => {
                self.tokens_issued.get_or_create(&KindLabels { kind }).inc();
            }
        }
    }

    /// The Prometheus text exposition (version 0.0.4).
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(8192);
        // Writing into a String cannot fail.
        let _ = prometheus_text::encode(&mut out, &self.registry);
        out
    }
}

/// A domain outcome the HTTP face learned while serving a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    Login(LoginOutcome),
    Refresh(RefreshOutcome),
    Lockout,
    Revoked(&'static str),
    Issued(&'static str),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginOutcome {
    Success,
    InvalidCredentials,
    Locked,
    Disabled,
}

impl LoginOutcome {
    fn label(self) -> &'static str {
        match self {
            LoginOutcome::Success => "success",
            LoginOutcome::InvalidCredentials => "invalid_credentials",
            LoginOutcome::Locked => "locked",
            LoginOutcome::Disabled => "disabled",
        }
    }

    /// The outcome of a failed password check; `None` for failures that are
    /// not a verdict on the credentials (database down, malformed input).
    pub fn of_error(err: &ApiError) -> Option<LoginOutcome> {
        match err {
            ApiError::InvalidCredentials => Some(LoginOutcome::InvalidCredentials),
            // A locked-out username, or a client IP over its login budget:
            // either way the attempt was refused unchecked.
            ApiError::TooManyRequests { .. } => Some(LoginOutcome::Locked),
            ApiError::AccountDisabled => Some(LoginOutcome::Disabled),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefreshOutcome {
    Rotated,
    Grace,
    Reused,
    Invalid,
}

impl RefreshOutcome {
    fn label(self) -> &'static str {
        match self {
            RefreshOutcome::Rotated => "rotated",
            RefreshOutcome::Grace => "grace",
            RefreshOutcome::Reused => "reused",
            RefreshOutcome::Invalid => "invalid",
        }
    }
}

/// The events attached to one request.
#[derive(Default)]
struct Events(Vec<Event>);

/// Attaches a domain outcome to the request, for the metrics middleware.
pub fn record(req: &HttpRequest, event: Event) {
    let mut extensions = req.extensions_mut();
    match extensions.get_mut::<Events>() {
        Some(events) => events.0.push(event),
        None => {
            extensions.insert(Events(vec![event]));
        }
    }
}

/// Outcomes that follow from the route alone once it answered 2xx.
fn route_events(route: &str, method: &'static str, status: StatusCode) -> &'static [Event] {
    if !status.is_success() {
        return &[];
    }
    match (method, route) {
        ("POST", "/v1/auth/logout") | ("POST", "/api/token/blacklist/") => &[Event::Revoked("logout")],
        ("POST", "/v1/auth/logout-all") => &[Event::Revoked("logout_all")],
        ("DELETE", "/v1/auth/sessions/{id}") => &[Event::Revoked("deleted_by_user")],
        ("POST", "/v1/auth/password") => &[Event::Revoked("password_changed")],
        ("DELETE", "/v1/admin/users/{id}") => &[Event::Revoked("user_deleted")],
        ("DELETE", "/v1/auth/api-tokens/{id}") | ("DELETE", "/v1/admin/users/{id}/api-tokens/{token_id}") => {
            &[Event::Revoked("api_token")]
        }
        ("POST", "/v1/auth/api-tokens")
        | ("POST", "/v1/admin/users/{id}/api-tokens")
        | ("POST", "/api-token-auth/") => &[Event::Issued("api_token")],
        ("POST", "/v1/auth/token-exchange") => &[Event::Issued("access")],
        _ => &[],
    }
}

/// Static labels for the methods signet serves; anything else is `other`, so
/// a client cannot mint series with made-up methods.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The middleware: times the request, then counts it and its events.
pub async fn track(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let Some(metrics) = req.app_data::<web::Data<AppState>>().map(|s| s.metrics.clone()) else {
        return next.call(req).await;
    };
    let method = req.method().clone();
    let started = Instant::now();
    let result = next.call(req).await;
    let elapsed = started.elapsed().as_secs_f64();
    match &result {
        Ok(res) => {
            let request = res.request();
            let route = request.match_pattern().unwrap_or_else(|| UNMATCHED.to_owned());
            let extensions = request.extensions();
            let events = extensions.get::<Events>().map_or(&[][..], |e| &e.0[..]);
            metrics.observe(route, &method, res.status(), elapsed, events);
        }
        // An inner middleware (header size, CSRF, CORS) refused the request
        // before routing, and kept it: no route to name.
        Err(err) => {
            metrics.observe(UNROUTED.to_owned(), &method, err.as_response_error().status_code(), elapsed, &[]);
        }
    }
    result
}

/// Registers `GET /metrics` (on the main app unless `metrics.bind` moves it).
/// Where the Prometheus text is served.
pub const PATH: &str = "/metrics";

pub fn route(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource(PATH).route(web::get().to(scrape)));
}

/// GET /metrics: refreshes the scrape-time gauges, then encodes everything.
async fn scrape(state: web::Data<AppState>) -> HttpResponse {
    let metrics = &state.metrics;
    let pool = state.pool.state();
    let in_use = pool.connections.saturating_sub(pool.idle_connections);
    metrics.pool.get_or_create(&StateLabels { state: "idle" }).set(i64::from(pool.idle_connections));
    metrics.pool.get_or_create(&StateLabels { state: "in_use" }).set(i64::from(in_use));

    let now = state.clock.now_db();
    let started = state
        .db(move |conn| {
            let rows = key_rows::usable(conn, now)?;
            Ok(rows.into_iter().find(|r| r.state == STATE_ACTIVE).map(|r| r.activated_at.unwrap_or(r.created_at)))
        })
        .await;
    // No active key, or the database is away: keep the last value.
    if let Ok(Some(at)) = started {
        metrics.key_age.set((now - at).num_milliseconds().max(0) as f64 / 1000.0);
    }
    HttpResponse::Ok().content_type(prometheus_text::CONTENT_TYPE).body(metrics.encode())
}
