//! Sessions and the refresh-token lifecycle.

use chrono::TimeDelta;
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};

use signet::config::Settings;

use crate::backend_tests;
use crate::helpers::{assert_problem, claims_of, LoggedIn, TestApp, PASSWORD};

backend_tests!(
    refresh_rotates_and_reuse_revokes_the_session,
    sixteen_concurrent_refreshes_have_one_winner,
    grace_returns_the_same_successor_then_revokes_after_it,
    absolute_lifetime_cuts_a_rotating_session,
    idle_refresh_token_expires,
    roles_granted_by_an_admin_appear_at_the_next_refresh,
    refresh_accepts_no_access_token_and_no_garbage,
    logout_ends_only_its_session,
    logout_all_ends_every_session,
    password_change_keeps_only_the_callers_session,
    sessions_are_listed_and_deleted_by_their_owner,
    last_used_at_is_recorded_to_the_minute,
    batched_session_reads_answer_each_id_in_order,
);

async fn refresh_ok(app: &TestApp, token: &str) -> LoggedIn {
    let res = app.refresh(token).await;
    assert_eq!(res.status(), StatusCode::OK, "refresh");
    assert_eq!(res.headers()["cache-control"], "no-store");
    LoggedIn::from_pair(res.json().await.unwrap())
}

async fn logged_in(app: &TestApp, name: &str) -> LoggedIn {
    app.register_ok(name).await;
    app.login_ok(name).await
}

async fn refresh_rotates_and_reuse_revokes_the_session(app: TestApp) {
    let first = logged_in(&app, "alice").await;
    let second = refresh_ok(&app, &first.refresh).await;
    let (c1, c2) = (claims_of(&first.refresh), claims_of(&second.refresh));
    assert_ne!(c1["jti"], c2["jti"]);
    assert_eq!(c1["sid"], c2["sid"]);
    assert_eq!(claims_of(&second.access)["sid"], c1["sid"]);
    let third = refresh_ok(&app, &second.refresh).await;

    // The first token comes back: the whole session dies.
    assert_problem(app.refresh(&first.refresh).await, 401, "refresh_token_reused").await;
    assert_problem(app.refresh(&third.refresh).await, 401, "invalid_refresh_token").await;
    assert_problem(app.refresh(&first.refresh).await, 401, "invalid_refresh_token").await;
    // Another login is unaffected.
    let other = app.login_ok("alice").await;
    refresh_ok(&app, &other.refresh).await;
}

async fn sixteen_concurrent_refreshes_have_one_winner(app: TestApp) {
    let pair = logged_in(&app, "racer").await;
    let token = pair.refresh.clone();
    let responses = join_all((0..16).map(|_| app.refresh(&token))).await;
    let statuses: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 15, "{statuses:?}");
}

async fn grace_returns_the_same_successor_then_revokes_after_it(app: TestApp) {
    let app_with_grace =
        TestApp::spawn_with(app.backend, |s: &mut Settings| s.tokens.refresh_reuse_grace_secs = 10).await;
    let app = app_with_grace;
    let first = logged_in(&app, "tabs").await;
    let winner = refresh_ok(&app, &first.refresh).await;
    app.clock.advance(TimeDelta::seconds(3));
    let second_tab = refresh_ok(&app, &first.refresh).await;
    let (w, s) = (claims_of(&winner.refresh), claims_of(&second_tab.refresh));
    for claim in ["jti", "sid", "exp", "iat"] {
        assert_eq!(w[claim], s[claim], "{claim}");
    }
    // Both tabs continue on the one chain.
    let next = refresh_ok(&app, &second_tab.refresh).await;

    // Outside the window the old token is reuse again.
    app.clock.advance(TimeDelta::seconds(10));
    assert_problem(app.refresh(&first.refresh).await, 401, "refresh_token_reused").await;
    assert_problem(app.refresh(&next.refresh).await, 401, "invalid_refresh_token").await;

    // With the grace window, a 16-way race puts every tab on the same successor.
    let pair = app.login_ok("tabs").await;
    let token = pair.refresh.clone();
    let responses = join_all((0..16).map(|_| app.refresh(&token))).await;
    let mut jtis = Vec::new();
    for res in responses {
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.unwrap();
        jtis.push(claims_of(body["refresh_token"].as_str().unwrap())["jti"].clone());
    }
    jtis.dedup();
    assert_eq!(jtis.len(), 1, "one successor for all");
}

