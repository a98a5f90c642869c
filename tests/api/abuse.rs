//! Throttling, rate limits, input limits and log hygiene.

use chrono::TimeDelta;
use reqwest::StatusCode;
use serde_json::json;

use signet::config::Settings;

use crate::backend_tests;
use crate::helpers::{assert_problem, captured_logs, TestApp, PASSWORD};

backend_tests!(
    lockout_blocks_even_the_right_password_expires_doubles_and_is_capped,
    attempts_during_a_lockout_do_not_lengthen_it,
    unknown_and_known_usernames_lock_out_alike,
    per_ip_rate_limits_answer_429,
    forwarded_for_counts_only_behind_a_trusted_proxy,
    oversized_headers_and_deep_json_get_problem_documents,
    logs_never_contain_passwords_or_tokens,
    a_login_flood_beyond_the_hashing_queue_is_refused_at_once,
);

/// Lock out after 3 failures, for 60 s doubling up to 200 s.
fn throttle(s: &mut Settings) {
    s.throttle.failures_before_lockout = 3;
    s.throttle.lockout_secs = 60;
    s.throttle.max_lockout_secs = 200;
}

async fn retry_after(res: &reqwest::Response) -> i64 {
    res.headers()["retry-after"].to_str().unwrap().parse().unwrap()
}

async fn assert_locked(app: &TestApp, username: &str, password: &str) -> i64 {
    let res = app.login(username, password).await;
    let wait = retry_after(&res).await;
    assert_problem(res, 429, "too_many_requests").await;
    wait
}

async fn fail(app: &TestApp, username: &str) {
    assert_problem(app.login(username, "wrong-password-guess").await, 401, "invalid_credentials").await;
}

async fn lockout_blocks_even_the_right_password_expires_doubles_and_is_capped(app: TestApp) {
    let app = TestApp::spawn_with(app.backend, throttle).await;
    app.register_ok("target").await;
    for _ in 0..3 {
        fail(&app, "target").await;
    }
    let wait = assert_locked(&app, "target", PASSWORD).await;
    assert!((1..=60).contains(&wait), "first Retry-After at most lockout_secs: {wait}");

    app.clock.advance(TimeDelta::seconds(61));
    // Failures go on: every further one locks for twice as long, up to the cap.
    fail(&app, "target").await;
    assert_eq!(assert_locked(&app, "target", PASSWORD).await, 120);
    app.clock.advance(TimeDelta::seconds(121));
    fail(&app, "target").await;
    assert_eq!(assert_locked(&app, "target", PASSWORD).await, 200, "capped");
    app.clock.advance(TimeDelta::seconds(201));
    fail(&app, "target").await;
    assert_eq!(assert_locked(&app, "target", PASSWORD).await, 200, "never longer than the cap");

    // It ends on time, and a success resets it.
    app.clock.advance(TimeDelta::seconds(201));
    app.login_ok("target").await;
    fail(&app, "target").await;
    fail(&app, "target").await;
    app.login_ok("target").await;
}

async fn attempts_during_a_lockout_do_not_lengthen_it(app: TestApp) {
    let app = TestApp::spawn_with(app.backend, throttle).await;
    app.register_ok("patient").await;
    for _ in 0..3 {
        fail(&app, "patient").await;
    }
    app.clock.advance(TimeDelta::seconds(30));
    for _ in 0..5 {
        let wait = assert_locked(&app, "patient", "wrong-password-guess").await;
        assert!(wait <= 30, "{wait}");
    }
    app.clock.advance(TimeDelta::seconds(31));
    app.login_ok("patient").await;
}

async fn unknown_and_known_usernames_lock_out_alike(app: TestApp) {
    let app = TestApp::spawn_with(app.backend, throttle).await;
    app.register_ok("real").await;
    for _ in 0..3 {
        fail(&app, "real").await;
        fail(&app, "ghost").await;
    }
    let real = app.login("real", "wrong-password-guess").await;
    let ghost = app.login("ghost", "wrong-password-guess").await;
    assert_eq!(real.headers().get("retry-after"), ghost.headers().get("retry-after"));
    let real = assert_problem(real, 429, "too_many_requests").await;
    let ghost = assert_problem(ghost, 429, "too_many_requests").await;
    assert_eq!(real, ghost);
}

async fn per_ip_rate_limits_answer_429(app: TestApp) {
    let app = TestApp::spawn_with(app.backend, |s: &mut Settings| {
        s.throttle.per_ip_per_minute = 1;
        s.throttle.per_ip_burst = 3;
    })
    .await;
    for _ in 0..3 {
        assert_ne!(app.login("someone", "wrong-password-guess").await.status(), StatusCode::TOO_MANY_REQUESTS);
    }
    let res = app.login("someone", "wrong-password-guess").await;
    assert!(retry_after(&res).await >= 1);
    assert_problem(res, 429, "too_many_requests").await;
    // Each endpoint has its own budget.
    for _ in 0..3 {
        assert_ne!(app.refresh("garbage").await.status(), StatusCode::TOO_MANY_REQUESTS);
    }
    assert_problem(app.refresh("garbage").await, 429, "too_many_requests").await;
    for i in 0..3 {
        assert_ne!(app.register(&format!("user{i}"), PASSWORD).await.status(), StatusCode::TOO_MANY_REQUESTS);
    }
    assert_problem(app.register("user9", PASSWORD).await, 429, "too_many_requests").await;
}

async fn login_from(app: &TestApp, forwarded_for: &str) -> StatusCode {
    app.client
        .post(app.url("/v1/auth/login"))
        .header("x-forwarded-for", forwarded_for)
        .json(&json!({"username": "someone", "password": "wrong-password-guess"}))
        .send()
        .await
        .unwrap()
        .status()
}

