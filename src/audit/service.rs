//! Recording events (in the transaction of the change, logged after its
//! commit) and reading them back a page at a time.

use std::cell::RefCell;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::connection::{Connection, TransactionManager};
use diesel::QueryResult;
use serde::Serialize;
use serde_json::{Map, Value};

use super::model::{self, AuditRow, Filter, NewAuditRow};
use crate::db::DbConnection;
use crate::error::ApiError;

/// The log target of the one line every event also gets.
pub const LOG_TARGET: &str = "signet::audit";

/// What happened. The names are part of the API (`type` of an event, the
/// `type=` filter); [`EventType::ALL`] lists every one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// A password login started a session (or, for `/api-token-auth/`, made an API token).
    LoginSucceeded,
    /// A password check failed: unknown user, wrong password, disabled account.
    LoginFailed,
    /// Too many failures: the username is locked out for a while.
    LoginLocked,
    /// An already rotated refresh token came back; its session was revoked.
    RefreshReused,
    /// Sessions ended on request: logout, logout-all, `DELETE /v1/auth/sessions/{id}`.
    SessionRevoked,
    PasswordChanged,
    UserCreated,
    UserDisabled,
    UserEnabled,
    UserDeleted,
    UserRolesChanged,
    ApiTokenCreated,
    ApiTokenRevoked,
    /// OAuth clients (recorded by the OAuth domain).
    ClientCreated,
    ClientDeleted,
    /// A new signing key signs from now on (the previous one, if any, retired).
    KeyRotated,
    /// A key was taken out of service: revoked (compromise) or retired for HS256.
    KeyRetired,
}

impl EventType {
    pub const ALL: &'static [EventType] = &[
        EventType::LoginSucceeded,
        EventType::LoginFailed,
        EventType::LoginLocked,
        EventType::RefreshReused,
        EventType::SessionRevoked,
        EventType::PasswordChanged,
        EventType::UserCreated,
        EventType::UserDisabled,
        EventType::UserEnabled,
        EventType::UserDeleted,
        EventType::UserRolesChanged,
        EventType::ApiTokenCreated,
        EventType::ApiTokenRevoked,
        EventType::ClientCreated,
        EventType::ClientDeleted,
        EventType::KeyRotated,
        EventType::KeyRetired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::LoginSucceeded => "login.succeeded",
            EventType::LoginFailed => "login.failed",
            EventType::LoginLocked => "login.locked",
            EventType::RefreshReused => "refresh.reused",
            EventType::SessionRevoked => "session.revoked",
            EventType::PasswordChanged => "password.changed",
            EventType::UserCreated => "user.created",
            EventType::UserDisabled => "user.disabled",
            EventType::UserEnabled => "user.enabled",
            EventType::UserDeleted => "user.deleted",
            EventType::UserRolesChanged => "user.roles_changed",
            EventType::ApiTokenCreated => "api_token.created",
            EventType::ApiTokenRevoked => "api_token.revoked",
            EventType::ClientCreated => "client.created",
            EventType::ClientDeleted => "client.deleted",
            EventType::KeyRotated => "key.rotated",
            EventType::KeyRetired => "key.retired",
        }
    }

    pub fn parse(name: &str) -> Option<EventType> {
        EventType::ALL.iter().copied().find(|t| t.as_str() == name)
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who makes a change and from where, as the face knows it: the caller's
/// user id (None: not logged in, or the system itself) and client IP.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Actor {
    pub user_id: Option<String>,
    pub ip: Option<String>,
}

impl Actor {
    pub fn user(user_id: impl Into<String>, ip: Option<String>) -> Actor {
        Actor { user_id: Some(user_id.into()), ip }
    }

    /// Someone not (yet) authenticated: a login, a registration, a refresh.
    pub fn anonymous(ip: Option<String>) -> Actor {
        Actor { user_id: None, ip }
    }

    /// signet itself (key rotation) or its command line.
    pub fn system() -> Actor {
        Actor::default()
    }
}

/// One event, built by the domain that records it. `detail` takes only keys
/// chosen in the code (`&'static str`) and values the caller picked: ids,
/// names, counts, reasons; never a secret.
#[derive(Debug, Clone)]
pub struct Event {
    pub kind: EventType,
    pub at: NaiveDateTime,
    pub actor_id: Option<String>,
    pub subject_id: Option<String>,
    pub ip: Option<String>,
    pub detail: Map<String, Value>,
}

