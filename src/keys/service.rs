//! The key service of one instance: loads the master key and the key ring,
//! takes rotation steps and reloads every `keys.reload_secs` on a background
//! thread, and keeps the verifier's keys in step.

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use anyhow::Context;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chrono::NaiveDateTime;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey};
use secrecy::ExposeSecret;
use signet_verify::{Rules, Verifier};

use super::master::MasterKey;
use super::model;
use super::ring::{KeyRing, SigningKey, Snapshot};
use super::rotation::{self, Schedule};
use super::signer::PreparedKey;
use crate::clock::SharedClock;
use crate::config::{Settings, SigningAlgorithm};
use crate::db::{DbConnection, Pool};
use crate::error::ApiError;

/// At most one reload per this interval for refresh tokens with unknown `kid`s.
const UNKNOWN_KID_RELOAD_INTERVAL: Duration = Duration::from_secs(1);

pub struct KeyService {
    /// The HS256 key when `keys.hmac_secret` is set: it signs when
    /// `tokens.algorithm = "HS256"` and verifies whenever it is configured.
    hmac: Option<HmacKey>,
    pool: Pool,
    master: MasterKey,
    schedule: Schedule,
    clock: SharedClock,
    ring: KeyRing,
    verifier: Arc<Verifier>,
    reload_secs: u64,
    last_forced_reload: Mutex<Option<Instant>>,
}

