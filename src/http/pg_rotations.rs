//! PostgreSQL's refreshes, batched: a few threads, each with its own
//! connection, take every rotation waiting and run them in one statement.
//!
//! Through the pool, every refresh woke a blocking thread, which sent one
//! call, slept in libpq's `poll` for the answer and woke the worker again:
//! about four and a half context switches per refresh, a fifth of signet's CPU
//! in the scheduler and 3% in contention on the blocking pool's lock
//! (BENCHMARKS.md, issue 16, session 7). Here a thread wakes once per batch,
//! makes one round trip and one commit for all of it
//! ([`model::rotate_batch`]: each rotation still its own call of
//! `signet_rotate_refresh`, with its own claim and locks), and the worker
//! that asked signs the pair itself. Anything the batch cannot settle goes
//! back to the caller, which takes the usual path through the pool: a
//! rotation the function declines ([`Batched::NotClaimed`]: grace, reuse,
//! revoked...), and a batch that did not run or failed as a whole
//! ([`Batched::NotRun`]: queue full, no connection, deadlock), whose
//! rotations are each tried again alone.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use diesel::PgConnection;
use tokio::sync::oneshot;

use crate::db::{ConnectionManager, DbConnection, Target};
use crate::sessions::model::{self, OneCallRotation, RotationRequest};

/// Most rotations in one statement: bounds how long the first one waits.
pub const MAX_BATCH: usize = 64;

/// After a failed connect a thread sends its batches back at once for this
/// long instead of trying again for each (the pool reports the outage).
const RECONNECT_PAUSE: Duration = Duration::from_secs(1);

/// How a batched rotation ended.
pub enum Batched {
    /// Claimed and stored (committed): the caller signs the pair.
    Rotated(Box<OneCallRotation>),
    /// The function declined it; the rotation transaction tells why.
    NotClaimed,
    /// Not run, or run in a batch that failed and stored nothing.
    NotRun,
}

struct Pending {
    request: RotationRequest,
    answer: oneshot::Sender<Batched>,
}

pub struct PgRotations {
    queue: SyncSender<Pending>,
}

impl PgRotations {
    /// Starts `threads` batching threads for the database at `target`; each
    /// connects when its first batch comes. At most `queue` rotations wait;
    /// `needs_index` as for [`model::rotate_batch`].
    pub fn start(target: &Target, threads: usize, queue: usize, needs_index: bool) -> std::io::Result<PgRotations> {
        let (sender, waiting) = sync_channel(queue);
        let waiting = Arc::new(Mutex::new(waiting));
        for n in 0..threads {
            let (manager, waiting) = (ConnectionManager::new(target.clone()), waiting.clone());
            thread::Builder::new()
                .name(format!("pg-rotations-{n}"))
                .spawn(move || run(manager, &waiting, needs_index))?;
        }
        Ok(PgRotations { queue: sender })
    }

    /// Rotates in the next batch; [`Batched::NotRun`] at once when the queue
    /// is full.
    pub async fn rotate(&self, request: RotationRequest) -> Batched {
        let (answer, answered) = oneshot::channel();
        if self.queue.try_send(Pending { request, answer }).is_err() {
            return Batched::NotRun;
        }
        // No answer at all: the thread panicked before answering.
        answered.await.unwrap_or(Batched::NotRun)
    }
}

/// A batching thread: ends when every sender is gone (the app stopped).
fn run(manager: ConnectionManager, waiting: &Mutex<Receiver<Pending>>, needs_index: bool) {
    let mut conn: Option<PgConnection> = None;
    let mut next_connect = Instant::now();
    while let Some(batch) = next_batch(waiting) {
        if conn.is_none() && Instant::now() >= next_connect {
            match manager.connect_to_target() {
                Ok(DbConnection::Postgres(pg)) => conn = Some(pg),
                Ok(DbConnection::Sqlite(_)) => {
                    log::error!("batched refreshes are for PostgreSQL only; this thread stops");
                    answer_all(batch, || Batched::NotRun);
                    return;
                }
                Err(err) => {
                    log::warn!("database connection for batched refreshes failed: {err}");
                    next_connect = Instant::now() + RECONNECT_PAUSE;
                }
            }
        }
        let Some(pg) = conn.as_mut() else {
            answer_all(batch, || Batched::NotRun);
            continue;
        };
        let (requests, answers): (Vec<_>, Vec<_>) = batch.into_iter().map(|p| (p.request, p.answer)).unzip();
        match catch_unwind(AssertUnwindSafe(|| model::rotate_batch(pg, &requests, needs_index))) {
            Ok(Ok(rotated)) => {
                for (answer, rotation) in answers.into_iter().zip(rotated) {
                    let _ = answer.send(rotation.map_or(Batched::NotClaimed, |r| Batched::Rotated(Box::new(r))));
                }
            }
            failed => {
                // Nothing of the batch was stored. The connection may be the
                // cause (the database restarted): the next batch takes a new one.
                if let Ok(Err(err)) = failed {
                    log::warn!("a batch of {} refreshes failed, each is tried again alone: {err}", requests.len());
                }
                conn = None;
                for answer in answers {
                    let _ = answer.send(Batched::NotRun);
                }
            }
        }
    }
}

/// Waits for a rotation, then takes every other one waiting (up to
/// [`MAX_BATCH`]). One thread at a time takes; the others run their batches.
fn next_batch(waiting: &Mutex<Receiver<Pending>>) -> Option<Vec<Pending>> {
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

fn answer_all(batch: Vec<Pending>, outcome: impl Fn() -> Batched) {
    for pending in batch {
        let _ = pending.answer.send(outcome());
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

    #[tokio::test]
    async fn rotations_go_back_to_the_caller_when_the_database_cannot_be_reached() {
        // Nothing listens on port 1: the connect fails, and then the pause
        // sends the next batches back without trying.
        let target = Target::parse(&SecretString::from("postgres://nobody@127.0.0.1:1/none"), 1);
        let rotations = PgRotations::start(&target, 1, 4, true).unwrap();
        for _ in 0..3 {
            assert!(matches!(rotations.rotate(request()).await, Batched::NotRun));
        }
    }

    #[tokio::test]
    async fn with_no_thread_to_take_them_rotations_go_back_at_once() {
        let target = Target::parse(&SecretString::from("postgres://nobody@127.0.0.1:1/none"), 1);
        let rotations = PgRotations::start(&target, 0, 4, true).unwrap();
        assert!(matches!(rotations.rotate(request()).await, Batched::NotRun));
    }
}
