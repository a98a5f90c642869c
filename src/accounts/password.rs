//! Password hashing and the password policy.
//!
//! Hashes are `bcrypt_sha256$<bcrypt hash>`: the password is SHA-256'd (hex)
//! before bcrypt so every byte counts (plain bcrypt silently ignores bytes past
//! 72), and the scheme name is stored so it can change later (Django's
//! `bcrypt_sha256` does the same). A hash of an older scheme or another cost
//! verifies and asks to be re-hashed.

use sha2::{Digest, Sha256};
use zxcvbn::zxcvbn;

use crate::error::FieldError;

const SCHEME: &str = "bcrypt_sha256";
/// Plain bcrypt, as Django's `BCryptPasswordHasher` stores it (`bcrypt$$2b$...`).
const LEGACY_BCRYPT: &str = "bcrypt";
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// zxcvbn's cost grows with length; the first characters decide its score.
const STRENGTH_PREFIX_CHARS: usize = 128;

#[derive(Debug, Clone, Copy)]
pub struct PasswordHasher {
    cost: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verification {
    pub matches: bool,
    pub needs_rehash: bool,
}

impl PasswordHasher {
    pub fn new(cost: u32) -> Self {
        PasswordHasher { cost }
    }

    /// Slow on purpose: call from a blocking thread (`web::block`).
    pub fn hash(&self, password: &str) -> anyhow::Result<String> {
        Ok(format!("{SCHEME}${}", bcrypt::hash(prehash(password), self.cost)?))
    }

    /// Slow on purpose: call from a blocking thread (`web::block`).
    pub fn verify(&self, password: &str, stored: &str) -> Verification {
        let no = Verification { matches: false, needs_rehash: false };
        let Some((scheme, bcrypt_hash)) = stored.split_once('$') else {
            return no;
        };
        let matches = match scheme {
            SCHEME => bcrypt::verify(prehash(password), bcrypt_hash).unwrap_or(false),
            LEGACY_BCRYPT => bcrypt::verify(password, bcrypt_hash).unwrap_or(false),
            _ => return no,
        };
        let needs_rehash = matches && (scheme != SCHEME || bcrypt_cost(bcrypt_hash) != Some(self.cost));
        Verification { matches, needs_rehash }
    }
}

fn prehash(password: &str) -> String {
    let digest = Sha256::digest(password.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The cost of a `$2b$12$...` hash.
fn bcrypt_cost(hash: &str) -> Option<u32> {
    hash.split('$').nth(2)?.parse().ok()
}

#[derive(Debug, Clone, Copy)]
pub struct PasswordPolicy {
    pub min_length: usize,
    pub min_strength: u8,
}

impl PasswordPolicy {
    /// Every breach is reported under `password`; the caller answers 422 weak_password.
    pub fn check(&self, password: &str, username: &str, email: Option<&str>) -> Result<(), Vec<FieldError>> {
        let mut problems = Vec::new();
        let chars = password.chars().count();
        if chars < self.min_length {
            problems.push(format!("must be at least {} characters long", self.min_length));
        }
        if password.len() > MAX_PASSWORD_BYTES {
            problems.push(format!("must be at most {MAX_PASSWORD_BYTES} bytes long"));
        }
        if !username.is_empty() && password.to_lowercase().contains(&username.to_lowercase()) {
            problems.push("must not contain the username".to_owned());
        }
        if problems.is_empty() {
            let prefix: String = password.chars().take(STRENGTH_PREFIX_CHARS).collect();
            let email_name = email.and_then(|e| e.split('@').next()).unwrap_or("");
            let inputs: Vec<&str> = [username, email_name].into_iter().filter(|s| !s.is_empty()).collect();
            let estimate = zxcvbn(&prefix, &inputs);
            if u8::from(estimate.score()) < self.min_strength {
                let hint = estimate
                    .feedback()
                    .and_then(|f| f.warning().map(|w| w.to_string()))
                    .unwrap_or_else(|| "is too easy to guess".to_owned());
                problems.push(format!("is too weak: {hint}"));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.into_iter().map(|p| FieldError::new("password", p)).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_past_72_count() {
        let hasher = PasswordHasher::new(4);
        let base = "x".repeat(72);
        let stored = hasher.hash(&format!("{base}A")).expect("hash");
        assert!(hasher.verify(&format!("{base}A"), &stored).matches);
        assert!(!hasher.verify(&format!("{base}B"), &stored).matches);
    }

    #[test]
    fn other_cost_and_legacy_scheme_need_rehash() {
        let stored = PasswordHasher::new(5).hash("correct horse battery").expect("hash");
        let v = PasswordHasher::new(4).verify("correct horse battery", &stored);
        assert_eq!(v, Verification { matches: true, needs_rehash: true });
        let legacy = format!("bcrypt${}", bcrypt::hash("correct horse battery", 4).expect("hash"));
        let v = PasswordHasher::new(4).verify("correct horse battery", &legacy);
        assert_eq!(v, Verification { matches: true, needs_rehash: true });
        assert!(!PasswordHasher::new(4).verify("wrong", &legacy).matches);
        assert!(!PasswordHasher::new(4).verify("x", "garbage").matches);
    }

    #[test]
    fn policy_rejects_common_short_long_and_username() {
        let policy = PasswordPolicy { min_length: 8, min_strength: 3 };
        assert!(policy.check("password1", "alice", None).is_err());
        assert!(policy.check("Tr0ub4!", "alice", None).is_err());
        assert!(policy.check(&"Zq9!".repeat(300), "alice", None).is_err());
        assert!(policy.check("alice-Zq9!vx7#Lm", "alice", None).is_err());
        assert!(policy.check("violet-canyon-73-drift", "alice", None).is_ok());
    }
}