impl KeyService {
    /// Blocking: loads (or on a fresh database creates) the master key,
    /// encrypts any plain legacy key, takes a rotation step and loads the ring.
    pub fn start(pool: Pool, settings: &Settings, clock: SharedClock) -> anyhow::Result<KeyService> {
        refuse_stray_hmac_secret(settings)?;
        let mut conn = pool.get()?;
        let fresh = model::count(&mut conn)? == 0;
        let master = MasterKey::load(&settings.keys, fresh)?;
        let target = crate::db::Target::parse(&settings.database.url, settings.database.connect_timeout_secs);
        super::master::warn_if_beside_database(&settings.keys, &target);
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
        let hmac = HmacKey::from_settings(settings)?;
        if schedule.algorithm == SigningAlgorithm::HS256 {
            log::warn!(
                "tokens.algorithm is HS256: tokens are signed with the shared keys.hmac_secret and the JWKS \
                 publishes nothing for it; every verifier needs that secret"
            );
        }
        let rules = Rules {
            issuer: settings.tokens.issuer.clone(),
            audience: settings.tokens.audience.clone(),
            leeway_secs: settings.tokens.leeway_secs,
        };
        let verifier_clock = clock.clone();
        let verifier = Arc::new(
            Verifier::with_clock(
                verification_keys(&snapshot, hmac.as_ref()),
                rules,
                Arc::new(move || verifier_clock.unix()),
            )
            .with_cache_capacity(settings.tokens.verify_cache_size),
        );
        Ok(KeyService {
            hmac,
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
        self.verifier.set_keys(verification_keys(&snapshot, self.hmac.as_ref()));
        self.ring.replace(snapshot);
        Ok(())
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.ring.snapshot()
    }

    /// The key that signs now; 503 in the moment between a revocation and
    /// its replacement.
    pub fn signer(&self, now: NaiveDateTime) -> Result<Arc<SigningKey>, ApiError> {
        if self.schedule.algorithm == SigningAlgorithm::HS256 {
            if let Some(hmac) = &self.hmac {
                return Ok(hmac.signing.clone());
            }
        }
        self.ring.snapshot().signer(now).ok_or_else(|| ApiError::Unavailable("no active signing key".into()))
    }

    /// The algorithms tokens may be signed with now: published keys' and HS256's.
    pub fn algorithms(&self) -> Vec<String> {
        let mut algorithms = self.snapshot().algorithms();
        if self.hmac.is_some() {
            algorithms.push("HS256".into());
        }
        algorithms
    }

    /// The verifier of signet's own routes, kept in step with the keys.
    pub fn verifier(&self) -> &Arc<Verifier> {
        &self.verifier
    }

    pub fn master(&self) -> &MasterKey {
        &self.master
    }

    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }
}

/// The configured HS256 secret as a signing key and a verification key.
/// While `keys.hmac_secret` is set, tokens signed with it verify, whatever
/// `tokens.algorithm` signs with: anyone holding the shared secret can mint
/// tokens signet accepts. Only sensible during a migration away from HS256,
/// so it must be said out loud (`keys.accept_hmac_tokens = true`).
fn refuse_stray_hmac_secret(settings: &Settings) -> anyhow::Result<()> {
    let secret_set = !settings.keys.hmac_secret.expose_secret().trim().is_empty();
    if secret_set && settings.tokens.algorithm != SigningAlgorithm::HS256 && !settings.keys.accept_hmac_tokens {
        anyhow::bail!(
            "keys.hmac_secret is set but tokens.algorithm is {}: signet would still accept HS256 tokens made by \
             anyone holding that secret. Remove keys.hmac_secret, or set keys.accept_hmac_tokens = true for \
             the migration window",
            settings.tokens.algorithm.name()
        );
    }
    Ok(())
}

struct HmacKey {
    kid: String,
    secret: Vec<u8>,
    signing: Arc<SigningKey>,
}

impl HmacKey {
    fn from_settings(settings: &Settings) -> anyhow::Result<Option<HmacKey>> {
        let encoded = settings.keys.hmac_secret.expose_secret().trim();
        if encoded.is_empty() {
            return Ok(None);
        }
        let secret = B64.decode(encoded).context("keys.hmac_secret is not valid base64")?;
        if secret.len() < 32 {
            anyhow::bail!("keys.hmac_secret must hold at least 256 bits (32 bytes)");
        }
        let encoding = EncodingKey::from_secret(&secret)?;
        // kid: the RFC 7638 thumbprint of the oct key (a hash, not the secret).
        let kid = Jwk::from_encoding_key(&encoding, Algorithm::HS256)?.thumbprint(ThumbprintHash::SHA256)?;
        let signing = Arc::new(SigningKey::new(kid.clone(), PreparedKey::hs256(&secret)));
        Ok(Some(HmacKey { kid, secret, signing }))
    }
}

fn verification_keys(snapshot: &Snapshot, hmac: Option<&HmacKey>) -> signet_verify::KeySet {
    let mut keys = snapshot.verification_keys();
    if let Some(hmac) = hmac {
        if let Err(err) = keys.insert_hmac_secret(&hmac.kid, &hmac.secret) {
            log::error!("HS256 key unusable for verification: {err}");
        }
    }
    keys
}

fn load_snapshot(conn: &mut DbConnection, master: &MasterKey, now: NaiveDateTime) -> anyhow::Result<Snapshot> {
    let rows = model::usable(conn, now)?;
    Snapshot::from_rows(&rows, master, now).context("cannot load the signing keys")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "c2lnbmV0IHRlc3Qgc2VjcmV0IG9mIGF0IGxlYXN0IDMyIGJ5dGVz";

    fn settings(toml: &str) -> Settings {
        Settings::from_toml(toml).expect("settings")
    }

    #[test]
    fn a_stray_hmac_secret_stops_start_up_unless_accepted() {
        let stray = settings(&format!("[keys]\nhmac_secret = \"{SECRET}\""));
        let err = refuse_stray_hmac_secret(&stray).expect_err("refused").to_string();
        assert!(err.contains("keys.hmac_secret") && err.contains("tokens.algorithm is ES256"), "{err}");
        assert!(err.contains("keys.accept_hmac_tokens = true"), "{err}");
        let accepted = settings(&format!("[keys]\nhmac_secret = \"{SECRET}\"\naccept_hmac_tokens = true"));
        assert!(refuse_stray_hmac_secret(&accepted).is_ok());
        let hs256 = settings(&format!("[tokens]\nalgorithm = \"HS256\"\n[keys]\nhmac_secret = \"{SECRET}\""));
        assert!(refuse_stray_hmac_secret(&hs256).is_ok());
        assert!(refuse_stray_hmac_secret(&settings("")).is_ok());
    }
}