async fn absolute_lifetime_cuts_a_rotating_session(app: TestApp) {
    let app = TestApp::spawn_with(app.backend, |s: &mut Settings| {
        s.tokens.session_max_secs = 100;
        s.tokens.refresh_ttl_secs = 60;
    })
    .await;
    let pair = logged_in(&app, "marathon").await;
    assert_eq!(pair.body["refresh_expires_in"], 60);
    app.clock.advance(TimeDelta::seconds(50));
    let pair = refresh_ok(&app, &pair.refresh).await;
    // Capped by the session's end, not the refresh lifetime.
    assert_eq!(pair.body["refresh_expires_in"], 50);
    let c = claims_of(&pair.refresh);
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 50);
    app.clock.advance(TimeDelta::seconds(45));
    let pair = refresh_ok(&app, &pair.refresh).await;
    assert_eq!(pair.body["refresh_expires_in"], 5);
    app.clock.advance(TimeDelta::seconds(6));
    assert_problem(app.refresh(&pair.refresh).await, 401, "invalid_refresh_token").await;
}

async fn idle_refresh_token_expires(app: TestApp) {
    let app = TestApp::spawn_with(app.backend, |s: &mut Settings| s.tokens.refresh_ttl_secs = 60).await;
    let pair = logged_in(&app, "sleepy").await;
    app.clock.advance(TimeDelta::seconds(61));
    assert_problem(app.refresh(&pair.refresh).await, 401, "invalid_refresh_token").await;
}

