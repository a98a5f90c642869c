//! Issue 14: OAuth 2.0 clients, `/oauth/token` (client credentials, refresh,
//! token exchange), introspection, revocation, discovery and the "Bad input"
//! list, on both backends.

use chrono::TimeDelta;
use reqwest::{RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};

use crate::backend_tests;
use crate::helpers::{assert_problem, claims_of, www_authenticate, TestApp};

backend_tests!(
    admins_create_list_rotate_and_delete_clients,
    client_credentials_by_basic_and_post_give_rfc_9068_tokens,
    scope_and_audience_are_bounded_by_the_client,
    failed_client_authentication_is_invalid_client,
    bad_input_gets_rfc_6749_errors_never_problem_documents,
    refresh_grant_shares_the_rotation_of_v1_auth_refresh,
    token_exchange_narrows_the_audience_and_keeps_the_session,
    token_exchange_refuses_refresh_expired_and_revoked_subjects,
    introspection_reflects_revocation_at_once,
    revocation_follows_rfc_7009,
    deleting_rotating_or_disabling_a_client_revokes_its_tokens,
    derived_tokens_cannot_create_clients_or_api_tokens,
    discovery_names_the_oauth_endpoints,
    failed_client_authentication_is_throttled_without_locking_out_the_client,
    the_cli_creates_lists_rotates_and_deletes_clients,
    introspection_on_another_instance_learns_a_key_it_has_not_loaded,
);

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const AT: &str = "urn:ietf:params:oauth:token-type:access_token";

struct ClientCreds {
    id: String,
    secret: String,
}

