//! The hottest statements, batched: a thread per kind of work (or a few),
//! each with its own connection, takes every request of that kind waiting and
//! answers them all at once.
//!
//! Through the pool, every refresh and every bearer check woke a blocking
//! thread, which ran one statement (on PostgreSQL, sleeping in libpq's `poll`
//! for the answer) and woke the worker again: on PostgreSQL about four and a
//! half context switches per refresh, a fifth of signet's CPU in the scheduler
//! and 3% in contention on the blocking pool's lock (BENCHMARKS.md, issue 16,
//! session 7). Here a thread wakes once per batch; on PostgreSQL the batch is
//! one statement, one round trip (and, for writes, one commit). The worker
//! that asked does the rest (signing). The kinds: [`Rotations`] (PostgreSQL:
//! each refresh still its own call of `signet_rotate_refresh`, with its own
//! claim and locks; SQLite batches its writes in `sqlite_writer`) and
//! [`SessionReads`] (the bearer check's session-and-user read, both backends).
//!
//! Whatever a batch cannot settle goes back to the caller, which takes the
//! usual path through the pool: [`Batched::NotRun`] when the queue is full,
//! there is no connection, or the batch failed as a whole (nothing of it was
//! stored: each request is then tried again alone).

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use diesel::QueryResult;
use tokio::sync::oneshot;

use crate::accounts::model::User;
use crate::db::{ConnectionManager, DbConnection, Target};
use crate::sessions::model::{self, OneCallRotation, RotationRequest, Session};
use crate::status_lists::StatusRef;

/// Most requests in one statement: bounds how long the first one waits.
pub const MAX_BATCH: usize = 64;

/// After a failed connect a thread sends its batches back at once for this
/// long instead of trying again for each (the pool reports the outage).
const RECONNECT_PAUSE: Duration = Duration::from_secs(1);

/// One kind of batched work: its statement over many requests, answering
/// each (in the requests' order).
pub trait BatchWork: Clone + Send + 'static {
    type Request: Send + 'static;
    type Answer: Send + 'static;
    /// The threads' name.
    const NAME: &'static str;
    fn run(&self, conn: &mut DbConnection, requests: &[Self::Request]) -> QueryResult<Vec<Self::Answer>>;
}

/// How a batched request ended.
pub enum Batched<A> {
    Done(A),
    /// Not run, or run in a batch that failed and stored nothing: take the
    /// usual path.
    NotRun,
}

struct Pending<W: BatchWork> {
    request: W::Request,
    answer: oneshot::Sender<Batched<W::Answer>>,
}

pub struct Batches<W: BatchWork> {
    queue: SyncSender<Pending<W>>,
}

impl<W: BatchWork> Batches<W> {
    /// Starts `threads` batching threads for the database at `target`; each
    /// connects when its first batch comes. At most `queue` requests wait.
    pub fn start(work: W, target: &Target, threads: usize, queue: usize) -> std::io::Result<Batches<W>> {
        let (sender, waiting) = sync_channel(queue);
        let waiting = Arc::new(Mutex::new(waiting));
        for n in 0..threads {
            let (manager, waiting, work) = (ConnectionManager::new(target.clone()), waiting.clone(), work.clone());
            thread::Builder::new().name(format!("{}-{n}", W::NAME)).spawn(move || run(&work, manager, &waiting))?;
        }
        Ok(Batches { queue: sender })
    }

    /// Answers `request` in the next batch; [`Batched::NotRun`] at once when
    /// the queue is full.
    pub async fn ask(&self, request: W::Request) -> Batched<W::Answer> {
        let (answer, answered) = oneshot::channel();
        if self.queue.try_send(Pending { request, answer }).is_err() {
            return Batched::NotRun;
        }
        // No answer at all: the thread panicked before answering.
        answered.await.unwrap_or(Batched::NotRun)
    }
}

/// A batching thread: ends when every sender is gone (the app stopped).
fn run<W: BatchWork>(work: &W, manager: ConnectionManager, waiting: &Mutex<Receiver<Pending<W>>>) {
    let mut conn: Option<DbConnection> = None;
    let mut next_connect = Instant::now();
    while let Some(batch) = next_batch(waiting) {
        if conn.is_none() && Instant::now() >= next_connect {
            match manager.connect_to_target() {
                Ok(connected) => conn = Some(connected),
                Err(err) => {
                    log::warn!("{}: database connection failed: {err}", W::NAME);
                    next_connect = Instant::now() + RECONNECT_PAUSE;
                }
            }
        }
        let (requests, answers): (Vec<_>, Vec<_>) = batch.into_iter().map(|p| (p.request, p.answer)).unzip();
        let Some(db) = conn.as_mut() else {
            not_run(answers);
            continue;
        };
        match catch_unwind(AssertUnwindSafe(|| work.run(db, &requests))) {
            Ok(Ok(done)) if done.len() == answers.len() => {
                for (answer, done) in answers.into_iter().zip(done) {
                    let _ = answer.send(Batched::Done(done));
                }
            }
            failed => {
                // Nothing of the batch was stored. The connection may be the
                // cause (the database restarted): the next batch takes a new one.
                if let Ok(Err(err)) = failed {
                    log::warn!("{}: a batch of {} failed, each is tried again alone: {err}", W::NAME, requests.len());
                }
                conn = None;
                not_run(answers);
            }
        }
    }
}

