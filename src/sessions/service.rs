//! Starting sessions at login and rotating refresh tokens, on plain
//! arguments (a connection, the settings, a signing key, "now").

use chrono::{DateTime, NaiveDateTime, TimeDelta};
use diesel::{Connection, QueryResult};
use uuid::Uuid;

use super::model::{self, NewRefreshToken, OneCallRotation, RefreshToken, RotationRequest, Session};
use crate::accounts::model::{self as users, User};
use crate::audit::{self, Actor, Event, EventType};
use crate::config::{RevocationSettings, TokenSettings};
use crate::db::DbConnection;
use crate::error::ApiError;
use crate::keys::ring::SigningKey;
use crate::status_lists::{model as status, StatusRef};
use crate::tokens::{mint_pair, Minted, RefreshClaims, RefreshSpec, Subject};

/// Longest user agent kept with a session.
const MAX_USER_AGENT: usize = 256;

/// Who is logging in from where, as shown in the session list.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub user_agent: Option<String>,
    pub ip: Option<String>,
}

/// Starts a session for a user whose password was just proven and signs its
/// first token pair, all in one transaction, with its `login.succeeded`
/// event (one more INSERT in the transaction the login needs anyway).
pub fn start_session(
    conn: &mut DbConnection,
    settings: &TokenSettings,
    revocation: &RevocationSettings,
    key: &SigningKey,
    user: &User,
    client: ClientInfo,
    now: NaiveDateTime,
) -> Result<Minted, ApiError> {
    let actor = Actor::user(&user.id, client.ip.clone());
    let session = Session {
        id: Uuid::new_v4().to_string(),
        user_id: user.id.clone(),
        created_at: now,
        last_used_at: now,
        expires_at: now + TimeDelta::seconds(settings.session_max_secs),
        user_agent: client.user_agent.map(|ua| ua.chars().take(MAX_USER_AGENT).collect()),
        ip: client.ip,
        revoked_at: None,
        revoked_reason: None,
    };
    audit::transaction(conn, |conn| {
        model::insert_session(conn, &session)?;
        let status = session_status(conn, revocation, &session, None, now)?;
        let spec = refresh_spec(settings, &session, now);
        let minted = issue_in_session(conn, settings, key, user, &session, status, spec, now)?;
        let event =
            Event::new(EventType::LoginSucceeded, &actor, now).subject(&user.id).detail("session_id", &session.id);
        audit::record(conn, event)?;
        Ok(minted)
    })
}

fn subject<'a>(user: &'a User, session: &'a Session, status: Option<StatusRef>) -> Subject<'a> {
    Subject {
        user_id: &user.id,
        username: &user.username,
        roles: user.role_list(),
        session_id: &session.id,
        status,
        // Every session starts at a password login; refreshes keep that.
        amr: &[signet_verify::AMR_PASSWORD],
    }
}

/// The session's status list index: `current` while nothing changed; a new
/// one when it has none (a new session, or after a role change detached it).
/// None when revocation is off. Call inside the transaction that mints.
fn session_status(
    conn: &mut DbConnection,
    revocation: &RevocationSettings,
    session: &Session,
    current: Option<StatusRef>,
    now: NaiveDateTime,
) -> Result<Option<StatusRef>, ApiError> {
    if !revocation.enabled {
        return Ok(None);
    }
    if current.is_some() {
        return Ok(current);
    }
    let entry = status::allocate(conn, revocation.list_size, session.expires_at, now)?;
    status::set_session_index(conn, &session.id, Some(entry))?;
    Ok(Some(entry))
}

/// The next refresh token of `session`: a new `jti`, and an expiry that
/// never outlives the session.
fn refresh_spec(settings: &TokenSettings, session: &Session, now: NaiveDateTime) -> RefreshSpec {
    let now_unix = now.and_utc().timestamp();
    RefreshSpec::new(now_unix, refresh_expiry(settings, session, now_unix))
}

/// When a refresh token issued at `now_unix` in `session` expires (Unix seconds).
fn refresh_expiry(settings: &TokenSettings, session: &Session, now_unix: i64) -> i64 {
    (now_unix + settings.refresh_ttl_secs).min(session.expires_at.and_utc().timestamp())
}

