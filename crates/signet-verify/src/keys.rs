use std::collections::HashMap;

use aws_lc_rs::digest;
use aws_lc_rs::signature::{self, ParsedPublicKey, VerificationAlgorithm};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey};

/// Why a key could not become a verification key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("JWK has no `kid`")]
    MissingKid,
    #[error("JWK `{kid}`: unsupported or inconsistent algorithm")]
    UnsupportedAlgorithm { kid: String },
    #[error("JWK `{kid}`: invalid key material")]
    InvalidKey { kid: String },
    /// The JWKS document is not JSON of the RFC 7517 shape.
    #[error("JWKS document is malformed: {0}")]
    MalformedJwks(String),
    /// A PEM key that is not a `PUBLIC KEY` / `RSA PUBLIC KEY` block for its algorithm.
    #[error("PEM key `{kid}`: not a public key usable with {algorithm:?}")]
    InvalidPem { kid: String, algorithm: Algorithm },
}

/// One public key and the single algorithm it may verify.
pub(crate) struct VerificationKey {
    pub(crate) algorithm: Algorithm,
    pub(crate) key: DecodingKey,
    /// The public key material as loaded, to tell whether a new key set differs.
    material: Vec<u8>,
}

/// Public keys by `kid`. Keys that are not for signatures (`use` other than
/// `sig`) or whose algorithm cannot be determined are skipped, never guessed.
#[derive(Default)]
pub struct KeySet {
    keys: HashMap<String, VerificationKey>,
    /// Bumped by the verifier each time a key set with other keys replaces
    /// the current one; cached verifications of an older generation are void.
    pub(crate) generation: u64,
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

    /// Like [`KeySet::from_jwks`], from the JSON text of a JWKS document
    /// (e.g. a copy of signet's `/.well-known/jwks.json` shipped as a file).
    pub fn from_jwks_json(json: &str) -> Result<(Self, Vec<KeyError>), KeyError> {
        let jwks: JwkSet = serde_json::from_str(json).map_err(|err| KeyError::MalformedJwks(err.to_string()))?;
        Ok(Self::from_jwks(&jwks))
    }

    /// A key set of one PEM public key (`-----BEGIN PUBLIC KEY-----`, or
    /// `RSA PUBLIC KEY` for RSA), usable only with `algorithm` under `kid`.
    pub fn from_pem(kid: &str, algorithm: Algorithm, pem: &[u8]) -> Result<Self, KeyError> {
        let mut set = KeySet::default();
        set.insert_pem(kid, algorithm, pem)?;
        Ok(set)
    }

    /// Adds a PEM public key (see [`KeySet::from_pem`]). A PEM carries no
    /// algorithm, so the caller names the one it may verify: ES256, ES384,
    /// EdDSA (Ed25519), RS256/384/512 or PS256/384/512. The key is checked
    /// against that algorithm now, not at the first token.
    pub fn insert_pem(&mut self, kid: &str, algorithm: Algorithm, pem: &[u8]) -> Result<(), KeyError> {
        let invalid = || KeyError::InvalidPem { kid: kid.to_owned(), algorithm };
        let (label, der) = pem_decode(pem).ok_or_else(invalid)?;
        let (check, rsa) = pem_verification_algorithm(algorithm).ok_or_else(invalid)?;
        // PKCS#1 `RSA PUBLIC KEY` only for RSA; SPKI `PUBLIC KEY` for all.
        if !(label == "PUBLIC KEY" || (rsa && label == "RSA PUBLIC KEY")) {
            return Err(invalid());
        }
        ParsedPublicKey::new(check, &der).map_err(|_| invalid())?;
        let key = match algorithm {
            Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_der(&der),
            Algorithm::EdDSA => DecodingKey::from_ed_der(&der),
            _ => DecodingKey::from_rsa_der(&der),
        };
        self.keys.insert(kid.to_owned(), VerificationKey { algorithm, key, material: der });
        Ok(())
    }

    /// Adds a shared HS256 secret (at least 256 bits, RFC 7518 §3.2) under
    /// `kid`. Only for deployments that chose HS256 and handed the secret to
    /// every verifier; a JWKS never carries one.
    pub fn insert_hmac_secret(&mut self, kid: &str, secret: &[u8]) -> Result<(), KeyError> {
        let invalid = || KeyError::InvalidKey { kid: kid.to_owned() };
        if secret.len() < 32 {
            return Err(invalid());
        }
        let key = DecodingKey::from_secret(secret).map_err(|_| invalid())?;
        // Fingerprint the secret, never keep a second copy of it around.
        let material = digest::digest(&digest::SHA256, secret).as_ref().to_vec();
        self.keys.insert(kid.to_owned(), VerificationKey { algorithm: Algorithm::HS256, key, material });
        Ok(())
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

    /// The key ids, in no particular order.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    pub(crate) fn get(&self, kid: &str) -> Option<&VerificationKey> {
        self.keys.get(kid)
    }

    /// Whether both sets hold the same keys (same ids, algorithms, material).
    pub(crate) fn same_keys(&self, other: &KeySet) -> bool {
        self.fingerprint().as_ref() == other.fingerprint().as_ref()
    }

    fn fingerprint(&self) -> digest::Digest {
        let mut kids: Vec<&String> = self.keys.keys().collect();
        kids.sort();
        let mut ctx = digest::Context::new(&digest::SHA256);
        for kid in kids {
            if let Some(key) = self.keys.get(kid) {
                for part in [kid.as_bytes(), format!("{:?}", key.algorithm).as_bytes(), &key.material] {
                    ctx.update(&(part.len() as u64).to_be_bytes());
                    ctx.update(part);
                }
            }
        }
        ctx.finish()
    }
}

