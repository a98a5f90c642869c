//! `signet users import`: accounts from a Django project, with their password
//! hashes, so users keep their passwords (re-hashed to signet's scheme at
//! their first login, see [`super::password`]).
//!
//! Input: `manage.py dumpdata auth.user` JSON (groups as ids, or as names
//! with `--natural-foreign`; `auth.group` records in the same file name the
//! ids), or CSV with the header `username,email,password,is_active,is_staff,
//! is_superuser,groups` (groups separated by `|`; an optional `date_joined`).
//!
//! Rules, per row:
//! - roles: `user`, plus `admin` for `is_superuser` and `staff` for
//!   `is_staff`, plus one per group: the `--group-role GROUP=ROLE` mapping,
//!   else the lower-cased group name if it is a valid role name and not one
//!   signet reserves ([`crate::roles::RESERVED`]: a group called "Admin"
//!   grants `admin` only through an explicit `--group-role Admin=admin`),
//!   else the group is dropped with a warning (`GROUP=` drops it silently).
//! - `is_active = false` → disabled.
//! - a username that breaks signet's rules fails the row; an e-mail that
//!   breaks them is dropped with a warning (the account stays usable).
//! - a password hash signet cannot verify (Django's `!` unusable mark, an
//!   unsupported or malformed scheme, work factors over signet's caps)
//!   imports as [`UNUSABLE_HASH`](super::password::UNUSABLE_HASH) with a
//!   warning naming the reason: the user must be given a new password; login
//!   answers `invalid_credentials`.
//! - an existing username is skipped, so the import is idempotent. One that
//!   differs only in case from an existing user, or from an earlier row of
//!   the file, fails (signet's usernames are unique regardless of case,
//!   Django's are not).
//!
//! Each user is written in its own transaction, and a bad row never stops
//! the others. Reports name rows and usernames, never a password or hash.

//!
//! One module per concern: [`json`] and [`csv`] read the two formats into
//! [`ImportRow`]s, [`roles`] maps Django groups to roles, [`hashes`] says why
//! a stored hash cannot be used, and [`write`] checks and stores each row.

mod csv;
mod hashes;
mod json;
mod roles;
mod write;

use std::fmt;
use std::path::Path;

use anyhow::{bail, Context};
use chrono::{DateTime, NaiveDateTime};

pub use self::csv::{parse_csv, CSV_GROUP_SEPARATOR};
pub use self::json::parse_json;
pub use self::roles::GroupRoles;
pub use self::write::{import, Outcome, Report, RowReport};

pub const SUPERUSER_ROLE: &str = crate::roles::ADMIN;
pub const STAFF_ROLE: &str = crate::roles::STAFF;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
}

impl Format {
    pub fn parse(name: &str) -> anyhow::Result<Format> {
        match name.to_ascii_lowercase().as_str() {
            "json" => Ok(Format::Json),
            "csv" => Ok(Format::Csv),
            other => bail!("unknown import format {other:?}: use json or csv"),
        }
    }

    /// By the file's extension, else by its first character (`[` is JSON).
    pub fn detect(path: &Path, text: &str) -> Format {
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("json") => Format::Json,
            Some("csv") => Format::Csv,
            _ if text.trim_start_matches('\u{feff}').trim_start().starts_with('[') => Format::Json,
            _ => Format::Csv,
        }
    }
}

/// A Django group as a user record names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupRef {
    Name(String),
    /// A primary key that no `auth.group` record in the file named.
    Id(i64),
}

/// One user as read from the file; its fields are checked on import.
#[derive(Clone, PartialEq, Eq)]
pub struct ImportRow {
    /// Where it came from, for reports: `record 3`, `line 5`.
    pub source: String,
    pub username: String,
    /// Django stores `""` for no e-mail.
    pub email: String,
    /// The stored Django hash (never a plain password, never printed).
    pub password: String,
    pub is_active: bool,
    pub is_staff: bool,
    pub is_superuser: bool,
    pub groups: Vec<GroupRef>,
    /// Django's `date_joined`, kept as `created_at` when present.
    pub date_joined: Option<NaiveDateTime>,
}

