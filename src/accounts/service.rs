//! Creating accounts, shared by the register route and `signet users create`.

use chrono::NaiveDateTime;
use uuid::Uuid;

use super::model::{self, encode_roles, NewUser, User};
use super::password::PasswordPolicy;
use super::rules::{check_email, check_roles, check_username, username_key};
use crate::db::DbConnection;
use crate::error::{is_unique_violation, ApiError};

pub const DEFAULT_ROLE: &str = crate::roles::USER;

/// A new account's fields, checked but not yet stored.
pub struct Registration {
    pub username: String,
    pub email: Option<String>,
    pub roles: Vec<String>,
}

/// Checks username, e-mail and roles (422 validation_failed), then the
/// password policy (422 weak_password). CPU-bound (zxcvbn): run it blocking.
pub fn check_registration(
    policy: &PasswordPolicy,
    username: &str,
    email: Option<&str>,
    roles: &[String],
    password: &str,
) -> Result<Registration, ApiError> {
    let mut errors = Vec::new();
    if let Err(e) = check_username(username) {
        errors.push(e);
    }
    if let Some(Err(e)) = email.map(check_email) {
        errors.push(e);
    }
    let roles = check_roles(roles).map_err(|e| errors.push(e)).unwrap_or_default();
    if !errors.is_empty() {
        return Err(ApiError::ValidationFailed(errors));
    }
    policy.check(password, username, email).map_err(ApiError::WeakPassword)?;
    Ok(Registration { username: username.to_owned(), email: email.map(str::to_owned), roles })
}

pub fn username_exists(conn: &mut DbConnection, username: &str) -> Result<bool, ApiError> {
    Ok(model::find_by_username_key(conn, &username_key(username))?.is_some())
}

/// Stores the account; a username taken in the meantime is 409, settled by
/// the unique index.
pub fn insert_user(
    conn: &mut DbConnection,
    registration: &Registration,
    password_hash: &str,
    now: NaiveDateTime,
) -> Result<User, ApiError> {
    let id = Uuid::new_v4().to_string();
    let key = username_key(&registration.username);
    let roles = encode_roles(&registration.roles);
    let new = NewUser {
        id: &id,
        username: &registration.username,
        username_key: &key,
        email: registration.email.as_deref(),
        password_hash,
        roles: &roles,
        disabled: false,
        created_at: now,
        updated_at: now,
    };
    model::insert(conn, &new).map_err(
        |err| {
            if is_unique_violation(&err) {
                ApiError::UsernameTaken
            } else {
                err.into()
            }
        },
    )?;
    model::find(conn, &id)?.ok_or(ApiError::NotFound)
}