fn verification_key(jwk: &Jwk) -> Result<(String, VerificationKey), KeyError> {
    let kid = jwk.common.key_id.clone().ok_or(KeyError::MissingKid)?;
    if let Some(key_use) = &jwk.common.public_key_use {
        if *key_use != jsonwebtoken::jwk::PublicKeyUse::Signature {
            return Err(KeyError::UnsupportedAlgorithm { kid });
        }
    }
    let algorithm = key_algorithm(jwk).ok_or_else(|| KeyError::UnsupportedAlgorithm { kid: kid.clone() })?;
    let key = DecodingKey::from_jwk(jwk).map_err(|_| KeyError::InvalidKey { kid: kid.clone() })?;
    let material = serde_json::to_vec(&jwk.algorithm).map_err(|_| KeyError::InvalidKey { kid: kid.clone() })?;
    Ok((kid, VerificationKey { algorithm, key, material }))
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
        AlgorithmParameters::OctetKeyPair(okp) => (okp.curve == EllipticCurve::Ed25519).then_some(Algorithm::EdDSA),
        AlgorithmParameters::RSA(_) => None,
        _ => return None,
    };
    match jwk.common.key_algorithm {
        Some(declared) => {
            let declared = algorithm_of(declared)?;
            let family_ok = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => is_rsa(declared),
                _ => implied == Some(declared),
            };
            family_ok.then_some(declared)
        }
        // An RSA key without `alg` could be RS* or PS*: refuse to guess.
        None => implied,
    }
}

fn is_rsa(algorithm: Algorithm) -> bool {
    matches!(
        algorithm,
        Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512 | Algorithm::PS256 | Algorithm::PS384 | Algorithm::PS512
    )
}

fn algorithm_of(key_algorithm: KeyAlgorithm) -> Option<Algorithm> {
    Algorithm::try_from(key_algorithm).ok()
}

/// The aws-lc-rs algorithm a PEM key is checked with at load time, and
/// whether it is RSA. `None` for symmetric algorithms.
fn pem_verification_algorithm(algorithm: Algorithm) -> Option<(&'static dyn VerificationAlgorithm, bool)> {
    let check: &'static dyn VerificationAlgorithm = match algorithm {
        Algorithm::ES256 => &signature::ECDSA_P256_SHA256_FIXED,
        Algorithm::ES384 => &signature::ECDSA_P384_SHA384_FIXED,
        Algorithm::EdDSA => &signature::ED25519,
        Algorithm::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        Algorithm::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
        Algorithm::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
        Algorithm::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
        // HS* (a secret is no public key) and anything newer.
        _ => return None,
    };
    Some((check, is_rsa(algorithm)))
}

/// The label and DER body of the first PEM block.
fn pem_decode(pem: &[u8]) -> Option<(String, Vec<u8>)> {
    let text = std::str::from_utf8(pem).ok()?;
    let mut lines = text.lines().map(str::trim);
    let label = lines.by_ref().find_map(|l| l.strip_prefix("-----BEGIN ")?.strip_suffix("-----"))?.to_owned();
    let end = format!("-----END {label}-----");
    let mut body = String::new();
    for line in lines {
        if line == end {
            return Some((label, STANDARD.decode(body.as_bytes()).ok()?));
        }
        body.push_str(line);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

    fn pem(label: &str, der: &[u8]) -> String {
        let body = STANDARD.encode(der);
        let lines: Vec<&str> = body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
        format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
    }

    #[test]
    fn pem_keys_load_for_their_algorithm_only() {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let spki = pair.public_key().as_der().unwrap();
        let text = pem("PUBLIC KEY", spki.as_ref());
        let set = KeySet::from_pem("k1", Algorithm::ES256, text.as_bytes()).unwrap();
        assert!(set.contains("k1"));
        assert_eq!(set.get("k1").unwrap().algorithm, Algorithm::ES256);

        for wrong in [Algorithm::EdDSA, Algorithm::RS256, Algorithm::HS256] {
            assert!(matches!(KeySet::from_pem("k1", wrong, text.as_bytes()), Err(KeyError::InvalidPem { .. })));
        }
        assert!(KeySet::from_pem("k1", Algorithm::ES256, b"not a pem").is_err());
        let private = pem("PRIVATE KEY", spki.as_ref());
        assert!(KeySet::from_pem("k1", Algorithm::ES256, private.as_bytes()).is_err());
    }

    #[test]
    fn malformed_jwks_json_is_an_error() {
        assert!(matches!(KeySet::from_jwks_json("{\"keys\": 3}"), Err(KeyError::MalformedJwks(_))));
        let (set, skipped) = KeySet::from_jwks_json("{\"keys\": []}").unwrap();
        assert!(set.is_empty() && skipped.is_empty());
    }

    #[test]
    fn fingerprint_tells_key_sets_apart() {
        let a = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let b = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let pem_a = pem("PUBLIC KEY", a.public_key().as_der().unwrap().as_ref());
        let pem_b = pem("PUBLIC KEY", b.public_key().as_der().unwrap().as_ref());
        let one = KeySet::from_pem("k", Algorithm::ES256, pem_a.as_bytes()).unwrap();
        let same = KeySet::from_pem("k", Algorithm::ES256, pem_a.as_bytes()).unwrap();
        let other = KeySet::from_pem("k", Algorithm::ES256, pem_b.as_bytes()).unwrap();
        assert!(one.same_keys(&same));
        assert!(!one.same_keys(&other));
        assert!(!one.same_keys(&KeySet::default()));
    }
}
