//! Creating, authenticating and revoking API tokens.

use anyhow::anyhow;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use chrono::{DateTime, NaiveDateTime, TimeDelta};
use secrecy::SecretString;
use uuid::Uuid;

use super::model::{self, ApiToken};
use crate::accounts::model::{self as users, User};
use crate::audit::{self, Actor, Event, EventType};
use crate::config::{RevocationSettings, TokenSettings};
use crate::db::DbConnection;
use crate::error::{ApiError, FieldError};
use crate::keys::master::MasterKey;
use crate::keys::ring::SigningKey;
use crate::tokens::{mint_access, Subject};

/// A new token: its row and its secret, which is never stored and cannot be
/// shown again. `Debug` leaves the secret out, so it cannot reach a log.
pub struct CreatedApiToken {
    pub token: ApiToken,
    pub secret: SecretString,
}

impl std::fmt::Debug for CreatedApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedApiToken")
            .field("id", &self.token.id)
            .field("user_id", &self.token.user_id)
            .field("prefix", &self.token.prefix)
            .field("secret", &"[REDACTED]")
            .finish()
    }
}

/// A short-lived access JWT for an API token, as `POST /v1/auth/token-exchange`
/// answers it.
#[derive(Debug, serde::Serialize)]
pub struct ExchangedToken {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
}
use crate::status_lists::model as status_lists;

/// Recognisable by secret scanners (like GitHub's `ghp_`).
pub const TOKEN_PREFIX: &str = "sgt_";
const PREFIX_SHOWN: usize = 12;
const MAX_NAME: usize = 100;
const MAX_LIFETIME_DAYS: i64 = 3650;
/// Tokens are longer than this never: refused before hashing.
const MAX_TOKEN_LEN: usize = 128;

/// `sgt_` + 256 random bits.
fn new_secret() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| anyhow!("no randomness available"))?;
    Ok(format!("{TOKEN_PREFIX}{}", B64.encode(bytes)))
}

/// Checks a new token's name and lifetime.
pub fn check_request(name: &str, expires_in_days: Option<i64>) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    if name.trim().is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        errors.push(FieldError::new("name", format!("must be 1-{MAX_NAME} printable characters")));
    }
    if expires_in_days.is_some_and(|d| !(1..=MAX_LIFETIME_DAYS).contains(&d)) {
        errors.push(FieldError::new("expires_in_days", format!("must be between 1 and {MAX_LIFETIME_DAYS}")));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::ValidationFailed(errors))
    }
}

/// Creates a token for `user_id`, with its `api_token.created` event (id,
/// name and expiry; never the secret nor its prefix).
pub fn create(
    conn: &mut DbConnection,
    master: &MasterKey,
    actor: &Actor,
    user_id: &str,
    name: &str,
    expires_in_days: Option<i64>,
    now: NaiveDateTime,
) -> Result<CreatedApiToken, ApiError> {
    if users::find(conn, user_id)?.is_none() {
        return Err(ApiError::NotFound);
    }
    let secret = new_secret().map_err(ApiError::internal)?;
    let token = ApiToken {
        id: Uuid::new_v4().to_string(),
        user_id: user_id.to_owned(),
        name: name.trim().to_owned(),
        token_hash: master.api_token_hash(&secret),
        prefix: secret.chars().take(PREFIX_SHOWN).collect(),
        created_at: now,
        expires_at: expires_in_days.map(|d| now + TimeDelta::days(d)),
        last_used_at: None,
        revoked_at: None,
    };
    audit::transaction(conn, |conn| {
        model::insert(conn, &token)?;
        let event = Event::new(EventType::ApiTokenCreated, actor, now)
            .subject(user_id)
            .detail("token_id", &token.id)
            .detail("name", &token.name)
            .detail("expires_at", token.expires_at.map(|at| at.and_utc()));
        audit::record(conn, event)
    })?;
    Ok(CreatedApiToken { token, secret: secret.into() })
}

/// DRF's `obtain_auth_token`: a password login (`user` just proved it from
/// `actor`'s IP) that yields a new API token instead of a session; its
/// `login.succeeded` and `api_token.created` are one transaction.
pub fn create_at_login(
    conn: &mut DbConnection,
    master: &MasterKey,
    actor: &Actor,
    user: &User,
    name: &str,
    expires_in_days: Option<i64>,
    now: NaiveDateTime,
) -> Result<CreatedApiToken, ApiError> {
    audit::transaction(conn, |conn| {
        let created = create(conn, master, actor, &user.id, name, expires_in_days, now)?;
        let event = Event::new(EventType::LoginSucceeded, actor, now)
            .subject(&user.id)
            .detail("api_token_id", &created.token.id);
        audit::record(conn, event)?;
        Ok(created)
    })
}

