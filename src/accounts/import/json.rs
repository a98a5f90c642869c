//! `manage.py dumpdata` JSON.

use std::collections::HashMap;

use anyhow::{anyhow, bail};
use serde_json::Value;

use super::{parse_timestamp, GroupRef, ImportRow, ParsedRow, RowError};

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
#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "pbkdf2_sha256$1000$d0LbZu0yf6USg9fzJiasCZ$KZ7j2TXDRjBRNKwtT6QO9aohRBchbkwCqIpTSMsSCvE=";

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
}