async fn forwarded_for_counts_only_behind_a_trusted_proxy(app: TestApp) {
    let limits = |s: &mut Settings| {
        s.throttle.per_ip_per_minute = 1;
        s.throttle.per_ip_burst = 2;
        s.throttle.failures_before_lockout = 100;
    };
    // Untrusted peer: X-Forwarded-For is ignored, everyone shares the peer's budget.
    let direct = TestApp::spawn_with(app.backend, limits).await;
    let statuses = [
        login_from(&direct, "1.1.1.1").await,
        login_from(&direct, "2.2.2.2").await,
        login_from(&direct, "3.3.3.3").await,
    ];
    assert_eq!(statuses[2], StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");
    // Behind a trusted proxy, each forwarded client has its own budget.
    let proxied = TestApp::spawn_with(app.backend, |s: &mut Settings| {
        limits(s);
        s.throttle.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    for client in ["1.1.1.1", "2.2.2.2", "3.3.3.3", "4.4.4.4"] {
        assert_eq!(login_from(&proxied, client).await, StatusCode::UNAUTHORIZED, "{client}");
    }
    assert_eq!(login_from(&proxied, "9.9.9.9").await, StatusCode::UNAUTHORIZED);
    assert_eq!(login_from(&proxied, "9.9.9.9").await, StatusCode::UNAUTHORIZED);
    assert_eq!(login_from(&proxied, "9.9.9.9").await, StatusCode::TOO_MANY_REQUESTS);
}

async fn oversized_headers_and_deep_json_get_problem_documents(app: TestApp) {
    let res = app.client.get(app.url("/healthz")).header("x-filler", "a".repeat(20_000)).send().await.unwrap();
    assert_problem(res, 431, "request_header_too_large").await;
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let res = app
        .client
        .post(app.url("/v1/auth/login"))
        .header("content-type", "application/json")
        .body(deep)
        .send()
        .await
        .unwrap();
    assert_problem(res, 400, "malformed_request").await;
    let res = app
        .client
        .post(app.url("/v1/auth/login"))
        .header("content-type", "application/json")
        .body("")
        .send()
        .await
        .unwrap();
    assert_problem(res, 400, "malformed_request").await;
}

async fn logs_never_contain_passwords_or_tokens(app: TestApp) {
    let password = format!("secret-{}-hunter", uuid::Uuid::new_v4().simple());
    let res = app.register("logged", &password).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let pair: serde_json::Value = app.login("logged", &password).await.json().await.unwrap();
    assert_eq!(app.login("logged", &format!("{password}-wrong")).await.status(), StatusCode::UNAUTHORIZED);
    let access = pair["access_token"].as_str().unwrap().to_owned();
    let refresh = pair["refresh_token"].as_str().unwrap().to_owned();
    let rotated: serde_json::Value = app.refresh(&refresh).await.json().await.unwrap();
    // Reuse is logged; the token must not be.
    assert_eq!(app.refresh(&refresh).await.status(), StatusCode::UNAUTHORIZED);
    // The reuse revoked the session: its access token is refused at once.
    assert_eq!(app.get("/v1/auth/me", Some(&access)).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.get("/v1/auth/me", Some(rotated["access_token"].as_str().unwrap())).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.get("/v1/auth/me", Some("garbage.token.here")).await.status(), StatusCode::UNAUTHORIZED);

    let logs = captured_logs();
    assert!(logs.contains("/v1/auth/login"), "the request log is captured");
    for secret in [password.as_str(), &access, &refresh, rotated["access_token"].as_str().unwrap()] {
        assert!(!logs.contains(secret), "a secret leaked into the log");
    }
    // Nor any signature part of a token.
    for token in [&access, &refresh] {
        assert!(!logs.contains(token.rsplit('.').next().unwrap()));
    }
}

/// Issue 16: password checks beyond the hashing threads and their queue are
/// refused at once (503 unavailable with Retry-After), not queued without
/// end; a refused attempt takes no lockout reservation, so the account is
/// not locked by a flood of right passwords that could not be checked.
async fn a_login_flood_beyond_the_hashing_queue_is_refused_at_once(app: TestApp) {
    let app = app
        .restart_with(|s: &mut Settings| {
            s.passwords.hash_threads = 1;
            s.passwords.hash_queue = 1;
            // Slow enough that a burst of twelve finds the one thread busy.
            s.passwords.bcrypt_cost = 11;
            s.throttle.failures_before_lockout = 3;
        })
        .await;
    app.register_ok("flooded").await;
    let flood = (0..12).map(|_| app.login("flooded", PASSWORD));
    let answers = futures_util::future::join_all(flood).await;
    let statuses: Vec<u16> = answers.iter().map(|r| r.status().as_u16()).collect();
    assert!(statuses.iter().all(|s| *s == 200 || *s == 503), "{statuses:?}");
    assert!(statuses.contains(&200), "the thread and the queue place serve: {statuses:?}");
    let refused = answers.into_iter().find(|r| r.status() == StatusCode::SERVICE_UNAVAILABLE);
    let refused =
        refused.unwrap_or_else(|| panic!("one thread and one queue place cannot take 12 at once: {statuses:?}"));
    assert!(refused.headers().contains_key("retry-after"));
    assert_problem(refused, 503, "unavailable").await;
    // More than failures_before_lockout were refused: none of them counted.
    assert_eq!(app.login("flooded", PASSWORD).await.status(), StatusCode::OK);
}