impl Event {
    pub fn new(kind: EventType, actor: &Actor, at: NaiveDateTime) -> Event {
        Event { kind, at, actor_id: actor.user_id.clone(), subject_id: None, ip: actor.ip.clone(), detail: Map::new() }
    }

    /// The user (or key, for key events: see `detail`) the change is about.
    pub fn subject(mut self, id: impl Into<String>) -> Event {
        self.subject_id = Some(id.into());
        self
    }

    pub fn detail(mut self, key: &'static str, value: impl Serialize) -> Event {
        let value = serde_json::to_value(value).unwrap_or(Value::Null);
        self.detail.insert(key.to_owned(), value);
        self
    }

    fn log_line(&self) -> String {
        let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        format!(
            "{} actor={} subject={} ip={} detail={}",
            self.kind,
            or_dash(&self.actor_id),
            or_dash(&self.subject_id),
            or_dash(&self.ip),
            Value::Object(self.detail.clone())
        )
    }
}

/// The events recorded in the audited transactions open on this thread, to
/// be logged when the outermost one commits. A diesel connection is used by
/// one thread at a time and a transaction never leaves its thread, so a
/// thread-local is exactly "this connection's open transaction".
struct Pending {
    events: Vec<Event>,
    /// Transaction depth of the innermost audited transaction.
    depth: u32,
}

thread_local! {
    static PENDING: RefCell<Option<Pending>> = const { RefCell::new(None) };
}

fn depth(conn: &mut DbConnection) -> u32 {
    <DbConnection as Connection>::TransactionManager::transaction_manager_status_mut(conn)
        .transaction_depth()
        .ok()
        .flatten()
        .map_or(0, |d| d.get())
}

/// `conn.transaction(change)`, whose recorded events are logged once it
/// commits (at the commit of the outermost one, when nested) and dropped with
/// it when it rolls back. Call [`record`] directly inside `change`, not in a
/// plain transaction nested in it (a savepoint that could roll back alone).
pub fn transaction<T, E, F>(conn: &mut DbConnection, change: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    let mut scope = Scope::enter(depth(conn) + 1);
    let result = conn.transaction(change);
    scope.committed = result.is_ok();
    drop(scope);
    result
}

/// An audited SQLite `BEGIN IMMEDIATE` transaction (the write lock taken
/// first, so no statement in it can fail to upgrade to it) around `batch`,
/// whose own transactions become savepoints: a batch of independent writes
/// that commit together when `batch` returns true, and roll back otherwise.
/// Events recorded in it are logged once it commits. Ok(true): committed.
/// On PostgreSQL, which takes no batches, nothing runs: Ok(false).
pub fn sqlite_batch(conn: &mut DbConnection, batch: impl FnOnce(&mut DbConnection) -> bool) -> QueryResult<bool> {
    use diesel::connection::AnsiTransactionManager;
    let DbConnection::Sqlite(sqlite) = conn else {
        return Ok(false);
    };
    let mut scope = Scope::enter(1);
    AnsiTransactionManager::begin_transaction_sql(sqlite, "BEGIN IMMEDIATE")?;
    let settled = if batch(conn) {
        let committed = <DbConnection as Connection>::TransactionManager::commit_transaction(conn);
        if committed.is_err() {
            let _ = <DbConnection as Connection>::TransactionManager::rollback_transaction(conn);
        }
        committed.map(|()| true)
    } else {
        <DbConnection as Connection>::TransactionManager::rollback_transaction(conn).map(|()| false)
    };
    scope.committed = matches!(settled, Ok(true));
    drop(scope);
    settled
}

/// One audited transaction on the thread's stack; its drop (also on a panic)
/// logs or discards what it recorded.
struct Scope {
    outermost: bool,
    /// Events recorded before this scope opened.
    mark: usize,
    outer_depth: u32,
    committed: bool,
}

impl Scope {
    fn enter(depth: u32) -> Scope {
        PENDING.with(|pending| {
            let mut pending = pending.borrow_mut();
            match pending.as_mut() {
                Some(open) => {
                    let scope =
                        Scope { outermost: false, mark: open.events.len(), outer_depth: open.depth, committed: false };
                    open.depth = depth;
                    scope
                }
                None => {
                    *pending = Some(Pending { events: Vec::new(), depth });
                    Scope { outermost: true, mark: 0, outer_depth: 0, committed: false }
                }
            }
        })
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        let committed = PENDING.with(|pending| {
            let mut pending = pending.borrow_mut();
            let open = pending.as_mut()?;
            if !self.committed {
                open.events.truncate(self.mark);
            }
            open.depth = self.outer_depth;
            if self.outermost {
                pending.take().filter(|_| self.committed).map(|p| p.events)
            } else {
                None
            }
        });
        for event in committed.unwrap_or_default() {
            log_event(&event);
        }
    }
}

