//! Creating, listing, deleting clients, rotating their secrets, and client
//! authentication (a keyed hash compared in constant time: no bcrypt, so a
//! valid client's token costs no password-hashing time).

use anyhow::anyhow;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use chrono::{NaiveDateTime, TimeDelta};
use diesel::Connection;
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::model::{self, Client, ClientSession};
use crate::accounts::rules::check_roles;
use crate::audit::{self, Actor, Event, EventType};
use crate::db::DbConnection;
use crate::error::{ApiError, FieldError};
use crate::keys::master::MasterKey;
use crate::status_lists::model as status_lists;

/// Recognisable by secret scanners, like API tokens' `sgt_`.
pub const SECRET_PREFIX: &str = "sgc_";
const MAX_NAME: usize = 100;
const MAX_AUDIENCES: usize = 32;
const MAX_AUDIENCE_LEN: usize = 255;
/// Secrets longer than this are refused before hashing.
pub const MAX_SECRET_LEN: usize = 128;
/// How long one client session runs: its tokens never outlive it, and the
/// first token after its end starts the next one (one row write a day).
pub const SESSION_SECS: i64 = 86_400;

/// A client and its secret, which is never stored and cannot be shown again.
/// `Debug` leaves the secret out.
pub struct WithSecret {
    pub client: Client,
    pub secret: SecretString,
}

impl std::fmt::Debug for WithSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WithSecret").field("client_id", &self.client.id).field("secret", &"[REDACTED]").finish()
    }
}

/// What a new client is allowed: checked and normalised.
#[derive(Debug, Clone)]
pub struct NewClient {
    pub name: String,
    pub roles: Vec<String>,
    pub audiences: Vec<String>,
}

impl NewClient {
    /// Checks a name (1-100 printable characters), roles (the role-name
    /// rules of accounts) and audiences (1-255 visible ASCII characters each).
    pub fn parse(name: &str, roles: &[String], audiences: &[String]) -> Result<NewClient, ApiError> {
        let mut errors = Vec::new();
        let name = name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
            errors.push(FieldError::new("name", format!("must be 1-{MAX_NAME} printable characters")));
        }
        let roles = check_roles(roles).unwrap_or_else(|e| {
            errors.push(e);
            Vec::new()
        });
        let audience_ok =
            |a: &String| !a.is_empty() && a.len() <= MAX_AUDIENCE_LEN && a.chars().all(|c| c.is_ascii_graphic());
        if audiences.len() > MAX_AUDIENCES || !audiences.iter().all(audience_ok) {
            errors.push(FieldError::new(
                "audiences",
                format!("at most {MAX_AUDIENCES}, each 1-{MAX_AUDIENCE_LEN} visible ASCII characters"),
            ));
        }
        if !errors.is_empty() {
            return Err(ApiError::ValidationFailed(errors));
        }
        let mut audiences = audiences.to_vec();
        audiences.sort();
        audiences.dedup();
        Ok(NewClient { name: name.to_owned(), roles, audiences })
    }
}

/// `sgc_` + 256 random bits.
fn new_secret() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| anyhow!("no randomness available"))?;
    Ok(format!("{SECRET_PREFIX}{}", B64.encode(bytes)))
}

pub fn create(
    conn: &mut DbConnection,
    master: &MasterKey,
    actor: &Actor,
    new: &NewClient,
    now: NaiveDateTime,
) -> Result<WithSecret, ApiError> {
    let secret = new_secret().map_err(ApiError::internal)?;
    let client = Client {
        id: Uuid::new_v4().to_string(),
        name: new.name.clone(),
        secret_hash: master.api_token_hash(&secret),
        roles: model::encode_list(&new.roles),
        audiences: model::encode_list(&new.audiences),
        created_at: now,
        updated_at: now,
        disabled: false,
        session_id: None,
        session_expires_at: None,
        status_list: None,
        status_idx: None,
    };
    audit::transaction(conn, |conn| {
        model::insert(conn, &client)?;
        let event = Event::new(EventType::ClientCreated, actor, now)
            .detail("client_id", &client.id)
            .detail("name", &client.name)
            .detail("roles", &new.roles);
        audit::record(conn, event)
    })?;
    Ok(WithSecret { client, secret: secret.into() })
}

