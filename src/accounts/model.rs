//! The `users` table: row types and the queries on it.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use crate::db::schema::users;
use crate::db::DbConnection;
use crate::status_lists::model as status_lists;

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: String,
    pub username: String,
    pub username_key: String,
    pub email: Option<String>,
    pub password_hash: String,
    /// JSON array of role names.
    pub roles: String,
    pub disabled: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    pub id: &'a str,
    pub username: &'a str,
    pub username_key: &'a str,
    pub email: Option<&'a str>,
    pub password_hash: &'a str,
    pub roles: &'a str,
    pub disabled: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// The user object of API.md; never carries the password hash.
#[derive(Debug, Clone, Serialize)]
pub struct UserView {
    pub id: String,
    pub username: String,
    pub email: Option<String>,
    pub roles: Vec<String>,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
}

impl User {
    pub fn role_list(&self) -> Vec<String> {
        decode_roles(&self.roles)
    }

    pub fn view(&self) -> UserView {
        UserView {
            id: self.id.clone(),
            username: self.username.clone(),
            email: self.email.clone(),
            roles: self.role_list(),
            disabled: self.disabled,
            created_at: self.created_at.and_utc(),
        }
    }
}

pub fn encode_roles(roles: &[String]) -> String {
    serde_json::to_string(roles).unwrap_or_else(|_| "[]".to_owned())
}

fn decode_roles(json: &str) -> Vec<String> {
    serde_json::from_str(json).unwrap_or_else(|err| {
        log::error!("unreadable roles column ({err}); treating as no roles");
        Vec::new()
    })
}

pub fn insert(conn: &mut DbConnection, user: &NewUser<'_>) -> QueryResult<()> {
    diesel::insert_into(users::table).values(user).execute(conn).map(|_| ())
}

pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<User>> {
    users::table.find(id).select(User::as_select()).get_result(conn).optional()
}

pub fn find_by_username_key(conn: &mut DbConnection, key: &str) -> QueryResult<Option<User>> {
    users::table.filter(users::username_key.eq(key)).select(User::as_select()).get_result(conn).optional()
}

/// A page of users ordered by creation, and the total count.
pub fn list(conn: &mut DbConnection, limit: i64, offset: i64) -> QueryResult<(Vec<User>, i64)> {
    let page = users::table
        .order((users::created_at.asc(), users::id.asc()))
        .limit(limit)
        .offset(offset)
        .select(User::as_select())
        .load(conn)?;
    let total = users::table.count().get_result(conn)?;
    Ok((page, total))
}

/// Sets the roles. Tokens carrying the old roles are taken back in the same
/// transaction: the indices of the user's sessions and API tokens are flipped
/// and detached; each session gets a new index (and the new roles) at its next
/// refresh, each API token at its next exchange.
pub fn set_roles(conn: &mut DbConnection, id: &str, roles: &[String], now: NaiveDateTime) -> QueryResult<usize> {
    conn.transaction(|conn| {
        let changed = diesel::update(users::table.find(id))
            .set((users::roles.eq(encode_roles(roles)), users::updated_at.eq(now)))
            .execute(conn)?;
        if changed == 1 {
            status_lists::invalidate_user_sessions(conn, id, None, true)?;
            status_lists::invalidate_user_api_tokens(conn, id)?;
        }
        Ok(changed)
    })
}

/// Replaces the hash only if it is still `old`: a concurrent password change wins.
pub fn upgrade_password_hash(conn: &mut DbConnection, id: &str, old: &str, new: &str) -> QueryResult<usize> {
    diesel::update(users::table.find(id).filter(users::password_hash.eq(old)))
        .set(users::password_hash.eq(new))
        .execute(conn)
}

pub fn touch(conn: &mut DbConnection, id: &str, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(users::table.find(id)).set(users::updated_at.eq(now)).execute(conn)
}

/// Disabling also flips the indices of the user's API tokens (their exchanged
/// access tokens); the caller revokes the sessions (`revoke_user_sessions`).
pub fn set_disabled(conn: &mut DbConnection, id: &str, disabled: bool, now: NaiveDateTime) -> QueryResult<usize> {
    conn.transaction(|conn| {
        if disabled {
            status_lists::invalidate_user_api_tokens(conn, id)?;
        }
        diesel::update(users::table.find(id))
            .set((users::disabled.eq(disabled), users::updated_at.eq(now)))
            .execute(conn)
    })
}

pub fn set_email(conn: &mut DbConnection, id: &str, email: Option<&str>, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(users::table.find(id)).set((users::email.eq(email), users::updated_at.eq(now))).execute(conn)
}

/// Deletes the user (sessions, refresh and API tokens cascade), flipping every
/// status list index they held first, in the same transaction.
/// How many enabled users hold `admin`, after locking their rows (PostgreSQL:
/// `FOR UPDATE`, in id order so two such transactions never deadlock; SQLite:
/// a no-op write takes the database write lock). Call first in a transaction
/// that may take `admin` away: a concurrent one waits, then counts again.
pub fn lock_and_count_admins(conn: &mut DbConnection) -> QueryResult<usize> {
    let admins = users::table
        .filter(users::disabled.eq(false))
        .filter(users::roles.like(format!("%\"{}\"%", crate::roles::ADMIN)))
        .select(users::id)
        .order(users::id);
    match conn {
        DbConnection::Postgres(pg) => Ok(admins.for_update().load::<String>(pg)?.len()),
        DbConnection::Sqlite(sqlite) => {
            diesel::update(users::table.filter(users::id.is_null())).set(users::id.eq(users::id)).execute(sqlite)?;
            Ok(admins.load::<String>(sqlite)?.len())
        }
    }
}

/// How many enabled users hold `admin` (inside the locking transaction).
pub fn count_admins(conn: &mut DbConnection) -> QueryResult<i64> {
    users::table
        .filter(users::disabled.eq(false))
        .filter(users::roles.like(format!("%\"{}\"%", crate::roles::ADMIN)))
        .count()
        .get_result(conn)
}

pub fn delete(conn: &mut DbConnection, id: &str) -> QueryResult<usize> {
    conn.transaction(|conn| {
        status_lists::invalidate_user_sessions(conn, id, None, false)?;
        status_lists::invalidate_user_api_tokens(conn, id)?;
        diesel::delete(users::table.find(id)).execute(conn)
    })
}