fn log_event(event: &Event) {
    log::info!(target: LOG_TARGET, "{}", event.log_line());
}

/// Writes `event` with the connection of the change it records: inside an
/// audited [`transaction`] (logged after its commit), or on its own when the
/// event is the whole change (a failed login; logged at once).
pub fn record(conn: &mut DbConnection, event: Event) -> QueryResult<()> {
    let detail = Value::Object(event.detail.clone()).to_string();
    model::insert(
        conn,
        &NewAuditRow {
            at: event.at,
            kind: event.kind.as_str(),
            actor_id: event.actor_id.as_deref(),
            subject_id: event.subject_id.as_deref(),
            ip: event.ip.as_deref(),
            detail: &detail,
        },
    )?;
    let depth = depth(conn);
    let unlogged = PENDING.with(|pending| match pending.borrow_mut().as_mut() {
        Some(open) => {
            debug_assert_eq!(depth, open.depth, "audit::record in a transaction nested in the audited one");
            open.events.push(event);
            None
        }
        None => {
            debug_assert_eq!(depth, 0, "audit::record in a transaction not opened by audit::transaction");
            Some(event)
        }
    });
    if let Some(event) = unlogged {
        log_event(&event);
    }
    Ok(())
}

/// A checked `GET /v1/admin/audit` query.
#[derive(Debug, Clone)]
pub struct Query {
    kind: Option<EventType>,
    user_id: Option<String>,
    before: Option<i64>,
    limit: i64,
}

impl Query {
    pub const DEFAULT_LIMIT: i64 = 50;
    pub const MAX_LIMIT: i64 = 200;

    /// From the raw query values. A type that is not one of
    /// [`EventType::ALL`], a user id that is not a hyphenated UUID, a limit
    /// outside 1..=200 or a `before` that is not a cursor of ours (an empty
    /// value included): 400 `malformed_request`.
    pub fn parse(
        kind: Option<&str>,
        user_id: Option<&str>,
        limit: Option<&str>,
        before: Option<&str>,
    ) -> Result<Query, ApiError> {
        let bad = |why: String| Err(ApiError::MalformedRequest(why));
        let kind = match kind {
            None => None,
            Some(name) => match EventType::parse(name) {
                Some(kind) => Some(kind),
                None => return bad(format!("type must be one of {}", type_names())),
            },
        };
        let user_id = match user_id {
            None => None,
            // Only the hyphenated form user ids have (uuid also reads others).
            Some(id) => match uuid::Uuid::parse_str(id).ok().filter(|_| id.len() == 36) {
                Some(id) => Some(id.to_string()),
                None => return bad("user_id must be a user's id (a UUID)".into()),
            },
        };
        let limit = match limit {
            None => Self::DEFAULT_LIMIT,
            Some(limit) => match limit.parse::<i64>() {
                Ok(n) if (1..=Self::MAX_LIMIT).contains(&n) => n,
                _ => return bad(format!("limit must be a whole number from 1 to {}", Self::MAX_LIMIT)),
            },
        };
        let before = match before {
            None => None,
            Some(cursor) => match decode_cursor(cursor) {
                Some(id) => Some(id),
                None => return bad("before must be the `next` of a previous page".into()),
            },
        };
        Ok(Query { kind, user_id, before, limit })
    }
}

fn type_names() -> String {
    EventType::ALL.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", ")
}

const CURSOR_PREFIX: &str = "audit:";

/// Opaque to clients: base64url of `audit:<id>`, the last id of a page.
fn encode_cursor(id: i64) -> String {
    B64.encode(format!("{CURSOR_PREFIX}{id}"))
}

fn decode_cursor(cursor: &str) -> Option<i64> {
    let bytes = B64.decode(cursor).ok()?;
    let text = std::str::from_utf8(&bytes).ok()?;
    let digits = text.strip_prefix(CURSOR_PREFIX)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<i64>().ok().filter(|id| *id > 0)
}

/// An event as the admin API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct EventView {
    pub id: i64,
    pub at: DateTime<Utc>,
    #[serde(rename = "type")]
    pub kind: String,
    pub actor_id: Option<String>,
    pub subject_id: Option<String>,
    pub ip: Option<String>,
    pub detail: Value,
}

