//! The master key that encrypts private signing keys at rest (AES-256-GCM).
//!
//! From `keys.master_key`, else `keys.master_key_file`; on a fresh database
//! with neither, a new one is written to the file (mode 0600) with a loud
//! warning. A database that already holds keys never gets a new master key:
//! that would make its keys unreadable.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use anyhow::{anyhow, bail, Context};
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::hmac;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use secrecy::ExposeSecret;

use crate::config::KeySettings;

/// `key_protection` of a private key sealed by the master key.
pub const PROTECTION: &str = "aes-256-gcm";

pub struct MasterKey {
    key: LessSafeKey,
    /// Derived from the master key: the keyed hash of API tokens.
    api_token_mac: hmac::Key,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

#[derive(Debug, thiserror::Error)]
#[error(
    "cannot decrypt signing key {kid}: wrong master key (keys.master_key / keys.master_key_file) or corrupted data"
)]
pub struct WrongMasterKey {
    pub kid: String,
}

impl MasterKey {
    pub fn from_bytes(bytes: &[u8]) -> anyhow::Result<MasterKey> {
        if bytes.len() != 32 {
            bail!("the master key must be 32 bytes, found {}", bytes.len());
        }
        let key = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| anyhow!("invalid master key"))?;
        let derived = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, bytes), b"signet/api-token-mac/v1");
        let api_token_mac = hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref());
        Ok(MasterKey { key: LessSafeKey::new(key), api_token_mac })
    }

    /// Loads the configured master key, or creates the file when `may_create`
    /// (the database holds no keys yet).
    pub fn load(settings: &KeySettings, may_create: bool) -> anyhow::Result<MasterKey> {
        let configured = settings.master_key.expose_secret().trim();
        if !configured.is_empty() {
            let bytes = B64.decode(configured).context("keys.master_key is not valid base64")?;
            return Self::from_bytes(&bytes).context("keys.master_key");
        }
        let path = Path::new(&settings.master_key_file);
        if path.exists() {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            let bytes = B64.decode(text.trim()).with_context(|| format!("{} is not valid base64", path.display()))?;
            return Self::from_bytes(&bytes).with_context(|| format!("keys.master_key_file {}", path.display()));
        }
        if !may_create {
            bail!(
                "the database holds encrypted signing keys but no master key is configured: \
                 set keys.master_key or restore {}",
                path.display()
            );
        }
        let mut bytes = [0u8; 32];
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| anyhow!("no randomness available"))?;
        write_private_file(path, B64.encode(bytes).as_bytes())?;
        log::warn!(
            "!!! generated a new master key in {} (mode 0600). It encrypts the signing keys: back it up, \
             keep it secret, and give every instance the same one (keys.master_key). !!!",
            path.display()
        );
        Self::from_bytes(&bytes)
    }

    /// The stored form of an API token: HMAC-SHA256 under a key derived from
    /// the master key, hex. A keyed fast hash suits high-entropy random
    /// secrets (bcrypt would only slow every request); without the master
    /// key a leaked table cannot be checked against guesses.
    pub fn api_token_hash(&self, token: &str) -> String {
        hmac::sign(&self.api_token_mac, token.as_bytes()).as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// nonce || ciphertext || tag, bound to `kid` as associated data.
    pub fn seal(&self, kid: &str, plaintext: &[u8]) -> anyhow::Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| anyhow!("no randomness available"))?;
        let mut sealed = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(kid.as_bytes()), &mut sealed)
            .map_err(|_| anyhow!("encryption failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    pub fn open(&self, kid: &str, sealed: &[u8]) -> Result<Vec<u8>, WrongMasterKey> {
        let wrong = || WrongMasterKey { kid: kid.to_owned() };
        if sealed.len() < NONCE_LEN {
            return Err(wrong());
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| wrong())?;
        let mut buffer = ciphertext.to_vec();
        let plain = self.key.open_in_place(nonce, Aad::from(kid.as_bytes()), &mut buffer).map_err(|_| wrong())?;
        Ok(plain.to_vec())
    }
}

/// Warns (at every start) while the master key file sits in the SQLite
/// database's directory, or below it: one copy of that directory (a backup,
/// a Docker volume) then holds the sealed signing keys and the key that opens
/// them.
pub fn warn_if_beside_database(settings: &KeySettings, database: &crate::db::Target) {
    let crate::db::Target::Sqlite(db_path) = database else {
        return;
    };
    if !settings.master_key.expose_secret().trim().is_empty() {
        return;
    }
    let dir_of = |path: &Path| {
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        dir.canonicalize().ok()
    };
    let key_file = Path::new(&settings.master_key_file);
    if let (Some(key_dir), Some(db_dir)) = (dir_of(key_file), dir_of(db_path)) {
        if key_dir.starts_with(&db_dir) {
            log::warn!(
                "the master key {} lies beside the database in {}: anyone with a copy of that directory \
                 (a backup, the Docker volume) can open the signing keys. Move it elsewhere, or set \
                 keys.master_key from a secret store, and delete the file",
                key_file.display(),
                db_dir.display()
            );
        }
    }
}

#[cfg(unix)]
fn write_private_file(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    // create_new: never overwrite an existing key file.
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(contents)?;
    file.sync_all()?;
    Ok(())
}

#[cfg(not(unix))]
fn write_private_file(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let mut file = OpenOptions::new().write(true).create_new(true).open(path)?;
    file.write_all(contents)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_wrong_key_fails() {
        let key = MasterKey::from_bytes(&[7u8; 32]).expect("key");
        let sealed = key.seal("kid1", b"private").expect("seal");
        assert_ne!(&sealed[NONCE_LEN..NONCE_LEN + 7], b"private");
        assert_eq!(key.open("kid1", &sealed).expect("open"), b"private");
        assert!(key.open("kid2", &sealed).is_err(), "bound to the kid");
        let other = MasterKey::from_bytes(&[8u8; 32]).expect("key");
        assert!(other.open("kid1", &sealed).is_err());
    }
}
