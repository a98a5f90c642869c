//! The maintenance purge: exactly what expired goes, live rows stay, and a
//! big purge never holds a request up for long.

use std::time::{Duration, Instant};

use chrono::{NaiveDateTime, TimeDelta};
use diesel::sql_types::{Integer, Text, Timestamp};
use diesel::{sql_query, ExpressionMethods, QueryDsl, RunQueryDsl, TextExpressionMethods};
use reqwest::StatusCode;
use signet::db::schema::{login_throttle, refresh_tokens, sessions};
use signet::db::DbConnection;
use signet::maintenance::{self, Pace};
use signet::sessions::model::{insert_refresh_token, insert_session, NewRefreshToken, Session};

use crate::backend_tests;
use crate::helpers::{Backend, TestApp};

fn session(id: &str, user_id: &str, expires_at: NaiveDateTime) -> Session {
    Session {
        id: id.into(),
        user_id: user_id.into(),
        created_at: expires_at - TimeDelta::days(30),
        last_used_at: expires_at - TimeDelta::days(30),
        expires_at,
        user_agent: None,
        ip: None,
        revoked_at: None,
        revoked_reason: None,
    }
}

fn token<'a>(jti: &'a str, session_id: &'a str, user_id: &'a str, expires_at: NaiveDateTime) -> NewRefreshToken<'a> {
    NewRefreshToken { jti, session_id, user_id, issued_at: expires_at - TimeDelta::days(1), expires_at }
}

fn throttle_row(conn: &mut DbConnection, key: &str, updated_at: NaiveDateTime, locked_until: Option<NaiveDateTime>) {
    diesel::insert_into(login_throttle::table)
        .values((
            login_throttle::username_key.eq(key),
            login_throttle::failures.eq(3),
            login_throttle::lockouts.eq(1),
            login_throttle::locked_until.eq(locked_until),
            login_throttle::updated_at.eq(updated_at),
        ))
        .execute(conn)
        .unwrap();
}

fn ids<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

backend_tests!(purge_removes_exactly_what_expired, gc_command_purges_and_prints_counts);

async fn purge_removes_exactly_what_expired(app: TestApp) {
    let user = app.register_ok("keeper").await;
    let uid = user["id"].as_str().unwrap();
    let now = app.clock_now();
    let mut conn = app.conn();
    // Sessions: past their end by more than the margin (goes), just past it
    // (stays, within the margin), live (stays).
    insert_session(&mut conn, &session("s-old", uid, now - TimeDelta::days(2))).unwrap();
    insert_session(&mut conn, &session("s-recent", uid, now - TimeDelta::hours(2))).unwrap();
    insert_session(&mut conn, &session("s-live", uid, now + TimeDelta::days(2))).unwrap();
    // Refresh tokens: expired long ago (goes, also from the live session),
    // expired minutes ago (stays), live (stays).
    insert_refresh_token(&mut conn, &token("t-old-1", "s-old", uid, now - TimeDelta::days(3))).unwrap();
    insert_refresh_token(&mut conn, &token("t-old-2", "s-live", uid, now - TimeDelta::hours(3))).unwrap();
    insert_refresh_token(&mut conn, &token("t-recent", "s-recent", uid, now - TimeDelta::minutes(5))).unwrap();
    insert_refresh_token(&mut conn, &token("t-live", "s-live", uid, now + TimeDelta::days(1))).unwrap();
    // Throttle rows: quiet and unlocked (goes), quiet but still locked
    // (stays), recently failed (stays).
    let window = TimeDelta::seconds(app.settings.throttle.failure_window_secs);
    throttle_row(&mut conn, "quiet", now - window - TimeDelta::minutes(1), None);
    throttle_row(&mut conn, "locked", now - window - TimeDelta::minutes(1), Some(now + TimeDelta::minutes(5)));
    throttle_row(&mut conn, "recent", now - TimeDelta::minutes(1), None);

    let pace = Pace::for_backend(&conn);
    let report = maintenance::purge(&mut conn, &app.settings, now, pace).unwrap();
    assert_eq!(report.get("refresh_tokens"), 2, "{report}");
    assert_eq!(report.get("sessions"), 1, "{report}");
    assert_eq!(report.get("login_throttle"), 1, "{report}");

    let tokens: Vec<String> = refresh_tokens::table.select(refresh_tokens::jti).load(&mut **conn).unwrap();
    assert_eq!(ids(tokens), ["t-live", "t-recent"]);
    let live: Vec<String> =
        sessions::table.filter(sessions::id.like("s-%")).select(sessions::id).load(&mut **conn).unwrap();
    assert_eq!(ids(live), ["s-live", "s-recent"]);
    let keys: Vec<String> = login_throttle::table.select(login_throttle::username_key).load(&mut **conn).unwrap();
    assert_eq!(ids(keys), ["locked", "recent"]);

    // A second run finds nothing; the user still logs in.
    let again = maintenance::purge(&mut conn, &app.settings, now, pace).unwrap();
    assert_eq!(again.total(), 0, "{again}");
    app.login_ok("keeper").await;
}

