use reqwest::StatusCode;
use serde_json::Value;

use crate::backend_tests;
use crate::helpers::TestApp;

backend_tests!(jwks_publishes_public_members_only, discovery_documents_point_at_the_jwks);

async fn jwks_publishes_public_members_only(app: TestApp) {
    let res = app.get("/.well-known/jwks.json", None).await;
    assert_eq!(res.status(), StatusCode::OK);
    let cache = res.headers()["cache-control"].to_str().unwrap().to_owned();
    assert!(cache.starts_with("public, max-age="), "{cache}");
    let jwks: Value = res.json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let key = keys[0].as_object().unwrap();
    assert_eq!(key["alg"], "ES256");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["kty"], "EC");
    for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
        assert!(!key.contains_key(private), "{private} must not be published");
    }
    // kid is the RFC 7638 thumbprint.
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(keys[0].clone()).unwrap();
    assert_eq!(key["kid"], jwk.thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256).unwrap());
}

async fn discovery_documents_point_at_the_jwks(app: TestApp) {
    for path in ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"] {
        let doc: Value = app.get(path, None).await.json().await.unwrap();
        assert_eq!(doc["issuer"], "http://127.0.0.1:8080");
        assert_eq!(doc["jwks_uri"], "http://127.0.0.1:8080/.well-known/jwks.json");
        assert!(doc["token_endpoint"].is_string());
        assert_eq!(doc["id_token_signing_alg_values_supported"][0], "ES256");
    }
}
