//! A microservice that trusts signet's access tokens, without calling signet
//! per request: keys come from signet's JWKS (found by discovery from the
//! issuer URL), refreshed in the background; verified tokens are cached.
//! Revocation is honoured: each token's `status` is checked against signet's
//! token status lists, fetched in the background, refetched after their
//! `ttl` and at once when signet's event stream announces a change; tokens are
//! refused (fail closed) once a list could not be confirmed for
//! `VERIFY_MAX_STALE_SECS`.
//!
//! ```sh
//! SIGNET_ISSUER=http://127.0.0.1:8080 \
//!   cargo run -p signet-verify --features actix,remote --example microservice
//! ```
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `SIGNET_ISSUER` | `http://127.0.0.1:8080` | expected `iss`; discovery at `{issuer}/.well-known/openid-configuration` |
//! | `SIGNET_AUDIENCE` | `signet` | expected `aud` |
//! | `SIGNET_JWKS_URL` | (discovery) | fetch the JWKS here instead of discovering it |
//! | `VERIFY_CACHE_SIZE` | `10000` | verified tokens remembered; `0` turns the cache off |
//! | `VERIFY_REFETCH_SECS` | `10` | at most one refetch for unknown `kid`s per this many seconds |
//! | `VERIFY_STATUS_LISTS` | `true` | check tokens' `status` against signet's status lists |
//! | `VERIFY_STATUS_EVENTS` | `true` | follow signet's status-list event stream; `false`: refetch on the list's `ttl` only |
//! | `VERIFY_MAX_STALE_SECS` | `300` | refuse tokens whose list could not be confirmed for this long |
//! | `VERIFY_FAIL_OPEN` | `false` | accept them instead, logging an error (not recommended) |
//! | `SIGNET_STATUS_ORIGIN` | the JWKS URL's origin, or the issuer | where to fetch status lists and their event stream |
//! | `SIGNET_ALLOW_INSECURE_HTTP` | `false` | allow plain `http://` to hosts that are not loopback |
//! | `BIND` | `127.0.0.1:8081` | listen address |
//! | `WORKERS` | `0` (= cores) | actix workers |
//!
//! Routes: `GET /public` (no auth), `GET /user` (any valid token: its `sub`
//! and `roles`), `GET /admin` (role `admin`; 403 otherwise).
//!
//! signet's integration tests compile this very file (`tests/api/interop.rs`)
//! and serve [`routes`] with [`verifier_builder`] (plus signet's test clock),
//! so what is tested is what runs.

use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, App, HttpResponse, HttpServer};
use serde::Serialize;
use signet_verify::actix::{Authenticated, RequireRole};
use signet_verify::{
    BuildError, RefreshPolicy, Rules, StatusListPolicy, Verifier, VerifierBuilder, DEFAULT_CACHE_CAPACITY,
    DEFAULT_MAX_STALE,
};

signet_verify::roles!(Admin = "admin");

/// The microservice's settings.
#[derive(Debug, Clone)]
pub struct Config {
    pub issuer: String,
    pub audience: String,
    pub jwks_url: Option<String>,
    pub cache_size: usize,
    pub refetch_interval: Duration,
    pub status_lists: bool,
    /// Follow the status-list event stream (else poll on `ttl` alone).
    pub status_events: bool,
    pub max_stale: Duration,
    pub fail_open: bool,
    /// `None`: the origin of `jwks_url` when set (the address signet is
    /// reached at), else the issuer.
    pub status_origin: Option<String>,
    pub allow_insecure_http: bool,
    pub bind: String,
    pub workers: usize,
}

impl Config {
    /// Defaults for a signet on its default address.
    pub fn new(issuer: impl Into<String>) -> Config {
        Config {
            issuer: issuer.into(),
            audience: "signet".to_owned(),
            jwks_url: None,
            cache_size: DEFAULT_CACHE_CAPACITY,
            refetch_interval: RefreshPolicy::default().unknown_kid_interval,
            status_lists: true,
            status_events: true,
            max_stale: DEFAULT_MAX_STALE,
            fail_open: false,
            status_origin: None,
            allow_insecure_http: false,
            bind: "127.0.0.1:8081".to_owned(),
            workers: 0,
        }
    }

