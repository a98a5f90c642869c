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
//!   else the lower-cased group name if it is a valid role name, else the
//!   group is dropped with a warning (`GROUP=` drops it silently).
//! - `is_active = false` → disabled.
//! - a username that breaks signet's rules fails the row; an e-mail that
//!   breaks them is dropped with a warning (the account stays usable).
//! - a password hash signet cannot verify (Django's `!` unusable mark, an
//!   unsupported or malformed scheme) imports as [`UNUSABLE_HASH`]: the user
//!   must be given a new password; login answers `invalid_credentials`.
//! - an existing username is skipped, so the import is idempotent. One that
//!   differs only in case from an existing user, or from an earlier row of
//!   the file, fails (signet's usernames are unique regardless of case,
//!   Django's are not).
//!
//! Each user is written in its own transaction, and a bad row never stops
//! the others. Reports name rows and usernames, never a password or hash.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::Path;

use anyhow::{anyhow, bail, Context};
use chrono::{DateTime, NaiveDateTime};
use diesel::Connection;
use serde_json::Value;
use uuid::Uuid;

use super::model::{self, encode_roles, NewUser};
use super::password::{self, UNUSABLE_HASH};
use super::rules::{check_email, check_roles, check_username, username_key};
use crate::db::DbConnection;
use crate::error::is_unique_violation;
use crate::roles::USER as DEFAULT_ROLE;

pub const SUPERUSER_ROLE: &str = crate::roles::ADMIN;
pub const STAFF_ROLE: &str = crate::roles::STAFF;
/// Separates group names in the CSV `groups` column.
pub const CSV_GROUP_SEPARATOR: char = '|';

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

// ---------------------------------------------------------------- JSON ----

/// `dumpdata` output: a list of `{"model", "pk", "fields"}` records. User
/// records are `auth.user` ones, or any whose fields hold `username` and
/// `password` (a custom user model built on `AbstractUser`); `auth.group`
/// records name group ids; other records are ignored.
pub fn parse_json(text: &str) -> anyhow::Result<Vec<ParsedRow>> {
    // serde_json's syntax errors give a position, never the text.
    let doc: Value = serde_json::from_str(text).map_err(|e| anyhow!("not valid JSON: {e}"))?;
    let Value::Array(records) = doc else {
        bail!("not a dumpdata file: expected a JSON list of records");
    };
    let group_names: HashMap<i64, String> = records
        .iter()
        .filter(|r| r.get("model").and_then(Value::as_str).is_some_and(|m| m.eq_ignore_ascii_case("auth.group")))
        .filter_map(|r| Some((r.get("pk")?.as_i64()?, r.get("fields")?.get("name")?.as_str()?.to_owned())))
        .collect();
    let mut rows = Vec::new();
    for (index, record) in records.iter().enumerate() {
        let source = format!("record {}", index + 1);
        let Some(object) = record.as_object() else {
            rows.push(Err(RowError { source, username: None, message: "not a JSON object".into() }));
            continue;
        };
        let fields = object.get("fields").and_then(Value::as_object);
        let model = object.get("model").and_then(Value::as_str).unwrap_or("");
        let user_like = fields.is_some_and(|f| f.contains_key("username") && f.contains_key("password"));
        if !(model.eq_ignore_ascii_case("auth.user") || user_like) {
            continue;
        }
        let Some(fields) = fields else {
            rows.push(Err(RowError { source, username: None, message: "auth.user record without fields".into() }));
            continue;
        };
        rows.push(json_row(source, fields, &group_names));
    }
    Ok(rows)
}

