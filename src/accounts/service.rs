//! Account operations on plain arguments (a connection, "now", checked
//! values), shared by the HTTP handlers and the `signet users` commands.

use chrono::NaiveDateTime;
use uuid::Uuid;

use super::model::{self, encode_roles, NewUser, User};
use super::password::{PasswordHasher, PasswordPolicy};
use super::rules::{check_email, check_roles};
use super::username::Username;
use crate::audit::{self, Actor, Event, EventType};
use crate::db::DbConnection;
use crate::error::{is_unique_violation, ApiError};

/// A new account's fields, checked but not yet stored.
pub struct Registration {
    pub username: Username,
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
    let username = Username::parse(username).map_err(|e| errors.push(e)).ok();
    if let Some(Err(e)) = email.map(check_email) {
        errors.push(e);
    }
    let roles = check_roles(roles).map_err(|e| errors.push(e)).unwrap_or_default();
    let Some(username) = username.filter(|_| errors.is_empty()) else {
        return Err(ApiError::ValidationFailed(errors));
    };
    policy.check(password, username.as_str(), email).map_err(ApiError::WeakPassword)?;
    Ok(Registration { username, email: email.map(str::to_owned), roles })
}

pub fn username_exists(conn: &mut DbConnection, username: &Username) -> Result<bool, ApiError> {
    Ok(model::find_by_username_key(conn, username.key())?.is_some())
}

/// Stores the account with its `user.created` event; a username taken in
/// the meantime is 409, settled by the unique index.
pub fn insert_user(
    conn: &mut DbConnection,
    actor: &Actor,
    registration: &Registration,
    password_hash: &str,
    now: NaiveDateTime,
) -> Result<User, ApiError> {
    let id = Uuid::new_v4().to_string();
    let roles = encode_roles(&registration.roles);
    let new = NewUser {
        id: &id,
        username: registration.username.as_str(),
        username_key: registration.username.key(),
        email: registration.email.as_deref(),
        password_hash,
        roles: &roles,
        disabled: false,
        created_at: now,
        updated_at: now,
    };
    audit::transaction(conn, |conn| {
        model::insert(conn, &new).map_err(|err| {
            if is_unique_violation(&err) {
                ApiError::UsernameTaken
            } else {
                err.into()
            }
        })?;
        let user = model::find(conn, &id)?.ok_or(ApiError::NotFound)?;
        audit::record(conn, created_event(actor, &user, now))?;
        Ok(user)
    })
}

/// `user.created` for a stored account (registration, the CLI, an import).
pub fn created_event(actor: &Actor, user: &User, now: NaiveDateTime) -> Event {
    Event::new(EventType::UserCreated, actor, now)
        .subject(&user.id)
        .detail("username", &user.username)
        .detail("roles", user.role_list())
        .detail("disabled", user.disabled)
}

/// Why a password check failed, as `login.failed` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginFailure {
    /// No such account (or a name that cannot be one).
    UnknownUser,
    WrongPassword,
    /// The right password for a disabled account.
    AccountDisabled,
}

impl LoginFailure {
    fn as_str(self) -> &'static str {
        match self {
            LoginFailure::UnknownUser => "unknown_user",
            LoginFailure::WrongPassword => "wrong_password",
            LoginFailure::AccountDisabled => "account_disabled",
        }
    }
}

/// Records a failed password check (`login.failed`) on its own: nothing else
/// changes when a password is wrong (its throttle reservation was written
/// before the check). `flow` says which check: `login` or `password_change`.
/// The name typed for an unknown account is not kept: it is often a password
/// typed into the wrong field.
pub fn record_failed_login(
    conn: &mut DbConnection,
    actor: &Actor,
    user_id: Option<&str>,
    failure: LoginFailure,
    flow: &'static str,
    now: NaiveDateTime,
) -> Result<(), ApiError> {
    let mut event =
        Event::new(EventType::LoginFailed, actor, now).detail("reason", failure.as_str()).detail("flow", flow);
    if let Some(user_id) = user_id {
        event = event.subject(user_id);
    }
    Ok(audit::record(conn, event)?)
}

pub fn get(conn: &mut DbConnection, id: &str) -> Result<User, ApiError> {
    model::find(conn, id)?.ok_or(ApiError::NotFound)
}

