//! The key ring: the key that signs now and the public keys that verify.
//! Loaded from the database so every instance on one database signs with the
//! same key and keys survive restarts.

use std::sync::{Arc, RwLock};

use anyhow::{anyhow, Context};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey};
use signet_verify::KeySet;

use super::model::{self, SigningKeyRow, PROTECTION_NONE, STATE_ACTIVE};
use crate::clock::Clock;
use crate::db::DbConnection;
use crate::error::is_unique_violation;

/// A private key ready to sign.
pub struct SigningKey {
    pub kid: String,
    pub algorithm: Algorithm,
    pub encoding: EncodingKey,
}

pub struct KeyRing {
    signer: RwLock<Arc<SigningKey>>,
    public: RwLock<Arc<JwkSet>>,
}

impl KeyRing {
    /// Loads the active key, creating the first one on a fresh database.
    /// Two instances starting at once race on the unique `active` index; the
    /// loser reloads the winner's key.
    pub fn load_or_create(conn: &mut DbConnection, clock: &dyn Clock) -> anyhow::Result<KeyRing> {
        let active = match model::active(conn)? {
            Some(row) => row,
            None => {
                let row = generate_es256(clock)?;
                match model::insert(conn, &row) {
                    Ok(_) => {
                        log::info!("generated signing key {} ({})", row.kid, row.algorithm);
                        row
                    }
                    Err(err) if is_unique_violation(&err) => model::active(conn)?
                        .ok_or_else(|| anyhow!("active signing key vanished"))?,
                    Err(err) => return Err(err.into()),
                }
            }
        };
        let signer = signing_key(&active)?;
        let public = public_jwks(&model::published(conn)?)?;
        Ok(KeyRing {
            signer: RwLock::new(Arc::new(signer)),
            public: RwLock::new(Arc::new(public)),
        })
    }

    pub fn signer(&self) -> Arc<SigningKey> {
        self.signer
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The JWKS document: public members only.
    pub fn jwks(&self) -> Arc<JwkSet> {
        self.public
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The verification keys for `signet_verify::Verifier`.
    pub fn verification_keys(&self) -> KeySet {
        let (keys, skipped) = KeySet::from_jwks(&self.jwks());
        for err in skipped {
            log::error!("published key unusable for verification: {err}");
        }
        keys
    }
}

fn signing_key(row: &SigningKeyRow) -> anyhow::Result<SigningKey> {
    if row.key_protection != PROTECTION_NONE {
        return Err(anyhow!(
            "signing key {} uses unknown protection {}",
            row.kid,
            row.key_protection
        ));
    }
    let algorithm: Algorithm = row
        .algorithm
        .parse()
        .with_context(|| format!("signing key {}", row.kid))?;
    let encoding = match algorithm {
        Algorithm::ES256 => EncodingKey::from_ec_der(&row.private_key),
        other => {
            return Err(anyhow!(
                "signing key {}: algorithm {other:?} not supported",
                row.kid
            ))
        }
    };
    Ok(SigningKey {
        kid: row.kid.clone(),
        algorithm,
        encoding,
    })
}

fn public_jwks(rows: &[SigningKeyRow]) -> anyhow::Result<JwkSet> {
    let keys = rows
        .iter()
        .map(|row| {
            serde_json::from_str::<Jwk>(&row.public_jwk)
                .with_context(|| format!("public JWK of {}", row.kid))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(JwkSet { keys })
}

/// A new ES256 key: PKCS#8 private half, public JWK with its RFC 7638
/// thumbprint as `kid`.
pub fn generate_es256(clock: &dyn Clock) -> anyhow::Result<SigningKeyRow> {
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .map_err(|_| anyhow!("ES256 key generation failed"))?;
    let encoding = EncodingKey::from_ec_der(pkcs8.as_ref());
    let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::ES256)?;
    let kid = jwk.thumbprint(ThumbprintHash::SHA256)?;
    jwk.common.key_id = Some(kid.clone());
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    let now = clock.now_db();
    Ok(SigningKeyRow {
        kid,
        algorithm: "ES256".to_owned(),
        state: STATE_ACTIVE.to_owned(),
        private_key: pkcs8.as_ref().to_vec(),
        key_protection: PROTECTION_NONE.to_owned(),
        public_jwk: serde_json::to_string(&jwk)?,
        created_at: now,
        activated_at: Some(now),
        retired_at: None,
    })
}