/// Signs a pair in `session` with refresh token `spec` and records it.
#[allow(clippy::too_many_arguments)]
fn issue_in_session(
    conn: &mut DbConnection,
    settings: &TokenSettings,
    key: &SigningKey,
    user: &User,
    session: &Session,
    status: Option<StatusRef>,
    spec: RefreshSpec,
    now: NaiveDateTime,
) -> Result<Minted, ApiError> {
    let now_unix = now.and_utc().timestamp();
    let refresh_expires_at = spec.expires_at;
    let minted =
        mint_pair(settings, key, subject(user, session, status), now_unix, spec).map_err(ApiError::internal)?;
    model::insert_refresh_token(
        conn,
        &NewRefreshToken {
            jti: &minted.refresh_jti,
            session_id: &session.id,
            user_id: &user.id,
            issued_at: now,
            expires_at: unix_to_db(refresh_expires_at),
        },
    )?;
    Ok(minted)
}

/// A successful rotation: the new pair, and whether it was the grace-window
/// answer to an honest race rather than a fresh rotation.
pub struct Rotated {
    pub minted: Minted,
    pub within_grace: bool,
}

/// Why a rotation's transaction rolled back.
enum Unclaimed {
    /// The token is not this session's live, unused token (or the session is
    /// not live): the caller looks at why (grace, reuse, or plainly invalid).
    NotClaimed,
    Failed(ApiError),
}

impl From<diesel::result::Error> for Unclaimed {
    fn from(err: diesel::result::Error) -> Self {
        Unclaimed::Failed(err.into())
    }
}

impl From<ApiError> for Unclaimed {
    fn from(err: ApiError) -> Self {
        Unclaimed::Failed(err)
    }
}

/// Exchanges a verified refresh token for a new pair. The conditional update
/// in `claim_refresh_token` picks exactly one winner among concurrent
/// refreshes; a token that was already rotated revokes its whole session.
/// The new access token carries the user's current roles; a disabled or
/// deleted user cannot refresh. A reuse is recorded (`refresh.reused`, from
/// `client`'s IP) with the revocation it causes. On PostgreSQL the common
/// case is one call of `signet_rotate_refresh` first, unless `one_call_first`
/// says that call already declined this token (in a batch).
#[allow(clippy::too_many_arguments)]
pub fn rotate(
    conn: &mut DbConnection,
    settings: &TokenSettings,
    revocation: &RevocationSettings,
    key: &SigningKey,
    claims: &RefreshClaims,
    client: &Actor,
    now: NaiveDateTime,
    one_call_first: OneCall,
) -> Result<Rotated, ApiError> {
    if let (DbConnection::Postgres(pg), OneCall::Try) = (&mut *conn, one_call_first) {
        if let Some(minted) = rotate_in_one_statement(pg, settings, revocation, key, claims, now)? {
            return Ok(Rotated { minted, within_grace: false });
        }
    }
    // The general path (PostgreSQL's fallback, SQLite's only one). Locks are
    // taken in the order every revocation takes them (user, session, tokens),
    // so a logout or disable in flight is waited for and none deadlock.
    let rotated = conn.transaction(|conn| -> Result<Minted, Unclaimed> {
        // PostgreSQL: user shared, session exclusive. SQLite takes no row
        // locks: the writer's batch holds the one write lock.
        model::lock_for_rotation(conn, &claims.sub, &claims.sid)?;
        let (session, index, user) = model::find_session_with_user(conn, &claims.sid)?.ok_or(Unclaimed::NotClaimed)?;
        if session.user_id != claims.sub || session.revoked_at.is_some() || session.expires_at <= now {
            return Err(Unclaimed::NotClaimed);
        }
        if user.disabled {
            return Err(ApiError::InvalidRefreshToken.into());
        }
        let spec = refresh_spec(settings, &session, now);
        if model::claim_refresh_token(conn, &claims.jti, &session.id, &claims.sub, &spec.jti, now)? == 0 {
            return Err(Unclaimed::NotClaimed);
        }
        if model::touch_is_due(session.last_used_at, now) {
            model::touch_session(conn, &session.id, now)?;
        }
        let status = session_status(conn, revocation, &session, index, now)?;
        Ok(issue_in_session(conn, settings, key, &user, &session, status, spec, now)?)
    });
    match rotated {
        Ok(minted) => return Ok(Rotated { minted, within_grace: false }),
        Err(Unclaimed::Failed(err)) => return Err(err),
        Err(Unclaimed::NotClaimed) => {}
    }

    // Not claimed: unknown, expired, revoked, or already used.
    let token = model::find_refresh_token(conn, &claims.jti)?.ok_or(ApiError::InvalidRefreshToken)?;
    if let Some(minted) = successor_within_grace(conn, settings, revocation, key, &token, now)? {
        return Ok(Rotated { minted, within_grace: true });
    }
    if token.used_at.is_some() {
        let revoked = audit::transaction(conn, |conn| {
            let revoked = model::revoke_session(conn, &token.session_id, now, "refresh_token_reused")?;
            if revoked == 1 {
                // The presenter is not known to be the user: no actor.
                let event = Event::new(EventType::RefreshReused, client, now)
                    .subject(&token.user_id)
                    .detail("session_id", &token.session_id);
                audit::record(conn, event)?;
            }
            Ok::<_, diesel::result::Error>(revoked)
        })?;
        if revoked == 1 {
            log::warn!("refresh token reuse detected: session {} of user {} revoked", token.session_id, token.user_id);
            return Err(ApiError::RefreshTokenReused);
        }
    }
    Err(ApiError::InvalidRefreshToken)
}

