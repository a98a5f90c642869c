//! signet and a microservice side by side: the example microservice of
//! `signet-verify` (its very source, compiled here) serves on a loopback port
//! and verifies signet's tokens from signet's JWKS, with no call to signet
//! per request.
//!
//! Needs `signet-verify`'s `remote` feature in this test build (see the root
//! `Cargo.toml`'s dev-dependencies).

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpServer};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use chrono::TimeDelta;
use reqwest::StatusCode;
use serde_json::{json, Value};
use signet::clock::Clock;
use signet::keys::rotation::Schedule;
use signet_verify::Verifier;

use crate::backend_tests;
use crate::helpers::{assert_problem, www_authenticate, TestApp};

#[path = "../../crates/signet-verify/examples/microservice.rs"]
#[allow(dead_code, reason = "`Config::from_env` serves the example's binary (`expect` is not fulfilled reliably here)")]
mod microservice;

backend_tests!(
    signet_tokens_verify_at_the_microservice,
    missing_and_bad_tokens_are_401_with_rfc6750_challenges,
    user_on_the_admin_route_is_403,
    forged_kid_flood_costs_at_most_the_rate_limited_fetches,
    rotated_keys_verify_without_a_restart,
);

/// The example microservice on a loopback port, trusting `app`.
struct Microservice {
    address: String,
    verifier: Arc<Verifier>,
    client: reqwest::Client,
}

impl Microservice {
    /// Configured as the example is: the expected `iss` is signet's
    /// configured issuer (`http://127.0.0.1:8080` in tests), while the JWKS
    /// is fetched from the port the test's signet really listens on.
    async fn start(app: &TestApp, refetch_interval: Duration) -> Microservice {
        Self::start_with(app, refetch_interval, true).await
    }

    async fn start_with(app: &TestApp, refetch_interval: Duration, status_lists: bool) -> Microservice {
        let mut config = microservice::Config::new(app.settings.tokens.issuer.clone());
        config.status_lists = status_lists;
        config.jwks_url = Some(app.url("/.well-known/jwks.json"));
        config.refetch_interval = refetch_interval;
        config.bind = "127.0.0.1:0".to_owned();
        config.workers = 1;
        // The test's signet runs on a manual clock: so does its microservice.
        let clock = app.clock.clone();
        let verifier =
            microservice::verifier_builder(&config).clock(Arc::new(move || clock.unix())).build().expect("verifier");
        let waiting = verifier.clone();
        let loaded = tokio::task::spawn_blocking(move || waiting.wait_for_keys(Duration::from_secs(10))).await.unwrap();
        assert!(loaded, "the microservice loaded signet's JWKS");

        let data = web::Data::from(verifier.clone());
        let listener = TcpListener::bind(&config.bind).unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let server = HttpServer::new(move || App::new().app_data(data.clone()).configure(microservice::routes))
            .workers(config.workers)
            .listen(listener)
            .unwrap()
            .run();
        tokio::spawn(server);
        Microservice { address, verifier, client: reqwest::Client::new() }
    }

    async fn get(&self, path: &str, authorization: Option<&str>) -> reqwest::Response {
        let mut req = self.client.get(format!("{}{path}", self.address));
        if let Some(authorization) = authorization {
            req = req.header("authorization", authorization);
        }
        req.send().await.unwrap()
    }

    async fn get_bearer(&self, path: &str, token: &str) -> reqwest::Response {
        self.get(path, Some(&format!("Bearer {token}"))).await
    }
}

fn assert_invalid_token_challenge(res: &reqwest::Response) {
    let challenge = www_authenticate(res);
    assert!(challenge.starts_with("Bearer realm=\"signet\", error=\"invalid_token\""), "{challenge}");
}

async fn signet_tokens_verify_at_the_microservice(app: TestApp) {
    let service = Microservice::start(&app, Duration::from_secs(10)).await;
    let user = app.register_ok("alice").await;
    let pair = app.login_ok("alice").await;
    let access = pair.access.as_str();

    let res = service.get("/public", None).await;
    assert_eq!(res.status(), StatusCode::OK);

    for _ in 0..3 {
        let res = service.get_bearer("/user", access).await;
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["sub"], user["id"]);
        assert_eq!(body["roles"], json!(["user"]));
    }
    assert_eq!(service.verifier.cache_len(), 1, "one token, verified once");

    // A refreshed token verifies too; the refresh token itself never does.
    let refreshed: Value = app.refresh(pair.refresh.as_str()).await.json().await.unwrap();
    let res = service.get_bearer("/user", refreshed["access_token"].as_str().unwrap()).await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = service.get_bearer("/user", refreshed["refresh_token"].as_str().unwrap()).await;
    assert_invalid_token_challenge(&res);
    assert_problem(res, 401, "invalid_token").await;

    let stats = service.verifier.key_source_stats().unwrap();
    assert_eq!(stats.fetches, 1, "no call to signet per request: {stats:?}");
}

