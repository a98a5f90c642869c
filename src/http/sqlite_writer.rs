//! SQLite's writes on the hot paths (login, refresh, logout, OAuth grants),
//! through one writer thread with group commit.
//!
//! SQLite lets one connection write at a time, so writers queued anyway; each
//! paid its own `BEGIN`/`COMMIT` and two thread hand-offs while holding the
//! turn, and the machine sat a third idle at 2,300 refreshes/s (BENCHMARKS.md,
//! issue 16). Here the writer thread takes every job waiting (up to
//! [`MAX_BATCH`]) into one `BEGIN IMMEDIATE` transaction: each job's own
//! transaction becomes a savepoint, so a job that fails rolls back alone, and
//! the answers go out only after the batch commits. If the commit fails,
//! every job of the batch is told 503 (nothing of it was stored).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::thread;

use crate::audit;
use crate::db::{ConnectionManager, DbConnection};
use crate::error::ApiError;

/// Most jobs in one transaction: bounds how long the first one waits.
pub const MAX_BATCH: usize = 64;

/// Runs one job's work (or learns it cannot run); returns how to answer it
/// once the batch is settled (`None`: committed; `Some(error)`: lost).
pub type Job = Box<dyn FnOnce(Attempt<'_>) -> Answer + Send>;
pub type Answer = Box<dyn FnOnce(Option<ApiError>) + Send>;

/// What the writer can do with a job.
pub enum Attempt<'a> {
    Run(&'a mut DbConnection),
    /// No transaction could be opened (database locked by another process,
    /// no connection): the job answers this error without running.
    Refused(ApiError),
}

pub struct SqliteWriter {
    jobs: SyncSender<Job>,
}

impl SqliteWriter {
    /// Starts the writer thread with its own connection; at most `queue`
    /// jobs wait for it.
    pub fn start(manager: ConnectionManager, queue: usize) -> std::io::Result<SqliteWriter> {
        let (jobs, waiting) = sync_channel(queue);
        thread::Builder::new().name("sqlite-writer".into()).spawn(move || run(manager, waiting))?;
        Ok(SqliteWriter { jobs })
    }

    /// Queues a job; 503 at once when the queue is full (or the writer is gone).
    pub fn submit(&self, job: Job) -> Result<(), ApiError> {
        self.jobs.try_send(job).map_err(|err| match err {
            TrySendError::Full(_) => ApiError::Unavailable("the database write queue is full".into()),
            TrySendError::Disconnected(_) => ApiError::Unavailable("the database writer stopped".into()),
        })
    }
}

/// The writer thread: ends when every sender is gone (the app stopped).
fn run(manager: ConnectionManager, waiting: Receiver<Job>) {
    let mut conn: Option<DbConnection> = None;
    while let Ok(first) = waiting.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match waiting.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let db = match conn.as_mut() {
            Some(db) => db,
            None => match manager.connect_to_target() {
                Ok(db) => conn.insert(db),
                Err(err) => {
                    log::warn!("database connection failed: {err}");
                    refuse(batch, &err.to_string());
                    continue;
                }
            },
        };
        if !run_batch(db, batch) {
            // A panic or a failed commit: start the next batch on a new connection.
            conn = None;
        }
    }
}

/// One transaction for the whole batch; false when the connection should go.
fn run_batch(conn: &mut DbConnection, batch: Vec<Job>) -> bool {
    let mut answers = Vec::with_capacity(batch.len());
    let mut waiting = batch.into_iter();
    let settled = audit::sqlite_batch(conn, |conn| {
        for job in waiting.by_ref() {
            match catch_unwind(AssertUnwindSafe(|| job(Attempt::Run(conn)))) {
                Ok(answer) => answers.push(answer),
                // Its savepoint may still be open: roll the batch back (the
                // connection is then dropped, which ends the transaction).
                // The panicking job's request hears nothing and answers 500.
                Err(_) => return false,
            }
        }
        true
    });
    let failure = match settled {
        Ok(true) => None,
        Ok(false) => Some("a write in the batch panicked; the batch was rolled back".to_owned()),
        Err(err) => Some(format!("the batch could not commit: {err}")),
    };
    if let Some(why) = &failure {
        log::warn!("batched database writes not stored: {why}");
    }
    let healthy = failure.is_none();
    for answer in answers {
        answer(failure.as_ref().map(|why| ApiError::Unavailable(why.clone())));
    }
    // Jobs never run (the transaction did not open, or a panic stopped the batch).
    refuse(waiting.collect(), failure.as_deref().unwrap_or("not run"));
    healthy
}