async fn roles_granted_by_an_admin_appear_at_the_next_refresh(app: TestApp) {
    let admin = app.admin_token("root").await;
    let user = app.register_ok("promoted").await;
    let pair = app.login_ok("promoted").await;
    assert_eq!(claims_of(&pair.access)["roles"], json!(["user"]));
    let res = app
        .client
        .put(app.url(&format!("/v1/admin/users/{}/roles", user["id"].as_str().unwrap())))
        .bearer_auth(&admin)
        .json(&json!({"roles": ["user", "editor"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let pair = refresh_ok(&app, &pair.refresh).await;
    assert_eq!(claims_of(&pair.access)["roles"], json!(["editor", "user"]));
}

async fn refresh_accepts_no_access_token_and_no_garbage(app: TestApp) {
    let pair = logged_in(&app, "mixup").await;
    assert_problem(app.refresh(&pair.access).await, 401, "invalid_refresh_token").await;
    assert_problem(app.refresh("garbage").await, 401, "invalid_refresh_token").await;
    // No token in the body (and no cookie): nothing to refresh with.
    let res = app.post_json("/v1/auth/refresh", &json!({})).await;
    assert_problem(res, 401, "invalid_refresh_token").await;
    let res = app.post_json("/v1/auth/refresh", &json!({"refresh_token": 5})).await;
    assert_problem(res, 400, "malformed_request").await;
}

async fn logout(app: &TestApp, refresh: &str) -> reqwest::Response {
    app.post_json("/v1/auth/logout", &json!({ "refresh_token": refresh })).await
}

async fn logout_ends_only_its_session(app: TestApp) {
    let a = logged_in(&app, "leaver").await;
    let b = app.login_ok("leaver").await;
    assert_eq!(logout(&app, &a.refresh).await.status(), StatusCode::NO_CONTENT);
    assert_problem(app.refresh(&a.refresh).await, 401, "invalid_refresh_token").await;
    refresh_ok(&app, &b.refresh).await;
    // Idempotent; garbage is refused.
    assert_eq!(logout(&app, &a.refresh).await.status(), StatusCode::NO_CONTENT);
    assert_problem(logout(&app, "garbage").await, 401, "invalid_refresh_token").await;
}

async fn logout_all_ends_every_session(app: TestApp) {
    let a = logged_in(&app, "everywhere").await;
    let b = app.login_ok("everywhere").await;
    let other_user = logged_in(&app, "bystander").await;
    let res = app.client.post(app.url("/v1/auth/logout-all")).bearer_auth(&a.access).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    for pair in [&a, &b] {
        assert_problem(app.refresh(&pair.refresh).await, 401, "invalid_refresh_token").await;
    }
    refresh_ok(&app, &other_user.refresh).await;
    let res = app.client.post(app.url("/v1/auth/logout-all")).send().await.unwrap();
    assert_problem(res, 401, "missing_token").await;
}

async fn change_password(app: &TestApp, access: &str, current: &str, new: &str) -> reqwest::Response {
    app.client
        .post(app.url("/v1/auth/password"))
        .bearer_auth(access)
        .json(&json!({"current_password": current, "new_password": new}))
        .send()
        .await
        .unwrap()
}

async fn password_change_keeps_only_the_callers_session(app: TestApp) {
    let mine = logged_in(&app, "changer").await;
    let other = app.login_ok("changer").await;
    let new_password = "amber-lantern-58-quiet";
    assert_problem(
        change_password(&app, &mine.access, "wrong-password-x", new_password).await,
        401,
        "invalid_credentials",
    )
    .await;
    let body =
        assert_problem(change_password(&app, &mine.access, PASSWORD, "password1").await, 422, "weak_password").await;
    assert_eq!(body["errors"][0]["field"], "new_password");

    let res = change_password(&app, &mine.access, PASSWORD, new_password).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_problem(app.refresh(&other.refresh).await, 401, "invalid_refresh_token").await;
    refresh_ok(&app, &mine.refresh).await;
    assert_problem(app.login("changer", PASSWORD).await, 401, "invalid_credentials").await;
    assert_eq!(app.login("changer", new_password).await.status(), StatusCode::OK);
}

async fn sessions_are_listed_and_deleted_by_their_owner(app: TestApp) {
    let first = logged_in(&app, "owner").await;
    let res = app
        .client
        .post(app.url("/v1/auth/login"))
        .header("user-agent", "second-device/1.0")
        .json(&json!({"username": "owner", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let second: Value = res.json().await.unwrap();
    let stranger = logged_in(&app, "stranger").await;

    let res = app.get("/v1/auth/sessions", Some(&first.access)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let list: Value = res.json().await.unwrap();
    let sessions = list["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    let first_sid = claims_of(&first.access)["sid"].clone();
    let second_sid = claims_of(second["access_token"].as_str().unwrap())["sid"].clone();
    for s in sessions {
        assert_eq!(s["current"], s["id"] == first_sid);
        assert_eq!(s["ip"], "127.0.0.1");
        for field in ["created_at", "last_used_at"] {
            assert!(s[field].is_string());
        }
    }
    let second_entry = sessions.iter().find(|s| s["id"] == second_sid).unwrap();
    assert_eq!(second_entry["user_agent"], "second-device/1.0");

    // Another user's session id is 404, and stays alive.
    let stranger_sid = claims_of(&stranger.access)["sid"].as_str().unwrap().to_owned();
    let res = app
        .client
        .delete(app.url(&format!("/v1/auth/sessions/{stranger_sid}")))
        .bearer_auth(&first.access)
        .send()
        .await
        .unwrap();
    assert_problem(res, 404, "not_found").await;
    refresh_ok(&app, &stranger.refresh).await;

    let res = app
        .client
        .delete(app.url(&format!("/v1/auth/sessions/{}", second_sid.as_str().unwrap())))
        .bearer_auth(&first.access)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_problem(app.refresh(second["refresh_token"].as_str().unwrap()).await, 401, "invalid_refresh_token").await;
    let list: Value = app.get("/v1/auth/sessions", Some(&first.access)).await.json().await.unwrap();
    assert_eq!(list["sessions"].as_array().unwrap().len(), 1);
}

/// PostgreSQL's common refresh is one call of `signet_rotate_refresh`; every
/// other test would pass through the rotation transaction if that call
/// silently never matched, so this one calls it directly. PostgreSQL only:
/// SQLite rotates in its writer's transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_rotates_in_one_call_when_nothing_is_unusual() {
    use diesel::prelude::*;
    use signet::db::schema::refresh_tokens;
    use signet::db::DbConnection;
    use signet::sessions::model::rotate_in_one_statement;

    if !crate::helpers::postgres_configured() {
        eprintln!("SIGNET_TEST_POSTGRES_URL not set: skipping");
        return;
    }
    let app = TestApp::spawn(crate::helpers::Backend::Postgres).await;
    let first = logged_in(&app, "oscar").await;
    let claims = claims_of(&first.refresh);
    let (sub, sid, jti) =
        (claims["sub"].as_str().unwrap(), claims["sid"].as_str().unwrap(), claims["jti"].as_str().unwrap());
    let mut pooled = app.conn();
    let DbConnection::Postgres(pg) = &mut **pooled else {
        panic!("a PostgreSQL app");
    };
    let now = chrono::Utc::now().naive_utc();
    let latest = now + TimeDelta::days(1);
    let rotated = rotate_in_one_statement(pg, sub, sid, jti, "successor-1", latest, true, now).unwrap();
    let (user, session, index) = rotated.expect("a live session's unused token rotates in one call");
    assert_eq!((user.id.as_str(), session.id.as_str()), (sub, sid));
    assert!(index.is_some(), "the session's status list index comes along");
    let (used, successor): (Option<chrono::NaiveDateTime>, Option<String>) = refresh_tokens::table
        .find(jti)
        .select((refresh_tokens::used_at, refresh_tokens::replaced_by))
        .get_result(pg)
        .unwrap();
    assert!(used.is_some());
    assert_eq!(successor.as_deref(), Some("successor-1"));
    let stored: i64 =
        refresh_tokens::table.filter(refresh_tokens::jti.eq("successor-1")).count().get_result(pg).unwrap();
    assert_eq!(stored, 1, "the successor is stored");
    let again = rotate_in_one_statement(pg, sub, sid, jti, "successor-2", latest, true, now).unwrap();
    assert!(again.is_none(), "a used token is left to the rotation transaction (grace or reuse)");
}

/// A rotation finds the refresh token by its primary key, never by
/// refresh_tokens_session_id: that index leads to every token the session
/// ever had (used ones stay until they expire), and PostgreSQL's generic plan
/// took it whenever the statistics called session_id as selective as jti, as
/// they do after an ANALYZE of sessions with one token each. Forced here:
/// those statistics, generic plans, and index scans counted in the
/// transaction. Both the one-call function and the rotation transaction's
/// claim. PostgreSQL only: SQLite's planner takes the unique index.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_rotation_claims_its_token_by_primary_key() {
    use diesel::dsl::sql;
    use diesel::prelude::*;
    use diesel::sql_types::BigInt;
    use signet::db::DbConnection;
    use signet::sessions::model::{claim_refresh_token, rotate_in_one_statement};

    if !crate::helpers::postgres_configured() {
        eprintln!("SIGNET_TEST_POSTGRES_URL not set: skipping");
        return;
    }
    let app = TestApp::spawn(crate::helpers::Backend::Postgres).await;
    let login = logged_in(&app, "pia").await;
    let claims = claims_of(&login.refresh);
    let (sub, sid, jti) =
        (claims["sub"].as_str().unwrap(), claims["sid"].as_str().unwrap(), claims["jti"].as_str().unwrap());
    let mut pooled = app.conn();
    let conn: &mut DbConnection = &mut pooled;
    // Sessions of one token each, analyzed; then the session's used tokens.
    for statement in [
        format!(
            "INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at)
               SELECT 'filler' || i, '{sub}', now(), now(), '2099-01-01' FROM generate_series(1, 200) i"
        ),
        format!(
            "INSERT INTO refresh_tokens (jti, session_id, user_id, issued_at, expires_at)
               SELECT 'filler' || i, 'filler' || i, '{sub}', now(), '2099-01-01' FROM generate_series(1, 200) i"
        ),
        "ANALYZE refresh_tokens".to_string(),
        format!(
            "INSERT INTO refresh_tokens (jti, session_id, user_id, issued_at, expires_at, used_at)
               SELECT 'used' || i, '{sid}', '{sub}', now(), '2099-01-01', now() FROM generate_series(1, 300) i"
        ),
        "SET plan_cache_mode = force_generic_plan".to_string(),
    ] {
        diesel::sql_query(statement).execute(conn).unwrap();
    }

    // Index scans of this transaction so far: (primary key, session_id index).
    fn scans(conn: &mut DbConnection) -> QueryResult<(i64, i64)> {
        let count = |index: &str| sql::<BigInt>(&format!("pg_stat_get_xact_numscans('{index}'::regclass)"));
        diesel::select((count("refresh_tokens_pkey"), count("refresh_tokens_session_id"))).get_result(conn)
    }
    let now = chrono::Utc::now().naive_utc();
    let latest = now + TimeDelta::days(1);
    let one_call = conn
        .transaction(|conn| {
            let DbConnection::Postgres(pg) = conn else { panic!("a PostgreSQL app") };
            let rotated = rotate_in_one_statement(pg, sub, sid, jti, "successor-1", latest, true, now)?;
            assert!(rotated.is_some(), "the one-call rotation claims the token");
            scans(conn)
        })
        .unwrap();
    assert!(one_call.0 >= 1 && one_call.1 == 0, "the function's claim used (pkey, session_id) scans {one_call:?}");

    let claim = conn
        .transaction(|conn| {
            let claimed = claim_refresh_token(conn, "successor-1", sid, sub, "successor-2", now)?;
            assert_eq!(claimed, 1, "the rotation transaction's claim claims the successor");
            scans(conn)
        })
        .unwrap();
    assert!(claim.0 >= 1 && claim.1 == 0, "the transaction's claim used (pkey, session_id) scans {claim:?}");
}

/// A refresh records its use in the session list at most once a minute
/// (sessions::model::TOUCH_INTERVAL_SECS): the write it saves was a new row
/// version per refresh. On PostgreSQL this runs through the one-call rotation.
async fn last_used_at_is_recorded_to_the_minute(app: TestApp) {
    let login = logged_in(&app, "touchy").await;
    let at_login = last_used(&app, &login.access).await;

    app.clock.advance(TimeDelta::seconds(30));
    let within = refresh_ok(&app, &login.refresh).await;
    assert_eq!(last_used(&app, &within.access).await, at_login, "a use within the minute is not written");

    app.clock.advance(TimeDelta::seconds(31));
    let after = refresh_ok(&app, &within.refresh).await;
    assert_eq!(last_used(&app, &after.access).await, at_login + TimeDelta::seconds(61), "a minute on, it is");
}

/// The `last_used_at` of the caller's (only) session.
async fn last_used(app: &TestApp, access: &str) -> chrono::DateTime<chrono::FixedOffset> {
    let list: Value = app.get("/v1/auth/sessions", Some(access)).await.json().await.unwrap();
    chrono::DateTime::parse_from_rfc3339(list["sessions"][0]["last_used_at"].as_str().unwrap()).unwrap()
}

/// What a batched rotation of `login`'s refresh token asks, with successor `successor`.
fn batch_request(login: &LoggedIn, successor: &str) -> signet::sessions::model::RotationRequest {
    let claims = claims_of(&login.refresh);
    let now = chrono::Utc::now().naive_utc();
    signet::sessions::model::RotationRequest {
        user_id: claims["sub"].as_str().unwrap().to_owned(),
        session_id: claims["sid"].as_str().unwrap().to_owned(),
        jti: claims["jti"].as_str().unwrap().to_owned(),
        successor: successor.to_owned(),
        successor_expires_at: now + TimeDelta::days(1),
        now,
    }
}

/// PostgreSQL's batched refreshes (http::batches): one statement rotates
/// each request as its own call, answers in the requests' order whatever the
/// order the calls ran in (by session id), and a token presented twice in
/// one batch (two tabs) is claimed once: the second is left to the rotation
/// transaction, which gives it the grace successor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_batch_rotates_each_request_and_a_token_only_once() {
    use diesel::prelude::*;
    use signet::db::schema::refresh_tokens;
    use signet::db::DbConnection;
    use signet::sessions::model::rotate_batch;

    if !crate::helpers::postgres_configured() {
        eprintln!("SIGNET_TEST_POSTGRES_URL not set: skipping");
        return;
    }
    let with_grace = |s: &mut Settings| s.tokens.refresh_reuse_grace_secs = 10;
    let app = TestApp::spawn_with(crate::helpers::Backend::Postgres, with_grace).await;
    let (first, second) = (logged_in(&app, "quinn").await, logged_in(&app, "ruth").await);
    let mut requests = vec![batch_request(&first, "succ-a"), batch_request(&second, "succ-b")];
    // The later session id first, so the calls run in another order than asked.
    requests.sort_by(|a, b| b.session_id.cmp(&a.session_id));
    let twice = requests[0].clone();
    requests.push(signet::sessions::model::RotationRequest { successor: "succ-again".into(), ..twice.clone() });

    let mut pooled = app.conn();
    let DbConnection::Postgres(pg) = &mut **pooled else {
        panic!("a PostgreSQL app");
    };
    let answers = rotate_batch(pg, &requests, true).unwrap();
    assert_eq!(answers.len(), 3);
    for (request, answer) in requests.iter().zip(&answers).take(2) {
        let (user, session, index) = answer.as_ref().expect("each token rotates");
        assert_eq!((&user.id, &session.id), (&request.user_id, &request.session_id), "answers in asked order");
        assert!(index.is_some());
    }
    assert!(answers[2].is_none(), "the same token again in the batch is not claimed twice");
    let successor: Option<String> =
        refresh_tokens::table.find(&twice.jti).select(refresh_tokens::replaced_by).get_result(pg).unwrap();
    assert_eq!(successor.as_deref(), Some(twice.successor.as_str()), "the first request's successor is linked");
    let stored: i64 =
        refresh_tokens::table.filter(refresh_tokens::jti.eq("succ-again")).count().get_result(pg).unwrap();
    assert_eq!(stored, 0, "the declined request stored nothing");
    drop(pooled);

    // Over HTTP, the token just rotated in the batch is within its grace window.
    let token = if twice.user_id == claims_of(&first.refresh)["sub"] { &first.refresh } else { &second.refresh };
    let res = app.refresh(token).await;
    assert_eq!(res.status(), StatusCode::OK, "grace after a batched rotation");
    let again = LoggedIn::from_pair(res.json().await.unwrap());
    assert_eq!(claims_of(&again.refresh)["jti"], twice.successor.as_str(), "the batch's successor again");
}

/// A disable that commits while a batch waits for its user's lock is seen by
/// that user's rotation (declined), and the other rotations of the batch
/// still go through: each call takes its own locks and reads after them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_batch_sees_a_disable_that_commits_while_it_waits() {
    use diesel::connection::SimpleConnection;
    use diesel::prelude::*;
    use signet::db::DbConnection;
    use signet::sessions::model::rotate_batch;

    if !crate::helpers::postgres_configured() {
        eprintln!("SIGNET_TEST_POSTGRES_URL not set: skipping");
        return;
    }
    let app = TestApp::spawn(crate::helpers::Backend::Postgres).await;
    let (kept, disabled) = (logged_in(&app, "sid").await, logged_in(&app, "tara").await);
    let requests = vec![batch_request(&kept, "succ-kept"), batch_request(&disabled, "succ-disabled")];
    let disabled_user = requests[1].user_id.clone();

    let mut admin = app.conn();
    admin.batch_execute("BEGIN").unwrap();
    diesel::sql_query("UPDATE users SET disabled = true WHERE id = $1")
        .bind::<diesel::sql_types::Text, _>(&disabled_user)
        .execute(&mut **admin)
        .unwrap();

    let pool = app.pool();
    let batch = std::thread::spawn(move || {
        let mut pooled = pool.get().unwrap();
        let DbConnection::Postgres(pg) = &mut **pooled else { panic!("a PostgreSQL app") };
        rotate_batch(pg, &requests, true)
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(!batch.is_finished(), "the batch waits for the disabling transaction's lock");
    admin.batch_execute("COMMIT").unwrap();
    let answers = batch.join().unwrap().unwrap();
    assert!(answers[0].is_some(), "the other user's rotation went through");
    assert!(answers[1].is_none(), "the disabled user's rotation is declined");
    drop(admin);
    assert_problem(app.refresh(&disabled.refresh).await, 401, "invalid_refresh_token").await;
}

/// With no batching threads every refresh and bearer check goes through the
/// pool (a PostgreSQL refresh: one call, then the rotation transaction): the
/// same rotation, reuse, grace and revocation rules, on both backends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_batches_the_same_rules_hold() {
    use crate::helpers::Backend;
    let mut backends = vec![Backend::Sqlite];
    if crate::helpers::postgres_configured() {
        backends.push(Backend::Postgres);
    }
    let unbatched = |s: &mut Settings| {
        s.database.refresh_batch_threads = 0;
        s.database.session_read_batch_threads = 0;
    };
    for backend in backends {
        logout_all_ends_every_session(TestApp::spawn_with(backend, unbatched).await).await;
        refresh_rotates_and_reuse_revokes_the_session(TestApp::spawn_with(backend, unbatched).await).await;
        sixteen_concurrent_refreshes_have_one_winner(TestApp::spawn_with(backend, unbatched).await).await;
        grace_returns_the_same_successor_then_revokes_after_it(TestApp::spawn_with(backend, unbatched).await).await;
    }
}

/// The bearer check's batched read (http::batches::SessionReads): each
/// session id answered in the order asked, one asked twice answered twice,
/// an unknown one None; a revoked session comes back as stored (the caller
/// judges it, as it judges the pool's read).
async fn batched_session_reads_answer_each_id_in_order(app: TestApp) {
    use signet::http::batches::{BatchWork, SessionReads};

    let (kept, ended) = (logged_in(&app, "uma").await, logged_in(&app, "vic").await);
    assert_eq!(logout(&app, &ended.refresh).await.status(), StatusCode::NO_CONTENT);
    let sid = |login: &LoggedIn| claims_of(&login.access)["sid"].as_str().unwrap().to_owned();
    let ids = vec![sid(&ended), "no-such-session".to_owned(), sid(&kept), sid(&ended)];

    let mut pooled = app.conn();
    let answers = SessionReads.run(&mut pooled, &ids).unwrap();
    assert_eq!(answers.len(), 4);
    assert!(answers[1].is_none(), "an unknown session");
    for (id, answer) in ids.iter().zip(&answers).filter(|(_, a)| a.is_some()) {
        let (session, index, user) = &**answer.as_ref().unwrap();
        assert_eq!(&session.id, id, "answers in asked order");
        assert_eq!(session.user_id, user.id, "each session with its user");
        assert!(index.is_some(), "and its status list index");
    }
    assert!(answers[0].as_ref().unwrap().0.revoked_at.is_some(), "the ended session, as stored");
    assert!(answers[2].as_ref().unwrap().0.revoked_at.is_none());
    assert_eq!(answers[3].as_ref().unwrap().0.id, ids[0], "asked twice, answered twice");
    drop(pooled);
    assert_eq!(app.get("/v1/auth/me", Some(&kept.access)).await.status(), StatusCode::OK);
    assert_problem(app.get("/v1/auth/me", Some(&ended.access)).await, 401, "invalid_token").await;
}

/// SQLite's claim (every refresh runs it) stays prepared on the connection:
/// diesel prepares each of its own `UPDATE`s afresh, so the claim is a
/// statement of ours with a static query id. diesel reports a statement it
/// caches (`CacheQuery`) once; an uncached one never.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_claim_is_prepared_once_per_connection() {
    use diesel::connection::{Connection, InstrumentationEvent};
    use signet::sessions::model::claim_refresh_token;
    use std::sync::{Arc, Mutex};

    let app = TestApp::spawn(crate::helpers::Backend::Sqlite).await;
    let login = logged_in(&app, "wes").await;
    let claims = claims_of(&login.refresh);
    let (sub, sid) = (claims["sub"].as_str().unwrap(), claims["sid"].as_str().unwrap());
    let cached = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = cached.clone();
    let mut pooled = app.conn();
    pooled.set_instrumentation(move |event: InstrumentationEvent<'_>| {
        if let InstrumentationEvent::CacheQuery { sql, .. } = event {
            seen.lock().unwrap().push(sql.to_owned());
        }
    });
    let now = chrono::Utc::now().naive_utc();
    for (jti, successor) in [(claims["jti"].as_str().unwrap(), "next-1"), ("no-such-token", "next-2")] {
        claim_refresh_token(&mut pooled, jti, sid, sub, successor, now).unwrap();
    }
    pooled.mark_broken(); // its instrumentation goes with it
    let cached = cached.lock().unwrap();
    let claims: Vec<_> = cached.iter().filter(|sql| sql.starts_with("UPDATE refresh_tokens")).collect();
    assert_eq!(claims.len(), 1, "the claim is prepared and kept once: {cached:?}");
}