/// Whether [`rotate`] tries PostgreSQL's one-call rotation before the
/// rotation transaction.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum OneCall {
    Try,
    /// It was tried (in a batch) and declined the token.
    Declined,
}

/// PostgreSQL's common case in one round trip ([`model::rotate_in_one_statement`]);
/// None sends the caller to the rotation transaction (a token that cannot be
/// claimed, a disabled user, a session without its status list index...).
fn rotate_in_one_statement(
    pg: &mut diesel::PgConnection,
    settings: &TokenSettings,
    revocation: &RevocationSettings,
    key: &SigningKey,
    claims: &RefreshClaims,
    now: NaiveDateTime,
) -> Result<Option<Minted>, ApiError> {
    let request = one_call_request(settings, claims, now);
    let rotated = model::rotate_in_one_statement(
        pg,
        &request.user_id,
        &request.session_id,
        &request.jti,
        &request.successor,
        request.successor_expires_at,
        revocation.enabled,
        now,
    )?;
    rotated.map(|rotated| mint_rotated(settings, revocation, key, request.successor, now, rotated)).transpose()
}

/// What PostgreSQL's one-call rotation of `claims` is asked (alone or in a
/// batch): the successor's id and its latest expiry are decided here.
pub fn one_call_request(settings: &TokenSettings, claims: &RefreshClaims, now: NaiveDateTime) -> RotationRequest {
    let now_unix = now.and_utc().timestamp();
    RotationRequest {
        user_id: claims.sub.clone(),
        session_id: claims.sid.clone(),
        jti: claims.jti.clone(),
        successor: crate::tokens::new_refresh_jti(),
        successor_expires_at: unix_to_db(now_unix + settings.refresh_ttl_secs),
        now,
    }
}

/// Signs the pair of a one-call rotation (`successor` minted at `now`), after it committed:
/// signing with a loaded key does not fail, and if it did the client would
/// log in again.
pub fn mint_rotated(
    settings: &TokenSettings,
    revocation: &RevocationSettings,
    key: &SigningKey,
    successor: String,
    now: NaiveDateTime,
    (user, session, index): OneCallRotation,
) -> Result<Minted, ApiError> {
    let now_unix = now.and_utc().timestamp();
    let status = if revocation.enabled { index } else { None };
    let spec =
        RefreshSpec { jti: successor, issued_at: now_unix, expires_at: refresh_expiry(settings, &session, now_unix) };
    mint_pair(settings, key, subject(&user, &session, status), now_unix, spec).map_err(ApiError::internal)
}

