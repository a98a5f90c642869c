//! Token status lists (issue 13): every revocation path flips the token's bit
//! in the served list, signet's own routes refuse the token at once, indices
//! are unique under concurrency, lists retire, and two instances on one
//! database agree within a second.

use std::io::Read;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::backend_tests;
use signet::config::Settings;

use crate::helpers::{assert_problem, defaults, TestApp, PASSWORD};

backend_tests!(
    tokens_carry_a_status_and_the_list_is_signed_and_cached,
    unknown_lists_are_404_and_bad_if_none_match_is_ignored,
    logout_flips_the_bit_and_own_routes_refuse,
    logout_all_flips_every_session,
    session_delete_flips_its_bit,
    password_change_flips_the_other_sessions,
    refresh_keeps_the_index_and_reuse_flips_it,
    admin_disable_and_delete_flip_every_session,
    api_token_revoke_flips_its_exchanged_tokens,
    role_change_invalidates_the_index_and_refresh_gives_a_new_one,
    concurrent_logins_on_two_instances_get_unique_indices,
    full_lists_retire_once_every_session_expired,
    two_instances_agree_within_a_second,
    event_stream_announces_changes_and_caps_subscribers,
);

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&B64.decode(payload).unwrap()).unwrap()
}

fn access(pair: &Value) -> String {
    pair["access_token"].as_str().unwrap().to_owned()
}

/// (uri, idx) of an access token's status claim.
fn status_of(token: &str) -> (String, u64) {
    let claims = claims_of(token);
    let list = &claims["status"]["status_list"];
    (list["uri"].as_str().expect("status uri").to_owned(), list["idx"].as_u64().expect("status idx"))
}

/// The draft's layout, written here independently of the server's code:
/// "each status of a Referenced Token is represented with a bit-size of 1 ...
/// the status of index i is at byte i / 8, at bit position i % 8, starting
/// from the least significant bit"; lst is base64url(zlib-deflate(bytes)).
fn decode_status(lst: &str, idx: u64) -> u8 {
    let compressed = B64.decode(lst).expect("lst is base64url without padding");
    let mut bytes = Vec::new();
    flate2::read::ZlibDecoder::new(&compressed[..]).read_to_end(&mut bytes).expect("lst is zlib");
    let byte = bytes[(idx / 8) as usize];
    (byte >> (idx % 8)) & 1
}

/// The path of a list URI under the app's issuer.
fn path_of(app: &TestApp, uri: &str) -> String {
    let prefix = format!("{}/", app.settings.tokens.issuer);
    format!("/{}", uri.strip_prefix(&prefix).expect("the list URI is under the issuer"))
}

/// Fetches the list a token names and returns the claims of its JWT.
async fn list_claims(app: &TestApp, uri: &str) -> Value {
    let res = app.get(&path_of(app, uri), None).await;
    assert_eq!(res.status(), StatusCode::OK, "GET {uri}");
    claims_of(&res.text().await.unwrap())
}

async fn bit(app: &TestApp, token: &str) -> u8 {
    let (uri, idx) = status_of(token);
    let claims = list_claims(app, &uri).await;
    decode_status(claims["status_list"]["lst"].as_str().unwrap(), idx)
}

