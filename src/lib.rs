//! signet: a small JWT-issuing identity service.
//!
//! `main.rs` parses the command line and calls into this library; the tests
//! build the service through the same [`Application::build`].

pub mod accounts;
pub mod api_tokens;
pub mod cli;
pub mod clock;
pub mod config;
pub mod db;
pub mod error;
pub mod http;
pub mod keys;
pub mod roles;
pub mod sessions;
pub mod status_lists;
pub mod tokens;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{web, HttpServer};
use anyhow::Context;

use crate::accounts::password::{PasswordHasher, PasswordPolicy};
use crate::accounts::throttle::ThrottlePolicy;
use crate::clock::SharedClock;
use crate::config::Settings;
use crate::http::rate_limit::RateLimits;
use crate::http::state::AppState;
use crate::keys::service::KeyService;
use crate::status_lists::service::StatusLists;

/// A bound, ready-to-run service.
pub struct Application {
    port: u16,
    server: Server,
    keys: Arc<KeyService>,
}

impl Application {
    /// Connects to the database (running migrations), loads or creates the
    /// signing key, binds the listener. Errors say what failed.
    pub async fn build(settings: Settings, clock: SharedClock) -> anyhow::Result<Application> {
        let settings = Arc::new(settings);
        let target = db::Target::parse(&settings.database.url, settings.database.connect_timeout_secs);
        log::info!("database: {}", target.describe());

        let db_settings = settings.database.clone();
        let pool = web::block(move || db::connect(&db_settings))
            .await?
            .with_context(|| format!("cannot open the database ({})", target.describe()))?;

        let key_pool = pool.clone();
        let key_settings = settings.clone();
        let key_clock = clock.clone();
        let keys = web::block(move || KeyService::start(key_pool, &key_settings, key_clock))
            .await?
            .context("cannot load the signing keys")?;
        let keys = Arc::new(keys);
        keys.spawn_background();

        let status_lists = Arc::new(StatusLists::new(&settings, pool.clone(), keys.clone(), clock.clone()));
        status_lists.spawn_background();

        let hasher = PasswordHasher::new(settings.passwords.bcrypt_cost);

        let state = web::Data::new(AppState {
            settings: settings.clone(),
            pool,
            clock,
            keys: keys.clone(),
            hasher,
            policy: PasswordPolicy {
                min_length: settings.passwords.min_length,
                min_strength: settings.passwords.min_strength,
            },
            dummy_hash: Arc::default(),
            throttle: ThrottlePolicy::from_settings(&settings.throttle),
            rate_limits: RateLimits::from_settings(&settings.throttle),
            status_lists,
        });
        state.prepare_dummy_hash();

        let listener = TcpListener::bind(settings.server.bind)
            .with_context(|| format!("cannot listen on {}", settings.server.bind))?;
        let port = listener.local_addr()?.port();
        let server = HttpServer::new(move || http::app(state.clone()))
            .workers(settings.workers())
            .client_request_timeout(Duration::from_secs(settings.server.request_timeout_secs))
            .keep_alive(Duration::from_secs(settings.server.keep_alive_secs))
            .listen(listener)?
            .run();
        Ok(Application { port, server, keys })
    }

    /// The key service, so tests can take rotation steps at a moment of their choosing.
    pub fn keys(&self) -> Arc<KeyService> {
        self.keys.clone()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }

    /// A handle to stop the server (tests use it to simulate a restart).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }
}
