//! Several signet instances on one database, under faults (issue 15 point 5):
//! a load generator and checker, not a test. `.ci/fleet-test` runs it against
//! three instances on a throwaway PostgreSQL and injects the faults.
//!
//! Every client registers its own user and then, until `--secs` are up, mixes
//! protected calls (`GET /v1/auth/me`), refreshes, logins and logouts, each on
//! the next instance in turn, so one refresh chain hops between instances.
//! Now and then a client
//! - races one refresh token against every instance at once: every `200` must
//!   carry the same successor (the reuse grace window's answer), never two;
//! - reuses a rotated token on purpose (A→B on one instance, B→C on the next,
//!   A again on a third): that must be `refresh_token_reused`, C must then be
//!   refused, and C's access token too;
//! - logs out and checks the old refresh token is refused on another instance.
//!
//! Clients retry on another instance after a connection error, a timeout or a
//! `503` (waiting `Retry-After`, capped at one second, once every instance
//! failed), with the same refresh token: a rotation whose answer was lost is
//! answered again, identically, inside `tokens.refresh_reuse_grace_secs`.
//!
//! It counts requests, errors by kind (status and problem `code`, or the
//! transport failure), refreshes double-spent (two `200`s for one token with
//! different successors) and sessions lost (a refresh of the client's current
//! token refused, or not served within the retry budget), and, from the fault
//! times in `--events` (lines `<unix ms> <name>` written by the fault
//! injector), how long each instance took to serve again after the database
//! came back. At the end every client's current access token must verify on
//! every instance that is up (key rotation coherence). It exits non-zero on
//! any `500`, lost or double-spent refresh, `503` without `Retry-After`, valid
//! token refused, failed reuse check, or (with `--expect-rotation`) no token
//! signed by a new key.
//!
//! Run the instances with `SIGNET__THROTTLE__ENABLED=false` (every client comes
//! from one IP) and a reuse grace window (`SIGNET__TOKENS__REFRESH_REUSE_GRACE_SECS`).
//!
//! ```text
//! cargo run --release --example fleet_load -- \
//!     --urls http://127.0.0.1:18101,http://127.0.0.1:18102,http://127.0.0.1:18103 --secs 30
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use clap::Parser;
use reqwest::{Client, RequestBuilder};
use serde_json::{json, Value};

#[derive(Parser)]
#[command(about = "Logins, refreshes and protected calls spread over several signet instances, checked under faults")]
struct Args {
    /// Base URLs of the instances, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    urls: Vec<String>,
    /// Concurrent clients, each with its own user.
    #[arg(long, default_value_t = 12)]
    clients: usize,
    /// Length of the load phase, seconds.
    #[arg(long, default_value_t = 30)]
    secs: u64,
    /// Pause between two operations of one client, milliseconds.
    #[arg(long, default_value_t = 10)]
    pause_ms: u64,
    /// How long one operation is retried across the instances before its
    /// session counts as lost, seconds.
    #[arg(long, default_value_t = 60)]
    retry_budget_secs: u64,
    /// Fault log written by the injector: lines `<unix ms> <name>`, where the
    /// names `pg_start` (database back) and `kill` are analysed.
    #[arg(long)]
    events: Option<String>,
    /// Longest time an instance may take to serve again after `pg_start`.
    #[arg(long, default_value_t = 15)]
    max_recovery_secs: u64,
    /// Fail unless some client's final token is signed by a key other than
    /// the first one seen (a rotation ran during the load).
    #[arg(long)]
    expect_rotation: bool,
    /// Writes `<session id> <refresh tokens issued>` per session seen, for a
    /// comparison with the database's refresh_tokens rows.
    #[arg(long)]
    chains_out: Option<String>,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// A JWT part (0 header, 1 payload) as JSON; the generator trusts the server.
fn jwt_part(token: &str, part: usize) -> Option<Value> {
    let bytes = URL_SAFE_NO_PAD.decode(token.split('.').nth(part)?).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn claim(token: &str, part: usize, name: &str) -> String {
    jwt_part(token, part).and_then(|v| v[name].as_str().map(str::to_owned)).unwrap_or_default()
}

/// The instances and, shared by all clients, until when each counts as down
/// (after a connection failure), so clients stop knocking at a dead one.
struct Fleet {
    urls: Vec<String>,
    down_until: Vec<AtomicU64>,
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Me,
    Refresh,
    Login,
    Logout,
    /// A request of a reuse or logout check, where 401 is the right answer.
    Check,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Me => "me",
            Op::Refresh => "refresh",
            Op::Login => "login",
            Op::Logout => "logout",
            Op::Check => "check",
        }
    }
}

