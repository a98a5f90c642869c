//! The `clients` table. A client's client-credentials tokens share one
//! "client session" at a time (the `session_*` and `status_*` columns): its
//! `sid`, its end and its status-list index. Revoking any one of its tokens,
//! rotating the secret, disabling or deleting the client ends that session
//! (its index flips in the same transaction); the next token starts a new one.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use crate::db::schema::clients;
use crate::db::DbConnection;
use crate::status_lists::model::{self as status_lists, StatusRef};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = clients)]
pub struct Client {
    pub id: String,
    pub name: String,
    pub secret_hash: String,
    pub roles: String,
    pub audiences: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub disabled: bool,
    pub session_id: Option<String>,
    pub session_expires_at: Option<NaiveDateTime>,
    pub status_list: Option<i64>,
    pub status_idx: Option<i64>,
}

/// A client as listed: never its secret, nor its hash.
#[derive(Debug, Serialize)]
pub struct ClientView {
    pub client_id: String,
    pub name: String,
    pub roles: Vec<String>,
    pub audiences: Vec<String>,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn decode_list(json: &str) -> Vec<String> {
    serde_json::from_str(json).unwrap_or_else(|err| {
        log::error!("unreadable clients list column ({err}); treating as empty");
        Vec::new()
    })
}

pub fn encode_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".to_owned())
}

/// The client session its tokens carry now.
#[derive(Debug, Clone)]
pub struct ClientSession {
    pub id: String,
    pub expires_at: NaiveDateTime,
    pub status: Option<StatusRef>,
}

impl Client {
    pub fn role_list(&self) -> Vec<String> {
        decode_list(&self.roles)
    }

    pub fn audience_list(&self) -> Vec<String> {
        decode_list(&self.audiences)
    }

    /// The current session if it is still running at `now`.
    pub fn live_session(&self, now: NaiveDateTime) -> Option<ClientSession> {
        let (id, expires_at) = (self.session_id.clone()?, self.session_expires_at?);
        (expires_at > now).then(|| ClientSession {
            id,
            expires_at,
            status: self.status_list.zip(self.status_idx).map(|(list, idx)| StatusRef { list, idx }),
        })
    }

    pub fn view(&self) -> ClientView {
        ClientView {
            client_id: self.id.clone(),
            name: self.name.clone(),
            roles: self.role_list(),
            audiences: self.audience_list(),
            disabled: self.disabled,
            created_at: self.created_at.and_utc(),
            updated_at: self.updated_at.and_utc(),
        }
    }
}

pub fn insert(conn: &mut DbConnection, client: &Client) -> QueryResult<usize> {
    diesel::insert_into(clients::table).values(client).execute(conn)
}

pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<Client>> {
    clients::table.find(id).select(Client::as_select()).get_result(conn).optional()
}

/// Every client, oldest first.
pub fn all(conn: &mut DbConnection) -> QueryResult<Vec<Client>> {
    clients::table.order((clients::created_at.asc(), clients::id.asc())).select(Client::as_select()).load(conn)
}

/// Starts a new client session if the client still has none running (the
/// condition settles a race between two first tokens: the loser gets 0 and
/// rolls back its index). Call inside a transaction.
pub fn start_session(
    conn: &mut DbConnection,
    id: &str,
    session: &ClientSession,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        clients::table
            .find(id)
            .filter(clients::disabled.eq(false))
            .filter(clients::session_id.is_null().or(clients::session_expires_at.le(now))),
    )
    .set((
        clients::session_id.eq(&session.id),
        clients::session_expires_at.eq(session.expires_at),
        clients::status_list.eq(session.status.map(|s| s.list)),
        clients::status_idx.eq(session.status.map(|s| s.idx)),
    ))
    .execute(conn)
}

/// Ends client session `sid` if it is the client's current one: clears it and
/// flips its index, in one transaction. Returns 1 if it was current.
pub fn end_session(conn: &mut DbConnection, id: &str, sid: &str) -> QueryResult<usize> {
    conn.transaction(|conn| {
        let Some(client) = find(conn, id)? else {
            return Ok(0);
        };
        if client.session_id.as_deref() != Some(sid) {
            return Ok(0);
        }
        end_current_session(conn, &client)
    })
}

/// Ends whatever session the client has (flipping its index).
fn end_current_session(conn: &mut DbConnection, client: &Client) -> QueryResult<usize> {
    if let (Some(list), Some(idx)) = (client.status_list, client.status_idx) {
        status_lists::flip(conn, StatusRef { list, idx })?;
    }
    let cleared = diesel::update(clients::table.find(&client.id).filter(clients::session_id.eq(&client.session_id)))
        .set((
            clients::session_id.eq(None::<String>),
            clients::session_expires_at.eq(None::<NaiveDateTime>),
            clients::status_list.eq(None::<i64>),
            clients::status_idx.eq(None::<i64>),
        ))
        .execute(conn)?;
    Ok(cleared)
}

/// Deletes a client, ending its session first. Returns 1 if it existed.
pub fn delete(conn: &mut DbConnection, id: &str) -> QueryResult<usize> {
    conn.transaction(|conn| {
        let Some(client) = find(conn, id)? else {
            return Ok(0);
        };
        end_current_session(conn, &client)?;
        diesel::delete(clients::table.find(id)).execute(conn)
    })
}

/// Replaces the secret's hash and ends the client's session (tokens minted
/// with the old secret stop too). Returns 1 if the client exists.
pub fn set_secret_hash(conn: &mut DbConnection, id: &str, hash: &str, now: NaiveDateTime) -> QueryResult<usize> {
    conn.transaction(|conn| {
        let Some(client) = find(conn, id)? else {
            return Ok(0);
        };
        end_current_session(conn, &client)?;
        diesel::update(clients::table.find(id))
            .set((clients::secret_hash.eq(hash), clients::updated_at.eq(now)))
            .execute(conn)
    })
}

/// Disables or enables a client; disabling ends its session.
pub fn set_disabled(conn: &mut DbConnection, id: &str, disabled: bool, now: NaiveDateTime) -> QueryResult<usize> {
    conn.transaction(|conn| {
        let Some(client) = find(conn, id)? else {
            return Ok(0);
        };
        if disabled {
            end_current_session(conn, &client)?;
        }
        diesel::update(clients::table.find(id))
            .set((clients::disabled.eq(disabled), clients::updated_at.eq(now)))
            .execute(conn)
    })
}
