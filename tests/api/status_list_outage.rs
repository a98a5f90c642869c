//! Token status lists while the database is down (issue 13, "Bad input and
//! faults"): lists already built keep being served from memory until their
//! `exp`; a revocation fails with 503 and is not silently lost (the token stays
//! valid and its bit stays 0 until the retried revocation succeeds).

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use chrono::TimeDelta;
use diesel::{Connection, PgConnection, RunQueryDsl};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::backend_tests;
use crate::helpers::{assert_problem, raw_conn, Backend, TestApp, TestDb};
use signet::clock::Clock;
use signet::config::Settings;

backend_tests!(database_down_serves_built_lists_until_exp_and_refuses_revocations);

/// Takes the test's database away from the app: on PostgreSQL it refuses new
/// connections and ends the open ones; on SQLite (one file, no server) another
/// connection holds the write lock, so every write times out as "database is
/// locked" (reads still work there: WAL readers never wait for a writer).
enum Outage {
    Postgres { admin: PgConnection, name: String },
    Sqlite(signet::db::DbConnection),
}

impl Outage {
    fn start(app: &TestApp) -> Outage {
        match &app.db {
            TestDb::Postgres { admin_url, name, .. } => {
                let mut admin = PgConnection::establish(admin_url).unwrap();
                sql(&mut admin, &format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"));
                sql(
                    &mut admin,
                    &format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"),
                );
                Outage::Postgres { admin, name: name.clone() }
            }
            _ => {
                let mut conn = raw_conn(app.db.url());
                diesel::sql_query("BEGIN EXCLUSIVE").execute(&mut conn).unwrap();
                Outage::Sqlite(conn)
            }
        }
    }

    fn end(self) {
        match self {
            Outage::Postgres { mut admin, name } => {
                sql(&mut admin, &format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
            }
            Outage::Sqlite(mut conn) => {
                diesel::sql_query("COMMIT").execute(&mut conn).unwrap();
            }
        }
    }
}

fn sql(conn: &mut PgConnection, q: &str) {
    diesel::sql_query(q).execute(conn).unwrap();
}

fn claims_of(jwt: &str) -> Value {
    serde_json::from_slice(&B64.decode(jwt.split('.').nth(1).unwrap()).unwrap()).unwrap()
}

/// GET of the list: (status, ETag, claims when 200).
async fn fetch(app: &TestApp, path: &str) -> (StatusCode, Option<String>, Option<Value>) {
    let res = app.get(path, None).await;
    let status = res.status();
    let etag = res.headers().get("etag").map(|v| v.to_str().unwrap().to_owned());
    let claims = (status == StatusCode::OK).then_some(claims_of(&res.text().await.unwrap()));
    (status, etag, claims)
}

/// The token's bit in list claims (LSB first, as the draft lays it out).
fn bit(claims: &Value, idx: u64) -> u8 {
    use std::io::Read;
    let compressed = B64.decode(claims["status_list"]["lst"].as_str().unwrap()).unwrap();
    let mut bytes = Vec::new();
    flate2::read::ZlibDecoder::new(&compressed[..]).read_to_end(&mut bytes).unwrap();
    (bytes[(idx / 8) as usize] >> (idx % 8)) & 1
}

async fn database_down_serves_built_lists_until_exp_and_refuses_revocations(app: TestApp) {
    // Requests give up on the pool after 5 s instead of the default (1 s is
    // too short for start-up on a busy machine).
    let app = TestApp::spawn_with(app.backend, |s: &mut Settings| s.database.connect_timeout_secs = 5).await;
    app.register_ok("dora").await;
    let pair = app.login_ok("dora").await.body;
    let token = pair["access_token"].as_str().unwrap().to_owned();
    let status = &claims_of(&token)["status"]["status_list"];
    let (uri, idx) = (status["uri"].as_str().unwrap(), status["idx"].as_u64().unwrap());
    let path = format!("/{}", uri.strip_prefix(&format!("{}/", app.settings.tokens.issuer)).unwrap());
    let (code, etag, _) = fetch(&app, &path).await;
    assert_eq!(code, StatusCode::OK);

    // Down: the revocation is refused, not dropped, and the list is still served.
    let outage = Outage::start(&app);
    let res = app.post_json("/v1/auth/logout", &json!({"refresh_token": pair["refresh_token"]})).await;
    assert!(res.headers().contains_key("retry-after"));
    assert_problem(res, 503, "unavailable").await;
    let (code, down_etag, claims) = fetch(&app, &path).await;
    assert_eq!((code, &down_etag), (StatusCode::OK, &etag), "served from memory while down");
    assert_eq!(bit(&claims.unwrap(), idx), 0);
    outage.end();

    // Back: the session was never revoked, so the client's retry does it now.
    assert_eq!(app.get("/v1/auth/me", Some(&token)).await.status(), StatusCode::OK);
    let res = app.post_json("/v1/auth/logout", &json!({"refresh_token": pair["refresh_token"]})).await;
    assert!(res.status().is_success(), "retried logout: {}", res.status());
    let start = std::time::Instant::now();
    let (etag, exp) = loop {
        let (code, etag, claims) = fetch(&app, &path).await;
        assert_eq!(code, StatusCode::OK);
        let claims = claims.unwrap();
        if bit(&claims, idx) == 1 {
            break (etag, claims["exp"].as_i64().unwrap());
        }
        assert!(start.elapsed() < Duration::from_secs(2), "the bit never flipped");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    // Down again, just before the list's exp: signet would re-sign it now
    // (exp is near) but cannot, so it serves the signed copy it has.
    let outage = Outage::start(&app);
    let now = app.clock.now().timestamp();
    app.clock.advance(TimeDelta::seconds(exp - now - 2));
    let (code, near_etag, claims) = fetch(&app, &path).await;
    assert_eq!((code, &near_etag), (StatusCode::OK, &etag), "the signed copy until its exp");
    assert_eq!(bit(&claims.unwrap(), idx), 1);
    // Past exp that copy is no longer valid: PostgreSQL is unreachable, so 503;
    // SQLite can still be read and the list is re-signed.
    app.clock.advance(TimeDelta::seconds(4));
    let res = app.get(&path, None).await;
    if app.backend == Backend::Postgres {
        assert_problem(res, 503, "unavailable").await;
    } else {
        assert_eq!(res.status(), StatusCode::OK);
        let claims = claims_of(&res.text().await.unwrap());
        assert!(claims["exp"].as_i64().unwrap() > exp, "re-signed with a later exp");
        assert_eq!(bit(&claims, idx), 1);
    }
    outage.end();
}
