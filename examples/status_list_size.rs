//! Size and build cost of one status list: `size` indices with `percent` of
//! them invalid, picked uniformly at random (a fixed-seed xorshift, so runs
//! are comparable). Prints raw, zlib and `lst` (base64url) bytes, and the time
//! to pack and compress (what a re-sign costs besides one signature).
//!
//! cargo run --release --example status_list_size -- [size] [percent]

use std::collections::HashSet;
use std::time::Instant;

use signet::status_lists::bits;

fn main() {
    let mut args = std::env::args().skip(1);
    let size: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let percent: f64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1.0);
    let wanted = ((size as f64) * percent / 100.0).round() as usize;

    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut invalid = HashSet::with_capacity(wanted);
    while invalid.len() < wanted {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        invalid.insert(state % size);
    }

    let runs = 20;
    let start = Instant::now();
    let mut lst = String::new();
    let mut raw = 0;
    let mut zlib = 0;
    for _ in 0..runs {
        let bytes = bits::pack(size, invalid.iter().copied());
        raw = bytes.len();
        zlib = bits::compress(&bytes).len();
        lst = bits::encode_lst(&bytes);
    }
    // Each run compresses twice (compress + encode_lst).
    let per_build = start.elapsed() / (runs * 2);
    println!("indices: {size}, invalid: {} ({percent}%)", invalid.len());
    println!("raw bytes: {raw}, zlib bytes: {zlib}, lst (base64url) bytes: {}", lst.len());
    println!("pack + zlib per build: {per_build:?} (mean of {} builds)", runs * 2);
}
