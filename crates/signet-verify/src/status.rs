//! Token status lists (draft-ietf-oauth-status-list): revocation that reaches
//! this verifier without a per-request call to signet.
//!
//! An access token may carry `status.status_list.{idx, uri}`. With status
//! checking on ([`VerifierBuilder::status_lists`](crate::VerifierBuilder::status_lists)),
//! every verification of such a token, cached ones included, reads bit `idx`
//! of the list at `uri` from memory: 1 refuses the token
//! ([`VerifyError::Revoked`](crate::VerifyError::Revoked)). The check is a
//! hash lookup and a bit test; it never does I/O.
//!
//! - Only lists under `<issuer>/v1/status-lists/<n>` are trusted; a token
//!   naming another URI is refused
//!   ([`VerifyError::UntrustedStatusList`](crate::VerifyError::UntrustedStatusList))
//!   and the URI is never fetched.
//! - A list is a `statuslist+jwt` signed by one of the issuer's keys (the
//!   verifier's key set), `iss` = issuer, `sub` = the URI, not expired; the
//!   bits are zlib-compressed, inflated with a bound
//!   ([`MAX_STATUS_LIST_BYTES`]). A list that fails any check is rejected and
//!   the last good copy kept.
//! - With the `remote` feature, lists are fetched by a background thread the
//!   first time a token names them, refetched after the list's `ttl` (with
//!   `If-None-Match`; a `304` confirms the copy), and at once when signet's
//!   event stream (`<issuer>/v1/status-lists/events`) announces a newer
//!   version. Without it, the embedding process loads lists with
//!   [`Verifier::load_status_list`](crate::Verifier::load_status_list).
//! - A token whose list is not loaded yet: [`Verifier::verify_async`](crate::Verifier::verify_async)
//!   and the actix extractor wait for the first fetch (bounded by the HTTP
//!   timeout), then decide; [`Verifier::verify`](crate::Verifier::verify)
//!   refuses at once with [`VerifyError::StatusUnavailable`](crate::VerifyError::StatusUnavailable).
//! - Fail closed: once the last confirmed copy of a list is older than
//!   [`StatusListPolicy::max_stale`] (signet unreachable), or the list's own
//!   `exp` has passed, its tokens are refused with `StatusUnavailable`. With
//!   [`StatusListPolicy::fail_open`] they are accepted on the old copy
//!   instead, and an error is logged (at most once a minute per list).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use base64::Engine;
use serde::Deserialize;

use crate::claims::StatusListRef;
use crate::error::VerifyError;
use crate::verifier::TimeBound;

/// The `typ` header of a status list token.
pub const STATUS_LIST_TYPE: &str = "statuslist+jwt";

/// The default [`StatusListPolicy::max_stale`].
pub const DEFAULT_MAX_STALE: Duration = Duration::from_secs(300);

/// The largest inflated list accepted: 16 MiB, 134 million one-bit statuses.
/// A list above it (a zlib bomb, or a broken issuer) is rejected.
pub const MAX_STATUS_LIST_BYTES: usize = 16 * 1024 * 1024;

/// At most this many lists are tracked; tokens naming further lists are
/// refused as [`VerifyError::StatusUnavailable`] (signet uses a handful).
pub const MAX_TRACKED_LISTS: usize = 1024;

/// How status lists are kept and when their tokens are refused.
#[derive(Debug, Clone)]
pub struct StatusListPolicy {
    /// Refuse (fail closed) a token whose list was last confirmed longer ago
    /// than this (default 300 s).
    pub max_stale: Duration,
    /// Accept tokens on a stale list (or one that cannot be loaded) instead,
    /// logging an error. Revocations are then not enforced while signet is
    /// unreachable: only for services that prefer availability.
    pub fail_open: bool,
    /// Refetch after this when a list has no `ttl`.
    pub default_ttl: Duration,
    /// Never refetch a list on schedule more often than this, whatever its `ttl`.
    pub min_ttl: Duration,
    /// First retry after a failed fetch; doubles up to `retry_max`.
    pub retry_initial: Duration,
    pub retry_max: Duration,
    /// Listen to signet's event stream to refetch a list as soon as it
    /// changes (feature `remote`).
    pub events: bool,
}

