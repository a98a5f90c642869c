//! Per-account login throttling, shared by every instance through the
//! database. Keyed by the username key whether or not such an account
//! exists, so a lockout reveals nothing. Attempts during a lockout are
//! refused unchecked and do not lengthen it; every failure after a lockout
//! locks again for twice as long, up to a cap; a success resets it.

use chrono::{NaiveDateTime, TimeDelta};
use diesel::prelude::*;

use crate::config::ThrottleSettings;
use crate::db::schema::login_throttle;
use crate::db::DbConnection;
use crate::error::{is_unique_violation, ApiError};

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

/// 429 while the username is locked out, with the seconds left.
pub fn check(conn: &mut DbConnection, policy: &ThrottlePolicy, key: &str, now: NaiveDateTime) -> Result<(), ApiError> {
    if !policy.enabled {
        return Ok(());
    }
    let row: Option<ThrottleRow> =
        login_throttle::table.find(key).select(ThrottleRow::as_select()).first(conn).optional()?;
    match row.and_then(|r| r.locked_until).filter(|until| *until > now) {
        Some(until) => Err(ApiError::TooManyRequests { retry_after_secs: seconds_until(now, until) }),
        None => Ok(()),
    }
}

/// Counts a failed login; locks the username once the threshold is reached.
/// True when this failure started a lockout.
pub fn record_failure(
    conn: &mut DbConnection,
    policy: &ThrottlePolicy,
    key: &str,
    now: NaiveDateTime,
) -> Result<bool, ApiError> {
    if !policy.enabled {
        return Ok(false);
    }
    conn.transaction(|conn| {
        // Forget quiet names (this one included) so the table stays small.
        let stale = now - policy.failure_window;
        diesel::delete(
            login_throttle::table
                .filter(login_throttle::updated_at.lt(stale))
                .filter(login_throttle::locked_until.is_null().or(login_throttle::locked_until.lt(now))),
        )
        .execute(conn)?;

        // The write comes first, so SQLite takes its lock before any read.
        let bumped = diesel::update(login_throttle::table.find(key))
            .set((login_throttle::failures.eq(login_throttle::failures + 1), login_throttle::updated_at.eq(now)))
            .execute(conn)?;
        if bumped == 0 {
            let first = ThrottleRow {
                username_key: key.to_owned(),
                failures: 1,
                lockouts: 0,
                locked_until: None,
                updated_at: now,
            };
            match diesel::insert_into(login_throttle::table).values(&first).execute(conn) {
                Ok(_) => {}
                // Another instance inserted it a moment ago: count on its row.
                Err(err) if is_unique_violation(&err) => {
                    diesel::update(login_throttle::table.find(key))
                        .set(login_throttle::failures.eq(login_throttle::failures + 1))
                        .execute(conn)?;
                }
                Err(err) => return Err(err.into()),
            }
        }
        let row: ThrottleRow = login_throttle::table.find(key).select(ThrottleRow::as_select()).first(conn)?;
        let locked = row.locked_until.is_some_and(|until| until > now);
        if row.failures >= policy.failures_before_lockout && !locked {
            let until = now + policy.lockout_for(row.lockouts);
            let locked =
                diesel::update(login_throttle::table.find(key).filter(login_throttle::lockouts.eq(row.lockouts)))
                    .set((login_throttle::locked_until.eq(until), login_throttle::lockouts.eq(row.lockouts + 1)))
                    .execute(conn)?;
            log::warn!("login locked out for {}s after {} failures", (until - now).num_seconds(), row.failures);
            return Ok(locked == 1);
        }
        Ok(false)
    })
}

/// A successful login clears the record.
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
