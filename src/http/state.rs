//! What every handler shares: settings, the pool, the clock, keys and the
//! password machinery.

use std::sync::{Arc, OnceLock};

use std::net::IpAddr;

use actix_web::{web, HttpRequest};
use signet_verify::Verifier;

use super::batches::{Batches, Rotations, SessionReads};
use super::client_ip::client_ip;
use super::db_gate::DbGate;
use super::hash_pool::HashPool;
use super::rate_limit::{Endpoint, RateLimits};
use super::sqlite_writer::{Attempt, Job, SqliteWriter};
use crate::accounts::password::{PasswordHasher, PasswordPolicy};
use crate::accounts::throttle::ThrottlePolicy;
use crate::audit::Actor;
use crate::clients::throttle::ClientThrottle;
use crate::clock::SharedClock;
use crate::config::Settings;
use crate::db::{DbConnection, Pool};
use crate::error::ApiError;
use crate::http::metrics::Metrics;
use crate::keys::service::KeyService;
use crate::lifecycle::Shutdown;
use crate::status_lists::service::StatusLists;

/// Whether database work is one of the hot writes: on SQLite those go to the
/// batching writer thread instead of the pool.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Access {
    Read,
    Write,
}

/// An error of database work that may be the connection's fault: the pool
/// then drops the connection instead of handing it out again.
pub trait ConnectionFault {
    fn may_be_the_connection(&self) -> bool;
}

impl ConnectionFault for ApiError {
    fn may_be_the_connection(&self) -> bool {
        matches!(self, ApiError::Unavailable(_) | ApiError::Internal(_))
    }
}

pub struct AppState {
    pub settings: Arc<Settings>,
    pub pool: Pool,
    /// Where database work waits for a connection.
    pub db_gate: DbGate,
    /// SQLite: the thread that batches the hot writes; None on PostgreSQL.
    pub sqlite_writer: Option<SqliteWriter>,
    /// PostgreSQL: the threads that batch refreshes (None on SQLite or when
    /// `database.refresh_batch_threads` is 0).
    pub pg_rotations: Option<Batches<Rotations>>,
    /// The threads that batch bearer checks' session reads, both backends
    /// (None when `database.session_read_batch_threads` is 0).
    pub session_reads: Option<Batches<SessionReads>>,
    pub clock: SharedClock,
    pub keys: Arc<KeyService>,
    pub hasher: PasswordHasher,
    /// Where bcrypt runs: bounded, below the request workers' priority.
    pub hash_pool: Arc<HashPool>,
    pub policy: PasswordPolicy,
    /// A real hash of a throw-away password: unknown users are checked against
    /// it so their login costs the same bcrypt time as a wrong password.
    /// Computed in the background at start-up so the service answers at once.
    pub dummy_hash: Arc<OnceLock<String>>,
    pub throttle: ThrottlePolicy,
    /// None when `throttle.enabled` is off.
    pub rate_limits: Option<RateLimits>,
    /// Failed client authentications per IP and per client id; None when
    /// `throttle.enabled` is off.
    pub client_throttle: Option<ClientThrottle>,
    /// Signed status lists, their version poll and event stream.
    pub status_lists: Arc<StatusLists>,
    pub metrics: Arc<Metrics>,
    /// Set on SIGTERM/SIGINT: `/readyz` answers 503 from then on.
    pub shutdown: Arc<Shutdown>,
}

impl AppState {
    /// The same verifier the `Caller` extractor uses (one path).
    pub fn verifier(&self) -> &Verifier {
        self.keys.verifier()
    }

    /// The client's IP (peer, or X-Forwarded-For from a trusted proxy).
    pub fn client_ip(&self, req: &HttpRequest) -> Option<IpAddr> {
        client_ip(req, &self.settings.throttle.trusted_proxies)
    }

