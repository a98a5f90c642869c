//! Coming from Django REST Framework: API tokens, `Authorization: Token`,
//! token exchange, and the simplejwt / DRF compatibility routes.

use chrono::TimeDelta;
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};

use signet::config::Settings;

use crate::backend_tests;
use crate::helpers::{assert_problem, captured_logs, TestApp, PASSWORD};

backend_tests!(
    api_tokens_are_created_listed_used_and_revoked,
    expired_api_tokens_and_disabled_users_are_refused,
    api_token_exchanges_for_an_access_jwt,
    admins_manage_other_users_api_tokens,
    simplejwt_routes_speak_simplejwt,
    simplejwt_routes_are_off_by_default,
    drf_obtain_auth_token_works_with_forms_and_json,
);

/// Both compatibility faces on.
fn compat(s: &mut Settings) {
    s.compat.drf = true;
    s.compat.simplejwt = true;
}

async fn create_token(app: &TestApp, access: &str, body: Value) -> Response {
    app.client.post(app.url("/v1/auth/api-tokens")).bearer_auth(access).json(&body).send().await.unwrap()
}

async fn with_token(app: &TestApp, method: reqwest::Method, path: &str, token: &str) -> Response {
    app.client.request(method, app.url(path)).header("authorization", format!("Token {token}")).send().await.unwrap()
}

async fn login_access(app: &TestApp, name: &str) -> (Value, String) {
    let user = app.register_ok(name).await;
    let access = app.login_ok(name).await.access;
    (user, access)
}

