//! signet: a small JWT-issuing identity service.
//!
//! `main.rs` parses the command line and calls into this library; the tests
//! build the service through the same [`Application::build`].

pub mod accounts;
pub mod api_tokens;
pub mod audit;
pub mod cli;
pub mod clients;
pub mod clock;
pub mod config;
pub mod db;
pub mod error;
pub mod http;
pub mod keys;
pub mod lifecycle;
pub mod logging;
pub mod maintenance;
pub mod oauth;
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
use crate::clients::throttle::ClientThrottle;
use crate::clock::SharedClock;
use crate::config::Settings;
use crate::http::batches::{Batches, Rotations, SessionReads};
use crate::http::db_gate::DbGate;
use crate::http::hash_pool::HashPool;
use crate::http::metrics::Metrics;
use crate::http::rate_limit::RateLimits;
use crate::http::sqlite_writer::SqliteWriter;
use crate::http::state::AppState;
use crate::keys::service::KeyService;
use crate::lifecycle::Shutdown;
use crate::status_lists::service::StatusLists;

/// Most hot SQLite writes waiting for the writer thread; beyond, 503 at once.
const SQLITE_WRITE_QUEUE: usize = 1024;

/// Most requests of one batched kind (PostgreSQL refreshes, bearer checks'
/// session reads) waiting for a batch; beyond, they go through the pool.
const BATCH_QUEUE: usize = 1024;

type Batching = (Option<Batches<Rotations>>, Option<Batches<SessionReads>>);

/// The batching threads, each kind as configured (0 threads: none): refresh
/// rotations on PostgreSQL (SQLite's go to its writer), session reads on both.
fn start_batches(settings: &Settings, target: &db::Target) -> anyhow::Result<Batching> {
    let database = &settings.database;
    let rotations = Rotations { needs_index: settings.revocation.enabled };
    let postgres = matches!(target, db::Target::Postgres(_));
    let rotations = (postgres && database.refresh_batch_threads > 0)
        .then(|| Batches::start(rotations, target, database.refresh_batch_threads, BATCH_QUEUE))
        .transpose();
    let reads = (database.session_read_batch_threads > 0)
        .then(|| Batches::start(SessionReads, target, database.session_read_batch_threads, BATCH_QUEUE))
        .transpose();
    let context = "cannot start the batching threads";
    Ok((rotations.context(context)?, reads.context(context)?))
}

/// A bound, ready-to-run service.
pub struct Application {
    port: u16,
    server: Server,
    keys: Arc<KeyService>,
    /// The separate `/metrics` server when `metrics.bind` is set.
    metrics_server: Option<(u16, Server)>,
    shutdown: Arc<Shutdown>,
    maintenance: Option<std::thread::JoinHandle<()>>,
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
        let shutdown = Arc::new(Shutdown::default());
        let maintenance = maintenance::task::spawn(pool.clone(), settings.clone(), clock.clone(), shutdown.clone())
            .context("cannot start the maintenance thread")?;

        let db_gate =
            DbGate::new(settings.database.pool_size, Duration::from_secs(settings.database.connect_timeout_secs));
        let sqlite_writer = match &target {
            db::Target::Sqlite(_) => Some(
                SqliteWriter::start(db::ConnectionManager::new(target.clone()), SQLITE_WRITE_QUEUE)
                    .context("cannot start the SQLite writer thread")?,
            ),
            db::Target::Postgres(_) => None,
        };
        let (pg_rotations, session_reads) = start_batches(&settings, &target)?;
        let state = web::Data::new(AppState {
            settings: settings.clone(),
            pool,
            db_gate,
            sqlite_writer,
            pg_rotations,
            session_reads,
            clock,
            keys: keys.clone(),
            hasher,
            hash_pool: Arc::new(HashPool::start(settings.passwords.hash_threads, settings.passwords.hash_queue)),
            policy: PasswordPolicy {
                min_length: settings.passwords.min_length,
                min_strength: settings.passwords.min_strength,
            },
            dummy_hash: Arc::default(),
            throttle: ThrottlePolicy::from_settings(&settings.throttle),
            rate_limits: RateLimits::from_settings(&settings.throttle),
            client_throttle: ClientThrottle::from_settings(&settings.throttle),
            status_lists,
            metrics: Arc::new(Metrics::new()),
            shutdown: shutdown.clone(),
        });
        state.prepare_dummy_hash();

