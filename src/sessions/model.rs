//! The `sessions` and `refresh_tokens` tables. Invariants live in conditional
//! updates (`WHERE used_at IS NULL ...`) whose row counts settle races.

use chrono::{NaiveDateTime, TimeDelta};
use diesel::prelude::*;

use crate::accounts::model::User;
use crate::db::schema::{refresh_tokens, sessions, users};
use crate::db::DbConnection;
use crate::status_lists::model as status_lists;
use crate::status_lists::StatusRef;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions)]
pub struct Session {
    pub id: String,
    pub user_id: String,
    pub created_at: NaiveDateTime,
    pub last_used_at: NaiveDateTime,
    /// Absolute end of the session, whatever the refreshes.
    pub expires_at: NaiveDateTime,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub revoked_at: Option<NaiveDateTime>,
    pub revoked_reason: Option<String>,
}

/// A refresh token as stored (inserted as [`NewRefreshToken`]).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = refresh_tokens)]
pub struct RefreshToken {
    pub jti: String,
    pub session_id: String,
    pub user_id: String,
    pub issued_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub used_at: Option<NaiveDateTime>,
    pub replaced_by: Option<String>,
}

pub fn insert_session(conn: &mut DbConnection, session: &Session) -> QueryResult<()> {
    diesel::insert_into(sessions::table).values(session).execute(conn).map(|_| ())
}

/// Records a new (unused) refresh token; runs on every login and refresh.
/// The columns it leaves out (`used_at`, `replaced_by`) are NULL.
pub fn insert_refresh_token(conn: &mut DbConnection, token: &NewRefreshToken<'_>) -> QueryResult<()> {
    // The backend's own connection (`on_backend`) and a statement with a
    // static query id: diesel finds it prepared by its type, without writing
    // its SQL text out again for the cache key (see `NewRefreshToken`).
    crate::on_backend!(conn, |inner| token.execute(inner)).map(|_| ())
}

/// A refresh token as it is issued, and the `INSERT` that stores it. Written
/// out by hand: diesel's `insert_into(..).values(..)` has no static query id
/// (each value may be `DEFAULT`), so every run rebuilt the SQL text to look
/// the prepared statement up (BENCHMARKS.md, issue 16, session 10).
#[derive(Debug, Clone, Copy)]
pub struct NewRefreshToken<'a> {
    pub jti: &'a str,
    pub session_id: &'a str,
    pub user_id: &'a str,
    pub issued_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

impl diesel::query_builder::QueryId for NewRefreshToken<'_> {
    type QueryId = NewRefreshToken<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<DB> diesel::query_builder::QueryFragment<DB> for NewRefreshToken<'_>
