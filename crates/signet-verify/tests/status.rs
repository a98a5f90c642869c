//! Status-list checking against a mock signet: lists with ETags, the event
//! stream, outages and bad lists.
#![cfg(feature = "remote")]
#![expect(clippy::unwrap_used, reason = "a test should fail loudly at the first surprise")]

mod common;

use std::collections::HashMap;
use std::future::Future;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::pin::pin;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::{claims, jwks, now, TestKey, AUDIENCE};
use jsonwebtoken::Header;
use signet_verify::{
    BuildError, Rules, Status, StatusListPolicy, StatusListRef, Verifier, VerifyError, STATUS_LIST_TYPE,
};

/// One list as served: the token (or any body), its ETag, and an override status.
#[derive(Clone)]
struct Served {
    body: String,
    etag: String,
    status: u16,
}

#[derive(Default)]
struct Shared {
    lists: HashMap<String, Served>,
    /// Requests per path, and the `200`s among them.
    hits: HashMap<String, usize>,
    full: HashMap<String, usize>,
    subscribers: Vec<Sender<String>>,
    /// Events every new subscriber gets first.
    hello: Vec<String>,
}

/// A mock signet on 127.0.0.1: status lists with ETag/304, and the event stream.
struct Signet {
    base: String,
    shared: Arc<Mutex<Shared>>,
}

impl Signet {
    fn start() -> Signet {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shared: Arc<Mutex<Shared>> = Arc::default();
        let s = shared.clone();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let s = s.clone();
                thread::spawn(move || serve(stream, &s));
            }
        });
        Signet { base, shared }
    }

    fn uri(&self, n: u32) -> String {
        format!("{}/v1/status-lists/{n}", self.base)
    }

    fn serve_list(&self, n: u32, body: String, version: u64) {
        let path = format!("/v1/status-lists/{n}");
        let served = Served { body, etag: format!("\"{n}-{version}\""), status: 200 };
        self.shared.lock().unwrap().lists.insert(path, served);
    }

    fn fail_list(&self, n: u32, status: u16) {
        let path = format!("/v1/status-lists/{n}");
        self.shared.lock().unwrap().lists.get_mut(&path).unwrap().status = status;
    }

    /// Sends a `status` event to every subscriber.
    fn announce(&self, n: u32, version: u64) {
        let event = format!("event: status\ndata: {{\"uri\":\"{}\",\"version\":{version}}}\n\n", self.uri(n));
        let mut shared = self.shared.lock().unwrap();
        shared.subscribers.retain(|tx| tx.send(event.clone()).is_ok());
    }

    fn subscribers(&self) -> usize {
        self.shared.lock().unwrap().subscribers.len()
    }

    fn hits(&self, path: &str) -> usize {
        self.shared.lock().unwrap().hits.get(path).copied().unwrap_or(0)
    }

    fn total_hits(&self) -> usize {
        self.shared.lock().unwrap().hits.values().sum()
    }

    fn full(&self, path: &str) -> usize {
        self.shared.lock().unwrap().full.get(path).copied().unwrap_or(0)
    }
}

fn serve(mut stream: TcpStream, shared: &Mutex<Shared>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut if_none_match = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("if-none-match") {
                if_none_match = Some(value.trim().to_owned());
            }
        }
    }
    let path = request_line.split(' ').nth(1).unwrap_or("").to_owned();
    let mut locked = shared.lock().unwrap();
    *locked.hits.entry(path.clone()).or_default() += 1;
    if path == "/v1/status-lists/events" {
        let (tx, rx) = channel();
        for hello in &locked.hello {
            tx.send(hello.clone()).unwrap();
        }
        locked.subscribers.push(tx);
        drop(locked);
        return stream_events(stream, &rx);
    }
    let served = locked.lists.get(&path).cloned();
    let response = match served {
        Some(list) if list.status != 200 => format!("HTTP/1.1 {} X\r\ncontent-length: 0\r\n\r\n", list.status),
        Some(list) if if_none_match.as_deref() == Some(list.etag.as_str()) => {
            format!("HTTP/1.1 304 Not Modified\r\netag: {}\r\ncontent-length: 0\r\n\r\n", list.etag)
        }
        Some(list) => {
            *locked.full.entry(path).or_default() += 1;
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/statuslist+jwt\r\netag: {}\r\n\
                 content-length: {}\r\n\r\n{}",
                list.etag,
                list.body.len(),
                list.body
            )
        }
        None => "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n".to_owned(),
    };
    drop(locked);
    let _ = stream.write_all(response.as_bytes());
}

