use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::backend_tests;
use crate::helpers::{assert_problem, www_authenticate, TestApp};

backend_tests!(
    a_user_gets_403_on_admin_routes,
    admin_lists_and_gets_users,
    admin_sets_roles_and_they_appear_at_next_login,
    admin_patch_validates_and_disables,
    admin_deletes_users,
);

async fn a_user_gets_403_on_admin_routes(app: TestApp) {
    app.register_ok("user1").await;
    let token = app.login_ok("user1").await.access;
    let res = app.get("/v1/admin/users", Some(&token)).await;
    let challenge = www_authenticate(&res);
    assert!(challenge.contains("error=\"insufficient_scope\""), "{challenge}");
    assert_problem(res, 403, "insufficient_role").await;
    // No token at all is still 401, not 403.
    assert_problem(app.get("/v1/admin/users", None).await, 401, "missing_token").await;
}

async fn admin_lists_and_gets_users(app: TestApp) {
    let admin = app.admin_token("root").await;
    for name in ["usr1", "usr2", "usr3"] {
        // The list is ordered by creation time; the test clock only moves when told.
        app.clock.advance(chrono::TimeDelta::seconds(1));
        app.register_ok(name).await;
    }
    let res = app.get("/v1/admin/users?limit=2&offset=1", Some(&admin)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let page: Value = res.json().await.unwrap();
    assert_eq!(page["total"], 4);
    let names: Vec<&str> = page["users"].as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap()).collect();
    assert_eq!(names, ["usr1", "usr2"]);

    let id = page["users"][0]["id"].as_str().unwrap();
    let res = app.get(&format!("/v1/admin/users/{id}"), Some(&admin)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["username"], "usr1");

    assert_problem(app.get("/v1/admin/users/no-such-id", Some(&admin)).await, 404, "not_found").await;
    assert_problem(app.get("/v1/admin/users?limit=0", Some(&admin)).await, 400, "malformed_request").await;
    assert_problem(app.get("/v1/admin/users?limit=abc", Some(&admin)).await, 400, "malformed_request").await;
}

async fn put_roles(app: &TestApp, admin: &str, id: &str, roles: Value) -> reqwest::Response {
    app.client
        .put(app.url(&format!("/v1/admin/users/{id}/roles")))
        .bearer_auth(admin)
        .json(&json!({ "roles": roles }))
        .send()
        .await
        .unwrap()
}

async fn admin_sets_roles_and_they_appear_at_next_login(app: TestApp) {
    let admin = app.admin_token("root").await;
    let user = app.register_ok("editor").await;
    let id = user["id"].as_str().unwrap();
    let res = put_roles(&app, &admin, id, json!(["user", "editor", "editor"])).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["roles"], json!(["editor", "user"]));
    let token = app.login_ok("editor").await.access;
    let me: Value = app.get("/v1/auth/me", Some(&token)).await.json().await.unwrap();
    assert_eq!(me["roles"], json!(["editor", "user"]));

    assert_problem(put_roles(&app, &admin, id, json!(["Bad Role"])).await, 422, "validation_failed").await;
    assert_problem(put_roles(&app, &admin, id, json!("admin")).await, 400, "malformed_request").await;
    assert_problem(put_roles(&app, &admin, "missing", json!(["user"])).await, 404, "not_found").await;
}

async fn patch(app: &TestApp, admin: &str, id: &str, body: Value) -> reqwest::Response {
    app.client.patch(app.url(&format!("/v1/admin/users/{id}"))).bearer_auth(admin).json(&body).send().await.unwrap()
}

async fn admin_patch_validates_and_disables(app: TestApp) {
    let admin = app.admin_token("root").await;
    app.register_ok("patchy").await;
    let pair = app.login_ok("patchy").await;
    let id = pair.user_id.as_str();

    let res = patch(&app, &admin, id, json!({"email": "p@example.com"})).await;
    assert_eq!(res.json::<Value>().await.unwrap()["email"], "p@example.com");
    let res = patch(&app, &admin, id, json!({"email": null})).await;
    assert_eq!(res.json::<Value>().await.unwrap()["email"], Value::Null);
    assert_problem(patch(&app, &admin, id, json!({"email": "nope"})).await, 422, "validation_failed").await;
    assert_problem(patch(&app, &admin, id, json!({"roles": ["admin"]})).await, 400, "malformed_request").await;
    // null is not a boolean (openapi.yaml says `disabled: boolean`).
    assert_problem(patch(&app, &admin, id, json!({"disabled": null})).await, 400, "malformed_request").await;

    let res = patch(&app, &admin, id, json!({"disabled": true})).await;
    assert_eq!(res.json::<Value>().await.unwrap()["disabled"], true);
    // Disabling revoked the session: its refresh token is dead.
    assert_problem(app.refresh(pair.refresh.as_str()).await, 401, "invalid_refresh_token").await;
}

async fn admin_deletes_users(app: TestApp) {
    let admin = app.admin_token("root").await;
    app.register_ok("goner").await;
    let pair = app.login_ok("goner").await;
    let id = &pair.user_id;
    let res = app.client.delete(app.url(&format!("/v1/admin/users/{id}"))).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = app.client.delete(app.url(&format!("/v1/admin/users/{id}"))).bearer_auth(&admin).send().await.unwrap();
    assert_problem(res, 404, "not_found").await;
    assert_problem(app.refresh(pair.refresh.as_str()).await, 401, "invalid_refresh_token").await;
    assert_problem(app.login("goner", crate::helpers::PASSWORD).await, 401, "invalid_credentials").await;
}
