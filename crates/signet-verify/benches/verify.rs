//! Verify cost per algorithm, with and without the verified-token cache; and
//! the cost of status-list checking on a warm cache (on vs off, one run).
//!
//! `cargo bench -p signet-verify --bench verify` (a plain timing loop, no
//! harness: median of 15 rounds, each long enough to be timed well).
#![expect(clippy::unwrap_used, reason = "a benchmark fails loudly")]

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use base64::Engine;
use common::{claims, jwks, now, rules, TestKey, ISSUER};
use jsonwebtoken::Algorithm;
use signet_verify::{Status, StatusListRef, Verifier, STATUS_LIST_TYPE};

/// Median time of one call of `f`, in microseconds.
fn time(mut f: impl FnMut()) -> f64 {
    // Size a round to ~50 ms.
    let start = Instant::now();
    let mut calibration = 0u32;
    while start.elapsed() < Duration::from_millis(20) {
        f();
        calibration += 1;
    }
    let per_round = (calibration * 5 / 2).max(10);
    let mut rounds: Vec<f64> = (0..15)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..per_round {
                f();
            }
            start.elapsed().as_secs_f64() * 1e6 / f64::from(per_round)
        })
        .collect();
    rounds.sort_by(f64::total_cmp);
    rounds[rounds.len() / 2]
}

fn main() {
    // `cargo test --benches` runs benches as tests: keep that quick.
    if std::env::args().any(|a| a == "--test") {
        return;
    }
    println!("| algorithm | verify, cache off (µs) | verify, cache hit (µs) | token bytes |");
    println!("|---|---|---|---|");
    for algorithm in [Algorithm::ES256, Algorithm::EdDSA, Algorithm::RS256] {
        let key = TestKey::new(algorithm, "bench");
        let token = key.sign(&claims(now(), &["user"]));
        let build =
            |capacity| Verifier::builder(rules()).jwks(&jwks(&[&key])).cache_capacity(capacity).build().unwrap();
        let cold = build(0);
        let cached = build(10_000);
        assert!(cold.verify(&token).is_ok() && cached.verify(&token).is_ok());
        let off = time(|| {
            black_box(cold.verify(black_box(&token)).unwrap());
        });
        let hit = time(|| {
            black_box(cached.verify(black_box(&token)).unwrap());
        });
        println!("| {algorithm:?} | {off:.1} | {hit:.2} | {} |", token.len());
        if algorithm == Algorithm::ES256 {
            let sha = time(|| {
                black_box(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, black_box(token.as_bytes())));
            });
            let claims = cached.verify(&token).unwrap();
            let clone = time(|| {
                black_box(black_box(&claims).clone());
            });
            eprintln!("of an ES256 hit: SHA-256 {sha:.2} µs, claims clone {clone:.2} µs");
        }
    }
    status_on_vs_off();
}

/// A warm-cache verification of a token with a `status` claim, against a
/// verifier that checks status lists (the list loaded: 1,000,000 entries, 1%
/// revoked) and one that does not.
fn status_on_vs_off() {
    let key = TestKey::es256("bench");
    let uri = format!("{ISSUER}/v1/status-lists/1");
    let mut bytes = vec![0u8; 1_000_000 / 8];
    for i in 0..10_000u64 {
        let idx = (i * 7919 * 13) % 1_000_000;
        bytes[(idx / 8) as usize] |= 1 << (idx % 8);
    }
    bytes[0] &= !1; // the benchmarked token's index 0 stays valid
    let lst =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(miniz_oxide::deflate::compress_to_vec_zlib(&bytes, 6));
    let mut header = key.header();
    header.typ = Some(STATUS_LIST_TYPE.to_owned());
    let list = key.sign_with(
        &header,
        &serde_json::json!({"iss": ISSUER, "sub": uri, "iat": now(), "exp": now() + 86_400, "ttl": 300,
            "status_list": {"bits": 1, "lst": lst}}),
    );
    let mut c = claims(now(), &["user"]);
    c.status = Some(Status { status_list: StatusListRef { idx: 0, uri: uri.clone() } });
    let token = key.sign(&c);
    let on = Verifier::builder(rules()).jwks(&jwks(&[&key])).status_lists(true).build().unwrap();
    on.load_status_list(&uri, &list).unwrap();
    let off = Verifier::builder(rules()).jwks(&jwks(&[&key])).status_lists(false).build().unwrap();
    assert!(on.verify(&token).is_ok() && off.verify(&token).is_ok());
    // Interleaved rounds, so that load on the machine hits both alike.
    let (mut t_on, mut t_off) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        t_off.push(time(|| {
            black_box(off.verify(black_box(&token)).unwrap());
        }));
        t_on.push(time(|| {
            black_box(on.verify(black_box(&token)).unwrap());
        }));
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (t_on, t_off) = (median(t_on), median(t_off));
    println!();
    println!("| ES256, warm cache, token with status | status off (µs) | status on (µs) | off/on throughput ratio |");
    println!("|---|---|---|---|");
    println!(
        "| list of 1,000,000 (1% revoked, {} B compressed) | {t_off:.3} | {t_on:.3} | {:.3} |",
        lst.len() * 3 / 4,
        t_off / t_on
    );
}
