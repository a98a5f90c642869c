//! The per-instance maintenance thread: every `maintenance.interval_secs` it
//! purges what expired, until the instance stops.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::{purge_while, Pace};
use crate::clock::SharedClock;
use crate::config::Settings;
use crate::db::Pool;
use crate::lifecycle::Shutdown;

/// Starts the thread; join it after `shutdown.begin()` (it stops between batches).
pub fn spawn(
    pool: Pool,
    settings: Arc<Settings>,
    clock: SharedClock,
    shutdown: Arc<Shutdown>,
) -> std::io::Result<JoinHandle<()>> {
    let period = Duration::from_secs(settings.maintenance.interval_secs);
    std::thread::Builder::new().name("signet-maintenance".into()).spawn(move || {
        while shutdown.sleep(period) {
            let mut conn = match pool.get() {
                Ok(conn) => conn,
                Err(err) => {
                    log::warn!("maintenance skipped: {err}");
                    continue;
                }
            };
            let pace = Pace::for_backend(&conn);
            let still_running = || !shutdown.is_stopping();
            match purge_while(&mut conn, &settings, clock.now_db(), pace, &still_running) {
                Ok(report) if report.total() > 0 => log::info!("maintenance: {report}"),
                Ok(_) => {}
                Err(err) => log::warn!("maintenance failed (retrying next interval): {err}"),
            }
        }
    })
}