impl Default for StatusListPolicy {
    fn default() -> Self {
        StatusListPolicy {
            max_stale: DEFAULT_MAX_STALE,
            fail_open: false,
            default_ttl: Duration::from_secs(60),
            min_ttl: Duration::from_secs(1),
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(30),
            events: true,
        }
    }
}

impl StatusListPolicy {
    /// When to refetch after a good fetch: the list's `ttl`, but early enough
    /// that a healthy issuer never lets the copy go stale.
    fn refetch_after(&self, ttl: Option<Duration>) -> Duration {
        let ttl = ttl.unwrap_or(self.default_ttl).max(self.min_ttl);
        ttl.min((self.max_stale / 2).max(self.min_ttl))
    }

    fn backoff(&self, failures: u32) -> Duration {
        let factor = 1u32.checked_shl(failures.saturating_sub(1).min(20)).unwrap_or(u32::MAX);
        self.retry_initial.saturating_mul(factor).min(self.retry_max)
    }
}

/// Why a status list was rejected (logged; the last good copy stays).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("status list rejected: {0}")]
pub struct StatusListError(pub String);

impl From<String> for StatusListError {
    fn from(why: String) -> Self {
        StatusListError(why)
    }
}

impl From<&str> for StatusListError {
    fn from(why: &str) -> Self {
        StatusListError(why.to_owned())
    }
}

/// Counters of status list handling (for metrics and tests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatusListStats {
    /// HTTP fetches started.
    pub fetches: u64,
    /// Fetches answered `304 Not Modified`.
    pub not_modified: u64,
    /// Lists accepted (fetched or loaded).
    pub loaded: u64,
    /// Fetches that failed or brought a list that was rejected.
    pub failures: u64,
    /// `status` events that asked for a refetch.
    pub events: u64,
}

#[derive(Default)]
struct Counters {
    fetches: AtomicU64,
    not_modified: AtomicU64,
    loaded: AtomicU64,
    failures: AtomicU64,
    events: AtomicU64,
}

/// The claims of a status list token.
#[derive(Debug, Deserialize)]
pub(crate) struct StatusListClaims {
    pub sub: String,
    pub exp: i64,
    #[serde(default)]
    pub nbf: Option<i64>,
    #[serde(default)]
    pub ttl: Option<u64>,
    pub status_list: ListBody,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ListBody {
    pub bits: u8,
    pub lst: String,
}

impl TimeBound for StatusListClaims {
    fn exp(&self) -> i64 {
        self.exp
    }
    fn nbf(&self) -> Option<i64> {
        self.nbf
    }
}

/// A verified, inflated list.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub bytes: Vec<u8>,
    /// The list token's `exp`: the copy is not used after it.
    pub exp: i64,
    pub ttl: Option<Duration>,
}

impl Loaded {
    /// Checks a verified list token's claims against the URI it was fetched
    /// from and inflates its bits.
    pub(crate) fn from_claims(claims: StatusListClaims, uri: &str) -> Result<Loaded, StatusListError> {
        if claims.sub != uri {
            return Err(format!("sub {:?} is not the list's URI", claims.sub).into());
        }
        if claims.status_list.bits != 1 {
            return Err(format!("bits = {}; only 1-bit lists are supported", claims.status_list.bits).into());
        }
        Ok(Loaded {
            bytes: inflate_lst(&claims.status_list.lst)?,
            exp: claims.exp,
            ttl: claims.ttl.map(Duration::from_secs),
        })
    }
}

/// The `lst` member: base64url without padding of the zlib-deflated bytes.
pub(crate) fn inflate_lst(lst: &str) -> Result<Vec<u8>, StatusListError> {
    let compressed = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(lst)
        .map_err(|_| StatusListError::from("lst is not base64url"))?;
    miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(&compressed, MAX_STATUS_LIST_BYTES).map_err(|err| match err
        .status
    {
        miniz_oxide::inflate::TINFLStatus::HasMoreOutput => {
            format!("lst inflates to more than {MAX_STATUS_LIST_BYTES} bytes").into()
        }
        status => format!("lst is not zlib data ({status:?})").into(),
    })
}

/// The 1-bit status of index `idx`: bit `idx % 8` of byte `idx / 8`, least
/// significant bit first (draft-ietf-oauth-status-list §4.1); `true` = invalid.
/// `None` when the list is shorter.
pub fn status_bit(bytes: &[u8], idx: u64) -> Option<bool> {
    let byte = bytes.get(usize::try_from(idx / 8).ok()?)?;
    Some(byte >> (idx % 8) & 1 == 1)
}

