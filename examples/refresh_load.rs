//! Refresh under load (issue #3): a load generator, not a test.
//!
//! Registers and logs in one user per client, then every client walks its own
//! refresh chain for `--secs` seconds: `POST /v1/auth/refresh` with its current
//! refresh token, keep the rotated one from the answer, repeat. Prints
//! refreshes/s, latency percentiles of the successful refreshes and the
//! errors by status and problem `code`.
//!
//! Run the server with `SIGNET__THROTTLE__ENABLED=false`: every client comes
//! from one IP, which the default per-IP limits hold to 60 refreshes a minute.
//!
//! ```text
//! cargo run --release --example refresh_load -- --url http://127.0.0.1:18090 --clients 32 --secs 10
//! ```

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

#[derive(Parser)]
#[command(about = "Refresh-token rotation under load against a running signet")]
struct Args {
    /// Base URL of a running signet, e.g. http://127.0.0.1:18090
    #[arg(long)]
    url: String,
    /// Concurrent clients, each with its own user and refresh chain.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// Length of the timed phase, seconds.
    #[arg(long, default_value_t = 10)]
    secs: u64,
}

/// One client's identity and the head of its refresh chain.
struct Chain {
    http: Client,
    base: String,
    username: String,
    password: String,
    refresh_token: String,
}

/// What one client saw during the timed phase; merged at the end.
#[derive(Default)]
struct Stats {
    /// Latencies of the 200 answers.
    ok: Vec<Duration>,
    /// Slowest non-200 answer or transport failure.
    slowest_error: Duration,
    /// Errors by "status code" (e.g. "503 unavailable") or "transport".
    errors: BTreeMap<String, u64>,
    /// Chains broken (refresh token no longer usable) and restarted by a login.
    relogins: u64,
}

impl Chain {
    /// Registers a fresh user and logs it in (untimed set-up).
    async fn start(http: Client, base: String, n: usize, tag: String) -> anyhow::Result<Chain> {
        let username = format!("load{n}-{tag}");
        let password = format!("violet-canyon-73-drift-{n}");
        let res = http
            .post(format!("{base}/v1/auth/register"))
            .json(&json!({"username": username, "password": password}))
            .send()
            .await
            .context("register request")?;
        if res.status() != StatusCode::CREATED {
            bail!("register {username}: {} {}", res.status(), res.text().await?);
        }
        let mut chain = Chain { http, base, username, password, refresh_token: String::new() };
        chain.login().await?;
        Ok(chain)
    }

    /// Logs in and makes the new session's refresh token the head of the chain.
    async fn login(&mut self) -> anyhow::Result<()> {
        let res = self
            .http
            .post(format!("{}/v1/auth/login", self.base))
            .json(&json!({"username": self.username, "password": self.password}))
            .send()
            .await
            .context("login request")?;
        if res.status() != StatusCode::OK {
            bail!("login {}: {}", self.username, res.status());
        }
        self.refresh_token = refresh_token_of(res.json().await?)?;
        Ok(())
    }

    /// Refreshes until `deadline`, one request at a time.
    async fn run(mut self, deadline: Instant) -> Stats {
        let mut stats = Stats::default();
        while Instant::now() < deadline {
            let started = Instant::now();
            let sent = self
                .http
                .post(format!("{}/v1/auth/refresh", self.base))
                .json(&json!({"refresh_token": self.refresh_token}))
                .send()
                .await;
            // The body is part of the latency: read it before stopping the clock.
            let (status, body) = match sent {
                Ok(res) => (res.status(), res.json::<Value>().await.ok()),
                Err(_) => {
                    // Whether the server rotated is unknown: the next try tells.
                    stats.slowest_error = stats.slowest_error.max(started.elapsed());
                    *stats.errors.entry("transport".into()).or_default() += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let elapsed = started.elapsed();
            if status == StatusCode::OK {
                match body.map(refresh_token_of) {
                    Some(Ok(token)) => {
                        self.refresh_token = token;
                        stats.ok.push(elapsed);
                        continue;
                    }
                    _ => *stats.errors.entry("200 without token".into()).or_default() += 1,
                }
            } else {
                let code = body.as_ref().and_then(|b| b["code"].as_str()).unwrap_or("-");
                *stats.errors.entry(format!("{} {code}", status.as_u16())).or_default() += 1;
            }
            stats.slowest_error = stats.slowest_error.max(elapsed);
            // A 401 (or a 200 we could not read) means the chain is lost: start
            // a new one. After a 429 or a 5xx (rolled back) the token still works.
            if status == StatusCode::UNAUTHORIZED || status == StatusCode::OK {
                stats.relogins += 1;
                if self.login().await.is_err() {
                    *stats.errors.entry("re-login failed".into()).or_default() += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        stats
    }
}

fn refresh_token_of(pair: Value) -> anyhow::Result<String> {
    pair["refresh_token"].as_str().map(str::to_owned).context("token pair without refresh_token")
}

/// The `p`th percentile (nearest rank) of sorted latencies, in milliseconds.
fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let base = args.url.trim_end_matches('/').to_owned();
    // One HTTP client (and keep-alive pool) shared by all; each chain is sequential.
    let http = Client::builder().build().context("HTTP client")?;
    // A per-run tag keeps usernames unique when the same database is reused.
    let tag = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();

    // Set-up, untimed: register and log in every client concurrently.
    let setups: Vec<_> =
        (0..args.clients).map(|n| tokio::spawn(Chain::start(http.clone(), base.clone(), n, tag.clone()))).collect();
    let mut chains = Vec::with_capacity(args.clients);
    for setup in setups {
        chains.push(setup.await.context("set-up task")??);
    }

    // Timed phase: every chain refreshes until the common deadline.
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.secs);
    let runs: Vec<_> = chains.into_iter().map(|chain| tokio::spawn(chain.run(deadline))).collect();
    let mut total = Stats::default();
    for run in runs {
        let stats = run.await.context("client task")?;
        total.ok.extend(stats.ok);
        total.slowest_error = total.slowest_error.max(stats.slowest_error);
        total.relogins += stats.relogins;
        for (key, count) in stats.errors {
            *total.errors.entry(key).or_default() += count;
        }
    }
    // Includes the requests still in flight at the deadline.
    let wall = started.elapsed().as_secs_f64();

    total.ok.sort_unstable();
    let errors: u64 = total.errors.values().sum();
    let max_ms = total.ok.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    println!(
        "clients {}, {wall:.1} s: {} refreshes ({:.0}/s), {errors} errors, {} re-logins",
        args.clients,
        total.ok.len(),
        total.ok.len() as f64 / wall,
        total.relogins
    );
    println!(
        "latency of 200s, ms: p50 {:.1}  p90 {:.1}  p99 {:.1}  max {max_ms:.1}",
        percentile_ms(&total.ok, 50.0),
        percentile_ms(&total.ok, 90.0),
        percentile_ms(&total.ok, 99.0),
    );
    for (key, count) in &total.errors {
        println!("  error {key}: {count}");
    }
    if total.errors.keys().any(|k| k.starts_with("429")) {
        println!("  (429: the server throttles per IP; run it with SIGNET__THROTTLE__ENABLED=false)");
    }
    if errors > 0 {
        println!("  slowest error answer: {:.1} ms", total.slowest_error.as_secs_f64() * 1000.0);
    }
    Ok(())
}
