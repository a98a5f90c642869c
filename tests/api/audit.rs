//! The audit trail: each action writes its event (and nothing when its
//! transaction rolls back), `GET /v1/admin/audit` pages and filters them for
//! admins only, old events are purged, and no event or `signet::audit` log
//! line ever holds a password, hash or token.

use std::collections::HashSet;

use chrono::TimeDelta;
use diesel::{QueryDsl, RunQueryDsl};
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use signet::audit::model::{AuditRow, Filter};
use signet::audit::{Actor, Event, EventType};
use signet::db::schema::{api_tokens, users};
use signet::db::DbConnection;
use signet::maintenance::{self, Pace};

use crate::backend_tests;
use crate::helpers::{assert_problem, captured_logs, claims_of, LoggedIn, TestApp, PASSWORD, TEST_MASTER_KEY};

const NEW_PASSWORD: &str = "amber-lantern-58-quiet";
const WRONG_PASSWORD: &str = "not-the-password-9x";
const LOCALHOST: &str = "127.0.0.1";

/// Every row, newest first, straight from the table.
fn rows(conn: &mut DbConnection) -> Vec<AuditRow> {
    signet::audit::model::page(conn, &Filter { limit: 100_000, ..Filter::default() }).unwrap()
}

fn of_type<'a>(rows: &'a [AuditRow], kind: &str) -> Vec<&'a AuditRow> {
    rows.iter().filter(|r| r.kind == kind).collect()
}

/// The one event of `kind` in `rows`.
fn only<'a>(rows: &'a [AuditRow], kind: &str) -> &'a AuditRow {
    let found = of_type(rows, kind);
    assert_eq!(found.len(), 1, "one {kind} expected: {rows:#?}");
    found[0]
}

fn detail(row: &AuditRow) -> Value {
    serde_json::from_str(&row.detail).unwrap()
}

fn types(rows: &[AuditRow]) -> Vec<&str> {
    rows.iter().map(|r| r.kind.as_str()).collect()
}

async fn audit(app: &TestApp, token: &str, query: &str) -> Response {
    app.get(&format!("/v1/admin/audit{query}"), Some(token)).await
}

async fn audit_ok(app: &TestApp, token: &str, query: &str) -> Value {
    let res = audit(app, token, query).await;
    assert_eq!(res.status(), StatusCode::OK, "{query}");
    res.json().await.unwrap()
}

/// The `signet::audit` lines this test process logged (all tests share it).
fn audit_log_lines() -> Vec<String> {
    captured_logs().lines().filter(|l| l.starts_with("INFO signet::audit ")).map(str::to_owned).collect()
}

async fn change_password(app: &TestApp, access: &str, current: &str, new: &str) -> Response {
    app.client
        .post(app.url("/v1/auth/password"))
        .bearer_auth(access)
        .json(&json!({"current_password": current, "new_password": new}))
        .send()
        .await
        .unwrap()
}

backend_tests!(
    logins_and_sessions_write_their_events,
    a_lockout_is_recorded_once,
    admin_actions_write_their_events,
    key_rotation_and_retirement_write_their_events,
    command_line_and_drf_actions_write_their_events,
    a_change_that_rolls_back_leaves_no_event_and_no_log_line,
    pages_cover_every_event_exactly_once,
    filters_select_by_type_and_by_user,
    only_admins_read_the_trail_and_bad_queries_are_400,
    events_past_the_retention_are_purged,
    no_event_and_no_audit_log_line_holds_a_secret,
    oauth_client_changes_write_their_events,
);

