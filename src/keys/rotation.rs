//! Rotation steps, taken by every instance every `keys.reload_secs` and
//! settled by the database: conditional updates and the unique `active` /
//! `next` indexes make sure exactly one instance performs each step and no
//! two keys are ever active.

use anyhow::Context;
use chrono::{NaiveDateTime, TimeDelta};

use super::algorithms::{self, Generated};
use super::master::{MasterKey, PROTECTION};
use super::model::{self, SigningKeyRow, PROTECTION_NONE, STATE_ACTIVE, STATE_NEXT};
use crate::audit::{self, Actor, Event, EventType};
use crate::config::{Settings, SigningAlgorithm};
use crate::db::DbConnection;
use crate::error::is_unique_violation;

/// The timing of the key lifecycle, from the settings.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub algorithm: SigningAlgorithm,
    pub rsa_bits: usize,
    pub rotation: TimeDelta,
    pub prepublish: TimeDelta,
    /// After a key stops signing, how long its access tokens may still be
    /// presented (TTL + leeway) and cached JWKS may still lack it (max-age).
    pub publish_after_retire: TimeDelta,
    /// After a key stops signing, how long its refresh tokens may be presented.
    pub verify_after_retire: TimeDelta,
}

impl Schedule {
    pub fn from_settings(settings: &Settings) -> Schedule {
        let leeway = settings.tokens.leeway_secs as i64;
        Schedule {
            algorithm: settings.tokens.algorithm,
            rsa_bits: settings.keys.rsa_bits,
            rotation: TimeDelta::days(settings.keys.rotation_days),
            prepublish: TimeDelta::seconds(settings.prepublish_secs()),
            publish_after_retire: TimeDelta::seconds(
                settings.tokens.access_ttl_secs + leeway + settings.tokens.jwks_max_age_secs as i64,
            ),
            verify_after_retire: TimeDelta::seconds(settings.tokens.refresh_ttl_secs + leeway),
        }
    }

    /// HS256 uses the configured secret; there are no generated keys to rotate.
    pub fn generates_keys(&self) -> bool {
        self.algorithm != SigningAlgorithm::HS256
    }
}

/// When a new key is due, relative to `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// Published now, signing after the pre-publication time.
    Scheduled,
    /// Emergency: signs as soon as instances reload; verifiers that cached the
    /// JWKS meet an unknown `kid` until they refetch.
    Now,
}

/// One pass over the lifecycle; returns what it did, for the log.
pub fn step(
    conn: &mut DbConnection,
    master: &MasterKey,
    schedule: &Schedule,
    now: NaiveDateTime,
) -> anyhow::Result<Vec<String>> {
    let mut events = Vec::new();
    let rows = model::usable(conn, now)?;
    let active = rows.iter().find(|r| r.state == STATE_ACTIVE);
    let next = rows.iter().find(|r| r.state == STATE_NEXT);
    if !schedule.generates_keys() {
        // HS256 signs with the configured secret from now on: the stored key
        // pair retires, staying published and verifying for the usual margins.
        if let Some(active) = active {
            let publish_until = now + schedule.publish_after_retire;
            let verify_until = now + schedule.verify_after_retire;
            let retired = audit::transaction(conn, |conn| {
                let retired = model::retire(conn, &active.kid, now, publish_until, verify_until)?;
                if retired == 1 {
                    audit::record(conn, key_event(EventType::KeyRetired, active, now).detail("reason", "hs256"))?;
                }
                Ok::<_, diesel::result::Error>(retired)
            })?;
            if retired == 1 {
                events.push(format!("key {} retired: tokens.algorithm is HS256", active.kid));
            }
        }
        events.extend(expire(conn, now)?);
        return Ok(events);
    }

    // 1. A due next key takes over; the active one retires.
    if let Some(next) = next {
        let planned = next.activated_at.unwrap_or(now);
        if planned <= now || active.is_none() {
            let switch_at = if active.is_none() { now.min(planned) } else { planned };
            if promote(conn, schedule, active.map(|a| a.kid.as_str()), next, switch_at)? {
                events.push(format!("key {} ({}) now signs", next.kid, next.algorithm));
            }
            return Ok(events);
        }
    }

    // 2. Nothing to sign with (fresh database, or the active key was revoked).
    if active.is_none() && next.is_none() {
        let row =
            new_row(algorithms::generate(schedule.algorithm, schedule.rsa_bits)?, master, STATE_ACTIVE, now, now)?;
        let inserted = audit::transaction(conn, |conn| {
            model::insert(conn, &row)?;
            audit::record(conn, key_event(EventType::KeyRotated, &row, now).detail("reason", "no_active_key"))
        });
        match inserted {
            Ok(()) => events.push(format!("generated signing key {} ({})", row.kid, row.algorithm)),
            Err(err) if is_unique_violation(&err) => {}
            Err(err) => return Err(err.into()),
        }
        return Ok(events);
    }

    // 3. Pre-publish the successor when the active key's time is nearly up,
    //    or when the configured algorithm changed.
    if let (Some(active), None) = (active, next) {
        let activated = active.activated_at.unwrap_or(active.created_at);
        let due = activated + schedule.rotation - schedule.prepublish <= now;
        let algorithm_changed = active.algorithm != schedule.algorithm.name();
        if due || algorithm_changed {
            schedule_next(conn, master, schedule, now, Activation::Scheduled)?.into_iter().for_each(|e| events.push(e));
        }
    }

    // 4. Forget retired keys whose refresh tokens have all expired.
    events.extend(expire(conn, now)?);
    Ok(events)
}

