//! `Username`: a name that passed the username rules, with its unique key.
//! Parsed once at the door (login, register, the CLI), so nothing downstream
//! checks it again or forgets to normalise it.

use std::fmt;

use super::rules::{check_username, username_key};
use crate::error::FieldError;

#[derive(Clone, PartialEq, Eq)]
pub struct Username {
    name: String,
    key: String,
}

impl Username {
    /// 3-64 characters of `[A-Za-z0-9._-]` (API.md), else the field error.
    pub fn parse(raw: &str) -> Result<Username, FieldError> {
        check_username(raw)?;
        Ok(Username { name: raw.to_owned(), key: username_key(raw) })
    }

    /// The name as its owner wrote it.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// The case-folded key that makes usernames unique.
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl fmt::Debug for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Username({:?})", self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_keeps_the_name_and_folds_the_key() {
        let name = Username::parse("Alice.B").expect("valid");
        assert_eq!((name.as_str(), name.key()), ("Alice.B", "alice.b"));
    }

    #[test]
    fn parse_refuses_what_the_rules_refuse() {
        for bad in ["ab", "has space", "ünïcode", &"x".repeat(65)] {
            assert_eq!(Username::parse(bad).map_err(|e| e.field), Err("username"), "{bad:?}");
        }
    }
}
