//! What `signet clients ...` does, as functions on a connection (the CLI and
//! tests share them), beside `accounts/commands.rs`.

use anyhow::anyhow;
use chrono::NaiveDateTime;

use super::model::Client;
use super::service::{self, NewClient, WithSecret};
use crate::audit::Actor;
use crate::db::DbConnection;
use crate::error::ApiError;
use crate::keys::master::MasterKey;

pub fn create(
    conn: &mut DbConnection,
    master: &MasterKey,
    name: &str,
    roles: &[String],
    audiences: &[String],
    now: NaiveDateTime,
) -> anyhow::Result<WithSecret> {
    let new = NewClient::parse(name, roles, audiences).map_err(describe)?;
    service::create(conn, master, &Actor::system(), &new, now).map_err(describe)
}

pub fn list(conn: &mut DbConnection) -> anyhow::Result<Vec<Client>> {
    service::list(conn).map_err(describe)
}

pub fn delete(conn: &mut DbConnection, id: &str, now: NaiveDateTime) -> anyhow::Result<()> {
    service::delete(conn, &Actor::system(), id, now).map_err(|e| describe_for(id, e))
}

pub fn rotate_secret(
    conn: &mut DbConnection,
    master: &MasterKey,
    id: &str,
    now: NaiveDateTime,
) -> anyhow::Result<WithSecret> {
    service::rotate_secret(conn, master, id, now).map_err(|e| describe_for(id, e))
}

fn describe_for(id: &str, err: ApiError) -> anyhow::Error {
    match err {
        ApiError::NotFound => anyhow!("no client with id {id}"),
        other => describe(other),
    }
}

fn describe(err: ApiError) -> anyhow::Error {
    match err {
        ApiError::ValidationFailed(errors) => {
            anyhow!("{}", errors.iter().map(|e| format!("{} {}", e.field, e.message)).collect::<Vec<_>>().join("; "))
        }
        other => anyhow!("{other}"),
    }
}
