//! CORS and database outages.

use diesel::{Connection, PgConnection, RunQueryDsl};
use reqwest::StatusCode;

use signet::config::Settings;

use crate::backend_tests;
use crate::helpers::{assert_problem, Backend, TestApp, TestDb};

backend_tests!(cors_answers_listed_origins_only);

async fn cors_answers_listed_origins_only(app: TestApp) {
    let app = TestApp::spawn_with(app.backend, |s: &mut Settings| {
        s.cors.allowed_origins = vec!["https://app.example".into()];
    })
    .await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/v1/auth/login"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let res = preflight("https://app.example").await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["access-control-allow-origin"], "https://app.example");
    assert_eq!(res.headers()["access-control-allow-credentials"], "true");
    assert!(res.headers().contains_key("access-control-max-age"));

    let res = preflight("https://evil.example").await.unwrap();
    assert!(res.headers().get("access-control-allow-origin").is_none());
}

/// PostgreSQL goes away under a running service: 503 with Retry-After, and
/// the service recovers by itself when the database comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_is_503_and_the_service_recovers() {
    if !crate::helpers::postgres_configured() {
        eprintln!("SIGNET_TEST_POSTGRES_URL not set: skipping the outage test");
        return;
    }
    let app = TestApp::spawn_with(Backend::Postgres, |s: &mut Settings| s.database.connect_timeout_secs = 1).await;
    app.register_ok("steady").await;
    let pair = app.login_ok("steady").await;
    let TestDb::Postgres { admin_url, name, .. } = &app.db else { unreachable!() };
    let mut admin = PgConnection::establish(admin_url).unwrap();
    let sql = |conn: &mut PgConnection, q: String| diesel::sql_query(q).execute(conn).unwrap();

    sql(&mut admin, format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"));
    sql(&mut admin, format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"));
    let res = app.get("/readyz", None).await;
    assert!(res.headers().contains_key("retry-after"));
    assert_problem(res, 503, "unavailable").await;
    let res = app.login("steady", crate::helpers::PASSWORD).await;
    assert!(res.headers().contains_key("retry-after"));
    let body = assert_problem(res, 503, "unavailable").await;
    assert!(!body.to_string().to_lowercase().contains("database \""), "no database text: {body}");
    // A refresh (batched, then through the pool) stores nothing and says 503.
    let res = app.refresh(&pair.refresh).await;
    assert!(res.headers().contains_key("retry-after"));
    assert_problem(res, 503, "unavailable").await;
    // Stateless authentication does not need the database.
    assert_eq!(app.get("/healthz", None).await.status(), StatusCode::OK);

    sql(&mut admin, format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"));
    assert_eq!(app.get("/readyz", None).await.status(), StatusCode::OK);
    app.login_ok("steady").await;
    // The refresh token refused during the outage was not spent.
    assert_eq!(app.refresh(&pair.refresh).await.status(), StatusCode::OK);
}
