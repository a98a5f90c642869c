//! Where database work waits its turn: on the async side, in arrival order,
//! before it takes a blocking thread.
//!
//! Without it every request took a blocking thread at once and waited there,
//! on the r2d2 pool's condition variable (32 clients, 8 connections: 24
//! parked threads woken in no order) and, on SQLite, in the busy handler,
//! whose back-off sleeps (1, 2, 5 ... 100 ms, no queue) made the refresh tail.

use std::time::Duration;

use actix_web::rt::time::timeout;
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::error::ApiError;

/// Whether database work writes: on SQLite, writers take turns here.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Access {
    Read,
    Write,
}

pub struct DbGate {
    /// One permit per pooled connection, so a blocking thread that starts
    /// the work finds a connection free (background tasks aside).
    connections: Semaphore,
    /// SQLite only: one permit for work that writes. SQLite has one writer at
    /// a time; here writers queue without sleeping, and readers go on.
    sqlite_writer: Option<Semaphore>,
    /// How long a request waits in all before it is told 503 (the pool's
    /// own check-out timeout).
    patience: Duration,
}

/// The turn taken: hold it until the work is done.
pub struct Turn<'a> {
    _writer: Option<SemaphorePermit<'a>>,
    _connection: SemaphorePermit<'a>,
}

impl DbGate {
    pub fn new(connections: u32, sqlite: bool, patience: Duration) -> Self {
        DbGate {
            connections: Semaphore::new(connections as usize),
            sqlite_writer: sqlite.then(|| Semaphore::new(1)),
            patience,
        }
    }

    /// Waits for a connection's turn (and, for SQLite writes, the writer's),
    /// at most the configured patience: then 503, like an exhausted pool.
    pub async fn turn(&self, access: Access) -> Result<Turn<'_>, ApiError> {
        let waiting = async {
            let writer = match (&self.sqlite_writer, access) {
                (Some(writer), Access::Write) => Some(writer.acquire().await),
                _ => None,
            };
            let connection = self.connections.acquire().await;
            (writer.transpose(), connection)
        };
        match timeout(self.patience, waiting).await {
            Ok((Ok(writer), Ok(connection))) => Ok(Turn { _writer: writer, _connection: connection }),
            // The semaphores are never closed; a timeout is the busy case.
            _ => Err(ApiError::Unavailable("no database connection became free in time".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_web::test]
    async fn sqlite_writers_take_turns_while_readers_go_on() {
        let gate = DbGate::new(4, true, Duration::from_millis(50));
        let writing = gate.turn(Access::Write).await.expect("first writer");
        assert!(gate.turn(Access::Read).await.is_ok(), "a reader is not held up by a writer");
        let second = gate.turn(Access::Write).await;
        assert!(matches!(second, Err(ApiError::Unavailable(_))), "a second writer waits, then 503");
        drop(writing);
        assert!(gate.turn(Access::Write).await.is_ok(), "the next writer goes once the first is done");
    }

    #[actix_web::test]
    async fn postgres_writers_do_not_queue_and_connections_bound_everyone() {
        let gate = DbGate::new(2, false, Duration::from_millis(50));
        let a = gate.turn(Access::Write).await.expect("a");
        let _b = gate.turn(Access::Write).await.expect("b: PostgreSQL writers run side by side");
        assert!(gate.turn(Access::Read).await.is_err(), "two connections, two turns");
        drop(a);
        assert!(gate.turn(Access::Read).await.is_ok());
    }
}
