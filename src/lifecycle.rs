//! Graceful stop (API.md "Operations"): on SIGTERM or SIGINT, `/readyz`
//! answers 503 at once (load balancers stop sending), the listeners close,
//! requests in flight get `server.shutdown_timeout_secs` to finish, the
//! background tasks stop, and the process exits with status 0.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The "we are stopping" flag every part of one instance watches.
#[derive(Debug, Default)]
pub struct Shutdown {
    stopping: AtomicBool,
}

impl Shutdown {
    pub fn begin(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Sleeps up to `period` in short steps; false when stopping began meanwhile.
    pub fn sleep(&self, period: Duration) -> bool {
        let started = Instant::now();
        while started.elapsed() < period {
            if self.is_stopping() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100).min(period - started.elapsed()));
        }
        !self.is_stopping()
    }
}

/// Resolves at the first SIGTERM or SIGINT (Ctrl-C).
pub async fn stop_signal() -> &'static str {
    #[cfg(unix)]
    {
        use actix_web::rt::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio_select(term.recv(), actix_web::rt::signal::ctrl_c()).await,
            Err(err) => {
                log::warn!("cannot listen for SIGTERM ({err}); stopping on SIGINT only");
                let _ = actix_web::rt::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = actix_web::rt::signal::ctrl_c().await;
        "SIGINT"
    }
}

/// The first of the two signals, named.
#[cfg(unix)]
async fn tokio_select<T, U>(
    term: impl std::future::Future<Output = T>,
    int: impl std::future::Future<Output = U>,
) -> &'static str {
    use futures_util::future::{select, Either};
    let (term, int) = (std::pin::pin!(term), std::pin::pin!(int));
    match select(term, int).await {
        Either::Left(_) => "SIGTERM",
        Either::Right(_) => "SIGINT",
    }
}
