//! Keys fetched from elsewhere and kept fresh by a background thread.
//!
//! A [`FetchJwks`] says how to get the JWKS (the `remote` feature brings an
//! HTTP one); the refresher decides when:
//!
//! - on a schedule: after each success, in the document's `Cache-Control:
//!   max-age`, bounded by [`RefreshPolicy::min_refresh`] and
//!   [`RefreshPolicy::max_refresh`] (`default_refresh` without one);
//! - at once when a token names an unknown `kid` (OIDC Core §10.1.1), but at
//!   most once per [`RefreshPolicy::unknown_kid_interval`], and not again for
//!   a `kid` that was already looked for within [`RefreshPolicy::negative_ttl`],
//!   so a flood of forged `kid`s costs the issuer at most one request per
//!   interval;
//! - after a failure, with exponential backoff; the last good key set stays
//!   in use meanwhile (a fetched document without one usable key counts as a
//!   failure, so a broken proxy cannot wipe the keys).
//!
//! Fetching never happens on the caller's thread: [`crate::Verifier::verify`]
//! only signals the thread. Async callers may wait for the refetch without
//! blocking ([`crate::Verifier::verify_async`], the actix extractor).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;

use crate::keys::KeySet;
use crate::verifier::Verifier;

/// A JWKS document as fetched, with how long it may be cached.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub jwks: JwkSet,
    /// `Cache-Control: max-age` of the response, if it had one.
    pub max_age: Option<Duration>,
}

/// Why a fetch failed (logged, never shown to clients).
pub type FetchError = Box<dyn std::error::Error + Send + Sync>;

/// Gets the current JWKS. Called on the refresher's own thread, one call at
/// a time; it may block, but must time out (the `remote` fetcher does, after
/// [`crate::remote::HttpFetcher`]'s timeout), since async callers waiting for
/// a refetch wait for it.
pub trait FetchJwks: Send + 'static {
    fn fetch(&mut self) -> Result<Fetched, FetchError>;

    /// Where it fetches from, for logs.
    fn describe(&self) -> String {
        "custom key source".to_owned()
    }
}

/// When to refetch. The defaults suit signet (`jwks_max_age_secs` 300).
#[derive(Debug, Clone)]
pub struct RefreshPolicy {
    /// Never refresh on schedule more often than this, whatever `max-age` says.
    pub min_refresh: Duration,
    /// Never keep a key set longer than this without trying a refresh.
    pub max_refresh: Duration,
    /// The schedule when the response has no `max-age`.
    pub default_refresh: Duration,
    /// At most one refetch for unknown `kid`s per this interval (measured
    /// from the start of the previous fetch of any kind).
    pub unknown_kid_interval: Duration,
    /// A `kid` still unknown after a fetch that began after it was seen does
    /// not trigger (nor wait for) another fetch for this long.
    pub negative_ttl: Duration,
    /// How many `kid`s the negative cache remembers.
    pub negative_capacity: usize,
    /// First retry after a failed fetch; doubles up to `retry_max`.
    pub retry_initial: Duration,
    pub retry_max: Duration,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        RefreshPolicy {
            min_refresh: Duration::from_secs(60),
            max_refresh: Duration::from_secs(3600),
            default_refresh: Duration::from_secs(300),
            unknown_kid_interval: Duration::from_secs(10),
            negative_ttl: Duration::from_secs(30),
            negative_capacity: 1024,
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
        }
    }
}

impl RefreshPolicy {
    fn schedule(&self, max_age: Option<Duration>) -> Duration {
        let min = self.min_refresh.min(self.max_refresh);
        max_age.unwrap_or(self.default_refresh).clamp(min, self.max_refresh)
    }

    fn backoff(&self, failures: u32) -> Duration {
        let factor = 1u32.checked_shl(failures.saturating_sub(1).min(20)).unwrap_or(u32::MAX);
        self.retry_initial.saturating_mul(factor).min(self.retry_max)
    }
}

/// Counters of a refreshing key source (for metrics and tests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeySourceStats {
    /// Fetches started (scheduled, retries and unknown-`kid` refetches).
    pub fetches: u64,
    /// Fetches that failed or brought no usable key.
    pub failures: u64,
    /// Fetches started because a token named an unknown `kid`.
    pub unknown_kid_refetches: u64,
    /// Unknown-`kid` tokens that did not start a fetch (rate limit or
    /// negative cache).
    pub unknown_kid_declined: u64,
    /// Successful fetches.
    pub successes: u64,
}