/// Two tabs refreshing with the same token at once: within the grace window
/// the loser gets the winner's successor again (same `jti`, `sid` and expiry,
/// freshly signed, with a new access token), so both stay on one chain. Only
/// while that successor is itself unused and the session is live.
fn successor_within_grace(
    conn: &mut DbConnection,
    settings: &TokenSettings,
    revocation: &RevocationSettings,
    key: &SigningKey,
    token: &RefreshToken,
    now: NaiveDateTime,
) -> Result<Option<Minted>, ApiError> {
    let (Some(used_at), Some(successor_jti)) = (token.used_at, token.replaced_by.as_deref()) else {
        return Ok(None);
    };
    if settings.refresh_reuse_grace_secs <= 0 || now - used_at > TimeDelta::seconds(settings.refresh_reuse_grace_secs) {
        return Ok(None);
    }
    // Checked and minted under the same locks as a rotation, so a logout or
    // disable in flight is seen.
    let checked = conn.transaction(|conn| -> Result<_, ApiError> {
        model::lock_for_rotation(conn, &token.user_id, &token.session_id)?;
        let Some(successor) = model::find_refresh_token(conn, successor_jti)? else {
            return Ok(None);
        };
        let Some(session) = model::find_session(conn, &token.session_id)? else {
            return Ok(None);
        };
        if successor.used_at.is_some()
            || successor.expires_at <= now
            || session.revoked_at.is_some()
            || session.expires_at <= now
        {
            return Ok(None);
        }
        let Some(user) = users::find(conn, &token.user_id)?.filter(|u| !u.disabled) else {
            return Ok(None);
        };
        // A role change between the two refreshes detached the index: take a new one.
        let current = status::session_index(conn, &session.id)?;
        let status = session_status(conn, revocation, &session, current, now)?;
        Ok(Some((successor, session, user, status)))
    })?;
    let Some((successor, session, user, status)) = checked else {
        return Ok(None);
    };
    let spec = RefreshSpec {
        jti: successor.jti.clone(),
        issued_at: successor.issued_at.and_utc().timestamp(),
        expires_at: successor.expires_at.and_utc().timestamp(),
    };
    let minted = mint_pair(settings, key, subject(&user, &session, status), now.and_utc().timestamp(), spec)
        .map_err(ApiError::internal)?;
    Ok(Some(minted))
}

/// Revokes the session a refresh token belongs to (logout), recording
/// `session.revoked` by its user from `client`'s IP. Idempotent: a session
/// already revoked records nothing.
pub fn end_session(
    conn: &mut DbConnection,
    claims: &RefreshClaims,
    client: &Actor,
    now: NaiveDateTime,
) -> Result<(), ApiError> {
    let token = model::find_refresh_token(conn, &claims.jti)?.ok_or(ApiError::InvalidRefreshToken)?;
    if token.session_id != claims.sid {
        return Err(ApiError::InvalidRefreshToken);
    }
    let actor = Actor::user(&token.user_id, client.ip.clone());
    revoke_recorded(conn, &actor, &token.user_id, &token.session_id, "logout", now)
}

/// Revokes one session and records `session.revoked` if it was live.
fn revoke_recorded(
    conn: &mut DbConnection,
    actor: &Actor,
    user_id: &str,
    session_id: &str,
    reason: &'static str,
    now: NaiveDateTime,
) -> Result<(), ApiError> {
    audit::transaction(conn, |conn| {
        if model::revoke_session(conn, session_id, now, reason)? == 1 {
            let event = Event::new(EventType::SessionRevoked, actor, now)
                .subject(user_id)
                .detail("reason", reason)
                .detail("session_id", session_id);
            audit::record(conn, event)?;
        }
        Ok(())
    })
}

fn unix_to_db(secs: i64) -> NaiveDateTime {
    DateTime::from_timestamp(secs, 0).unwrap_or_default().naive_utc()
}

/// A live session as the session list shows it.
#[derive(Debug, serde::Serialize)]
pub struct SessionView {
    pub id: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub last_used_at: chrono::DateTime<chrono::Utc>,
    pub expires_at: chrono::DateTime<chrono::Utc>,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub current: bool,
}

/// The user's live sessions, newest first; `current_sid` is marked.
pub fn list_sessions(
    conn: &mut DbConnection,
    user_id: &str,
    current_sid: &str,
    now: NaiveDateTime,
) -> Result<Vec<SessionView>, ApiError> {
    Ok(model::live_sessions(conn, user_id, now)?
        .into_iter()
        .map(|s| SessionView {
            current: s.id == current_sid,
            id: s.id,
            created_at: s.created_at.and_utc(),
            last_used_at: s.last_used_at.and_utc(),
            expires_at: s.expires_at.and_utc(),
            user_agent: s.user_agent,
            ip: s.ip,
        })
        .collect())
}

/// Revokes one of the caller's own sessions (`actor.user_id`). Another
/// user's session, or an unknown id, is 404: ids of others are not confirmed.
pub fn revoke_own_session(
    conn: &mut DbConnection,
    actor: &Actor,
    id: &str,
    now: NaiveDateTime,
) -> Result<(), ApiError> {
    let user_id = actor.user_id.as_deref().ok_or(ApiError::NotFound)?;
    let session = model::find_session(conn, id)?.filter(|s| s.user_id == user_id).ok_or(ApiError::NotFound)?;
    revoke_recorded(conn, actor, user_id, &session.id, "deleted_by_user", now)
}