async fn gc_command_purges_and_prints_counts(app: TestApp) {
    let user = app.register_ok("collected").await;
    let uid = user["id"].as_str().unwrap();
    // The CLI runs on the system clock.
    let now = chrono::Utc::now().naive_utc();
    let mut conn = app.conn();
    insert_session(&mut conn, &session("s-gone", uid, now - TimeDelta::days(5))).unwrap();
    insert_refresh_token(&mut conn, &token("t-gone", "s-gone", uid, now - TimeDelta::days(5))).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_signet"))
        .arg("gc")
        .env("SIGNET__DATABASE__URL", app.db.url())
        .env("SIGNET__KEYS__MASTER_KEY", crate::helpers::TEST_MASTER_KEY)
        .env_remove("DATABASE_URL")
        .env_remove("SIGNET_CONFIG")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("refresh_tokens: 1") && stdout.contains("sessions: 1"), "{stdout}");
    let left: i64 = sessions::table.filter(sessions::id.eq("s-gone")).count().get_result(&mut **conn).unwrap();
    assert_eq!(left, 0);
}

/// Rows of the big purge test: 100,000 by default (CI); set
/// `SIGNET_PURGE_ROWS=1000000` for the million-row run.
fn bulk_rows() -> i32 {
    std::env::var("SIGNET_PURGE_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000)
}

/// Inserts `n` expired refresh tokens in one statement.
fn insert_expired_tokens(
    conn: &mut DbConnection,
    backend: Backend,
    session_id: &str,
    user_id: &str,
    n: i32,
    at: NaiveDateTime,
) {
    let sql = match backend {
        Backend::Postgres => {
            "INSERT INTO refresh_tokens (jti, session_id, user_id, issued_at, expires_at) \
             SELECT 'bulk-' || g, $1, $2, $3, $3 FROM generate_series(1, $4) AS g"
        }
        Backend::Sqlite => {
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?4) \
             INSERT INTO refresh_tokens (jti, session_id, user_id, issued_at, expires_at) \
             SELECT 'bulk-' || i, ?1, ?2, ?3, ?3 FROM n"
        }
    };
    sql_query(sql)
        .bind::<Text, _>(session_id)
        .bind::<Text, _>(user_id)
        .bind::<Timestamp, _>(at)
        .bind::<Integer, _>(n)
        .execute(conn)
        .unwrap();
}

