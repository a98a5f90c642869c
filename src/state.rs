//! What every handler shares: settings, the pool, the clock, keys and the
//! password machinery.

use std::sync::{Arc, OnceLock};

use actix_web::web;
use signet_verify::Verifier;

use crate::accounts::password::{PasswordHasher, PasswordPolicy};
use crate::clock::SharedClock;
use crate::config::Settings;
use crate::db::{DbConnection, Pool};
use crate::error::ApiError;
use crate::keys::service::KeyService;

pub struct AppState {
    pub settings: Arc<Settings>,
    pub pool: Pool,
    pub clock: SharedClock,
    pub keys: Arc<KeyService>,
    pub hasher: PasswordHasher,
    pub policy: PasswordPolicy,
    /// A real hash of a throw-away password: unknown users are checked against
    /// it so their login costs the same bcrypt time as a wrong password.
    /// Computed in the background at start-up so the service answers at once.
    pub dummy_hash: Arc<OnceLock<String>>,
    /// The same verifier the `Authenticated` extractor uses (one path).
    pub verifier: web::Data<Verifier>,
}

impl AppState {
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// Runs database work on the blocking pool, never on an async worker.
    pub async fn db<T, F>(&self, work: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        web::block(move || {
            let mut conn = pool.get()?;
            work(&mut conn)
        })
        .await?
    }

    /// Starts computing the dummy hash on a background thread.
    pub fn prepare_dummy_hash(&self) {
        let (cell, hasher) = (self.dummy_hash.clone(), self.hasher);
        std::thread::spawn(move || {
            dummy_hash(&cell, hasher);
        });
    }

    /// Runs bcrypt (or other CPU-heavy work) on the blocking pool.
    pub async fn blocking<T, F>(&self, work: F) -> Result<T, ApiError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        Ok(web::block(work).await?)
    }
}

/// The dummy hash, computing it if the background thread has not yet (blocks:
/// call from a blocking thread).
pub fn dummy_hash(cell: &OnceLock<String>, hasher: PasswordHasher) -> &str {
    cell.get_or_init(|| {
        hasher
            .hash("signet dummy password for unknown users")
            .unwrap_or_else(|err| {
                // bcrypt only fails on a bad cost, which config validation rules out.
                log::error!("dummy hash failed: {err}");
                String::new()
            })
    })
}