fn expire(conn: &mut DbConnection, now: NaiveDateTime) -> anyhow::Result<Option<String>> {
    let deleted = model::delete_expired(conn, now)?;
    Ok((deleted > 0).then(|| format!("deleted {deleted} expired signing key(s)")))
}

/// Creates the next key (published at once) unless one is already pending.
pub fn schedule_next(
    conn: &mut DbConnection,
    master: &MasterKey,
    schedule: &Schedule,
    now: NaiveDateTime,
    activation: Activation,
) -> anyhow::Result<Option<String>> {
    let activate_at = match activation {
        Activation::Scheduled => now + schedule.prepublish,
        Activation::Now => now,
    };
    let row =
        new_row(algorithms::generate(schedule.algorithm, schedule.rsa_bits)?, master, STATE_NEXT, now, activate_at)?;
    Ok(insert_unless_raced(conn, &row)?
        .then(|| format!("published next key {} ({}), signing from {activate_at}", row.kid, row.algorithm)))
}

/// Retires `active` and activates `next` in one transaction, with its
/// `key.rotated` event; false when another instance did it first.
fn promote(
    conn: &mut DbConnection,
    schedule: &Schedule,
    active: Option<&str>,
    next: &SigningKeyRow,
    switch_at: NaiveDateTime,
) -> anyhow::Result<bool> {
    let result = audit::transaction::<_, diesel::result::Error, _>(conn, |conn| {
        if let Some(active) = active {
            let publish_until = switch_at + schedule.publish_after_retire;
            let verify_until = switch_at + schedule.verify_after_retire;
            if model::retire(conn, active, switch_at, publish_until, verify_until)? == 0 {
                return Err(diesel::result::Error::RollbackTransaction);
            }
        }
        if model::activate(conn, &next.kid, switch_at)? == 0 {
            return Err(diesel::result::Error::RollbackTransaction);
        }
        audit::record(conn, key_event(EventType::KeyRotated, next, switch_at).detail("previous_kid", active))?;
        Ok(())
    });
    match result {
        Ok(()) => Ok(true),
        Err(diesel::result::Error::RollbackTransaction) => Ok(false),
        Err(err) if is_unique_violation(&err) => Ok(false),
        Err(err) => Err(err.into()),
    }
}

/// A key event: done by signet itself (or its command line), about a key.
pub(super) fn key_event(kind: EventType, key: &SigningKeyRow, at: NaiveDateTime) -> Event {
    Event::new(kind, &Actor::system(), at).detail("kid", &key.kid).detail("algorithm", &key.algorithm)
}

fn insert_unless_raced(conn: &mut DbConnection, row: &SigningKeyRow) -> anyhow::Result<bool> {
    match model::insert(conn, row) {
        Ok(_) => Ok(true),
        Err(err) if is_unique_violation(&err) => Ok(false),
        Err(err) => Err(err.into()),
    }
}

fn new_row(
    key: Generated,
    master: &MasterKey,
    state: &str,
    now: NaiveDateTime,
    activate_at: NaiveDateTime,
) -> anyhow::Result<SigningKeyRow> {
    Ok(SigningKeyRow {
        private_key: master.seal(&key.kid, &key.pkcs8)?,
        kid: key.kid,
        algorithm: format!("{:?}", key.algorithm),
        state: state.to_owned(),
        key_protection: PROTECTION.to_owned(),
        public_jwk: serde_json::to_string(&key.public_jwk)?,
        created_at: now,
        activated_at: Some(activate_at),
        retired_at: None,
        publish_until: None,
        verify_until: None,
    })
}

/// Encrypts keys stored in plain by earlier versions.
pub fn protect_plain_keys(conn: &mut DbConnection, master: &MasterKey) -> anyhow::Result<usize> {
    let mut protected = 0;
    for row in model::all(conn)?.into_iter().filter(|r| r.key_protection == PROTECTION_NONE) {
        let sealed = master.seal(&row.kid, &row.private_key)?;
        model::set_private_key(conn, &row.kid, &sealed, PROTECTION).context("encrypting a stored key")?;
        protected += 1;
    }
    Ok(protected)
}