fn stream_events(mut stream: TcpStream, events: &Receiver<String>) {
    let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n\r\n: hello\n\n";
    if stream.write_all(head.as_bytes()).is_err() {
        return;
    }
    while let Ok(event) = events.recv() {
        if stream.write_all(event.as_bytes()).and_then(|()| stream.flush()).is_err() {
            return;
        }
    }
}

/// The bytes of a list where the indices in `revoked` are 1.
fn bits(len: usize, revoked: &[u64]) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    for idx in revoked {
        bytes[(idx / 8) as usize] |= 1 << (idx % 8);
    }
    bytes
}

fn lst(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(miniz_oxide::deflate::compress_to_vec_zlib(bytes, 6))
}

fn list_claims(issuer: &str, uri: &str, lst: &str, ttl: u64) -> serde_json::Value {
    let now = now();
    serde_json::json!({
        "iss": issuer, "sub": uri, "iat": now, "exp": now + 86_400, "ttl": ttl,
        "status_list": {"bits": 1, "lst": lst},
    })
}

fn list_header(key: &TestKey) -> Header {
    let mut header = key.header();
    header.typ = Some(STATUS_LIST_TYPE.to_owned());
    header
}

/// A signed list as signet serves it.
fn list_token(key: &TestKey, issuer: &str, uri: &str, bytes: &[u8], ttl: u64) -> String {
    key.sign_with(&list_header(key), &list_claims(issuer, uri, &lst(bytes), ttl))
}

/// An access token naming index `idx` of list `uri`.
fn token(key: &TestKey, issuer: &str, uri: &str, idx: u64) -> String {
    let mut c = claims(now(), &["user"]);
    c.iss = issuer.to_owned();
    c.status = Some(Status { status_list: StatusListRef { idx, uri: uri.to_owned() } });
    key.sign(&c)
}

fn policy() -> StatusListPolicy {
    StatusListPolicy {
        retry_initial: Duration::from_millis(50),
        retry_max: Duration::from_millis(100),
        min_ttl: Duration::from_millis(100),
        ..StatusListPolicy::default()
    }
}

fn verifier(signet: &Signet, key: &TestKey, policy: StatusListPolicy) -> Arc<Verifier> {
    Verifier::builder(Rules::new(signet.base.clone(), AUDIENCE))
        .jwks(&jwks(&[key]))
        .status_lists(true)
        .status_policy(policy)
        .build()
        .unwrap()
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// A minimal executor: the crate needs no particular runtime.
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        thread::park_timeout(Duration::from_millis(100));
    }
}

/// Loads list 1 by a first verification and waits for it.
fn warm(verifier: &Verifier, token: &str) -> Result<signet_verify::AccessClaims, VerifyError> {
    block_on(verifier.verify_async(token))
}

#[test]
fn a_flipped_bit_refuses_a_cached_token_after_the_event() {
    let signet = Signet::start();
    let key = TestKey::es256("k1");
    let uri = signet.uri(1);
    // A long ttl: only the event can bring the change quickly.
    signet.serve_list(1, list_token(&key, &signet.base, &uri, &bits(16, &[3]), 3600), 1);
    let verifier = verifier(&signet, &key, policy());
    let good = token(&key, &signet.base, &uri, 5);
    let revoked = token(&key, &signet.base, &uri, 3);

    // Not loaded yet: the async path waits for the first fetch.
    assert!(warm(&verifier, &good).is_ok());
    assert_eq!(verifier.verify(&revoked), Err(VerifyError::Revoked));
    assert!(verifier.verify(&good).is_ok());
    assert!(verifier.cache_len() >= 1, "the token is cached");
    wait_until("the event stream", Duration::from_secs(5), || signet.subscribers() == 1);

    // signet revokes index 5 and announces version 2.
    signet.serve_list(1, list_token(&key, &signet.base, &uri, &bits(16, &[3, 5]), 3600), 2);
    let flipped = Instant::now();
    signet.announce(1, 2);
    wait_until("the refetch", Duration::from_secs(2), || verifier.verify(&good).is_err());
    assert!(flipped.elapsed() < Duration::from_secs(1), "{:?}", flipped.elapsed());
    assert_eq!(verifier.verify(&good), Err(VerifyError::Revoked));
    let stats = verifier.status_list_stats().unwrap();
    assert_eq!(stats.loaded, 2, "{stats:?}");
    assert!(stats.events >= 1, "{stats:?}");

    // An event for an old version asks for nothing.
    let fetches = verifier.status_list_stats().unwrap().fetches;
    signet.announce(1, 2);
    thread::sleep(Duration::from_millis(200));
    assert_eq!(verifier.status_list_stats().unwrap().fetches, fetches);
}

