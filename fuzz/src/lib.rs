//! Shared set-up of the fuzz targets: one ES256 key made per process, a
//! verifier of it with a fixed clock, and a valid access token.

use std::sync::{Arc, OnceLock};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use signet_verify::{AccessClaims, Audience, Rules, Verifier};

pub const ISSUER: &str = "https://id.example.test";
pub const AUDIENCE: &str = "signet";
pub const KID: &str = "fuzz";
pub const NOW: i64 = 1_800_000_000;
pub const REFRESH_TYPE: &str = "refresh+jwt";

pub struct Keyed {
    pub verifier: Arc<Verifier>,
    pub key: EncodingKey,
    /// A token `verifier` accepts.
    pub access: String,
}

pub fn keyed() -> &'static Keyed {
    static KEYED: OnceLock<Keyed> = OnceLock::new();
    KEYED.get_or_init(|| {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new()).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        let point = pair.public_key().as_ref();
        let jwks = json!({"keys": [{"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": KID,
            "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..65])}]});
        let verifier = Verifier::builder(Rules::new(ISSUER, AUDIENCE))
            .jwks_json(&jwks.to_string())
            .clock(Arc::new(|| NOW))
            .build()
            .unwrap();
        let key = EncodingKey::from_ec_der(pkcs8.as_ref());
        let claims = AccessClaims {
            iss: ISSUER.into(),
            sub: "4b1c6f9e-2d7a-4c55-9a0e-0f5d7c1e2a3b".into(),
            aud: Audience::One(AUDIENCE.into()),
            exp: NOW + 600,
            iat: NOW,
            nbf: Some(NOW),
            jti: "j".into(),
            client_id: "signet".into(),
            sid: "s".into(),
            roles: vec!["user".into()],
            preferred_username: None,
            amr: Vec::new(),
            status: None,
            scope: None,
            act: None,
        };
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(KID.into());
        header.typ = Some(signet_verify::ACCESS_TOKEN_TYPE.into());
        let access = jsonwebtoken::encode(&header, &claims, &key).unwrap();
        assert!(verifier.verify(&access).is_ok());
        Keyed { verifier, key, access }
    })
}

/// `header.payload` (raw bytes, base64url-encoded here) signed with the key.
pub fn sign_raw(key: &EncodingKey, header: &[u8], payload: &[u8]) -> String {
    let message = format!("{}.{}", B64.encode(header), B64.encode(payload));
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), key, Algorithm::ES256).unwrap();
    format!("{message}.{signature}")
}

/// What API.md requires of claims the verifier accepted, read from the raw
/// payload JSON (not from the parsed claims, which might have been bent).
pub fn assert_claims_are_right(payload: &Value, claims: &AccessClaims) {
    let leeway = signet_verify::DEFAULT_LEEWAY_SECS as i64;
    assert_eq!(payload["iss"], ISSUER, "iss");
    assert_eq!(claims.iss, ISSUER);
    let aud_ok = match &payload["aud"] {
        Value::String(aud) => aud == AUDIENCE,
        Value::Array(auds) => auds.iter().any(|a| a == AUDIENCE),
        _ => false,
    };
    assert!(aud_ok && claims.aud.contains(AUDIENCE), "aud");
    let exp = payload["exp"].as_i64().expect("exp is an integer");
    assert!(exp.saturating_add(leeway) > NOW, "expired");
    assert_eq!(exp, claims.exp);
    match &payload["nbf"] {
        Value::Null => {}
        nbf => assert!(nbf.as_i64().expect("nbf is an integer").saturating_sub(leeway) <= NOW, "nbf"),
    }
    assert_eq!(payload["sub"], claims.sub.as_str(), "sub");
}
