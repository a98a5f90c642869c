use reqwest::StatusCode;

use crate::backend_tests;
use crate::helpers::{assert_problem, TestApp, PASSWORD};

backend_tests!(
    nul_bytes_and_odd_ids_never_reach_the_database,
    malformed_bodies_are_400,
    wrong_content_type_is_415,
    oversized_body_is_413,
    unknown_route_is_404_and_wrong_method_405,
    health_and_readiness,
);

async fn raw_post(app: &TestApp, path: &str, content_type: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
    app.client.post(app.url(path)).header("content-type", content_type).body(body).send().await.unwrap()
}

async fn malformed_bodies_are_400(app: TestApp) {
    for body in ["{", "[]", "null", "{\"username\": 1, \"password\": \"x\"}", "{\"username\": \"a\"}"] {
        let res = raw_post(&app, "/v1/auth/login", "application/json", body).await;
        assert_problem(res, 400, "malformed_request").await;
    }
    // A password of the wrong type is not echoed back.
    let res =
        raw_post(&app, "/v1/auth/register", "application/json", "{\"username\":\"abc\",\"password\":987654321}").await;
    let body = assert_problem(res, 400, "malformed_request").await;
    assert!(!body.to_string().contains("987654321"), "{body}");
}

async fn wrong_content_type_is_415(app: TestApp) {
    let body = format!("{{\"username\":\"abc\",\"password\":\"{PASSWORD}\"}}");
    let res = raw_post(&app, "/v1/auth/login", "text/plain", body).await;
    assert_problem(res, 415, "unsupported_media_type").await;
}

async fn oversized_body_is_413(app: TestApp) {
    let body = format!("{{\"username\":\"abc\",\"password\":\"{}\"}}", "x".repeat(20 * 1024));
    let res = raw_post(&app, "/v1/auth/register", "application/json", body).await;
    assert_problem(res, 413, "payload_too_large").await;
}

async fn unknown_route_is_404_and_wrong_method_405(app: TestApp) {
    assert_problem(app.get("/v1/nothing-here", None).await, 404, "not_found").await;
    let res = app.get("/v1/auth/login", None).await;
    assert_eq!(res.headers()["allow"], "POST", "RFC 9110: a 405 lists the allowed methods");
    assert_problem(res, 405, "method_not_allowed").await;
    let res = app.client.request(reqwest::Method::TRACE, app.url("/v1/admin/users/x")).send().await.unwrap();
    assert_eq!(res.headers()["allow"], "GET, PATCH, DELETE");
    assert_problem(res, 405, "method_not_allowed").await;
}

async fn health_and_readiness(app: TestApp) {
    assert_eq!(app.get("/healthz", None).await.status(), StatusCode::OK);
    assert_eq!(app.get("/readyz", None).await.status(), StatusCode::OK);
    let res = app.get("/healthz", None).await;
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    assert!(res.headers().get("server").is_none());
}

async fn nul_bytes_and_odd_ids_never_reach_the_database(app: TestApp) {
    // PostgreSQL text cannot hold NUL: such input must be refused, not a 500.
    let res = app.login("bad\u{0}name", PASSWORD).await;
    assert_problem(res, 401, "invalid_credentials").await;
    let res = app.register("bad\u{0}name", PASSWORD).await;
    assert_problem(res, 422, "validation_failed").await;
    let admin = app.admin_token("root").await;
    for path in ["/v1/admin/users/%00", "/v1/admin/users/not-a-uuid", "/v1/admin/users/%27%20OR%201%3D1"] {
        assert_problem(app.get(path, Some(&admin)).await, 404, "not_found").await;
    }
    let res = app.client.delete(app.url("/v1/auth/sessions/%00")).bearer_auth(&admin).send().await.unwrap();
    assert_problem(res, 404, "not_found").await;
}
