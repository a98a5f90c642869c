//! The HTTP key source against a tiny local server: JWKS URL, discovery,
//! `Cache-Control`, and an unreachable issuer.
#![cfg(feature = "remote")]
#![expect(clippy::unwrap_used, reason = "a test should fail loudly at the first surprise")]

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::{claims, jwks, now, TestKey, AUDIENCE};
use signet_verify::{RefreshPolicy, Rules, Verifier};

/// Path → status, `Cache-Control`, body.
type Routes = Arc<Mutex<HashMap<String, (u16, String, String)>>>;

/// Serves fixed responses by path on 127.0.0.1 and counts requests.
struct Server {
    base: String,
    routes: Routes,
    hits: Arc<Mutex<HashMap<String, usize>>>,
}

impl Server {
    fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let routes: Routes = Arc::default();
        let hits: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let (r, h) = (routes.clone(), hits.clone());
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                reader.read_line(&mut request_line).unwrap();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                        break;
                    }
                }
                let path = request_line.split(' ').nth(1).unwrap_or("").to_owned();
                *h.lock().unwrap().entry(path.clone()).or_default() += 1;
                let (status, cache_control, body) =
                    r.lock().unwrap().get(&path).cloned().unwrap_or((404, String::new(), "{}".into()));
                let response = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n\
                     cache-control: {cache_control}\r\ncontent-length: {}\r\n\
                     connection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes());
            }
        });
        Server { base, routes, hits }
    }

    fn route(&self, path: &str, status: u16, cache_control: &str, body: String) {
        self.routes.lock().unwrap().insert(path.to_owned(), (status, cache_control.to_owned(), body));
    }

    fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

fn quick_policy() -> RefreshPolicy {
    RefreshPolicy {
        min_refresh: Duration::from_millis(200),
        unknown_kid_interval: Duration::from_millis(100),
        retry_initial: Duration::from_millis(50),
        retry_max: Duration::from_millis(50),
        ..RefreshPolicy::default()
    }
}

#[test]
fn jwks_url_with_its_own_issuer() {
    let server = Server::start();
    let key = TestKey::es256("k1");
    let jwks_json = serde_json::to_string(&jwks(&[&key])).unwrap();
    server.route("/keys", 200, "public, max-age=300", jwks_json);

    // The JWKS lives at another address than the `iss` names (as in signet's tests).
    let verifier =
        Verifier::builder(Rules::new(common::ISSUER, AUDIENCE)).jwks_url(server.url("/keys")).build().unwrap();
    assert!(verifier.wait_for_keys(Duration::from_secs(5)));
    assert!(verifier.verify(&key.sign(&claims(now(), &[]))).is_ok());
    assert_eq!(server.hits("/keys"), 1);
}

#[test]
fn discovery_finds_the_jwks_and_checks_the_issuer() {
    let server = Server::start();
    let key = TestKey::es256("k1");
    server.route("/keys", 200, "max-age=300", serde_json::to_string(&jwks(&[&key])).unwrap());
    let issuer = server.base.clone();
    let discovery = serde_json::json!({"issuer": issuer, "jwks_uri": server.url("/keys")});
    server.route("/.well-known/openid-configuration", 200, "", discovery.to_string());

    let verifier = Verifier::builder(Rules::new(issuer.clone(), AUDIENCE)).discover().build().unwrap();
    assert!(verifier.wait_for_keys(Duration::from_secs(5)));
    let mut c = claims(now(), &[]);
    c.iss = issuer.clone();
    assert!(verifier.verify(&key.sign(&c)).is_ok());

    // A discovery document naming another issuer is refused.
    let wrong = Verifier::builder(Rules::new(format!("{issuer}/"), AUDIENCE))
        .discover()
        .refresh_policy(quick_policy())
        .build()
        .unwrap();
    assert!(!wrong.wait_for_keys(Duration::from_millis(300)));
    assert!(wrong.key_source_stats().unwrap().failures >= 1);
}

#[test]
fn max_age_drives_the_schedule_and_outages_keep_the_keys() {
    let server = Server::start();
    let key = TestKey::es256("k1");
    let jwks_json = serde_json::to_string(&jwks(&[&key])).unwrap();
    // max-age=0 is raised to the policy's 200 ms minimum.
    server.route("/keys", 200, "max-age=0", jwks_json);
    let verifier = Verifier::builder(Rules::new(common::ISSUER, AUDIENCE))
        .jwks_url(server.url("/keys"))
        .refresh_policy(quick_policy())
        .build()
        .unwrap();
    assert!(verifier.wait_for_keys(Duration::from_secs(5)));
    thread::sleep(Duration::from_millis(700));
    let hits = server.hits("/keys");
    assert!((3..=5).contains(&hits), "{hits} fetches in 700 ms");

    // The issuer answers 503: the last good keys stay.
    server.route("/keys", 503, "", "{}".into());
    thread::sleep(Duration::from_millis(500));
    let stats = verifier.key_source_stats().unwrap();
    assert!(stats.failures >= 1, "{stats:?}");
    assert!(verifier.verify(&key.sign(&claims(now(), &[]))).is_ok());
}

#[test]
fn unreachable_issuer_is_retried() {
    // A port nobody listens on.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let verifier = Verifier::builder(Rules::new(common::ISSUER, AUDIENCE))
        .jwks_url(format!("http://127.0.0.1:{port}/keys"))
        .refresh_policy(quick_policy())
        .build()
        .unwrap();
    assert!(!verifier.wait_for_keys(Duration::from_millis(300)));
    let stats = verifier.key_source_stats().unwrap();
    assert!(stats.failures >= 2 && stats.successes == 0, "{stats:?}");
}
