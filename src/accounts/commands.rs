//! What `signet users ...` does, as functions on a connection (the CLI and
//! tests share them), beside `keys/commands.rs`. `users import` is in
//! `import.rs`. Their audit events have no actor and no IP: the command
//! line is the operator at the machine.

use anyhow::{anyhow, Context};
use chrono::NaiveDateTime;

use super::model::{self, User};
use super::password::{PasswordHasher, PasswordPolicy};
use super::rules::check_roles;
use super::service;
use super::username::Username;
use crate::audit::Actor;
use crate::db::DbConnection;
use crate::error::ApiError;
use crate::roles;

/// Creates an account with role `user` plus `extra_roles`, under the same
/// rules as registration.
#[expect(clippy::too_many_arguments, reason = "one plain argument per command-line input")]
pub fn create_user(
    conn: &mut DbConnection,
    hasher: &PasswordHasher,
    policy: &PasswordPolicy,
    username: &str,
    email: Option<&str>,
    extra_roles: Vec<String>,
    password: &str,
    now: NaiveDateTime,
) -> anyhow::Result<User> {
    let mut all_roles = vec![roles::USER.to_owned()];
    all_roles.extend(extra_roles);
    let registration = service::check_registration(policy, username, email, &all_roles, password).map_err(describe)?;
    let hash = hasher.hash(password)?;
    service::insert_user(conn, &Actor::system(), &registration, &hash, now).map_err(describe)
}

/// Replaces the roles of the user named `username`; returns the user and
/// the (checked, sorted) roles.
pub fn set_roles(
    conn: &mut DbConnection,
    username: &str,
    roles: &[String],
    now: NaiveDateTime,
) -> anyhow::Result<(User, Vec<String>)> {
    let roles = check_roles(roles).map_err(|e| anyhow!("{}: {}", e.field, e.message))?;
    // A name that breaks the rules cannot exist, so it is simply not found.
    let user = Username::parse(username)
        .ok()
        .map(|name| model::find_by_username_key(conn, name.key()))
        .transpose()?
        .flatten()
        .with_context(|| format!("no user named {username}"))?;
    let user = service::replace_roles(conn, &Actor::system(), &user.id, &roles, now).map_err(describe)?;
    Ok((user, roles))
}

/// A command-line message for a refused account.
fn describe(err: ApiError) -> anyhow::Error {
    match err {
        ApiError::ValidationFailed(errors) | ApiError::WeakPassword(errors) => {
            anyhow!("{}", errors.iter().map(|e| format!("{} {}", e.field, e.message)).collect::<Vec<_>>().join("; "))
        }
        ApiError::UsernameTaken => anyhow!("that username is taken"),
        other => anyhow!("{other}"),
    }
}
