//! `log.format = "json"`: every line of the real binary's log is one JSON
//! object with the text line's fields, and no password or token.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::backend_tests;
use crate::helpers::{TestApp, PASSWORD};
use crate::shutdown::Served;

backend_tests!(json_logs_are_one_object_per_line_without_secrets);

async fn json_logs_are_one_object_per_line_without_secrets(app: TestApp) {
    let mut served =
        Served::start(app.db.url(), &[("SIGNET__LOG__FORMAT", "json"), ("SIGNET__PASSWORDS__BCRYPT_COST", "4")]);
    let client = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", served.address);
    let res = client.post(url("/v1/auth/register")).json(&json!({"username": "logged", "password": PASSWORD})).send();
    assert_eq!(res.await.unwrap().status(), StatusCode::CREATED);
    let res = client.post(url("/v1/auth/login")).json(&json!({"username": "logged", "password": PASSWORD})).send();
    let pair: Value = res.await.unwrap().json().await.unwrap();
    let (access, refresh) = (pair["access_token"].as_str().unwrap(), pair["refresh_token"].as_str().unwrap());
    let res = client.post(url("/v1/auth/refresh")).json(&json!({"refresh_token": refresh})).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = client.get(url("/v1/auth/me")).bearer_auth(access).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let wrong = "not-the-password-9x";
    let res = client.post(url("/v1/auth/login")).json(&json!({"username": "logged", "password": wrong})).send();
    assert_eq!(res.await.unwrap().status(), StatusCode::UNAUTHORIZED);
    tokio::time::sleep(Duration::from_millis(200)).await;
    served.signal("TERM");
    assert!(served.wait_exit().success());

    assert!(served.seen.len() >= 5, "{:#?}", served.seen);
    let mut request_lines = 0;
    for line in &served.seen {
        let value: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        for field in ["time", "level", "target", "message"] {
            assert!(value[field].is_string(), "{field} missing: {line}");
        }
        if value["message"].as_str().unwrap().contains("/v1/auth/") {
            request_lines += 1;
        }
        for secret in [PASSWORD, wrong, access, refresh] {
            assert!(!line.contains(secret), "a secret in the log: {line}");
        }
    }
    assert!(request_lines >= 5, "request log lines missing: {:#?}", served.seen);
}