/// What a verification must do about a token's status.
pub(crate) enum Check {
    Valid,
    Refused(VerifyError),
    /// The list is being fetched for the first time.
    Wait(StatusLoaded),
}

struct Entry {
    list: Option<Arc<Loaded>>,
    /// When a fetch (200 or 304) or a load last confirmed the copy.
    confirmed: Option<Instant>,
    etag: Option<String>,
    /// The newest version known (from the ETag or an event).
    version: Option<u64>,
    /// When the fetcher should (re)fetch; `None` while a fetch runs.
    next_due: Option<Instant>,
    failures: u32,
    /// Fetch attempts completed (waiters wait for the count to move).
    attempts: u64,
    warned: Option<Instant>,
}

impl Entry {
    fn new(now: Instant) -> Entry {
        Entry {
            list: None,
            confirmed: None,
            etag: None,
            version: None,
            next_due: Some(now),
            failures: 0,
            attempts: 0,
            warned: None,
        }
    }
}

/// What the background fetcher waits on.
#[derive(Default)]
pub(crate) struct Wake {
    pub shutdown: bool,
    pub kicked: bool,
}

/// The lists of one verifier, shared with its fetcher threads.
pub(crate) struct StatusLists {
    /// `<issuer>/v1/status-lists/`
    prefix: String,
    /// Where lists are fetched: the same path under another origin (the
    /// address this service reaches signet at), or the issuer itself.
    fetch_prefix: String,
    pub(crate) policy: StatusListPolicy,
    entries: RwLock<HashMap<String, Entry>>,
    wake: Mutex<Wake>,
    pub(crate) changed: Condvar,
    waiters: Mutex<Vec<Waker>>,
    counters: Counters,
}

impl StatusLists {
    pub(crate) fn new(issuer: &str, origin: Option<&str>, policy: StatusListPolicy) -> StatusLists {
        let prefix_of = |base: &str| format!("{}/v1/status-lists/", base.trim_end_matches('/'));
        StatusLists {
            prefix: prefix_of(issuer),
            fetch_prefix: prefix_of(origin.unwrap_or(issuer)),
            policy,
            entries: RwLock::default(),
            wake: Mutex::default(),
            changed: Condvar::new(),
            waiters: Mutex::default(),
            counters: Counters::default(),
        }
    }

    #[cfg_attr(not(feature = "remote"), expect(dead_code, reason = "for the remote fetcher"))]
    pub(crate) fn events_url(&self) -> String {
        format!("{}events", self.fetch_prefix)
    }

    /// Where to fetch the trusted list `uri`.
    #[cfg_attr(not(feature = "remote"), expect(dead_code, reason = "for the remote fetcher"))]
    pub(crate) fn fetch_url(&self, uri: &str) -> String {
        format!("{}{}", self.fetch_prefix, uri.strip_prefix(&self.prefix).unwrap_or(uri))
    }

    /// Whether `uri` is one of the issuer's lists: the prefix and a positive
    /// integer, nothing else (no query, no further path).
    pub(crate) fn trusted(&self, uri: &str) -> bool {
        uri.strip_prefix(&self.prefix).is_some_and(|n| {
            !n.is_empty() && n.len() <= 19 && !n.starts_with('0') && n.bytes().all(|b| b.is_ascii_digit())
        })
    }

