//! `TestApp`: the real service on port 0 with a fresh database per test (a
//! temp SQLite file, or a fresh PostgreSQL database when
//! `SIGNET_TEST_POSTGRES_URL` is set) and a manual clock.

use std::sync::Arc;

use diesel::{Connection, PgConnection, RunQueryDsl};
use reqwest::{Client, Response, StatusCode};
use serde_json::{json, Value};
use signet::clock::ManualClock;
use signet::config::Settings;
use signet::db::{DbConnection, Pool};
use signet::Application;

pub const PASSWORD: &str = "violet-canyon-73-drift";
/// base64 of 32 bytes: tests never write a master key file.
pub const TEST_MASTER_KEY: &str = "c2lnbmV0LXRlc3QtbWFzdGVyLWtleS0zMi1ieXRlcyE=";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs one async test body against both backends: `mod name { sqlite, postgres }`.
/// Without `SIGNET_TEST_POSTGRES_URL` the postgres variant says so and passes;
/// `.ci/run` always sets it, so CI never skips it.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let app = $crate::helpers::TestApp::spawn($crate::helpers::Backend::Sqlite).await;
                    super::$name(app).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if !$crate::helpers::postgres_configured() {
                        eprintln!("SIGNET_TEST_POSTGRES_URL not set: skipping the PostgreSQL run");
                        return;
                    }
                    let app = $crate::helpers::TestApp::spawn($crate::helpers::Backend::Postgres).await;
                    super::$name(app).await;
                }
            }
        )*
    };
}

pub fn postgres_configured() -> bool {
    std::env::var("SIGNET_TEST_POSTGRES_URL").is_ok_and(|v| !v.is_empty())
}

/// The database a test owns; a PostgreSQL one is dropped with it.
pub enum TestDb {
    Sqlite {
        _dir: tempfile::TempDir,
        url: String,
    },
    Postgres {
        admin_url: String,
        name: String,
        url: String,
    },
    /// Another app's database (a second instance); dropped by its owner.
    Shared {
        url: String,
    },
}

impl TestDb {
    pub fn create(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("signet.db").display());
                TestDb::Sqlite { _dir: dir, url }
            }
            Backend::Postgres => {
                let admin_url = std::env::var("SIGNET_TEST_POSTGRES_URL").expect("SIGNET_TEST_POSTGRES_URL");
                let name = format!("signet_test_{}", uuid::Uuid::new_v4().simple());
                let mut conn = PgConnection::establish(&admin_url).expect("PostgreSQL reachable");
                diesel::sql_query(format!("CREATE DATABASE {name}")).execute(&mut conn).expect("create database");
                let (base, _) = admin_url.rsplit_once('/').expect("URL with a database name");
                let url = format!("{base}/{name}");
                TestDb::Postgres { admin_url, name, url }
            }
        }
    }

    pub fn url(&self) -> &str {
        match self {
            TestDb::Sqlite { url, .. } | TestDb::Postgres { url, .. } | TestDb::Shared { url } => url,
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let TestDb::Postgres { admin_url, name, .. } = self {
            if let Ok(mut conn) = PgConnection::establish(admin_url) {
                let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn);
            }
        }
    }
}

/// A token pair from a login or a refresh, typed.
#[derive(Debug, Clone)]
pub struct LoggedIn {
    pub access: String,
    pub refresh: String,
    /// The access token's `sub`.
    pub user_id: String,
    /// The whole response body, for tests about its shape.
    pub body: Value,
}

impl LoggedIn {
    /// From a token-pair response body (`access_token`, `refresh_token`).
    pub fn from_pair(body: Value) -> LoggedIn {
        let access = body["access_token"].as_str().expect("access_token").to_owned();
        let refresh = body["refresh_token"].as_str().expect("refresh_token").to_owned();
        let user_id = claims_of(&access)["sub"].as_str().expect("sub").to_owned();
        LoggedIn { access, refresh, user_id, body }
    }
}

/// The payload of a JWT, unverified.
pub fn claims_of(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).expect("base64url"))
        .expect("JSON claims")
}

/// Changes to the test settings, made on the typed [`Settings`].
pub trait Configure: FnOnce(&mut Settings) {}
impl<F: FnOnce(&mut Settings)> Configure for F {}

/// No changes.
pub fn defaults(_: &mut Settings) {}

