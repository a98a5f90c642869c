//! Throttling of failed client authentications, per client id and per client
//! IP, in memory on each instance (a client secret has 256 bits: throttling
//! here spares the database and the logs, it is not what keeps secrets safe).
//!
//! - Per IP: after `per_ip_burst` failures within `failure_window_secs` the
//!   IP is locked for `lockout_secs`; its attempts are refused unchecked (429).
//! - Per client id: after `failures_before_lockout` failures the id is
//!   locked, but only its failures are answered 429: the right secret still
//!   passes, so nobody can lock a valid client out by spraying its id.
//!
//! Time is a parameter (`now`), so tests need no sleeps.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;

use chrono::{NaiveDateTime, TimeDelta};

use crate::config::ThrottleSettings;

/// Entries kept before a sweep of finished ones (bounds memory under a spray).
const SWEEP_AT: usize = 65_536;

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    window_start: NaiveDateTime,
    locked_until: Option<NaiveDateTime>,
}

/// Failures per key within a window; a lock after `threshold` of them.
pub struct FailureCounter<K> {
    entries: Mutex<HashMap<K, Entry>>,
    threshold: u32,
    window: TimeDelta,
    lockout: TimeDelta,
}

impl<K: Hash + Eq + Clone> FailureCounter<K> {
    pub fn new(threshold: u32, window: TimeDelta, lockout: TimeDelta) -> Self {
        FailureCounter { entries: Mutex::new(HashMap::new()), threshold: threshold.max(1), window, lockout }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<K, Entry>> {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Seconds left if `key` is locked at `now`.
    pub fn locked(&self, key: &K, now: NaiveDateTime) -> Option<u64> {
        let until = self.entries().get(key)?.locked_until?;
        (until > now).then(|| seconds_until(now, until))
    }

    /// Counts a failure; returns the seconds of the lock it started, if any.
    pub fn fail(&self, key: &K, now: NaiveDateTime) -> Option<u64> {
        let mut entries = self.entries();
        if entries.len() >= SWEEP_AT {
            let window = self.window;
            entries.retain(|_, e| e.locked_until.is_some_and(|u| u > now) || e.window_start + window > now);
        }
        let entry = entries.entry(key.clone()).or_insert(Entry { failures: 0, window_start: now, locked_until: None });
        if entry.window_start + self.window <= now && entry.locked_until.is_none_or(|u| u <= now) {
            *entry = Entry { failures: 0, window_start: now, locked_until: None };
        }
        entry.failures += 1;
        if entry.failures >= self.threshold && entry.locked_until.is_none_or(|u| u <= now) {
            let until = now + self.lockout;
            entry.locked_until = Some(until);
            entry.failures = 0;
            entry.window_start = now;
            return Some(seconds_until(now, until));
        }
        None
    }

    /// A success forgets the key's failures (not a running IP lock: see `ClientThrottle`).
    pub fn clear(&self, key: &K) {
        self.entries().remove(key);
    }
}

fn seconds_until(now: NaiveDateTime, until: NaiveDateTime) -> u64 {
    u64::try_from((until - now).num_seconds()).unwrap_or(0).max(1)
}

/// The two counters of client authentication; None when throttling is off.
pub struct ClientThrottle {
    pub by_ip: FailureCounter<IpAddr>,
    pub by_client: FailureCounter<String>,
}

impl ClientThrottle {
    pub fn from_settings(settings: &ThrottleSettings) -> Option<ClientThrottle> {
        if !settings.enabled {
            return None;
        }
        let window = TimeDelta::seconds(settings.failure_window_secs);
        let lockout = TimeDelta::seconds(settings.lockout_secs);
        let per_client = u32::try_from(settings.failures_before_lockout).unwrap_or(5);
        Some(ClientThrottle {
            by_ip: FailureCounter::new(settings.per_ip_burst, window, lockout),
            by_client: FailureCounter::new(per_client, window, lockout),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> NaiveDateTime {
        chrono::DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap_or_default().naive_utc()
    }

    #[test]
    fn locks_after_the_threshold_for_the_lockout_then_forgets() {
        let counter = FailureCounter::new(3, TimeDelta::seconds(900), TimeDelta::seconds(60));
        let key = "c".to_owned();
        assert_eq!(counter.fail(&key, at(0)), None);
        assert_eq!(counter.fail(&key, at(1)), None);
        assert_eq!(counter.locked(&key, at(1)), None);
        assert_eq!(counter.fail(&key, at(2)), Some(60));
        assert_eq!(counter.locked(&key, at(3)), Some(59));
        assert_eq!(counter.locked(&key, at(62)), None, "a lock ends");
        // Failures outside the window are forgotten.
        assert_eq!(counter.fail(&key, at(2000)), None);
        assert_eq!(counter.fail(&key, at(3000)), None);
        assert_eq!(counter.fail(&key, at(3001)), None);
        counter.clear(&key);
        assert_eq!(counter.fail(&key, at(3002)), None);
    }
}
