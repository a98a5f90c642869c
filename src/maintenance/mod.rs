//! Purging what has expired (API.md "Operations"), on plain arguments so the
//! background task, `signet gc` and the tests run the same code.
//!
//! Each job deletes in batches ([`BATCH`] rows, [`SQLITE_BATCH`] on SQLite), one short statement (and
//! transaction) per batch, so no request waits behind a long delete. On
//! PostgreSQL the batch is chosen `FOR UPDATE SKIP LOCKED`: instances purging
//! at the same moment take disjoint batches instead of queueing on each
//! other's rows. SQLite serves a single instance.
//!
//! Adding a table (unreferenced status lists): add a [`Job`] to [`JOBS`]
//! with its two statements and its cutoff.

pub mod task;

use std::fmt;
use std::time::Duration;

use chrono::{NaiveDateTime, TimeDelta};
use diesel::sql_types::Timestamp;
use diesel::{sql_query, QueryResult, RunQueryDsl};

use crate::config::Settings;
use crate::db::DbConnection;

/// Rows per delete statement on PostgreSQL (row locks: other writers wait
/// only for the rows they share with the batch, which are expired anyway).
pub const BATCH: i64 = 1000;
/// Rows per delete statement on SQLite, whose one write lock every writer
/// waits for: small batches keep that wait to a few milliseconds.
pub const SQLITE_BATCH: i64 = 200;

/// Refresh tokens are kept this long past their expiry (they no longer
/// verify; a little slack keeps clock-skewed retries answerable).
const REFRESH_TOKEN_MARGIN: TimeDelta = TimeDelta::hours(1);
/// Sessions are kept this long past their absolute end, so a session list or
/// an investigation right after the end still finds them.
const SESSION_MARGIN: TimeDelta = TimeDelta::days(1);

/// One table's purge: a batch delete per backend, bound to one cutoff.
pub struct Job {
    pub name: &'static str,
    /// `$1` is the cutoff; deletes at most `BATCH` rows.
    postgres: &'static str,
    /// `?` is the cutoff; deletes at most `SQLITE_BATCH` rows.
    sqlite: &'static str,
    cutoff: fn(&Settings, NaiveDateTime) -> NaiveDateTime,
}

/// In order: refresh tokens before the sessions they belong to (a session's
/// tokens never outlive it, so its rows are gone before it goes).
pub const JOBS: &[Job] = &[
    Job {
        name: "refresh_tokens",
        postgres: "DELETE FROM refresh_tokens WHERE jti IN (SELECT jti FROM refresh_tokens \
                   WHERE expires_at < $1 LIMIT 1000 FOR UPDATE SKIP LOCKED)",
        sqlite: "DELETE FROM refresh_tokens WHERE rowid IN (SELECT rowid FROM refresh_tokens \
                 WHERE expires_at < ? LIMIT 200)",
        cutoff: |_, now| now - REFRESH_TOKEN_MARGIN,
    },
    Job {
        name: "sessions",
        postgres: "DELETE FROM sessions WHERE id IN (SELECT id FROM sessions \
                   WHERE expires_at < $1 LIMIT 1000 FOR UPDATE SKIP LOCKED)",
        sqlite: "DELETE FROM sessions WHERE rowid IN (SELECT rowid FROM sessions WHERE expires_at < ? LIMIT 200)",
        cutoff: |_, now| now - SESSION_MARGIN,
    },
    Job {
        // Quiet names whose failures are forgotten and whose lockout is over
        // (the same rule `throttle::record_failure` applies in passing).
        name: "login_throttle",
        postgres: "DELETE FROM login_throttle WHERE username_key IN (SELECT username_key FROM login_throttle \
                   WHERE updated_at < $1 AND (locked_until IS NULL OR locked_until < $1) \
                   LIMIT 1000 FOR UPDATE SKIP LOCKED)",
        sqlite: "DELETE FROM login_throttle WHERE rowid IN (SELECT rowid FROM login_throttle \
                 WHERE updated_at < ?1 AND (locked_until IS NULL OR locked_until < ?1) LIMIT 200)",
        cutoff: |settings, now| now - TimeDelta::seconds(settings.throttle.failure_window_secs),
    },
    Job {
        // Events past `audit.retention_days`.
        name: "audit_events",
        postgres: "DELETE FROM audit_events WHERE id IN (SELECT id FROM audit_events \
                   WHERE at < $1 LIMIT 1000 FOR UPDATE SKIP LOCKED)",
        sqlite: "DELETE FROM audit_events WHERE id IN (SELECT id FROM audit_events WHERE at < ? LIMIT 200)",
        cutoff: |settings, now| now - TimeDelta::days(settings.audit.retention_days),
    },
];

