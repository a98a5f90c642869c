//! Account changes that end sessions: a new password ends every other
//! session, disabling an account ends them all. They live here, not in
//! `accounts`, because sessions sit above accounts (a session belongs to a
//! user), and imports run one way.

use chrono::NaiveDateTime;

use super::model::revoke_user_sessions;
use crate::accounts::model::{self as users, User};
use crate::audit::{self, Actor, Event, EventType};
use crate::db::DbConnection;
use crate::error::ApiError;

/// Stores `new_hash` (proven against `user`'s current hash) and revokes every
/// session of the user but `keep` and all the user's API tokens (they were
/// issued under the old password), in one transaction with its
/// `password.changed` event.
pub fn store_new_password(
    conn: &mut DbConnection,
    actor: &Actor,
    user: &User,
    new_hash: &str,
    keep: Option<&str>,
    now: NaiveDateTime,
) -> Result<(), ApiError> {
    audit::transaction(conn, |conn| {
        // Only if nobody changed it meanwhile: the proof was for the old hash.
        if users::upgrade_password_hash(conn, &user.id, &user.password_hash, new_hash)? == 0 {
            return Err(ApiError::InvalidCredentials);
        }
        users::touch(conn, &user.id, now)?;
        let sessions = revoke_user_sessions(conn, &user.id, keep, now, "password_changed")?;
        let api_tokens = crate::api_tokens::model::revoke_all_for_user(conn, &user.id, now)?;
        let event = Event::new(EventType::PasswordChanged, actor, now)
            .subject(&user.id)
            .detail("sessions_revoked", sessions)
            .detail("api_tokens_revoked", api_tokens);
        audit::record(conn, event)?;
        Ok(())
    })
}

/// What an admin may change on a user; `None` leaves a field alone.
#[derive(Debug, Default)]
pub struct UserChanges {
    pub disabled: Option<bool>,
    /// `Some(None)` clears the e-mail address.
    pub email: Option<Option<String>>,
}

/// Applies `changes` to user `id` in one transaction; disabling revokes all
/// the user's sessions, and never disables the last enabled admin (409
/// `last_admin`). A change of `disabled` is recorded (`user.disabled`,
/// `user.enabled`). Returns the updated user.
pub fn update_user(
    conn: &mut DbConnection,
    actor: &Actor,
    id: &str,
    changes: &UserChanges,
    now: NaiveDateTime,
) -> Result<User, ApiError> {
    crate::accounts::service::keeping_an_admin(conn, |conn| {
        let user = users::find(conn, id)?.ok_or(ApiError::NotFound)?;
        if let Some(disabled) = changes.disabled {
            users::set_disabled(conn, &user.id, disabled, now)?;
            let event = match (user.disabled, disabled) {
                (false, true) => {
                    let sessions = revoke_user_sessions(conn, &user.id, None, now, "user_disabled")?;
                    Some(Event::new(EventType::UserDisabled, actor, now).detail("sessions_revoked", sessions))
                }
                (true, false) => Some(Event::new(EventType::UserEnabled, actor, now)),
                // Disabled again: its sessions were revoked when it was disabled.
                (true, true) => {
                    revoke_user_sessions(conn, &user.id, None, now, "user_disabled")?;
                    None
                }
                (false, false) => None,
            };
            if let Some(event) = event {
                audit::record(conn, event.subject(&user.id).detail("username", &user.username))?;
            }
        }
        if let Some(email) = &changes.email {
            users::set_email(conn, &user.id, email.as_deref(), now)?;
        }
        users::find(conn, &user.id)?.ok_or(ApiError::NotFound)
    })
}