pub struct TestApp {
    pub address: String,
    pub client: Client,
    pub clock: Arc<ManualClock>,
    pub settings: Settings,
    pub backend: Backend,
    pub handle: actix_web::dev::ServerHandle,
    pub keys: Arc<signet::keys::service::KeyService>,
    /// The separate `/metrics` port when `metrics.bind` is set.
    pub metrics_port: Option<u16>,
    // Dropped last: the server must not outlive its database.
    pub db: TestDb,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        Self::spawn_with(backend, defaults).await
    }

    /// Spawns with settings changed by `configure` over the test defaults.
    pub async fn spawn_with(backend: Backend, configure: impl Configure) -> TestApp {
        let db = TestDb::create(backend);
        let clock = Arc::new(ManualClock::new());
        Self::start(backend, db, clock, configure).await
    }

    /// Spawns on an existing database (e.g. one prepared by the CLI).
    pub async fn spawn_on(backend: Backend, db: TestDb) -> TestApp {
        Self::start(backend, db, Arc::new(ManualClock::new()), defaults).await
    }

    async fn start(backend: Backend, db: TestDb, clock: Arc<ManualClock>, configure: impl Configure) -> TestApp {
        capture_logs();
        let settings = test_settings(db.url(), configure);
        let app = Application::build(settings.clone(), clock.clone()).await.expect("app builds");
        let address = format!("http://127.0.0.1:{}", app.port());
        let handle = app.handle();
        let keys = app.keys();
        let metrics_port = app.metrics_port();
        tokio::spawn(app.run_until_stopped());
        let client = Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        TestApp { address, client, clock, settings, backend, handle, keys, metrics_port, db }
    }

    /// Stops the server and starts a new one on the same database and clock.
    pub async fn restart(self) -> TestApp {
        self.restart_with(defaults).await
    }

    /// Restarts with settings changed by `configure` over the test defaults.
    pub async fn restart_with(self, configure: impl Configure) -> TestApp {
        let TestApp { handle, db, clock, backend, .. } = self;
        handle.stop(true).await;
        Self::start(backend, db, clock, configure).await
    }

    /// Stops the server and tries to start one with other settings: the error
    /// of a start-up that fails.
    pub async fn restart_failing(self, configure: impl Configure) -> String {
        let TestApp { handle, db, .. } = self;
        handle.stop(true).await;
        match Application::build(test_settings(db.url(), configure), Arc::new(ManualClock::new())).await {
            Ok(_) => panic!("start-up should have failed"),
            Err(err) => format!("{err:#}"),
        }
    }

    /// A second instance on the same database and clock (a cluster of two).
    pub async fn spawn_peer(&self, configure: impl Configure) -> TestApp {
        let db = TestDb::Shared { url: self.db.url().to_owned() };
        Self::start(self.backend, db, self.clock.clone(), configure).await
    }

    /// One rotation step and reload, now (the background one waits an hour in tests).
    pub async fn tick(&self) {
        let keys = self.keys.clone();
        tokio::task::spawn_blocking(move || keys.tick()).await.unwrap().expect("key tick");
    }

    /// A direct pool on the test's database, for checks the API cannot make.
    pub fn pool(&self) -> Pool {
        signet::db::connect(&self.settings.database).expect("pool")
    }

    pub fn conn(&self) -> r2d2::PooledConnection<signet::db::ConnectionManager> {
        self.pool().get().expect("connection")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.client.post(self.url(path)).json(body).send().await.expect("request")
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut req = self.client.get(self.url(path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        req.send().await.expect("request")
    }

    pub async fn register(&self, username: &str, password: &str) -> Response {
        self.post_json("/v1/auth/register", &json!({"username": username, "password": password})).await
    }

    /// Registers `username` with [`PASSWORD`] and returns the user object.
    pub async fn register_ok(&self, username: &str) -> Value {
        let res = self.register(username, PASSWORD).await;
        assert_eq!(res.status(), StatusCode::CREATED, "register {username}");
        res.json().await.expect("user json")
    }

    pub async fn login(&self, username: &str, password: &str) -> Response {
        self.post_json("/v1/auth/login", &json!({"username": username, "password": password})).await
    }

    /// Logs in with [`PASSWORD`] and returns the token pair.
    pub async fn login_ok(&self, username: &str) -> LoggedIn {
        let res = self.login(username, PASSWORD).await;
        assert_eq!(res.status(), StatusCode::OK, "login {username}");
        LoggedIn::from_pair(res.json().await.expect("token pair"))
    }

    pub async fn refresh(&self, refresh_token: &str) -> Response {
        self.post_json("/v1/auth/refresh", &json!({"refresh_token": refresh_token})).await
    }

    /// A user with roles `user` and `admin`, logged in: returns its access token.
    pub async fn admin_token(&self, username: &str) -> String {
        let user = self.register_ok(username).await;
        let id = user["id"].as_str().expect("id").to_owned();
        self.set_roles_directly(&id, &["admin", "user"]);
        self.login_ok(username).await.access
    }

    /// PATCHes `disabled: true` as an admin; asserts it worked.
    pub async fn disable_user(&self, admin_token: &str, user_id: &str) {
        let res = self
            .client
            .patch(self.url(&format!("/v1/admin/users/{user_id}")))
            .bearer_auth(admin_token)
            .json(&json!({"disabled": true}))
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), StatusCode::OK, "disable {user_id}");
    }

    pub fn set_roles_directly(&self, user_id: &str, roles: &[&str]) {
        let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
        let mut conn = self.conn();
        signet::accounts::model::set_roles(&mut conn, user_id, &roles, self.clock_now()).expect("set roles");
    }

    /// The service's own signing key (decrypted from the database with the
    /// test master key) and its kid: lets attack tests make tokens that are
    /// validly signed but wrong in every other way.
    pub fn real_signing_key(&self) -> (jsonwebtoken::EncodingKey, String) {
        use base64::Engine;
        let master = base64::engine::general_purpose::STANDARD.decode(TEST_MASTER_KEY).unwrap();
        let master = signet::keys::master::MasterKey::from_bytes(&master).unwrap();
        let mut conn = self.conn();
        let row = signet::keys::model::all(&mut conn).unwrap().into_iter().find(|k| k.state == "active").unwrap();
        let pkcs8 = master.open(&row.kid, &row.private_key).unwrap();
        let key = signet::keys::algorithms::encoding_key(row.algorithm.parse().unwrap(), &pkcs8).unwrap();
        (key, row.kid)
    }

    pub fn clock_now(&self) -> chrono::NaiveDateTime {
        use signet::clock::Clock;
        self.clock.now_db()
    }
}