fn refuse(jobs: Vec<Job>, why: &str) {
    for job in jobs {
        job(Attempt::Refused(ApiError::Unavailable(why.to_owned())))(None);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::channel;

    use diesel::connection::SimpleConnection;
    use diesel::prelude::*;
    use diesel::sql_types::Text;

    use super::*;
    use crate::db::Target;

    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        x: String,
    }

    fn database() -> (tempfile::TempDir, ConnectionManager, DbConnection) {
        let dir = tempfile::tempdir().unwrap();
        let target = Target::Sqlite(dir.path().join("w.db"));
        let mut conn = ConnectionManager::new(target.clone()).connect_to_target().unwrap();
        conn.batch_execute("CREATE TABLE t (x TEXT NOT NULL)").unwrap();
        (dir, ConnectionManager::new(target), conn)
    }

    fn rows(conn: &mut DbConnection) -> Vec<String> {
        let rows: Vec<Row> = diesel::sql_query("SELECT x FROM t ORDER BY x").load(conn).unwrap();
        rows.into_iter().map(|r| r.x).collect()
    }

    /// A job inserting `x` in its own transaction, failing after the insert
    /// when `fail`; reports (its result, the batch's verdict) on `seen`.
    fn insert(x: &'static str, fail: bool, seen: std::sync::mpsc::Sender<(String, Option<String>)>) -> Job {
        Box::new(move |attempt| {
            let result = match attempt {
                Attempt::Run(conn) => conn
                    .transaction(|conn| {
                        diesel::sql_query(format!("INSERT INTO t VALUES ('{x}')")).execute(conn)?;
                        if fail {
                            return Err(diesel::result::Error::RollbackTransaction);
                        }
                        Ok(())
                    })
                    .map_err(|e| e.to_string()),
                Attempt::Refused(err) => Err(err.to_string()),
            };
            Box::new(move |lost: Option<ApiError>| {
                let outcome = format!("{x}: {}", if result.is_ok() { "ok" } else { "failed" });
                seen.send((outcome, lost.map(|e| e.to_string()))).unwrap();
            })
        })
    }

    #[test]
    fn a_failing_job_rolls_back_alone_and_the_rest_commit_together() {
        let (_dir, _manager, mut conn) = database();
        let (seen, answers) = channel();
        let batch = vec![insert("a", false, seen.clone()), insert("b", true, seen.clone()), insert("c", false, seen)];
        assert!(run_batch(&mut conn, batch));
        let answered: Vec<_> = answers.try_iter().collect();
        assert_eq!(
            answered,
            vec![("a: ok".into(), None), ("b: failed".into(), None), ("c: ok".into(), None)],
            "each job hears its own result once the batch committed"
        );
        assert_eq!(rows(&mut conn), vec!["a", "c"]);
    }

    #[test]
    fn a_locked_database_refuses_every_job_of_the_batch() {
        let (_dir, manager, mut other) = database();
        other.batch_execute("BEGIN EXCLUSIVE").unwrap();
        let mut conn = manager.connect_to_target().unwrap();
        conn.batch_execute("PRAGMA busy_timeout = 50").unwrap();
        let (seen, answers) = channel();
        assert!(!run_batch(&mut conn, vec![insert("a", false, seen.clone()), insert("b", false, seen)]));
        let answered: Vec<_> = answers.try_iter().collect();
        assert_eq!(answered.len(), 2, "every job is answered");
        for (outcome, _) in answered {
            assert!(outcome.ends_with("failed"), "{outcome}: refused, not run");
        }
        other.batch_execute("COMMIT").unwrap();
        assert!(rows(&mut other).is_empty());
    }

    #[test]
    fn a_panicking_job_rolls_the_batch_back_and_the_others_hear_so() {
        let (_dir, manager, mut check) = database();
        let mut conn = manager.connect_to_target().unwrap();
        let (seen, answers) = channel();
        let panics: Job = Box::new(|_| panic!("a bug in a write"));
        let batch = vec![insert("a", false, seen.clone()), panics, insert("c", false, seen)];
        assert!(!run_batch(&mut conn, batch), "the connection is to be replaced");
        drop(conn);
        let answered: Vec<_> = answers.try_iter().collect();
        assert_eq!(answered.len(), 2);
        assert!(answered[0].1.is_some(), "a ran but its batch was lost: {answered:?}");
        assert!(answered[1].0.ends_with("failed"), "c never ran: {answered:?}");
        assert!(rows(&mut check).is_empty(), "nothing of the batch was stored");
    }

    #[test]
    fn the_writer_thread_answers_submitted_jobs() {
        let (_dir, manager, mut check) = database();
        let writer = SqliteWriter::start(manager, 8).unwrap();
        let (seen, answers) = channel();
        for x in ["a", "b", "c"] {
            writer.submit(insert(x, false, seen.clone())).unwrap();
        }
        for _ in 0..3 {
            let (outcome, lost) = answers.recv_timeout(std::time::Duration::from_secs(5)).unwrap();
            assert!(outcome.ends_with("ok") && lost.is_none(), "{outcome} {lost:?}");
        }
        assert_eq!(rows(&mut check), vec!["a", "b", "c"]);
    }

    #[test]
    fn a_full_queue_answers_503_at_once() {
        let (_dir, manager, _check) = database();
        let writer = SqliteWriter::start(manager, 1).unwrap();
        let (started, running) = channel();
        let (release, hold) = channel::<()>();
        // The first job holds the writer thread until released.
        writer
            .submit(Box::new(move |_| {
                started.send(()).unwrap();
                hold.recv().unwrap();
                Box::new(|_| {})
            }))
            .unwrap();
        running.recv_timeout(std::time::Duration::from_secs(5)).unwrap();
        let (seen, _answers) = channel();
        writer.submit(insert("queued", false, seen.clone())).expect("one place in the queue");
        let refused = writer.submit(insert("refused", false, seen));
        assert!(matches!(refused, Err(ApiError::Unavailable(_))), "full: 503 at once, not a wait");
        release.send(()).unwrap();
    }
}