    /// Who is asking, for the audit trail: `user_id` (None before a login)
    /// and the client IP, as plain values.
    pub fn actor(&self, req: &HttpRequest, user_id: Option<&str>) -> Actor {
        let ip = self.client_ip(req).map(|ip| ip.to_string());
        Actor { user_id: user_id.map(str::to_owned), ip }
    }

    /// 429 when the client IP has spent its budget for `endpoint`.
    pub fn rate_limit(&self, endpoint: Endpoint, req: &HttpRequest) -> Result<(), ApiError> {
        match (&self.rate_limits, self.client_ip(req)) {
            (Some(limits), Some(ip)) => limits.check(endpoint, ip),
            _ => Ok(()),
        }
    }

    /// Runs database work that reads (or writes rarely) on the blocking
    /// pool, never on an async worker.
    pub async fn db<T, F>(&self, work: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        self.db_as(Access::Read, work).await
    }

    /// [`AppState::db`] for the write paths taken on every login, refresh
    /// and logout: on SQLite they go to the batching writer thread.
    pub async fn db_write<T, F>(&self, work: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        self.db_as(Access::Write, work).await
    }

    /// [`AppState::db`] for work with its own error type (the OAuth routes').
    /// The work waits its turn in the gate first, without a thread. The
    /// outcome tells the pool about the connection: an answer spares it the
    /// next check-out test, a failure that may be the connection's drops it.
    pub async fn db_as<T, E, F>(&self, access: Access, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: ConnectionFault + From<ApiError> + Send + 'static,
    {
        if let (Access::Write, Some(writer)) = (access, &self.sqlite_writer) {
            return batched_write(writer, work).await;
        }
        let _turn = self.db_gate.turn().await.map_err(E::from)?;
        let pool = self.pool.clone();
        let outcome = web::block(move || {
            let mut conn = pool.get().map_err(ApiError::from)?;
            let result = work(&mut conn);
            match &result {
                Err(err) if err.may_be_the_connection() => conn.mark_broken(),
                _ => conn.answered(),
            }
            result
        })
        .await;
        outcome.map_err(|blocking| E::from(ApiError::from(blocking)))?
    }

    /// Starts computing the dummy hash on a background thread.
    pub fn prepare_dummy_hash(&self) {
        let (cell, hasher) = (self.dummy_hash.clone(), self.hasher);
        std::thread::spawn(move || {
            dummy_hash(&cell, hasher);
        });
    }

    /// Runs bcrypt (or other CPU-heavy work) on the blocking pool.
    pub async fn blocking<T, F>(&self, work: F) -> Result<T, ApiError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        Ok(web::block(work).await?)
    }
}

/// Hands `work` to the SQLite writer thread and waits for its answer, which
/// comes once the batch it ran in has committed.
async fn batched_write<T, E, F>(writer: &SqliteWriter, work: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<ApiError> + Send + 'static,
{
    let (sender, answer) = tokio::sync::oneshot::channel::<Result<T, E>>();
    let job: Job = Box::new(move |attempt| {
        let result = match attempt {
            Attempt::Run(conn) => work(conn),
            Attempt::Refused(err) => Err(E::from(err)),
        };
        Box::new(move |lost: Option<ApiError>| {
            let _ = sender.send(match lost {
                None => result,
                Some(err) => Err(E::from(err)),
            });
        })
    });
    writer.submit(job).map_err(E::from)?;
    // No answer at all: the work panicked (the writer rolled its batch back).
    answer.await.unwrap_or_else(|_| Err(E::from(ApiError::internal(anyhow::anyhow!("a database write panicked")))))
}

/// The dummy hash, computing it if the background thread has not yet (blocks:
/// call from a blocking thread).
pub fn dummy_hash(cell: &OnceLock<String>, hasher: PasswordHasher) -> &str {
    cell.get_or_init(|| {
        hasher.hash("signet dummy password for unknown users").unwrap_or_else(|err| {
            // bcrypt only fails on a bad cost, which config validation rules out.
            log::error!("dummy hash failed: {err}");
            String::new()
        })
    })
}
