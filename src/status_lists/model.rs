//! The `status_lists` and `status_entries` tables, and the status columns of
//! `sessions` and `api_tokens`. Every function runs on the caller's
//! connection, so a flip commits or rolls back with the revocation it belongs
//! to; each flip bumps its list's `version` in that same transaction.

use chrono::{NaiveDateTime, TimeDelta};
use diesel::prelude::*;

use crate::db::schema::{api_tokens, sessions, status_entries, status_lists};
use crate::db::DbConnection;

/// A token's place in a list: list number `list` (>= 1), index `idx`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusRef {
    pub list: i64,
    pub idx: i64,
}

impl StatusRef {
    pub(crate) fn from_columns(list: Option<i64>, idx: Option<i64>) -> Option<StatusRef> {
        Some(StatusRef { list: list?, idx: idx? })
    }
}

/// Tries before allocation gives up; each failed try means another
/// transaction just filled a list or created the next one.
const ALLOCATE_TRIES: usize = 16;

/// Hands out the next free index, starting a new list of `size` indices when
/// the newest one is full. Race-free across instances: the index comes from a
/// conditional `UPDATE ... SET next_idx = next_idx + 1 WHERE next_idx < size`
/// (PostgreSQL's row lock and re-check, SQLite's write lock), and a new list's
/// number is settled by its primary key inside a savepoint.
/// `expires_at`: when the last token carrying the index expires.
// `first`: the newest open list needs ORDER BY ... LIMIT; one re-prepare per
// allocation (a login, not a refresh) is fine.
#[allow(clippy::disallowed_methods)]
pub fn allocate(
    conn: &mut DbConnection,
    size: i64,
    expires_at: NaiveDateTime,
    now: NaiveDateTime,
) -> QueryResult<StatusRef> {
    for _ in 0..ALLOCATE_TRIES {
        let open: Option<i64> = status_lists::table
            .filter(status_lists::retired_at.is_null())
            .filter(status_lists::next_idx.lt(status_lists::size))
            .order(status_lists::id.desc())
            .select(status_lists::id)
            .first(conn)
            .optional()?;
        let Some(list) = open else {
            start_list(conn, size, now)?;
            continue;
        };
        let claimed =
            diesel::update(status_lists::table.find(list).filter(status_lists::next_idx.lt(status_lists::size)))
                .set(status_lists::next_idx.eq(status_lists::next_idx + 1))
                .execute(conn)?;
        if claimed == 0 {
            continue;
        }
        // Our own update is visible to us; the row stays locked until commit.
        let next: i64 = status_lists::table.find(list).select(status_lists::next_idx).get_result(conn)?;
        let entry = StatusRef { list, idx: next - 1 };
        diesel::insert_into(status_entries::table)
            .values((
                status_entries::list_id.eq(entry.list),
                status_entries::idx.eq(entry.idx),
                status_entries::invalid.eq(false),
                status_entries::expires_at.eq(expires_at),
            ))
            .execute(conn)?;
        return Ok(entry);
    }
    Err(diesel::result::Error::QueryBuilderError("no status list index could be allocated".into()))
}

/// Creates list max+1. Two instances racing here collide on the primary key;
/// the loser's savepoint rolls back and it uses the winner's list.
fn start_list(conn: &mut DbConnection, size: i64, now: NaiveDateTime) -> QueryResult<()> {
    let last: Option<i64> = status_lists::table.select(diesel::dsl::max(status_lists::id)).get_result(conn)?;
    let id = last.unwrap_or(0) + 1;
    let created = conn.transaction(|conn| {
        diesel::insert_into(status_lists::table)
            .values((
                status_lists::id.eq(id),
                status_lists::size.eq(size),
                status_lists::next_idx.eq(0i64),
                status_lists::version.eq(0i64),
                status_lists::created_at.eq(now),
            ))
            .execute(conn)
    });
    match created {
        Ok(_) => Ok(()),
        Err(err) if crate::error::is_unique_violation(&err) => Ok(()),
        Err(err) => Err(err),
    }
}