impl EventView {
    fn of(row: AuditRow) -> EventView {
        let detail = serde_json::from_str::<Value>(&row.detail).ok().filter(Value::is_object).unwrap_or_else(|| {
            log::warn!("audit event {} has an unreadable detail; shown empty", row.id);
            Value::Object(Map::new())
        });
        EventView {
            id: row.id,
            at: row.at.and_utc(),
            kind: row.kind,
            actor_id: row.actor_id,
            subject_id: row.subject_id,
            ip: row.ip,
            detail,
        }
    }
}

/// One page, newest first, and the cursor of the next (None on the last).
#[derive(Debug, Clone, Serialize)]
pub struct Page {
    pub events: Vec<EventView>,
    pub next: Option<String>,
}

/// The page `query` asks for. One row more than the limit is read to tell
/// whether another page follows, so the last page says `next: null`.
pub fn list(conn: &mut DbConnection, query: &Query) -> Result<Page, ApiError> {
    let filter = Filter {
        kind: query.kind.map(EventType::as_str),
        user_id: query.user_id.as_deref(),
        before: query.before,
        limit: query.limit + 1,
    };
    let mut rows = model::page(conn, &filter)?;
    let more = rows.len() as i64 > query.limit;
    rows.truncate(query.limit as usize);
    let next = if more { rows.last().map(|row| encode_cursor(row.id)) } else { None };
    Ok(Page { events: rows.into_iter().map(EventView::of).collect(), next })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for kind in EventType::ALL {
            assert_eq!(EventType::parse(kind.as_str()), Some(*kind));
            assert!(seen.insert(kind.as_str()), "{kind} twice");
        }
        assert_eq!(EventType::parse("login"), None);
        assert_eq!(EventType::parse("LOGIN.SUCCEEDED"), None);
    }

    #[test]
    fn cursors_decode_only_what_they_encoded() {
        for id in [1, 42, i64::MAX] {
            assert_eq!(decode_cursor(&encode_cursor(id)), Some(id));
        }
        for bad in ["", "42", "audit:42", "!!!", &B64.encode("audit:"), &B64.encode("audit:-1"), &B64.encode("audit:0")]
        {
            assert_eq!(decode_cursor(bad), None, "{bad}");
        }
        assert_eq!(decode_cursor(&B64.encode("audit:99999999999999999999")), None);
        assert_eq!(decode_cursor(&B64.encode("audit:+5")), None);
    }

    #[test]
    fn queries_are_checked() {
        let user = "7C9E6679-7425-40DE-944B-E07FC1F90AE7";
        let ok = Query::parse(Some("user.created"), Some(user), Some("10"), None).expect("valid");
        assert_eq!(ok.kind, Some(EventType::UserCreated));
        assert_eq!(ok.user_id.as_deref(), Some("7c9e6679-7425-40de-944b-e07fc1f90ae7"));
        assert_eq!((ok.limit, ok.before), (10, None));
        assert_eq!(Query::parse(None, None, None, None).expect("defaults").limit, Query::DEFAULT_LIMIT);
        for (kind, user, limit, before) in [
            (Some("user.made"), None, None, None),
            (None, Some("not-a-uuid"), None, None),
            (None, Some("7c9e6679742540de944be07fc1f90ae7"), None, None),
            (Some(""), None, None, None),
            (None, Some(""), None, None),
            (None, None, Some(""), None),
            (None, None, None, Some("")),
            (None, None, Some("0"), None),
            (None, None, Some("201"), None),
            (None, None, Some("ten"), None),
            (None, None, None, Some("nonsense")),
        ] {
            let err = Query::parse(kind, user, limit, before).expect_err("refused");
            assert_eq!(err.code(), "malformed_request");
        }
    }

    #[test]
    fn the_log_line_names_everything_but_holds_only_the_detail_given() {
        let actor = Actor::user("u-1", Some("203.0.113.9".into()));
        let event = Event::new(EventType::UserDisabled, &actor, NaiveDateTime::default())
            .subject("u-2")
            .detail("sessions_revoked", 3);
        assert_eq!(
            event.log_line(),
            "user.disabled actor=u-1 subject=u-2 ip=203.0.113.9 detail={\"sessions_revoked\":3}"
        );
        let event = Event::new(EventType::KeyRotated, &Actor::system(), NaiveDateTime::default());
        assert_eq!(event.log_line(), "key.rotated actor=- subject=- ip=- detail={}");
    }
}