fn json_row(source: String, fields: &serde_json::Map<String, Value>, group_names: &HashMap<i64, String>) -> ParsedRow {
    let username = fields.get("username").and_then(Value::as_str).map(str::to_owned);
    // Messages name the field, never its value: it might be a password.
    let fail = |message: String| RowError { source: source.clone(), username: username.clone(), message };
    let Some(name) = username.clone() else {
        return Err(fail("username: missing or not a string".into()));
    };
    let password = match fields.get("password") {
        Some(Value::String(p)) => p.clone(),
        _ => return Err(fail("password: missing or not a string".into())),
    };
    let email = match fields.get("email") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(e)) => e.clone(),
        Some(_) => return Err(fail("email: not a string".into())),
    };
    let flag = |field: &str, default: bool| match fields.get(field) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(fail(format!("{field}: must be true or false"))),
    };
    let is_active = flag("is_active", true)?;
    let is_staff = flag("is_staff", false)?;
    let is_superuser = flag("is_superuser", false)?;
    let mut groups = Vec::new();
    match fields.get("groups") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for item in items {
                let group = match item {
                    Value::Number(n) => n.as_i64().map(|id| match group_names.get(&id) {
                        Some(name) => GroupRef::Name(name.clone()),
                        None => GroupRef::Id(id),
                    }),
                    Value::String(name) => Some(GroupRef::Name(name.clone())),
                    // --natural-foreign: the natural key, `["name"]`.
                    Value::Array(key) => match key.as_slice() {
                        [Value::String(name)] => Some(GroupRef::Name(name.clone())),
                        _ => None,
                    },
                    _ => None,
                };
                groups.push(group.ok_or_else(|| fail("groups: expected group ids or names".into()))?);
            }
        }
        Some(_) => return Err(fail("groups: not a list".into())),
    }
    let date_joined = fields.get("date_joined").and_then(Value::as_str).and_then(parse_timestamp);
    Ok(ImportRow { source, username: name, email, password, is_active, is_staff, is_superuser, groups, date_joined })
}

/// RFC 3339 (Django's serializer) or PostgreSQL's text form, as UTC.
fn parse_timestamp(text: &str) -> Option<NaiveDateTime> {
    let text = text.trim();
    DateTime::parse_from_rfc3339(text)
        .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%#z"))
        .map(|t| t.naive_utc())
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f"))
        .ok()
}

// ----------------------------------------------------------------- CSV ----

/// CSV (RFC 4180: `,`, `"` quoting, `""` inside quotes) with a header row.
/// Columns by name, any order: `username` and `password` are required;
/// `email`, `is_active` (default true), `is_staff`, `is_superuser` (default
/// false), `groups` (`|`-separated names) and `date_joined` are optional;
/// other columns are ignored. Booleans: true/false, t/f, 1/0, yes/no.
pub fn parse_csv(text: &str) -> anyhow::Result<Vec<ParsedRow>> {
    let mut records = csv_records(text).into_iter();
    let Some((_, header)) = records.next() else {
        bail!("empty CSV file: expected a header row");
    };
    let header = header.map_err(|e| anyhow!("CSV header: {e}"))?;
    let names: Vec<String> = header.iter().map(|h| h.trim().to_ascii_lowercase()).collect();
    let column = |name: &str| names.iter().position(|n| n == name);
    let mut seen = HashSet::new();
    if let Some(dup) = names.iter().find(|n| !n.is_empty() && !seen.insert(n.as_str())) {
        bail!("CSV header names {dup:?} twice");
    }
    let (Some(username_col), Some(password_col)) = (column("username"), column("password")) else {
        bail!("CSV header must name at least username and password (got: {})", names.join(","));
    };
    let columns = CsvColumns {
        username: username_col,
        password: password_col,
        email: column("email"),
        is_active: column("is_active"),
        is_staff: column("is_staff"),
        is_superuser: column("is_superuser"),
        groups: column("groups"),
        date_joined: column("date_joined"),
        count: names.len(),
    };
    Ok(records
        .filter(|(_, record)| !matches!(record, Ok(fields) if fields.iter().all(|f| f.trim().is_empty())))
        .map(|(line, record)| csv_row(format!("line {line}"), record, &columns))
        .collect())
}

struct CsvColumns {
    username: usize,
    password: usize,
    email: Option<usize>,
    is_active: Option<usize>,
    is_staff: Option<usize>,
    is_superuser: Option<usize>,
    groups: Option<usize>,
    date_joined: Option<usize>,
    count: usize,
}