/// Marks an index invalid and bumps its list's version (once per real change).
pub fn flip(conn: &mut DbConnection, entry: StatusRef) -> QueryResult<bool> {
    let changed =
        diesel::update(status_entries::table.find((entry.list, entry.idx)).filter(status_entries::invalid.eq(false)))
            .set(status_entries::invalid.eq(true))
            .execute(conn)?;
    if changed == 1 {
        diesel::update(status_lists::table.find(entry.list))
            .set(status_lists::version.eq(status_lists::version + 1))
            .execute(conn)?;
    }
    Ok(changed == 1)
}

// ---- sessions ----

pub fn session_index(conn: &mut DbConnection, sid: &str) -> QueryResult<Option<StatusRef>> {
    let columns: Option<(Option<i64>, Option<i64>)> =
        sessions::table.find(sid).select((sessions::status_list, sessions::status_idx)).get_result(conn).optional()?;
    Ok(columns.and_then(|(list, idx)| StatusRef::from_columns(list, idx)))
}

pub fn set_session_index(conn: &mut DbConnection, sid: &str, entry: Option<StatusRef>) -> QueryResult<usize> {
    diesel::update(sessions::table.find(sid))
        .set((sessions::status_list.eq(entry.map(|e| e.list)), sessions::status_idx.eq(entry.map(|e| e.idx))))
        .execute(conn)
}

/// Flips the index of one session (whatever its state: flipping is idempotent).
pub fn invalidate_session(conn: &mut DbConnection, sid: &str) -> QueryResult<()> {
    if let Some(entry) = session_index(conn, sid)? {
        flip(conn, entry)?;
    }
    Ok(())
}

/// Flips the indices of the user's unrevoked sessions, except `keep`; with
/// `detach`, the sessions lose their index (a new one comes at the next refresh).
pub fn invalidate_user_sessions(
    conn: &mut DbConnection,
    user_id: &str,
    keep: Option<&str>,
    detach: bool,
) -> QueryResult<usize> {
    let rows: Vec<(String, Option<i64>, Option<i64>)> = sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::status_list.is_not_null())
        .select((sessions::id, sessions::status_list, sessions::status_idx))
        .load(conn)?;
    let mut flipped = 0;
    for (sid, list, idx) in rows.into_iter().filter(|(sid, _, _)| Some(sid.as_str()) != keep) {
        if let Some(entry) = StatusRef::from_columns(list, idx) {
            flipped += usize::from(flip(conn, entry)?);
        }
        if detach {
            set_session_index(conn, &sid, None)?;
        }
    }
    Ok(flipped)
}

// ---- API tokens (their exchanged access tokens) ----

pub fn api_token_index(conn: &mut DbConnection, token_id: &str) -> QueryResult<Option<StatusRef>> {
    let columns: Option<(Option<i64>, Option<i64>)> = api_tokens::table
        .find(token_id)
        .select((api_tokens::status_list, api_tokens::status_idx))
        .get_result(conn)
        .optional()?;
    Ok(columns.and_then(|(list, idx)| StatusRef::from_columns(list, idx)))
}

fn set_api_token_index(conn: &mut DbConnection, token_id: &str, entry: Option<StatusRef>) -> QueryResult<usize> {
    diesel::update(api_tokens::table.find(token_id))
        .set((api_tokens::status_list.eq(entry.map(|e| e.list)), api_tokens::status_idx.eq(entry.map(|e| e.idx))))
        .execute(conn)
}

/// The index an exchanged access token of API token `token_id` carries,
/// expiring at `token_exp`. One index per API token: it is reused while its
/// entry is still valid and alive (its `expires_at` is pushed to `token_exp`);
/// an entry that lapsed is never revived (its list may be retiring), a new
/// index is taken instead.
pub fn api_token_exchange_index(
    conn: &mut DbConnection,
    token_id: &str,
    size: i64,
    token_exp: NaiveDateTime,
    now: NaiveDateTime,
) -> QueryResult<StatusRef> {
    conn.transaction(|conn| {
        if let Some(entry) = api_token_index(conn, token_id)? {
            let alive = status_entries::table
                .find((entry.list, entry.idx))
                .filter(status_entries::invalid.eq(false))
                .filter(status_entries::expires_at.gt(now));
            let current: Option<NaiveDateTime> =
                alive.select(status_entries::expires_at).get_result(conn).optional()?;
            if let Some(current) = current {
                if token_exp > current {
                    diesel::update(alive).set(status_entries::expires_at.eq(token_exp)).execute(conn)?;
                }
                return Ok(entry);
            }
        }
        let entry = allocate(conn, size, token_exp, now)?;
        set_api_token_index(conn, token_id, Some(entry))?;
        Ok(entry)
    })
}

