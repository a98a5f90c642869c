//! The refreshing key source, with an in-memory fetcher: schedule, unknown-kid
//! refetch and its rate limit, negative cache, keeping the last good keys.
#![expect(clippy::unwrap_used, reason = "a test should fail loudly at the first surprise")]

mod common;

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

use common::{claims, jwks, now, rules, TestKey};
use jsonwebtoken::jwk::JwkSet;
use signet_verify::{FetchError, FetchJwks, Fetched, RefreshPolicy, Verification, Verifier, VerifyError};

#[derive(Clone)]
struct Source {
    state: Arc<Mutex<(Result<Fetched, String>, Duration)>>,
    fetches: Arc<AtomicUsize>,
}

impl Source {
    fn new(keys: &[&TestKey], max_age: Option<Duration>) -> Source {
        Source {
            state: Arc::new(Mutex::new((Ok(Fetched { jwks: jwks(keys), max_age }), Duration::ZERO))),
            fetches: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn serve(&self, jwks: JwkSet) {
        self.state.lock().unwrap().0 = Ok(Fetched { jwks, max_age: None });
    }

    fn fail(&self) {
        self.state.lock().unwrap().0 = Err("issuer unreachable".into());
    }

    fn delay(&self, delay: Duration) {
        self.state.lock().unwrap().1 = delay;
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

impl FetchJwks for Source {
    fn fetch(&mut self) -> Result<Fetched, FetchError> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        let (response, delay) = self.state.lock().unwrap().clone();
        thread::sleep(delay);
        response.map_err(Into::into)
    }
}

fn policy() -> RefreshPolicy {
    RefreshPolicy {
        min_refresh: Duration::from_secs(3600),
        max_refresh: Duration::from_secs(3600),
        default_refresh: Duration::from_secs(3600),
        unknown_kid_interval: Duration::from_millis(300),
        negative_ttl: Duration::from_secs(5),
        retry_initial: Duration::from_secs(3600),
        retry_max: Duration::from_secs(3600),
        ..RefreshPolicy::default()
    }
}

fn start(source: &Source, policy: RefreshPolicy) -> Arc<Verifier> {
    let verifier = Verifier::builder(rules()).fetcher(source.clone()).refresh_policy(policy).build().unwrap();
    assert!(verifier.wait_for_keys(Duration::from_secs(5)));
    verifier
}

/// A minimal executor: the futures here need no runtime.
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
        thread::park_timeout(Duration::from_secs(10));
    }
}

/// A token with a random `kid` and a garbage signature.
fn forged(kid: &str) -> String {
    let key = TestKey::es256(kid);
    key.sign(&claims(now(), &["admin"]))
}

#[test]
fn first_fetch_loads_the_keys() {
    let key = TestKey::es256("k1");
    let source = Source::new(&[&key], None);
    let verifier = start(&source, policy());
    assert!(verifier.verify(&key.sign(&claims(now(), &[]))).is_ok());
    let stats = verifier.key_source_stats().unwrap();
    assert_eq!((stats.fetches, stats.successes, stats.failures), (1, 1, 0));
}

#[test]
fn requests_wait_for_the_first_fetch_instead_of_failing() {
    let key = TestKey::es256("k1");
    let source = Source::new(&[&key], None);
    source.delay(Duration::from_millis(300));
    let verifier = Verifier::builder(rules()).fetcher(source.clone()).refresh_policy(policy()).build().unwrap();
    let token = key.sign(&claims(now(), &[]));
    // The sync path never waits...
    assert_eq!(verifier.verify(&token), Err(VerifyError::UnknownKid));
    // ...the async one waits for the fetch in flight, without a new one.
    assert!(block_on(verifier.verify_async(&token)).is_ok());
    assert_eq!(source.fetches(), 1);
}

#[test]
fn unknown_kid_refetches_once_then_verifies() {
    let old = TestKey::es256("old");
    let new = TestKey::es256("new");
    let source = Source::new(&[&old], None);
    let verifier = start(&source, policy());
    source.serve(jwks(&[&old, &new]));
    thread::sleep(Duration::from_millis(350)); // past the rate limit

    let token = new.sign(&claims(now(), &[]));
    let Verification::WaitForKeys(refreshed) = verifier.verify_or_wait(&token) else {
        panic!("an unknown kid past the interval starts a refetch");
    };
    block_on(refreshed);
    assert!(verifier.verify(&token).is_ok());
    let stats = verifier.key_source_stats().unwrap();
    assert_eq!(stats.fetches, 2);
    assert_eq!(stats.unknown_kid_refetches, 1);
}

#[test]
fn forged_kid_flood_costs_at_most_one_fetch_per_interval() {
    let key = TestKey::es256("k1");
    let source = Source::new(&[&key], None);
    source.delay(Duration::from_millis(50));
    let verifier = start(&source, policy());
    thread::sleep(Duration::from_millis(350));

    let started = Instant::now();
    let tokens: Vec<String> = (0..300).map(|i| forged(&format!("forged-{i}"))).collect();
    for token in &tokens {
        assert_eq!(block_on(verifier.verify_async(token)), Err(VerifyError::UnknownKid));
    }
    let elapsed = started.elapsed();
    let intervals = (elapsed.as_millis() / 300) as usize + 1;
    let refetches = source.fetches() - 1;
    assert!(refetches >= 1, "the first forged kid may refetch");
    assert!(refetches <= intervals, "{refetches} refetches in {elapsed:?} ({intervals} intervals)");
    // The genuine key still works.
    assert!(verifier.verify(&key.sign(&claims(now(), &[]))).is_ok());
}

#[test]
fn a_kid_looked_for_is_not_looked_for_again_soon() {
    let key = TestKey::es256("k1");
    let source = Source::new(&[&key], None);
    let verifier = start(&source, policy());
    thread::sleep(Duration::from_millis(350));
    let token = forged("ghost");
    if let Verification::WaitForKeys(refreshed) = verifier.verify_or_wait(&token) {
        block_on(refreshed);
    }
    assert_eq!(source.fetches(), 2);
    thread::sleep(Duration::from_millis(350)); // the rate limit allows another
    assert!(matches!(verifier.verify_or_wait(&token), Verification::Done(Err(VerifyError::UnknownKid))));
    assert_eq!(source.fetches(), 2, "negative cache");
    // Another unknown kid may refetch.
    assert!(matches!(verifier.verify_or_wait(&forged("other")), Verification::WaitForKeys(_)));
}

#[test]
fn last_good_keys_survive_failures_and_empty_documents() {
    let key = TestKey::es256("k1");
    let source = Source::new(&[&key], None);
    let verifier = start(&source, policy());
    let token = key.sign(&claims(now(), &[]));

    for breakage in 0..2 {
        if breakage == 0 {
            source.fail();
        } else {
            source.serve(JwkSet { keys: vec![] });
        }
        thread::sleep(Duration::from_millis(350));
        if let Verification::WaitForKeys(refreshed) = verifier.verify_or_wait(&forged(&format!("new-{breakage}"))) {
            block_on(refreshed);
        }
        assert!(verifier.verify(&token).is_ok(), "breakage {breakage}");
    }
    let stats = verifier.key_source_stats().unwrap();
    assert_eq!((stats.fetches, stats.successes, stats.failures), (3, 1, 2));
}

#[test]
fn schedule_honours_max_age_within_bounds() {
    let key = TestKey::es256("k1");
    let bounded = |min: u64, max: u64| RefreshPolicy {
        min_refresh: Duration::from_millis(min),
        max_refresh: Duration::from_millis(max),
        ..policy()
    };
    // max-age 0 is raised to the minimum (100 ms); a day is cut to the maximum.
    for (max_age, policy) in [(Duration::ZERO, bounded(100, 10_000)), (Duration::from_secs(86_400), bounded(10, 100))] {
        let source = Source::new(&[&key], Some(max_age));
        let _verifier = start(&source, policy);
        thread::sleep(Duration::from_millis(550));
        let fetches = source.fetches();
        assert!((4..=7).contains(&fetches), "{fetches} fetches for {max_age:?}");
    }
    // Within the bounds, max-age itself.
    let source = Source::new(&[&key], Some(Duration::from_millis(1500)));
    let _verifier = start(&source, bounded(10, 10_000));
    thread::sleep(Duration::from_millis(550));
    assert_eq!(source.fetches(), 1);
}

#[test]
fn failed_fetches_back_off() {
    let key = TestKey::es256("k1");
    let source = Source::new(&[&key], None);
    source.fail();
    let verifier = Verifier::builder(rules())
        .fetcher(source.clone())
        .refresh_policy(RefreshPolicy {
            retry_initial: Duration::from_millis(50),
            retry_max: Duration::from_millis(400),
            ..policy()
        })
        .build()
        .unwrap();
    assert!(!verifier.wait_for_keys(Duration::from_millis(1000)));
    // Attempts at 0, 50, 150, 350, 750 ms: five, give or take scheduling.
    let fetches = source.fetches();
    assert!((4..=6).contains(&fetches), "{fetches}");
    source.serve(jwks(&[&key]));
    assert!(verifier.wait_for_keys(Duration::from_secs(2)));
    assert!(verifier.verify(&key.sign(&claims(now(), &[]))).is_ok());
}

#[test]
fn dropping_the_verifier_stops_the_thread() {
    let key = TestKey::es256("k1");
    let source = Source::new(&[&key], Some(Duration::ZERO));
    let verifier = start(&source, RefreshPolicy { min_refresh: Duration::from_millis(20), ..policy() });
    thread::sleep(Duration::from_millis(100));
    drop(verifier);
    thread::sleep(Duration::from_millis(50));
    let after_drop = source.fetches();
    thread::sleep(Duration::from_millis(200));
    assert_eq!(source.fetches(), after_drop);
}
