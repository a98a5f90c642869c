//! Revocation propagation (issue 13): a load program, not a test.
//!
//! Registers one user, then `--rounds` times: log in, `GET /user` on the
//! example microservice with the access token (must be 200: the microservice
//! now holds the token in its verified-token cache), log out, then poll
//! `GET /user` every `--poll-ms` until it answers 401. Prints p50/p99/max of
//! (time of the 401 - time the logout response arrived).
//!
//! Run signet with `SIGNET__THROTTLE__ENABLED=false` (one IP logs in many
//! times) and the microservice with its default settings (event stream on), or
//! `VERIFY_STATUS_EVENTS=false` to measure polling on the list's `ttl` alone.
//!
//! ```text
//! cargo run --release --example revocation_propagation -- \
//!     --signet http://127.0.0.1:18090 --service http://127.0.0.1:18091 --rounds 100
//! ```

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

#[derive(Parser)]
#[command(about = "Time from a logout response to the example microservice answering 401")]
struct Args {
    /// Base URL of a running signet.
    #[arg(long)]
    signet: String,
    /// Base URL of the example microservice verifying signet's tokens.
    #[arg(long)]
    service: String,
    #[arg(long, default_value_t = 100)]
    rounds: usize,
    /// Interval between polls of the microservice after the logout.
    #[arg(long, default_value_t = 5)]
    poll_ms: u64,
    /// Give up on a round after this many seconds.
    #[arg(long, default_value_t = 30)]
    timeout_secs: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let http = Client::new();
    let username = format!("prop{}", std::process::id());
    let password = "propagation-bench-password-1";
    let res = http
        .post(format!("{}/v1/auth/register", args.signet))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .context("register")?;
    if !res.status().is_success() {
        bail!("register: {} {}", res.status(), res.text().await?);
    }

    let mut delays = Vec::with_capacity(args.rounds);
    for round in 0..args.rounds {
        let res = http
            .post(format!("{}/v1/auth/login", args.signet))
            .json(&json!({"username": username, "password": password}))
            .send()
            .await
            .context("login")?;
        if res.status() != StatusCode::OK {
            bail!("round {round}: login {}", res.status());
        }
        let pair: Value = res.json().await?;
        let access = pair["access_token"].as_str().context("access_token")?;
        let user = |http: &Client| http.get(format!("{}/user", args.service)).bearer_auth(access).send();
        let status = user(&http).await?.status();
        if status != StatusCode::OK {
            bail!("round {round}: microservice answered {status} before the logout");
        }
        let res = http
            .post(format!("{}/v1/auth/logout", args.signet))
            .json(&json!({"refresh_token": pair["refresh_token"]}))
            .send()
            .await
            .context("logout")?;
        let logged_out = Instant::now();
        if !res.status().is_success() {
            bail!("round {round}: logout {}", res.status());
        }
        loop {
            match user(&http).await?.status() {
                StatusCode::UNAUTHORIZED => break,
                StatusCode::OK => {}
                other => bail!("round {round}: microservice answered {other}"),
            }
            if logged_out.elapsed() > Duration::from_secs(args.timeout_secs) {
                bail!("round {round}: still accepted {} s after the logout", args.timeout_secs);
            }
            tokio::time::sleep(Duration::from_millis(args.poll_ms)).await;
        }
        delays.push(logged_out.elapsed());
    }

    delays.sort();
    let pick = |q: f64| delays[((delays.len() as f64 * q).ceil() as usize).clamp(1, delays.len()) - 1];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "rounds {}  logout -> 401: p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms  min {:.1} ms",
        delays.len(),
        ms(pick(0.50)),
        ms(pick(0.99)),
        ms(delays[delays.len() - 1]),
        ms(delays[0]),
    );
    Ok(())
}
