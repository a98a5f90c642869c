//! What every handler shares: settings, the pool, the clock, keys and the
//! password machinery.

use std::sync::Arc;

use actix_web::web;
use signet_verify::Verifier;

use crate::accounts::password::{PasswordHasher, PasswordPolicy};
use crate::clock::SharedClock;
use crate::config::Settings;
use crate::db::{DbConnection, Pool};
use crate::error::ApiError;
use crate::keys::ring::KeyRing;

pub struct AppState {
    pub settings: Arc<Settings>,
    pub pool: Pool,
    pub clock: SharedClock,
    pub keys: Arc<KeyRing>,
    pub hasher: PasswordHasher,
    pub policy: PasswordPolicy,
    /// A real hash of a throw-away password: unknown users are checked against
    /// it so their login costs the same bcrypt time as a wrong password.
    pub dummy_hash: String,
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

    /// Runs bcrypt (or other CPU-heavy work) on the blocking pool.
    pub async fn blocking<T, F>(&self, work: F) -> Result<T, ApiError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        Ok(web::block(work).await?)
    }
}
