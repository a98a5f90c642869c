//! The `audit_events` table: row types and the queries on it. Ids come from
//! the database (a sequence; AUTOINCREMENT on SQLite), so id order is
//! insertion order and pages are keyed on it.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::audit_events;
use crate::db::DbConnection;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = audit_events)]
pub struct AuditRow {
    pub id: i64,
    pub at: NaiveDateTime,
    /// The event type, `login.succeeded` etc. (column `type`).
    pub kind: String,
    pub actor_id: Option<String>,
    pub subject_id: Option<String>,
    pub ip: Option<String>,
    /// A JSON object.
    pub detail: String,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = audit_events)]
pub struct NewAuditRow<'a> {
    pub at: NaiveDateTime,
    pub kind: &'a str,
    pub actor_id: Option<&'a str>,
    pub subject_id: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub detail: &'a str,
}

pub fn insert(conn: &mut DbConnection, row: &NewAuditRow<'_>) -> QueryResult<()> {
    diesel::insert_into(audit_events::table).values(row).execute(conn).map(|_| ())
}

/// Which rows a page shows.
#[derive(Debug, Clone, Default)]
pub struct Filter<'a> {
    pub kind: Option<&'a str>,
    /// Matches the actor or the subject.
    pub user_id: Option<&'a str>,
    /// Only ids below this one (the previous page's last).
    pub before: Option<i64>,
    pub limit: i64,
}

/// Up to `filter.limit` rows, newest (highest id) first.
pub fn page(conn: &mut DbConnection, filter: &Filter<'_>) -> QueryResult<Vec<AuditRow>> {
    let mut query = audit_events::table.select(AuditRow::as_select()).into_boxed();
    if let Some(kind) = filter.kind {
        query = query.filter(audit_events::kind.eq(kind));
    }
    if let Some(user_id) = filter.user_id {
        query = query.filter(audit_events::actor_id.eq(user_id).or(audit_events::subject_id.eq(user_id)));
    }
    if let Some(before) = filter.before {
        query = query.filter(audit_events::id.lt(before));
    }
    query.order(audit_events::id.desc()).limit(filter.limit).load(conn)
}
