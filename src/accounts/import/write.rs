//! Checks each parsed row against signet's rules and stores it, one
//! transaction per user; the [`Report`] says what became of every row.

use std::collections::HashMap;
use std::fmt;

use chrono::NaiveDateTime;
use uuid::Uuid;

use super::hashes::unusable_reason;
use super::{GroupRoles, ImportRow, ParsedRow, STAFF_ROLE, SUPERUSER_ROLE};
use crate::accounts::model::{self, encode_roles, NewUser};
use crate::accounts::password::{self, UNUSABLE_HASH};
use crate::accounts::rules::{check_email, check_roles, check_username, username_key};
use crate::accounts::service::created_event;
use crate::audit::{self, Actor};
use crate::db::DbConnection;
use crate::error::is_unique_violation;
use crate::roles::USER as DEFAULT_ROLE;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Skipped,
    Failed,
}

/// What became of one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowReport {
    pub source: String,
    pub username: Option<String>,
    pub outcome: Outcome,
    /// Created: the roles (and "disabled"); skipped or failed: why.
    pub detail: String,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub rows: Vec<RowReport>,
}

impl Report {
    fn count(&self, outcome: Outcome) -> usize {
        self.rows.iter().filter(|r| r.outcome == outcome).count()
    }
    pub fn created(&self) -> usize {
        self.count(Outcome::Created)
    }
    pub fn skipped(&self) -> usize {
        self.count(Outcome::Skipped)
    }
    pub fn failed(&self) -> usize {
        self.count(Outcome::Failed)
    }
    pub fn row(&self, username: &str) -> Option<&RowReport> {
        self.rows.iter().find(|r| r.username.as_deref() == Some(username))
    }
}

impl fmt::Display for RowReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let outcome = match self.outcome {
            Outcome::Created => "created",
            Outcome::Skipped => "skipped",
            Outcome::Failed => "failed",
        };
        match &self.username {
            Some(name) => write!(f, "{outcome:<8}{name} ({}): {}", self.source, self.detail)?,
            None => write!(f, "{outcome:<8}({}): {}", self.source, self.detail)?,
        }
        for warning in &self.warnings {
            write!(f, "\n        warning: {warning}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for row in &self.rows {
            writeln!(f, "{row}")?;
        }
        writeln!(f, "{} created, {} skipped, {} failed", self.created(), self.skipped(), self.failed())
    }
}

/// Imports `rows` in order, each user in its own transaction; a failing row
/// is reported and the next one goes on.
pub fn import(conn: &mut DbConnection, rows: Vec<ParsedRow>, group_roles: &GroupRoles, now: NaiveDateTime) -> Report {
    let mut report = Report::default();
    // username_key → username, for rows of this file.
    let mut seen: HashMap<String, String> = HashMap::new();
    for row in rows {
        let row_report = match row {
            Err(err) => RowReport {
                source: err.source,
                username: err.username,
                outcome: Outcome::Failed,
                detail: err.message,
                warnings: Vec::new(),
            },
            Ok(row) => import_row(conn, &row, group_roles, &mut seen, now),
        };
        report.rows.push(row_report);
    }
    report
}

fn import_row(
    conn: &mut DbConnection,
    row: &ImportRow,
    group_roles: &GroupRoles,
    seen: &mut HashMap<String, String>,
    now: NaiveDateTime,
) -> RowReport {
    let mut report = RowReport {
        source: row.source.clone(),
        username: Some(row.username.clone()),
        outcome: Outcome::Failed,
        detail: String::new(),
        warnings: Vec::new(),
    };
    let failed = |mut report: RowReport, detail: String| {
        report.outcome = Outcome::Failed;
        report.detail = detail;
        report
    };
    if let Err(e) = check_username(&row.username) {
        return failed(report, format!("username {}", e.message));
    }
    let key = username_key(&row.username);
    if let Some(earlier) = seen.get(&key) {
        let detail = if *earlier == row.username {
            "username appears twice in the file".to_owned()
        } else {
            format!("username differs only in case from {earlier:?} earlier in the file (signet ignores case)")
        };
        return failed(report, detail);
    }
    seen.insert(key.clone(), row.username.clone());

    let email = match row.email.trim() {
        "" => None,
        email => match check_email(email) {
            Ok(()) => Some(email),
            Err(e) => {
                report.warnings.push(format!("e-mail {email:?} dropped: {}", e.message));
                None
            }
        },
    };

    let mut roles = vec![DEFAULT_ROLE.to_owned()];
    if row.is_superuser {
        roles.push(SUPERUSER_ROLE.to_owned());
    }
    if row.is_staff {
        roles.push(STAFF_ROLE.to_owned());
    }
    for group in &row.groups {
        match group_roles.role_for(group) {
            Ok(Some(role)) => roles.push(role),
            Ok(None) => {}
            Err(warning) => report.warnings.push(warning),
        }
    }
    let roles = match check_roles(&roles) {
        Ok(roles) => roles,
        Err(e) => return failed(report, format!("roles: {}", e.message)),
    };

    let password_hash = if password::is_usable(&row.password) {
        row.password.as_str()
    } else {
        report.warnings.push(unusable_reason(&row.password));
        UNUSABLE_HASH
    };

    let id = Uuid::new_v4().to_string();
    let encoded_roles = encode_roles(&roles);
    let new = NewUser {
        id: &id,
        username: &row.username,
        username_key: &key,
        email,
        password_hash,
        roles: &encoded_roles,
        disabled: !row.is_active,
        created_at: row.date_joined.unwrap_or(now),
        updated_at: now,
    };
    let written = audit::transaction(conn, |conn| match model::find_by_username_key(conn, &key)? {
        Some(existing) => Ok(Err(existing.username)),
        None => {
            model::insert(conn, &new)?;
            let user = model::find(conn, &id)?.ok_or(diesel::result::Error::NotFound)?;
            let event = created_event(&Actor::system(), &user, now).detail("via", "import");
            audit::record(conn, event).map(Ok)
        }
    });
    match written {
        Ok(Ok(())) => {
            report.outcome = Outcome::Created;
            report.detail = format!("roles {}{}", roles.join(", "), if row.is_active { "" } else { "; disabled" });
        }
        Ok(Err(existing)) if existing == row.username => {
            report.outcome = Outcome::Skipped;
            report.detail = "already exists".to_owned();
            // Whatever the file says, the existing account is left alone.
            report.warnings.clear();
        }
        Ok(Err(existing)) => {
            return failed(report, format!("differs only in case from the existing user {existing:?}"));
        }
        // A concurrent import or registration took it: settled by the index.
        Err(err) if is_unique_violation(&err) => {
            report.outcome = Outcome::Skipped;
            report.detail = "already exists".to_owned();
            report.warnings.clear();
        }
        Err(err) => return failed(report, format!("database error: {err}")),
    }
    report
}