pub fn list(conn: &mut DbConnection) -> Result<Vec<Client>, ApiError> {
    Ok(model::all(conn)?)
}

/// Deletes a client; its tokens' session ends (404 for an unknown one).
pub fn delete(conn: &mut DbConnection, actor: &Actor, id: &str, now: NaiveDateTime) -> Result<(), ApiError> {
    audit::transaction(conn, |conn| match model::delete(conn, id)? {
        0 => Err(ApiError::NotFound),
        _ => Ok(audit::record(conn, Event::new(EventType::ClientDeleted, actor, now).detail("client_id", id))?),
    })
}

/// A new secret; the old one stops at once, and so do the tokens it minted.
pub fn rotate_secret(
    conn: &mut DbConnection,
    master: &MasterKey,
    id: &str,
    now: NaiveDateTime,
) -> Result<WithSecret, ApiError> {
    let secret = new_secret().map_err(ApiError::internal)?;
    if model::set_secret_hash(conn, id, &master.api_token_hash(&secret), now)? == 0 {
        return Err(ApiError::NotFound);
    }
    let client = model::find(conn, id)?.ok_or(ApiError::NotFound)?;
    Ok(WithSecret { client, secret: secret.into() })
}

/// Disables (or enables) a client; disabling ends its tokens' session.
pub fn set_disabled(conn: &mut DbConnection, id: &str, disabled: bool, now: NaiveDateTime) -> Result<(), ApiError> {
    match model::set_disabled(conn, id, disabled, now)? {
        0 => Err(ApiError::NotFound),
        _ => Ok(()),
    }
}

/// The enabled client `id` if `secret` is its secret; None otherwise (unknown,
/// disabled, wrong secret). The hashes are compared in constant time, and an
/// unknown client costs the same hashing as a known one.
pub fn authenticate(
    conn: &mut DbConnection,
    master: &MasterKey,
    id: &str,
    secret: &SecretString,
) -> Result<Option<Client>, ApiError> {
    let secret = secret.expose_secret();
    if secret.len() > MAX_SECRET_LEN || Uuid::parse_str(id).is_err() {
        return Ok(None);
    }
    let presented = master.api_token_hash(secret);
    let Some(client) = model::find(conn, id)? else {
        return Ok(None);
    };
    let matches =
        aws_lc_rs::constant_time::verify_slices_are_equal(presented.as_bytes(), client.secret_hash.as_bytes()).is_ok();
    Ok((matches && !client.disabled).then_some(client))
}

/// The session the client's next token joins: the running one, or a new one
/// (with a status-list index when revocation is on). Two first tokens at once
/// settle on one session: the loser's conditional update changes nothing, its
/// index is rolled back and it takes the winner's.
pub fn session_for_token(
    conn: &mut DbConnection,
    client: &Client,
    revocation_enabled: bool,
    list_size: i64,
    now: NaiveDateTime,
) -> Result<ClientSession, ApiError> {
    if let Some(session) = client.live_session(now) {
        return Ok(session);
    }
    let started = conn.transaction(|conn| -> Result<Option<ClientSession>, ApiError> {
        let expires_at = now + TimeDelta::seconds(SESSION_SECS);
        let status = match revocation_enabled {
            true => Some(status_lists::allocate(conn, list_size, expires_at, now)?),
            false => None,
        };
        let session = ClientSession {
            id: format!("{}{}:{}", super::SESSION_PREFIX, client.id, Uuid::new_v4().simple()),
            expires_at,
            status,
        };
        if model::start_session(conn, &client.id, &session, now)? == 1 {
            Ok(Some(session))
        } else {
            Err(ApiError::NotFound)
        }
    });
    match started {
        Ok(Some(session)) => Ok(session),
        Ok(None) | Err(ApiError::NotFound) => {
            // Lost the race (or the client was disabled/deleted meanwhile).
            let client = model::find(conn, &client.id)?.filter(|c| !c.disabled).ok_or(ApiError::NotFound)?;
            client.live_session(now).ok_or(ApiError::NotFound)
        }
        Err(err) => Err(err),
    }
}