#[test]
fn a_status_uri_outside_the_issuer_is_refused_and_never_fetched() {
    let signet = Signet::start();
    let key = TestKey::es256("k1");
    let verifier = verifier(&signet, &key, policy());
    for uri in [
        format!("{}/evil/1", signet.base),
        format!("{}/v1/status-lists/events", signet.base),
        format!("{}/v1/status-lists/1?x=1", signet.base),
        format!("{}/v1/status-lists/1/../../evil", signet.base),
        "https://evil.example.com/v1/status-lists/1".to_owned(),
    ] {
        let t = token(&key, &signet.base, &uri, 0);
        assert_eq!(warm(&verifier, &t), Err(VerifyError::UntrustedStatusList), "{uri}");
        // Also when cached.
        assert_eq!(verifier.verify(&t), Err(VerifyError::UntrustedStatusList), "{uri}");
    }
    thread::sleep(Duration::from_millis(200));
    assert_eq!(signet.total_hits(), 0, "no request at all");
    assert_eq!(verifier.status_list_stats().unwrap().fetches, 0);
}

#[test]
fn ttl_refetches_with_if_none_match_and_304_keeps_the_copy_fresh() {
    let signet = Signet::start();
    let key = TestKey::es256("k1");
    let uri = signet.uri(7);
    signet.serve_list(7, list_token(&key, &signet.base, &uri, &bits(4, &[]), 1), 1);
    // max_stale 1.5 s: without the 304s confirming it, the copy would go stale.
    let verifier =
        verifier(&signet, &key, StatusListPolicy { events: false, max_stale: Duration::from_millis(1500), ..policy() });
    let t = token(&key, &signet.base, &uri, 2);
    assert!(warm(&verifier, &t).is_ok());
    thread::sleep(Duration::from_millis(2600));
    let (hits, full) = (signet.hits("/v1/status-lists/7"), signet.full("/v1/status-lists/7"));
    // ttl 1 s, but at most max_stale / 2 = 750 ms: 3 to 5 fetches in 2.6 s, one full.
    assert!((3..=5).contains(&hits), "{hits} fetches");
    assert_eq!(full, 1, "only the first fetch transfers the list");
    let stats = verifier.status_list_stats().unwrap();
    assert_eq!(stats.not_modified as usize, hits - 1, "{stats:?}");
    assert!(verifier.verify(&t).is_ok(), "304s keep the copy fresh");
}

#[test]
fn an_unreachable_signet_fails_closed_after_max_stale() {
    let signet = Signet::start();
    let key = TestKey::es256("k1");
    let uri = signet.uri(1);
    signet.serve_list(1, list_token(&key, &signet.base, &uri, &bits(2, &[1]), 1), 1);
    let verifier = verifier(&signet, &key, StatusListPolicy { max_stale: Duration::from_secs(1), ..policy() });
    let t = token(&key, &signet.base, &uri, 0);
    assert!(warm(&verifier, &t).is_ok());
    signet.fail_list(1, 503);
    thread::sleep(Duration::from_millis(400));
    assert!(verifier.verify(&t).is_ok(), "the last good copy serves within max_stale");
    thread::sleep(Duration::from_millis(1000));
    assert_eq!(verifier.verify(&t), Err(VerifyError::StatusUnavailable));
    assert!(verifier.status_list_stats().unwrap().failures >= 2);

    // signet is back: the next fetch brings the list back to use.
    signet.serve_list(1, list_token(&key, &signet.base, &uri, &bits(2, &[1]), 1), 1);
    wait_until("recovery", Duration::from_secs(2), || verifier.verify(&t).is_ok());
}

#[test]
fn fail_open_accepts_on_a_stale_copy_but_keeps_its_revocations() {
    let signet = Signet::start();
    let key = TestKey::es256("k1");
    let uri = signet.uri(1);
    signet.serve_list(1, list_token(&key, &signet.base, &uri, &bits(2, &[1]), 1), 1);
    let verifier = verifier(
        &signet,
        &key,
        StatusListPolicy { max_stale: Duration::from_millis(500), fail_open: true, ..policy() },
    );
    let (good, revoked) = (token(&key, &signet.base, &uri, 0), token(&key, &signet.base, &uri, 1));
    assert!(warm(&verifier, &good).is_ok());
    signet.fail_list(1, 503);
    thread::sleep(Duration::from_millis(900));
    assert!(verifier.verify(&good).is_ok(), "fail-open");
    assert_eq!(verifier.verify(&revoked), Err(VerifyError::Revoked));

    // A list that never loads: fail-open accepts, fail-closed refuses.
    let never = token(&key, &signet.base, &signet.uri(2), 0);
    assert!(warm(&verifier, &never).is_ok());
    let closed = self::verifier(&signet, &key, policy());
    assert_eq!(warm(&closed, &never), Err(VerifyError::StatusUnavailable));
    assert_eq!(closed.verify(&never), Err(VerifyError::StatusUnavailable));
}

