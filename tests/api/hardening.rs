//! Issue 11: no credential may outgrow the login behind it, and every
//! password check is throttled. One test per item, on both backends.

use chrono::TimeDelta;
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};

use crate::backend_tests;
use signet::config::Settings;

use crate::helpers::{assert_problem, claims_of, www_authenticate, TestApp, PASSWORD};

backend_tests!(
    derived_tokens_cannot_mint_credentials_or_change_the_password,
    wrong_current_passwords_count_toward_the_lockout,
    password_changes_spend_the_per_ip_login_budget,
    parallel_wrong_logins_never_pass_the_lockout,
    parallel_right_logins_are_never_taken_for_a_lockout,
    a_password_change_revokes_api_tokens,
    drf_api_token_auth_tokens_expire,
    the_last_admin_cannot_be_demoted_disabled_or_deleted,
    two_admins_demoting_each_other_at_once_leave_one,
    a_refresh_waits_for_a_revocation_in_flight_and_refuses,
    api_token_use_is_recorded_at_most_once_a_minute,
    token_exchange_is_rate_limited_per_api_token,
);

const NEW_PASSWORD: &str = "a quite different passphrase 77";

async fn create_api_token(app: &TestApp, path: &str, access: &str) -> Response {
    app.client.post(app.url(path)).bearer_auth(access).json(&json!({"name": "t"})).send().await.unwrap()
}

async fn new_api_token(app: &TestApp, access: &str) -> String {
    let res = create_api_token(app, "/v1/auth/api-tokens", access).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    res.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_owned()
}

async fn exchange(app: &TestApp, secret: &str) -> Response {
    app.client
        .post(app.url("/v1/auth/token-exchange"))
        .header("authorization", format!("Token {secret}"))
        .send()
        .await
        .unwrap()
}