where
    DB: diesel::backend::Backend,
    DB: diesel::sql_types::HasSqlType<diesel::sql_types::Text>
        + diesel::sql_types::HasSqlType<diesel::sql_types::Timestamp>,
    str: diesel::serialize::ToSql<diesel::sql_types::Text, DB>,
    NaiveDateTime: diesel::serialize::ToSql<diesel::sql_types::Timestamp, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: diesel::query_builder::AstPass<'_, 'b, DB>) -> QueryResult<()> {
        use diesel::sql_types::{Text, Timestamp};
        out.push_sql("INSERT INTO refresh_tokens (jti, session_id, user_id, issued_at, expires_at) VALUES (");
        out.push_bind_param::<Text, str>(self.jti)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, str>(self.session_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, str>(self.user_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamp, _>(&self.issued_at)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamp, _>(&self.expires_at)?;
        out.push_sql(")");
        Ok(())
    }
}

impl<Conn> RunQueryDsl<Conn> for NewRefreshToken<'_> {}

pub fn find_session(conn: &mut DbConnection, id: &str) -> QueryResult<Option<Session>> {
    sessions::table.find(id).select(Session::as_select()).get_result(conn).optional()
}

/// A session with its status list index and its user, in one read.
pub fn find_session_with_user(
    conn: &mut DbConnection,
    id: &str,
) -> QueryResult<Option<(Session, Option<StatusRef>, User)>> {
    // On every refresh and bearer check: the backend's own connection (`on_backend`).
    let row: Option<SessionUserRow> = crate::on_backend!(conn, |inner| sessions::table
        .inner_join(users::table)
        .filter(sessions::id.eq(id))
        .select((Session::as_select(), sessions::status_list, sessions::status_idx, User::as_select()))
        .get_result(inner)
        .optional())?;
    Ok(row.map(with_status_ref))
}

/// A session row as both reads select it, its status list columns made one.
type SessionUserRow = (Session, Option<i64>, Option<i64>, User);

fn with_status_ref((session, list, idx, user): SessionUserRow) -> (Session, Option<StatusRef>, User) {
    (session, StatusRef::from_columns(list, idx), user)
}

/// [`find_session_with_user`] for many sessions in one statement (on
/// PostgreSQL `= ANY($1)`, one prepared statement whatever their number);
/// unknown ids are left out.
pub fn find_sessions_with_users(
    pg: &mut PgConnection,
    ids: &[String],
) -> QueryResult<Vec<(Session, Option<StatusRef>, User)>> {
    let rows: Vec<SessionUserRow> = sessions::table
        .inner_join(users::table)
        .filter(sessions::id.eq_any(ids))
        .select((Session::as_select(), sessions::status_list, sessions::status_idx, User::as_select()))
        .load(pg)?;
    Ok(rows.into_iter().map(with_status_ref).collect())
}

pub fn find_refresh_token(conn: &mut DbConnection, jti: &str) -> QueryResult<Option<RefreshToken>> {
    refresh_tokens::table.find(jti).select(RefreshToken::as_select()).get_result(conn).optional()
}

/// Holds the user (shared) and the session (exclusive) until the transaction
/// ends, so a refresh cannot mint after a revocation that commits meanwhile:
/// a logout or disable in flight is waited for, and the statements after the
/// lock see it. PostgreSQL only, in the order the revoking transactions lock
/// (user, then session, then refresh tokens by cascade), so none deadlock.
/// SQLite needs nothing: a rotation runs in the writer thread's batch, which
/// holds the one write lock (`BEGIN IMMEDIATE`) from its start.
pub fn lock_for_rotation(conn: &mut DbConnection, user_id: &str, session_id: &str) -> QueryResult<()> {
    if let DbConnection::Postgres(pg) = conn {
        users::table.find(user_id).select(users::id).for_share().load::<String>(pg)?;
        sessions::table.find(session_id).select(sessions::id).for_update().load::<String>(pg)?;
    }
    Ok(())
}

/// `last_used_at` of a session is this precise, no more: a refresh within a
/// minute of the recorded use writes nothing to the session. Writing it on
/// every refresh made a new row version each time (PostgreSQL: a HOT chain
/// that every later lookup walked) and a page for SQLite's WAL.
pub const TOUCH_INTERVAL_SECS: i64 = 60;

/// A use at `now` is recorded when the one recorded is at or before this.
fn touch_due_at_or_before(now: NaiveDateTime) -> NaiveDateTime {
    now - TimeDelta::seconds(TOUCH_INTERVAL_SECS)
}

/// Whether a use at `now` is to be recorded in `last_used_at`.
pub fn touch_is_due(last_used_at: NaiveDateTime, now: NaiveDateTime) -> bool {
    last_used_at <= touch_due_at_or_before(now)
}

/// Records a use of a session at `now` (call when [`touch_is_due`]);
/// conditional, so concurrent refreshes past the interval write once.
pub fn touch_session(conn: &mut DbConnection, id: &str, now: NaiveDateTime) -> QueryResult<usize> {
    let stale = touch_due_at_or_before(now);
    diesel::update(sessions::table.filter(sessions::id.eq(id)).filter(sessions::last_used_at.le(stale)))
        .set(sessions::last_used_at.eq(now))
        .execute(conn)
}

/// The common refresh on PostgreSQL, in one call of the
/// `signet_rotate_refresh` function (one round trip, no `BEGIN`/`COMMIT`):
/// the user under a shared lock, the session locked if live (and already
/// holding a status list index, when `needs_index`) and touched when
/// [`touch_is_due`], the token claimed with its successor `successor` linked, and the successor
/// stored with `expires_at` capped by the session's end (whole seconds, as
/// the JWT's `exp`). The locks are taken in the order of a rotation
/// transaction (user, session, token). None when anything is not so: the
/// caller then runs the rotation transaction, which tells why.
#[allow(clippy::too_many_arguments)]
pub fn rotate_in_one_statement(
    pg: &mut PgConnection,
    user_id: &str,
    session_id: &str,
    jti: &str,
    successor: &str,
    successor_expires_at: NaiveDateTime,
    needs_index: bool,
    now: NaiveDateTime,
) -> QueryResult<Option<(User, Session, Option<StatusRef>)>> {
    // The statements are in the function (migrations 2026-12-06-000030, -000040, -000050), whose
    // plans PostgreSQL keeps for the connection; the call itself is a prepared statement.
    let touch_before = touch_due_at_or_before(now);
    let call = RotateCall { user_id, session_id, jti, now, successor, successor_expires_at, needs_index, touch_before };
    let row: Option<OneStatementRotation> = call.get_result(pg).optional()?;
    Ok(row.map(OneStatementRotation::split))
}

/// `SELECT * FROM signet_rotate_refresh(...)` as a query diesel keeps
/// prepared on the connection: `sql_query` is parsed, analysed and planned by
/// PostgreSQL on every call (diesel never caches it). A migration that
/// changes the function's columns must give it a new name: connections that
/// prepared the call would fail with "cached plan must not change result type".
struct RotateCall<'a> {
    user_id: &'a str,
    session_id: &'a str,
    jti: &'a str,
    now: NaiveDateTime,
    successor: &'a str,
    successor_expires_at: NaiveDateTime,
    needs_index: bool,
    touch_before: NaiveDateTime,
}

