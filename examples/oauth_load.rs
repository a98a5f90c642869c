//! OAuth under load (issue 14): a load generator, not a test.
//!
//! Phase 1: `--concurrency` workers request client-credentials tokens
//! (`client_secret_basic`) for `--secs` seconds. Phase 2: the same workers
//! introspect one such token for `--secs` seconds. Prints requests/s, latency
//! percentiles of the 200s and the errors by status and RFC 6749 `error`.
//!
//! Run the server with `SIGNET__THROTTLE__ENABLED=false` only if you want to
//! rule the throttle out; successful client authentications are never
//! throttled. Create the client first: `signet clients create load --role reader`.
//!
//! ```text
//! cargo run --release --example oauth_load -- --url http://127.0.0.1:18096 \
//!     --client-id ID --client-secret SECRET --concurrency 32 --secs 10
//! ```

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use reqwest::{Client, StatusCode};
use serde_json::Value;

#[derive(Parser)]
#[command(about = "Client-credentials tokens and introspections per second against a running signet")]
struct Args {
    #[arg(long)]
    url: String,
    #[arg(long)]
    client_id: String,
    #[arg(long)]
    client_secret: String,
    /// Concurrent workers, each sending one request at a time.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Length of each timed phase, seconds.
    #[arg(long, default_value_t = 10)]
    secs: u64,
}

#[derive(Default)]
struct Stats {
    ok: Vec<Duration>,
    errors: BTreeMap<String, u64>,
}

#[derive(Clone)]
struct Target {
    http: Client,
    base: String,
    id: String,
    secret: String,
}

impl Target {
    async fn once(&self, path: &str, params: &[(&str, &str)]) -> Result<Value, String> {
        let res = self
            .http
            .post(format!("{}{path}", self.base))
            .basic_auth(&self.id, Some(&self.secret))
            .form(params)
            .send()
            .await
            .map_err(|_| "transport".to_owned())?;
        let status = res.status();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        if status == StatusCode::OK {
            Ok(body)
        } else {
            Err(format!("{} {}", status.as_u16(), body["error"].as_str().unwrap_or("-")))
        }
    }

    async fn run(self, path: &'static str, params: Vec<(&'static str, String)>, deadline: Instant) -> Stats {
        let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut stats = Stats::default();
        while Instant::now() < deadline {
            let started = Instant::now();
            match self.once(path, &params).await {
                Ok(body) if path == "/oauth/introspect" && body["active"] != true => {
                    *stats.errors.entry("inactive".into()).or_default() += 1;
                }
                Ok(_) => stats.ok.push(started.elapsed()),
                Err(key) => *stats.errors.entry(key).or_default() += 1,
            }
        }
        stats
    }
}

fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1000.0
}

async fn phase(
    name: &str,
    target: &Target,
    concurrency: usize,
    secs: u64,
    path: &'static str,
    params: Vec<(&'static str, String)>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs);
    let runs: Vec<_> =
        (0..concurrency).map(|_| tokio::spawn(target.clone().run(path, params.clone(), deadline))).collect();
    let mut total = Stats::default();
    for run in runs {
        let stats = run.await.context("worker")?;
        total.ok.extend(stats.ok);
        for (key, count) in stats.errors {
            *total.errors.entry(key).or_default() += count;
        }
    }
    let wall = started.elapsed().as_secs_f64();
    total.ok.sort_unstable();
    let errors: u64 = total.errors.values().sum();
    println!(
        "{name}: concurrency {concurrency}, {wall:.1} s: {} ok ({:.0}/s), {errors} errors; \
         ms p50 {:.2} p90 {:.2} p99 {:.2} max {:.2}",
        total.ok.len(),
        total.ok.len() as f64 / wall,
        percentile_ms(&total.ok, 50.0),
        percentile_ms(&total.ok, 90.0),
        percentile_ms(&total.ok, 99.0),
        total.ok.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
    );
    for (key, count) in &total.errors {
        println!("  error {key}: {count}");
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let target = Target {
        http: Client::builder().pool_max_idle_per_host(args.concurrency).build().context("HTTP client")?,
        base: args.url.trim_end_matches('/').to_owned(),
        id: args.client_id,
        secret: args.client_secret,
    };
    let grant = vec![("grant_type", "client_credentials".to_owned())];
    let token = match target.once("/oauth/token", &[("grant_type", "client_credentials")]).await {
        Ok(body) => body["access_token"].as_str().context("no access_token")?.to_owned(),
        Err(err) => bail!("first token: {err}"),
    };
    phase("client_credentials", &target, args.concurrency, args.secs, "/oauth/token", grant).await?;
    phase("introspection", &target, args.concurrency, args.secs, "/oauth/introspect", vec![("token", token)]).await?;
    Ok(())
}