/// Waits (polling the list, as a verifier would) until the token's bit is
/// `want`; fails after 2 s. Returns how long it took.
async fn wait_bit(app: &TestApp, token: &str, want: u8) -> Duration {
    let start = Instant::now();
    loop {
        if bit(app, token).await == want {
            return start.elapsed();
        }
        assert!(start.elapsed() < Duration::from_secs(2), "bit never became {want}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn me(app: &TestApp, token: &str) -> StatusCode {
    app.get("/v1/auth/me", Some(token)).await.status()
}

/// Asserts the token is revoked everywhere: own route 401 at once, bit 1 soon.
async fn assert_revoked(app: &TestApp, token: &str) {
    let res = app.get("/v1/auth/me", Some(token)).await;
    let body = assert_problem(res, 401, "invalid_token").await;
    assert!(body["detail"].as_str().unwrap().contains("revoked"));
    wait_bit(app, token, 1).await;
}

async fn assert_valid(app: &TestApp, token: &str) {
    assert_eq!(me(app, token).await, StatusCode::OK);
    assert_eq!(bit(app, token).await, 0);
}

async fn user_with_login(app: &TestApp, name: &str) -> (String, Value) {
    let user = app.register_ok(name).await;
    (user["id"].as_str().unwrap().to_owned(), app.login_ok(name).await.body)
}

async fn tokens_carry_a_status_and_the_list_is_signed_and_cached(app: TestApp) {
    let (_, pair) = user_with_login(&app, "alice").await;
    let token = access(&pair);
    let (uri, _) = status_of(&token);
    assert!(uri.starts_with(&format!("{}/v1/status-lists/", app.settings.tokens.issuer)));
    assert_valid(&app, &token).await;

    let res = app.get(&path_of(&app, &uri), None).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/statuslist+jwt");
    assert_eq!(res.headers()["cache-control"], "public, max-age=5");
    let etag = res.headers()["etag"].to_str().unwrap().to_owned();
    let number = uri.rsplit('/').next().unwrap();
    assert!(etag.starts_with(&format!("\"{number}-")) && etag.ends_with('"'), "{etag}");
    let jwt = res.text().await.unwrap();

    // Signed by a key of the JWKS, typ statuslist+jwt, claims as the draft says.
    let header = jsonwebtoken::decode_header(&jwt).unwrap();
    assert_eq!(header.typ.as_deref(), Some("statuslist+jwt"));
    let jwks: jsonwebtoken::jwk::JwkSet = app.get("/.well-known/jwks.json", None).await.json().await.unwrap();
    let jwk = jwks.find(header.kid.as_deref().unwrap()).expect("kid in the JWKS");
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.validate_aud = false;
    validation.set_required_spec_claims(&["exp", "sub", "iat"]);
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let claims = jsonwebtoken::decode::<Value>(&jwt, &key, &validation).expect("signature verifies").claims;
    assert_eq!(claims["iss"], app.settings.tokens.issuer.as_str());
    assert_eq!(claims["sub"], uri.as_str());
    assert_eq!(claims["ttl"], 5);
    assert_eq!(claims["status_list"]["bits"], 1);
    assert!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap() > 3600);

    // Not re-signed per request: the same bytes until something changes.
    let again = app.get(&path_of(&app, &uri), None).await.text().await.unwrap();
    assert_eq!(again, jwt);
    let res = app.client.get(app.url(&path_of(&app, &uri))).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(res.headers()["etag"].to_str().unwrap(), etag);
}

async fn unknown_lists_are_404_and_bad_if_none_match_is_ignored(app: TestApp) {
    let (_, pair) = user_with_login(&app, "bob").await;
    let (uri, _) = status_of(&access(&pair));
    for path in ["/v1/status-lists/999", "/v1/status-lists/0", "/v1/status-lists/-1", "/v1/status-lists/x1"] {
        assert_problem(app.get(path, None).await, 404, "not_found").await;
    }
    for junk in ["\u{1}garbage", "\"nope\"", "W/", ",,,"] {
        let req = app.client.get(app.url(&path_of(&app, &uri))).header("if-none-match", junk.replace('\u{1}', ""));
        assert_eq!(req.send().await.unwrap().status(), StatusCode::OK, "If-None-Match {junk:?}");
    }
}

async fn logout_flips_the_bit_and_own_routes_refuse(app: TestApp) {
    let (_, pair) = user_with_login(&app, "carol").await;
    let (_, other) = (0, app.login_ok("carol").await.body);
    let token = access(&pair);
    assert_valid(&app, &token).await;
    let res = app.post_json("/v1/auth/logout", &json!({"refresh_token": pair["refresh_token"]})).await;
    assert!(res.status().is_success());
    assert_revoked(&app, &token).await;
    assert_valid(&app, &access(&other)).await;
}

async fn logout_all_flips_every_session(app: TestApp) {
    let (_, first) = user_with_login(&app, "dave").await;
    let second = app.login_ok("dave").await.body;
    let res = app.client.post(app.url("/v1/auth/logout-all")).bearer_auth(access(&first)).send().await.unwrap();
    assert!(res.status().is_success());
    assert_revoked(&app, &access(&first)).await;
    assert_revoked(&app, &access(&second)).await;
}

async fn session_delete_flips_its_bit(app: TestApp) {
    let (_, mine) = user_with_login(&app, "erin").await;
    let other = app.login_ok("erin").await.body;
    let sid = claims_of(&access(&other))["sid"].as_str().unwrap().to_owned();
    let res = app
        .client
        .delete(app.url(&format!("/v1/auth/sessions/{sid}")))
        .bearer_auth(access(&mine))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_revoked(&app, &access(&other)).await;
    assert_valid(&app, &access(&mine)).await;
}

async fn password_change_flips_the_other_sessions(app: TestApp) {
    let (_, mine) = user_with_login(&app, "frank").await;
    let other = app.login_ok("frank").await.body;
    let res = app
        .client
        .post(app.url("/v1/auth/password"))
        .bearer_auth(access(&mine))
        .json(&json!({"current_password": PASSWORD, "new_password": "a much newer passphrase 42"}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    assert_revoked(&app, &access(&other)).await;
    assert_valid(&app, &access(&mine)).await;
}

async fn refresh_keeps_the_index_and_reuse_flips_it(app: TestApp) {
    let (_, first) = user_with_login(&app, "grace").await;
    let second: Value = app.refresh(first["refresh_token"].as_str().unwrap()).await.json().await.unwrap();
    assert_eq!(status_of(&access(&first)), status_of(&access(&second)), "refresh keeps the index");
    assert_valid(&app, &access(&second)).await;
    // The rotated-away refresh token comes back: the family is revoked.
    assert_eq!(app.refresh(first["refresh_token"].as_str().unwrap()).await.status(), StatusCode::UNAUTHORIZED);
    assert_revoked(&app, &access(&second)).await;
}

async fn admin_disable_and_delete_flip_every_session(app: TestApp) {
    let admin = app.admin_token("root").await;
    let (heidi, pair) = user_with_login(&app, "heidi").await;
    app.disable_user(&admin, &heidi).await;
    assert_revoked(&app, &access(&pair)).await;

    let (ivan, pair) = user_with_login(&app, "ivan").await;
    let res = app.client.delete(app.url(&format!("/v1/admin/users/{ivan}"))).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(me(&app, &access(&pair)).await, StatusCode::UNAUTHORIZED);
    wait_bit(&app, &access(&pair), 1).await;
}

async fn exchange(app: &TestApp, secret: &str) -> String {
    let res = app
        .client
        .post(app.url("/v1/auth/token-exchange"))
        .header("authorization", format!("Token {secret}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned()
}

async fn api_token_revoke_flips_its_exchanged_tokens(app: TestApp) {
    let (_, pair) = user_with_login(&app, "judy").await;
    let created: Value = app
        .client
        .post(app.url("/v1/auth/api-tokens"))
        .bearer_auth(access(&pair))
        .json(&json!({"name": "ci"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = created["token"].as_str().unwrap();
    let first = exchange(&app, secret).await;
    let second = exchange(&app, secret).await;
    assert_eq!(status_of(&first), status_of(&second), "one index per API token");
    assert_ne!(status_of(&first), status_of(&access(&pair)));
    assert_valid(&app, &first).await;

    let id = created["id"].as_str().unwrap();
    let res = app
        .client
        .delete(app.url(&format!("/v1/auth/api-tokens/{id}")))
        .bearer_auth(access(&pair))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_revoked(&app, &second).await;
    assert_valid(&app, &access(&pair)).await;
}

async fn role_change_invalidates_the_index_and_refresh_gives_a_new_one(app: TestApp) {
    let admin = app.admin_token("boss").await;
    let (kim, pair) = user_with_login(&app, "kim").await;
    let old = access(&pair);
    let res = app
        .client
        .put(app.url(&format!("/v1/admin/users/{kim}/roles")))
        .bearer_auth(&admin)
        .json(&json!({"roles": ["user", "auditor"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_revoked(&app, &old).await;

    // The session lives on: its next refresh carries the new roles and a new index.
    let fresh: Value = app.refresh(pair["refresh_token"].as_str().unwrap()).await.json().await.unwrap();
    let new = access(&fresh);
    assert_eq!(claims_of(&new)["roles"], json!(["auditor", "user"]));
    assert_ne!(status_of(&new), status_of(&old));
    assert_valid(&app, &new).await;
    assert_eq!(bit(&app, &old).await, 1);
}

async fn concurrent_logins_on_two_instances_get_unique_indices(app: TestApp) {
    // 24 parallel logins of one name: each reserves a lockout attempt before
    // bcrypt (issue 11 item 3), and on PostgreSQL one still answered 429 with a
    // limit of 100 (not yet understood; noted in issue 11). This test is about
    // index uniqueness, so throttling is off here.
    let roomy = |s: &mut Settings| s.throttle.enabled = false;
    let app = app.restart_with(roomy).await;
    // Small lists, so the logins also race to start new lists.
    let peer = app
        .spawn_peer(|s: &mut Settings| {
            roomy(s);
            s.revocation.list_size = 8;
        })
        .await;
    app.register_ok("lena").await;
    let logins = (0..24).map(|i| {
        let target = if i % 2 == 0 { &app } else { &peer };
        async move { target.login_ok("lena").await.body }
    });
    let pairs = join_all(logins).await;
    let mut refs: Vec<(String, u64)> = pairs.iter().map(|p| status_of(&access(p))).collect();
    refs.sort();
    let before = refs.len();
    refs.dedup();
    assert_eq!(refs.len(), before, "every session has its own (list, idx)");
    for pair in &pairs {
        assert_eq!(bit(&app, &access(pair)).await, 0);
    }
}

async fn full_lists_retire_once_every_session_expired(app: TestApp) {
    let small = app.spawn_peer(|s: &mut Settings| s.revocation.list_size = 8).await;
    small.register_ok("mike").await;
    let mut pairs = Vec::new();
    for _ in 0..9 {
        pairs.push(small.login_ok("mike").await.body);
    }
    let (first_uri, _) = status_of(&access(&pairs[0]));
    let (last_uri, _) = status_of(&access(&pairs[8]));
    assert_ne!(first_uri, last_uri, "a full list is followed by a new one");

    let mut conn = small.conn();
    let grace = chrono::TimeDelta::seconds(120);
    // While its sessions can still be used, the full list stays.
    let retired = signet::status_lists::model::retire_expired(&mut conn, small.clock_now(), grace).unwrap();
    assert!(retired.is_empty());
    small.clock.advance(chrono::TimeDelta::seconds(small.settings.tokens.session_max_secs + 121));
    let retired = signet::status_lists::model::retire_expired(&mut conn, small.clock_now(), grace).unwrap();
    let number: i64 = first_uri.rsplit('/').next().unwrap().parse().unwrap();
    assert_eq!(retired, vec![number], "only the full list retires; the open one keeps taking indices");
    let start = Instant::now();
    while small.get(&path_of(&small, &first_uri), None).await.status() != StatusCode::NOT_FOUND {
        assert!(start.elapsed() < Duration::from_secs(2), "a retired list is no longer served");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(small.get(&path_of(&small, &last_uri), None).await.status(), StatusCode::OK);
}

async fn two_instances_agree_within_a_second(app: TestApp) {
    let peer = app.spawn_peer(defaults).await;
    let (_, pair) = user_with_login(&app, "nina").await;
    let token = access(&pair);
    assert_valid(&peer, &token).await;
    let res = app.post_json("/v1/auth/logout", &json!({"refresh_token": pair["refresh_token"]})).await;
    assert!(res.status().is_success());
    // The other instance refuses at once (it checks the session) ...
    assert_eq!(me(&peer, &token).await, StatusCode::UNAUTHORIZED);
    // ... and serves the flipped bit within a second.
    let took = wait_bit(&peer, &token, 1).await;
    assert!(took < Duration::from_secs(1), "peer served the flip after {took:?}");
}

async fn next_event(stream: &mut reqwest::Response, buf: &mut String) -> String {
    loop {
        if let Some(end) = buf.find("\n\n") {
            let event = buf[..end].to_owned();
            buf.drain(..end + 2);
            return event;
        }
        let chunk = tokio::time::timeout(Duration::from_secs(3), stream.chunk()).await.expect("an event in time");
        buf.push_str(std::str::from_utf8(&chunk.unwrap().expect("stream open")).unwrap());
    }
}

async fn event_stream_announces_changes_and_caps_subscribers(app: TestApp) {
    let capped = app
        .spawn_peer(|s: &mut Settings| {
            s.revocation.max_subscribers = 1;
            s.revocation.heartbeat_secs = 1;
        })
        .await;
    let (_, pair) = user_with_login(&app, "olga").await;
    let (uri, _) = status_of(&access(&pair));
    tokio::time::sleep(Duration::from_millis(500)).await; // the peer's first poll

    let res = capped.get("/v1/status-lists/events", None).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let mut stream = res;
    let mut buf = String::new();
    // On connect: one status event per live list.
    let first = next_event(&mut stream, &mut buf).await;
    assert!(first.starts_with("event: status\ndata: "), "{first}");
    let data: Value = serde_json::from_str(first.split("data: ").nth(1).unwrap()).unwrap();
    assert_eq!(data["uri"], uri.as_str());
    let version = data["version"].as_i64().unwrap();

    // At the cap: 503 with Retry-After.
    let refused = capped.get("/v1/status-lists/events", None).await;
    assert_eq!(refused.headers()["retry-after"], "30");
    assert_problem(refused, 503, "too_many_subscribers").await;

    // A revocation on the other instance is announced here.
    app.post_json("/v1/auth/logout", &json!({"refresh_token": pair["refresh_token"]})).await;
    let start = Instant::now();
    let mut saw_keepalive = false;
    loop {
        let event = next_event(&mut stream, &mut buf).await;
        if event == ": keepalive" {
            saw_keepalive = true;
            continue;
        }
        let data: Value = serde_json::from_str(event.split("data: ").nth(1).unwrap()).unwrap();
        assert_eq!(data["uri"], uri.as_str());
        assert!(data["version"].as_i64().unwrap() > version);
        break;
    }
    assert!(start.elapsed() < Duration::from_secs(1), "announced after {:?}", start.elapsed());
    if !saw_keepalive {
        assert_eq!(next_event(&mut stream, &mut buf).await, ": keepalive", "heartbeat comments");
    }
}