    fn read(&self) -> RwLockReadGuard<'_, HashMap<String, Entry>> {
        self.entries.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<String, Entry>> {
        self.entries.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn lock_wake(&self) -> MutexGuard<'_, Wake> {
        self.wake.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn lock_waiters(&self) -> MutexGuard<'_, Vec<Waker>> {
        self.waiters.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn stats(&self) -> StatusListStats {
        let c = &self.counters;
        StatusListStats {
            fetches: c.fetches.load(Ordering::Relaxed),
            not_modified: c.not_modified.load(Ordering::Relaxed),
            loaded: c.loaded.load(Ordering::Relaxed),
            failures: c.failures.load(Ordering::Relaxed),
            events: c.events.load(Ordering::Relaxed),
        }
    }

    /// The status of one token, from memory. `now` is the verifier's clock
    /// (Unix seconds), for the list's `exp`.
    pub(crate) fn check(self: &Arc<Self>, status: &StatusListRef, now: i64) -> Check {
        if !self.trusted(&status.uri) {
            return Check::Refused(VerifyError::UntrustedStatusList);
        }
        let entries = self.read();
        let Some(entry) = entries.get(&status.uri) else {
            drop(entries);
            return self.track(&status.uri);
        };
        let Some(list) = &entry.list else {
            // Never loaded: wait for a fetch that is due or running; after a
            // failure (backing off), decide now.
            let pending = entry.next_due.is_none_or(|due| due <= Instant::now());
            if pending {
                return Check::Wait(StatusLoaded {
                    lists: self.clone(),
                    uri: status.uri.clone(),
                    after: entry.attempts,
                });
            }
            drop(entries);
            return self.unavailable(&status.uri);
        };
        let fresh = entry.confirmed.is_some_and(|at| at.elapsed() <= self.policy.max_stale) && list.exp > now;
        let list = list.clone();
        drop(entries);
        if !fresh {
            if let Check::Refused(why) = self.unavailable(&status.uri) {
                return Check::Refused(why);
            }
        }
        match status_bit(&list.bytes, status.idx) {
            Some(false) => Check::Valid,
            Some(true) => Check::Refused(VerifyError::Revoked),
            // An index the list does not cover: its status is unknown.
            None => Check::Refused(VerifyError::StatusUnavailable),
        }
    }

    /// A list seen for the first time: track it and ask for a fetch.
    fn track(self: &Arc<Self>, uri: &str) -> Check {
        let mut entries = self.write();
        if !entries.contains_key(uri) {
            if entries.len() >= MAX_TRACKED_LISTS {
                log::warn!("{MAX_TRACKED_LISTS} status lists tracked already; refusing a token naming another");
                return Check::Refused(VerifyError::StatusUnavailable);
            }
            entries.insert(uri.to_owned(), Entry::new(Instant::now()));
            drop(entries);
            self.kick();
            return Check::Wait(StatusLoaded { lists: self.clone(), uri: uri.to_owned(), after: 0 });
        }
        drop(entries);
        self.check_again(uri)
    }

    /// Another thread tracked it meanwhile.
    fn check_again(self: &Arc<Self>, uri: &str) -> Check {
        let attempts = self.read().get(uri).map_or(0, |e| e.attempts);
        Check::Wait(StatusLoaded { lists: self.clone(), uri: uri.to_owned(), after: attempts })
    }

    /// No usable copy: refuse (fail closed), or accept on the old copy (or
    /// none) with a loud log (fail open).
    fn unavailable(&self, uri: &str) -> Check {
        if !self.policy.fail_open {
            return Check::Refused(VerifyError::StatusUnavailable);
        }
        let mut entries = self.write();
        if let Some(entry) = entries.get_mut(uri) {
            if entry.warned.is_none_or(|at| at.elapsed() >= Duration::from_secs(60)) {
                entry.warned = Some(Instant::now());
                let age = entry.confirmed.map(|at| at.elapsed());
                log::error!(
                    "FAIL-OPEN: status list {uri} is stale or unavailable (last confirmed {age:?} ago, max_stale {:?}); \
                     accepting its tokens without a current revocation check",
                    self.policy.max_stale
                );
            }
        }
        // The caller still applies an old copy's bits: it refuses what it knew was revoked.
        Check::Valid
    }

    pub(crate) fn kick(&self) {
        self.lock_wake().kicked = true;
        self.changed.notify_all();
    }

    pub(crate) fn shutdown(&self) {
        self.lock_wake().shutdown = true;
        self.changed.notify_all();
        self.wake_waiters();
    }

    pub(crate) fn is_shutdown(&self) -> bool {
        self.lock_wake().shutdown
    }

    fn wake_waiters(&self) {
        for waker in self.lock_waiters().drain(..) {
            waker.wake();
        }
    }

    /// Lists whose fetch is due, marked as running; and the next due time
    /// of the others.
    #[cfg_attr(not(feature = "remote"), expect(dead_code, reason = "for the remote fetcher"))]
    pub(crate) fn take_due(&self, now: Instant) -> (Vec<(String, Option<String>)>, Option<Instant>) {
        let mut entries = self.write();
        let mut due = Vec::new();
        let mut next: Option<Instant> = None;
        for (uri, entry) in entries.iter_mut() {
            match entry.next_due {
                Some(at) if at <= now => {
                    entry.next_due = None;
                    // Ask for a 304 only when there is a copy to keep.
                    let etag = entry.list.as_ref().and(entry.etag.clone());
                    due.push((uri.clone(), etag));
                }
                Some(at) => next = Some(next.map_or(at, |n| n.min(at))),
                None => {}
            }
        }
        (due, next)
    }

    #[cfg_attr(not(feature = "remote"), expect(dead_code, reason = "for the remote fetcher"))]
    pub(crate) fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    #[cfg_attr(not(feature = "remote"), expect(dead_code, reason = "for the remote fetcher"))]
    pub(crate) fn count_fetch(&self) {
        self.counters.fetches.fetch_add(1, Ordering::Relaxed);
    }

    /// A fetch answered `304`: the copy is current.
    #[cfg_attr(not(feature = "remote"), expect(dead_code, reason = "for the remote fetcher"))]
    pub(crate) fn not_modified(&self, uri: &str) {
        self.counters.not_modified.fetch_add(1, Ordering::Relaxed);
        self.finish(uri, |entry, policy| {
            entry.confirmed = Some(Instant::now());
            entry.failures = 0;
            policy.refetch_after(entry.list.as_ref().and_then(|l| l.ttl))
        });
    }

    /// A list was fetched (or loaded) and verified.
    pub(crate) fn loaded(&self, uri: &str, list: Loaded, etag: Option<String>) {
        self.counters.loaded.fetch_add(1, Ordering::Relaxed);
        let version = etag.as_deref().and_then(etag_version);
        self.finish(uri, |entry, policy| {
            let ttl = list.ttl;
            entry.list = Some(Arc::new(list));
            entry.confirmed = Some(Instant::now());
            entry.etag = etag;
            if version.is_some() {
                entry.version = version;
            }
            entry.failures = 0;
            policy.refetch_after(ttl)
        });
    }

    /// A fetch failed or its list was rejected: keep the old copy, retry later.
    #[cfg_attr(not(feature = "remote"), expect(dead_code, reason = "for the remote fetcher"))]
    pub(crate) fn failed(&self, uri: &str, why: &str) {
        self.counters.failures.fetch_add(1, Ordering::Relaxed);
        self.finish(uri, |entry, policy| {
            entry.failures = entry.failures.saturating_add(1);
            let retry = policy.backoff(entry.failures);
            log::warn!("status list {uri}: {why}; keeping the last good copy, retrying in {retry:?}");
            retry
        });
    }

    fn finish(&self, uri: &str, update: impl FnOnce(&mut Entry, &StatusListPolicy) -> Duration) {
        let mut entries = self.write();
        let now = Instant::now();
        let entry = entries.entry(uri.to_owned()).or_insert_with(|| Entry::new(now));
        let after = update(entry, &self.policy);
        // An event may have asked for a refetch while this one ran.
        if entry.next_due.is_none() {
            entry.next_due = Some(now + after);
        }
        entry.attempts += 1;
        drop(entries);
        self.wake_waiters();
    }

    /// signet announced `version` of `uri`: refetch at once if it is newer
    /// than the copy (lists nobody has asked for are ignored).
    #[cfg_attr(not(feature = "remote"), expect(dead_code, reason = "for the remote fetcher"))]
    pub(crate) fn announce(&self, uri: &str, version: u64) {
        let mut entries = self.write();
        let Some(entry) = entries.get_mut(uri) else { return };
        if entry.version.is_some_and(|known| known >= version) {
            return;
        }
        entry.version = Some(version);
        self.counters.events.fetch_add(1, Ordering::Relaxed);
        // Also while a fetch runs: it may predate the change, so fetch again after it.
        entry.next_due = Some(Instant::now());
        drop(entries);
        self.kick();
    }
}

/// signet's ETags are `"<n>-<version>"`: the version, if it is one of those.
fn etag_version(etag: &str) -> Option<u64> {
    let inner = etag.trim().trim_start_matches("W/").trim_matches('"');
    inner.rsplit_once('-')?.1.parse().ok()
}

/// Resolves when the first fetch of a status list has finished (loaded or
/// not), or the verifier was dropped. Needs no particular async runtime.
pub struct StatusLoaded {
    lists: Arc<StatusLists>,
    uri: String,
    after: u64,
}

impl Future for StatusLoaded {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // The waiters lock is held across the check, and the fetcher takes it
        // after updating the count: no wake-up is lost in between.
        let mut waiters = self.lists.lock_waiters();
        let done = self.lists.read().get(&self.uri).is_none_or(|e| e.attempts > self.after);
        if done || self.lists.is_shutdown() {
            return Poll::Ready(());
        }
        waiters.push(cx.waker().clone());
        Poll::Pending
    }
}