        let listener = TcpListener::bind(settings.server.bind)
            .with_context(|| format!("cannot listen on {}", settings.server.bind))?;
        let port = listener.local_addr()?.port();
        let metrics_server = match settings.metrics.bind_addr().filter(|_| settings.metrics.enabled) {
            Some(bind) => {
                let listener =
                    TcpListener::bind(bind).with_context(|| format!("cannot listen on {bind} (metrics.bind)"))?;
                let port = listener.local_addr()?.port();
                let state = state.clone();
                let server = HttpServer::new(move || http::metrics_app(state.clone()))
                    .workers(1)
                    .disable_signals()
                    .shutdown_timeout(settings.server.shutdown_timeout_secs)
                    .listen(listener)?
                    .run();
                Some((port, server))
            }
            None => None,
        };
        let server = HttpServer::new(move || http::app(state.clone()))
            .workers(settings.workers())
            .client_request_timeout(Duration::from_secs(settings.server.request_timeout_secs))
            .keep_alive(Duration::from_secs(settings.server.keep_alive_secs))
            // Signals are ours (`stop_on_signals`): /readyz must turn 503 first.
            .disable_signals()
            .shutdown_timeout(settings.server.shutdown_timeout_secs)
            .listen(listener)?
            .run();
        Ok(Application { port, server, keys, metrics_server, shutdown, maintenance: Some(maintenance) })
    }

    /// The key service, so tests can take rotation steps at a moment of their choosing.
    pub fn keys(&self) -> Arc<KeyService> {
        self.keys.clone()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of the separate `/metrics` server, when `metrics.bind` is set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_server.as_ref().map(|(port, _)| *port)
    }

    /// Serves until the server is stopped (by [`Application::handle`] or, after
    /// [`Application::stop_on_signals`], by a signal), then stops the
    /// background tasks.
    pub async fn run_until_stopped(mut self) -> std::io::Result<()> {
        let metrics = self.metrics_server.take().map(|(_, server)| server);
        let metrics_handle = metrics.as_ref().map(Server::handle);
        let shutdown = self.shutdown.clone();
        let main = async {
            let served = (&mut self.server).await;
            shutdown.begin();
            if let Some(handle) = metrics_handle {
                handle.stop(true).await;
            }
            served
        };
        let served = match metrics {
            Some(metrics) => futures_util::future::join(main, metrics).await.0,
            None => main.await,
        };
        if let Some(maintenance) = self.maintenance.take() {
            // It stops between two batches; joining waits for one at most.
            let _ = web::block(move || maintenance.join()).await;
        }
        log::info!("signet stopped");
        served
    }

    /// On SIGTERM or SIGINT: `/readyz` turns 503, then a graceful stop (the
    /// listener closes, requests in flight get `server.shutdown_timeout_secs`).
    /// Call from within the actix system, before `run_until_stopped`.
    pub fn stop_on_signals(&self) {
        let shutdown = self.shutdown.clone();
        let handle = self.server.handle();
        actix_web::rt::spawn(async move {
            let signal = lifecycle::stop_signal().await;
            log::info!("{signal}: stopping; /readyz answers 503, requests in flight may finish");
            shutdown.begin();
            handle.stop(true).await;
        });
    }

    /// The stopping flag a signal sets (tests set it to see `/readyz` turn 503).
    pub fn shutdown(&self) -> Arc<Shutdown> {
        self.shutdown.clone()
    }

    /// A handle to stop the server (tests use it to simulate a restart).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }
}
