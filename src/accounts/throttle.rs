//! Per-account login throttling, shared by every instance through the
//! database. Keyed by the username key whether or not such an account
//! exists, so a lockout reveals nothing. Every password check (login and
//! password change) reserves its attempt here before hashing. Attempts during
//! a lockout are refused unchecked and do not lengthen it; every failure after
//! a lockout locks again for twice as long, up to a cap; a success resets it.

use chrono::{NaiveDateTime, TimeDelta};
use diesel::prelude::*;

use crate::audit::{self, Actor, Event, EventType};
use crate::config::ThrottleSettings;
use crate::db::schema::login_throttle;
use crate::db::DbConnection;
use crate::error::ApiError;

#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    pub enabled: bool,
    pub failures_before_lockout: i32,
    pub lockout: TimeDelta,
    pub max_lockout: TimeDelta,
    pub failure_window: TimeDelta,
}

impl ThrottlePolicy {
    pub fn from_settings(settings: &ThrottleSettings) -> Self {
        ThrottlePolicy {
            enabled: settings.enabled,
            failures_before_lockout: settings.failures_before_lockout,
            lockout: TimeDelta::seconds(settings.lockout_secs),
            max_lockout: TimeDelta::seconds(settings.max_lockout_secs),
            failure_window: TimeDelta::seconds(settings.failure_window_secs),
        }
    }

    /// lockout * 2^n, capped.
    fn lockout_for(&self, previous_lockouts: i32) -> TimeDelta {
        let factor = 1i32.checked_shl(previous_lockouts.clamp(0, 30) as u32).unwrap_or(i32::MAX);
        self.lockout.checked_mul(factor).map_or(self.max_lockout, |d| d.min(self.max_lockout))
    }
}

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = login_throttle)]
struct ThrottleRow {
    username_key: String,
    failures: i32,
    lockouts: i32,
    locked_until: Option<NaiveDateTime>,
    updated_at: NaiveDateTime,
}

/// Reserves one password check for `key` before any hashing: counts it as a
/// failure up front and, once that reaches the threshold, locks the name at
/// once; 429 (with the seconds left) while it is locked. The count and the
/// lock are one transaction whose first statement writes, so concurrent
/// attempts on any instance queue on the row (PostgreSQL row lock, SQLite
/// write lock) and no more than the threshold are ever checked. A proven
/// password clears the record ([`record_success`]); a wrong one leaves the
/// reservation standing as its failure. A lock is recorded (`login.locked`,
/// by `actor`, about the account of that name if there is one) in the same
/// transaction.
pub fn reserve(
    conn: &mut DbConnection,
    policy: &ThrottlePolicy,
    key: &str,
    actor: &Actor,
    now: NaiveDateTime,
) -> Result<bool, ApiError> {
    if !policy.enabled {
        return Ok(false);
    }
    // A success on another request deletes the row between our insert and our
    // update (PostgreSQL, read committed): the update then finds no row and we
    // must not read that as a lock. Such a lost race is simply tried again.
    for _ in 0..RESERVE_ATTEMPTS {
        match try_reserve(conn, policy, key, actor, now)? {
            Reservation::Counted { locked_now } => return Ok(locked_now),
            Reservation::Locked { until } => {
                return Err(ApiError::TooManyRequests { retry_after_secs: seconds_until(now, until) })
            }
            Reservation::RowVanished => continue,
        }
    }
    Err(ApiError::TooManyRequests { retry_after_secs: 1 })
}

const RESERVE_ATTEMPTS: usize = 5;

enum Reservation {
    /// The attempt is counted; `locked_now` when it started a lockout.
    Counted {
        locked_now: bool,
    },
    Locked {
        until: NaiveDateTime,
    },
    /// A concurrent success cleared the record under us: try again.
    RowVanished,
}

