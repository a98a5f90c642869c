//! The key ring: which key signs at a given moment, and which public keys are
//! published and verify. Rebuilt from the database on every reload, so all
//! instances on one database agree; the switch to a pre-published key happens
//! at its planned time on every instance, without waiting for a reload.

use std::sync::{Arc, RwLock};

use anyhow::{anyhow, Context};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use chrono::NaiveDateTime;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, Header};
use serde::Serialize;
use sha2::{Digest, Sha256};
use signet_verify::KeySet;

use super::master::{MasterKey, PROTECTION};
use super::model::{SigningKeyRow, STATE_ACTIVE, STATE_NEXT, STATE_RETIRED};
use super::signer::PreparedKey;

/// A private key ready to sign, with the `kid` its tokens name.
pub struct SigningKey {
    pub kid: String,
    key: PreparedKey,
}

impl SigningKey {
    pub fn new(kid: String, key: PreparedKey) -> SigningKey {
        SigningKey { kid, key }
    }

    /// A compact JWS of `claims` whose header carries this key's `alg` and
    /// `kid`, and `typ`.
    pub fn sign_jwt<T: Serialize>(&self, typ: &str, claims: &T) -> anyhow::Result<String> {
        let mut header = Header::new(self.key.algorithm());
        header.kid = Some(self.kid.clone());
        header.typ = Some(typ.to_owned());
        self.key.encode(&header, claims)
    }
}

/// The keys as of one reload.
pub struct Snapshot {
    active: Option<Arc<SigningKey>>,
    /// The pre-published key and when it starts signing.
    next: Option<(Arc<SigningKey>, NaiveDateTime)>,
    /// Published keys (next, active, retired until `publish_until`).
    pub jwks: Arc<JwkSet>,
    /// Strong validator of the JWKS body.
    pub jwks_etag: String,
    /// Every key that still verifies: published ones plus retired keys whose
    /// refresh tokens may still come back.
    verification: JwkSet,
}

impl Snapshot {
    pub fn from_rows(rows: &[SigningKeyRow], master: &MasterKey, now: NaiveDateTime) -> anyhow::Result<Snapshot> {
        let mut active = None;
        let mut next = None;
        let mut published = Vec::new();
        let mut verification = Vec::new();
        for row in rows {
            let jwk: Jwk =
                serde_json::from_str(&row.public_jwk).with_context(|| format!("public JWK of {}", row.kid))?;
            match row.state.as_str() {
                STATE_ACTIVE => active = Some(Arc::new(signing_key(row, master)?)),
                STATE_NEXT => next = Some((Arc::new(signing_key(row, master)?), row.activated_at.unwrap_or(now))),
                STATE_RETIRED => {}
                _ => continue,
            }
            let still_published = row.state != STATE_RETIRED || row.publish_until.is_some_and(|until| until > now);
            let still_verifies = row.state != STATE_RETIRED || row.verify_until.is_some_and(|until| until > now);
            if still_published {
                published.push(jwk.clone());
            }
            if still_verifies {
                verification.push(jwk);
            }
        }
        let jwks = JwkSet { keys: published };
        let body = serde_json::to_vec(&jwks)?;
        let jwks_etag = format!("\"{}\"", B64.encode(&Sha256::digest(&body)[..16]));
        Ok(Snapshot { active, next, jwks: Arc::new(jwks), jwks_etag, verification: JwkSet { keys: verification } })
    }

    /// The key that signs at `now`: the pre-published one once its time has
    /// come (even before the database step promotes it), else the active one.
    pub fn signer(&self, now: NaiveDateTime) -> Option<Arc<SigningKey>> {
        match &self.next {
            Some((key, at)) if *at <= now => Some(key.clone()),
            _ => self.active.clone(),
        }
    }

    pub fn verification_keys(&self) -> KeySet {
        let (keys, skipped) = KeySet::from_jwks(&self.verification);
        for err in skipped {
            log::error!("stored key unusable for verification: {err}");
        }
        keys
    }

    /// Algorithms of the published keys, for the discovery documents.
    pub fn algorithms(&self) -> Vec<String> {
        let mut algs: Vec<String> =
            self.jwks.keys.iter().filter_map(|k| k.common.key_algorithm.map(|a| a.to_string())).collect();
        algs.sort();
        algs.dedup();
        algs
    }
}

fn signing_key(row: &SigningKeyRow, master: &MasterKey) -> anyhow::Result<SigningKey> {
    if row.key_protection != PROTECTION {
        return Err(anyhow!("signing key {} uses unknown protection {}", row.kid, row.key_protection));
    }
    let pkcs8 = master.open(&row.kid, &row.private_key)?;
    let algorithm: Algorithm = row.algorithm.parse().with_context(|| format!("signing key {}", row.kid))?;
    Ok(SigningKey::new(row.kid.clone(), PreparedKey::from_pkcs8(algorithm, &pkcs8)?))
}

/// The current snapshot, swapped whole on reload.
pub struct KeyRing {
    snapshot: RwLock<Arc<Snapshot>>,
}

impl KeyRing {
    pub fn new(snapshot: Snapshot) -> KeyRing {
        KeyRing { snapshot: RwLock::new(Arc::new(snapshot)) }
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn replace(&self, snapshot: Snapshot) {
        *self.snapshot.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(snapshot);
    }
}
