//! Signing-key lifecycle: pre-publication, rotation, retirement, revocation,
//! encryption at rest, algorithms, and two instances on one database.

use aws_lc_rs::signature::{EcdsaKeyPair, Ed25519KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use chrono::TimeDelta;
use futures_util::future::join;
use reqwest::StatusCode;
use serde_json::Value;
use signet::config::{Settings, SigningAlgorithm};
use signet::keys::master::MasterKey;
use signet::keys::model::{self as keys_model, STATE_ACTIVE};
use signet::keys::rotation::Schedule;
use signet_verify::{JwkSet, KeySet, Rules, Verifier};

use crate::backend_tests;
use crate::helpers::{assert_problem, defaults, TestApp, TEST_MASTER_KEY};

backend_tests!(
    a_whole_rotation,
    retire_makes_its_tokens_fail_at_once,
    private_keys_are_encrypted_at_rest,
    eddsa_and_rs256_tokens_verify_against_the_jwks,
    changing_the_algorithm_rotates_on_schedule,
    a_wrong_master_key_stops_start_up,
    a_missing_master_key_is_generated_only_for_a_fresh_database,
    jwks_has_an_etag,
    two_instances_agree_at_every_moment_of_a_rotation,
    hs256_signs_with_the_configured_secret_and_publishes_nothing,
);

const HMAC_SECRET: &str = "aG1hYy1zZWNyZXQtZm9yLXNpZ25ldC10ZXN0cy0zMmJ5dGVzIQ==";

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

fn alg_of(token: &str) -> jsonwebtoken::Algorithm {
    jsonwebtoken::decode_header(token).unwrap().alg
}

async fn jwks_kids(app: &TestApp) -> Vec<String> {
    let jwks: JwkSet = app.get("/.well-known/jwks.json", None).await.json().await.unwrap();
    jwks.keys.iter().map(|k| k.common.key_id.clone().unwrap()).collect()
}

fn schedule(app: &TestApp) -> Schedule {
    Schedule::from_settings(&app.settings)
}

async fn me_status(app: &TestApp, token: &str) -> StatusCode {
    app.get("/v1/auth/me", Some(token)).await.status()
}

async fn a_whole_rotation(app: TestApp) {
    let s = schedule(&app);
    app.register_ok("alice").await;
    let first = app.login_ok("alice").await;
    let old_kid = kid_of(&first.access);
    assert_eq!(jwks_kids(&app).await, std::slice::from_ref(&old_kid));

    // Just before the key's time is up, the successor is published but does not sign.
    app.clock.advance(s.rotation - s.prepublish + TimeDelta::seconds(1));
    app.tick().await;
    let kids = jwks_kids(&app).await;
    assert_eq!(kids.len(), 2, "{kids:?}");
    let new_kid = kids.iter().find(|k| **k != old_kid).unwrap().clone();
    assert_eq!(kid_of(&app.login_ok("alice").await.access), old_kid);
    app.clock.advance(s.prepublish - TimeDelta::seconds(10));
    let before_switch = app.login_ok("alice").await;
    assert_eq!(kid_of(&before_switch.access), old_kid);

    // At its planned time the new key signs, even before any instance reloads.
    app.clock.advance(TimeDelta::seconds(10));
    let after_switch = app.login_ok("alice").await;
    assert_eq!(kid_of(&after_switch.access), new_kid);
    app.tick().await;
    // Tokens of the old key still verify, and the old key is still published.
    assert_eq!(me_status(&app, &before_switch.access).await, StatusCode::OK);
    assert!(jwks_kids(&app).await.contains(&old_kid));

    // Once its last access token has expired (plus leeway and JWKS max-age) it leaves the JWKS...
    app.clock.advance(s.publish_after_retire + TimeDelta::seconds(1));
    app.tick().await;
    assert_eq!(jwks_kids(&app).await, std::slice::from_ref(&new_kid));
    // ...but its refresh tokens still refresh, into tokens of the new key.
    let res = app.refresh(&before_switch.refresh).await;
    assert_eq!(res.status(), StatusCode::OK);
    let rotated: Value = res.json().await.unwrap();
    assert_eq!(kid_of(rotated["access_token"].as_str().unwrap()), new_kid);

    // After every refresh token of the old key has expired, it is deleted.
    app.clock.advance(s.verify_after_retire);
    app.tick().await;
    let mut conn = app.conn();
    let kids: Vec<String> = keys_model::all(&mut conn).unwrap().into_iter().map(|k| k.kid).collect();
    assert!(!kids.contains(&old_kid), "{kids:?}");
}

async fn retire_makes_its_tokens_fail_at_once(app: TestApp) {
    app.register_ok("bob").await;
    let pair = app.login_ok("bob").await;
    let kid = kid_of(&pair.access);
    {
        let mut conn = app.conn();
        let master = MasterKey::from_bytes(&base64_decode(TEST_MASTER_KEY)).unwrap();
        let events =
            signet::keys::commands::retire(&mut conn, &master, &schedule(&app), &kid, app.clock_now()).unwrap();
        assert!(events.iter().any(|e| e.contains("generated")), "{events:?}");
    }
    app.tick().await;
    assert!(!jwks_kids(&app).await.contains(&kid));
    let res = app.get("/v1/auth/me", Some(&pair.access)).await;
    assert_problem(res, 401, "invalid_token").await;
    assert_problem(app.refresh(&pair.refresh).await, 401, "invalid_refresh_token").await;
    // A replacement signs at once.
    let fresh = app.login_ok("bob").await;
    assert_ne!(kid_of(&fresh.access), kid);
    assert_eq!(me_status(&app, &fresh.access).await, StatusCode::OK);
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(text).unwrap()
}

async fn private_keys_are_encrypted_at_rest(app: TestApp) {
    // Three algorithms' worth of keys: start ES256, then pre-publish RS256 and EdDSA keys.
    let app = app.restart_with(|s: &mut Settings| s.tokens.algorithm = SigningAlgorithm::RS256).await;
    let mut conn = app.conn();
    let rows = keys_model::all(&mut conn).unwrap();
    assert!(rows.len() >= 2);
    let master = MasterKey::from_bytes(&base64_decode(TEST_MASTER_KEY)).unwrap();
    for row in rows {
        assert_eq!(row.key_protection, "aes-256-gcm");
        let raw = &row.private_key;
        assert!(EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, raw).is_err());
        assert!(Ed25519KeyPair::from_pkcs8(raw).is_err());
        assert!(aws_lc_rs::rsa::KeyPair::from_pkcs8(raw).is_err());
        assert!(aws_lc_rs::rsa::KeyPair::from_der(raw).is_err());
        // ...and the master key opens it.
        let plain = master.open(&row.kid, raw).unwrap();
        assert!(
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &plain).is_ok()
                || aws_lc_rs::rsa::KeyPair::from_pkcs8(&plain).is_ok()
        );
    }
}