    /// From the environment (see the table above).
    pub fn from_env() -> Result<Config, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let number = |name: &str| -> Result<Option<u64>, String> {
            var(name).map(|v| v.parse::<u64>().map_err(|_| format!("{name}={v}: not a number"))).transpose()
        };
        let mut config = Config::new(var("SIGNET_ISSUER").unwrap_or("http://127.0.0.1:8080".into()));
        if let Some(audience) = var("SIGNET_AUDIENCE") {
            config.audience = audience;
        }
        config.jwks_url = var("SIGNET_JWKS_URL");
        if let Some(size) = number("VERIFY_CACHE_SIZE")? {
            config.cache_size = usize::try_from(size).map_err(|e| e.to_string())?;
        }
        if let Some(secs) = number("VERIFY_REFETCH_SECS")? {
            config.refetch_interval = Duration::from_secs(secs);
        }
        let flag = |name: &str| -> Result<Option<bool>, String> {
            var(name).map(|v| v.parse::<bool>().map_err(|_| format!("{name}={v}: not true/false"))).transpose()
        };
        if let Some(check) = flag("VERIFY_STATUS_LISTS")? {
            config.status_lists = check;
        }
        if let Some(events) = flag("VERIFY_STATUS_EVENTS")? {
            config.status_events = events;
        }
        if let Some(secs) = number("VERIFY_MAX_STALE_SECS")? {
            config.max_stale = Duration::from_secs(secs);
        }
        if let Some(open) = flag("VERIFY_FAIL_OPEN")? {
            config.fail_open = open;
        }
        config.status_origin = var("SIGNET_STATUS_ORIGIN");
        if let Some(allow) = flag("SIGNET_ALLOW_INSECURE_HTTP")? {
            config.allow_insecure_http = allow;
        }
        if let Some(bind) = var("BIND") {
            config.bind = bind;
        }
        if let Some(workers) = number("WORKERS")? {
            config.workers = usize::try_from(workers).map_err(|e| e.to_string())?;
        }
        Ok(config)
    }
}

/// The verifier: signet's keys by discovery (or the JWKS URL), kept fresh.
pub fn verifier(config: &Config) -> Result<Arc<Verifier>, BuildError> {
    verifier_builder(config).build()
}

/// [`verifier`] before `build()` (tests add their clock).
pub fn verifier_builder(config: &Config) -> VerifierBuilder {
    let mut builder = Verifier::builder(Rules::new(&config.issuer, &config.audience))
        .cache_capacity(config.cache_size)
        .refresh_policy(RefreshPolicy { unknown_kid_interval: config.refetch_interval, ..RefreshPolicy::default() })
        .allow_insecure_http(config.allow_insecure_http)
        .status_lists(config.status_lists)
        .status_policy(StatusListPolicy {
            max_stale: config.max_stale,
            fail_open: config.fail_open,
            events: config.status_events,
            ..StatusListPolicy::default()
        });
    let origin = config.status_origin.clone().or_else(|| config.jwks_url.as_deref().and_then(origin_of));
    if let Some(origin) = origin {
        builder = builder.status_origin(origin);
    }
    match &config.jwks_url {
        Some(url) => builder.jwks_url(url),
        None => builder.discover(),
    }
}

/// `scheme://authority` of a URL.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    Some(format!("{scheme}://{authority}"))
}

/// The routes; the app needs `web::Data<Verifier>` (see `main`).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/public", web::get().to(public))
        .route("/user", web::get().to(user))
        .route("/admin", web::get().to(admin));
}

/// Response bodies, serialized straight from borrowed fields.
#[derive(Serialize)]
struct Greeting<'a> {
    message: &'a str,
}

#[derive(Serialize)]
struct Caller<'a> {
    sub: &'a str,
    roles: &'a [String],
}

async fn public() -> HttpResponse {
    HttpResponse::Ok().json(Greeting { message: "hello, whoever you are" })
}

async fn user(user: Authenticated) -> HttpResponse {
    HttpResponse::Ok().json(Caller { sub: &user.sub, roles: &user.roles })
}

async fn admin(admin: RequireRole<Admin>) -> HttpResponse {
    HttpResponse::Ok().json(Caller { sub: &admin.sub, roles: &admin.roles })
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    env_logger::init_from_env(env_logger::Env::default().default_filter_or("info"));
    let config = Config::from_env().map_err(std::io::Error::other)?;
    let verifier = web::Data::from(verifier(&config).map_err(std::io::Error::other)?);
    log::info!(
        "microservice on http://{} trusting {} (cache {} tokens, status lists {})",
        config.bind,
        config.issuer,
        config.cache_size,
        if !config.status_lists {
            "off"
        } else if config.fail_open {
            "on, FAIL-OPEN"
        } else {
            "on"
        }
    );
    let mut server = HttpServer::new(move || App::new().app_data(verifier.clone()).configure(routes));
    if config.workers > 0 {
        server = server.workers(config.workers);
    }
    server.bind(&config.bind)?.run().await
}
