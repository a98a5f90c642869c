//! Signing compact JWS with a private key parsed once, when the key ring loads.
//!
//! jsonwebtoken's `encode` parses the PKCS#8 key again on every call, and for
//! an EC key that parse checks the key with a scalar multiplication: about as
//! much work as the signature itself, twice per refresh (BENCHMARKS.md, issue
//! 16). The token is put together exactly as jsonwebtoken does it:
//! base64url(header JSON) "." base64url(claims JSON) "." base64url(signature).

use anyhow::{anyhow, bail};
use aws_lc_rs::hmac;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    EcdsaKeyPair, Ed25519KeyPair, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING, RSA_PKCS1_SHA256,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use jsonwebtoken::{Algorithm, Header};
use serde::Serialize;

/// A private (or, for HS256, secret) key ready to sign.
pub enum PreparedKey {
    Es256(EcdsaKeyPair),
    EdDsa(Ed25519KeyPair),
    Rs256(RsaKeyPair),
    // Boxed: an HMAC key holds its hash states, 1.2 kB beside the others' few bytes.
    Hs256(Box<hmac::Key>),
}

impl PreparedKey {
    /// Parses a stored PKCS#8 private key (ES256, EdDSA, RS256).
    pub fn from_pkcs8(algorithm: Algorithm, pkcs8: &[u8]) -> anyhow::Result<PreparedKey> {
        Ok(match algorithm {
            Algorithm::ES256 => PreparedKey::Es256(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
                    .map_err(|e| anyhow!("ES256 private key: {e}"))?,
            ),
            Algorithm::EdDSA => PreparedKey::EdDsa(
                Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8).map_err(|e| anyhow!("EdDSA private key: {e}"))?,
            ),
            Algorithm::RS256 => {
                let pair = RsaKeyPair::from_pkcs8(pkcs8).map_err(|e| anyhow!("RSA private key: {e}"))?;
                PreparedKey::Rs256(pair)
            }
            other => bail!("no stored keys for {other:?}"),
        })
    }

    pub fn hs256(secret: &[u8]) -> PreparedKey {
        PreparedKey::Hs256(Box::new(hmac::Key::new(hmac::HMAC_SHA256, secret)))
    }

    pub fn algorithm(&self) -> Algorithm {
        match self {
            PreparedKey::Es256(_) => Algorithm::ES256,
            PreparedKey::EdDsa(_) => Algorithm::EdDSA,
            PreparedKey::Rs256(_) => Algorithm::RS256,
            PreparedKey::Hs256(_) => Algorithm::HS256,
        }
    }

    fn sign(&self, message: &[u8]) -> anyhow::Result<Vec<u8>> {
        Ok(match self {
            PreparedKey::Es256(pair) => {
                pair.sign(&SystemRandom::new(), message).map_err(|e| anyhow!("ES256 signing: {e}"))?.as_ref().to_vec()
            }
            PreparedKey::EdDsa(pair) => pair.sign(message).as_ref().to_vec(),
            PreparedKey::Rs256(pair) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), message, &mut signature)
                    .map_err(|e| anyhow!("RS256 signing: {e}"))?;
                signature
            }
            PreparedKey::Hs256(key) => hmac::sign(key, message).as_ref().to_vec(),
        })
    }

    /// A compact JWS of `claims` under `header`, whose `alg` must be this key's.
    pub fn encode<T: Serialize>(&self, header: &Header, claims: &T) -> anyhow::Result<String> {
        if header.alg != self.algorithm() {
            bail!("header alg {:?} does not match the {:?} key", header.alg, self.algorithm());
        }
        let mut token = B64.encode(serde_json::to_vec(header)?);
        token.push('.');
        B64.encode_string(serde_json::to_vec(claims)?, &mut token);
        let signature = self.sign(token.as_bytes())?;
        token.push('.');
        B64.encode_string(signature, &mut token);
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{decode, encode, DecodingKey, EncodingKey, Validation};
    use serde_json::{json, Value};

    use super::*;
    use crate::config::SigningAlgorithm;
    use crate::keys::algorithms::{encoding_key, generate};

    fn header(alg: Algorithm) -> Header {
        let mut header = Header::new(alg);
        header.kid = Some("k1".into());
        header.typ = Some("at+jwt".into());
        header
    }

    fn claims() -> Value {
        json!({"sub": "u1", "exp": 4_000_000_000u64, "roles": ["user", "ä\"/"]})
    }

    #[test]
    fn tokens_verify_with_the_published_key_and_match_what_jsonwebtoken_signs() {
        for alg in [SigningAlgorithm::ES256, SigningAlgorithm::EdDSA, SigningAlgorithm::RS256] {
            let generated = generate(alg, 2048).expect("generate");
            let prepared = PreparedKey::from_pkcs8(generated.algorithm, &generated.pkcs8).expect("prepare");
            let ours = prepared.encode(&header(generated.algorithm), &claims()).expect("sign");

            let decoding = DecodingKey::from_jwk(&generated.public_jwk).expect("decoding key");
            let mut validation = Validation::new(generated.algorithm);
            validation.required_spec_claims.clear();
            let verified = decode::<Value>(&ours, &decoding, &validation).expect("verifies");
            assert_eq!(verified.claims, claims(), "{alg:?}");
            assert_eq!(verified.header.kid.as_deref(), Some("k1"));
            assert_eq!(verified.header.typ.as_deref(), Some("at+jwt"));

            let encoding = encoding_key(generated.algorithm, &generated.pkcs8).expect("encoding key");
            let theirs = encode(&header(generated.algorithm), &claims(), &encoding).expect("jsonwebtoken signs");
            let signed_part = |t: &str| t.rsplit_once('.').map(|(m, _)| m.to_owned());
            assert_eq!(
                signed_part(&ours),
                signed_part(&theirs),
                "{alg:?}: header and claims as jsonwebtoken writes them"
            );
            if generated.algorithm != Algorithm::ES256 {
                // EdDSA and RSASSA-PKCS1-v1_5 are deterministic: the very same token.
                assert_eq!(ours, theirs, "{alg:?}");
            }
        }
    }

    #[test]
    fn hs256_matches_jsonwebtoken_and_a_foreign_alg_is_refused() {
        let secret = [7u8; 32];
        let prepared = PreparedKey::hs256(&secret);
        let ours = prepared.encode(&header(Algorithm::HS256), &claims()).expect("sign");
        let theirs = encode(&header(Algorithm::HS256), &claims(), &EncodingKey::from_secret(&secret).unwrap()).unwrap();
        assert_eq!(ours, theirs);
        assert!(prepared.encode(&header(Algorithm::ES256), &claims()).is_err(), "alg must be the key's");
    }
}
