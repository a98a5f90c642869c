use reqwest::StatusCode;
use serde_json::json;

use signet::config::Settings;

use crate::backend_tests;
use crate::helpers::{assert_problem, TestApp, PASSWORD};

backend_tests!(
    register_returns_the_user,
    usernames_are_unique_regardless_of_case,
    bad_usernames_and_emails_are_rejected,
    weak_passwords_are_rejected,
    every_password_byte_counts,
    login_returns_the_documented_pair,
    unknown_user_and_wrong_password_look_the_same,
    disabled_account_is_told_only_after_the_right_password,
    registration_can_be_closed_by_config,
    me_returns_the_caller,
    users_and_keys_survive_a_restart,
);

async fn register_returns_the_user(app: TestApp) {
    let res = app
        .post_json("/v1/auth/register", &json!({"username": "Alice", "password": PASSWORD, "email": "a@example.com"}))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let user: serde_json::Value = res.json().await.unwrap();
    assert_eq!(user["username"], "Alice");
    assert_eq!(user["email"], "a@example.com");
    assert_eq!(user["roles"], json!(["user"]));
    assert_eq!(user["disabled"], false);
    assert!(uuid::Uuid::parse_str(user["id"].as_str().unwrap()).is_ok());
    assert!(chrono::DateTime::parse_from_rfc3339(user["created_at"].as_str().unwrap()).is_ok());
    assert!(user.get("password_hash").is_none());
}

async fn usernames_are_unique_regardless_of_case(app: TestApp) {
    app.register_ok("alice").await;
    assert_problem(app.register("ALICE", PASSWORD).await, 409, "username_taken").await;
    assert_problem(app.register("alice", PASSWORD).await, 409, "username_taken").await;
}

async fn bad_usernames_and_emails_are_rejected(app: TestApp) {
    for bad in ["al", "ali ce", "ålice", "a/b", &"x".repeat(65)] {
        let body = assert_problem(app.register(bad, PASSWORD).await, 422, "validation_failed").await;
        assert_eq!(body["errors"][0]["field"], "username", "{bad}");
    }
    let res = app
        .post_json("/v1/auth/register", &json!({"username": "bob", "password": PASSWORD, "email": "not-an-email"}))
        .await;
    let body = assert_problem(res, 422, "validation_failed").await;
    assert_eq!(body["errors"][0]["field"], "email");
}

async fn weak_passwords_are_rejected(app: TestApp) {
    let long = "Zq9!vx7#Lm".repeat(103);
    for weak in ["short1!", "password123", "qwertyuiop", "carol-secret-carol", long.as_str()] {
        let body = assert_problem(app.register("carol", weak).await, 422, "weak_password").await;
        assert_eq!(body["errors"][0]["field"], "password");
        // The password is never echoed.
        assert!(!body.to_string().contains(weak));
    }
}

async fn every_password_byte_counts(app: TestApp) {
    // Two passwords longer than bcrypt's 72 bytes sharing the first 72.
    let prefix = "Kq7#pL2!vN9@xR4$mT6^wB8&zC1*yH3(fJ5)gD0-sA".repeat(2);
    let prefix = &prefix[..72];
    let first = format!("{prefix}-first");
    let second = format!("{prefix}-second");
    assert_eq!(app.register("dave", &first).await.status(), StatusCode::CREATED);
    assert_eq!(app.login("dave", &first).await.status(), StatusCode::OK);
    assert_problem(app.login("dave", &second).await, 401, "invalid_credentials").await;
}

async fn login_returns_the_documented_pair(app: TestApp) {
    app.register_ok("erin").await;
    let res = app.login("ERIN", PASSWORD).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert_eq!(res.headers()["pragma"], "no-cache");
    let pair: serde_json::Value = res.json().await.unwrap();
    assert_eq!(pair["token_type"], "Bearer");
    assert_eq!(pair["expires_in"], 900);
    assert_eq!(pair["refresh_expires_in"], 1_209_600);
    assert!(pair["access_token"].as_str().unwrap().split('.').count() == 3);
    assert!(pair["refresh_token"].as_str().unwrap().split('.').count() == 3);
}

async fn unknown_user_and_wrong_password_look_the_same(app: TestApp) {
    app.register_ok("frank").await;
    let wrong = app.login("frank", "not-the-password-at-all").await;
    let unknown = app.login("nobody-here", "not-the-password-at-all").await;
    assert_eq!(wrong.headers().get("www-authenticate"), unknown.headers().get("www-authenticate"));
    let wrong = assert_problem(wrong, 401, "invalid_credentials").await;
    let unknown = assert_problem(unknown, 401, "invalid_credentials").await;
    assert_eq!(wrong, unknown);
}

async fn disabled_account_is_told_only_after_the_right_password(app: TestApp) {
    let user = app.register_ok("grace").await;
    let admin = app.admin_token("root").await;
    app.disable_user(&admin, user["id"].as_str().unwrap()).await;
    assert_problem(app.login("grace", "wrong-password-here").await, 401, "invalid_credentials").await;
    assert_problem(app.login("grace", PASSWORD).await, 403, "account_disabled").await;
}

async fn registration_can_be_closed_by_config(app: TestApp) {
    let closed = TestApp::spawn_with(app.backend, |s: &mut Settings| s.registration.open = false).await;
    assert_problem(closed.register("henry", PASSWORD).await, 403, "registration_closed").await;
}

async fn me_returns_the_caller(app: TestApp) {
    let user = app.register_ok("ivy").await;
    let pair = app.login_ok("ivy").await;
    let res = app.get("/v1/auth/me", Some(pair.access.as_str())).await;
    assert_eq!(res.status(), StatusCode::OK);
    let me: serde_json::Value = res.json().await.unwrap();
    assert_eq!(me, user);
}

async fn users_and_keys_survive_a_restart(app: TestApp) {
    app.register_ok("judy").await;
    let pair = app.login_ok("judy").await;
    let jwks_before: serde_json::Value = app.get("/.well-known/jwks.json", None).await.json().await.unwrap();
    let app = app.restart().await;
    let jwks_after: serde_json::Value = app.get("/.well-known/jwks.json", None).await.json().await.unwrap();
    assert_eq!(jwks_before, jwks_after);
    // A token issued before the restart still works; so does the password.
    assert_eq!(app.get("/v1/auth/me", Some(pair.access.as_str())).await.status(), StatusCode::OK);
    app.login_ok("judy").await;
}
