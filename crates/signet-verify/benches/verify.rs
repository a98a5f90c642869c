//! Verify cost per algorithm, with and without the verified-token cache.
//!
//! `cargo bench -p signet-verify --bench verify` (a plain timing loop, no
//! harness: median of 15 rounds, each long enough to be timed well).
#![expect(clippy::unwrap_used, reason = "a benchmark fails loudly")]

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use common::{claims, jwks, now, rules, TestKey};
use jsonwebtoken::Algorithm;
use signet_verify::Verifier;

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
}