// A timing measurement, not a pass/fail property: it shares two cores with the whole
// parallel suite in CI, where any latency bound is noise. Run it alone on a quiet machine:
// `cargo test --test api purging_many -- --ignored` (numbers in BENCHMARKS.md).
mod purging_many_expired_rows_keeps_requests_fast {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "timing measurement: run alone with --ignored"]
    async fn sqlite() {
        let app = crate::helpers::TestApp::spawn(crate::helpers::Backend::Sqlite).await;
        super::purging_many_expired_rows_keeps_requests_fast(app).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "timing measurement: run alone with --ignored"]
    async fn postgres() {
        if !crate::helpers::postgres_configured() {
            eprintln!("SIGNET_TEST_POSTGRES_URL not set: skipping the PostgreSQL run");
            return;
        }
        let app = crate::helpers::TestApp::spawn(crate::helpers::Backend::Postgres).await;
        super::purging_many_expired_rows_keeps_requests_fast(app).await;
    }
}

async fn purging_many_expired_rows_keeps_requests_fast(app: TestApp) {
    // The loop below refreshes back to back for as long as the purge runs (minutes for a
    // million rows): the per-IP refresh budget would answer 429 long before it ends.
    let app = app.restart_with(|s: &mut signet::config::Settings| s.throttle.enabled = false).await;
    let user = app.register_ok("busy").await;
    let uid = user["id"].as_str().unwrap().to_owned();
    let now = app.clock_now();
    let n = bulk_rows();
    let started = Instant::now();
    {
        let mut conn = app.conn();
        insert_session(&mut conn, &session("s-bulk", &uid, now - TimeDelta::days(2))).unwrap();
        insert_expired_tokens(&mut conn, app.backend, "s-bulk", &uid, n, now - TimeDelta::days(3));
    }
    eprintln!("inserted {n} expired refresh tokens in {:?}", started.elapsed());

    let pair = app.login_ok("busy").await;
    let access = pair.access.clone();
    let mut refresh = pair.refresh.clone();

    // The machine's own noise first: the same stream for two seconds, no purge.
    let baseline_until = Instant::now() + Duration::from_secs(2);
    let mut baseline = Duration::ZERO;
    while Instant::now() < baseline_until {
        let (worst, next) = me_and_refresh(&app, &access, &refresh).await;
        baseline = baseline.max(worst);
        refresh = next;
    }

    let pool = app.pool();
    let settings = app.settings.clone();
    let purge = tokio::task::spawn_blocking(move || {
        let mut conn = pool.get().unwrap();
        let pace = Pace::for_backend(&conn);
        let started = Instant::now();
        let report = maintenance::purge(&mut conn, &settings, now, pace).unwrap();
        (report, started.elapsed())
    });
    let (mut worst, mut requests) = (Duration::ZERO, 0u32);
    while !purge.is_finished() {
        let (slowest, next) = me_and_refresh(&app, &access, &refresh).await;
        worst = worst.max(slowest);
        refresh = next;
        requests += 2;
    }
    let (report, took) = purge.await.unwrap();
    eprintln!(
        "purged {report} in {took:?}; {requests} requests meanwhile, slowest {worst:?} (without purge: {baseline:?})"
    );
    assert_eq!(report.get("refresh_tokens"), n as u64, "{report}");
    assert_eq!(report.get("sessions"), 1, "{report}");
    assert!(requests >= 10, "the purge ended before the requests could overlap it ({took:?})");
    // The purge may add at most 100 ms to the slowest request the busy test
    // machine gives without it.
    assert!(
        worst < baseline + Duration::from_millis(100),
        "a request waited {worst:?} during the purge ({baseline:?} without)"
    );
}

/// One read (GET /v1/auth/me) and one write (a refresh rotation): the slower
/// of the two, and the next refresh token.
async fn me_and_refresh(app: &TestApp, access: &str, refresh: &str) -> (Duration, String) {
    let t = Instant::now();
    assert_eq!(app.get("/v1/auth/me", Some(access)).await.status(), StatusCode::OK);
    let read = t.elapsed();
    let t = Instant::now();
    let res = app.refresh(refresh).await;
    assert_eq!(res.status(), StatusCode::OK);
    let write = t.elapsed();
    let next = res.json::<serde_json::Value>().await.unwrap()["refresh_token"].as_str().unwrap().to_owned();
    (read.max(write), next)
}
