use std::collections::HashMap;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey};

/// Why a JWK could not become a verification key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("JWK has no `kid`")]
    MissingKid,
    #[error("JWK `{kid}`: unsupported or inconsistent algorithm")]
    UnsupportedAlgorithm { kid: String },
    #[error("JWK `{kid}`: invalid key material")]
    InvalidKey { kid: String },
}

/// One public key and the single algorithm it may verify.
pub(crate) struct VerificationKey {
    pub(crate) algorithm: Algorithm,
    pub(crate) key: DecodingKey,
}

/// Public keys by `kid`. Keys that are not for signatures (`use` other than
/// `sig`) or whose algorithm cannot be determined are skipped, never guessed.
#[derive(Default)]
pub struct KeySet {
    keys: HashMap<String, VerificationKey>,
}

impl KeySet {
    /// Builds a key set from a JWKS document, skipping keys it cannot use.
    /// Returns the skipped keys' errors so callers can log them.
    pub fn from_jwks(jwks: &JwkSet) -> (Self, Vec<KeyError>) {
        let mut set = KeySet::default();
        let mut skipped = Vec::new();
        for jwk in &jwks.keys {
            match verification_key(jwk) {
                Ok((kid, key)) => {
                    set.keys.insert(kid, key);
                }
                Err(err) => skipped.push(err),
            }
        }
        (set, skipped)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn contains(&self, kid: &str) -> bool {
        self.keys.contains_key(kid)
    }

    pub(crate) fn get(&self, kid: &str) -> Option<&VerificationKey> {
        self.keys.get(kid)
    }
}

fn verification_key(jwk: &Jwk) -> Result<(String, VerificationKey), KeyError> {
    let kid = jwk.common.key_id.clone().ok_or(KeyError::MissingKid)?;
    if let Some(key_use) = &jwk.common.public_key_use {
        if *key_use != jsonwebtoken::jwk::PublicKeyUse::Signature {
            return Err(KeyError::UnsupportedAlgorithm { kid });
        }
    }
    let algorithm =
        key_algorithm(jwk).ok_or_else(|| KeyError::UnsupportedAlgorithm { kid: kid.clone() })?;
    let key = DecodingKey::from_jwk(jwk).map_err(|_| KeyError::InvalidKey { kid: kid.clone() })?;
    Ok((kid, VerificationKey { algorithm, key }))
}

/// The one algorithm a key may be used with: its `alg` member when present
/// (checked against the key type), else what the key type implies. Symmetric
/// keys are never accepted from a JWKS: a public document cannot hold a secret.
fn key_algorithm(jwk: &Jwk) -> Option<Algorithm> {
    let implied = match &jwk.algorithm {
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => Some(Algorithm::ES256),
            EllipticCurve::P384 => Some(Algorithm::ES384),
            _ => None,
        },
        AlgorithmParameters::OctetKeyPair(okp) => {
            (okp.curve == EllipticCurve::Ed25519).then_some(Algorithm::EdDSA)
        }
        AlgorithmParameters::RSA(_) => None,
        _ => return None,
    };
    match jwk.common.key_algorithm {
        Some(declared) => {
            let declared = algorithm_of(declared)?;
            let family_ok = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => matches!(
                    declared,
                    Algorithm::RS256
                        | Algorithm::RS384
                        | Algorithm::RS512
                        | Algorithm::PS256
                        | Algorithm::PS384
                        | Algorithm::PS512
                ),
                _ => implied == Some(declared),
            };
            family_ok.then_some(declared)
        }
        // An RSA key without `alg` could be RS* or PS*: refuse to guess.
        None => implied,
    }
}

fn algorithm_of(key_algorithm: KeyAlgorithm) -> Option<Algorithm> {
    Algorithm::try_from(key_algorithm).ok()
}