/// The test defaults (port 0, one worker, cheap bcrypt, a fixed master key,
/// a generous per-IP budget), changed by `configure`, then checked like a
/// configuration file would be.
pub fn test_settings(db_url: &str, configure: impl Configure) -> Settings {
    let base = format!(
        "[server]\nbind = \"127.0.0.1:0\"\nworkers = 1\n\
         [database]\nurl = \"{db_url}\"\npool_size = 4\n\
         [passwords]\nbcrypt_cost = 4\n\
         [keys]\nmaster_key = \"{TEST_MASTER_KEY}\"\nreload_secs = 3600\n\
         [throttle]\nper_ip_burst = 1000\n"
    );
    let mut settings = Settings::from_toml(&base).expect("test settings");
    configure(&mut settings);
    settings.validate().expect("test settings");
    settings
}

/// Asserts a problem document with `status` and `code`; returns its body.
/// Every log record of this test process (all tests), from the first spawn on.
pub fn captured_logs() -> String {
    LOG.lock().unwrap().clone()
}

static LOG: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());

struct CaptureLogger;

impl log::Log for CaptureLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Debug
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            let line = format!("{} {} {}\n", record.level(), record.target(), record.args());
            LOG.lock().unwrap().push_str(&line);
        }
    }

    fn flush(&self) {}
}

fn capture_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if log::set_logger(&CaptureLogger).is_ok() {
            log::set_max_level(log::LevelFilter::Debug);
        }
    });
}

pub async fn assert_problem(res: Response, status: u16, code: &str) -> Value {
    assert_eq!(res.status().as_u16(), status, "status for {code}");
    let content_type = res.headers().get("content-type").map(|v| v.to_str().unwrap_or("").to_owned());
    assert_eq!(content_type.as_deref(), Some("application/problem+json"));
    let body: Value = res.json().await.expect("problem json");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status);
    assert!(body["type"].is_string() && body["title"].is_string() && body["detail"].is_string());
    body
}

pub fn www_authenticate(res: &Response) -> String {
    res.headers().get("www-authenticate").map(|v| v.to_str().unwrap_or("").to_owned()).unwrap_or_default()
}

#[allow(dead_code)]
pub fn raw_conn(url: &str) -> DbConnection {
    let target = signet::db::Target::parse(&secrecy::SecretString::from(url.to_owned()), 3);
    signet::db::ConnectionManager::new(target).connect_to_target().expect("connect")
}
