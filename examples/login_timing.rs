//! No enumeration by timing (issue #6): a measurement, not a test.
//!
//! Against a running signet (release build, production bcrypt cost), times
//! logins of unknown usernames and wrong-password logins of a real account,
//! interleaved so both see the same machine noise, and prints the ratio of
//! their medians and means. Run signet with lockout and per-IP limits out of
//! the way (they apply to both kinds alike, but would cut the run short):
//!
//! ```text
//! SIGNET__THROTTLE__FAILURES_BEFORE_LOCKOUT=1000000 SIGNET__THROTTLE__PER_IP_BURST=100000 \
//!   SIGNET__SERVER__BIND=127.0.0.1:18095 target/release/signet &
//! cargo run --release --example login_timing -- --url http://127.0.0.1:18095 --rounds 100
//! ```

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use reqwest::{Client, StatusCode};
use serde_json::json;

#[derive(Parser)]
#[command(about = "Timing of unknown-user vs wrong-password logins against a running signet")]
struct Args {
    #[arg(long)]
    url: String,
    /// Pairs of logins to time.
    #[arg(long, default_value_t = 100)]
    rounds: usize,
}

async fn timed_login(http: &Client, url: &str, username: &str, password: &str) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let res = http
        .post(format!("{url}/v1/auth/login"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await?;
    let status = res.status();
    let body = res.bytes().await?;
    let elapsed = started.elapsed();
    if status != StatusCode::UNAUTHORIZED {
        bail!("expected 401, got {status}: {}", String::from_utf8_lossy(&body));
    }
    Ok(elapsed)
}

fn median(values: &mut [Duration]) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn mean(values: &[Duration]) -> Duration {
    values.iter().sum::<Duration>() / u32::try_from(values.len()).unwrap_or(u32::MAX)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let http = Client::new();
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let username = format!("timing-{}", &tag[..8]);
    let res = http
        .post(format!("{}/v1/auth/register", args.url))
        .json(&json!({"username": username, "password": "violet-canyon-73-drift"}))
        .send()
        .await
        .context("is signet running?")?;
    if res.status() != StatusCode::CREATED {
        bail!("register failed: {}", res.status());
    }
    // Warm up both paths (connection, dummy hash, caches).
    for _ in 0..3 {
        timed_login(&http, &args.url, &username, "wrong-password-guess").await?;
        timed_login(&http, &args.url, &format!("nobody-{tag}"), "wrong-password-guess").await?;
    }
    let (mut unknown, mut wrong) = (Vec::new(), Vec::new());
    for round in 0..args.rounds {
        let ghost = format!("ghost{round}-{}", &tag[..8]);
        // Alternate the order so neither kind always goes first.
        if round % 2 == 0 {
            unknown.push(timed_login(&http, &args.url, &ghost, "wrong-password-guess").await?);
            wrong.push(timed_login(&http, &args.url, &username, "wrong-password-guess").await?);
        } else {
            wrong.push(timed_login(&http, &args.url, &username, "wrong-password-guess").await?);
            unknown.push(timed_login(&http, &args.url, &ghost, "wrong-password-guess").await?);
        }
    }
    let (mean_unknown, mean_wrong) = (mean(&unknown), mean(&wrong));
    let (median_unknown, median_wrong) = (median(&mut unknown), median(&mut wrong));
    println!("rounds: {}", args.rounds);
    println!("unknown user:   median {median_unknown:?}, mean {mean_unknown:?}");
    println!("wrong password: median {median_wrong:?}, mean {mean_wrong:?}");
    println!(
        "ratio unknown/wrong: median {:.3}, mean {:.3}",
        median_unknown.as_secs_f64() / median_wrong.as_secs_f64(),
        mean_unknown.as_secs_f64() / mean_wrong.as_secs_f64()
    );
    Ok(())
}
