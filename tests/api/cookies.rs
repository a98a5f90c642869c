//! SPA cookie mode at the HTTP level: cookie attributes, CSRF rejections and
//! CORS headers.

use reqwest::{Response, StatusCode};
use serde_json::{json, Value};

use signet::config::{CookieSameSite, Settings};

use crate::backend_tests;
use crate::helpers::{assert_problem, TestApp, PASSWORD};

backend_tests!(
    cookie_login_keeps_the_refresh_token_out_of_the_body,
    cookie_refresh_rotates_and_reuse_is_detected,
    csrf_rejects_missing_or_foreign_origin_and_missing_header,
    allowed_origin_gets_credentialed_cors,
    cookie_logout_revokes_and_clears,
    a_cross_site_form_post_is_rejected,
);

/// The SPA's origin allowed.
fn spa(s: &mut Settings) {
    s.cors.allowed_origins = vec!["https://spa.example".into()];
}
const COOKIE: &str = "__Host-signet_refresh";

async fn cookie_login(app: &TestApp, username: &str) -> (Value, String) {
    app.register_ok(username).await;
    let res = app
        .post_json("/v1/auth/login", &json!({"username": username, "password": PASSWORD, "token_delivery": "cookie"}))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let cookie = refresh_cookie(&res);
    (res.json().await.unwrap(), cookie)
}

/// The raw Set-Cookie of the refresh cookie.
fn set_cookie(res: &Response) -> String {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with(COOKIE))
        .expect("refresh cookie set")
}

fn refresh_cookie(res: &Response) -> String {
    let raw = set_cookie(res);
    raw.split(';').next().unwrap().split_once('=').unwrap().1.to_owned()
}

async fn cookie_post(app: &TestApp, path: &str, cookie: &str, origin: Option<&str>, requested_with: bool) -> Response {
    let mut req = app.client.post(app.url(path)).header("cookie", format!("{COOKIE}={cookie}"));
    if let Some(origin) = origin {
        req = req.header("origin", origin);
    }
    if requested_with {
        req = req.header("x-requested-with", "signet");
    }
    req.send().await.unwrap()
}

async fn cookie_login_keeps_the_refresh_token_out_of_the_body(app: TestApp) {
    app.register_ok("spa").await;
    let res = app
        .post_json("/v1/auth/login", &json!({"username": "spa", "password": PASSWORD, "token_delivery": "cookie"}))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let raw = set_cookie(&res);
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/", "Max-Age=1209600"] {
        assert!(raw.contains(attribute), "{attribute} in {raw}");
    }
    assert!(!raw.to_ascii_lowercase().contains("domain="), "host-only: {raw}");
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.unwrap();
    assert!(body.get("refresh_token").is_none(), "{body}");
    assert!(body["access_token"].is_string());
    assert_eq!(body["refresh_expires_in"], 1_209_600);

    let res = app
        .post_json(
            "/v1/auth/login",
            &json!({"username": "spa", "password": PASSWORD, "token_delivery": "carrier-pigeon"}),
        )
        .await;
    assert_problem(res, 422, "validation_failed").await;
    // SameSite is configurable.
    let lax = TestApp::spawn_with(app.backend, |s: &mut Settings| s.cookies.same_site = CookieSameSite::Lax).await;
    lax.register_ok("spa").await;
    let res = lax
        .post_json("/v1/auth/login", &json!({"username": "spa", "password": PASSWORD, "token_delivery": "cookie"}))
        .await;
    assert!(set_cookie(&res).contains("SameSite=Lax"));
}

async fn cookie_refresh_rotates_and_reuse_is_detected(app: TestApp) {
    let (_, first) = cookie_login(&app, "rotator").await;
    let res = cookie_post(&app, "/v1/auth/refresh", &first, Some(&app.address), true).await;
    assert_eq!(res.status(), StatusCode::OK);
    let second = refresh_cookie(&res);
    assert_ne!(first, second);
    let body: Value = res.json().await.unwrap();
    assert!(body.get("refresh_token").is_none());
    assert!(body["access_token"].is_string());
    // An empty JSON object is the same as no body.
    let res = app
        .client
        .post(app.url("/v1/auth/refresh"))
        .header("cookie", format!("{COOKIE}={second}"))
        .header("origin", &app.address)
        .header("x-requested-with", "signet")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = cookie_post(&app, "/v1/auth/refresh", &first, Some(&app.address), true).await;
    assert_problem(res, 401, "refresh_token_reused").await;
    // No cookie and no body: nothing to refresh with.
    let res = app.client.post(app.url("/v1/auth/refresh")).send().await.unwrap();
    assert_problem(res, 401, "invalid_refresh_token").await;
}

