//! The validation rules and the verified-token cache, through the public API.
#![expect(clippy::unwrap_used, reason = "a test should fail loudly at the first surprise")]

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use common::{claims, jwks, now, rules, ManualClock, TestKey};
use jsonwebtoken::Algorithm;
use signet_verify::{KeySet, Verifier, VerifyError};

fn verifier_for(keys: &[&TestKey], clock: &ManualClock, capacity: usize) -> std::sync::Arc<Verifier> {
    Verifier::builder(rules()).jwks(&jwks(keys)).clock(clock.clock()).cache_capacity(capacity).build().unwrap()
}

#[test]
fn every_supported_algorithm_verifies() {
    for algorithm in [Algorithm::ES256, Algorithm::EdDSA, Algorithm::RS256] {
        let key = TestKey::new(algorithm, "k1");
        let t = now();
        let clock = ManualClock::at(t);
        for capacity in [0, 100] {
            let verifier = verifier_for(&[&key], &clock, capacity);
            let token = key.sign(&claims(t, &["user"]));
            let got = verifier.verify(&token).unwrap();
            assert_eq!(got.roles, ["user"], "{algorithm:?}");
            // Twice: the second from the cache when on.
            assert_eq!(verifier.verify(&token).unwrap(), got);
            assert_eq!(verifier.cache_len(), capacity.min(1));
        }
    }
}

#[test]
fn rules_are_unchanged_with_or_without_cache() {
    let key = TestKey::es256("k1");
    let other = TestKey::es256("k2");
    let t = now();
    let clock = ManualClock::at(t);
    let good = claims(t, &["user"]);
    for capacity in [0, 100] {
        let verifier = verifier_for(&[&key], &clock, capacity);
        let check = |token: &str, want: VerifyError| {
            // Twice: a refused token is never cached.
            for _ in 0..2 {
                assert_eq!(verifier.verify(token), Err(want.clone()), "cache {capacity}");
            }
        };
        check("", VerifyError::Empty);
        check(&"a".repeat(8 * 1024 + 1), VerifyError::TooLong);
        check("not.a.jwt", VerifyError::Malformed);

        let mut header = key.header();
        header.typ = Some("refresh+jwt".into());
        check(&key.sign_with(&header, &good), VerifyError::WrongType);
        header.typ = None;
        check(&key.sign_with(&header, &good), VerifyError::WrongType);

        let mut header = key.header();
        header.kid = None;
        check(&key.sign_with(&header, &good), VerifyError::MissingKid);
        check(&other.sign(&good), VerifyError::UnknownKid);

        // ES256 key, header says ES384.
        let mut header = key.header();
        header.alg = Algorithm::ES384;
        let token = key.sign(&good);
        let (_, rest) = token.split_once('.').unwrap();
        let forged = format!("{}.{rest}", B64.encode(serde_json::to_vec(&header).unwrap()));
        check(&forged, VerifyError::AlgorithmMismatch);

        // Signed by another key under our kid.
        let mut header = other.header();
        header.kid = Some("k1".into());
        check(&other.sign_with(&header, &good), VerifyError::BadSignature);

        let mut c = good.clone();
        c.iss = "https://evil.example".into();
        check(&key.sign(&c), VerifyError::WrongIssuer);
        let mut c = good.clone();
        c.aud = signet_verify::Audience::Many(vec!["other".into()]);
        check(&key.sign(&c), VerifyError::WrongAudience);
        let mut c = good.clone();
        c.exp = t - 31;
        check(&key.sign(&c), VerifyError::Expired);
        let mut c = good.clone();
        c.nbf = Some(t + 31);
        check(&key.sign(&c), VerifyError::NotYetValid);
        let no_sub = serde_json::json!({"iss": common::ISSUER, "aud": common::AUDIENCE, "exp": t + 60});
        check(&key.sign_with(&key.header(), &no_sub), VerifyError::BadClaims);

        assert_eq!(verifier.cache_len(), 0);
        // Within the leeway both ways.
        let mut c = good.clone();
        c.exp = t - 29;
        c.nbf = Some(t + 29);
        assert!(verifier.verify(&key.sign(&c)).is_ok());
    }
}

