//! The `api_tokens` table.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use crate::db::schema::api_tokens;
use crate::db::DbConnection;
use crate::status_lists::model as status_lists;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = api_tokens)]
pub struct ApiToken {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub token_hash: String,
    pub prefix: String,
    pub created_at: NaiveDateTime,
    pub expires_at: Option<NaiveDateTime>,
    pub last_used_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
}

/// An API token as listed: never the secret, never its hash.
#[derive(Debug, Serialize)]
pub struct ApiTokenView {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl ApiToken {
    pub fn view(&self) -> ApiTokenView {
        ApiTokenView {
            id: self.id.clone(),
            name: self.name.clone(),
            prefix: self.prefix.clone(),
            created_at: self.created_at.and_utc(),
            expires_at: self.expires_at.map(|t| t.and_utc()),
            last_used_at: self.last_used_at.map(|t| t.and_utc()),
        }
    }
}

pub fn insert(conn: &mut DbConnection, token: &ApiToken) -> QueryResult<usize> {
    diesel::insert_into(api_tokens::table).values(token).execute(conn)
}

pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<ApiToken>> {
    api_tokens::table.find(id).select(ApiToken::as_select()).get_result(conn).optional()
}

pub fn find_by_hash(conn: &mut DbConnection, hash: &str) -> QueryResult<Option<ApiToken>> {
    api_tokens::table.filter(api_tokens::token_hash.eq(hash)).select(ApiToken::as_select()).get_result(conn).optional()
}

/// The user's live tokens (not revoked, not expired), newest first.
pub fn live_for_user(conn: &mut DbConnection, user_id: &str, now: NaiveDateTime) -> QueryResult<Vec<ApiToken>> {
    api_tokens::table
        .filter(api_tokens::user_id.eq(user_id))
        .filter(api_tokens::revoked_at.is_null())
        .filter(api_tokens::expires_at.is_null().or(api_tokens::expires_at.gt(now)))
        .order((api_tokens::created_at.desc(), api_tokens::id.asc()))
        .select(ApiToken::as_select())
        .load(conn)
}

/// Revokes a live token and flips the index of its exchanged access tokens,
/// in one transaction.
pub fn revoke(conn: &mut DbConnection, user_id: &str, id: &str, now: NaiveDateTime) -> QueryResult<usize> {
    conn.transaction(|conn| {
        let revoked = diesel::update(
            api_tokens::table.find(id).filter(api_tokens::user_id.eq(user_id)).filter(api_tokens::revoked_at.is_null()),
        )
        .set(api_tokens::revoked_at.eq(now))
        .execute(conn)?;
        if revoked == 1 {
            status_lists::invalidate_api_token(conn, id, false)?;
        }
        Ok(revoked)
    })
}

/// Revokes every live token of a user (a password change), each as [`revoke`]
/// does. Returns how many.
pub fn revoke_all_for_user(conn: &mut DbConnection, user_id: &str, now: NaiveDateTime) -> QueryResult<usize> {
    let ids: Vec<String> = api_tokens::table
        .filter(api_tokens::user_id.eq(user_id))
        .filter(api_tokens::revoked_at.is_null())
        .select(api_tokens::id)
        .load(conn)?;
    ids.iter().try_fold(0, |revoked, id| Ok(revoked + revoke(conn, user_id, id, now)?))
}

/// Records a use, at most once per [`TOUCH_INTERVAL_SECS`] per token: every
/// `Authorization: Token` request writing a row would make reads cost writes.
/// Conditional, so concurrent requests past the interval write once.
pub fn touch(conn: &mut DbConnection, id: &str, now: NaiveDateTime) -> QueryResult<usize> {
    let stale_before = now - chrono::TimeDelta::seconds(TOUCH_INTERVAL_SECS);
    diesel::update(
        api_tokens::table
            .find(id)
            .filter(api_tokens::last_used_at.is_null().or(api_tokens::last_used_at.le(stale_before))),
    )
    .set(api_tokens::last_used_at.eq(now))
    .execute(conn)
}

/// `last_used_at` is this precise, no more.
pub const TOUCH_INTERVAL_SECS: i64 = 60;