/// One answer, or the transport failure instead.
enum Attempt {
    Answer { status: u16, body: Value },
    Failed,
}

/// What one client saw; merged at the end.
#[derive(Default)]
struct Stats {
    requests: u64,
    ok_by_op: BTreeMap<&'static str, u64>,
    /// Errors by "op status code" or "op transport-kind".
    errors: BTreeMap<String, u64>,
    /// Attempts repeated on another instance (or after a pause).
    retries: u64,
    double_spent: u64,
    lost: u64,
    race_checks: u64,
    reuse_checks: u64,
    logout_checks: u64,
    /// Everything that makes the run fail, in words.
    fatal: Vec<String>,
    /// (unix ms at the answer, instance, served: answered below 500) of every attempt.
    samples: Vec<(u64, usize, bool)>,
    /// kid -> (when first accepted, instances that accepted an access token signed by it).
    kids: BTreeMap<String, (u64, BTreeSet<usize>)>,
    /// session id -> refresh token ids issued in it, as this client saw them.
    chains: HashMap<String, HashSet<String>>,
}

impl Stats {
    fn fatal(&mut self, what: String) {
        if self.fatal.len() < 50 {
            self.fatal.push(what);
        }
    }

    fn merge(&mut self, other: Stats) {
        self.requests += other.requests;
        for (k, v) in other.ok_by_op {
            *self.ok_by_op.entry(k).or_default() += v;
        }
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
        self.retries += other.retries;
        self.double_spent += other.double_spent;
        self.lost += other.lost;
        self.race_checks += other.race_checks;
        self.reuse_checks += other.reuse_checks;
        self.logout_checks += other.logout_checks;
        self.fatal.extend(other.fatal);
        self.samples.extend(other.samples);
        for (kid, (first, instances)) in other.kids {
            let entry = self.kids.entry(kid).or_insert((first, BTreeSet::new()));
            entry.0 = entry.0.min(first);
            entry.1.extend(instances);
        }
        self.chains.extend(other.chains);
    }
}

struct Session {
    access: String,
    refresh: String,
}

struct Worker {
    fleet: Arc<Fleet>,
    http: Client,
    username: String,
    password: String,
    session: Session,
    next: usize,
    rng: u64,
    retry_budget: Duration,
    stats: Stats,
    /// refresh jti -> the successor jti a 200 answered with.
    successors: HashMap<String, String>,
}

impl Worker {
    fn random(&mut self, below: u64) -> u64 {
        // xorshift64: enough to mix the operations.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng % below
    }

    /// The next instance in turn that is not marked down (or the next one if
    /// all are).
    fn pick(&mut self) -> usize {
        let count = self.fleet.urls.len();
        let now = now_ms();
        for _ in 0..count {
            let i = self.next % count;
            self.next += 1;
            if self.fleet.down_until[i].load(Ordering::Relaxed) <= now {
                return i;
            }
        }
        let i = self.next % count;
        self.next += 1;
        i
    }

    /// One request to instance `i`, counted and sampled.
    async fn attempt(&mut self, op: Op, i: usize, request: RequestBuilder) -> Attempt {
        self.stats.requests += 1;
        let sent = request.send().await;
        let at = now_ms();
        match sent {
            Ok(res) => {
                let status = res.status().as_u16();
                let retry_after = res.headers().contains_key("retry-after");
                let body: Value = res.json().await.unwrap_or(Value::Null);
                // Served: the instance answered with its database at hand.
                self.stats.samples.push((at, i, status < 500));
                if status < 400 {
                    *self.stats.ok_by_op.entry(op.name()).or_default() += 1;
                } else if op == Op::Check && status == 401 {
                    *self.stats.ok_by_op.entry("check (401 as expected)").or_default() += 1;
                } else {
                    let code = body["code"].as_str().unwrap_or("-");
                    *self.stats.errors.entry(format!("{} {status} {code}", op.name())).or_default() += 1;
                }
                if status == 503 && !retry_after {
                    self.stats.fatal(format!("{} on instance {i}: 503 without Retry-After", op.name()));
                }
                if status >= 500 && status != 503 {
                    self.stats.fatal(format!("{} on instance {i}: {status} {body}", op.name()));
                }
                Attempt::Answer { status, body }
            }
            Err(err) => {
                self.stats.samples.push((at, i, false));
                let kind = if err.is_connect() {
                    "connect-error"
                } else if err.is_timeout() {
                    "timeout"
                } else {
                    "transport-error"
                };
                *self.stats.errors.entry(format!("{} {kind}", op.name())).or_default() += 1;
                if !err.is_timeout() {
                    self.fleet.down_until[i].store(at + 2000, Ordering::Relaxed);
                }
                Attempt::Failed
            }
        }
    }

