//! "Now" is a parameter: expiry, lifetimes and lockouts read it from a `Clock`
//! so tests can move time instead of sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, TimeDelta, Timelike, Utc};

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;

    /// Now as stored in the database: UTC, truncated to microseconds (the
    /// precision PostgreSQL keeps), so values read back compare equal.
    fn now_db(&self) -> NaiveDateTime {
        to_db_time(self.now())
    }

    fn unix(&self) -> i64 {
        self.now().timestamp()
    }
}

pub type SharedClock = Arc<dyn Clock>;

pub fn to_db_time(time: DateTime<Utc>) -> NaiveDateTime {
    let naive = time.naive_utc();
    naive.with_nanosecond(naive.nanosecond() / 1_000 * 1_000).unwrap_or(naive)
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to. Starts at the real time.
pub struct ManualClock {
    micros: AtomicI64,
}

impl ManualClock {
    pub fn new() -> Self {
        ManualClock { micros: AtomicI64::new(Utc::now().timestamp_micros()) }
    }

    pub fn advance(&self, by: TimeDelta) {
        self.micros.fetch_add(by.num_microseconds().unwrap_or(i64::MAX), Ordering::SeqCst);
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.micros.load(Ordering::SeqCst)).unwrap_or_default()
    }
}