#[test]
fn bad_lists_are_rejected_and_the_old_copy_kept() {
    let signet = Signet::start();
    let key = TestKey::es256("k1");
    let stranger = TestKey::es256("k1");
    let other_kid = TestKey::es256("k9");
    let uri = signet.uri(1);
    let base = signet.base.clone();
    signet.serve_list(1, list_token(&key, &base, &uri, &bits(2, &[3]), 3600), 1);
    let verifier = verifier(&signet, &key, policy());
    let (good, revoked) = (token(&key, &base, &uri, 4), token(&key, &base, &uri, 3));
    assert!(warm(&verifier, &good).is_ok());
    wait_until("the event stream", Duration::from_secs(5), || signet.subscribers() == 1);

    let header = list_header(&key);
    let bomb = URL_SAFE_NO_PAD
        .encode(miniz_oxide::deflate::compress_to_vec_zlib(&vec![0u8; signet_verify::MAX_STATUS_LIST_BYTES + 1], 9));
    let mut at_jwt = key.header();
    at_jwt.typ = Some("at+jwt".to_owned());
    let mut expired = list_claims(&base, &uri, &lst(&[0]), 3600);
    expired["exp"] = serde_json::json!(now() - 3600);
    let mut two_bits = list_claims(&base, &uri, &lst(&[0]), 3600);
    two_bits["status_list"]["bits"] = serde_json::json!(2);
    let bad = [
        ("garbage zlib", key.sign_with(&header, &list_claims(&base, &uri, &URL_SAFE_NO_PAD.encode(b"nope"), 3600))),
        ("lst not base64", key.sign_with(&header, &list_claims(&base, &uri, "!!!", 3600))),
        ("zlib bomb", key.sign_with(&header, &list_claims(&base, &uri, &bomb, 3600))),
        ("wrong sub", key.sign_with(&header, &list_claims(&base, &signet.uri(2), &lst(&[0]), 3600))),
        ("wrong iss", key.sign_with(&header, &list_claims("https://evil.example.com", &uri, &lst(&[0]), 3600))),
        ("wrong typ", key.sign_with(&at_jwt, &list_claims(&base, &uri, &lst(&[0]), 3600))),
        ("expired", key.sign_with(&header, &expired)),
        ("two bits", key.sign_with(&header, &two_bits)),
        ("forged signature", stranger.sign_with(&header, &list_claims(&base, &uri, &lst(&[0]), 3600))),
        ("unknown kid", other_kid.sign_with(&list_header(&other_kid), &list_claims(&base, &uri, &lst(&[0]), 3600))),
        ("not a JWT", "<html>proxy error</html>".to_owned()),
    ];
    for (version, (what, body)) in (2..).zip(bad) {
        let failures = verifier.status_list_stats().unwrap().failures;
        signet.serve_list(1, body, version);
        signet.announce(1, version);
        wait_until(what, Duration::from_secs(3), || verifier.status_list_stats().unwrap().failures > failures);
        assert!(verifier.verify(&good).is_ok(), "{what}: old copy kept");
        assert_eq!(verifier.verify(&revoked), Err(VerifyError::Revoked), "{what}: old copy kept");
    }
    assert_eq!(verifier.status_list_stats().unwrap().loaded, 1);
}

#[test]
fn the_sync_path_never_waits_and_an_unknown_list_fails_closed() {
    let signet = Signet::start();
    let key = TestKey::es256("k1");
    let uri = signet.uri(3);
    signet.serve_list(3, list_token(&key, &signet.base, &uri, &bits(1, &[]), 60), 1);
    let verifier = verifier(&signet, &key, policy());
    let t = token(&key, &signet.base, &uri, 0);
    // `verify` does no I/O: the list is not there yet.
    assert_eq!(verifier.verify(&t), Err(VerifyError::StatusUnavailable));
    wait_until("the background fetch", Duration::from_secs(2), || verifier.verify(&t).is_ok());
    // An index beyond the list is not known to be valid.
    assert_eq!(verifier.verify(&token(&key, &signet.base, &uri, 8)), Err(VerifyError::StatusUnavailable));
    // A 404 list: refused after the fetch.
    assert_eq!(warm(&verifier, &token(&key, &signet.base, &signet.uri(99), 0)), Err(VerifyError::StatusUnavailable));
}