async fn csrf_rejects_missing_or_foreign_origin_and_missing_header(app: TestApp) {
    let app = TestApp::spawn_with(app.backend, spa).await;
    let (_, cookie) = cookie_login(&app, "victim").await;
    for (origin, requested_with) in [
        (None, true),
        (Some("https://evil.example"), true),
        (Some("null"), true),
        (Some(app.address.as_str()), false),
        (Some("https://spa.example"), false),
    ] {
        let res = cookie_post(&app, "/v1/auth/refresh", &cookie, origin, requested_with).await;
        assert_problem(res, 403, "csrf_rejected").await;
        let res = cookie_post(&app, "/v1/auth/logout", &cookie, origin, requested_with).await;
        assert_problem(res, 403, "csrf_rejected").await;
    }
    // The cookie still works from an allowed origin: nothing above consumed it.
    let res = cookie_post(&app, "/v1/auth/refresh", &cookie, Some("https://spa.example"), true).await;
    assert_eq!(res.status(), StatusCode::OK);
}

async fn allowed_origin_gets_credentialed_cors(app: TestApp) {
    let app = TestApp::spawn_with(app.backend, spa).await;
    let (_, cookie) = cookie_login(&app, "corsy").await;
    let res = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/v1/auth/refresh"))
        .header("origin", "https://spa.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "x-requested-with, content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["access-control-allow-origin"], "https://spa.example");
    assert_eq!(res.headers()["access-control-allow-credentials"], "true");
    assert!(res.headers()["access-control-allow-headers"].to_str().unwrap().contains("x-requested-with"));
    assert!(res.headers().contains_key("access-control-max-age"));

    let res = cookie_post(&app, "/v1/auth/refresh", &cookie, Some("https://spa.example"), true).await;
    assert_eq!(res.headers()["access-control-allow-origin"], "https://spa.example");
    assert_eq!(res.headers()["access-control-allow-credentials"], "true");
    // Another origin is refused outright, not served without CORS headers.
    let res = app.client.get(app.url("/healthz")).header("origin", "https://evil.example").send().await.unwrap();
    assert!(res.headers().get("access-control-allow-origin").is_none());
    assert_problem(res, 403, "csrf_rejected").await;
    // Public metadata stays readable from anywhere.
    let res = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

async fn cookie_logout_revokes_and_clears(app: TestApp) {
    let (_, cookie) = cookie_login(&app, "leaver").await;
    let res = cookie_post(&app, "/v1/auth/logout", &cookie, Some(&app.address), true).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let cleared = set_cookie(&res);
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let res = cookie_post(&app, "/v1/auth/refresh", &cookie, Some(&app.address), true).await;
    assert_problem(res, 401, "invalid_refresh_token").await;
}

async fn a_cross_site_form_post_is_rejected(app: TestApp) {
    let (_, cookie) = cookie_login(&app, "formed").await;
    // What a hostile page's <form method=post> sends: its own Origin, a form body, no custom header.
    let res = app
        .client
        .post(app.url("/v1/auth/refresh"))
        .header("cookie", format!("{COOKIE}={cookie}"))
        .header("origin", "https://evil.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("refresh_token=")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // Even from signet's own origin a form cannot pass: no JSON, no X-Requested-With.
    let res = app
        .client
        .post(app.url("/v1/auth/refresh"))
        .header("cookie", format!("{COOKIE}={cookie}"))
        .header("origin", &app.address)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("a=b")
        .send()
        .await
        .unwrap();
    assert_problem(res, 415, "unsupported_media_type").await;
    let res = cookie_post(&app, "/v1/auth/refresh", &cookie, Some(&app.address), false).await;
    assert_problem(res, 403, "csrf_rejected").await;
}