async fn api_tokens_are_created_listed_used_and_revoked(app: TestApp) {
    let (user, access) = login_access(&app, "scripter").await;
    let res = create_token(&app, &access, json!({"name": "ci deploy"})).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let created: Value = res.json().await.unwrap();
    let secret = created["token"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("sgt_") && secret.len() > 40, "{secret}");
    assert!(secret.starts_with(created["prefix"].as_str().unwrap()));
    assert_eq!(created["expires_at"], Value::Null);

    // Authorization: Token works on /me.
    let res = with_token(&app, reqwest::Method::GET, "/v1/auth/me", &secret).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["id"], user["id"]);

    // The list never shows the secret, and shows last use.
    let res = with_token(&app, reqwest::Method::GET, "/v1/auth/api-tokens", &secret).await;
    let list: Value = res.json().await.unwrap();
    let tokens = list["api_tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 1);
    assert!(tokens[0].get("token").is_none() && tokens[0].get("token_hash").is_none());
    assert!(!list.to_string().contains(&secret[12..]));
    assert!(tokens[0]["last_used_at"].is_string());

    // The database holds only a keyed hash.
    {
        use diesel::prelude::*;
        let mut conn = app.conn();
        let stored: Vec<String> = signet::db::schema::api_tokens::table
            .select(signet::db::schema::api_tokens::token_hash)
            .load(&mut **conn)
            .unwrap();
        assert_eq!(stored.len(), 1);
        assert!(!stored[0].contains(&secret[4..]) && stored[0].len() == 64);
    }

    // An API token cannot mint more tokens (a login can).
    let res = app
        .client
        .post(app.url("/v1/auth/api-tokens"))
        .header("authorization", format!("Token {secret}"))
        .json(&json!({"name": "sneaky"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_problem(create_token(&app, &access, json!({"name": ""})).await, 422, "validation_failed").await;

    // Revoked: refused at once.
    let id = created["id"].as_str().unwrap();
    let res =
        app.client.delete(app.url(&format!("/v1/auth/api-tokens/{id}"))).bearer_auth(&access).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = with_token(&app, reqwest::Method::GET, "/v1/auth/me", &secret).await;
    assert!(res.headers()["www-authenticate"].to_str().unwrap().starts_with("Token"));
    assert_problem(res, 401, "invalid_token").await;
    assert_problem(with_token(&app, reqwest::Method::GET, "/v1/auth/me", "sgt_madeup").await, 401, "invalid_token")
        .await;
    assert!(!captured_logs().contains(&secret), "the secret is never logged");
}

async fn expired_api_tokens_and_disabled_users_are_refused(app: TestApp) {
    let (_, access) = login_access(&app, "temp").await;
    // 1.0 is an integer to JSON Schema (openapi.yaml: `type: integer`), so it is one day too.
    let created: Value =
        create_token(&app, &access, json!({"name": "short", "expires_in_days": 1.0})).await.json().await.unwrap();
    let secret = created["token"].as_str().unwrap().to_owned();
    assert!(created["expires_at"].is_string());
    assert_eq!(with_token(&app, reqwest::Method::GET, "/v1/auth/me", &secret).await.status(), StatusCode::OK);
    app.clock.advance(TimeDelta::days(1) + TimeDelta::seconds(1));
    assert_problem(with_token(&app, reqwest::Method::GET, "/v1/auth/me", &secret).await, 401, "invalid_token").await;

    // A disabled user's tokens stop working.
    let (user, access) = login_access(&app, "soon-disabled").await;
    let created: Value = create_token(&app, &access, json!({"name": "x"})).await.json().await.unwrap();
    let secret = created["token"].as_str().unwrap().to_owned();
    let admin = app.admin_token("root").await;
    app.disable_user(&admin, user["id"].as_str().unwrap()).await;
    assert_problem(with_token(&app, reqwest::Method::GET, "/v1/auth/me", &secret).await, 401, "invalid_token").await;
}

async fn api_token_exchanges_for_an_access_jwt(app: TestApp) {
    let (user, access) = login_access(&app, "exchanger").await;
    let created: Value = create_token(&app, &access, json!({"name": "svc"})).await.json().await.unwrap();
    let secret = created["token"].as_str().unwrap();
    let res = with_token(&app, reqwest::Method::POST, "/v1/auth/token-exchange", secret).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert!(body.get("refresh_token").is_none());
    let jwt = body["access_token"].as_str().unwrap();
    // A plain access JWT: the stateless extractor accepts it.
    let me: Value = app.get("/v1/auth/me", Some(jwt)).await.json().await.unwrap();
    assert_eq!(me["id"], user["id"]);
    // A Bearer token cannot be exchanged.
    let res = app.client.post(app.url("/v1/auth/token-exchange")).bearer_auth(&access).send().await.unwrap();
    assert_problem(res, 400, "malformed_request").await;
}

async fn admins_manage_other_users_api_tokens(app: TestApp) {
    let admin = app.admin_token("root").await;
    let (user, access) = login_access(&app, "managed").await;
    let id = user["id"].as_str().unwrap();
    let res = app
        .client
        .post(app.url(&format!("/v1/admin/users/{id}/api-tokens")))
        .bearer_auth(&admin)
        .json(&json!({"name": "service account"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let created: Value = res.json().await.unwrap();
    let secret = created["token"].as_str().unwrap();
    let me: Value = with_token(&app, reqwest::Method::GET, "/v1/auth/me", secret).await.json().await.unwrap();
    assert_eq!(me["id"], user["id"]);
    let list: Value = app
        .client
        .get(app.url(&format!("/v1/admin/users/{id}/api-tokens")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["api_tokens"].as_array().unwrap().len(), 1);
    // A user cannot reach the admin routes, nor revoke someone else's token.
    let res =
        app.client.get(app.url(&format!("/v1/admin/users/{id}/api-tokens"))).bearer_auth(&access).send().await.unwrap();
    assert_problem(res, 403, "insufficient_role").await;
    let (_, other) = login_access(&app, "other").await;
    let token_id = created["id"].as_str().unwrap();
    let res = app
        .client
        .delete(app.url(&format!("/v1/auth/api-tokens/{token_id}")))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_problem(res, 404, "not_found").await;
    let res = app
        .client
        .delete(app.url(&format!("/v1/admin/users/{id}/api-tokens/{token_id}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_problem(with_token(&app, reqwest::Method::GET, "/v1/auth/me", secret).await, 401, "invalid_token").await;
}

async fn post(app: &TestApp, path: &str, body: Value) -> (StatusCode, Value) {
    let res = app.post_json(path, &body).await;
    let status = res.status();
    (status, res.json().await.unwrap())
}

async fn simplejwt_routes_speak_simplejwt(app: TestApp) {
    let app = TestApp::spawn_with(app.backend, compat).await;
    app.register_ok("django").await;

    // Shapes from simplejwt's documentation.
    let (status, body) = post(&app, "/api/token/", json!({"username": "django", "password": PASSWORD})).await;
    assert_eq!(status, StatusCode::OK);
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["access", "refresh"]);
    let access = body["access"].as_str().unwrap().to_owned();
    let refresh = body["refresh"].as_str().unwrap().to_owned();
    assert_eq!(app.get("/v1/auth/me", Some(&access)).await.status(), StatusCode::OK);

    let res = app.post_json("/api/token/", &json!({"username": "django", "password": "wrong-password-x"})).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()["www-authenticate"], "Bearer realm=\"api\"");
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"detail": "No active account found with the given credentials"})
    );
    let (status, body) = post(&app, "/api/token/", json!({"username": ""})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, json!({"username": ["This field may not be blank."], "password": ["This field is required."]}));

    let (status, body) = post(&app, "/api/token/verify/", json!({"token": access})).await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));
    let (status, body) = post(&app, "/api/token/verify/", json!({"token": refresh})).await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));
    // simplejwt 5.5's words for each refusal (tests/contract/differential.py checks them
    // against the real package).
    let invalid = json!({"detail": "Token is invalid", "code": "token_not_valid"});
    let blacklisted = json!({"detail": "Token is blacklisted", "code": "token_not_valid"});
    let (status, body) = post(&app, "/api/token/verify/", json!({"token": "abc"})).await;
    assert_eq!((status, body), (StatusCode::UNAUTHORIZED, invalid.clone()));
    let (status, body) = post(&app, "/api/token/refresh/", json!({"refresh": access})).await;
    assert_eq!(
        (status, body),
        (StatusCode::UNAUTHORIZED, json!({"detail": "Token has wrong type", "code": "token_not_valid"}))
    );

    let (status, body) = post(&app, "/api/token/refresh/", json!({"refresh": refresh})).await;
    assert_eq!(status, StatusCode::OK);
    let rotated = body["refresh"].as_str().unwrap().to_owned();
    assert!(body["access"].is_string());
    // The old refresh token no longer verifies, and presenting it again is reuse.
    let (status, body) = post(&app, "/api/token/verify/", json!({"token": refresh})).await;
    assert_eq!((status, body), (StatusCode::BAD_REQUEST, json!({"non_field_errors": ["Token is blacklisted"]})));
    let (status, body) = post(&app, "/api/token/refresh/", json!({"refresh": refresh})).await;
    assert_eq!((status, body), (StatusCode::UNAUTHORIZED, blacklisted.clone()));
    let (status, _) = post(&app, "/api/token/refresh/", json!({"refresh": rotated})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "reuse revoked the whole session");

    // Blacklist ends the session.
    let (_, body) = post(&app, "/api/token/", json!({"username": "django", "password": PASSWORD})).await;
    let refresh = body["refresh"].as_str().unwrap().to_owned();
    let (status, body) = post(&app, "/api/token/blacklist/", json!({"refresh": refresh})).await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));
    let (status, body) = post(&app, "/api/token/refresh/", json!({"refresh": refresh})).await;
    assert_eq!((status, body), (StatusCode::UNAUTHORIZED, blacklisted.clone()));
    let (status, body) = post(&app, "/api/token/blacklist/", json!({"refresh": refresh})).await;
    assert_eq!((status, body), (StatusCode::UNAUTHORIZED, blacklisted), "blacklisting twice is refused");
    let (status, body) = post(&app, "/api/token/blacklist/", json!({"refresh": "garbage"})).await;
    assert_eq!((status, body), (StatusCode::UNAUTHORIZED, invalid));
    let (status, body) = post(&app, "/api/token/refresh/", json!({})).await;
    assert_eq!((status, body), (StatusCode::BAD_REQUEST, json!({"refresh": ["This field is required."]})));

    // Bodies DRF's parsers would refuse get DRF's 400 shapes, never a 5xx.
    let raw = |body: String| {
        app.client.post(app.url("/api/token/")).header("content-type", "application/json").body(body).send()
    };
    let res = raw("{".into()).await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.json::<Value>().await.unwrap()["detail"].as_str().unwrap().starts_with("JSON parse error"));
    let res = raw("[1]".into()).await.unwrap();
    assert_eq!(
        res.json::<Value>().await.unwrap()["non_field_errors"][0],
        "Invalid data. Expected a dictionary, but got list."
    );
    // DRF's parsers: another media type is 415, quoting it; another method is 405 with Allow.
    let res = app.client.post(app.url("/api/token/")).header("content-type", "text/plain").body("x").send();
    let res = res.await.unwrap();
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"detail": "Unsupported media type \"text/plain\" in request."})
    );
    let res = app.client.get(app.url("/api/token/refresh/")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(res.headers()["allow"], "POST");
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"detail": "Method \"GET\" not allowed."}));
    let res = raw(format!("{{\"username\": \"{}\"}}", "x".repeat(20_000))).await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"detail": "Request body too large."}));
}