async fn eddsa_and_rs256_tokens_verify_against_the_jwks(app: TestApp) {
    for (algorithm, expected) in [
        (SigningAlgorithm::EdDSA, jsonwebtoken::Algorithm::EdDSA),
        (SigningAlgorithm::RS256, jsonwebtoken::Algorithm::RS256),
    ] {
        let app = TestApp::spawn_with(app.backend, |s: &mut Settings| s.tokens.algorithm = algorithm).await;
        app.register_ok("carol").await;
        let pair = app.login_ok("carol").await;
        assert_eq!(alg_of(&pair.access), expected);
        let jwks: JwkSet = app.get("/.well-known/jwks.json", None).await.json().await.unwrap();
        let (keys, skipped) = KeySet::from_jwks(&jwks);
        assert!(skipped.is_empty());
        let verifier = Verifier::new(
            keys,
            Rules { issuer: "http://127.0.0.1:8080".into(), audience: "signet".into(), leeway_secs: 30 },
        );
        verifier.verify(&pair.access).unwrap();
        let refreshed = app.refresh(&pair.refresh).await;
        assert_eq!(refreshed.status(), StatusCode::OK);
        let discovery: Value = app.get("/.well-known/openid-configuration", None).await.json().await.unwrap();
        assert_eq!(discovery["id_token_signing_alg_values_supported"], serde_json::json!([algorithm.name()]));
    }
}

async fn changing_the_algorithm_rotates_on_schedule(app: TestApp) {
    app.register_ok("dave").await;
    let es = app.login_ok("dave").await;
    assert_eq!(alg_of(&es.access), jsonwebtoken::Algorithm::ES256);
    let app = app.restart_with(|s: &mut Settings| s.tokens.algorithm = SigningAlgorithm::EdDSA).await;
    assert_eq!(jwks_kids(&app).await.len(), 2, "EdDSA key pre-published");
    app.clock.advance(schedule(&app).prepublish - TimeDelta::seconds(5));
    let es = app.login_ok("dave").await;
    assert_eq!(alg_of(&es.access), jsonwebtoken::Algorithm::ES256);
    app.clock.advance(TimeDelta::seconds(5));
    assert_eq!(alg_of(&app.login_ok("dave").await.access), jsonwebtoken::Algorithm::EdDSA);
    assert_eq!(me_status(&app, &es.access).await, StatusCode::OK, "ES256 tokens still verify");
}

async fn a_wrong_master_key_stops_start_up(app: TestApp) {
    let other = "b3RoZXItbWFzdGVyLWtleS0zMi1ieXRlcy1sb25nISE=";
    let err = app.restart_failing(|s: &mut Settings| s.keys.master_key = other.into()).await;
    assert!(err.contains("wrong master key"), "{err}");
}

