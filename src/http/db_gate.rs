//! Where database work waits its turn: on the async side, in arrival order,
//! before it takes a blocking thread.
//!
//! Without it every request took a blocking thread at once and waited there,
//! on the r2d2 pool's condition variable (32 clients, 8 connections: 24
//! parked threads woken in no order). SQLite's hot writes do not come here:
//! they go to the batching writer thread (`sqlite_writer`).

use std::time::Duration;

use actix_web::rt::time::timeout;
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::error::ApiError;

pub struct DbGate {
    /// One permit per pooled connection, so a blocking thread that starts
    /// the work finds a connection free (background tasks aside).
    connections: Semaphore,
    /// How long a request waits in all before it is told 503 (the pool's
    /// own check-out timeout).
    patience: Duration,
}

impl DbGate {
    pub fn new(connections: u32, patience: Duration) -> Self {
        DbGate { connections: Semaphore::new(connections as usize), patience }
    }

    /// Waits for a connection's turn, at most the configured patience: then
    /// 503, like an exhausted pool. Hold the permit until the work is done.
    pub async fn turn(&self) -> Result<SemaphorePermit<'_>, ApiError> {
        match timeout(self.patience, self.connections.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            // The semaphore is never closed; a timeout is the busy case.
            _ => Err(ApiError::Unavailable("no database connection became free in time".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_web::test]
    async fn connections_bound_the_turns_and_a_wait_ends_in_503() {
        let gate = DbGate::new(2, Duration::from_millis(50));
        let first = gate.turn().await.expect("first");
        let _second = gate.turn().await.expect("second");
        assert!(matches!(gate.turn().await, Err(ApiError::Unavailable(_))), "two connections, two turns");
        drop(first);
        assert!(gate.turn().await.is_ok(), "a turn comes back when the work is done");
    }
}