/// Whether a verified refresh token is still the head of a live session
/// (unused, unexpired, session not revoked or past its end).
pub fn refresh_token_is_current(
    conn: &mut DbConnection,
    claims: &RefreshClaims,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let Some(token) = model::find_refresh_token(conn, &claims.jti)? else {
        return Ok(false);
    };
    let Some(session) = model::find_session(conn, &token.session_id)? else {
        return Ok(false);
    };
    Ok(token.used_at.is_none()
        && token.expires_at > now
        && token.session_id == claims.sid
        && session.revoked_at.is_none()
        && session.expires_at > now)
}

/// Revokes every session of the caller (`actor.user_id`), this one too
/// (`logout-all`): one `session.revoked` event with the count.
pub fn end_all_sessions(conn: &mut DbConnection, actor: &Actor, now: NaiveDateTime) -> Result<usize, ApiError> {
    let user_id = actor.user_id.as_deref().ok_or(ApiError::NotFound)?;
    audit::transaction(conn, |conn| {
        let revoked = model::revoke_user_sessions(conn, user_id, None, now, "logout_all")?;
        if revoked > 0 {
            let event = Event::new(EventType::SessionRevoked, actor, now)
                .subject(user_id)
                .detail("reason", "logout_all")
                .detail("sessions", revoked);
            audit::record(conn, event)?;
        }
        Ok(revoked)
    })
}

/// Who a still-honoured access token speaks for.
pub enum AccessHolder {
    /// A login session's user, as stored now (read in the same query).
    User(Box<User>),
    /// An API token's exchanged token, or a client's.
    Other,
}

/// Whether an access token of session `sid` carrying `status` may still be
/// honoured: see [`access_holder`].
pub fn is_access_live(
    conn: &mut DbConnection,
    sid: &str,
    status: Option<StatusRef>,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    Ok(access_holder(conn, sid, status, now)?.is_some())
}

/// The holder of an access token of session `sid` carrying `status`, or None
/// when signet's own routes must refuse it: its session (or API token, for
/// `api-token:<id>`, or client, for `client:<client_id>:..`) is live and still
/// holds that very index (a role change or revocation moved or flipped it),
/// and a session's user is not disabled. A login session is one read of its
/// primary key joined to its user, so a revocation on any instance is refused
/// at once and the caller gets the user's current state with it.
pub fn access_holder(
    conn: &mut DbConnection,
    sid: &str,
    status: Option<StatusRef>,
    now: NaiveDateTime,
) -> QueryResult<Option<AccessHolder>> {
    if let Some(token_id) = sid.strip_prefix(crate::api_tokens::EXCHANGE_SID_PREFIX) {
        let Some(token) = crate::api_tokens::model::find(conn, token_id)? else {
            return Ok(None);
        };
        let live = token.revoked_at.is_none() && token.expires_at.is_none_or(|at| at > now);
        let holds = live && (status.is_none() || status::api_token_index(conn, token_id)? == status);
        return Ok(holds.then_some(AccessHolder::Other));
    }
    if let Some(client_id) = crate::clients::client_of_session(sid) {
        // A client-credentials token: its client's current session.
        let Some(client) = crate::clients::model::find(conn, client_id)? else {
            return Ok(None);
        };
        let live = !client.disabled && client.live_session(now).is_some_and(|s| s.id == sid);
        let index = client.status_list.zip(client.status_idx).map(|(list, idx)| StatusRef { list, idx });
        return Ok((live && (status.is_none() || index == status)).then_some(AccessHolder::Other));
    }
    let found = model::find_session_with_user(conn, sid)?;
    Ok(found.and_then(|(session, index, user)| session_holder(session, index, user, status, now)))
}

/// Whether a user's session `sid` is the kind of session id read by
/// [`session_holder`] (not an API token's or an OAuth client's).
pub fn is_user_session(sid: &str) -> bool {
    !sid.starts_with(crate::api_tokens::EXCHANGE_SID_PREFIX) && crate::clients::client_of_session(sid).is_none()
}

/// The user holding an access token of a user's session, if the session (as
/// read, with its status list `index`) still stands at `now` for a token
/// carrying `status`.
pub fn session_holder(
    session: Session,
    index: Option<StatusRef>,
    user: User,
    status: Option<StatusRef>,
    now: NaiveDateTime,
) -> Option<AccessHolder> {
    let live = session.revoked_at.is_none() && session.expires_at > now && !user.disabled;
    (live && (status.is_none() || index == status)).then(|| AccessHolder::User(Box::new(user)))
}