#[derive(Default)]
struct Counters {
    fetches: AtomicU64,
    failures: AtomicU64,
    unknown_kid_refetches: AtomicU64,
    unknown_kid_declined: AtomicU64,
    successes: AtomicU64,
}

struct State {
    shutdown: bool,
    /// A refetch was asked for and has not started.
    requested: bool,
    in_flight: bool,
    /// Fetch attempts started, and completed (success or not).
    starts: u64,
    generation: u64,
    last_start: Option<Instant>,
    next_due: Instant,
    /// Unknown `kid` → until when it may not trigger a refetch, and the
    /// number of fetches started when it was seen: it counts as absent only
    /// once a fetch started after that has completed.
    negative: HashMap<String, (Instant, u64)>,
    waiters: Vec<Waker>,
}

/// The state shared by the verifier (which asks) and the thread (which fetches).
pub(crate) struct Refresher {
    state: Mutex<State>,
    changed: Condvar,
    policy: RefreshPolicy,
    counters: Counters,
    source: String,
}

impl Refresher {
    /// Starts the refresher thread for `verifier`; the first fetch begins at once.
    pub(crate) fn start(
        fetcher: Box<dyn FetchJwks>,
        policy: RefreshPolicy,
    ) -> (Arc<Refresher>, impl FnOnce(Weak<Verifier>) -> std::io::Result<()>) {
        let refresher = Arc::new(Refresher {
            state: Mutex::new(State {
                shutdown: false,
                requested: true,
                in_flight: false,
                starts: 0,
                generation: 0,
                last_start: None,
                next_due: Instant::now(),
                negative: HashMap::new(),
                waiters: Vec::new(),
            }),
            changed: Condvar::new(),
            policy,
            counters: Counters::default(),
            source: fetcher.describe(),
        });
        let thread_refresher = refresher.clone();
        let spawn = move |verifier: Weak<Verifier>| {
            std::thread::Builder::new()
                .name("signet-verify-keys".to_owned())
                .spawn(move || thread_refresher.run(fetcher, verifier))
                .map(drop)
        };
        (refresher, spawn)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn stats(&self) -> KeySourceStats {
        let c = &self.counters;
        KeySourceStats {
            fetches: c.fetches.load(Ordering::Relaxed),
            failures: c.failures.load(Ordering::Relaxed),
            unknown_kid_refetches: c.unknown_kid_refetches.load(Ordering::Relaxed),
            unknown_kid_declined: c.unknown_kid_declined.load(Ordering::Relaxed),
            successes: c.successes.load(Ordering::Relaxed),
        }
    }

    /// A token named `kid`, which the key set lacks. Starts a refetch if
    /// allowed; returns a future for the refetch to await when one is
    /// running or starting, `None` when the `kid` is declined.
    pub(crate) fn unknown_kid(self: &Arc<Self>, kid: &str) -> Option<KeysRefreshed> {
        let mut state = self.lock();
        let now = Instant::now();
        let known_absent =
            state.negative.get(kid).is_some_and(|(until, seen_at)| *until > now && state.generation > *seen_at);
        if state.shutdown || known_absent {
            self.counters.unknown_kid_declined.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        if !(state.in_flight || state.requested) {
            let recent = state.last_start.is_some_and(|t| now.duration_since(t) < self.policy.unknown_kid_interval);
            if recent {
                self.counters.unknown_kid_declined.fetch_add(1, Ordering::Relaxed);
                return None;
            }
            state.requested = true;
            self.counters.unknown_kid_refetches.fetch_add(1, Ordering::Relaxed);
            log::info!("token with unknown kid: refetching keys from {}", self.source);
            self.changed.notify_all();
        }
        self.remember_unknown(&mut state, kid, now);
        Some(KeysRefreshed { refresher: self.clone(), after: state.generation })
    }

    fn remember_unknown(&self, state: &mut State, kid: &str, now: Instant) {
        if state.negative.len() >= self.policy.negative_capacity {
            state.negative.retain(|_, (until, _)| *until > now);
        }
        if state.negative.len() < self.policy.negative_capacity {
            let seen_at = state.starts;
            state.negative.insert(kid.to_owned(), (now + self.policy.negative_ttl, seen_at));
        }
    }

    /// Blocks until a fetch has succeeded or `timeout` passed; whether one has.
    pub(crate) fn wait_for_success(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        loop {
            if self.counters.successes.load(Ordering::Relaxed) > 0 {
                return true;
            }
            let now = Instant::now();
            if state.shutdown || now >= deadline {
                return false;
            }
            state = self
                .changed
                .wait_timeout(state, deadline - now)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|poisoned| poisoned.into_inner().0);
        }
    }

    pub(crate) fn shutdown(&self) {
        let mut state = self.lock();
        state.shutdown = true;
        for waker in state.waiters.drain(..) {
            waker.wake();
        }
        self.changed.notify_all();
    }

    fn run(self: Arc<Self>, mut fetcher: Box<dyn FetchJwks>, verifier: Weak<Verifier>) {
        let mut failures = 0u32;
        loop {
            {
                let mut state = self.lock();
                loop {
                    if state.shutdown || verifier.strong_count() == 0 {
                        return;
                    }
                    let now = Instant::now();
                    if state.requested || now >= state.next_due {
                        break;
                    }
                    let wait = state.next_due - now;
                    state = self
                        .changed
                        .wait_timeout(state, wait)
                        .map(|(guard, _)| guard)
                        .unwrap_or_else(|poisoned| poisoned.into_inner().0);
                }
                state.requested = false;
                state.in_flight = true;
                state.starts += 1;
                state.last_start = Some(Instant::now());
            }
            self.counters.fetches.fetch_add(1, Ordering::Relaxed);

            let next = match self.fetch_once(fetcher.as_mut(), &verifier) {
                Some(Ok(max_age)) => {
                    failures = 0;
                    self.counters.successes.fetch_add(1, Ordering::Relaxed);
                    self.policy.schedule(max_age)
                }
                Some(Err(err)) => {
                    failures = failures.saturating_add(1);
                    self.counters.failures.fetch_add(1, Ordering::Relaxed);
                    let retry = self.policy.backoff(failures);
                    log::warn!(
                        "cannot refresh keys from {} ({err}); keeping the last good set, retrying in {retry:?}",
                        self.source
                    );
                    retry
                }
                None => return, // the verifier is gone
            };

            let mut state = self.lock();
            state.in_flight = false;
            state.generation += 1;
            state.next_due = Instant::now() + next;
            for waker in state.waiters.drain(..) {
                waker.wake();
            }
            self.changed.notify_all();
        }
    }

    /// One fetch; `None` if the verifier was dropped meanwhile.
    fn fetch_once(
        &self,
        fetcher: &mut dyn FetchJwks,
        verifier: &Weak<Verifier>,
    ) -> Option<Result<Option<Duration>, FetchError>> {
        let fetched = match fetcher.fetch() {
            Ok(fetched) => fetched,
            Err(err) => return Some(Err(err)),
        };
        let (keys, skipped) = KeySet::from_jwks(&fetched.jwks);
        for err in &skipped {
            log::warn!("key from {} skipped: {err}", self.source);
        }
        if keys.is_empty() {
            return Some(Err("the JWKS has no usable key".into()));
        }
        let verifier = verifier.upgrade()?;
        verifier.set_keys(keys);
        Some(Ok(fetched.max_age))
    }
}

/// Resolves when the refetch that was running or requested has finished
/// (successfully or not), or the verifier was dropped. It needs no particular
/// async runtime.
pub struct KeysRefreshed {
    refresher: Arc<Refresher>,
    after: u64,
}

impl Future for KeysRefreshed {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.refresher.lock();
        if state.shutdown || state.generation > self.after {
            return Poll::Ready(());
        }
        // Polled again only after a wake, which comes with the result: no
        // de-duplication needed (and none that is O(waiters) under a flood).
        state.waiters.push(cx.waker().clone());
        Poll::Pending
    }
}

impl std::fmt::Debug for KeysRefreshed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeysRefreshed").field("after", &self.after).finish()
    }
}
