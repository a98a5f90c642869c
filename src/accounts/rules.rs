//! Username, e-mail and role-name rules of API.md.

use crate::error::FieldError;

pub const MIN_USERNAME: usize = 3;
pub const MAX_USERNAME: usize = 64;
const MAX_EMAIL: usize = 254;

/// 3-64 characters of `[A-Za-z0-9._-]`.
pub fn check_username(username: &str) -> Result<(), FieldError> {
    let len = username.chars().count();
    if !(MIN_USERNAME..=MAX_USERNAME).contains(&len) {
        return Err(FieldError::new("username", format!("must be {MIN_USERNAME} to {MAX_USERNAME} characters long")));
    }
    if !username.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) {
        return Err(FieldError::new("username", "may contain only letters, digits, '.', '_' and '-'"));
    }
    Ok(())
}

/// The key that makes usernames unique regardless of case.
pub fn username_key(username: &str) -> String {
    username.to_ascii_lowercase()
}

/// A pragmatic syntax check: one `@`, a non-empty local part, a dotted domain,
/// no spaces or control characters. Deliverability is not our concern here.
pub fn check_email(email: &str) -> Result<(), FieldError> {
    let bad = || FieldError::new("email", "must be an e-mail address");
    if email.len() > MAX_EMAIL || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    let (local, domain) = email.split_once('@').ok_or_else(bad)?;
    let domain_ok = domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !domain.contains("..");
    if local.is_empty() || !domain_ok {
        return Err(bad());
    }
    Ok(())
}

pub const MAX_ROLES: usize = 32;
const MAX_ROLE_LEN: usize = 64;

/// Role names: 1-64 characters of `[a-z0-9._:-]`, at most 32 per user, no
/// duplicates. Returns them sorted so tokens and responses are stable.
pub fn check_roles(roles: &[String]) -> Result<Vec<String>, FieldError> {
    if roles.len() > MAX_ROLES {
        return Err(FieldError::new("roles", format!("at most {MAX_ROLES} roles")));
    }
    for role in roles {
        let ok = !role.is_empty()
            && role.len() <= MAX_ROLE_LEN
            && role.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | ':' | '-'));
        if !ok {
            return Err(FieldError::new(
                "roles",
                format!("role names are 1-{MAX_ROLE_LEN} characters of a-z 0-9 . _ : -"),
            ));
        }
    }
    let mut sorted = roles.to_vec();
    sorted.sort();
    sorted.dedup();
    Ok(sorted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert!(check_username("al").is_err());
        assert!(check_username("alice.b_c-1").is_ok());
        assert!(check_username("ali ce").is_err());
        assert!(check_username("ålice").is_err());
        assert!(check_username(&"a".repeat(65)).is_err());
        assert_eq!(username_key("AliCe"), "alice");
    }

    #[test]
    fn emails() {
        assert!(check_email("a@example.com").is_ok());
        assert!(check_email("a@example").is_err());
        assert!(check_email("@example.com").is_err());
        assert!(check_email("a b@example.com").is_err());
        assert!(check_email("a@b@example.com").is_err());
    }

    #[test]
    fn roles() {
        assert_eq!(check_roles(&["user".into(), "admin".into(), "user".into()]).expect("ok"), vec!["admin", "user"]);
        assert!(check_roles(&["Admin".into()]).is_err());
        assert!(check_roles(&["".into()]).is_err());
        assert!(check_roles(&vec!["r".to_string(); 33]).is_err());
    }
}