/// Flips the index of an API token's exchanged tokens.
pub fn invalidate_api_token(conn: &mut DbConnection, token_id: &str, detach: bool) -> QueryResult<()> {
    if let Some(entry) = api_token_index(conn, token_id)? {
        flip(conn, entry)?;
        if detach {
            set_api_token_index(conn, token_id, None)?;
        }
    }
    Ok(())
}

/// Flips (and detaches) the indices of every API token of a user.
pub fn invalidate_user_api_tokens(conn: &mut DbConnection, user_id: &str) -> QueryResult<()> {
    let ids: Vec<String> = api_tokens::table
        .filter(api_tokens::user_id.eq(user_id))
        .filter(api_tokens::status_list.is_not_null())
        .select(api_tokens::id)
        .load(conn)?;
    for id in ids {
        invalidate_api_token(conn, &id, true)?;
    }
    Ok(())
}

// ---- serving and retirement ----

/// Live (unretired) lists and their versions.
pub fn live_versions(conn: &mut DbConnection) -> QueryResult<Vec<(i64, i64)>> {
    status_lists::table
        .filter(status_lists::retired_at.is_null())
        .order(status_lists::id.asc())
        .select((status_lists::id, status_lists::version))
        .load(conn)
}

/// A live list's content as of one read.
pub struct ListContent {
    pub version: i64,
    pub size: i64,
    pub invalid: Vec<i64>,
}

/// The list's version, size and invalid indices; None if unknown or retired.
/// The version is read first, so the content is never older than its label.
pub fn load(conn: &mut DbConnection, list: i64) -> QueryResult<Option<ListContent>> {
    let head: Option<(i64, i64)> = status_lists::table
        .find(list)
        .filter(status_lists::retired_at.is_null())
        .select((status_lists::version, status_lists::size))
        .get_result(conn)
        .optional()?;
    let Some((version, size)) = head else {
        return Ok(None);
    };
    let invalid = status_entries::table
        .filter(status_entries::list_id.eq(list))
        .filter(status_entries::invalid.eq(true))
        .select(status_entries::idx)
        .load(conn)?;
    Ok(Some(ListContent { version, size, invalid }))
}

/// Retires full lists none of whose entries can still be carried by an
/// unexpired token (`expires_at` more than `grace` ago), and drops their
/// entries. Only full lists: no index can be handed out of them any more, so
/// retirement cannot race with allocation. Returns the retired list numbers.
pub fn retire_expired(conn: &mut DbConnection, now: NaiveDateTime, grace: TimeDelta) -> QueryResult<Vec<i64>> {
    let cutoff = now - grace;
    let candidates: Vec<i64> = status_lists::table
        .filter(status_lists::retired_at.is_null())
        .filter(status_lists::next_idx.ge(status_lists::size))
        .select(status_lists::id)
        .load(conn)?;
    let mut retired = Vec::new();
    for list in candidates {
        let done = conn.transaction(|conn| -> QueryResult<bool> {
            let alive = diesel::dsl::select(diesel::dsl::exists(
                status_entries::table
                    .filter(status_entries::list_id.eq(list))
                    .filter(status_entries::expires_at.gt(cutoff)),
            ))
            .get_result::<bool>(conn)?;
            if alive {
                return Ok(false);
            }
            let marked = diesel::update(status_lists::table.find(list).filter(status_lists::retired_at.is_null()))
                .set(status_lists::retired_at.eq(now))
                .execute(conn)?;
            diesel::delete(status_entries::table.filter(status_entries::list_id.eq(list))).execute(conn)?;
            Ok(marked == 1)
        })?;
        if done {
            retired.push(list);
        }
    }
    Ok(retired)
}