async fn missing_and_bad_tokens_are_401_with_rfc6750_challenges(app: TestApp) {
    let service = Microservice::start(&app, Duration::from_secs(10)).await;
    app.register_ok("bob").await;
    let access = app.login_ok("bob").await.access;

    let res = service.get("/user", None).await;
    assert_eq!(www_authenticate(&res), "Bearer realm=\"signet\"");
    assert_problem(res, 401, "missing_token").await;

    // Tampered claims under the genuine signature.
    let mut parts: Vec<String> = access.split('.').map(str::to_owned).collect();
    let mut claims: Value = serde_json::from_slice(&B64.decode(&parts[1]).unwrap()).unwrap();
    claims["roles"] = json!(["user", "admin"]);
    parts[1] = B64.encode(serde_json::to_vec(&claims).unwrap());
    let tampered = parts.join(".");

    for bad in ["Bearer not-a-jwt", "Bearer ", &format!("Bearer {tampered}")] {
        let res = service.get("/admin", Some(bad)).await;
        assert_invalid_token_challenge(&res);
        let body = assert_problem(res, 401, "invalid_token").await;
        assert!(!body.to_string().contains(&tampered), "token never echoed");
    }

    // The genuine token passes.
    let res = service.get_bearer("/user", &access).await;
    assert_eq!(res.status(), StatusCode::OK);
}

async fn user_on_the_admin_route_is_403(app: TestApp) {
    let service = Microservice::start(&app, Duration::from_secs(10)).await;
    app.register_ok("carol").await;
    let user = app.login_ok("carol").await.access;
    let res = service.get_bearer("/admin", &user).await;
    assert!(www_authenticate(&res).contains("error=\"insufficient_scope\""), "{}", www_authenticate(&res));
    assert_problem(res, 403, "insufficient_role").await;

    let admin = app.admin_token("root").await;
    let res = service.get_bearer("/admin", &admin).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert!(body["roles"].as_array().unwrap().contains(&json!("admin")), "{body}");
}

/// A token with a random `kid`, a plausible payload and a garbage signature.
fn forged_token(i: usize) -> String {
    let header = json!({"alg": "ES256", "typ": "at+jwt", "kid": format!("forged-{i}-{}", uuid::Uuid::new_v4())});
    let claims = json!({"iss": "http://127.0.0.1:8080", "sub": "x", "aud": "signet",
        "exp": 4_000_000_000_i64, "iat": 0, "nbf": 0, "jti": "j", "client_id": "signet",
        "sid": "s", "roles": ["admin"]});
    format!(
        "{}.{}.{}",
        B64.encode(serde_json::to_vec(&header).unwrap()),
        B64.encode(serde_json::to_vec(&claims).unwrap()),
        B64.encode([7u8; 64])
    )
}

async fn forged_kid_flood_costs_at_most_the_rate_limited_fetches(app: TestApp) {
    let interval = Duration::from_secs(1);
    let service = Microservice::start(&app, interval).await;
    app.register_ok("dave").await;
    let genuine = app.login_ok("dave").await.access;
    // Past the interval since the first fetch, so the flood may start one.
    tokio::time::sleep(interval + Duration::from_millis(100)).await;
    let before = service.verifier.key_source_stats().unwrap();

    let started = Instant::now();
    for batch in 0..20 {
        let mut requests = tokio::task::JoinSet::new();
        for i in 0..10 {
            let (client, url) = (service.client.clone(), format!("{}/user", service.address));
            let token = forged_token(batch * 10 + i);
            requests.spawn(async move { client.get(url).bearer_auth(token).send().await });
        }
        while let Some(res) = requests.join_next().await {
            let res = res.unwrap().unwrap();
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
            assert_invalid_token_challenge(&res);
        }
    }
    let elapsed = started.elapsed();

    let after = service.verifier.key_source_stats().unwrap();
    let fetches = after.fetches - before.fetches;
    let allowed = elapsed.as_millis() / interval.as_millis() + 1;
    eprintln!("200 forged kids in {elapsed:?}: {fetches} JWKS fetch(es); {after:?}");
    assert!(
        fetches >= 1 && u128::from(fetches) <= allowed,
        "{fetches} JWKS fetches for 200 forged kids in {elapsed:?} (at most {allowed}): {after:?}"
    );
    assert!(after.unknown_kid_declined >= 150, "{after:?}");
    // The genuine token is unaffected.
    let res = service.get_bearer("/user", &genuine).await;
    assert_eq!(res.status(), StatusCode::OK);
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

async fn rotated_keys_verify_without_a_restart(app: TestApp) {
    let interval = Duration::from_millis(500);
    // Keys only: the clock jumps a whole rotation period below, and a status
    // list last confirmed that long ago (by the microservice's clock) is stale,
    // so status checking would rightly refuse (tests/api/status_lists.rs and
    // signet-verify's tests/status.rs cover it).
    let service = Microservice::start_with(&app, interval, false).await;
    app.register_ok("erin").await;
    let first = app.login_ok("erin").await.access;
    assert_eq!(service.get_bearer("/user", &first).await.status(), StatusCode::OK);

    // signet publishes the successor ahead of time, then signs with it.
    let s = Schedule::from_settings(&app.settings);
    app.clock.advance(s.rotation - s.prepublish + TimeDelta::seconds(1));
    app.tick().await;
    app.clock.advance(s.prepublish);
    app.tick().await;
    let rotated = app.login_ok("erin").await.access;
    assert_ne!(kid_of(&rotated), kid_of(&first), "signet rotated");

    // The microservice has not refreshed on schedule yet (real time barely
    // moved): the new kid makes it refetch once, and the request waits for it.
    tokio::time::sleep(interval + Duration::from_millis(100)).await;
    let res = service.get_bearer("/user", &rotated).await;
    assert_eq!(res.status(), StatusCode::OK);
    let stats = service.verifier.key_source_stats().unwrap();
    assert_eq!((stats.fetches, stats.unknown_kid_refetches), (2, 1), "{stats:?}");
}
