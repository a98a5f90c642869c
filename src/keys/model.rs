//! The `signing_keys` table. A key moves `next` → `active` → `retired`; the
//! partial unique index allows one `active` key whatever the instances.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::signing_keys;
use crate::db::DbConnection;

pub const STATE_ACTIVE: &str = "active";
pub const STATE_NEXT: &str = "next";
pub const STATE_RETIRED: &str = "retired";
/// `key_protection` of a PKCS#8 key stored as is (encryption at rest comes with key management).
pub const PROTECTION_NONE: &str = "none";

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = signing_keys)]
pub struct SigningKeyRow {
    pub kid: String,
    pub algorithm: String,
    pub state: String,
    pub private_key: Vec<u8>,
    pub key_protection: String,
    pub public_jwk: String,
    pub created_at: NaiveDateTime,
    pub activated_at: Option<NaiveDateTime>,
    pub retired_at: Option<NaiveDateTime>,
}

pub fn active(conn: &mut DbConnection) -> QueryResult<Option<SigningKeyRow>> {
    signing_keys::table
        .filter(signing_keys::state.eq(STATE_ACTIVE))
        .select(SigningKeyRow::as_select())
        .first(conn)
        .optional()
}

/// Keys whose public half is published: next, active and retired ones.
pub fn published(conn: &mut DbConnection) -> QueryResult<Vec<SigningKeyRow>> {
    signing_keys::table
        .filter(signing_keys::state.eq_any([STATE_NEXT, STATE_ACTIVE, STATE_RETIRED]))
        .order(signing_keys::created_at.asc())
        .select(SigningKeyRow::as_select())
        .load(conn)
}

pub fn insert(conn: &mut DbConnection, row: &SigningKeyRow) -> QueryResult<usize> {
    diesel::insert_into(signing_keys::table)
        .values(row)
        .execute(conn)
}

pub fn all(conn: &mut DbConnection) -> QueryResult<Vec<SigningKeyRow>> {
    signing_keys::table
        .order(signing_keys::created_at.asc())
        .select(SigningKeyRow::as_select())
        .load(conn)
}