    /// Sends the request built by `make` until an instance answers with
    /// something other than a 503 (connection failures and 503s move on to
    /// the next instance; after a whole round of them, a pause). `None` when
    /// nothing answered within the retry budget.
    async fn call(&mut self, op: Op, make: impl Fn(&Client, &str) -> RequestBuilder) -> Option<(usize, u16, Value)> {
        let started = Instant::now();
        let mut failures_in_round = 0;
        loop {
            let i = self.pick();
            let request = make(&self.http, &self.fleet.urls[i]);
            match self.attempt(op, i, request).await {
                Attempt::Answer { status, body } if status != 503 => return Some((i, status, body)),
                _ => {}
            }
            if started.elapsed() > self.retry_budget {
                return None;
            }
            self.stats.retries += 1;
            failures_in_round += 1;
            if failures_in_round >= self.fleet.urls.len() {
                failures_in_round = 0;
                // Retry-After says 5 s; a client may come back sooner. One
                // second keeps the recovery measurement at that resolution.
                tokio::time::sleep(Duration::from_millis(1000)).await;
            }
        }
    }

    fn remember_pair(&mut self, body: &Value) -> Option<Session> {
        let access = body["access_token"].as_str()?.to_owned();
        let refresh = body["refresh_token"].as_str()?.to_owned();
        let sid = claim(&refresh, 1, "sid");
        let jti = claim(&refresh, 1, "jti");
        self.stats.chains.entry(sid).or_default().insert(jti);
        Some(Session { access, refresh })
    }

    async fn register(&mut self) -> anyhow::Result<()> {
        let body = json!({"username": self.username, "password": self.password});
        match self.call(Op::Login, |c, u| c.post(format!("{u}/v1/auth/register")).json(&body)).await {
            // 409: an earlier attempt whose answer was lost created it.
            Some((_, 201 | 409, _)) => Ok(()),
            other => anyhow::bail!("register {}: {:?}", self.username, other.map(|(_, s, b)| (s, b))),
        }
    }