async fn a_missing_master_key_is_generated_only_for_a_fresh_database(app: TestApp) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("master.key");
    let key_file = |s: &mut Settings| {
        s.keys.master_key = "".into();
        s.keys.master_key_file = file.display().to_string();
    };
    let app = TestApp::spawn_with(app.backend, key_file).await;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let key = std::fs::read_to_string(&file).unwrap();
    let app = app.restart_with(key_file).await;
    assert_eq!(std::fs::read_to_string(&file).unwrap(), key, "reused, not regenerated");
    // The key file gone, the database keys stay unreadable: start-up refuses
    // to invent a new master key.
    std::fs::remove_file(&file).unwrap();
    let err = app.restart_failing(key_file).await;
    assert!(err.contains("no master key is configured"), "{err}");
    assert!(!file.exists());
}

async fn jwks_has_an_etag(app: TestApp) {
    let res = app.get("/.well-known/jwks.json", None).await;
    let etag = res.headers()["etag"].to_str().unwrap().to_owned();
    let res = app.client.get(app.url("/.well-known/jwks.json")).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
    // A new key changes it.
    let mut conn = app.conn();
    let master = MasterKey::from_bytes(&base64_decode(TEST_MASTER_KEY)).unwrap();
    signet::keys::commands::rotate(
        &mut conn,
        &master,
        &schedule(&app),
        app.clock_now(),
        signet::keys::rotation::Activation::Scheduled,
    )
    .unwrap();
    app.tick().await;
    let res = app.client.get(app.url("/.well-known/jwks.json")).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

async fn two_instances_agree_at_every_moment_of_a_rotation(app: TestApp) {
    let peer = app.spawn_peer(defaults).await;
    let s = schedule(&app);
    app.register_ok("erin").await;
    let moments = [
        TimeDelta::zero(),
        s.rotation - s.prepublish - TimeDelta::seconds(1),
        TimeDelta::seconds(2),
        s.prepublish - TimeDelta::seconds(2),
        TimeDelta::seconds(1),
        TimeDelta::seconds(1),
        s.publish_after_retire,
        s.rotation,
        s.rotation,
    ];
    for (step, advance) in moments.into_iter().enumerate() {
        app.clock.advance(advance);
        // Both instances take their step at the same moment.
        join(app.tick(), peer.tick()).await;
        let mut conn = app.conn();
        let active = keys_model::all(&mut conn).unwrap().into_iter().filter(|k| k.state == STATE_ACTIVE).count();
        assert_eq!(active, 1, "step {step}: exactly one active key");
        let from_app = app.login_ok("erin").await;
        let from_peer = peer.login_ok("erin").await;
        assert_eq!(kid_of(&from_app.access), kid_of(&from_peer.access), "step {step}: same signing key");
        assert_eq!(me_status(&peer, &from_app.access).await, StatusCode::OK, "step {step}");
        assert_eq!(me_status(&app, &from_peer.access).await, StatusCode::OK, "step {step}");
        assert_eq!(peer.refresh(&from_app.refresh).await.status(), StatusCode::OK, "step {step}");
        assert_eq!(app.refresh(&from_peer.refresh).await.status(), StatusCode::OK, "step {step}");
    }
}

async fn hs256_signs_with_the_configured_secret_and_publishes_nothing(app: TestApp) {
    app.register_ok("frank").await;
    let es = app.login_ok("frank").await;
    let es_kid = kid_of(&es.access);
    let app = app
        .restart_with(|s: &mut Settings| {
            s.tokens.algorithm = SigningAlgorithm::HS256;
            s.keys.hmac_secret = HMAC_SECRET.into();
        })
        .await;
    let hs = app.login_ok("frank").await;
    assert_eq!(alg_of(&hs.access), jsonwebtoken::Algorithm::HS256);
    let hs_kid = kid_of(&hs.access);
    assert_ne!(hs_kid, es_kid);
    assert_eq!(me_status(&app, &hs.access).await, StatusCode::OK);
    assert_eq!(app.refresh(&hs.refresh).await.status(), StatusCode::OK);
    // The secret is never published; the retired ES256 key still is, and its tokens still verify.
    let jwks: Value = app.get("/.well-known/jwks.json", None).await.json().await.unwrap();
    assert!(!jwks.to_string().contains(&hs_kid));
    assert!(jwks["keys"].as_array().unwrap().iter().all(|k| k["kty"] != "oct"));
    assert_eq!(me_status(&app, &es.access).await, StatusCode::OK);
    // A verifier with the secret accepts the token.
    let mut keys = KeySet::default();
    keys.insert_hmac_secret(&hs_kid, &base64_decode(HMAC_SECRET)).unwrap();
    let verifier = Verifier::new(
        keys,
        Rules { issuer: "http://127.0.0.1:8080".into(), audience: "signet".into(), leeway_secs: 30 },
    );
    verifier.verify(&hs.access).unwrap();
    // HS256 without a secret, or a short one, does not start.
    let err = app
        .restart_failing(|s: &mut Settings| {
            s.tokens.algorithm = SigningAlgorithm::HS256;
            s.keys.hmac_secret = "c2hvcnQ=".into();
        })
        .await;
    assert!(err.contains("hmac_secret"), "{err}");
}