/// The user behind a live token of a live account; None for anything else
/// (unknown, revoked, expired, disabled or deleted user).
pub fn authenticate(
    conn: &mut DbConnection,
    master: &MasterKey,
    secret: &str,
    now: NaiveDateTime,
) -> Result<Option<(User, ApiToken)>, ApiError> {
    if !secret.starts_with(TOKEN_PREFIX) || secret.len() > MAX_TOKEN_LEN {
        return Ok(None);
    }
    let Some(token) = model::find_by_hash(conn, &master.api_token_hash(secret))? else {
        return Ok(None);
    };
    if token.revoked_at.is_some() || token.expires_at.is_some_and(|at| at <= now) {
        return Ok(None);
    }
    let Some(user) = users::find(conn, &token.user_id)?.filter(|u| !u.disabled) else {
        return Ok(None);
    };
    // Skip the statement altogether while the last use is recent.
    let stale_before = now - chrono::TimeDelta::seconds(model::TOUCH_INTERVAL_SECS);
    if token.last_used_at.is_none_or(|at| at <= stale_before) {
        model::touch(conn, &token.id, now)?;
    }
    Ok(Some((user, token)))
}

/// Revokes token `id` of `user_id` (404 unless it is a live one of theirs),
/// with its `api_token.revoked` event.
pub fn revoke(
    conn: &mut DbConnection,
    actor: &Actor,
    user_id: &str,
    id: &str,
    now: NaiveDateTime,
) -> Result<(), ApiError> {
    audit::transaction(conn, |conn| {
        if model::revoke(conn, user_id, id, now)? == 0 {
            return Err(ApiError::NotFound);
        }
        let name = model::find(conn, id)?.map(|token| token.name);
        let event = Event::new(EventType::ApiTokenRevoked, actor, now)
            .subject(user_id)
            .detail("token_id", id)
            .detail("name", name);
        audit::record(conn, event)?;
        Ok(())
    })
}

/// The live tokens of an existing user (404 for an unknown one).
pub fn live_for_user(conn: &mut DbConnection, user_id: &str, now: NaiveDateTime) -> Result<Vec<ApiToken>, ApiError> {
    users::find(conn, user_id)?.ok_or(ApiError::NotFound)?;
    Ok(model::live_for_user(conn, user_id, now)?)
}

/// Exchanges API token `token_id` of `user_id` (both just authenticated) for
/// an access JWT with the user's current roles. Its `sid` is
/// `api-token:<id>`, its status index is the API token's own, and it never outlives the API token it came from.
pub fn exchange(
    conn: &mut DbConnection,
    settings: &TokenSettings,
    revocation: &RevocationSettings,
    signer: &SigningKey,
    user_id: &str,
    token_id: &str,
    now: NaiveDateTime,
) -> Result<ExchangedToken, ApiError> {
    let (user, token) =
        users::find(conn, user_id)?.zip(model::find(conn, token_id)?).ok_or(ApiError::InvalidApiToken)?;
    let not_after = token.expires_at.map_or(i64::MAX, |at| at.and_utc().timestamp());
    let now_unix = now.and_utc().timestamp();
    let session_id = format!("{}{token_id}", super::EXCHANGE_SID_PREFIX);
    // One status index per API token: revoking the token flips it.
    let expires_at = (now_unix + settings.access_ttl_secs).min(not_after);
    let status = match revocation.enabled {
        true => {
            let exp = DateTime::from_timestamp(expires_at, 0).unwrap_or_default().naive_utc();
            Some(status_lists::api_token_exchange_index(conn, token_id, revocation.list_size, exp, now)?)
        }
        false => None,
    };
    let subject = Subject {
        user_id: &user.id,
        username: &user.username,
        roles: user.role_list(),
        session_id: &session_id,
        status,
        // A derived credential: no `pwd`, so it cannot mint further ones.
        amr: &[],
    };
    let (access_token, expires_at) =
        mint_access(settings, signer, &subject, now_unix, not_after).map_err(ApiError::internal)?;
    Ok(ExchangedToken { access_token, token_type: "Bearer", expires_in: expires_at - now_unix })
}