    /// A fresh session (the old one, if any, is left to expire).
    async fn login(&mut self) {
        let body = json!({"username": self.username, "password": self.password});
        loop {
            match self.call(Op::Login, |c, u| c.post(format!("{u}/v1/auth/login")).json(&body)).await {
                Some((i, 200, pair)) => match self.remember_pair(&pair) {
                    Some(session) => {
                        self.session = session;
                        return;
                    }
                    None => self.stats.fatal(format!("login on instance {i}: 200 without a token pair")),
                },
                Some((i, status, body)) => self.stats.fatal(format!("login on instance {i}: {status} {body}")),
                None => self.stats.fatal("login: no instance answered within the retry budget".into()),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// GET /v1/auth/me with the current access token; any refusal is fatal.
    async fn me(&mut self) {
        let access = self.session.access.clone();
        match self.call(Op::Me, |c, u| c.get(format!("{u}/v1/auth/me")).bearer_auth(&access)).await {
            Some((i, 200, _)) => {
                let kid = claim(&access, 0, "kid");
                self.stats.kids.entry(kid).or_insert((now_ms(), BTreeSet::new())).1.insert(i);
            }
            Some((i, status, body)) => {
                self.stats.fatal(format!("me on instance {i}: a live access token got {status} {body}"));
            }
            None => self.stats.fatal("me: no instance answered within the retry budget".into()),
        }
    }

    /// Records a 200 refresh of `old`: a different successor than before is a
    /// double spend.
    fn rotated(&mut self, old: &str, i: usize, pair: &Value) -> Option<Session> {
        let session = self.remember_pair(pair)?;
        let old_jti = claim(old, 1, "jti");
        let new_jti = claim(&session.refresh, 1, "jti");
        match self.successors.get(&old_jti) {
            Some(seen) if *seen != new_jti => {
                self.stats.double_spent += 1;
                self.stats.fatal(format!(
                    "double spend: refresh token {old_jti} rotated to {seen} and, on instance {i}, to {new_jti}"
                ));
            }
            _ => {
                self.successors.insert(old_jti, new_jti);
            }
        }
        Some(session)
    }

    /// Refreshes `token` (retrying across instances). `None`: the session is
    /// lost, already counted; the caller logs in again.
    async fn refresh_token(&mut self, token: &str) -> Option<Session> {
        let body = json!({"refresh_token": token});
        match self.call(Op::Refresh, |c, u| c.post(format!("{u}/v1/auth/refresh")).json(&body)).await {
            Some((i, 200, pair)) => {
                let session = self.rotated(token, i, &pair);
                if session.is_none() {
                    self.stats.fatal(format!("refresh on instance {i}: 200 without a token pair"));
                }
                session
            }
            Some((i, status, body)) => {
                self.stats.lost += 1;
                self.stats.fatal(format!("lost session: refresh on instance {i} answered {status} {body}"));
                None
            }
            None => {
                self.stats.lost += 1;
                self.stats.fatal("lost session: no instance answered a refresh within the retry budget".into());
                None
            }
        }
    }

    async fn refresh(&mut self) {
        let token = self.session.refresh.clone();
        match self.refresh_token(&token).await {
            Some(session) => self.session = session,
            None => self.login().await,
        }
    }

    /// The same refresh token to every instance at once (but those marked
    /// down): all 200s must carry one successor.
    async fn race(&mut self) {
        self.stats.race_checks += 1;
        let token = self.session.refresh.clone();
        let mut tasks = Vec::new();
        let now = now_ms();
        for (i, url) in self.fleet.urls.iter().enumerate() {
            // A client does not knock at an instance it just found dead.
            if self.fleet.down_until[i].load(Ordering::Relaxed) > now {
                continue;
            }
            let request = self.http.post(format!("{url}/v1/auth/refresh")).json(&json!({"refresh_token": token}));
            tasks.push((
                i,
                tokio::spawn(async move {
                    let res = request.send().await.ok()?;
                    let status = res.status().as_u16();
                    let retry_after = res.headers().contains_key("retry-after");
                    Some((status, retry_after, res.json::<Value>().await.unwrap_or(Value::Null)))
                }),
            ));
        }
        let mut next = None;
        for (i, task) in tasks {
            self.stats.requests += 1;
            let answer = task.await.ok().flatten();
            let at = now_ms();
            match answer {
                Some((200, _, pair)) => {
                    self.stats.samples.push((at, i, true));
                    *self.stats.ok_by_op.entry("refresh").or_default() += 1;
                    if let Some(session) = self.rotated(&token, i, &pair) {
                        next = Some(session);
                    }
                }
                Some((status, retry_after, body)) => {
                    self.stats.samples.push((at, i, false));
                    let code = body["code"].as_str().unwrap_or("-");
                    *self.stats.errors.entry(format!("race-refresh {status} {code}")).or_default() += 1;
                    if status != 503 || !retry_after {
                        self.stats.fatal(format!("racing refresh on instance {i}: {status} {body}"));
                    }
                }
                None => {
                    self.stats.samples.push((at, i, false));
                    *self.stats.errors.entry("race-refresh transport-error".into()).or_default() += 1;
                    self.fleet.down_until[i].store(at + 2000, Ordering::Relaxed);
                }
            }
        }
        match next {
            Some(session) => self.session = session,
            // Nobody answered 200 (faults): an ordinary retrying refresh.
            None => self.refresh().await,
        }
    }

    /// A→B, B→C, then A again: `refresh_token_reused`; C is then refused, and
    /// so is C's access token, on whichever instance answers.
    async fn reuse(&mut self) {
        self.stats.reuse_checks += 1;
        let a = self.session.refresh.clone();
        let Some(b) = self.refresh_token(&a).await else { return self.login().await };
        let Some(c) = self.refresh_token(&b.refresh).await else { return self.login().await };
        let body = json!({"refresh_token": a});
        match self.call(Op::Check, |cl, u| cl.post(format!("{u}/v1/auth/refresh")).json(&body)).await {
            Some((_, 401, answer)) if answer["code"] == "refresh_token_reused" => {}
            other => self.stats.fatal(format!("reuse of a rotated token not detected: {:?}", other)),
        }
        let body = json!({"refresh_token": c.refresh});
        match self.call(Op::Check, |cl, u| cl.post(format!("{u}/v1/auth/refresh")).json(&body)).await {
            Some((_, 401, answer)) if answer["code"] == "invalid_refresh_token" => {}
            other => self.stats.fatal(format!("token of a session revoked for reuse accepted: {:?}", other)),
        }
        let access = c.access.clone();
        match self.call(Op::Check, |cl, u| cl.get(format!("{u}/v1/auth/me")).bearer_auth(&access)).await {
            Some((_, 401, _)) => {}
            other => self.stats.fatal(format!("access token of a revoked session accepted: {:?}", other)),
        }
        self.login().await;
    }

    /// Logout, then the old refresh token must be refused (on the next instance).
    async fn logout(&mut self) {
        self.stats.logout_checks += 1;
        let body = json!({"refresh_token": self.session.refresh});
        match self.call(Op::Logout, |c, u| c.post(format!("{u}/v1/auth/logout")).json(&body)).await {
            Some((_, 204, _)) => {}
            other => self.stats.fatal(format!("logout: {:?}", other)),
        }
        match self.call(Op::Check, |c, u| c.post(format!("{u}/v1/auth/refresh")).json(&body)).await {
            Some((_, 401, _)) => {}
            other => self.stats.fatal(format!("refresh after logout: {:?}", other)),
        }
        self.login().await;
    }

    async fn run(mut self, deadline: Instant, pause: Duration) -> Stats {
        while Instant::now() < deadline {
            match self.random(100) {
                0..=49 => self.me().await,
                50..=87 => self.refresh().await,
                88..=92 => self.race().await,
                93..=94 => self.reuse().await,
                95..=97 => self.logout().await,
                _ => self.login().await,
            }
            tokio::time::sleep(pause).await;
        }
        self.stats
    }
}

/// Per analysed fault: what the clients saw.
fn analyse_events(
    path: &str,
    samples: &[(u64, usize, bool)],
    urls: usize,
    max_recovery: u64,
    report: &mut String,
    fatal: &mut Vec<String>,
) {
    let Ok(text) = std::fs::read_to_string(path) else {
        fatal.push(format!("cannot read the event log {path}"));
        return;
    };
    let mut events: Vec<(u64, String)> = text
        .lines()
        .filter_map(|l| {
            let (at, name) = l.split_once(' ')?;
            Some((at.trim().parse().ok()?, name.trim().to_owned()))
        })
        .collect();
    events.sort();
    let Some(&(first_sample, ..)) = samples.first() else { return };
    for (at, name) in &events {
        let rel = (*at as f64 - first_sample as f64) / 1000.0;
        let _ = writeln!(report, "event {name} at {rel:.1} s");
        if name == "pg_start" {
            // Per instance: the first success after the database is back.
            let down_since = events.iter().rev().find(|(t, n)| n == "pg_stop" && t <= at).map(|(t, _)| *t);
            if let Some(stop) = down_since {
                let failed = samples.iter().filter(|(t, _, ok)| *t >= stop && *t <= *at && !ok).count();
                let _ = writeln!(
                    report,
                    "  while the database was down ({:.1} s): {failed} failed attempts",
                    (*at - stop) as f64 / 1000.0
                );
            }
            for i in 0..urls {
                // An instance that answers nothing at all after the restart was killed.
                if !samples.iter().any(|(t, s, _)| *t > *at && *s == i) {
                    continue;
                }
                match samples.iter().filter(|(t, s, ok)| *t >= *at && *s == i && *ok).map(|(t, ..)| *t).min() {
                    Some(t) => {
                        let secs = (t - at) as f64 / 1000.0;
                        let _ = writeln!(report, "  instance {i} served again {secs:.2} s after the database was back");
                        if secs > max_recovery as f64 {
                            fatal.push(format!("instance {i} took {secs:.1} s to recover (limit {max_recovery} s)"));
                        }
                    }
                    None => fatal.push(format!("instance {i} never served again after the database restart")),
                }
            }
        }
        if name == "kill" {
            // Up to 10 s, or up to the next fault.
            let end = events.iter().map(|(t, _)| *t).filter(|t| t > at).min().unwrap_or(u64::MAX).min(at + 10_000);
            let window = |from: u64, to: u64| samples.iter().filter(|(t, _, ok)| *t >= from && *t < to && *ok).count();
            let _ = writeln!(
                report,
                "  answers in the 3 s before: {}, in the 3 s after: {}; longest time without an answer in the {:.1} s after: {:.2} s",
                window(at.saturating_sub(3000), *at),
                window(*at, at + 3000),
                (end - at) as f64 / 1000.0,
                longest_gap(samples, *at, end) as f64 / 1000.0
            );
        }
    }
}

/// Longest time within [from, to) without a successful answer, in ms.
fn longest_gap(samples: &[(u64, usize, bool)], from: u64, to: u64) -> u64 {
    let mut last = from;
    let mut gap = 0;
    for (t, _, ok) in samples {
        if *ok && *t >= from && *t < to {
            gap = gap.max(t - last);
            last = *t;
        }
    }
    gap.max(to.saturating_sub(last).min(to - from))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let urls: Vec<String> = args.urls.iter().map(|u| u.trim_end_matches('/').to_owned()).collect();
    let fleet = Arc::new(Fleet { down_until: urls.iter().map(|_| AtomicU64::new(0)).collect(), urls: urls.clone() });
    let http = Client::builder()
        .connect_timeout(Duration::from_secs(1))
        .timeout(Duration::from_secs(10))
        // Below the server's keep-alive (5 s), so an idle connection is never
        // reused just as the server closes it.
        .pool_idle_timeout(Duration::from_secs(2))
        .build()
        .context("HTTP client")?;
    let tag = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();

    let mut workers = Vec::new();
    for n in 0..args.clients {
        let mut worker = Worker {
            fleet: fleet.clone(),
            http: http.clone(),
            username: format!("fleet{n}-{tag}"),
            password: format!("violet-canyon-73-drift-{n}"),
            session: Session { access: String::new(), refresh: String::new() },
            next: n,
            rng: 0x9E37_79B9_7F4A_7C15 ^ (n as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9),
            retry_budget: Duration::from_secs(args.retry_budget_secs),
            stats: Stats::default(),
            successors: HashMap::new(),
        };
        worker.register().await?;
        worker.login().await;
        workers.push(worker);
    }
    println!("{} clients ready on {} instances; load for {} s", args.clients, urls.len(), args.secs);

    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.secs);
    let pause = Duration::from_millis(args.pause_ms);
    let runs: Vec<_> = workers.into_iter().map(|w| tokio::spawn(w.run(deadline, pause))).collect();
    let mut total = Stats::default();
    for run in runs {
        let stats = run.await.context("client task")?;
        total.merge(stats);
    }
    let wall = started.elapsed().as_secs_f64();
    // Key coherence: a fresh login per client on each instance in turn; every
    // resulting access token must verify on every instance that is up.
    let up: Vec<usize> = {
        let mut up = Vec::new();
        for (i, url) in urls.iter().enumerate() {
            if http.get(format!("{url}/healthz")).send().await.is_ok_and(|r| r.status().is_success()) {
                up.push(i);
            }
        }
        up
    };
    // The key that signed first (kids sort by name, not by age).
    let first_kid = total.kids.iter().min_by_key(|(_, (first, _))| *first).map(|(kid, _)| kid.clone());
    let mut final_kids: BTreeMap<String, BTreeSet<usize>> = BTreeMap::new();
    for (n, &signer) in up.iter().cycle().take(args.clients.max(up.len())).enumerate() {
        let body = json!({"username": format!("fleet{}-{tag}", n % args.clients), "password": format!("violet-canyon-73-drift-{}", n % args.clients)});
        let pair = match http.post(format!("{}/v1/auth/login", urls[signer])).json(&body).send().await {
            Ok(res) if res.status().is_success() => res.json::<Value>().await.unwrap_or(Value::Null),
            other => {
                total.fatal.push(format!("final login on instance {signer}: {:?}", other.map(|r| r.status())));
                continue;
            }
        };
        let access = pair["access_token"].as_str().unwrap_or_default().to_owned();
        let kid = claim(&access, 0, "kid");
        for &i in &up {
            match http.get(format!("{}/v1/auth/me", urls[i])).bearer_auth(&access).send().await {
                Ok(res) if res.status().is_success() => {
                    final_kids.entry(kid.clone()).or_default().insert(i);
                }
                other => total.fatal.push(format!(
                    "key coherence: a token signed on instance {signer} (kid {kid}) refused by instance {i}: {:?}",
                    other.map(|r| r.status())
                )),
            }
        }
    }

    // The report.
    total.samples.sort_unstable();
    let mut report = String::new();
    let errors: u64 = total.errors.values().sum();
    let _ = writeln!(
        report,
        "{} requests in {wall:.1} s ({:.0}/s), {errors} failed attempts, {} retries",
        total.requests,
        total.requests as f64 / wall,
        total.retries
    );
    for (op, count) in &total.ok_by_op {
        let _ = writeln!(report, "  ok {op}: {count}");
    }
    for (kind, count) in &total.errors {
        let _ = writeln!(report, "  error {kind}: {count}");
    }
    let _ = writeln!(
        report,
        "checks: {} refresh races, {} deliberate reuses, {} logouts; double-spent refreshes: {}, lost sessions: {}",
        total.race_checks, total.reuse_checks, total.logout_checks, total.double_spent, total.lost
    );
    for (kid, (first, instances)) in &total.kids {
        let since = total.samples.first().map_or(0.0, |s| (*first as f64 - s.0 as f64) / 1000.0);
        let _ = writeln!(
            report,
            "kid {kid}: access tokens accepted during the load by instances {instances:?}, first at {since:.1} s"
        );
    }
    for (kid, instances) in &final_kids {
        let _ = writeln!(report, "kid {kid}: fresh tokens accepted at the end by instances {instances:?} (up: {up:?})");
    }
    if args.expect_rotation && final_kids.keys().all(|k| Some(k) == first_kid.as_ref()) {
        total
            .fatal
            .push(format!("no token signed by a key other than the first one ({first_kid:?}): no rotation seen"));
    }
    if let (Some(first), Some(last)) = (total.samples.first(), total.samples.last()) {
        let _ = writeln!(
            report,
            "longest time without any successful answer: {:.2} s",
            longest_gap(&total.samples, first.0, last.0) as f64 / 1000.0
        );
    }
    if let (Some(first), Some(last)) = (total.samples.first(), total.samples.last()) {
        // Per time bucket and instance: answered / failed attempts.
        let bucket = (args.secs / 40).max(1) * 1000;
        let _ = writeln!(report, "timeline, per {} s: answered/failed attempts on each instance", bucket / 1000);
        let mut start = first.0;
        while start <= last.0 {
            let mut line = format!("  {:>5} s", (start - first.0) / 1000);
            for i in 0..urls.len() {
                let in_bucket = total.samples.iter().filter(|(t, s, _)| *t >= start && *t < start + bucket && *s == i);
                let (ok, failed) = in_bucket
                    .fold((0, 0), |(ok, failed), (_, _, good)| if *good { (ok + 1, failed) } else { (ok, failed + 1) });
                let _ = write!(line, "  {ok:>5}/{failed:<4}");
            }
            let _ = writeln!(report, "{line}");
            start += bucket;
        }
    }
    if let Some(path) = &args.events {
        analyse_events(path, &total.samples, urls.len(), args.max_recovery_secs, &mut report, &mut total.fatal);
    }
    if let Some(path) = &args.chains_out {
        let mut out = String::new();
        for (sid, jtis) in &total.chains {
            let _ = writeln!(out, "{sid} {}", jtis.len());
        }
        std::fs::write(path, out).with_context(|| format!("writing {path}"))?;
    }
    print!("{report}");
    if total.fatal.is_empty() {
        println!("RESULT ok");
        Ok(())
    } else {
        for what in &total.fatal {
            println!("FAIL {what}");
        }
        println!("RESULT FAILED ({} problems)", total.fatal.len());
        std::process::exit(1);
    }
}
