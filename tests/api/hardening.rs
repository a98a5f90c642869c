//! Issue 11: no credential may outgrow the login behind it, and every
//! password check is throttled. One test per item, on both backends.

use reqwest::{Response, StatusCode};
use serde_json::{json, Value};

use crate::backend_tests;
use crate::helpers::{assert_problem, claims_of, www_authenticate, TestApp, PASSWORD};

backend_tests!(derived_tokens_cannot_mint_credentials_or_change_the_password,);

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
    assert_eq!(
        www_authenticate(&res),
        "Bearer realm=\"signet\", error=\"insufficient_user_authentication\""
    );
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