#[test]
fn tokens_without_status_and_verifiers_without_checking_pass() {
    let signet = Signet::start();
    let key = TestKey::es256("k1");
    let verifier = verifier(&signet, &key, policy());
    let mut c = claims(now(), &[]);
    c.iss = signet.base.clone();
    assert!(verifier.verify(&key.sign(&c)).is_ok());
    // Static keys: status checking is off unless asked for.
    let off = Verifier::builder(Rules::new(signet.base.clone(), AUDIENCE)).jwks(&jwks(&[&key])).build().unwrap();
    assert!(!off.checks_status());
    assert!(off.verify(&token(&key, &signet.base, "https://evil.example.com/x", 0)).is_ok());
    assert_eq!(signet.total_hits(), 0);
}

#[test]
fn load_status_list_checks_like_a_fetch() {
    let key = TestKey::es256("k1");
    let issuer = "https://id.example.com";
    let uri = format!("{issuer}/v1/status-lists/1");
    let verifier = Verifier::builder(Rules::new(issuer, AUDIENCE))
        .jwks(&jwks(&[&key]))
        .status_lists(true)
        .status_policy(StatusListPolicy { events: false, ..StatusListPolicy::default() })
        .build()
        .unwrap();
    verifier.load_status_list(&uri, &list_token(&key, issuer, &uri, &bits(1, &[2]), 60)).unwrap();
    assert!(verifier.verify(&token(&key, issuer, &uri, 1)).is_ok());
    assert_eq!(verifier.verify(&token(&key, issuer, &uri, 2)), Err(VerifyError::Revoked));
    let other = format!("{issuer}/v1/status-lists/2");
    assert!(verifier.load_status_list(&other, &list_token(&key, issuer, &uri, &bits(1, &[]), 60)).is_err());
    assert!(verifier.load_status_list("https://evil.example.com/1", "x").is_err());
}

#[test]
fn lists_are_fetched_from_the_status_origin_when_set() {
    let signet = Signet::start();
    let key = TestKey::es256("k1");
    // The issuer names a public URL; this service reaches signet elsewhere.
    let issuer = "https://id.example.com";
    let uri = format!("{issuer}/v1/status-lists/4");
    signet.serve_list(4, list_token(&key, issuer, &uri, &bits(1, &[1]), 60), 1);
    let verifier = Verifier::builder(Rules::new(issuer, AUDIENCE))
        .jwks(&jwks(&[&key]))
        .status_lists(true)
        .status_origin(signet.base.clone())
        .status_policy(policy())
        .build()
        .unwrap();
    assert!(warm(&verifier, &token(&key, issuer, &uri, 0)).is_ok());
    assert_eq!(verifier.verify(&token(&key, issuer, &uri, 1)), Err(VerifyError::Revoked));
    assert_eq!(signet.hits("/v1/status-lists/4"), 1);
    wait_until("the event stream", Duration::from_secs(5), || signet.subscribers() == 1);
    // Trust is still the issuer's: the origin's own URIs are not.
    let t = token(&key, issuer, &signet.uri(4), 0);
    assert_eq!(verifier.verify(&t), Err(VerifyError::UntrustedStatusList));
}

#[test]
fn plain_http_to_other_hosts_needs_an_explicit_opt_in() {
    let insecure = |b: signet_verify::VerifierBuilder| matches!(b.build(), Err(BuildError::InsecureUrl(_)));
    let rules = || Rules::new("http://id.example.com", AUDIENCE);
    assert!(insecure(Verifier::builder(rules()).discover()));
    assert!(insecure(Verifier::builder(common::rules()).jwks_url("http://10.0.0.5/keys")));
    // Status lists come from the issuer: an http issuer needs the opt-in too.
    let key = TestKey::es256("k1");
    assert!(insecure(Verifier::builder(rules()).jwks(&jwks(&[&key])).status_lists(true)));
    assert!(Verifier::builder(rules()).discover().allow_insecure_http(true).build().is_ok());
    assert!(Verifier::builder(common::rules())
        .allow_insecure_http(true)
        .jwks_url("http://10.0.0.5/keys")
        .build()
        .is_ok());
    assert!(Verifier::builder(common::rules()).jwks_url("http://127.0.0.1:9/keys").build().is_ok());
    assert!(Verifier::builder(common::rules()).jwks_url("https://keys.example.com/jwks").build().is_ok());
}