async fn exchanged(app: &TestApp, secret: &str) -> String {
    let res = exchange(app, secret).await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned()
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

async fn assert_insufficient(res: Response) {
    assert_eq!(www_authenticate(&res), "Bearer realm=\"signet\", error=\"insufficient_user_authentication\"");
    assert_problem(res, 401, "insufficient_user_authentication").await;
}

/// Item 1: sgt_X → exchange → create sgt_Y is refused, and so is a password
/// change; a password-login token and a refreshed one are allowed.
async fn derived_tokens_cannot_mint_credentials_or_change_the_password(app: TestApp) {
    let user = app.register_ok("amr-user").await;
    let login = app.login_ok("amr-user").await;
    assert_eq!(claims_of(&login.access)["amr"], json!(["pwd"]));
    let sgt_x = new_api_token(&app, &login.access).await;
    let derived = exchanged(&app, &sgt_x).await;
    assert!(claims_of(&derived).get("amr").is_none_or(|amr| amr == &json!([])), "{}", claims_of(&derived));

    assert_insufficient(create_api_token(&app, "/v1/auth/api-tokens", &derived).await).await;
    assert_insufficient(change_password(&app, &derived, PASSWORD, NEW_PASSWORD).await).await;
    // The derived token still works where a token is enough.
    assert_eq!(app.get("/v1/auth/me", Some(&derived)).await.status(), StatusCode::OK);

    // The admin variant: an admin's exchanged token cannot mint for others either.
    let admin = app.admin_token("amr-admin").await;
    let admin_sgt = new_api_token(&app, &admin).await;
    let admin_derived = exchanged(&app, &admin_sgt).await;
    let path = format!("/v1/admin/users/{}/api-tokens", user["id"].as_str().unwrap());
    assert_insufficient(create_api_token(&app, &path, &admin_derived).await).await;
    assert_eq!(create_api_token(&app, &path, &admin).await.status(), StatusCode::CREATED);

    // A refresh of a password login keeps `pwd`.
    let res = app.refresh(&login.refresh).await;
    assert_eq!(res.status(), StatusCode::OK);
    let refreshed = res.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(claims_of(&refreshed)["amr"], json!(["pwd"]));
    assert_eq!(create_api_token(&app, "/v1/auth/api-tokens", &refreshed).await.status(), StatusCode::CREATED);
    let res = change_password(&app, &refreshed, PASSWORD, NEW_PASSWORD).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
}

fn lockout_after_3(s: &mut Settings) {
    s.throttle.failures_before_lockout = 3;
}

/// Item 2: a wrong `current_password` counts toward the account's lockout,
/// and a locked account answers 429 there too, even with the right password;
/// the login is locked by the same count.
async fn wrong_current_passwords_count_toward_the_lockout(app: TestApp) {
    let app = app.restart_with(lockout_after_3).await;
    app.register_ok("oracle").await;
    let login = app.login_ok("oracle").await;
    for _ in 0..3 {
        assert_problem(
            change_password(&app, &login.access, "not it at all 123", NEW_PASSWORD).await,
            401,
            "invalid_credentials",
        )
        .await;
    }
    let res = change_password(&app, &login.access, PASSWORD, NEW_PASSWORD).await;
    assert!(res.headers().contains_key("retry-after"));
    assert_problem(res, 429, "too_many_requests").await;
    assert_problem(app.login("oracle", PASSWORD).await, 429, "too_many_requests").await;
}

/// Item 2: password changes spend the client IP's login budget.
async fn password_changes_spend_the_per_ip_login_budget(app: TestApp) {
    let app = app
        .restart_with(|s: &mut Settings| {
            s.throttle.per_ip_burst = 3;
            s.throttle.per_ip_per_minute = 1;
        })
        .await;
    app.register_ok("budget").await;
    let login = app.login_ok("budget").await;
    for _ in 0..2 {
        assert_eq!(
            change_password(&app, &login.access, "not it at all 123", NEW_PASSWORD).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_problem(change_password(&app, &login.access, PASSWORD, NEW_PASSWORD).await, 429, "too_many_requests").await;
}

/// Item 3: twenty parallel wrong logins over two instances with a limit of 3:
/// exactly 3 are checked (401), the rest refused unchecked (429). bcrypt at
/// cost 8 keeps each check in flight long enough for the race to show.
async fn parallel_wrong_logins_never_pass_the_lockout(app: TestApp) {
    let configure = |s: &mut Settings| {
        s.throttle.failures_before_lockout = 3;
        s.passwords.bcrypt_cost = 8;
    };
    let app = app.restart_with(configure).await;
    let peer = app.spawn_peer(configure).await;
    app.register_ok("racer").await;
    let attempts = (0..20).map(|i| {
        let target = if i % 2 == 0 { &app } else { &peer };
        target.login("racer", "wrong password guess 1")
    });
    let statuses: Vec<u16> =
        futures_util::future::join_all(attempts).await.iter().map(|r| r.status().as_u16()).collect();
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((checked, refused), (3, 17), "{statuses:?}");
}

/// Items 2+3, the other side: parallel logins with the right password, on two
/// instances, are never refused as locked while the limit is far away. (On
/// PostgreSQL a success deleting the throttle row between another attempt's
/// insert and update once made that attempt answer 429.)
async fn parallel_right_logins_are_never_taken_for_a_lockout(app: TestApp) {
    let configure = |s: &mut Settings| s.throttle.failures_before_lockout = 100;
    let app = app.restart_with(configure).await;
    let peer = app.spawn_peer(configure).await;
    app.register_ok("popular").await;
    let attempts = (0..24).map(|i| if i % 2 == 0 { &app } else { &peer }.login("popular", PASSWORD));
    let statuses: Vec<u16> =
        futures_util::future::join_all(attempts).await.iter().map(|r| r.status().as_u16()).collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
}

async fn me_with_api_token(app: &TestApp, secret: &str) -> StatusCode {
    let res = app.client.get(app.url("/v1/auth/me")).header("authorization", format!("Token {secret}")).send().await;
    res.unwrap().status()
}

/// Item 4: a password change revokes the user's API tokens (another user's stay).
async fn a_password_change_revokes_api_tokens(app: TestApp) {
    app.register_ok("rotator").await;
    app.register_ok("bystander").await;
    let login = app.login_ok("rotator").await;
    let mine = new_api_token(&app, &login.access).await;
    let theirs = new_api_token(&app, &app.login_ok("bystander").await.access).await;
    assert_eq!(me_with_api_token(&app, &mine).await, StatusCode::OK);
    assert_eq!(change_password(&app, &login.access, PASSWORD, NEW_PASSWORD).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(me_with_api_token(&app, &mine).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me_with_api_token(&app, &theirs).await, StatusCode::OK);
    // The caller's own session stays.
    assert_eq!(app.get("/v1/auth/me", Some(&login.access)).await.status(), StatusCode::OK);
}

/// Item 4: `/api-token-auth/` tokens live `compat.drf_token_days` (default 90).
async fn drf_api_token_auth_tokens_expire(app: TestApp) {
    let app = app
        .restart_with(|s: &mut Settings| {
            s.compat.drf = true;
            assert_eq!(s.compat.drf_token_days, 90, "the default");
            s.compat.drf_token_days = 2;
        })
        .await;
    app.register_ok("drf-expiry").await;
    let res = app
        .client
        .post(app.url("/api-token-auth/"))
        .json(&json!({"username": "drf-expiry", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let secret = res.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_owned();
    app.clock.advance(TimeDelta::days(2) - TimeDelta::seconds(5));
    assert_eq!(me_with_api_token(&app, &secret).await, StatusCode::OK);
    app.clock.advance(TimeDelta::seconds(10));
    assert_eq!(me_with_api_token(&app, &secret).await, StatusCode::UNAUTHORIZED);
}

fn admin_request(app: &TestApp, method: reqwest::Method, path: &str, token: &str) -> reqwest::RequestBuilder {
    app.client.request(method, app.url(path)).bearer_auth(token)
}

async fn demote(app: &TestApp, token: &str, user_id: &str) -> Response {
    let path = format!("/v1/admin/users/{user_id}/roles");
    admin_request(app, reqwest::Method::PUT, &path, token).json(&json!({"roles": ["user"]})).send().await.unwrap()
}

/// Item 9: the only enabled admin cannot remove itself in any of three ways;
/// with a second admin it can.
async fn the_last_admin_cannot_be_demoted_disabled_or_deleted(app: TestApp) {
    let root = app.admin_token("root").await;
    let root_id = claims_of(&root)["sub"].as_str().unwrap().to_owned();
    let path = format!("/v1/admin/users/{root_id}");
    assert_problem(demote(&app, &root, &root_id).await, 409, "last_admin").await;
    let res = admin_request(&app, reqwest::Method::PATCH, &path, &root).json(&json!({"disabled": true})).send();
    assert_problem(res.await.unwrap(), 409, "last_admin").await;
    let res = admin_request(&app, reqwest::Method::DELETE, &path, &root).send();
    assert_problem(res.await.unwrap(), 409, "last_admin").await;
    // A disabled admin does not count: one enabled admin is still the last.
    let other = app.admin_token("sleeper").await;
    let other_id = claims_of(&other)["sub"].as_str().unwrap().to_owned();
    app.disable_user(&root, &other_id).await;
    assert_problem(demote(&app, &root, &root_id).await, 409, "last_admin").await;
    // With a second enabled admin, demoting oneself works.
    let second = app.admin_token("second").await;
    assert_eq!(demote(&app, &root, &root_id).await.status(), StatusCode::OK);
    assert_eq!(app.get("/v1/admin/users", Some(&second)).await.status(), StatusCode::OK);
}

/// Item 9: two admins demoting each other at once never both succeed, round
/// after round; an enabled admin always remains.
async fn two_admins_demoting_each_other_at_once_leave_one(app: TestApp) {
    for round in 0..8 {
        let a = app.admin_token(&format!("alice{round}")).await;
        let b = app.admin_token(&format!("bob{round}")).await;
        let (a_id, b_id) =
            (claims_of(&a)["sub"].as_str().unwrap().to_owned(), claims_of(&b)["sub"].as_str().unwrap().to_owned());
        let (first, second) = tokio::join!(demote(&app, &a, &b_id), demote(&app, &b, &a_id));
        let ok = [first.status(), second.status()].iter().filter(|s| **s == StatusCode::OK).count();
        assert_eq!(ok, 1, "round {round}: {} and {}", first.status(), second.status());
        let remaining = if first.status() == StatusCode::OK { &a } else { &b };
        // The winner is still an admin; take it down so the next round starts with none.
        let winner = claims_of(remaining)["sub"].as_str().unwrap().to_owned();
        let mut conn = app.conn();
        signet::accounts::model::set_roles(&mut conn, &winner, &["user".to_owned()], app.clock_now()).unwrap();
    }
}

/// A transaction on its own connection that revokes (runs `statement`) and
/// holds its locks until told to commit, as a logout or an admin disable does
/// while a refresh arrives.
fn revoke_in_flight(app: &TestApp, statement: String) -> (std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>) {
    use diesel::connection::SimpleConnection;
    let url = app.db.url().to_owned();
    let begin = match app.backend {
        crate::helpers::Backend::Sqlite => "BEGIN IMMEDIATE",
        crate::helpers::Backend::Postgres => "BEGIN",
    };
    let (updated_tx, updated_rx) = std::sync::mpsc::channel();
    let (commit_tx, commit_rx) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        let mut conn = crate::helpers::raw_conn(&url);
        conn.batch_execute(&format!("{begin}; {statement}")).expect("revoking statement");
        updated_tx.send(()).unwrap();
        commit_rx.recv().unwrap();
        conn.batch_execute("COMMIT").expect("commit");
    });
    updated_rx.recv().expect("the revoking transaction started");
    (commit_tx, thread)
}

/// Item 10: a refresh that starts while a logout or a disable is committing
/// waits for it and then refuses; it never mints a pair after the revocation.
/// (Before the fix, PostgreSQL answered 200 at once: the refresh's own update
/// touched other rows and read the session and user from its snapshot.)
async fn a_refresh_waits_for_a_revocation_in_flight_and_refuses(app: TestApp) {
    app.register_ok("racer").await;
    for revocation in ["logout", "disable"] {
        if revocation == "disable" {
            // A new user: the first one's sessions are all revoked by now.
            app.register_ok("racer2").await;
        }
        let user = if revocation == "logout" { "racer" } else { "racer2" };
        let pair = app.login_ok(user).await;
        let sid = claims_of(&pair.refresh)["sid"].as_str().unwrap().to_owned();
        let statement = match revocation {
            "logout" => format!(
                "UPDATE sessions SET revoked_at = CURRENT_TIMESTAMP, revoked_reason = 'logout' WHERE id = '{sid}'"
            ),
            _ => format!("UPDATE users SET disabled = true WHERE id = '{}'", pair.user_id),
        };
        let (commit, thread) = revoke_in_flight(&app, statement);

        let refresh = {
            let (client, url, token) = (app.client.clone(), app.url("/v1/auth/refresh"), pair.refresh.clone());
            tokio::spawn(async move { client.post(url).json(&json!({"refresh_token": token})).send().await.unwrap() })
        };
        // Give the refresh time to reach the database and, before the fix, to finish.
        tokio::time::sleep(std::time::Duration::from_millis(700)).await;
        commit.send(()).unwrap();
        tokio::task::spawn_blocking(move || thread.join().unwrap()).await.unwrap();

        let res = refresh.await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{revocation}: a refresh racing it must not mint");
        let again = app.refresh(&pair.refresh).await;
        assert_eq!(again.status(), StatusCode::UNAUTHORIZED, "{revocation}: and the token stays dead");
    }
}

fn api_token_last_used(app: &TestApp) -> Option<chrono::NaiveDateTime> {
    use diesel::prelude::*;
    use signet::db::schema::api_tokens;
    api_tokens::table.select(api_tokens::last_used_at).get_result(&mut **app.conn()).expect("one API token")
}

/// Item 14: `Authorization: Token` reads do not each write `last_used_at`:
/// a use within a minute of the recorded one leaves it; a later one moves it.
async fn api_token_use_is_recorded_at_most_once_a_minute(app: TestApp) {
    app.register_ok("reader").await;
    let login = app.login_ok("reader").await;
    let secret = new_api_token(&app, &login.access).await;
    let me = |app: &TestApp| {
        app.client.get(app.url("/v1/auth/me")).header("authorization", format!("Token {secret}")).send()
    };
    assert_eq!(api_token_last_used(&app), None);

    assert_eq!(me(&app).await.unwrap().status(), StatusCode::OK);
    let first = api_token_last_used(&app).expect("the first use is recorded");
    assert_eq!(first, app.clock_now());

    app.clock.advance(TimeDelta::seconds(30));
    assert_eq!(me(&app).await.unwrap().status(), StatusCode::OK);
    assert_eq!(api_token_last_used(&app), Some(first), "a use 30 s later writes nothing");

    app.clock.advance(TimeDelta::seconds(31));
    assert_eq!(me(&app).await.unwrap().status(), StatusCode::OK);
    assert_eq!(api_token_last_used(&app), Some(app.clock_now()), "a use a minute on is recorded");
}

/// Item 14: one API token cannot be exchanged for JWTs without end; the budget
/// is the token's own (another token of the same user is not slowed).
async fn token_exchange_is_rate_limited_per_api_token(app: TestApp) {
    let app = app.restart_with(|s: &mut Settings| s.throttle.token_exchanges_per_minute = 1).await;
    app.register_ok("exchanger").await;
    let login = app.login_ok("exchanger").await;
    let (first, second) = (new_api_token(&app, &login.access).await, new_api_token(&app, &login.access).await);

    exchanged(&app, &first).await;
    let throttled = exchange(&app, &first).await;
    let retry_after: u64 = throttled.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=61).contains(&retry_after), "Retry-After {retry_after}");
    assert_problem(throttled, 429, "too_many_requests").await;

    exchanged(&app, &second).await;
}