impl fmt::Debug for ImportRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImportRow")
            .field("source", &self.source)
            .field("username", &self.username)
            .field("email", &self.email)
            .field("password", &"<redacted>")
            .field("is_active", &self.is_active)
            .field("is_staff", &self.is_staff)
            .field("is_superuser", &self.is_superuser)
            .field("groups", &self.groups)
            .field("date_joined", &self.date_joined)
            .finish()
    }
}

/// A row that could not be read: reported as failed, never imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub source: String,
    pub username: Option<String>,
    pub message: String,
}

pub type ParsedRow = Result<ImportRow, RowError>;

/// Reads and parses `path`; `format` (json, csv) overrides detection. Only an
/// unreadable file or one that is not JSON / has no CSV header is an error:
/// bad rows come back as [`RowError`]s.
pub fn read_file(path: &Path, format: Option<&str>) -> anyhow::Result<Vec<ParsedRow>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let format = match format {
        Some(name) => Format::parse(name)?,
        None => Format::detect(path, &text),
    };
    parse(&text, format).with_context(|| format!("cannot import {}", path.display()))
}

pub fn parse(text: &str, format: Format) -> anyhow::Result<Vec<ParsedRow>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    match format {
        Format::Json => parse_json(text),
        Format::Csv => parse_csv(text),
    }
}

pub(crate) fn parse_timestamp(text: &str) -> Option<NaiveDateTime> {
    let text = text.trim();
    DateTime::parse_from_rfc3339(text)
        .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%#z"))
        .map(|t| t.naive_utc())
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f"))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(rows: &[ParsedRow]) -> Vec<&ImportRow> {
        rows.iter().map(|r| r.as_ref().expect("row parses")).collect()
    }

    #[test]
    fn dumpdata_with_natural_keys_and_with_ids_read_alike() {
        let natural = parse(include_str!("../../../tests/fixtures/django_users.json"), Format::Json).expect("json");
        let ids = parse(include_str!("../../../tests/fixtures/django_users_ids.json"), Format::Json).expect("json");
        assert_eq!(natural.len(), 8);
        // Alike but for their place in the file (the ids dump starts with the groups).
        let unplaced = |rows: &[ParsedRow]| {
            ok(rows).into_iter().map(|r| ImportRow { source: String::new(), ..r.clone() }).collect::<Vec<_>>()
        };
        assert_eq!(unplaced(&natural), unplaced(&ids));
        assert_eq!(ok(&ids)[0].source, "record 4");
        let cyd = ok(&natural).into_iter().find(|r| r.username == "cyd").expect("cyd");
        assert_eq!(cyd.groups, ["editors", "Support Team", "billing"].map(|g| GroupRef::Name(g.into())).to_vec());
        assert!(cyd.password.starts_with("argon2$argon2id$"));
        assert_eq!(cyd.email, "");
        assert_eq!(cyd.date_joined.expect("date").to_string(), "2021-03-06 05:06:07");
        let csv = parse(include_str!("../../../tests/fixtures/django_users.csv"), Format::Csv).expect("csv");
        assert_eq!(csv.len(), 8);
        for (from_csv, from_json) in ok(&csv).into_iter().zip(ok(&natural)) {
            assert_eq!(from_csv.username, from_json.username);
            assert_eq!(from_csv.password, from_json.password);
            assert_eq!(from_csv.is_active, from_json.is_active);
            assert_eq!(from_csv.is_staff, from_json.is_staff);
            assert_eq!(from_csv.is_superuser, from_json.is_superuser);
            let mut a = from_csv.groups.clone();
            let mut b = from_json.groups.clone();
            a.sort_by_key(|g| format!("{g:?}"));
            b.sort_by_key(|g| format!("{g:?}"));
            assert_eq!(a, b);
        }
    }

    #[test]
    fn format_detection() {
        assert_eq!(Format::detect(Path::new("u.JSON"), ""), Format::Json);
        assert_eq!(Format::detect(Path::new("u.csv"), "[x"), Format::Csv);
        assert_eq!(Format::detect(Path::new("dump"), "\u{feff}\n [{}]"), Format::Json);
        assert_eq!(Format::detect(Path::new("dump"), "username,password"), Format::Csv);
        assert!(Format::parse("xml").is_err());
    }
}
