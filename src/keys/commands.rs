//! What `signet keys ...` does, as functions on a connection (the CLI and
//! tests share them).

use anyhow::{bail, Context};
use chrono::NaiveDateTime;

use super::master::MasterKey;
use super::model::{self, SigningKeyRow, STATE_NEXT};
use super::rotation::{self, Activation, Schedule};
use crate::audit::{self, EventType};
use crate::db::DbConnection;

/// Every key with its state and dates, oldest first (no key material).
pub fn list(conn: &mut DbConnection) -> anyhow::Result<Vec<SigningKeyRow>> {
    Ok(model::all(conn)?)
}

/// Starts a rotation: a new key published now, signing after the
/// pre-publication time, or at once with `Activation::Now` (emergency).
/// An already pending next key is reused (and, with `Now`, brought forward).
pub fn rotate(
    conn: &mut DbConnection,
    master: &MasterKey,
    schedule: &Schedule,
    now: NaiveDateTime,
    activation: Activation,
) -> anyhow::Result<String> {
    if !schedule.generates_keys() {
        bail!("tokens.algorithm is HS256: the key is the configured secret; change keys.hmac_secret instead");
    }
    let pending = model::all(conn)?.into_iter().find(|r| r.state == STATE_NEXT);
    let message = match (pending, activation) {
        (Some(next), Activation::Scheduled) => format!(
            "key {} is already published and signs from {}",
            next.kid,
            next.activated_at.map(|t| t.to_string()).unwrap_or_default()
        ),
        (Some(next), Activation::Now) => {
            model::set_activation(conn, &next.kid, now)?;
            format!("key {} signs from now", next.kid)
        }
        (None, activation) => rotation::schedule_next(conn, master, schedule, now, activation)?
            .unwrap_or_else(|| "another instance published a next key at the same moment".into()),
    };
    if activation == Activation::Now {
        rotation::step(conn, master, schedule, now)?;
    }
    Ok(message)
}

/// Compromise: the key stops signing and verifying at once (instances drop it
/// at their next reload, within `keys.reload_secs`) and its private half is
/// erased. A revoked signing key is replaced immediately.
pub fn retire(
    conn: &mut DbConnection,
    master: &MasterKey,
    schedule: &Schedule,
    kid: &str,
    now: NaiveDateTime,
) -> anyhow::Result<Vec<String>> {
    let key = model::all(conn)?.into_iter().find(|k| k.kid == kid);
    let revoked = audit::transaction(conn, |conn| {
        let revoked = model::revoke(conn, kid, now)?;
        if let Some(key) = key.as_ref().filter(|_| revoked == 1) {
            audit::record(conn, rotation::key_event(EventType::KeyRetired, key, now).detail("reason", "revoked"))?;
        }
        Ok::<_, diesel::result::Error>(revoked)
    });
    if revoked.context("revoking the key")? == 0 {
        bail!("no usable key with kid {kid}");
    }
    let mut events = vec![format!("key {kid} revoked")];
    events.extend(rotation::step(conn, master, schedule, now)?);
    Ok(events)
}