/// Hashes `new` for `user` (whose current password was just proven) under
/// the policy (errors reported under `new_password`). CPU-bound (bcrypt):
/// run it blocking.
pub fn new_password_hash(
    hasher: &PasswordHasher,
    policy: &PasswordPolicy,
    user: &User,
    new: &str,
) -> Result<String, ApiError> {
    policy.check(new, &user.username, user.email.as_deref()).map_err(|mut errors| {
        for e in &mut errors {
            e.field = "new_password";
        }
        ApiError::WeakPassword(errors)
    })?;
    hasher.hash(new).map_err(ApiError::internal)
}

/// Runs `change` in a transaction that refuses (409 `last_admin`) to leave no
/// enabled admin where there was one. The admins' rows are locked first, so
/// two admins demoting, disabling or deleting each other at once cannot both
/// succeed: the second waits for the first and counts again.
/// It is an audited transaction: `change` records its events in it.
pub fn keeping_an_admin<T>(
    conn: &mut DbConnection,
    change: impl FnOnce(&mut DbConnection) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    audit::transaction(conn, |conn| {
        let before = model::lock_and_count_admins(conn)?;
        let changed = change(conn)?;
        if before > 0 && model::count_admins(conn)? == 0 {
            return Err(ApiError::LastAdmin);
        }
        Ok(changed)
    })
}

/// A page of the user list: 1..=200 users (50 unless asked), from `offset`.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    limit: i64,
    offset: i64,
}

impl Page {
    pub const DEFAULT: i64 = 50;
    pub const MAX: i64 = 200;

    pub fn parse(limit: Option<i64>, offset: Option<i64>) -> Result<Page, ApiError> {
        let (limit, offset) = (limit.unwrap_or(Self::DEFAULT), offset.unwrap_or(0));
        if !(1..=Self::MAX).contains(&limit) || offset < 0 {
            return Err(ApiError::MalformedRequest(format!("limit must be 1..={} and offset at least 0", Self::MAX)));
        }
        Ok(Page { limit, offset })
    }
}

/// A page of users ordered by creation, and the total count.
pub fn list(conn: &mut DbConnection, page: Page) -> Result<(Vec<User>, i64), ApiError> {
    Ok(model::list(conn, page.limit, page.offset)?)
}

/// Replaces a user's roles (already checked by `rules::check_roles`); they
/// take effect in the user's next access token.
/// Never takes `admin` from the last enabled admin (409 `last_admin`).
pub fn set_roles(
    conn: &mut DbConnection,
    actor: &Actor,
    id: &str,
    roles: &[String],
    now: NaiveDateTime,
) -> Result<User, ApiError> {
    keeping_an_admin(conn, |conn| replace_roles(conn, actor, id, roles, now))
}

/// Replaces a user's roles with its `user.roles_changed` event (from, to),
/// without the last-admin guard (`signet users set-roles` is the way back in).
pub fn replace_roles(
    conn: &mut DbConnection,
    actor: &Actor,
    id: &str,
    roles: &[String],
    now: NaiveDateTime,
) -> Result<User, ApiError> {
    audit::transaction(conn, |conn| {
        let before = model::find(conn, id)?.ok_or(ApiError::NotFound)?;
        if model::set_roles(conn, id, roles, now)? == 0 {
            return Err(ApiError::NotFound);
        }
        let event = Event::new(EventType::UserRolesChanged, actor, now)
            .subject(id)
            .detail("username", &before.username)
            .detail("from", before.role_list())
            .detail("to", roles);
        audit::record(conn, event)?;
        get(conn, id)
    })
}

/// Deletes a user; sessions, refresh and API tokens go with it (cascade).
/// Never the last enabled admin (409 `last_admin`). The `user.deleted`
/// event keeps the username, which nothing else will.
pub fn delete(conn: &mut DbConnection, actor: &Actor, id: &str, now: NaiveDateTime) -> Result<(), ApiError> {
    keeping_an_admin(conn, |conn| {
        let user = model::find(conn, id)?.ok_or(ApiError::NotFound)?;
        if model::delete(conn, id)? == 0 {
            return Err(ApiError::NotFound);
        }
        let event = Event::new(EventType::UserDeleted, actor, now).subject(id).detail("username", &user.username);
        audit::record(conn, event)?;
        Ok(())
    })
}
