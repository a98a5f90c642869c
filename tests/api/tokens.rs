use jsonwebtoken::decode_header;
use signet_verify::{JwkSet, KeySet, Rules, Verifier};

use crate::backend_tests;
use crate::helpers::{claims_of, TestApp};

backend_tests!(
    access_token_verifies_against_the_jwks_with_the_documented_claims,
    refresh_token_has_its_own_type_and_audience
);

async fn jwks(app: &TestApp) -> JwkSet {
    app.get("/.well-known/jwks.json", None).await.json().await.unwrap()
}

async fn access_token_verifies_against_the_jwks_with_the_documented_claims(app: TestApp) {
    let user = app.register_ok("alice").await;
    let pair = app.login_ok("alice").await;
    let access = pair.access.as_str();

    let header = decode_header(access).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
    let kid = header.kid.unwrap();
    let jwks = jwks(&app).await;
    assert!(jwks.find(&kid).is_some(), "kid {kid} is published");

    // A microservice's view: only the JWKS and the rules.
    let (keys, skipped) = KeySet::from_jwks(&jwks);
    assert!(skipped.is_empty());
    let verifier = Verifier::new(
        keys,
        Rules { issuer: "http://127.0.0.1:8080".into(), audience: "signet".into(), leeway_secs: 30 },
    );
    let claims = verifier.verify(access).expect("verifies against the JWKS");
    assert_eq!(claims.sub, user["id"].as_str().unwrap());
    assert_eq!(claims.roles, vec!["user"]);
    assert_eq!(claims.client_id, "signet");
    assert_eq!(claims.preferred_username.as_deref(), Some("alice"));

    let raw = claims_of(access);
    for claim in ["iss", "sub", "aud", "iat", "nbf", "exp", "jti", "client_id", "sid", "roles", "preferred_username"] {
        assert!(raw.get(claim).is_some(), "claim {claim} present");
    }
    for time in ["iat", "nbf", "exp"] {
        assert!(raw[time].is_i64(), "{time} is an integer NumericDate");
    }
    assert_eq!(raw["exp"].as_i64().unwrap() - raw["iat"].as_i64().unwrap(), 900);
    assert_eq!(raw["aud"], "signet");
    assert_eq!(raw["iss"], "http://127.0.0.1:8080");
    uuid::Uuid::parse_str(raw["sid"].as_str().unwrap()).unwrap();

    // Every login gets its own session and token ids.
    let second = app.login_ok("alice").await;
    let second = claims_of(second.access.as_str());
    assert_ne!(second["sid"], raw["sid"]);
    assert_ne!(second["jti"], raw["jti"]);
}

async fn refresh_token_has_its_own_type_and_audience(app: TestApp) {
    app.register_ok("bob").await;
    let pair = app.login_ok("bob").await;
    let refresh = pair.refresh.as_str();
    let access = claims_of(pair.access.as_str());
    let header = decode_header(refresh).unwrap();
    assert_eq!(header.typ.as_deref(), Some("refresh+jwt"));
    let claims = claims_of(refresh);
    assert_eq!(claims["aud"], "http://127.0.0.1:8080");
    assert_eq!(claims["iss"], "http://127.0.0.1:8080");
    assert_eq!(claims["sid"], access["sid"]);
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 1_209_600);
    for absent in ["roles", "client_id", "nbf"] {
        assert!(claims.get(absent).is_none(), "{absent} not in a refresh token");
    }
}