fn csv_row(source: String, record: Result<Vec<String>, String>, columns: &CsvColumns) -> ParsedRow {
    let fields = record.map_err(|message| RowError { source: source.clone(), username: None, message })?;
    if fields.len() != columns.count {
        let message = format!("{} fields where the header has {}", fields.len(), columns.count);
        return Err(RowError { source, username: None, message });
    }
    let username = fields[columns.username].trim().to_owned();
    let fail = |message: String| RowError { source: source.clone(), username: Some(username.clone()), message };
    let get = |col: Option<usize>| col.map(|c| fields[c].trim()).unwrap_or("");
    let flag = |field: &str, col: Option<usize>, default: bool| match get(col).to_ascii_lowercase().as_str() {
        "" => Ok(default),
        "true" | "t" | "1" | "yes" | "y" => Ok(true),
        "false" | "f" | "0" | "no" | "n" => Ok(false),
        _ => Err(fail(format!("{field}: must be true or false"))),
    };
    let is_active = flag("is_active", columns.is_active, true)?;
    let is_staff = flag("is_staff", columns.is_staff, false)?;
    let is_superuser = flag("is_superuser", columns.is_superuser, false)?;
    let groups = get(columns.groups)
        .split(CSV_GROUP_SEPARATOR)
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(|g| GroupRef::Name(g.to_owned()))
        .collect();
    let date_joined = match get(columns.date_joined) {
        "" => None,
        text => Some(parse_timestamp(text).ok_or_else(|| fail("date_joined: not a timestamp".into()))?),
    };
    Ok(ImportRow {
        username: username.clone(),
        email: get(columns.email).to_owned(),
        // Hashes have no surrounding spaces; a CSV editor may have added some.
        password: fields[columns.password].trim().to_owned(),
        is_active,
        is_staff,
        is_superuser,
        groups,
        date_joined,
        source,
    })
}

/// Splits CSV text into records, each with the line it starts on. An
/// unterminated quote makes the last record an error.
fn csv_records(text: &str) -> Vec<(usize, Result<Vec<String>, String>)> {
    let mut records = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    while chars.peek().is_some() {
        let start = line;
        let mut fields = Vec::new();
        let mut field = String::new();
        let mut quoted = false;
        let mut at_field_start = true;
        let mut error = None;
        loop {
            let Some(c) = chars.next() else {
                if quoted {
                    error = Some("unterminated quoted field (it runs to the end of the file)".to_owned());
                }
                break;
            };
            if c == '\n' {
                line += 1;
            }
            if quoted {
                match c {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    '"' => quoted = false,
                    _ => field.push(c),
                }
                continue;
            }
            match c {
                '"' if at_field_start => {
                    quoted = true;
                    at_field_start = false;
                }
                ',' => {
                    fields.push(std::mem::take(&mut field));
                    at_field_start = true;
                }
                '\r' if chars.peek() == Some(&'\n') => {}
                '\n' => break,
                _ => {
                    field.push(c);
                    at_field_start = false;
                }
            }
        }
        fields.push(field);
        records.push((start, error.map_or(Ok(fields), Err)));
    }
    records
}

// ------------------------------------------------------------- mapping ----

/// `--group-role GROUP=ROLE` mappings. GROUP is a Django group name (or id,
/// for dumps without names); an empty ROLE drops the group silently.
#[derive(Debug, Clone, Default)]
pub struct GroupRoles(HashMap<String, Option<String>>);

impl GroupRoles {
    pub fn parse(specs: &[String]) -> anyhow::Result<GroupRoles> {
        let mut map = HashMap::new();
        for spec in specs {
            // Role names cannot hold `=`; group names can.
            let Some((group, role)) = spec.rsplit_once('=') else {
                bail!("--group-role {spec:?}: expected GROUP=ROLE");
            };
            let role = role.trim();
            if group.is_empty() {
                bail!("--group-role {spec:?}: the group name is empty");
            }
            if !role.is_empty() {
                check_roles(&[role.to_owned()]).map_err(|e| anyhow!("--group-role {spec:?}: {}", e.message))?;
            }
            if map.insert(group.to_owned(), (!role.is_empty()).then(|| role.to_owned())).is_some() {
                bail!("--group-role maps {group:?} twice");
            }
        }
        Ok(GroupRoles(map))
    }