/// Rows deleted per job, in `JOBS` order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PurgeReport {
    pub deleted: Vec<(&'static str, u64)>,
}

impl PurgeReport {
    pub fn total(&self) -> u64 {
        self.deleted.iter().map(|(_, n)| n).sum()
    }

    pub fn get(&self, name: &str) -> u64 {
        self.deleted.iter().find(|(job, _)| *job == name).map_or(0, |(_, n)| *n)
    }
}

impl fmt::Display for PurgeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.deleted.iter().map(|(name, n)| format!("{name}: {n}")).collect();
        write!(f, "purged {}", parts.join(", "))
    }
}

/// How to pace a purge.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// Pause between batches, so waiting writers get the SQLite write lock
    /// (its busy handler polls; a purge that re-locked at once could starve them).
    pub pause: Duration,
}

impl Pace {
    /// No pause on PostgreSQL (row locks only). On SQLite, longer than the
    /// busy handler's usual sleep steps, so a writer waiting for the lock
    /// takes it before the next batch does.
    pub fn for_backend(conn: &DbConnection) -> Pace {
        let pause = match conn {
            DbConnection::Postgres(_) => Duration::ZERO,
            DbConnection::Sqlite(_) => Duration::from_millis(30),
        };
        Pace { pause }
    }
}

/// Runs every job until nothing older than its cutoff is left.
pub fn purge(conn: &mut DbConnection, settings: &Settings, now: NaiveDateTime, pace: Pace) -> QueryResult<PurgeReport> {
    purge_while(conn, settings, now, pace, &|| true)
}

/// As [`purge`], stopping between batches once `keep_going` says so.
pub fn purge_while(
    conn: &mut DbConnection,
    settings: &Settings,
    now: NaiveDateTime,
    pace: Pace,
    keep_going: &dyn Fn() -> bool,
) -> QueryResult<PurgeReport> {
    let mut report = PurgeReport::default();
    let batch = match conn {
        DbConnection::Postgres(_) => BATCH,
        DbConnection::Sqlite(_) => SQLITE_BATCH,
    };
    for job in JOBS {
        let cutoff = (job.cutoff)(settings, now);
        let mut deleted = 0u64;
        loop {
            if !keep_going() {
                break;
            }
            let n = delete_batch(conn, job, cutoff)?;
            deleted += n as u64;
            if (n as i64) < batch {
                break;
            }
            if !pace.pause.is_zero() {
                std::thread::sleep(pace.pause);
            }
        }
        report.deleted.push((job.name, deleted));
    }
    Ok(report)
}

fn delete_batch(conn: &mut DbConnection, job: &Job, cutoff: NaiveDateTime) -> QueryResult<usize> {
    match conn {
        DbConnection::Postgres(pg) => sql_query(job.postgres).bind::<Timestamp, _>(cutoff).execute(pg),
        DbConnection::Sqlite(sqlite) => sql_query(job.sqlite).bind::<Timestamp, _>(cutoff).execute(sqlite),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_statement_is_bounded_by_the_batch_size() {
        for job in JOBS {
            assert!(job.postgres.contains(&format!("LIMIT {BATCH}")), "{}", job.name);
            assert!(job.sqlite.contains(&format!("LIMIT {SQLITE_BATCH}")), "{}", job.name);
            assert!(job.postgres.contains("SKIP LOCKED"), "{}", job.name);
        }
    }
}