fn try_reserve(
    conn: &mut DbConnection,
    policy: &ThrottlePolicy,
    key: &str,
    actor: &Actor,
    now: NaiveDateTime,
) -> Result<Reservation, ApiError> {
    audit::transaction(conn, |conn| {
        // Forget quiet names (this one included) so the table stays small.
        let stale = now - policy.failure_window;
        diesel::delete(
            login_throttle::table
                .filter(login_throttle::updated_at.lt(stale))
                .filter(login_throttle::locked_until.is_null().or(login_throttle::locked_until.lt(now))),
        )
        .execute(conn)?;
        let first =
            ThrottleRow { username_key: key.to_owned(), failures: 0, lockouts: 0, locked_until: None, updated_at: now };
        // ON CONFLICT DO NOTHING: a row another instance just inserted is not
        // an error (which would abort a PostgreSQL transaction).
        let insert = diesel::insert_into(login_throttle::table).values(&first).on_conflict_do_nothing();
        match conn {
            DbConnection::Postgres(pg) => insert.execute(pg)?,
            DbConnection::Sqlite(sqlite) => insert.execute(sqlite)?,
        };
        // Count the attempt only while the name is not locked; this statement
        // is the one that serializes concurrent attempts.
        let reserved = diesel::update(
            login_throttle::table
                .find(key)
                .filter(login_throttle::locked_until.is_null().or(login_throttle::locked_until.le(now))),
        )
        .set((login_throttle::failures.eq(login_throttle::failures + 1), login_throttle::updated_at.eq(now)))
        .execute(conn)?;
        let row: Option<ThrottleRow> =
            login_throttle::table.find(key).select(ThrottleRow::as_select()).get_result(conn).optional()?;
        let Some(row) = row else {
            return Ok(Reservation::RowVanished);
        };
        if reserved == 0 {
            return Ok(match row.locked_until {
                Some(until) if until > now => Reservation::Locked { until },
                _ => Reservation::RowVanished,
            });
        }
        // The threshold-th attempt (and, after a lockout, the next one) locks
        // before it is checked: its own success unlocks again.
        if row.failures >= policy.failures_before_lockout {
            let until = now + policy.lockout_for(row.lockouts);
            diesel::update(login_throttle::table.find(key))
                .set((login_throttle::locked_until.eq(until), login_throttle::lockouts.eq(row.lockouts + 1)))
                .execute(conn)?;
            log::warn!("login locked out for {}s after {} failures", (until - now).num_seconds(), row.failures);
            let mut event = Event::new(EventType::LoginLocked, actor, now)
                .detail("locked_secs", (until - now).num_seconds())
                .detail("failures", row.failures);
            if let Some(user) = crate::accounts::model::find_by_username_key(conn, key)? {
                event = event.subject(user.id);
            }
            audit::record(conn, event)?;
            return Ok(Reservation::Counted { locked_now: true });
        }
        Ok(Reservation::Counted { locked_now: false })
    })
}

/// A proven password clears the record (and a lock its own reservation set).
pub fn record_success(conn: &mut DbConnection, policy: &ThrottlePolicy, key: &str) -> Result<(), ApiError> {
    if policy.enabled {
        diesel::delete(login_throttle::table.find(key)).execute(conn)?;
    }
    Ok(())
}

fn seconds_until(now: NaiveDateTime, until: NaiveDateTime) -> u64 {
    let micros = (until - now).num_microseconds().unwrap_or(i64::MAX).max(0);
    u64::try_from((micros + 999_999) / 1_000_000).unwrap_or(u64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockouts_double_and_are_capped() {
        let policy = ThrottlePolicy {
            enabled: true,
            failures_before_lockout: 5,
            lockout: TimeDelta::seconds(60),
            max_lockout: TimeDelta::seconds(900),
            failure_window: TimeDelta::seconds(900),
        };
        let secs: Vec<i64> = (0..7).map(|n| policy.lockout_for(n).num_seconds()).collect();
        assert_eq!(secs, [60, 120, 240, 480, 900, 900, 900]);
        assert_eq!(policy.lockout_for(1000).num_seconds(), 900);
    }
}