    /// The role a group gives, or the warning for a group dropped.
    fn role_for(&self, group: &GroupRef) -> Result<Option<String>, String> {
        let key = match group {
            GroupRef::Name(name) => name.clone(),
            GroupRef::Id(id) => id.to_string(),
        };
        if let Some(mapped) = self.0.get(&key) {
            return Ok(mapped.clone());
        }
        match group {
            GroupRef::Name(name) => {
                let role = name.to_lowercase();
                match check_roles(std::slice::from_ref(&role)) {
                    Ok(_) => Ok(Some(role)),
                    Err(_) => Err(format!(
                        "group {name:?} dropped: not a valid role name (map it with --group-role {:?})",
                        format!("{name}=ROLE")
                    )),
                }
            }
            GroupRef::Id(id) => Err(format!(
                "group #{id} dropped: the file does not name it (dump auth.group too, use --natural-foreign, \
                 or map it with --group-role {id}=ROLE)"
            )),
        }
    }
}

// -------------------------------------------------------------- import ----

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
    let written = conn.transaction(|conn| match model::find_by_username_key(conn, &key)? {
        Some(existing) => Ok(Err(existing.username)),
        None => model::insert(conn, &new).map(Ok),
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

/// Why a stored Django value cannot be verified; names the scheme only.
fn unusable_reason(stored: &str) -> String {
    let why = match password::scheme_name(stored) {
        "unusable" => "Django marks it unusable".to_owned(),
        "empty" => "it is empty".to_owned(),
        "unknown" => "it is not a recognised hash".to_owned(),
        scheme @ ("bcrypt_sha256" | "bcrypt" | "pbkdf2_sha256" | "pbkdf2_sha1" | "argon2") => {
            format!("its {scheme} hash is malformed or over signet's work-factor limits")
        }
        scheme => format!("signet does not verify {scheme} hashes"),
    };
    format!("password unusable ({why}): the user must be given a new one")
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "pbkdf2_sha256$1000$d0LbZu0yf6USg9fzJiasCZ$KZ7j2TXDRjBRNKwtT6QO9aohRBchbkwCqIpTSMsSCvE=";

    fn ok(rows: &[ParsedRow]) -> Vec<&ImportRow> {
        rows.iter().map(|r| r.as_ref().expect("row parses")).collect()
    }

    #[test]
    fn dumpdata_with_natural_keys_and_with_ids_read_alike() {
        let natural = parse(include_str!("../../tests/fixtures/django_users.json"), Format::Json).expect("json");
        let ids = parse(include_str!("../../tests/fixtures/django_users_ids.json"), Format::Json).expect("json");
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
        let csv = parse(include_str!("../../tests/fixtures/django_users.csv"), Format::Csv).expect("csv");
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
    fn json_bad_records_are_row_errors_that_never_echo_values() {
        let text = format!(
            r#"[
              {{"model": "auth.user", "pk": 1, "fields": {{"username": "ok", "password": "{HASH}", "groups": [7]}}}},
              {{"model": "auth.user", "pk": 2, "fields": {{"username": "nopass"}}}},
              {{"model": "auth.user", "pk": 3, "fields": {{"username": "typed", "password": "{HASH}", "is_staff": "s3cret-flag"}}}},
              {{"model": "auth.user", "pk": 4, "fields": {{"username": "grp", "password": "{HASH}", "groups": [{{"x": 1}}]}}}},
              {{"model": "auth.user", "pk": 5, "fields": {{"username": 42, "password": "hunter2-plaintext"}}}},
              {{"model": "auth.permission", "pk": 1, "fields": {{"name": "x"}}}},
              "junk"
            ]"#
        );
        let rows = parse_json(&text).expect("json");
        assert_eq!(rows.len(), 6, "the permission record is ignored");
        assert_eq!(rows[0].as_ref().expect("ok").groups, vec![GroupRef::Id(7)]);
        let errors: Vec<&RowError> = rows[1..].iter().map(|r| r.as_ref().expect_err("bad row")).collect();
        assert_eq!(errors[0].message, "password: missing or not a string");
        assert_eq!(errors[1].message, "is_staff: must be true or false");
        assert_eq!(errors[2].message, "groups: expected group ids or names");
        assert_eq!(errors[3].message, "username: missing or not a string");
        assert_eq!(errors[4].source, "record 7");
        for e in errors {
            assert!(!e.message.contains("s3cret") && !e.message.contains("hunter2"));
        }
        assert!(parse_json("{\"model\": \"auth.user\"}").is_err());
        assert!(parse_json("[{").is_err());
        assert!(!format!("{:?}", rows[0]).contains(HASH));
    }

    #[test]
    fn csv_quotes_defaults_and_bad_lines() {
        let text = format!(
            "\u{feff}Username,password,is_active,groups,extra\r\n\
             alice,{HASH},t,\"Support Team|billing\",x\r\n\
             \r\n\
             \"bo,b\",\"{HASH}\",,\"a \"\"quoted\"\" group\",\"multi\nline\"\n\
             carol,{HASH},maybe,,\n\
             dave,{HASH}\n\
             erin,\"{HASH}"
        );
        let rows = parse(&text, Format::Csv).expect("csv");
        assert_eq!(rows.len(), 5);
        let alice = rows[0].as_ref().expect("alice");
        assert_eq!(alice.source, "line 2");
        assert!(alice.is_active && !alice.is_staff && !alice.is_superuser);
        assert_eq!(alice.groups, vec![GroupRef::Name("Support Team".into()), GroupRef::Name("billing".into())]);
        let bob = rows[1].as_ref().expect("bob");
        assert_eq!((bob.username.as_str(), bob.source.as_str(), bob.is_active), ("bo,b", "line 4", true));
        assert_eq!(bob.groups, vec![GroupRef::Name("a \"quoted\" group".into())]);
        assert_eq!(rows[2].as_ref().expect_err("carol").message, "is_active: must be true or false");
        assert_eq!(rows[3].as_ref().expect_err("dave").message, "2 fields where the header has 5");
        assert_eq!(rows[3].as_ref().expect_err("dave").source, "line 7");
        assert!(rows[4].as_ref().expect_err("erin").message.contains("unterminated"));

        assert!(parse_csv("").is_err());
        assert!(parse_csv("username,email\nx,y\n").is_err(), "no password column");
        assert!(parse_csv("username,password,username\n").is_err());
    }

    #[test]
    fn group_role_mappings() {
        let specs = ["Support Team=support".to_owned(), "a=b=c".to_owned(), "Legacy=".to_owned(), "7=ops".to_owned()];
        let map = GroupRoles::parse(&specs).expect("mappings");
        let name = |n: &str| GroupRef::Name(n.into());
        assert_eq!(map.role_for(&name("Support Team")), Ok(Some("support".into())));
        assert_eq!(map.role_for(&name("a=b")), Ok(Some("c".into())));
        assert_eq!(map.role_for(&name("Legacy")), Ok(None));
        assert_eq!(map.role_for(&GroupRef::Id(7)), Ok(Some("ops".into())));
        assert_eq!(map.role_for(&name("Editors")), Ok(Some("editors".into())));
        assert!(map.role_for(&name("Sales Team")).expect_err("dropped").contains("--group-role"));
        assert!(map.role_for(&GroupRef::Id(8)).is_err());
        assert!(GroupRoles::parse(&["x=Admin".into()]).is_err());
        assert!(GroupRoles::parse(&["noequals".into()]).is_err());
        assert!(GroupRoles::parse(&["=role".into()]).is_err());
        assert!(GroupRoles::parse(&["x=a".into(), "x=b".into()]).is_err());
    }

    #[test]
    fn unusable_reasons_name_the_scheme_only() {
        assert!(unusable_reason("!abc").contains("Django marks it unusable"));
        assert!(unusable_reason("md5$salt$abc").contains("does not verify md5"));
        assert!(unusable_reason("pbkdf2_sha256$0$salt$abc").contains("malformed"));
        let plaintext = unusable_reason("hunter2$secret");
        assert!(plaintext.contains("not a recognised hash") && !plaintext.contains("hunter2"), "{plaintext}");
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