/// Waits for a request, then takes every other one waiting (up to
/// [`MAX_BATCH`]). One thread at a time takes; the others run their batches.
fn next_batch<W: BatchWork>(waiting: &Mutex<Receiver<Pending<W>>>) -> Option<Vec<Pending<W>>> {
    let receiver = waiting.lock().unwrap_or_else(PoisonError::into_inner);
    let mut batch = vec![receiver.recv().ok()?];
    while batch.len() < MAX_BATCH {
        match receiver.try_recv() {
            Ok(pending) => batch.push(pending),
            Err(_) => break,
        }
    }
    Some(batch)
}

fn not_run<A>(answers: impl IntoIterator<Item = oneshot::Sender<Batched<A>>>) {
    for answer in answers {
        let _ = answer.send(Batched::NotRun);
    }
}

/// PostgreSQL's refresh rotations ([`model::rotate_batch`]); each answer is
/// the rotation stored (the caller signs the pair) or None where the
/// function declined (the rotation transaction tells why: grace, reuse,
/// revoked...).
#[derive(Clone)]
pub struct Rotations {
    /// `revocation.enabled`: the session must hold its status list index.
    pub needs_index: bool,
}

impl BatchWork for Rotations {
    type Request = RotationRequest;
    type Answer = Option<Box<OneCallRotation>>;
    const NAME: &'static str = "pg-rotations";

    fn run(&self, conn: &mut DbConnection, requests: &[RotationRequest]) -> QueryResult<Vec<Self::Answer>> {
        let DbConnection::Postgres(pg) = conn else {
            return Err(diesel::result::Error::QueryBuilderError("batched rotations are PostgreSQL's".into()));
        };
        let rotated = model::rotate_batch(pg, requests, self.needs_index)?;
        Ok(rotated.into_iter().map(|r| r.map(Box::new)).collect())
    }
}

/// The bearer check's read: sessions by id, each with its status list index
/// and its user; None for an unknown id. PostgreSQL: one statement
/// ([`model::find_sessions_with_users`]). SQLite: one prepared read per id,
/// in process (no round trip to save: the hand-offs are what batching saves),
/// on a connection that reads beside the writer (WAL).
#[derive(Clone)]
pub struct SessionReads;

pub type SessionWithUser = (Session, Option<StatusRef>, User);

impl BatchWork for SessionReads {
    type Request = String;
    type Answer = Option<Box<SessionWithUser>>;
    const NAME: &'static str = "session-reads";

    fn run(&self, conn: &mut DbConnection, ids: &[String]) -> QueryResult<Vec<Self::Answer>> {
        // The same session may be asked for more than once in a batch.
        let mut found: HashMap<&str, Option<SessionWithUser>> = HashMap::with_capacity(ids.len());
        match conn {
            DbConnection::Postgres(pg) => {
                let rows = model::find_sessions_with_users(pg, ids)?;
                let mut rows: HashMap<String, SessionWithUser> =
                    rows.into_iter().map(|r| (r.0.id.clone(), r)).collect();
                for id in ids {
                    found.entry(id).or_insert_with(|| rows.remove(id.as_str()));
                }
            }
            DbConnection::Sqlite(_) => {
                for id in ids {
                    if !found.contains_key(id.as_str()) {
                        let row = model::find_session_with_user(conn, id)?;
                        found.insert(id, row);
                    }
                }
            }
        }
        Ok(ids.iter().map(|id| found.get(id.as_str()).cloned().flatten().map(Box::new)).collect())
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use secrecy::SecretString;

    use super::*;

    fn request() -> RotationRequest {
        let now = Utc::now().naive_utc();
        RotationRequest {
            user_id: "u".into(),
            session_id: "s".into(),
            jti: "j".into(),
            successor: "n".into(),
            successor_expires_at: now,
            now,
        }
    }

    fn unreachable() -> Target {
        // Nothing listens on port 1.
        Target::parse(&SecretString::from("postgres://nobody@127.0.0.1:1/none"), 1)
    }

    #[tokio::test]
    async fn requests_go_back_to_the_caller_when_the_database_cannot_be_reached() {
        // The connect fails; then the pause sends the next batches back without trying.
        let rotations = Batches::start(Rotations { needs_index: true }, &unreachable(), 1, 4).unwrap();
        for _ in 0..3 {
            assert!(matches!(rotations.ask(request()).await, Batched::NotRun));
        }
        let reads = Batches::start(SessionReads, &unreachable(), 1, 4).unwrap();
        assert!(matches!(reads.ask("s".into()).await, Batched::NotRun));
    }

    #[tokio::test]
    async fn with_no_thread_to_take_them_requests_go_back_at_once() {
        let rotations = Batches::start(Rotations { needs_index: true }, &unreachable(), 0, 4).unwrap();
        assert!(matches!(rotations.ask(request()).await, Batched::NotRun));
    }
}