impl std::fmt::Debug for StatusLoaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusLoaded").field("uri", &self.uri).field("after", &self.after).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An independent reading of the draft's §4.1 bit layout: "The status of
    /// index i is bit (i % 8) of byte (i / 8), least significant bit first."
    /// The draft's own example: statuses 1,0,0,1,1,1,0,1 then 1,1,0,0,0,1,0,1
    /// are the bytes 0xB9, 0xA3.
    #[test]
    fn bit_layout_of_the_draft() {
        let statuses = [1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1];
        let mut bytes = [0u8; 2];
        for (i, s) in statuses.iter().enumerate() {
            bytes[i / 8] |= (*s as u8) << (i % 8);
        }
        assert_eq!(bytes, [0xB9, 0xA3]);
        for (i, s) in statuses.iter().enumerate() {
            assert_eq!(status_bit(&bytes, i as u64), Some(*s == 1), "index {i}");
        }
        assert_eq!(status_bit(&bytes, 16), None);
        assert_eq!(status_bit(&bytes, u64::MAX), None);
    }

    /// The draft's example `lst` for those bytes (1-bit list).
    #[test]
    fn draft_example_lst() {
        assert_eq!(inflate_lst("eNrbuRgAAhcBXQ").unwrap(), vec![0xB9, 0xA3]);
    }

    #[test]
    fn garbage_and_bombs_are_rejected() {
        assert!(inflate_lst("not base64!").is_err());
        let not_zlib = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b"hello, not zlib");
        assert!(inflate_lst(&not_zlib).is_err());
        let bomb = miniz_oxide::deflate::compress_to_vec_zlib(&vec![0u8; MAX_STATUS_LIST_BYTES + 1], 9);
        let err = inflate_lst(&base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bomb)).unwrap_err();
        assert!(err.0.contains("more than"), "{err}");
    }

    #[test]
    fn only_the_issuers_lists_are_trusted() {
        let lists = StatusLists::new("https://id.example.com/", None, StatusListPolicy::default());
        assert!(lists.trusted("https://id.example.com/v1/status-lists/1"));
        assert!(lists.trusted("https://id.example.com/v1/status-lists/42"));
        for uri in [
            "https://evil.example.com/v1/status-lists/1",
            "https://id.example.com.evil.com/v1/status-lists/1",
            "https://id.example.com/v1/status-lists/",
            "https://id.example.com/v1/status-lists/events",
            "https://id.example.com/v1/status-lists/0",
            "https://id.example.com/v1/status-lists/01",
            "https://id.example.com/v1/status-lists/1?x=y",
            "https://id.example.com/v1/status-lists/1/../../x",
            "http://id.example.com/v1/status-lists/1",
        ] {
            assert!(!lists.trusted(uri), "{uri}");
        }
    }

    #[test]
    fn etag_versions() {
        assert_eq!(etag_version("\"3-17\""), Some(17));
        assert_eq!(etag_version("W/\"3-17\""), Some(17));
        assert_eq!(etag_version("\"abc\""), None);
    }

    #[test]
    fn refetch_schedule_respects_ttl_and_max_stale() {
        let policy = StatusListPolicy::default();
        assert_eq!(policy.refetch_after(Some(Duration::from_secs(30))), Duration::from_secs(30));
        assert_eq!(policy.refetch_after(Some(Duration::from_secs(3600))), Duration::from_secs(150));
        assert_eq!(policy.refetch_after(Some(Duration::ZERO)), Duration::from_secs(1));
        assert_eq!(policy.refetch_after(None), Duration::from_secs(60));
    }
}