impl diesel::query_builder::QueryId for RotateCall<'_> {
    type QueryId = RotateCall<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl diesel::query_builder::QueryFragment<diesel::pg::Pg> for RotateCall<'_> {
    fn walk_ast<'b>(&'b self, mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>) -> QueryResult<()> {
        use diesel::sql_types::{Bool, Text, Timestamp};
        out.push_sql("SELECT * FROM signet_rotate_refresh(");
        out.push_bind_param::<Text, _>(&self.user_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&self.session_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&self.jti)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamp, _>(&self.now)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&self.successor)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamp, _>(&self.successor_expires_at)?;
        out.push_sql(", ");
        out.push_bind_param::<Bool, _>(&self.needs_index)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamp, _>(&self.touch_before)?;
        out.push_sql(")");
        Ok(())
    }
}

impl diesel::query_builder::Query for RotateCall<'_> {
    type SqlType = diesel::sql_types::Untyped;
}

impl RunQueryDsl<PgConnection> for RotateCall<'_> {}

/// One rotation of a [`rotate_batch`]: the presented token (`jti`, of
/// session `session_id` and user `user_id`) and its successor, as for
/// [`rotate_in_one_statement`].
#[derive(Debug, Clone)]
pub struct RotationRequest {
    pub user_id: String,
    pub session_id: String,
    pub jti: String,
    pub successor: String,
    pub successor_expires_at: NaiveDateTime,
    pub now: NaiveDateTime,
}

/// What [`rotate_in_one_statement`] gives for each rotation it could do.
pub type OneCallRotation = (User, Session, Option<StatusRef>);

