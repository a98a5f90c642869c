//! The key service of one instance: loads the master key and the key ring,
//! takes rotation steps and reloads every `keys.reload_secs` on a background
//! thread, and keeps the verifier's keys in step.

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use actix_web::web;
use anyhow::Context;
use chrono::NaiveDateTime;
use signet_verify::{Rules, Verifier};

use super::master::MasterKey;
use super::model;
use super::ring::{KeyRing, SigningKey, Snapshot};
use super::rotation::{self, Schedule};
use crate::clock::SharedClock;
use crate::config::Settings;
use crate::db::{DbConnection, Pool};
use crate::error::ApiError;

/// At most one reload per this interval for refresh tokens with unknown `kid`s.
const UNKNOWN_KID_RELOAD_INTERVAL: Duration = Duration::from_secs(1);

pub struct KeyService {
    pool: Pool,
    master: MasterKey,
    schedule: Schedule,
    clock: SharedClock,
    ring: KeyRing,
    verifier: web::Data<Verifier>,
    reload_secs: u64,
    last_forced_reload: Mutex<Option<Instant>>,
}

impl KeyService {
    /// Blocking: loads (or on a fresh database creates) the master key,
    /// encrypts any plain legacy key, takes a rotation step and loads the ring.
    pub fn start(pool: Pool, settings: &Settings, clock: SharedClock) -> anyhow::Result<KeyService> {
        let mut conn = pool.get()?;
        let fresh = model::count(&mut conn)? == 0;
        let master = MasterKey::load(&settings.keys, fresh)?;
        let protected = rotation::protect_plain_keys(&mut conn, &master)?;
        if protected > 0 {
            log::warn!("encrypted {protected} signing key(s) stored in plain by an earlier version");
        }
        let schedule = Schedule::from_settings(settings);
        let now = clock.now_db();
        for event in rotation::step(&mut conn, &master, &schedule, now)? {
            log::info!("{event}");
        }
        let snapshot = load_snapshot(&mut conn, &master, now)?;
        let rules = Rules {
            issuer: settings.tokens.issuer.clone(),
            audience: settings.tokens.audience.clone(),
            leeway_secs: settings.tokens.leeway_secs,
        };
        let verifier_clock = clock.clone();
        let verifier = web::Data::new(Verifier::with_clock(
            snapshot.verification_keys(),
            rules,
            Arc::new(move || verifier_clock.unix()),
        ));
        Ok(KeyService {
            pool,
            master,
            schedule,
            clock,
            ring: KeyRing::new(snapshot),
            verifier,
            reload_secs: settings.keys.reload_secs,
            last_forced_reload: Mutex::new(None),
        })
    }

    /// Runs `tick` every `keys.reload_secs` until the service is dropped.
    pub fn spawn_background(self: &Arc<Self>) {
        let weak: Weak<KeyService> = Arc::downgrade(self);
        let period = Duration::from_secs(self.reload_secs);
        std::thread::Builder::new()
            .name("signet-keys".into())
            .spawn(move || loop {
                let started = Instant::now();
                while started.elapsed() < period {
                    std::thread::sleep(Duration::from_millis(250).min(period));
                    if weak.strong_count() == 0 {
                        return;
                    }
                }
                let Some(service) = weak.upgrade() else {
                    return;
                };
                if let Err(err) = service.tick() {
                    log::warn!("key reload failed (keeping the current keys): {err:#}");
                }
            })
            .map(|_| ())
            .unwrap_or_else(|err| log::error!("cannot start the key thread: {err}"));
    }

    /// Blocking: one rotation step, then a reload.
    pub fn tick(&self) -> anyhow::Result<()> {
        let mut conn = self.pool.get()?;
        let now = self.clock.now_db();
        for event in rotation::step(&mut conn, &self.master, &self.schedule, now)? {
            log::info!("{event}");
        }
        self.reload_with(&mut conn, now)
    }

    /// Blocking: re-reads the keys (for a refresh token whose `kid` is not
    /// known yet), at most once per second.
    pub fn reload_for_unknown_kid(&self) -> anyhow::Result<()> {
        {
            let mut last = self.last_forced_reload.lock().unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|at| at.elapsed() < UNKNOWN_KID_RELOAD_INTERVAL) {
                return Ok(());
            }
            *last = Some(Instant::now());
        }
        let mut conn = self.pool.get()?;
        self.reload_with(&mut conn, self.clock.now_db())
    }

    fn reload_with(&self, conn: &mut DbConnection, now: NaiveDateTime) -> anyhow::Result<()> {
        let snapshot = load_snapshot(conn, &self.master, now)?;
        self.verifier.set_keys(snapshot.verification_keys());
        self.ring.replace(snapshot);
        Ok(())
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.ring.snapshot()
    }

    /// The key that signs now; 503 in the moment between a revocation and
    /// its replacement.
    pub fn signer(&self, now: NaiveDateTime) -> Result<Arc<SigningKey>, ApiError> {
        self.ring.snapshot().signer(now).ok_or_else(|| ApiError::Unavailable("no active signing key".into()))
    }

    pub fn verifier(&self) -> web::Data<Verifier> {
        self.verifier.clone()
    }

    pub fn master(&self) -> &MasterKey {
        &self.master
    }

    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }
}

fn load_snapshot(conn: &mut DbConnection, master: &MasterKey, now: NaiveDateTime) -> anyhow::Result<Snapshot> {
    let rows = model::usable(conn, now)?;
    Snapshot::from_rows(&rows, master, now).context("cannot load the signing keys")
}