async fn logins_and_sessions_write_their_events(app: TestApp) {
    let alice = app.register_ok("alice").await;
    let alice_id = alice["id"].as_str().unwrap();
    let mut conn = app.conn();
    let created = only(&rows(&mut conn), "user.created").clone();
    assert_eq!((created.actor_id.as_deref(), created.subject_id.as_deref()), (None, Some(alice_id)));
    assert_eq!(created.ip.as_deref(), Some(LOCALHOST));
    assert_eq!(detail(&created), json!({"username": "alice", "roles": ["user"], "disabled": false}));

    // A login: who, from where, which session.
    let first = app.login_ok("alice").await;
    let all = rows(&mut conn);
    let login = only(&all, "login.succeeded");
    assert_eq!((login.actor_id.as_deref(), login.subject_id.as_deref()), (Some(alice_id), Some(alice_id)));
    assert_eq!(login.ip.as_deref(), Some(LOCALHOST));
    assert_eq!(detail(login), json!({"session_id": claims_of(&first.access)["sid"]}));

    // Failed checks: a wrong password names the account; an unknown name
    // names nobody and is not kept.
    assert_eq!(app.login("alice", WRONG_PASSWORD).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.login("nobody-here", WRONG_PASSWORD).await.status(), StatusCode::UNAUTHORIZED);
    let all = rows(&mut conn);
    let failed = of_type(&all, "login.failed");
    assert_eq!(failed.len(), 2, "{all:#?}");
    let (unknown, wrong) = (failed[0], failed[1]);
    assert_eq!((wrong.actor_id.as_deref(), wrong.subject_id.as_deref()), (None, Some(alice_id)));
    assert_eq!(detail(wrong), json!({"reason": "wrong_password", "flow": "login"}));
    assert_eq!((unknown.actor_id.as_deref(), unknown.subject_id.as_deref()), (None, None));
    assert_eq!(detail(unknown), json!({"reason": "unknown_user", "flow": "login"}));
    assert!(!all.iter().any(|r| r.detail.contains("nobody-here")));

    // A rotation writes nothing; presenting the rotated token again is a reuse.
    let res = app.refresh(&first.refresh).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(rows(&mut conn).len(), all.len(), "a refresh is no audit event");
    assert_problem(app.refresh(&first.refresh).await, 401, "refresh_token_reused").await;
    let all = rows(&mut conn);
    let reused = only(&all, "refresh.reused");
    assert_eq!((reused.actor_id.as_deref(), reused.subject_id.as_deref()), (None, Some(alice_id)));
    assert_eq!(detail(reused), json!({"session_id": claims_of(&first.access)["sid"]}));

    // Logout; a second logout of the same session records nothing more.
    let second = app.login_ok("alice").await;
    let res = app.post_json("/v1/auth/logout", &json!({"refresh_token": second.refresh})).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = app.post_json("/v1/auth/logout", &json!({"refresh_token": second.refresh})).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let all = rows(&mut conn);
    let logout = only(&all, "session.revoked");
    assert_eq!((logout.actor_id.as_deref(), logout.subject_id.as_deref()), (Some(alice_id), Some(alice_id)));
    assert_eq!(detail(logout), json!({"reason": "logout", "session_id": claims_of(&second.access)["sid"]}));

    // Deleting one's own session, then logout-all.
    let third = app.login_ok("alice").await;
    let fourth = app.login_ok("alice").await;
    let sid = claims_of(&third.access)["sid"].as_str().unwrap().to_owned();
    let res = app.client.delete(app.url(&format!("/v1/auth/sessions/{sid}"))).bearer_auth(&fourth.access).send();
    assert_eq!(res.await.unwrap().status(), StatusCode::NO_CONTENT);
    let res = app.client.post(app.url("/v1/auth/logout-all")).bearer_auth(&fourth.access).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let all = rows(&mut conn);
    let revoked = of_type(&all, "session.revoked");
    assert_eq!(revoked.len(), 3, "{all:#?}");
    assert_eq!(detail(revoked[0]), json!({"reason": "logout_all", "sessions": 1}));
    assert_eq!(detail(revoked[1]), json!({"reason": "deleted_by_user", "session_id": sid}));
    assert!(revoked.iter().all(|r| r.actor_id.as_deref() == Some(alice_id) && r.ip.as_deref() == Some(LOCALHOST)));

    // A password change: a wrong current password is a failed check of the
    // logged-in user; the change itself says what it revoked.
    let fifth = app.login_ok("alice").await;
    let _other = app.login_ok("alice").await;
    let res = change_password(&app, &fifth.access, WRONG_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = change_password(&app, &fifth.access, PASSWORD, NEW_PASSWORD).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let all = rows(&mut conn);
    let failed = of_type(&all, "login.failed")[0];
    assert_eq!((failed.actor_id.as_deref(), failed.subject_id.as_deref()), (Some(alice_id), Some(alice_id)));
    assert_eq!(detail(failed), json!({"reason": "wrong_password", "flow": "password_change"}));
    let changed = only(&all, "password.changed");
    assert_eq!((changed.actor_id.as_deref(), changed.subject_id.as_deref()), (Some(alice_id), Some(alice_id)));
    assert_eq!(detail(changed), json!({"sessions_revoked": 1, "api_tokens_revoked": 0}));
    // Newest first, in the order the actions happened.
    assert_eq!(types(&all[..3]), ["password.changed", "login.failed", "login.succeeded"]);
}

async fn a_lockout_is_recorded_once(app: TestApp) {
    let bob = app.register_ok("bob").await;
    let threshold = app.settings.throttle.failures_before_lockout;
    for _ in 0..threshold {
        assert_eq!(app.login("bob", WRONG_PASSWORD).await.status(), StatusCode::UNAUTHORIZED);
    }
    // Refused unchecked while locked: no further event.
    assert_eq!(app.login("bob", WRONG_PASSWORD).await.status(), StatusCode::TOO_MANY_REQUESTS);
    let all = rows(&mut app.conn());
    let locked = only(&all, "login.locked");
    assert_eq!((locked.actor_id.as_deref(), locked.subject_id.as_deref()), (None, bob["id"].as_str()));
    assert_eq!(locked.ip.as_deref(), Some(LOCALHOST));
    let lockout = app.settings.throttle.lockout_secs;
    assert_eq!(detail(locked), json!({"locked_secs": lockout, "failures": threshold}));
    assert_eq!(of_type(&all, "login.failed").len(), threshold as usize);
}

async fn admin_actions_write_their_events(app: TestApp) {
    let admin = app.admin_token("root").await;
    let admin_id = claims_of(&admin)["sub"].as_str().unwrap().to_owned();
    let carol = app.register_ok("carol").await;
    let carol_id = carol["id"].as_str().unwrap().to_owned();
    let user_url = app.url(&format!("/v1/admin/users/{carol_id}"));
    let by_admin = |row: &AuditRow| {
        assert_eq!(row.actor_id.as_deref(), Some(admin_id.as_str()), "{row:?}");
        assert_eq!(row.subject_id.as_deref(), Some(carol_id.as_str()), "{row:?}");
        assert_eq!(row.ip.as_deref(), Some(LOCALHOST), "{row:?}");
    };
    let mut conn = app.conn();

    // Roles.
    let res =
        app.client.put(format!("{user_url}/roles")).bearer_auth(&admin).json(&json!({"roles": ["support", "user"]}));
    assert_eq!(res.send().await.unwrap().status(), StatusCode::OK);
    let all = rows(&mut conn);
    let roles = only(&all, "user.roles_changed");
    by_admin(roles);
    assert_eq!(detail(roles), json!({"username": "carol", "from": ["user"], "to": ["support", "user"]}));

    // API tokens, the admin's for carol and carol's own.
    let res = app
        .client
        .post(format!("{user_url}/api-tokens"))
        .bearer_auth(&admin)
        .json(&json!({"name": "ci", "expires_in_days": 30}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let token: Value = res.json().await.unwrap();
    let token_id = token["id"].as_str().unwrap();
    let res = app.client.delete(format!("{user_url}/api-tokens/{token_id}")).bearer_auth(&admin).send();
    assert_eq!(res.await.unwrap().status(), StatusCode::NO_CONTENT);
    let all = rows(&mut conn);
    let created = only(&all, "api_token.created");
    by_admin(created);
    assert_eq!(detail(created)["token_id"], token_id);
    assert_eq!(detail(created)["name"], "ci");
    assert!(detail(created)["expires_at"].is_string());
    let revoked = only(&all, "api_token.revoked");
    by_admin(revoked);
    assert_eq!(detail(revoked), json!({"token_id": token_id, "name": "ci"}));
    // (A login after the role change: it took back the tokens of earlier ones.)
    let session = app.login_ok("carol").await;
    let res =
        app.client.post(app.url("/v1/auth/api-tokens")).bearer_auth(&session.access).json(&json!({"name": "own"}));
    let own: Value = res.send().await.unwrap().json().await.unwrap();
    let own_id = own["id"].as_str().unwrap();
    let res = app.client.delete(app.url(&format!("/v1/auth/api-tokens/{own_id}"))).bearer_auth(&session.access);
    assert_eq!(res.send().await.unwrap().status(), StatusCode::NO_CONTENT);
    let all = rows(&mut conn);
    let own_events: Vec<_> = all.iter().filter(|r| r.detail.contains(own_id)).collect();
    let own_kinds: Vec<&str> = own_events.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(own_kinds, ["api_token.revoked", "api_token.created"]);
    assert!(own_events.iter().all(|r| r.actor_id.as_deref() == Some(carol_id.as_str())));
    assert_eq!(detail(own_events[1])["expires_at"], Value::Null);

    // Disable (its sessions revoked), a login refused for it, enable.
    app.disable_user(&admin, &carol_id).await;
    assert_problem(app.login("carol", PASSWORD).await, 403, "account_disabled").await;
    let res = app.client.patch(&user_url).bearer_auth(&admin).json(&json!({"disabled": false})).send();
    assert_eq!(res.await.unwrap().status(), StatusCode::OK);
    // Changing only the e-mail is no event.
    let res = app.client.patch(&user_url).bearer_auth(&admin).json(&json!({"email": "c@example.com"})).send();
    assert_eq!(res.await.unwrap().status(), StatusCode::OK);
    let all = rows(&mut conn);
    let disabled = only(&all, "user.disabled");
    by_admin(disabled);
    assert_eq!(detail(disabled), json!({"username": "carol", "sessions_revoked": 1}));
    let enabled = only(&all, "user.enabled");
    by_admin(enabled);
    let refused = of_type(&all, "login.failed")[0];
    assert_eq!(refused.subject_id.as_deref(), Some(carol_id.as_str()));
    assert_eq!(detail(refused), json!({"reason": "account_disabled", "flow": "login"}));
    assert_eq!(types(&all[..3]), ["user.enabled", "login.failed", "user.disabled"]);

    // Delete: the event keeps the name nothing else will.
    let res = app.client.delete(&user_url).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let all = rows(&mut conn);
    let deleted = only(&all, "user.deleted");
    by_admin(deleted);
    assert_eq!(detail(deleted), json!({"username": "carol"}));
}

fn master() -> signet::keys::master::MasterKey {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD.decode(TEST_MASTER_KEY).unwrap();
    signet::keys::master::MasterKey::from_bytes(&bytes).unwrap()
}

async fn key_rotation_and_retirement_write_their_events(app: TestApp) {
    let schedule = signet::keys::rotation::Schedule::from_settings(&app.settings);
    let mut conn = app.conn();
    // The fresh database's first key.
    let all = rows(&mut conn);
    let first = only(&all, "key.rotated");
    assert_eq!((first.actor_id.as_deref(), first.subject_id.as_deref(), first.ip.as_deref()), (None, None, None));
    let first_kid = detail(first)["kid"].as_str().unwrap().to_owned();
    assert_eq!(detail(first)["reason"], "no_active_key");
    assert_eq!(detail(first)["algorithm"], "ES256");

    // A scheduled rotation records when the new key starts signing, not when it is published.
    let activation = signet::keys::rotation::Activation::Scheduled;
    signet::keys::commands::rotate(&mut conn, &master(), &schedule, app.clock_now(), activation).unwrap();
    assert_eq!(of_type(&rows(&mut conn), "key.rotated").len(), 1);
    app.clock.advance(schedule.prepublish + TimeDelta::seconds(1));
    app.tick().await;
    let all = rows(&mut conn);
    let rotated = of_type(&all, "key.rotated")[0];
    let second_kid = detail(rotated)["kid"].as_str().unwrap().to_owned();
    assert_ne!(second_kid, first_kid);
    assert_eq!(detail(rotated)["previous_kid"], first_kid.as_str());
    // Another step finds nothing to do and records nothing.
    app.tick().await;
    assert_eq!(rows(&mut conn).len(), all.len());

    // Retiring (revoking) the signing key: key.retired, then a replacement.
    let now = app.clock_now();
    signet::keys::commands::retire(&mut conn, &master(), &schedule, &second_kid, now).unwrap();
    let all = rows(&mut conn);
    let retired = only(&all, "key.retired");
    assert_eq!(detail(retired)["kid"], second_kid.as_str());
    assert_eq!(detail(retired)["reason"], "revoked");
    assert_eq!(types(&all[..2]), ["key.rotated", "key.retired"]);
    assert_eq!(detail(&all[0])["reason"], "no_active_key");
    // An unknown kid: an error, and no event.
    assert!(signet::keys::commands::retire(&mut conn, &master(), &schedule, "no-such-kid", now).is_err());
    assert_eq!(rows(&mut conn).len(), all.len());
}

async fn command_line_and_drf_actions_write_their_events(app: TestApp) {
    let app = app.restart_with(|s| s.compat.drf = true).await;
    let mut conn = app.conn();
    let hasher = signet::accounts::password::PasswordHasher::new(4);
    let policy = signet::accounts::password::PasswordPolicy { min_length: 8, min_strength: 3 };
    let now = app.clock_now();
    let dave = signet::accounts::commands::create_user(
        &mut conn,
        &hasher,
        &policy,
        "dave",
        None,
        vec!["staff".into()],
        PASSWORD,
        now,
    )
    .unwrap();
    signet::accounts::commands::set_roles(&mut conn, "dave", &["user".to_owned()], now).unwrap();
    let all = rows(&mut conn);
    let created = only(&all, "user.created");
    // The command line: no actor, no IP.
    assert_eq!((created.actor_id.as_deref(), created.ip.as_deref()), (None, None));
    assert_eq!(created.subject_id.as_deref(), Some(dave.id.as_str()));
    assert_eq!(detail(created)["roles"], json!(["staff", "user"]));
    let roles = only(&all, "user.roles_changed");
    assert_eq!((roles.actor_id.as_deref(), roles.ip.as_deref()), (None, None));
    assert_eq!(detail(roles), json!({"username": "dave", "from": ["staff", "user"], "to": ["user"]}));

    // DRF's obtain_auth_token: a password login that makes an API token.
    let res = app.post_json("/api-token-auth/", &json!({"username": "dave", "password": PASSWORD})).await;
    assert_eq!(res.status(), StatusCode::OK);
    let all = rows(&mut conn);
    let token_id = detail(only(&all, "api_token.created"))["token_id"].as_str().unwrap().to_owned();
    let login = only(&all, "login.succeeded");
    assert_eq!(
        (login.actor_id.as_deref(), login.subject_id.as_deref()),
        (Some(dave.id.as_str()), Some(dave.id.as_str()))
    );
    assert_eq!(detail(login), json!({"api_token_id": token_id}));
    assert_eq!(detail(only(&all, "api_token.created"))["name"], "api-token-auth");
}

async fn a_change_that_rolls_back_leaves_no_event_and_no_log_line(app: TestApp) {
    let admin = app.admin_token("lonely").await;
    let admin_id = claims_of(&admin)["sub"].as_str().unwrap().to_owned();
    let user_url = app.url(&format!("/v1/admin/users/{admin_id}"));
    let mut conn = app.conn();
    let before = rows(&mut conn).len();
    // Each change is made (and its event written) inside the transaction,
    // then the last-admin check refuses it and everything rolls back.
    let res = app.client.put(format!("{user_url}/roles")).bearer_auth(&admin).json(&json!({"roles": ["user"]}));
    assert_problem(res.send().await.unwrap(), 409, "last_admin").await;
    let res = app.client.patch(&user_url).bearer_auth(&admin).json(&json!({"disabled": true}));
    assert_problem(res.send().await.unwrap(), 409, "last_admin").await;
    assert_problem(app.client.delete(&user_url).bearer_auth(&admin).send().await.unwrap(), 409, "last_admin").await;
    assert_eq!(rows(&mut conn).len(), before, "{:#?}", rows(&mut conn));
    let logged = |kind: &str| audit_log_lines().iter().any(|l| l.contains(kind) && l.contains(&admin_id));
    for kind in ["user.roles_changed", "user.disabled", "user.deleted"] {
        assert!(!logged(kind), "a rolled-back {kind} was logged");
    }
    // The same changes on a second admin go through, and are logged.
    let other = app.register_ok("second").await;
    let other_id = other["id"].as_str().unwrap();
    let res = app
        .client
        .put(app.url(&format!("/v1/admin/users/{other_id}/roles")))
        .bearer_auth(&admin)
        .json(&json!({"roles": ["admin", "user"]}));
    assert_eq!(res.send().await.unwrap().status(), StatusCode::OK);
    let res = app.client.put(format!("{user_url}/roles")).bearer_auth(&admin).json(&json!({"roles": ["user"]}));
    assert_eq!(res.send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(of_type(&rows(&mut conn), "user.roles_changed").len(), 2);
    assert!(logged("user.roles_changed"));
}

/// `n` events written straight through the domain, one per distinct subject.
fn write_events(conn: &mut DbConnection, n: usize, kind: EventType, at: chrono::NaiveDateTime) -> Vec<String> {
    (0..n)
        .map(|_| {
            let subject = uuid::Uuid::new_v4().to_string();
            let event = Event::new(kind, &Actor::system(), at).subject(&subject);
            signet::audit::record(conn, event).unwrap();
            subject
        })
        .collect()
}

async fn pages_cover_every_event_exactly_once(app: TestApp) {
    let admin = app.admin_token("pager").await;
    let mut conn = app.conn();
    write_events(&mut conn, 40, EventType::UserCreated, app.clock_now());
    let expected: Vec<i64> = rows(&mut conn).iter().map(|r| r.id).collect();
    assert!(expected.len() >= 43, "{}", expected.len());

    let mut seen = Vec::new();
    let mut query = "?limit=7".to_owned();
    let mut pages = 0;
    loop {
        let page = audit_ok(&app, &admin, &query).await;
        pages += 1;
        let events = page["events"].as_array().unwrap();
        assert!(events.len() <= 7);
        seen.extend(events.iter().map(|e| e["id"].as_i64().unwrap()));
        // Events written while paging land on a new first page, not on later ones.
        write_events(&mut conn, 2, EventType::LoginFailed, app.clock_now());
        match page["next"].as_str() {
            Some(next) => query = format!("?limit=7&before={next}"),
            None => break,
        }
        assert!(pages < 100, "no end to the pages");
    }
    assert_eq!(seen, expected, "every event once, newest first");
    assert_eq!(pages, expected.len().div_ceil(7));
    let unique: HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len());

    // An event as the API shows it.
    let page = audit_ok(&app, &admin, "?type=user.created&limit=1").await;
    let event = &page["events"][0];
    let keys: HashSet<&str> = event.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, HashSet::from(["id", "at", "type", "actor_id", "subject_id", "ip", "detail"]));
    assert_eq!(event["type"], "user.created");
    assert!(event["at"].as_str().unwrap().ends_with('Z'), "{event}");
    assert!(event["detail"].is_object());
    // Exactly `limit` events left: the page that holds them is the last.
    let total = rows(&mut conn).len();
    let page = audit_ok(&app, &admin, &format!("?limit={}", total.min(200))).await;
    assert_eq!(page["events"].as_array().unwrap().len(), total.min(200));
    assert_eq!(page["next"].is_null(), total <= 200);
}

async fn filters_select_by_type_and_by_user(app: TestApp) {
    let admin = app.admin_token("filterer").await;
    let admin_id = claims_of(&admin)["sub"].as_str().unwrap().to_owned();
    let erin = app.register_ok("erin").await;
    let erin_id = erin["id"].as_str().unwrap().to_owned();
    app.login_ok("erin").await;
    app.disable_user(&admin, &erin_id).await;
    let mut conn = app.conn();
    let all = rows(&mut conn);
    let ids = |page: &Value| -> Vec<i64> {
        page["events"].as_array().unwrap().iter().map(|e| e["id"].as_i64().unwrap()).collect()
    };

    let page = audit_ok(&app, &admin, "?type=login.succeeded").await;
    let expected: Vec<i64> = of_type(&all, "login.succeeded").iter().map(|r| r.id).collect();
    assert_eq!(expected.len(), 2, "the admin's login and erin's");
    assert_eq!(ids(&page), expected);

    // Erin's events: those she did and those done to her (the admin's disable).
    let page = audit_ok(&app, &admin, &format!("?user_id={erin_id}")).await;
    let expected: Vec<i64> = all
        .iter()
        .filter(|r| {
            r.actor_id.as_deref() == Some(erin_id.as_str()) || r.subject_id.as_deref() == Some(erin_id.as_str())
        })
        .map(|r| r.id)
        .collect();
    assert_eq!(ids(&page), expected);
    let kinds: Vec<&str> = page["events"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["user.disabled", "login.succeeded", "user.created"]);
    assert_eq!(page["events"][0]["actor_id"], admin_id.as_str());

    // Both filters, and paging within them.
    let page = audit_ok(&app, &admin, &format!("?user_id={erin_id}&type=user.disabled")).await;
    assert_eq!(ids(&page), [expected[0]]);
    let page = audit_ok(&app, &admin, &format!("?user_id={erin_id}&limit=2")).await;
    assert_eq!(ids(&page), expected[..2]);
    let next = page["next"].as_str().unwrap();
    let page = audit_ok(&app, &admin, &format!("?user_id={erin_id}&limit=2&before={next}")).await;
    assert_eq!(ids(&page), expected[2..]);
    assert!(page["next"].is_null());
    // Upper-case ids match too; a user with no events gets an empty page.
    let page = audit_ok(&app, &admin, &format!("?user_id={}", erin_id.to_uppercase())).await;
    assert_eq!(ids(&page), expected);
    let page = audit_ok(&app, &admin, &format!("?user_id={}", uuid::Uuid::new_v4())).await;
    assert_eq!(page, json!({"events": [], "next": null}));
}

async fn only_admins_read_the_trail_and_bad_queries_are_400(app: TestApp) {
    let admin = app.admin_token("boss").await;
    app.register_ok("frank").await;
    let frank = app.login_ok("frank").await;
    let res = app.get("/v1/admin/audit", None).await;
    assert_problem(res, 401, "missing_token").await;
    let res = app.get("/v1/admin/audit", Some("not-a-token")).await;
    assert_problem(res, 401, "invalid_token").await;
    let res = audit(&app, &frank.access, "").await;
    let www = crate::helpers::www_authenticate(&res);
    assert_problem(res, 403, "insufficient_role").await;
    assert!(www.contains("insufficient_scope"), "{www}");
    // An API token is no admin login, even the admin's own.
    let res = app.client.post(app.url("/v1/auth/api-tokens")).bearer_auth(&admin).json(&json!({"name": "t"}));
    let token: Value = res.send().await.unwrap().json().await.unwrap();
    let res = app
        .client
        .get(app.url("/v1/admin/audit"))
        .header("authorization", format!("Token {}", token["token"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_problem(res, 401, "missing_token").await;
    // A revoked admin session is refused at once.
    let LoggedIn { access, refresh, .. } = app.login_ok("boss").await;
    assert_eq!(
        app.post_json("/v1/auth/logout", &json!({"refresh_token": refresh})).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_problem(audit(&app, &access, "").await, 401, "invalid_token").await;

    let page = audit_ok(&app, &admin, "").await;
    let next = page["next"].clone();
    assert!(next.is_null(), "a handful of events fits the default page");
    use base64::Engine;
    let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("audit:-5");
    for query in [
        "?type=login".to_owned(),
        "?type=".to_owned(),
        "?type=LOGIN.SUCCEEDED".to_owned(),
        "?user_id=frank".to_owned(),
        "?user_id=".to_owned(),
        "?limit=0".to_owned(),
        "?limit=201".to_owned(),
        "?limit=ten".to_owned(),
        "?limit=".to_owned(),
        "?before=42".to_owned(),
        "?before=not%20a%20cursor".to_owned(),
        format!("?before={forged}"),
        "?offset=10".to_owned(),
        "?type=user.created&type=user.deleted".to_owned(),
    ] {
        let body = assert_problem(audit(&app, &admin, &query).await, 400, "malformed_request").await;
        assert!(!body["detail"].as_str().unwrap().is_empty(), "{query}");
    }
    // The documented extremes are fine.
    audit_ok(&app, &admin, "?limit=1").await;
    audit_ok(&app, &admin, "?limit=200").await;
}

async fn events_past_the_retention_are_purged(app: TestApp) {
    let retention = TimeDelta::days(app.settings.audit.retention_days);
    let mut conn = app.conn();
    // More old events than one batch holds (SQLite 200, PostgreSQL 1000).
    let start = app.clock_now();
    let old = write_events(&mut conn, 1050, EventType::LoginFailed, start - TimeDelta::days(1));
    app.register_ok("grace").await;
    let kept_first = rows(&mut conn).len() - old.len();
    app.clock.advance(TimeDelta::days(2));
    app.login_ok("grace").await;

    // Now + retention - 1 day: only the events a day before `start` are past it.
    let now = start + retention;
    let pace = Pace::for_backend(&conn);
    let report = maintenance::purge(&mut conn, &app.settings, now, pace).unwrap();
    assert_eq!(report.get("audit_events"), old.len() as u64, "{report}");
    let left = rows(&mut conn);
    assert_eq!(left.len(), kept_first + 1);
    assert!(left.iter().all(|r| r.at >= now - retention), "{left:#?}");
    let again = maintenance::purge(&mut conn, &app.settings, now, pace).unwrap();
    assert_eq!(again.get("audit_events"), 0);

    // Two days on, the events of `start` (key, registration) are past it too; the login stays.
    let later = now + TimeDelta::days(1) + TimeDelta::seconds(1);
    let report = maintenance::purge(&mut conn, &app.settings, later, pace).unwrap();
    assert_eq!(report.get("audit_events"), kept_first as u64, "{report}");
    assert_eq!(types(&rows(&mut conn)), ["login.succeeded"]);

    // `signet gc` (system clock) runs the same job.
    let system_now = chrono::Utc::now().naive_utc();
    write_events(&mut conn, 3, EventType::UserDeleted, system_now - retention - TimeDelta::days(1));
    write_events(&mut conn, 1, EventType::UserDeleted, system_now);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_signet"))
        .arg("gc")
        .env("SIGNET__DATABASE__URL", app.db.url())
        .env("SIGNET__KEYS__MASTER_KEY", TEST_MASTER_KEY)
        .env_remove("DATABASE_URL")
        .env_remove("SIGNET_CONFIG")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("audit_events: 3"), "{stdout}");
    assert_eq!(of_type(&rows(&mut conn), "user.deleted").len(), 1);
}

/// The real binary with JSON logs: run every kind of action with known
/// secrets, then search every audit row and every `signet::audit` line.
async fn no_event_and_no_audit_log_line_holds_a_secret(app: TestApp) {
    let url = app.db.url().to_owned();
    create_admin(&url, "warden");
    let mut served = crate::shutdown::Served::start(
        &url,
        &[("SIGNET__LOG__FORMAT", "json"), ("SIGNET__PASSWORDS__BCRYPT_COST", "4"), ("SIGNET__COMPAT__DRF", "true")],
    );
    let client = reqwest::Client::new();
    let at = |path: &str| format!("{}{path}", served.address);
    let post = |path: &str, body: Value| client.post(at(path)).json(&body).send();
    let login = |name: &str, password: &str| post("/v1/auth/login", json!({"username": name, "password": password}));
    let pair = |res: Response| async move {
        assert_eq!(res.status(), StatusCode::OK);
        LoggedIn::from_pair(res.json().await.unwrap())
    };
    let mut secrets: Vec<String> = vec![PASSWORD.into(), NEW_PASSWORD.into(), WRONG_PASSWORD.into()];

    let admin = pair(login("warden", PASSWORD).await.unwrap()).await;
    let res = post("/v1/auth/register", json!({"username": "gina", "password": PASSWORD})).await.unwrap();
    let gina_id = res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let first = pair(login("gina", PASSWORD).await.unwrap()).await;
    let second = pair(post("/v1/auth/refresh", json!({"refresh_token": first.refresh})).await.unwrap()).await;
    let reuse = post("/v1/auth/refresh", json!({"refresh_token": first.refresh})).await.unwrap();
    assert_eq!(reuse.status(), StatusCode::UNAUTHORIZED);
    let third = pair(login("gina", PASSWORD).await.unwrap()).await;
    let res = client.post(at("/v1/auth/api-tokens")).bearer_auth(&third.access).json(&json!({"name": "script"}));
    let api_token: Value = res.send().await.unwrap().json().await.unwrap();
    let exchanged = client
        .post(at("/v1/auth/token-exchange"))
        .header("authorization", format!("Token {}", api_token["token"].as_str().unwrap()))
        .send();
    let exchanged: Value = exchanged.await.unwrap().json().await.unwrap();
    let res = client
        .post(at("/v1/auth/password"))
        .bearer_auth(&third.access)
        .json(&json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(login("gina", WRONG_PASSWORD).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    assert_eq!(login(WRONG_PASSWORD, PASSWORD).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    let drf = post("/api-token-auth/", json!({"username": "gina", "password": NEW_PASSWORD})).await.unwrap();
    let drf: Value = drf.json().await.unwrap();
    let res = post("/v1/auth/logout", json!({"refresh_token": third.refresh})).await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let user_url = at(&format!("/v1/admin/users/{gina_id}"));
    let res = client.put(format!("{user_url}/roles")).bearer_auth(&admin.access).json(&json!({"roles": ["user", "x"]}));
    assert_eq!(res.send().await.unwrap().status(), StatusCode::OK);
    let res = client.patch(&user_url).bearer_auth(&admin.access).json(&json!({"disabled": true})).send();
    assert_eq!(res.await.unwrap().status(), StatusCode::OK);
    // The hashes, read before the user goes.
    let mut conn = app.conn();
    let hashes: Vec<String> = users::table.select(users::password_hash).load(&mut **conn).unwrap();
    let token_hashes: Vec<String> = api_tokens::table.select(api_tokens::token_hash).load(&mut **conn).unwrap();
    assert!(hashes.len() == 2 && token_hashes.len() == 2, "{hashes:?} {token_hashes:?}");
    let res = client.delete(&user_url).bearer_auth(&admin.access).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let trail = client.get(at("/v1/admin/audit?limit=200")).bearer_auth(&admin.access).send().await.unwrap();
    let trail: Value = trail.json().await.unwrap();
    served.signal("TERM");
    assert!(served.wait_exit().success());

    for token in [
        &admin.access,
        &admin.refresh,
        &first.access,
        &first.refresh,
        &second.access,
        &second.refresh,
        &third.access,
        &third.refresh,
    ] {
        secrets.push(token.clone());
    }
    secrets.extend(
        [&api_token["token"], &exchanged["access_token"], &drf["token"]].iter().map(|t| t.as_str().unwrap().to_owned()),
    );
    secrets.extend(hashes);
    secrets.extend(token_hashes);
    // The API token's shown prefix is a piece of the secret too.
    secrets.push(api_token["prefix"].as_str().unwrap().to_owned());

    let all = rows(&mut conn);
    let kinds: HashSet<&str> = all.iter().map(|r| r.kind.as_str()).collect();
    for kind in [
        "user.created",
        "login.succeeded",
        "login.failed",
        "refresh.reused",
        "api_token.created",
        "password.changed",
        "session.revoked",
        "user.roles_changed",
        "user.disabled",
        "user.deleted",
        "key.rotated",
    ] {
        assert!(kinds.contains(kind), "no {kind} in {kinds:?}");
    }
    let lines: Vec<&String> = served
        .seen
        .iter()
        .filter(|line| serde_json::from_str::<Value>(line).is_ok_and(|v| v["target"] == "signet::audit"))
        .collect();
    // One line per event the served binary wrote: all but the CLI's
    // user.created and the first key.rotated (by this test's own app, which
    // made the database and its key).
    assert_eq!(lines.len(), all.len() - 2, "{lines:#?}");
    for row in all.iter().filter(|r| r.actor_id.is_some()) {
        let id = row.subject_id.as_deref().unwrap_or("-");
        assert!(lines.iter().any(|l| l.contains(&row.kind) && l.contains(id)), "no log line for {row:?}");
    }
    for row in &all {
        let text = format!("{row:?}");
        for secret in &secrets {
            assert!(!text.contains(secret.as_str()), "a secret in an audit row: {text}");
        }
    }
    for line in &lines {
        for secret in &secrets {
            assert!(!line.contains(secret.as_str()), "a secret in an audit log line: {line}");
        }
    }
    let served_trail = trail.to_string();
    assert!(trail["events"].as_array().unwrap().len() >= 15, "{trail}");
    for secret in &secrets {
        assert!(!served_trail.contains(secret.as_str()), "a secret in GET /v1/admin/audit");
    }
}

fn create_admin(db_url: &str, username: &str) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_signet"))
        .args(["users", "create", username, "--role", "admin", "--password-stdin"])
        .env("SIGNET__DATABASE__URL", db_url)
        .env("SIGNET__PASSWORDS__BCRYPT_COST", "4")
        .env("SIGNET__KEYS__MASTER_KEY", TEST_MASTER_KEY)
        .env_remove("DATABASE_URL")
        .env_remove("SIGNET_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(format!("{PASSWORD}\n").as_bytes()).unwrap();
    assert!(child.wait().unwrap().success());
}

#[test]
fn openapi_lists_exactly_the_event_types() {
    let doc: Value = serde_norway::from_str(signet::http::OPENAPI_YAML).unwrap();
    let listed: Vec<&str> = doc["components"]["schemas"]["AuditEventType"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let known: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
    assert_eq!(listed, known);
    let filters = &doc["paths"]["/v1/admin/audit"]["get"]["parameters"];
    assert_eq!(filters[0]["schema"]["$ref"], "#/components/schemas/AuditEventType");
}

/// `client.created` and `client.deleted`, by the admin from their IP, with
/// the client's id (never its secret); a failed delete (unknown client)
/// writes nothing.
async fn oauth_client_changes_write_their_events(app: TestApp) {
    let admin = app.admin_token("root").await;
    let admin_id = claims_of(&admin)["sub"].as_str().unwrap().to_owned();
    let res = app
        .client
        .post(app.url("/v1/admin/clients"))
        .bearer_auth(&admin)
        .json(&json!({"name": "billing", "roles": ["billing"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let created: Value = res.json().await.unwrap();
    let (client_id, secret) = (created["client_id"].as_str().unwrap(), created["client_secret"].as_str().unwrap());
    let mut conn = app.conn();
    let all = rows(&mut conn);
    let event = only(&all, "client.created");
    assert_eq!(event.actor_id.as_deref(), Some(admin_id.as_str()));
    assert_eq!(event.ip.as_deref(), Some(LOCALHOST));
    assert_eq!(detail(event), json!({"client_id": client_id, "name": "billing", "roles": ["billing"]}));
    assert!(!event.detail.contains(secret));

    let unknown = app.url("/v1/admin/clients/00000000-0000-4000-8000-000000000000");
    assert_eq!(app.client.delete(unknown).bearer_auth(&admin).send().await.unwrap().status(), StatusCode::NOT_FOUND);
    assert!(of_type(&rows(&mut conn), "client.deleted").is_empty(), "a failed delete writes nothing");

    let res = app.client.delete(app.url(&format!("/v1/admin/clients/{client_id}"))).bearer_auth(&admin).send();
    assert_eq!(res.await.unwrap().status(), StatusCode::NO_CONTENT);
    let all = rows(&mut conn);
    let event = only(&all, "client.deleted");
    assert_eq!(event.actor_id.as_deref(), Some(admin_id.as_str()));
    assert_eq!(detail(event), json!({"client_id": client_id}));
}