/// Many rotations in one statement (one round trip, one commit): each is a
/// call of `signet_rotate_refresh`, so each claims its own token under its
/// own user and session locks, exactly as [`rotate_in_one_statement`] does;
/// the answer is in `requests`' order, None where that one call gave nothing
/// (the caller then runs the rotation transaction, which tells why). The
/// calls run in the order of their session ids, so two batches lock sessions
/// in one order. A later call sees what an earlier one wrote (the function is
/// volatile): a token presented twice in one batch is claimed by the first.
/// The batch is one transaction: an error anywhere stores none of it.
pub fn rotate_batch(
    pg: &mut PgConnection,
    requests: &[RotationRequest],
    needs_index: bool,
) -> QueryResult<Vec<Option<OneCallRotation>>> {
    let mut order: Vec<usize> = (0..requests.len()).collect();
    order.sort_by(|a, b| requests[*a].session_id.cmp(&requests[*b].session_id));
    let column = |pick: fn(&RotationRequest) -> &String| -> Vec<&str> {
        order.iter().map(|i| pick(&requests[*i]).as_str()).collect()
    };
    let call = BatchRotateCall {
        user_ids: column(|r| &r.user_id),
        session_ids: column(|r| &r.session_id),
        jtis: column(|r| &r.jti),
        nows: order.iter().map(|i| requests[*i].now).collect(),
        successors: column(|r| &r.successor),
        successor_expiries: order.iter().map(|i| requests[*i].successor_expires_at).collect(),
        needs_index,
        touch_befores: order.iter().map(|i| touch_due_at_or_before(requests[*i].now)).collect(),
    };
    let rows: Vec<BatchedRotation> = call.load(pg)?;
    let mut answers: Vec<Option<OneCallRotation>> = requests.iter().map(|_| None).collect();
    for row in rows {
        // `position` is 1-based, in the sorted order.
        let sorted = usize::try_from(row.position - 1).ok().and_then(|p| order.get(p).copied());
        let Some(request) = sorted else {
            return Err(diesel::result::Error::DeserializationError("a batch row of no request".into()));
        };
        answers[request] = Some(row.rotation.split());
    }
    Ok(answers)
}

/// The batch as one prepared statement: the requests as parallel arrays
/// (whatever their number, the statement's text stays the same), each row
/// joined to its own call of the function.
struct BatchRotateCall<'a> {
    user_ids: Vec<&'a str>,
    session_ids: Vec<&'a str>,
    jtis: Vec<&'a str>,
    nows: Vec<NaiveDateTime>,
    successors: Vec<&'a str>,
    successor_expiries: Vec<NaiveDateTime>,
    needs_index: bool,
    touch_befores: Vec<NaiveDateTime>,
}

impl diesel::query_builder::QueryId for BatchRotateCall<'_> {
    type QueryId = BatchRotateCall<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl diesel::query_builder::QueryFragment<diesel::pg::Pg> for BatchRotateCall<'_> {
    fn walk_ast<'b>(&'b self, mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>) -> QueryResult<()> {
        use diesel::sql_types::{Array, Bool, Text, Timestamp};
        out.push_sql("SELECT b.position, r.* FROM unnest(");
        out.push_bind_param::<Array<Text>, _>(&self.user_ids)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.session_ids)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.jtis)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Timestamp>, _>(&self.nows)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.successors)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Timestamp>, _>(&self.successor_expiries)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Timestamp>, _>(&self.touch_befores)?;
        out.push_sql(
            ") WITH ORDINALITY AS b(user_id, session_id, jti, now, successor, latest_expiry, touch_before, position) \
             CROSS JOIN LATERAL signet_rotate_refresh(\
             b.user_id, b.session_id, b.jti, b.now, b.successor, b.latest_expiry, ",
        );
        out.push_bind_param::<Bool, _>(&self.needs_index)?;
        out.push_sql(", b.touch_before) r");
        Ok(())
    }
}

