//! Sign and verify cost per algorithm, as signet does them: an access token
//! signed with a stored key parsed once (and, for comparison, with
//! jsonwebtoken's `encode`, which parses it on every call), verified by `signet_verify::Verifier` (header,
//! kid lookup, signature, claims). Run: `cargo bench --bench signing`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use jsonwebtoken::{encode, Header};
use signet::config::SigningAlgorithm;
use signet::keys::algorithms::{encoding_key, generate};
use signet::keys::signer::PreparedKey;
use signet_verify::{AccessClaims, Audience, JwkSet, KeySet, Rules, Verifier};

fn claims() -> AccessClaims {
    AccessClaims {
        iss: "http://127.0.0.1:8080".into(),
        sub: "6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f".into(),
        aud: Audience::One("signet".into()),
        exp: 4_000_000_000,
        iat: 1_700_000_000,
        nbf: Some(1_700_000_000),
        jti: "0d1e2f3a-4b5c-4d6e-8f9a-0b1c2d3e4f5a".into(),
        client_id: "signet".into(),
        sid: "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d".into(),
        roles: vec!["user".into()],
        preferred_username: Some("alice".into()),
        amr: Vec::new(),
        status: None,
        scope: None,
        act: None,
    }
}

fn bench(c: &mut Criterion) {
    for algorithm in [SigningAlgorithm::ES256, SigningAlgorithm::EdDSA, SigningAlgorithm::RS256] {
        let key = generate(algorithm, 2048).expect("key");
        let encoding = encoding_key(key.algorithm, &key.pkcs8).expect("encoding key");
        let mut header = Header::new(key.algorithm);
        header.kid = Some(key.kid.clone());
        header.typ = Some("at+jwt".into());
        let claims = claims();
        let token = encode(&header, &claims, &encoding).expect("sign");
        let (keys, _) = KeySet::from_jwks(&JwkSet { keys: vec![key.public_jwk.clone()] });
        let rules = Rules { issuer: claims.iss.clone(), audience: "signet".into(), leeway_secs: 30 };
        // Cache off: the full cost of a first sight of the token.
        let verifier = Verifier::new(keys, rules).with_cache_capacity(0);
        verifier.verify(&token).expect("verifies");

        let prepared = PreparedKey::from_pkcs8(key.algorithm, &key.pkcs8).expect("prepared key");

        let name = algorithm.name();
        // signet's way: the key parsed once, when the key ring loads.
        c.bench_function(&format!("sign/{name}"), |b| b.iter(|| prepared.encode(&header, black_box(&claims))));
        // jsonwebtoken's `encode`, which parses the key on every call.
        c.bench_function(&format!("sign-parsing-each-time/{name}"), |b| {
            b.iter(|| encode(&header, black_box(&claims), &encoding))
        });
        c.bench_function(&format!("verify/{name}"), |b| b.iter(|| verifier.verify(black_box(&token))));
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