async fn simplejwt_routes_are_off_by_default(app: TestApp) {
    app.register_ok("django").await;
    let res = app.post_json("/api/token/", &json!({"username": "django", "password": PASSWORD})).await;
    assert_problem(res, 404, "not_found").await;
    let res = app.post_json("/api-token-auth/", &json!({"username": "django", "password": PASSWORD})).await;
    assert_problem(res, 404, "not_found").await;
}

async fn drf_obtain_auth_token_works_with_forms_and_json(app: TestApp) {
    let app = TestApp::spawn_with(app.backend, compat).await;
    let user = app.register_ok("drfuser").await;
    let res = app
        .client
        .post(app.url("/api-token-auth/"))
        .form(&[("username", "drfuser"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    let token = body["token"].as_str().unwrap();
    assert_eq!(body.as_object().unwrap().len(), 1);
    let me: Value = with_token(&app, reqwest::Method::GET, "/v1/auth/me", token).await.json().await.unwrap();
    assert_eq!(me["id"], user["id"]);

    let (status, body) = post(&app, "/api-token-auth/", json!({"username": "drfuser", "password": PASSWORD})).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["token"].as_str().unwrap().starts_with("sgt_"));
    let (status, body) =
        post(&app, "/api-token-auth/", json!({"username": "drfuser", "password": "nope-nope-nope"})).await;
    assert_eq!(
        (status, body),
        (StatusCode::BAD_REQUEST, json!({"non_field_errors": ["Unable to log in with provided credentials."]}))
    );
    let (status, body) = post(&app, "/api-token-auth/", json!({"password": "x"})).await;
    assert_eq!((status, body), (StatusCode::BAD_REQUEST, json!({"username": ["This field is required."]})));
}