impl diesel::query_builder::Query for BatchRotateCall<'_> {
    type SqlType = diesel::sql_types::Untyped;
}

impl RunQueryDsl<PgConnection> for BatchRotateCall<'_> {}

#[derive(QueryableByName)]
struct BatchedRotation {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    position: i64,
    #[diesel(embed)]
    rotation: OneStatementRotation,
}

#[derive(QueryableByName)]
struct OneStatementRotation {
    #[diesel(sql_type = diesel::sql_types::Text)]
    u_id: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    username: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    username_key: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    email: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Text)]
    password_hash: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    roles: String,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    disabled: bool,
    #[diesel(sql_type = diesel::sql_types::Timestamp)]
    u_created_at: NaiveDateTime,
    #[diesel(sql_type = diesel::sql_types::Timestamp)]
    u_updated_at: NaiveDateTime,
    #[diesel(sql_type = diesel::sql_types::Text)]
    s_id: String,
    #[diesel(sql_type = diesel::sql_types::Timestamp)]
    s_created_at: NaiveDateTime,
    #[diesel(sql_type = diesel::sql_types::Timestamp)]
    last_used_at: NaiveDateTime,
    #[diesel(sql_type = diesel::sql_types::Timestamp)]
    expires_at: NaiveDateTime,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    user_agent: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    ip: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Timestamp>)]
    revoked_at: Option<NaiveDateTime>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    revoked_reason: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    status_list: Option<i64>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    status_idx: Option<i64>,
}

impl OneStatementRotation {
    fn split(self) -> (User, Session, Option<StatusRef>) {
        let user = User {
            id: self.u_id,
            username: self.username,
            username_key: self.username_key,
            email: self.email,
            password_hash: self.password_hash,
            roles: self.roles,
            disabled: self.disabled,
            created_at: self.u_created_at,
            updated_at: self.u_updated_at,
        };
        let session = Session {
            id: self.s_id,
            user_id: user.id.clone(),
            created_at: self.s_created_at,
            last_used_at: self.last_used_at,
            expires_at: self.expires_at,
            user_agent: self.user_agent,
            ip: self.ip,
            revoked_at: self.revoked_at,
            revoked_reason: self.revoked_reason,
        };
        (user, session, StatusRef::from_columns(self.status_list, self.status_idx))
    }
}

/// Marks a refresh token of session `session_id` and user `user_id` used and
/// links its successor if, and only if, it is unused and unexpired. Exactly
/// one of any number of concurrent callers gets 1. The caller has checked the
/// session live under its lock.
pub fn claim_refresh_token(
    conn: &mut DbConnection,
    jti: &str,
    session_id: &str,
    user_id: &str,
    successor: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    match conn {
        // Found by the primary key only: with `session_id =` PostgreSQL's
        // generic plan may take refresh_tokens_session_id and read every
        // token the session ever had (migration 2026-12-06-000050 says
        // when). `IS NOT DISTINCT FROM` is `=` on these NOT NULL columns but
        // not indexable.
        DbConnection::Postgres(pg) => diesel::update(
            refresh_tokens::table
                .filter(refresh_tokens::jti.eq(jti))
                .filter(refresh_tokens::used_at.is_null())
                .filter(refresh_tokens::expires_at.gt(now))
                .filter(refresh_tokens::session_id.is_not_distinct_from(session_id))
                .filter(refresh_tokens::user_id.is_not_distinct_from(user_id)),
        )
        .set((refresh_tokens::used_at.eq(now), refresh_tokens::replaced_by.eq(successor)))
        .execute(pg),
        // SQLite's planner takes the unique index on jti by itself. A
        // statement of our own: diesel prepares every `UPDATE` afresh (its
        // UpdateStatement is never cached), and this one runs on every refresh.
        DbConnection::Sqlite(sqlite) => SqliteClaim { jti, session_id, user_id, successor, now }.execute(sqlite),
    }
}

