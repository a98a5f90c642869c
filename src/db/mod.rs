//! One binary, two backends: a diesel `MultiConnection` over PostgreSQL and
//! SQLite behind an r2d2 pool; the URL scheme picks the backend at run time.

pub mod schema;

use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::r2d2::R2D2Connection;
use diesel::{Connection, PgConnection, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use secrecy::{ExposeSecret, SecretString};

use crate::config::DatabaseSettings;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

/// Runs `$body` with `$inner` bound to the backend's own connection (the body
/// is compiled once per backend). For statements on the hot paths: diesel's
/// `MultiConnection` serialises a statement's whole SQL text each time it
/// runs it, to learn the backend's SQL, even when the backend holds the
/// statement prepared; on a SQLite refresh that was 7% of signet's CPU
/// (BENCHMARKS.md, issue 16, session 9).
#[macro_export]
macro_rules! on_backend {
    ($conn:expr, |$inner:ident| $body:expr) => {
        match $conn {
            $crate::db::DbConnection::Postgres($inner) => $body,
            $crate::db::DbConnection::Sqlite($inner) => $body,
        }
    };
}

pub type Pool = r2d2::Pool<ConnectionManager>;
pub type PooledConnection = r2d2::PooledConnection<ConnectionManager>;

/// A connection that answered within this long is handed out without the
/// check-out test: under load a connection is back in use within
/// microseconds, and the test (`SELECT 1`, a round trip on PostgreSQL) ran on
/// every request for nothing. One idle for longer is tested first, so one the
/// database dropped meanwhile (restart, outage, idle timeout) is replaced
/// before a request sees it. HikariCP skips its alive check the same way
/// (`aliveBypassWindowMs`, also 500 ms).
const RECENTLY_ANSWERED: Duration = Duration::from_millis(500);

/// A pooled connection and what the pool knows of its health: when it last
/// answered, and whether a failure on it may have been the connection's.
pub struct PoolConnection {
    conn: DbConnection,
    answered_at: Instant,
    broken: bool,
}

impl PoolConnection {
    fn new(conn: DbConnection) -> Self {
        PoolConnection { conn, answered_at: Instant::now(), broken: false }
    }

    /// The database just answered on this connection (an error the database
    /// reported, such as a constraint violation, counts as an answer).
    pub fn answered(&mut self) {
        self.answered_at = Instant::now();
    }

    /// The last use failed in a way that may be the connection's (lost
    /// socket, locked database, unexpected error): the pool drops it when
    /// it comes back instead of handing it out again.
    pub fn mark_broken(&mut self) {
        self.broken = true;
    }
}

impl Deref for PoolConnection {
    type Target = DbConnection;
    fn deref(&self) -> &DbConnection {
        &self.conn
    }
}

impl DerefMut for PoolConnection {
    fn deref_mut(&mut self) -> &mut DbConnection {
        &mut self.conn
    }
}

/// Where the data lives, parsed from `database.url`.
#[derive(Clone)]
pub enum Target {
    Sqlite(PathBuf),
    Postgres(SecretString),
}

impl Target {
    pub fn parse(url: &SecretString, connect_timeout_secs: u64) -> Target {
        let url = url.expose_secret().trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            // libpq waits for TCP forever by default; a down database must
            // become a quick 503, not a hung request.
            let with_timeout = if url.contains("connect_timeout=") {
                url.to_owned()
            } else {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}connect_timeout={connect_timeout_secs}")
            };
            Target::Postgres(SecretString::from(with_timeout))
        } else {
            let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
            Target::Sqlite(PathBuf::from(path))
        }
    }

    /// A description safe to log (no password).
    pub fn describe(&self) -> String {
        match self {
            Target::Sqlite(path) => format!("SQLite at {}", path.display()),
            Target::Postgres(url) => {
                let url = url.expose_secret();
                let host = url.rsplit_once('@').map_or(url.split("://").nth(1).unwrap_or(""), |(_, host)| host);
                let host = host.split('?').next().unwrap_or(host);
                format!("PostgreSQL at {host}")
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(transparent)]
    Connection(#[from] diesel::ConnectionError),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
    #[error("cannot create the SQLite directory or file {path}: {source}")]
    Directory { path: String, source: std::io::Error },
}

/// Our own r2d2 manager: it connects to exactly the backend the URL names and
/// returns the real error at once (diesel's derived manager would try every
/// backend and hide the cause behind a 30 s pool timeout).
pub struct ConnectionManager {
    target: Target,
}

impl ConnectionManager {
    pub fn new(target: Target) -> Self {
        ConnectionManager { target }
    }
}

impl ConnectionManager {
    /// One connection, outside any pool (start-up checks, the CLI).
    pub fn connect_to_target(&self) -> Result<DbConnection, ConnectError> {
        match &self.target {
            Target::Postgres(url) => Ok(DbConnection::Postgres(PgConnection::establish(url.expose_secret())?)),
            Target::Sqlite(path) => {
                create_private(path)?;
                let mut conn = SqliteConnection::establish(&path.to_string_lossy())?;
                // One batch_execute per setting list: a multi-statement
                // sql_query would silently run only the first statement.
                // busy_timeout first: switching to WAL may wait for a lock
                // held by another connection.
                conn.batch_execute(
                    "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; \
                     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
                )?;
                Ok(DbConnection::Sqlite(conn))
            }
        }
    }
}

impl r2d2::ManageConnection for ConnectionManager {
    type Connection = PoolConnection;
    type Error = ConnectError;

    fn connect(&self) -> Result<PoolConnection, ConnectError> {
        self.connect_to_target().map(PoolConnection::new)
    }

    /// The check-out test, skipped for a connection that answered recently.
    fn is_valid(&self, conn: &mut PoolConnection) -> Result<(), ConnectError> {
        if conn.answered_at.elapsed() < RECENTLY_ANSWERED {
            return Ok(());
        }
        conn.batch_execute("SELECT 1")?;
        conn.answered();
        Ok(())
    }

    /// On return to the pool: drop a connection marked broken or left inside
    /// a transaction diesel could not roll back.
    fn has_broken(&self, conn: &mut PoolConnection) -> bool {
        conn.broken || conn.conn.is_broken()
    }
}

/// Creates a missing database directory (0700) and file (0600) before SQLite
/// opens it, so the user table and the sealed keys are not readable by other
/// local users whatever the umask; SQLite gives its `-wal` and `-shm` files
/// the database file's mode. Existing ones are left as they are.
fn create_private(path: &Path) -> Result<(), ConnectError> {
    if path.as_os_str().is_empty() || path.as_os_str() == ":memory:" {
        return Ok(());
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir).map_err(|source| ConnectError::Directory { path: dir.display().to_string(), source })?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(ConnectError::Directory { path: path.display().to_string(), source }),
    }
}

/// Builds the pool. The first connection is made here, directly, so a wrong
/// URL or password is reported at start-up with the database's own words.
pub fn connect(settings: &DatabaseSettings) -> Result<Pool, ConnectError> {
    let target = Target::parse(&settings.url, settings.connect_timeout_secs);
    let manager = ConnectionManager::new(target);
    let mut first = manager.connect_to_target()?;
    run_migrations(&mut first)?;
    drop(first);
    let pool = r2d2::Pool::builder()
        .max_size(settings.pool_size)
        .min_idle(Some(0))
        // Checks a connection idle for a while before handing it out (see
        // RECENTLY_ANSWERED), so connections killed while the database was
        // down are replaced and the service recovers.
        .test_on_check_out(true)
        .connection_timeout(Duration::from_secs(settings.connect_timeout_secs))
        .error_handler(Box::new(LogErrors))
        .build_unchecked(manager);
    Ok(pool)
}

#[derive(Debug)]
struct LogErrors;

impl r2d2::HandleError<ConnectError> for LogErrors {
    fn handle_error(&self, error: ConnectError) {
        log::warn!("database connection failed: {error}");
    }
}

/// Brings the schema up to date with the tree of the connection's backend.
pub fn run_migrations(conn: &mut DbConnection) -> Result<Vec<String>, ConnectError> {
    let applied = match conn {
        DbConnection::Postgres(pg) => pg.run_pending_migrations(POSTGRES_MIGRATIONS).map(versions),
        DbConnection::Sqlite(sqlite) => sqlite.run_pending_migrations(SQLITE_MIGRATIONS).map(versions),
    };
    applied.map_err(|err| ConnectError::Query(diesel::result::Error::QueryBuilderError(err)))
}

fn versions(applied: Vec<diesel::migration::MigrationVersion<'_>>) -> Vec<String> {
    applied.into_iter().map(|v| v.to_string()).collect()
}
