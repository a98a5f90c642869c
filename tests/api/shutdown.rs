//! Graceful stop of the real binary: SIGTERM with a request in flight.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::backend_tests;
use crate::helpers::{TestApp, PASSWORD, TEST_MASTER_KEY};

/// `signet serve` on port 0; its stderr lines arrive on `lines`.
pub struct Served {
    pub child: Child,
    pub address: String,
    pub lines: mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

impl Served {
    pub fn start(db_url: &str, envs: &[(&str, &str)]) -> Served {
        let mut child = Command::new(env!("CARGO_BIN_EXE_signet"))
            .arg("serve")
            .env("SIGNET__DATABASE__URL", db_url)
            .env("SIGNET__SERVER__BIND", "127.0.0.1:0")
            .env("SIGNET__SERVER__WORKERS", "2")
            .env("SIGNET__KEYS__MASTER_KEY", TEST_MASTER_KEY)
            .env("RUST_LOG", "info")
            // A busy CI machine can take seconds to accept a PostgreSQL connection.
            .env("SIGNET__DATABASE__CONNECT_TIMEOUT_SECS", "30")
            .envs(envs.iter().copied())
            .env_remove("DATABASE_URL")
            .env_remove("SIGNET_CONFIG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("signet runs");
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut served = Served { child, address: String::new(), lines, seen: Vec::new() };
        let line = served.wait_for("listening on http://");
        let after = line.split("listening on http://").nth(1).unwrap();
        let port: String = after.split(':').nth(1).unwrap().chars().take_while(char::is_ascii_digit).collect();
        served.address = format!("http://127.0.0.1:{port}");
        served
    }

    /// The first stderr line containing `needle` (panics after 60 s).
    pub fn wait_for(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
                self.seen.push(line.clone());
                if line.contains(needle) {
                    return line;
                }
            }
        }
        panic!("no log line with {needle:?}; seen: {:#?}", self.seen);
    }

    pub fn signal(&self, name: &str) {
        let status = Command::new("kill").args([&format!("-{name}"), &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
    }

    /// Waits for the exit (60 s at most) and collects the remaining lines.
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(500)) {
                    self.seen.push(line);
                }
                return status;
            }
            assert!(Instant::now() < deadline, "signet did not exit");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn create_user(db_url: &str, username: &str, bcrypt_cost: &str) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_signet"))
        .args(["users", "create", username, "--password-stdin"])
        .env("SIGNET__DATABASE__URL", db_url)
        .env("SIGNET__PASSWORDS__BCRYPT_COST", bcrypt_cost)
        .env("SIGNET__KEYS__MASTER_KEY", TEST_MASTER_KEY)
        .env_remove("DATABASE_URL")
        .env_remove("SIGNET_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(format!("{PASSWORD}\n").as_bytes()).unwrap();
    assert!(child.wait().unwrap().success());
}

backend_tests!(sigterm_lets_the_request_in_flight_finish_and_exits_zero);

async fn sigterm_lets_the_request_in_flight_finish_and_exits_zero(app: TestApp) {
    // bcrypt cost 10 in a debug build: a login takes a second or more, long
    // enough to be in flight when the signal comes (and well within the
    // 30 s shutdown timeout, after which actix drops the connection).
    create_user(app.db.url(), "slowpoke", "10");
    let mut served = Served::start(app.db.url(), &[("SIGNET__PASSWORDS__BCRYPT_COST", "10")]);
    let address = served.address.clone();

    // A kept-alive connection that a load balancer's probe would use.
    let probe = reqwest::Client::new();
    assert_eq!(probe.get(format!("{address}/readyz")).send().await.unwrap().status(), StatusCode::OK);

    let login_url = format!("{address}/v1/auth/login");
    let started = Instant::now();
    let in_flight = tokio::spawn(async move {
        reqwest::Client::new().post(login_url).json(&json!({"username": "slowpoke", "password": PASSWORD})).send().await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    served.signal("TERM");
    served.wait_for("SIGTERM: stopping");

    // Ready no more: actix closes idle kept-alive connections as the stop
    // begins, so a probe gets 503 or no connection, never 200 (the 503 itself
    // is checked in process below). New connections are refused.
    if let Ok(ready) = probe.get(format!("{address}/readyz")).send().await {
        assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
    let fresh = reqwest::Client::new().get(format!("{address}/healthz")).send().await;
    assert!(fresh.is_err(), "a new connection was accepted after SIGTERM: {fresh:?}");

    // The login in flight completes.
    let res = in_flight.await.unwrap().expect("the in-flight login got an answer");
    assert_eq!(res.status(), StatusCode::OK, "after {:?}", started.elapsed());
    let pair: serde_json::Value = res.json().await.unwrap();
    assert!(pair["access_token"].is_string());

    let status = served.wait_exit();
    assert!(status.success(), "exit status {status:?}; log: {:#?}", served.seen);
    assert!(served.seen.iter().any(|l| l.contains("signet stopped")), "{:#?}", served.seen);
}

backend_tests!(readyz_answers_503_once_stopping_began);

/// The flag a signal sets: /readyz turns 503 while /healthz still answers.
async fn readyz_answers_503_once_stopping_began(app: TestApp) {
    let settings = crate::helpers::test_settings(app.db.url(), crate::helpers::defaults);
    let clock = std::sync::Arc::new(signet::clock::ManualClock::new());
    let instance = signet::Application::build(settings, clock).await.unwrap();
    let address = format!("http://127.0.0.1:{}", instance.port());
    let shutdown = instance.shutdown();
    let handle = instance.handle();
    tokio::spawn(instance.run_until_stopped());
    let client = reqwest::Client::new();
    assert_eq!(client.get(format!("{address}/readyz")).send().await.unwrap().status(), StatusCode::OK);
    shutdown.begin();
    let res = client.get(format!("{address}/readyz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(client.get(format!("{address}/healthz")).send().await.unwrap().status(), StatusCode::OK);
    handle.stop(true).await;
}