/// [`claim_refresh_token`]'s `UPDATE` on SQLite as a query diesel keeps
/// prepared on the connection (a static `QueryId`).
struct SqliteClaim<'a> {
    jti: &'a str,
    session_id: &'a str,
    user_id: &'a str,
    successor: &'a str,
    now: NaiveDateTime,
}

impl diesel::query_builder::QueryId for SqliteClaim<'_> {
    type QueryId = SqliteClaim<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite> for SqliteClaim<'_> {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::sqlite::Sqlite>,
    ) -> QueryResult<()> {
        use diesel::sql_types::{Text, Timestamp};
        out.push_sql("UPDATE refresh_tokens SET used_at = ");
        out.push_bind_param::<Timestamp, _>(&self.now)?;
        out.push_sql(", replaced_by = ");
        out.push_bind_param::<Text, _>(&self.successor)?;
        out.push_sql(" WHERE jti = ");
        out.push_bind_param::<Text, _>(&self.jti)?;
        out.push_sql(" AND session_id = ");
        out.push_bind_param::<Text, _>(&self.session_id)?;
        out.push_sql(" AND user_id = ");
        out.push_bind_param::<Text, _>(&self.user_id)?;
        out.push_sql(" AND used_at IS NULL AND expires_at > ");
        out.push_bind_param::<Timestamp, _>(&self.now)?;
        Ok(())
    }
}

impl RunQueryDsl<diesel::SqliteConnection> for SqliteClaim<'_> {}

/// Revokes one live session and flips its status list index, in one
/// transaction; returns 1 if it was live.
pub fn revoke_session(conn: &mut DbConnection, id: &str, now: NaiveDateTime, reason: &str) -> QueryResult<usize> {
    conn.transaction(|conn| {
        let revoked = diesel::update(sessions::table.find(id).filter(sessions::revoked_at.is_null()))
            .set((sessions::revoked_at.eq(now), sessions::revoked_reason.eq(reason)))
            .execute(conn)?;
        if revoked == 1 {
            status_lists::invalidate_session(conn, id)?;
        }
        Ok(revoked)
    })
}

/// Revokes every live session of a user, except `keep` if given, flipping
/// their status list indices in the same transaction.
pub fn revoke_user_sessions(
    conn: &mut DbConnection,
    user_id: &str,
    keep: Option<&str>,
    now: NaiveDateTime,
    reason: &str,
) -> QueryResult<usize> {
    conn.transaction(|conn| {
        // Flip first: the flip reads which sessions are still unrevoked.
        status_lists::invalidate_user_sessions(conn, user_id, keep, false)?;
        let live = sessions::table.filter(sessions::user_id.eq(user_id)).filter(sessions::revoked_at.is_null());
        let update = (sessions::revoked_at.eq(now), sessions::revoked_reason.eq(reason));
        match keep {
            Some(keep) => diesel::update(live.filter(sessions::id.ne(keep))).set(update).execute(conn),
            None => diesel::update(live).set(update).execute(conn),
        }
    })
}

/// Sessions that can still refresh: not revoked, before their absolute end,
/// and holding an unused, unexpired refresh token. Newest first.
pub fn live_sessions(conn: &mut DbConnection, user_id: &str, now: NaiveDateTime) -> QueryResult<Vec<Session>> {
    // Correlated, so each session probes its own tokens (index on session_id)
    // instead of listing every live refresh token of every user.
    let with_live_token = diesel::dsl::exists(
        refresh_tokens::table
            .filter(refresh_tokens::session_id.eq(sessions::id))
            .filter(refresh_tokens::used_at.is_null())
            .filter(refresh_tokens::expires_at.gt(now)),
    );
    sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(now))
        .filter(with_live_token)
        .order((sessions::created_at.desc(), sessions::id.asc()))
        .select(Session::as_select())
        .load(conn)
}