async fn create_client(app: &TestApp, admin: &str, roles: &[&str], audiences: &[&str]) -> ClientCreds {
    let res = app
        .client
        .post(app.url("/v1/admin/clients"))
        .bearer_auth(admin)
        .json(&json!({"name": "billing", "roles": roles, "audiences": audiences}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    ClientCreds {
        id: body["client_id"].as_str().unwrap().to_owned(),
        secret: body["client_secret"].as_str().unwrap().to_owned(),
    }
}

fn form(app: &TestApp, path: &str, params: &[(&str, &str)]) -> RequestBuilder {
    app.client.post(app.url(path)).form(params)
}

fn basic(app: &TestApp, path: &str, c: &ClientCreds, params: &[(&str, &str)]) -> RequestBuilder {
    form(app, path, params).basic_auth(&c.id, Some(&c.secret))
}

async fn cc_token(app: &TestApp, c: &ClientCreds) -> String {
    let res = basic(app, "/oauth/token", c, &[("grant_type", "client_credentials")]).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned()
}

async fn introspect(app: &TestApp, c: &ClientCreds, token: &str) -> Value {
    let res = basic(app, "/oauth/introspect", c, &[("token", token)]).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store");
    res.json().await.unwrap()
}

async fn revoke(app: &TestApp, c: &ClientCreds, token: &str) -> Response {
    basic(app, "/oauth/revoke", c, &[("token", token)]).send().await.unwrap()
}

/// Asserts an RFC 6749 §5.2 error object (JSON, not a problem document).
async fn assert_oauth_error(res: Response, status: u16, error: &str) -> Value {
    assert_eq!(res.status().as_u16(), status, "status for {error}");
    let content_type = res.headers().get("content-type").unwrap().to_str().unwrap().to_owned();
    assert_eq!(content_type, "application/json");
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
    assert!(body["error_description"].is_string());
    assert!(body.get("code").is_none() && body.get("type").is_none(), "not a problem document: {body}");
    body
}

/// Whether the status-list entry a token names is flipped to invalid.
fn status_invalid(app: &TestApp, token: &str) -> bool {
    let claims = claims_of(token);
    let list = &claims["status"]["status_list"];
    let uri = list["uri"].as_str().expect("a status claim");
    let n: i64 = uri.rsplit('/').next().unwrap().parse().unwrap();
    let idx = list["idx"].as_i64().unwrap();
    let content = signet::status_lists::model::load(&mut app.conn(), n).unwrap().unwrap();
    content.invalid.contains(&idx)
}

async fn admins_create_list_rotate_and_delete_clients(app: TestApp) {
    let admin = app.admin_token("root").await;
    let res = app
        .client
        .post(app.url("/v1/admin/clients"))
        .bearer_auth(&admin)
        .json(&json!({"name": "orders", "roles": ["reader", "writer"], "audiences": ["https://orders.example"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let created: Value = res.json().await.unwrap();
    let (id, secret) = (created["client_id"].as_str().unwrap(), created["client_secret"].as_str().unwrap());
    assert!(uuid::Uuid::parse_str(id).is_ok());
    assert!(secret.starts_with("sgc_") && secret.len() > 40);
    assert_eq!(created["roles"], json!(["reader", "writer"]));
    assert_eq!(created["audiences"], json!(["https://orders.example"]));
    assert!(created["created_at"].is_string());

    // Listing never shows the secret (nor its hash).
    let res = app.get("/v1/admin/clients", Some(&admin)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let text = res.text().await.unwrap();
    assert!(!text.contains(secret) && !text.contains("secret"), "{text}");
    let listed: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(listed["clients"][0]["client_id"], id);
    assert_eq!(listed["clients"][0]["name"], "orders");

    // Validation: bad role names and names are 422, unknown fields 400.
    let bad = app.client.post(app.url("/v1/admin/clients")).bearer_auth(&admin);
    let res = bad.json(&json!({"name": "x", "roles": ["Not A Role"]})).send().await.unwrap();
    assert_problem(res, 422, "validation_failed").await;
    let res = app
        .client
        .post(app.url("/v1/admin/clients"))
        .bearer_auth(&admin)
        .json(&json!({"name": "", "roles": []}))
        .send()
        .await
        .unwrap();
    assert_problem(res, 422, "validation_failed").await;
    let res = app
        .client
        .post(app.url("/v1/admin/clients"))
        .bearer_auth(&admin)
        .json(&json!({"name": "x", "roles": [], "secret": "mine"}))
        .send()
        .await
        .unwrap();
    assert_problem(res, 400, "malformed_request").await;

    // Non-admins are refused.
    app.register_ok("plain").await;
    let plain = app.login_ok("plain").await.access;
    assert_problem(app.get("/v1/admin/clients", Some(&plain)).await, 403, "insufficient_role").await;

    // Rotation: the old secret stops, the new one works.
    let old = ClientCreds { id: id.to_owned(), secret: secret.to_owned() };
    assert!(!cc_token(&app, &old).await.is_empty());
    let res =
        app.client.post(app.url(&format!("/v1/admin/clients/{id}/secret"))).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let rotated: Value = res.json().await.unwrap();
    assert_eq!(rotated["client_id"], id);
    let new = ClientCreds { id: id.to_owned(), secret: rotated["client_secret"].as_str().unwrap().to_owned() };
    assert_ne!(new.secret, old.secret);
    let res = basic(&app, "/oauth/token", &old, &[("grant_type", "client_credentials")]).send().await.unwrap();
    assert_oauth_error(res, 401, "invalid_client").await;
    assert!(!cc_token(&app, &new).await.is_empty());

    // Deletion, then 404.
    let path = format!("/v1/admin/clients/{id}");
    let res = app.client.delete(app.url(&path)).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = app.client.delete(app.url(&path)).bearer_auth(&admin).send().await.unwrap();
    assert_problem(res, 404, "not_found").await;
    let res = basic(&app, "/oauth/token", &new, &[("grant_type", "client_credentials")]).send().await.unwrap();
    assert_oauth_error(res, 401, "invalid_client").await;
    let res = app.get("/v1/admin/clients", Some(&admin)).await;
    assert_eq!(res.json::<Value>().await.unwrap()["clients"], json!([]));
}

async fn client_credentials_by_basic_and_post_give_rfc_9068_tokens(app: TestApp) {
    let admin = app.admin_token("root").await;
    let c = create_client(&app, &admin, &["reader", "writer"], &[]).await;

    // client_secret_basic
    let res = basic(&app, "/oauth/token", &c, &[("grant_type", "client_credentials")]).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["scope"], "reader writer");
    assert!(body.get("refresh_token").is_none());
    let token = body["access_token"].as_str().unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let claims = claims_of(token);
    assert_eq!(claims["sub"], c.id.as_str());
    assert_eq!(claims["client_id"], c.id.as_str());
    assert_eq!(claims["roles"], json!(["reader", "writer"]));
    assert_eq!(claims["scope"], "reader writer");
    assert_eq!(claims["aud"], "signet");
    assert_eq!(claims["iss"], app.settings.tokens.issuer.as_str());
    assert!(claims["jti"].is_string() && claims["sid"].as_str().unwrap().starts_with("client:"));
    assert!(claims["status"]["status_list"]["idx"].is_u64());
    assert!(claims.get("amr").is_none() && claims.get("preferred_username").is_none(), "{claims}");
    assert!(!status_invalid(&app, token));

    // client_secret_post; the second token shares the client's session.
    let res = form(
        &app,
        "/oauth/token",
        &[("grant_type", "client_credentials"), ("client_id", &c.id), ("client_secret", &c.secret)],
    )
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let second = res.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(claims_of(&second)["sid"], claims["sid"]);
    assert_ne!(claims_of(&second)["jti"], claims["jti"]);

    // The token works on signet's own routes (as a Bearer with its roles).
    let res = app.get("/v1/auth/sessions", Some(&second)).await;
    assert_eq!(res.status(), StatusCode::OK);

    // A client session ends after a day: tokens never outlive it, the next one starts a new session.
    app.clock.advance(TimeDelta::seconds(86_400 - 100));
    let res = basic(&app, "/oauth/token", &c, &[("grant_type", "client_credentials")]).send().await.unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["expires_in"], 100);
    app.clock.advance(TimeDelta::seconds(200));
    let late = cc_token(&app, &c).await;
    assert_ne!(claims_of(&late)["sid"], claims["sid"]);
    assert_eq!(introspect(&app, &c, &late).await["active"], true);
}

async fn scope_and_audience_are_bounded_by_the_client(app: TestApp) {
    let admin = app.admin_token("root").await;
    let c = create_client(&app, &admin, &["reader", "writer"], &["https://orders.example"]).await;
    let grant = |params: Vec<(&'static str, &'static str)>| {
        let mut all = vec![("grant_type", "client_credentials")];
        all.extend(params);
        basic(&app, "/oauth/token", &c, &all).send()
    };

    let res = grant(vec![("scope", "reader")]).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["scope"], "reader");
    assert_eq!(claims_of(body["access_token"].as_str().unwrap())["roles"], json!(["reader"]));

    let res = grant(vec![("scope", "reader admin")]).await.unwrap();
    assert_oauth_error(res, 400, "invalid_scope").await;
    let res = grant(vec![("scope", "   ")]).await.unwrap();
    assert_oauth_error(res, 400, "invalid_scope").await;

    let res = grant(vec![("audience", "https://orders.example")]).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let token = res.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(claims_of(&token)["aud"], "https://orders.example");
    let res = grant(vec![("audience", "https://payroll.example")]).await.unwrap();
    assert_oauth_error(res, 400, "invalid_target").await;
}

async fn failed_client_authentication_is_invalid_client(app: TestApp) {
    let admin = app.admin_token("root").await;
    let c = create_client(&app, &admin, &["reader"], &[]).await;
    let cc = [("grant_type", "client_credentials")];

    let wrong = ClientCreds { id: c.id.clone(), secret: format!("{}x", c.secret) };
    let res = basic(&app, "/oauth/token", &wrong, &cc).send().await.unwrap();
    assert_eq!(www_authenticate(&res), "Basic realm=\"signet\"");
    let body = assert_oauth_error(res, 401, "invalid_client").await;
    assert!(!body.to_string().contains(&c.secret));

    let unknown = ClientCreds { id: uuid::Uuid::new_v4().to_string(), secret: c.secret.clone() };
    let res = basic(&app, "/oauth/token", &unknown, &cc).send().await.unwrap();
    assert_oauth_error(res, 401, "invalid_client").await;
    let not_uuid = ClientCreds { id: "billing".into(), secret: c.secret.clone() };
    let res = basic(&app, "/oauth/token", &not_uuid, &cc).send().await.unwrap();
    assert_oauth_error(res, 401, "invalid_client").await;

    // No authentication at all.
    let res = form(&app, "/oauth/token", &cc).send().await.unwrap();
    assert_oauth_error(res, 401, "invalid_client").await;

    // Both methods at once.
    let res = basic(&app, "/oauth/token", &c, &[("grant_type", "client_credentials"), ("client_secret", &c.secret)])
        .send()
        .await
        .unwrap();
    assert_oauth_error(res, 400, "invalid_request").await;
    let res = basic(&app, "/oauth/token", &c, &[("grant_type", "client_credentials"), ("client_id", "someone-else")])
        .send()
        .await
        .unwrap();
    assert_oauth_error(res, 400, "invalid_request").await;
    // client_secret without client_id.
    let res = form(&app, "/oauth/token", &[("grant_type", "client_credentials"), ("client_secret", &c.secret)])
        .send()
        .await
        .unwrap();
    assert_oauth_error(res, 400, "invalid_request").await;

    // An Authorization: Basic that does not decode, or another scheme.
    for value in ["Basic %%%notbase64", "Basic bm9jb2xvbg==", "Basic //79", "Bearer abc"] {
        let res = form(&app, "/oauth/token", &cc).header("authorization", value).send().await.unwrap();
        assert_oauth_error(res, 401, "invalid_client").await;
    }

    // A client_id with control characters.
    let res = form(
        &app,
        "/oauth/token",
        &[("grant_type", "client_credentials"), ("client_id", "a\u{1}b"), ("client_secret", "x")],
    )
    .send()
    .await
    .unwrap();
    assert_oauth_error(res, 400, "invalid_request").await;

    // The right secret still works after all that.
    assert!(!cc_token(&app, &c).await.is_empty());
}

async fn bad_input_gets_rfc_6749_errors_never_problem_documents(app: TestApp) {
    let admin = app.admin_token("root").await;
    let c = create_client(&app, &admin, &["reader"], &[]).await;
    let token = app.url("/oauth/token");

    // A JSON body.
    let res = app
        .client
        .post(&token)
        .basic_auth(&c.id, Some(&c.secret))
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_oauth_error(res, 400, "invalid_request").await;
    // Other content types, and none.
    let res = app.client.post(&token).header("content-type", "text/plain").body("grant_type=client_credentials");
    assert_oauth_error(res.basic_auth(&c.id, Some(&c.secret)).send().await.unwrap(), 400, "invalid_request").await;
    let res = app.client.post(&token).body("grant_type=client_credentials").send().await.unwrap();
    assert_oauth_error(res, 400, "invalid_request").await;

    let raw = |body: Vec<u8>| {
        app.client
            .post(&token)
            .basic_auth(&c.id, Some(&c.secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    // Missing and duplicated parameters; unknown grant types.
    assert_oauth_error(raw(b"".to_vec()).await.unwrap(), 400, "invalid_request").await;
    assert_oauth_error(raw(b"scope=reader".to_vec()).await.unwrap(), 400, "invalid_request").await;
    let res = raw(b"grant_type=client_credentials&grant_type=client_credentials".to_vec()).await.unwrap();
    assert_oauth_error(res, 400, "invalid_request").await;
    let res = raw(b"grant_type=client_credentials&scope=reader&scope=reader".to_vec()).await.unwrap();
    assert_oauth_error(res, 400, "invalid_request").await;
    assert_oauth_error(raw(b"grant_type=password".to_vec()).await.unwrap(), 400, "unsupported_grant_type").await;
    let res = raw(b"grant_type=authorization_code&code=x".to_vec()).await.unwrap();
    assert_oauth_error(res, 400, "unsupported_grant_type").await;
    // Non-UTF-8, raw and percent-encoded; broken escapes.
    assert_oauth_error(raw(b"grant_type=client_\xff".to_vec()).await.unwrap(), 400, "invalid_request").await;
    let res = raw(b"grant_type=client_credentials&scope=%C3%28".to_vec()).await.unwrap();
    assert_oauth_error(res, 400, "invalid_request").await;
    assert_oauth_error(raw(b"grant_type=%zz".to_vec()).await.unwrap(), 400, "invalid_request").await;
    // Percent-encoding and an empty parameter (= omitted) are fine.
    let res = raw(b"grant_type=client%5Fcredentials&scope=&audience=".to_vec()).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // Over the body limit.
    let mut big = b"grant_type=client_credentials&pad=".to_vec();
    big.resize(app.settings.server.body_limit_bytes + 10, b'a');
    assert_oauth_error(raw(big).await.unwrap(), 413, "invalid_request").await;
    // Other methods on /oauth/*.
    for path in ["/oauth/token", "/oauth/introspect", "/oauth/revoke"] {
        let res = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.headers()["allow"], "POST");
        assert_oauth_error(res, 405, "invalid_request").await;
    }
    // The same rules on introspection and revocation.
    let res =
        app.client.post(app.url("/oauth/introspect")).basic_auth(&c.id, Some(&c.secret)).json(&json!({"token": "x"}));
    assert_oauth_error(res.send().await.unwrap(), 400, "invalid_request").await;
    let res = basic(&app, "/oauth/introspect", &c, &[]).send().await.unwrap();
    assert_oauth_error(res, 400, "invalid_request").await;
    let res = basic(&app, "/oauth/revoke", &c, &[]).send().await.unwrap();
    assert_oauth_error(res, 400, "invalid_request").await;
}

async fn refresh_grant_shares_the_rotation_of_v1_auth_refresh(app: TestApp) {
    app.register_ok("alice").await;
    let login = app.login_ok("alice").await;
    let refresh = |token: String, client_id: Option<&'static str>| {
        let mut params = vec![("grant_type", "refresh_token".to_owned()), ("refresh_token", token)];
        if let Some(id) = client_id {
            params.push(("client_id", id.to_owned()));
        }
        app.client.post(app.url("/oauth/token")).form(&params).send()
    };

    let res = refresh(login.refresh.clone(), Some("signet")).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    let (access, next) = (body["access_token"].as_str().unwrap(), body["refresh_token"].as_str().unwrap());
    assert_eq!(claims_of(access)["sid"], claims_of(&login.access)["sid"]);
    assert_eq!(claims_of(access)["amr"], json!(["pwd"]), "a refresh of a password login stays one");
    // The /v1 endpoint continues the same chain: one rotation code.
    let res = app.refresh(next).await;
    assert_eq!(res.status(), StatusCode::OK);
    let v1: Value = res.json().await.unwrap();

    // Without client_id, the public client is assumed.
    let res = refresh(v1["refresh_token"].as_str().unwrap().to_owned(), None).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let latest: Value = res.json().await.unwrap();

    // Reuse of a rotated token (past the grace window): invalid_grant, and the whole session is revoked.
    app.clock.advance(TimeDelta::seconds(app.settings.tokens.refresh_reuse_grace_secs + 1));
    let res = refresh(login.refresh.clone(), Some("signet")).await.unwrap();
    assert_oauth_error(res, 400, "invalid_grant").await;
    let res = refresh(latest["refresh_token"].as_str().unwrap().to_owned(), None).await.unwrap();
    assert_oauth_error(res, 400, "invalid_grant").await;
    assert_problem(app.get("/v1/auth/me", latest["access_token"].as_str()).await, 401, "invalid_token").await;

    // Garbage, an access token, an expired refresh token.
    let res = refresh("not-a-token".into(), None).await.unwrap();
    assert_oauth_error(res, 400, "invalid_grant").await;
    let fresh = app.login_ok("alice").await;
    let res = refresh(fresh.access.clone(), None).await.unwrap();
    assert_oauth_error(res, 400, "invalid_grant").await;
    let res = form(&app, "/oauth/token", &[("grant_type", "refresh_token")]).send().await.unwrap();
    assert_oauth_error(res, 400, "invalid_request").await;

    // Another client id without a secret is no client; a confidential client
    // may not use the public client's refresh tokens.
    let res = refresh(fresh.refresh.clone(), Some("billing")).await.unwrap();
    assert_oauth_error(res, 401, "invalid_client").await;
    let admin = app.admin_token("root").await;
    let c = create_client(&app, &admin, &[], &[]).await;
    let res = basic(&app, "/oauth/token", &c, &[("grant_type", "refresh_token"), ("refresh_token", &fresh.refresh)])
        .send()
        .await
        .unwrap();
    assert_oauth_error(res, 400, "invalid_grant").await;

    app.clock.advance(TimeDelta::seconds(app.settings.tokens.refresh_ttl_secs + 60));
    let res = refresh(fresh.refresh, None).await.unwrap();
    assert_oauth_error(res, 400, "invalid_grant").await;
}

async fn exchange(app: &TestApp, c: &ClientCreds, subject: &str, audience: &str) -> Response {
    basic(
        app,
        "/oauth/token",
        c,
        &[("grant_type", EXCHANGE), ("subject_token", subject), ("subject_token_type", AT), ("audience", audience)],
    )
    .send()
    .await
    .unwrap()
}

async fn token_exchange_narrows_the_audience_and_keeps_the_session(app: TestApp) {
    let admin = app.admin_token("root").await;
    let gateway = create_client(&app, &admin, &[], &["https://orders.example"]).await;
    app.register_ok("alice").await;
    let login = app.login_ok("alice").await;

    let res = exchange(&app, &gateway, &login.access, "https://orders.example").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["issued_token_type"], AT);
    assert_eq!(body["token_type"], "Bearer");
    let exchanged = body["access_token"].as_str().unwrap().to_owned();
    let (new, old) = (claims_of(&exchanged), claims_of(&login.access));
    for claim in ["sub", "sid", "roles", "status", "preferred_username"] {
        assert_eq!(new[claim], old[claim], "{claim} kept");
    }
    assert_eq!(new["aud"], "https://orders.example");
    assert_eq!(new["act"], json!({"sub": gateway.id}));
    assert_eq!(new["client_id"], gateway.id.as_str());
    assert!(new.get("amr").is_none(), "a derived token: {new}");
    assert!(new["exp"].as_i64().unwrap() <= old["exp"].as_i64().unwrap());
    assert_ne!(new["jti"], old["jti"]);

    // Never outlives the subject token: 10 minutes on, at most its last 5.
    app.clock.advance(TimeDelta::seconds(600));
    let res = exchange(&app, &gateway, &login.access, "https://orders.example").await;
    let body: Value = res.json().await.unwrap();
    assert!(body["expires_in"].as_i64().unwrap() <= 300, "{body}");
    let later = claims_of(body["access_token"].as_str().unwrap());
    assert_eq!(later["exp"], old["exp"]);

    // An exchanged token can be exchanged again: the actors nest.
    let res = exchange(&app, &gateway, &exchanged, "https://orders.example").await;
    let again = claims_of(res.json::<Value>().await.unwrap()["access_token"].as_str().unwrap());
    assert_eq!(again["act"], json!({"sub": gateway.id, "act": {"sub": gateway.id}}));

    // An audience the client may not have.
    let res = exchange(&app, &gateway, &login.access, "https://payroll.example").await;
    assert_oauth_error(res, 400, "invalid_target").await;
    let res = exchange(&app, &gateway, &login.access, "signet").await;
    assert_oauth_error(res, 400, "invalid_target").await;

    // Missing and wrong parameters.
    let res = basic(&app, "/oauth/token", &gateway, &[("grant_type", EXCHANGE), ("subject_token", &login.access)])
        .send()
        .await
        .unwrap();
    assert_oauth_error(res, 400, "invalid_request").await;
    let res = basic(
        &app,
        "/oauth/token",
        &gateway,
        &[
            ("grant_type", EXCHANGE),
            ("subject_token", &login.access),
            ("subject_token_type", "urn:ietf:params:oauth:token-type:refresh_token"),
            ("audience", "https://orders.example"),
        ],
    )
    .send()
    .await
    .unwrap();
    assert_oauth_error(res, 400, "invalid_request").await;
    // Token exchange needs an authenticated client.
    let res = form(
        &app,
        "/oauth/token",
        &[("grant_type", EXCHANGE), ("subject_token", &login.access), ("subject_token_type", AT), ("audience", "x")],
    )
    .send()
    .await
    .unwrap();
    assert_oauth_error(res, 401, "invalid_client").await;

    // Revoking the user's session revokes the exchanged token too.
    assert_eq!(introspect(&app, &gateway, &exchanged).await["active"], true);
    let res = app.post_json("/v1/auth/logout", &json!({"refresh_token": login.refresh})).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(introspect(&app, &gateway, &exchanged).await, json!({"active": false}));
    assert!(status_invalid(&app, &exchanged));
}

async fn token_exchange_refuses_refresh_expired_and_revoked_subjects(app: TestApp) {
    let admin = app.admin_token("root").await;
    let gateway = create_client(&app, &admin, &[], &["orders"]).await;
    app.register_ok("alice").await;
    let login = app.login_ok("alice").await;

    let res = exchange(&app, &gateway, &login.refresh, "orders").await;
    assert_oauth_error(res, 400, "invalid_grant").await;
    let res = exchange(&app, &gateway, "eyJhbGciOiJub25lIn0.e30.", "orders").await;
    assert_oauth_error(res, 400, "invalid_grant").await;

    let other = app.login_ok("alice").await;
    let res = app.post_json("/v1/auth/logout", &json!({"refresh_token": other.refresh})).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = exchange(&app, &gateway, &other.access, "orders").await;
    assert_oauth_error(res, 400, "invalid_grant").await;

    app.clock.advance(TimeDelta::seconds(app.settings.tokens.access_ttl_secs + 60));
    let res = exchange(&app, &gateway, &login.access, "orders").await;
    assert_oauth_error(res, 400, "invalid_grant").await;
}

async fn introspection_reflects_revocation_at_once(app: TestApp) {
    let admin = app.admin_token("root").await;
    let gateway = create_client(&app, &admin, &[], &[]).await;
    let service = create_client(&app, &admin, &["reader"], &[]).await;
    app.register_ok("alice").await;
    let login = app.login_ok("alice").await;

    let user = introspect(&app, &gateway, &login.access).await;
    assert_eq!(user["active"], true);
    assert_eq!(user["sub"], login.user_id.as_str());
    assert_eq!(user["username"], "alice");
    assert_eq!(user["client_id"], "signet");
    assert_eq!(user["roles"], json!(["user"]));
    assert_eq!(user["token_type"], "Bearer");
    assert_eq!(user["aud"], "signet");
    assert_eq!(user["iss"], app.settings.tokens.issuer.as_str());
    assert_eq!(user["sid"], claims_of(&login.access)["sid"]);
    assert!(user["exp"].is_i64() && user["iat"].is_i64());

    let refresh = introspect(&app, &gateway, &login.refresh).await;
    assert_eq!(refresh["active"], true);
    assert_eq!(refresh["token_type"], "refresh_token");
    assert_eq!(refresh["sub"], login.user_id.as_str());

    let token = cc_token(&app, &service).await;
    let cc = introspect(&app, &gateway, &token).await;
    assert_eq!(cc["active"], true);
    assert_eq!(cc["sub"], service.id.as_str());
    assert_eq!(cc["client_id"], service.id.as_str());
    assert_eq!(cc["scope"], "reader");
    assert!(cc.get("username").is_none());

    // Garbage, and a token of another issuer: inactive, nothing else.
    assert_eq!(introspect(&app, &gateway, "garbage").await, json!({"active": false}));
    let (key, kid) = app.real_signing_key();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some(kid);
    header.typ = Some("at+jwt".into());
    let mut foreign = claims_of(&login.access);
    foreign["iss"] = json!("https://evil.example");
    if let Ok(forged) = jsonwebtoken::encode(&header, &foreign, &key) {
        assert_eq!(introspect(&app, &gateway, &forged).await, json!({"active": false}));
    }

    // Logout: both tokens inactive at once, and only {"active": false}.
    let res = app.post_json("/v1/auth/logout", &json!({"refresh_token": login.refresh})).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(introspect(&app, &gateway, &login.access).await, json!({"active": false}));
    assert_eq!(introspect(&app, &gateway, &login.refresh).await, json!({"active": false}));

    // Expired: inactive.
    app.clock.advance(TimeDelta::seconds(app.settings.tokens.access_ttl_secs + 60));
    assert_eq!(introspect(&app, &gateway, &token).await, json!({"active": false}));

    // Introspection needs an authenticated client (not the public one).
    let res = form(&app, "/oauth/introspect", &[("token", &token), ("client_id", "signet")]).send().await.unwrap();
    assert_oauth_error(res, 401, "invalid_client").await;
}

async fn revocation_follows_rfc_7009(app: TestApp) {
    let admin = app.admin_token("root").await;
    let gateway = create_client(&app, &admin, &[], &[]).await;
    let service = create_client(&app, &admin, &["reader"], &[]).await;
    app.register_ok("alice").await;

    // Unknown or invalid tokens: 200 all the same.
    let res = revoke(&app, &gateway, "no-such-token").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store");

    // An access token: its session is revoked, its status bit flipped.
    let login = app.login_ok("alice").await;
    assert_eq!(revoke(&app, &gateway, &login.access).await.status(), StatusCode::OK);
    assert_problem(app.get("/v1/auth/me", Some(&login.access)).await, 401, "invalid_token").await;
    assert_problem(app.refresh(&login.refresh).await, 401, "invalid_refresh_token").await;
    assert!(status_invalid(&app, &login.access));
    // Revoking again is still 200.
    assert_eq!(revoke(&app, &gateway, &login.access).await.status(), StatusCode::OK);

    // A refresh token, by the public client naming itself.
    let login = app.login_ok("alice").await;
    let res = form(&app, "/oauth/revoke", &[("token", &login.refresh), ("client_id", "signet")]).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_problem(app.refresh(&login.refresh).await, 401, "invalid_refresh_token").await;
    assert_eq!(introspect(&app, &gateway, &login.access).await, json!({"active": false}));

    // A client-credentials token: its client session ends; the next token starts a new one.
    let token = cc_token(&app, &service).await;
    assert_eq!(revoke(&app, &service, &token).await.status(), StatusCode::OK);
    assert_eq!(introspect(&app, &gateway, &token).await, json!({"active": false}));
    assert!(status_invalid(&app, &token));
    let next = cc_token(&app, &service).await;
    assert_ne!(claims_of(&next)["sid"], claims_of(&token)["sid"]);
    assert_eq!(introspect(&app, &gateway, &next).await["active"], true);

    // An access token exchanged for an API token: the API token is revoked.
    let access = app.login_ok("alice").await.access;
    let res = app.client.post(app.url("/v1/auth/api-tokens")).bearer_auth(&access).json(&json!({"name": "ci"}));
    let api_token = res.send().await.unwrap().json::<Value>().await.unwrap()["token"].as_str().unwrap().to_owned();
    let res = app
        .client
        .post(app.url("/v1/auth/token-exchange"))
        .header("authorization", format!("Token {api_token}"))
        .send()
        .await
        .unwrap();
    let exchanged = res.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(introspect(&app, &gateway, &exchanged).await["active"], true);
    assert_eq!(revoke(&app, &gateway, &exchanged).await.status(), StatusCode::OK);
    assert_eq!(introspect(&app, &gateway, &exchanged).await, json!({"active": false}));
    let res = app.client.get(app.url("/v1/auth/api-tokens")).header("authorization", format!("Token {api_token}"));
    assert_problem(res.send().await.unwrap(), 401, "invalid_token").await;

    // Without client authentication (and not the public client): 401.
    let res = form(&app, "/oauth/revoke", &[("token", &next)]).send().await.unwrap();
    assert_oauth_error(res, 401, "invalid_client").await;
    let res = form(&app, "/oauth/revoke", &[("token", &next), ("client_id", &service.id)]).send().await.unwrap();
    assert_oauth_error(res, 401, "invalid_client").await;
    assert_eq!(introspect(&app, &gateway, &next).await["active"], true);
}

async fn deleting_rotating_or_disabling_a_client_revokes_its_tokens(app: TestApp) {
    let admin = app.admin_token("root").await;
    let gateway = create_client(&app, &admin, &[], &[]).await;

    // Deletion.
    let doomed = create_client(&app, &admin, &["reader"], &[]).await;
    let token = cc_token(&app, &doomed).await;
    assert_eq!(app.get("/v1/auth/sessions", Some(&token)).await.status(), StatusCode::OK);
    let res = app.client.delete(app.url(&format!("/v1/admin/clients/{}", doomed.id))).bearer_auth(&admin).send().await;
    assert_eq!(res.unwrap().status(), StatusCode::NO_CONTENT);
    assert_eq!(introspect(&app, &gateway, &token).await, json!({"active": false}));
    assert_problem(app.get("/v1/auth/sessions", Some(&token)).await, 401, "invalid_token").await;
    assert!(status_invalid(&app, &token));

    // Secret rotation.
    let rotated = create_client(&app, &admin, &["reader"], &[]).await;
    let token = cc_token(&app, &rotated).await;
    let path = format!("/v1/admin/clients/{}/secret", rotated.id);
    assert_eq!(app.client.post(app.url(&path)).bearer_auth(&admin).send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(introspect(&app, &gateway, &token).await, json!({"active": false}));
    assert!(status_invalid(&app, &token));

    // Disabling (domain function; the admin API has no disable route).
    let disabled = create_client(&app, &admin, &["reader"], &[]).await;
    let token = cc_token(&app, &disabled).await;
    let now = app.clock_now();
    signet::clients::service::set_disabled(&mut app.conn(), &disabled.id, true, now).unwrap();
    assert_eq!(introspect(&app, &gateway, &token).await, json!({"active": false}));
    assert!(status_invalid(&app, &token));
    let res = basic(&app, "/oauth/token", &disabled, &[("grant_type", "client_credentials")]).send().await.unwrap();
    assert_oauth_error(res, 401, "invalid_client").await;
}

async fn derived_tokens_cannot_create_clients_or_api_tokens(app: TestApp) {
    let admin = app.admin_token("root").await;
    let robot = create_client(&app, &admin, &["admin", "user"], &["signet"]).await;
    let token = cc_token(&app, &robot).await;
    // Admin role, but no password login: it may read, not mint.
    assert_eq!(app.get("/v1/admin/clients", Some(&token)).await.status(), StatusCode::OK);
    let mint = |path: &'static str, bearer: String, body: Value| {
        app.client.post(app.url(path)).bearer_auth(bearer).json(&body).send()
    };
    let client_body = json!({"name": "more", "roles": ["admin"]});
    let res = mint("/v1/admin/clients", token.clone(), client_body.clone()).await.unwrap();
    assert_problem(res, 401, "insufficient_user_authentication").await;
    let res = mint("/v1/auth/api-tokens", token.clone(), json!({"name": "t"})).await.unwrap();
    assert_problem(res, 401, "insufficient_user_authentication").await;
    let path = format!("/v1/admin/clients/{}/secret", robot.id);
    let res = app.client.post(app.url(&path)).bearer_auth(&token).send().await.unwrap();
    assert_problem(res, 401, "insufficient_user_authentication").await;

    // A token exchanged from the admin's password login is derived too.
    let res = exchange(&app, &robot, &admin, "signet").await;
    assert_eq!(res.status(), StatusCode::OK);
    let exchanged = res.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(claims_of(&exchanged)["roles"], json!(["admin", "user"]));
    assert_eq!(app.get("/v1/admin/clients", Some(&exchanged)).await.status(), StatusCode::OK);
    let res = mint("/v1/admin/clients", exchanged, client_body.clone()).await.unwrap();
    assert_problem(res, 401, "insufficient_user_authentication").await;
    // The admin's own password login may.
    assert_eq!(mint("/v1/admin/clients", admin, client_body).await.unwrap().status(), StatusCode::CREATED);
}

async fn discovery_names_the_oauth_endpoints(app: TestApp) {
    let issuer = app.settings.tokens.issuer.clone();
    for path in ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"] {
        let res = app.get(path, None).await;
        assert_eq!(res.status(), StatusCode::OK);
        let meta: Value = res.json().await.unwrap();
        assert_eq!(meta["issuer"], issuer.as_str());
        assert_eq!(meta["token_endpoint"], format!("{issuer}/oauth/token"));
        assert_eq!(meta["introspection_endpoint"], format!("{issuer}/oauth/introspect"));
        assert_eq!(meta["revocation_endpoint"], format!("{issuer}/oauth/revoke"));
        assert_eq!(meta["signet_login_endpoint"], format!("{issuer}/v1/auth/login"));
        assert_eq!(meta["grant_types_supported"], json!(["client_credentials", "refresh_token", EXCHANGE]));
        assert_eq!(meta["token_endpoint_auth_methods_supported"], json!(["client_secret_basic", "client_secret_post"]));
        assert!(meta["id_token_signing_alg_values_supported"].is_array());
        assert_eq!(meta["jwks_uri"], format!("{issuer}/.well-known/jwks.json"));
    }
}

async fn failed_client_authentication_is_throttled_without_locking_out_the_client(app: TestApp) {
    let app = app
        .restart_with(|s: &mut signet::config::Settings| {
            s.throttle.failures_before_lockout = 3;
            s.throttle.per_ip_burst = 8;
            s.throttle.lockout_secs = 60;
        })
        .await;
    let admin = app.admin_token("root").await;
    let c = create_client(&app, &admin, &["reader"], &[]).await;
    let wrong = ClientCreds { id: c.id.clone(), secret: "sgc_wrong".into() };
    let cc = [("grant_type", "client_credentials")];

    // Per client id: after 3 failures its failures are 429, but the right secret passes.
    for _ in 0..2 {
        let res = basic(&app, "/oauth/token", &wrong, &cc).send().await.unwrap();
        assert_oauth_error(res, 401, "invalid_client").await;
    }
    let res = basic(&app, "/oauth/token", &wrong, &cc).send().await.unwrap();
    assert!(res.headers().contains_key("retry-after"));
    assert_oauth_error(res, 429, "temporarily_unavailable").await;
    assert!(!cc_token(&app, &c).await.is_empty(), "no lock-out of the valid client");

    // Per IP: 8 failures (any client ids) lock the IP: even a right secret is not checked.
    for _ in 0..4 {
        let stranger = ClientCreds { id: uuid::Uuid::new_v4().to_string(), secret: "sgc_x".into() };
        basic(&app, "/oauth/token", &stranger, &cc).send().await.unwrap();
    }
    let res = basic(&app, "/oauth/token", &wrong, &cc).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let res = basic(&app, "/oauth/token", &c, &cc).send().await.unwrap();
    let retry: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    assert_oauth_error(res, 429, "temporarily_unavailable").await;
    let res = basic(&app, "/oauth/introspect", &c, &[("token", "x")]).send().await.unwrap();
    assert_oauth_error(res, 429, "temporarily_unavailable").await;

    // The lock ends.
    app.clock.advance(TimeDelta::seconds(61));
    assert!(!cc_token(&app, &c).await.is_empty());
}

fn signet_cli(db_url: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_signet"))
        .args(args)
        .env("SIGNET__DATABASE__URL", db_url)
        .env("SIGNET__KEYS__MASTER_KEY", crate::helpers::TEST_MASTER_KEY)
        .env_remove("DATABASE_URL")
        .env_remove("SIGNET_CONFIG")
        .output()
        .expect("signet binary runs")
}

fn printed(out: &std::process::Output, field: &str) -> String {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let prefix = format!("{field}: ");
    stdout.lines().find_map(|l| l.strip_prefix(&prefix)).unwrap_or_else(|| panic!("no {field} in {stdout}")).to_owned()
}

async fn the_cli_creates_lists_rotates_and_deletes_clients(app: TestApp) {
    // A fresh database: the command migrates it first; the server then uses it.
    let db = crate::helpers::TestDb::create(app.backend);
    let url = db.url().to_owned();
    let out = signet_cli(&url, &["clients", "create", "reports", "--role", "reports.read", "--audience", "orders"]);
    let c = ClientCreds { id: printed(&out, "client_id"), secret: printed(&out, "client_secret") };
    let out = signet_cli(&url, &["clients", "create", "bad", "--role", "Not A Role"]);
    assert!(!out.status.success());
    let out = signet_cli(&url, &["clients", "list"]);
    let listing = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(listing.contains(&c.id) && listing.contains("reports.read") && !listing.contains(&c.secret), "{listing}");

    let app = TestApp::spawn_on(app.backend, db).await;
    let token = cc_token(&app, &c).await;
    assert_eq!(claims_of(&token)["roles"], json!(["reports.read"]));

    let out = signet_cli(&url, &["clients", "rotate-secret", &c.id]);
    let rotated = ClientCreds { id: c.id.clone(), secret: printed(&out, "client_secret") };
    let res = basic(&app, "/oauth/token", &c, &[("grant_type", "client_credentials")]).send().await.unwrap();
    assert_oauth_error(res, 401, "invalid_client").await;
    assert_eq!(introspect(&app, &rotated, &token).await, json!({"active": false}));
    let token = cc_token(&app, &rotated).await;

    let out = signet_cli(&url, &["clients", "delete", &c.id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = signet_cli(&url, &["clients", "delete", &c.id]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("no client"));
    assert!(status_invalid(&app, &token));
    let res = basic(&app, "/oauth/token", &rotated, &[("grant_type", "client_credentials")]).send().await.unwrap();
    assert_oauth_error(res, 401, "invalid_client").await;
}

/// An emergency key rotation on one instance: its tokens carry a `kid` the
/// other has not loaded yet. Introspection there reloads the keys once and
/// answers from the token's real state, instead of calling it inactive.
async fn introspection_on_another_instance_learns_a_key_it_has_not_loaded(app: TestApp) {
    use base64::Engine;
    use signet::keys::master::MasterKey;
    use signet::keys::rotation::{Activation, Schedule};

    let peer = app.spawn_peer(crate::helpers::defaults).await;
    let admin = app.admin_token("root").await;
    let c = create_client(&app, &admin, &["reader"], &[]).await;
    let old_kid = jsonwebtoken::decode_header(&cc_token(&app, &c).await).unwrap().kid.unwrap();

    let master_bytes = base64::engine::general_purpose::STANDARD.decode(crate::helpers::TEST_MASTER_KEY).unwrap();
    let master = MasterKey::from_bytes(&master_bytes).unwrap();
    let schedule = Schedule::from_settings(&app.settings);
    signet::keys::commands::rotate(&mut app.conn(), &master, &schedule, app.clock_now(), Activation::Now).unwrap();
    app.tick().await; // only `app` reloads

    let token = cc_token(&app, &c).await;
    let new_kid = jsonwebtoken::decode_header(&token).unwrap().kid.unwrap();
    assert_ne!(new_kid, old_kid, "the emergency key signs at once");
    let body = introspect(&peer, &c, &token).await;
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["sub"], c.id.as_str());
}
