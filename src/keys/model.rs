//! The `signing_keys` table. A key moves `next` → `active` → `retired` →
//! deleted, or to `revoked` on compromise. Partial unique indexes allow one
//! `active` and one `next` key whatever the number of instances.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::signing_keys;
use crate::db::DbConnection;

pub const STATE_NEXT: &str = "next";
pub const STATE_ACTIVE: &str = "active";
pub const STATE_RETIRED: &str = "retired";
pub const STATE_REVOKED: &str = "revoked";
/// `key_protection` of a plain PKCS#8 key (databases from before encryption at rest).
pub const PROTECTION_NONE: &str = "none";

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = signing_keys)]
pub struct SigningKeyRow {
    pub kid: String,
    pub algorithm: String,
    pub state: String,
    /// Sealed by the master key (see `key_protection`); empty once revoked.
    pub private_key: Vec<u8>,
    pub key_protection: String,
    pub public_jwk: String,
    pub created_at: NaiveDateTime,
    /// When it started signing; for a `next` key, when it is planned to.
    pub activated_at: Option<NaiveDateTime>,
    pub retired_at: Option<NaiveDateTime>,
    /// A retired key stays in the JWKS until then.
    pub publish_until: Option<NaiveDateTime>,
    /// A retired key still verifies (refresh tokens) until then.
    pub verify_until: Option<NaiveDateTime>,
}

pub fn all(conn: &mut DbConnection) -> QueryResult<Vec<SigningKeyRow>> {
    signing_keys::table.order(signing_keys::created_at.asc()).select(SigningKeyRow::as_select()).load(conn)
}

pub fn count(conn: &mut DbConnection) -> QueryResult<i64> {
    signing_keys::table.count().get_result(conn)
}

/// Keys that sign or verify at `now`: next, active, and retired ones before
/// their `verify_until`.
pub fn usable(conn: &mut DbConnection, now: NaiveDateTime) -> QueryResult<Vec<SigningKeyRow>> {
    signing_keys::table
        .filter(
            signing_keys::state
                .eq_any([STATE_NEXT, STATE_ACTIVE])
                .or(signing_keys::state.eq(STATE_RETIRED).and(signing_keys::verify_until.gt(now))),
        )
        .order(signing_keys::created_at.asc())
        .select(SigningKeyRow::as_select())
        .load(conn)
}

pub fn insert(conn: &mut DbConnection, row: &SigningKeyRow) -> QueryResult<usize> {
    diesel::insert_into(signing_keys::table).values(row).execute(conn)
}

/// `active` → `retired` if still active; 0 when another instance got there first.
pub fn retire(
    conn: &mut DbConnection,
    kid: &str,
    at: NaiveDateTime,
    publish_until: NaiveDateTime,
    verify_until: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(signing_keys::table.find(kid).filter(signing_keys::state.eq(STATE_ACTIVE)))
        .set((
            signing_keys::state.eq(STATE_RETIRED),
            signing_keys::retired_at.eq(at),
            signing_keys::publish_until.eq(publish_until),
            signing_keys::verify_until.eq(verify_until),
        ))
        .execute(conn)
}

/// `next` → `active` if still next.
pub fn activate(conn: &mut DbConnection, kid: &str, at: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(signing_keys::table.find(kid).filter(signing_keys::state.eq(STATE_NEXT)))
        .set((signing_keys::state.eq(STATE_ACTIVE), signing_keys::activated_at.eq(at)))
        .execute(conn)
}

/// Compromise: stop signing and verifying at once, and forget the private key.
pub fn revoke(conn: &mut DbConnection, kid: &str, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(signing_keys::table.find(kid).filter(signing_keys::state.ne(STATE_REVOKED)))
        .set((
            signing_keys::state.eq(STATE_REVOKED),
            signing_keys::private_key.eq(Vec::<u8>::new()),
            signing_keys::retired_at.eq(now),
            signing_keys::publish_until.eq(now),
            signing_keys::verify_until.eq(now),
        ))
        .execute(conn)
}

/// Deletes retired keys that no longer verify anything.
pub fn delete_expired(conn: &mut DbConnection, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(
        signing_keys::table.filter(signing_keys::state.eq(STATE_RETIRED)).filter(signing_keys::verify_until.le(now)),
    )
    .execute(conn)
}

pub fn set_private_key(conn: &mut DbConnection, kid: &str, sealed: &[u8], protection: &str) -> QueryResult<usize> {
    diesel::update(signing_keys::table.find(kid))
        .set((signing_keys::private_key.eq(sealed), signing_keys::key_protection.eq(protection)))
        .execute(conn)
}

/// Moves a pending next key's activation time (emergency rotation).
pub fn set_activation(conn: &mut DbConnection, kid: &str, at: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(signing_keys::table.find(kid).filter(signing_keys::state.eq(STATE_NEXT)))
        .set(signing_keys::activated_at.eq(at))
        .execute(conn)
}