#[test]
fn cached_token_expires_with_the_clock_and_leeway() {
    let key = TestKey::es256("k1");
    let t = now();
    let clock = ManualClock::at(t);
    let verifier = verifier_for(&[&key], &clock, 100);
    let token = key.sign(&claims(t, &["user"]));
    assert!(verifier.verify(&token).is_ok());
    assert_eq!(verifier.cache_len(), 1);

    clock.set(t + 900 + 29);
    assert!(verifier.verify(&token).is_ok(), "exp + leeway not reached");
    clock.set(t + 900 + 30);
    assert_eq!(verifier.verify(&token), Err(VerifyError::Expired));
    assert_eq!(verifier.cache_len(), 0);
    assert_eq!(verifier.verify(&token), Err(VerifyError::Expired));
}

#[test]
fn tampered_tokens_miss_the_cache() {
    let key = TestKey::es256("k1");
    let t = now();
    let clock = ManualClock::at(t);
    let verifier = verifier_for(&[&key], &clock, 100);
    let token = key.sign(&claims(t, &["user"]));
    assert!(verifier.verify(&token).is_ok());

    // Same header and signature, another payload (admin role).
    let (header, rest) = token.split_once('.').unwrap();
    let (_, signature) = rest.split_once('.').unwrap();
    let payload = B64.encode(serde_json::to_vec(&claims(t, &["admin"])).unwrap());
    let tampered = format!("{header}.{payload}.{signature}");
    assert_eq!(verifier.verify(&tampered), Err(VerifyError::BadSignature));

    // One flipped signature character, trailing garbage, one byte less.
    let mut flipped = token.clone().into_bytes();
    let last = flipped.len() - 2;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    assert!(verifier.verify(&flipped).is_err());
    assert!(verifier.verify(&format!("{token}A")).is_err());
    assert!(verifier.verify(&token[..token.len() - 1]).is_err());
    assert_eq!(verifier.cache_len(), 1, "only the genuine token is cached");
}

#[test]
fn cache_is_bounded() {
    let key = TestKey::es256("k1");
    let t = now();
    let clock = ManualClock::at(t);
    let verifier = verifier_for(&[&key], &clock, 8);
    assert_eq!(verifier.cache_capacity(), 8);
    let tokens: Vec<String> = (0..50).map(|_| key.sign(&claims(t, &["user"]))).collect();
    for token in &tokens {
        assert!(verifier.verify(token).is_ok());
        assert!(verifier.cache_len() <= 8);
    }
    // Evicted tokens still verify (afresh).
    for token in &tokens {
        assert!(verifier.verify(token).is_ok());
    }
    assert_eq!(verifier.cache_len(), 8);
}

#[test]
fn new_keys_void_cached_verifications() {
    let old = TestKey::es256("old");
    let new = TestKey::es256("new");
    let t = now();
    let clock = ManualClock::at(t);
    let verifier = verifier_for(&[&old], &clock, 100);
    let token = old.sign(&claims(t, &["user"]));
    assert!(verifier.verify(&token).is_ok());

    // The same keys again (a refresh that changed nothing) keep the cache.
    verifier.set_keys(KeySet::from_jwks(&jwks(&[&old])).0);
    assert_eq!(verifier.cache_len(), 1);

    // The old key retired: its cached tokens stop verifying at once.
    verifier.set_keys(KeySet::from_jwks(&jwks(&[&new])).0);
    assert_eq!(verifier.cache_len(), 0);
    assert_eq!(verifier.verify(&token), Err(VerifyError::UnknownKid));
}

