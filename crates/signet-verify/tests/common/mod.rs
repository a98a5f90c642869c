//! Keys and tokens for the tests and the bench: ES256, EdDSA and RS256 keys
//! generated with aws-lc-rs, tokens signed the way signet signs them.
#![allow(dead_code)] // each test binary uses a part

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde::Serialize;
use signet_verify::{AccessClaims, Audience, Clock, Rules, ACCESS_TOKEN_TYPE};

pub const ISSUER: &str = "https://id.example.com";
pub const AUDIENCE: &str = "signet";

pub fn rules() -> Rules {
    Rules::new(ISSUER, AUDIENCE)
}

pub struct TestKey {
    pub kid: String,
    pub algorithm: Algorithm,
    pub encoding: EncodingKey,
    pub jwk: Jwk,
    /// The public key as a `PUBLIC KEY` (SPKI) PEM.
    pub pem: String,
}

impl TestKey {
    pub fn new(algorithm: Algorithm, kid: &str) -> TestKey {
        let (encoding, spki) = match algorithm {
            Algorithm::ES256 => {
                let pkcs8 =
                    EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new()).unwrap();
                let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
                let spki = pair.public_key().as_der().unwrap().as_ref().to_vec();
                (EncodingKey::from_ec_der(pkcs8.as_ref()), spki)
            }
            Algorithm::EdDSA => {
                let pkcs8 = Ed25519KeyPair::generate_pkcs8v1(&SystemRandom::new()).unwrap();
                let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8.as_ref()).unwrap();
                let spki = pair.public_key().as_der().unwrap().as_ref().to_vec();
                (EncodingKey::from_ed_der(pkcs8.as_ref()), spki)
            }
            Algorithm::RS256 => {
                let pair = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
                let pkcs8 = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair).unwrap();
                let spki = pair.public_key().as_der().unwrap().as_ref().to_vec();
                (EncodingKey::from_rsa_der(pkcs1_of_pkcs8(pkcs8.as_ref())), spki)
            }
            other => panic!("no test key for {other:?}"),
        };
        let mut jwk = Jwk::from_encoding_key(&encoding, algorithm).unwrap();
        jwk.common.key_id = Some(kid.to_owned());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        TestKey { kid: kid.to_owned(), algorithm, encoding, jwk, pem: pem("PUBLIC KEY", &spki) }
    }

    pub fn es256(kid: &str) -> TestKey {
        Self::new(Algorithm::ES256, kid)
    }

    pub fn header(&self) -> Header {
        let mut header = Header::new(self.algorithm);
        header.kid = Some(self.kid.clone());
        header.typ = Some(ACCESS_TOKEN_TYPE.to_owned());
        header
    }

    /// An access token as signet mints it.
    pub fn sign(&self, claims: &AccessClaims) -> String {
        self.sign_with(&self.header(), claims)
    }

    pub fn sign_with(&self, header: &Header, claims: &impl Serialize) -> String {
        encode(header, claims, &self.encoding).unwrap()
    }
}

pub fn jwks(keys: &[&TestKey]) -> JwkSet {
    JwkSet { keys: keys.iter().map(|k| k.jwk.clone()).collect() }
}

pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// Claims of a fresh access token issued at `now`, valid 900 s.
pub fn claims(now: i64, roles: &[&str]) -> AccessClaims {
    AccessClaims {
        iss: ISSUER.to_owned(),
        sub: "7c1f3f8e-4f6a-4a51-9d2e-0a1b2c3d4e5f".to_owned(),
        aud: Audience::One(AUDIENCE.to_owned()),
        exp: now + 900,
        iat: now,
        nbf: Some(now),
        jti: format!("jti-{}", rand_u64()),
        client_id: "signet".to_owned(),
        sid: "session-1".to_owned(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        preferred_username: Some("alice".to_owned()),
        amr: Vec::new(),
        status: None,
        scope: None,
        act: None,
    }
}

pub fn rand_u64() -> u64 {
    let mut bytes = [0u8; 8];
    aws_lc_rs::rand::fill(&mut bytes).unwrap();
    u64::from_le_bytes(bytes)
}

/// A clock the test moves.
#[derive(Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn at(now: i64) -> ManualClock {
        ManualClock(Arc::new(AtomicI64::new(now)))
    }
    pub fn set(&self, now: i64) {
        self.0.store(now, Ordering::SeqCst);
    }
    pub fn clock(&self) -> Clock {
        let inner = self.0.clone();
        Arc::new(move || inner.load(Ordering::SeqCst))
    }
}

/// The RFC 8017 `RSAPrivateKey` inside a PKCS#8 v1 `PrivateKeyInfo`
/// (jsonwebtoken signs RSA with a PKCS#1 key).
fn pkcs1_of_pkcs8(der: &[u8]) -> &[u8] {
    // SEQUENCE { INTEGER version, SEQUENCE algorithm, OCTET STRING key }
    let (tag, body, _) = tlv(der);
    assert_eq!(tag, 0x30);
    let (_, _, rest) = tlv(body); // version
    let (_, _, rest) = tlv(rest); // algorithm
    let (tag, key, _) = tlv(rest);
    assert_eq!(tag, 0x04);
    key
}

/// One DER element: tag, contents, what follows.
fn tlv(der: &[u8]) -> (u8, &[u8], &[u8]) {
    let tag = der[0];
    let (len, header) = if der[1] < 0x80 {
        (der[1] as usize, 2)
    } else {
        let n = (der[1] & 0x7f) as usize;
        let len = der[2..2 + n].iter().fold(0usize, |acc, b| (acc << 8) | *b as usize);
        (len, 2 + n)
    };
    (tag, &der[header..header + len], &der[header + len..])
}

pub fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}
