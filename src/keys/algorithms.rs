//! Generating key pairs per algorithm and turning stored private keys back
//! into signing keys. Private keys are kept as PKCS#8 DER (before encryption).

use anyhow::{anyhow, bail, Context};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{EcdsaKeyPair, Ed25519KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use jsonwebtoken::jwk::{Jwk, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey};

use crate::config::SigningAlgorithm;

/// A new key pair: its PKCS#8 private half and its public JWK, whose `kid` is
/// the RFC 7638 thumbprint.
pub struct Generated {
    pub kid: String,
    pub algorithm: Algorithm,
    pub pkcs8: Vec<u8>,
    pub public_jwk: Jwk,
}

pub fn generate(algorithm: SigningAlgorithm, rsa_bits: usize) -> anyhow::Result<Generated> {
    let (algorithm, pkcs8) = match algorithm {
        SigningAlgorithm::ES256 => {
            let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .map_err(|_| anyhow!("ES256 key generation failed"))?;
            (Algorithm::ES256, doc.as_ref().to_vec())
        }
        SigningAlgorithm::EdDSA => {
            // jsonwebtoken reads the 48-byte PKCS#8 v1 form.
            let doc = Ed25519KeyPair::generate_pkcs8v1(&SystemRandom::new())
                .map_err(|_| anyhow!("EdDSA key generation failed"))?;
            (Algorithm::EdDSA, doc.as_ref().to_vec())
        }
        SigningAlgorithm::RS256 => {
            let size = if rsa_bits == 3072 { KeySize::Rsa3072 } else { KeySize::Rsa2048 };
            let pair = aws_lc_rs::rsa::KeyPair::generate(size).map_err(|_| anyhow!("RSA key generation failed"))?;
            let der = pair.as_der().map_err(|_| anyhow!("RSA key encoding failed"))?;
            (Algorithm::RS256, der.as_ref().to_vec())
        }
        SigningAlgorithm::HS256 => bail!("HS256 keys are configured, not generated"),
    };
    let encoding = encoding_key(algorithm, &pkcs8)?;
    let mut jwk = Jwk::from_encoding_key(&encoding, algorithm)?;
    let kid = jwk.thumbprint(ThumbprintHash::SHA256)?;
    jwk.common.key_id = Some(kid.clone());
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    Ok(Generated { kid, algorithm, pkcs8, public_jwk: jwk })
}

/// The signing key for a stored PKCS#8 private key.
pub fn encoding_key(algorithm: Algorithm, pkcs8: &[u8]) -> anyhow::Result<EncodingKey> {
    Ok(match algorithm {
        Algorithm::ES256 => EncodingKey::from_ec_der(pkcs8),
        Algorithm::EdDSA => EncodingKey::from_ed_der(pkcs8),
        // jsonwebtoken's aws-lc backend wants the PKCS#1 RSAPrivateKey inside.
        Algorithm::RS256 => EncodingKey::from_rsa_der(pkcs8_inner_key(pkcs8).context("RSA private key")?),
        other => bail!("no stored keys for {other:?}"),
    })
}

/// PKCS#8 is `SEQUENCE { INTEGER version, SEQUENCE algorithm, OCTET STRING key, ... }`;
/// returns the contents of that OCTET STRING.
fn pkcs8_inner_key(der: &[u8]) -> anyhow::Result<&[u8]> {
    let (tag, outer, _) = der_element(der)?;
    if tag != 0x30 {
        bail!("not a DER sequence");
    }
    let (_, _, rest) = der_element(outer)?; // version
    let (_, _, rest) = der_element(rest)?; // algorithm identifier
    let (tag, key, _) = der_element(rest)?;
    if tag != 0x04 {
        bail!("no private key octet string");
    }
    Ok(key)
}

/// One DER element: (tag, contents, remaining input).
fn der_element(input: &[u8]) -> anyhow::Result<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first().ok_or_else(|| anyhow!("truncated DER"))?;
    let (&first, mut rest) = rest.split_first().ok_or_else(|| anyhow!("truncated DER"))?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            bail!("bad DER length");
        }
        let len = rest[..count].iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        rest = &rest[count..];
        len
    };
    if rest.len() < len {
        bail!("truncated DER");
    }
    Ok((tag, &rest[..len], &rest[len..]))
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{decode, encode, DecodingKey, Header, Validation};

    use super::*;

    #[test]
    fn every_algorithm_signs_and_verifies_with_its_public_jwk() {
        for alg in [SigningAlgorithm::ES256, SigningAlgorithm::EdDSA, SigningAlgorithm::RS256] {
            let key = generate(alg, 2048).expect("generate");
            let encoding = encoding_key(key.algorithm, &key.pkcs8).expect("encoding key");
            let mut header = Header::new(key.algorithm);
            header.kid = Some(key.kid.clone());
            let token = encode(&header, &serde_json::json!({"exp": 4_000_000_000u64}), &encoding).expect("sign");
            let decoding = DecodingKey::from_jwk(&key.public_jwk).expect("decoding key");
            decode::<serde_json::Value>(&token, &decoding, &Validation::new(key.algorithm)).expect("verify");
            let json = serde_json::to_value(&key.public_jwk).expect("json");
            for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
                assert!(json.get(private).is_none(), "{alg:?} publishes {private}");
            }
        }
    }
}