#[test]
fn legacy_constructors_still_work() {
    let key = TestKey::es256("k1");
    let t = now();
    let clock = ManualClock::at(t);
    let (keys, _) = KeySet::from_jwks(&jwks(&[&key]));
    let verifier = Verifier::with_clock(keys, rules(), clock.clock());
    assert_eq!(verifier.cache_capacity(), signet_verify::DEFAULT_CACHE_CAPACITY);
    let token = key.sign(&claims(t, &["user"]));
    assert!(verifier.verify(&token).is_ok());
    let verifier = verifier.with_cache_capacity(0);
    assert!(verifier.verify(&token).is_ok());
    assert_eq!(verifier.cache_len(), 0);
    // verify_as is never cached and sees the same keys.
    let refresh: Result<signet_verify::AccessClaims, _> = verifier.verify_as(&token, "at+jwt", common::AUDIENCE);
    assert!(refresh.is_ok());
}

#[test]
fn static_sources() {
    let key = TestKey::es256("k1");
    let json = serde_json::to_string(&jwks(&[&key])).unwrap();
    let verifier = Verifier::builder(rules()).jwks_json(&json).build().unwrap();
    let t = now();
    assert!(verifier.verify(&key.sign(&claims(t, &[]))).is_ok());

    assert!(matches!(Verifier::builder(rules()).jwks_json("{}").build(), Err(signet_verify::BuildError::Key(_))));
    assert!(matches!(
        Verifier::builder(rules()).jwks_json("{\"keys\": []}").build(),
        Err(signet_verify::BuildError::NoUsableKey)
    ));
}

#[test]
fn pem_keys_verify_their_algorithm() {
    let t = now();
    for algorithm in [Algorithm::ES256, Algorithm::EdDSA, Algorithm::RS256] {
        let key = TestKey::new(algorithm, "pem-key");
        let verifier = Verifier::builder(rules()).pem("pem-key", algorithm, key.pem.as_bytes()).build().unwrap();
        assert!(verifier.verify(&key.sign(&claims(t, &[]))).is_ok(), "{algorithm:?}");
        // A PEM is no licence for another algorithm.
        let wrong = if algorithm == Algorithm::EdDSA { Algorithm::ES256 } else { Algorithm::EdDSA };
        assert!(Verifier::builder(rules()).pem("pem-key", wrong, key.pem.as_bytes()).build().is_err());
    }
}

/// The issuer's own introspection: any audience, every other rule still applies.
#[test]
fn verify_any_audience_skips_only_the_audience() {
    let key = TestKey::es256("k1");
    let other = TestKey::es256("k2");
    let t = now();
    let clock = ManualClock::at(t);
    let verifier = verifier_for(&[&key], &clock, 0);
    let mut narrowed = claims(t, &["user"]);
    narrowed.aud = signet_verify::Audience::One("https://orders.example".into());
    narrowed.scope = Some("user".into());
    narrowed.act = Some(signet_verify::Actor { sub: "gateway".into(), act: None });
    let token = key.sign(&narrowed);
    assert_eq!(verifier.verify(&token), Err(VerifyError::WrongAudience));
    let got = verifier.verify_any_audience::<signet_verify::AccessClaims>(&token, "at+jwt").unwrap();
    assert_eq!(got, narrowed, "scope and act round-trip");

    let mut foreign = narrowed.clone();
    foreign.iss = "https://evil.example".into();
    let any = |token: &str| verifier.verify_any_audience::<signet_verify::AccessClaims>(token, "at+jwt");
    assert_eq!(any(&key.sign(&foreign)), Err(VerifyError::WrongIssuer));
    assert_eq!(any(&other.sign(&narrowed)), Err(VerifyError::UnknownKid));
    let mut expired = narrowed.clone();
    expired.exp = t - 31;
    assert_eq!(any(&key.sign(&expired)), Err(VerifyError::Expired));
    let mut header = key.header();
    header.typ = Some("refresh+jwt".into());
    assert_eq!(any(&key.sign_with(&header, &narrowed)), Err(VerifyError::WrongType));
}
