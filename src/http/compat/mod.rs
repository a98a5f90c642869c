//! Compatibility routes for teams coming from Django REST Framework: DRF's
//! `obtain_auth_token` and djangorestframework-simplejwt's token views, with
//! their wire formats (not problem documents) so existing clients work
//! unchanged. Behind `compat.drf` and `compat.simplejwt`; the flows and the
//! tokens underneath are signet's own.

pub mod drf;
pub mod simplejwt;

use actix_web::{web, HttpRequest};
use serde_json::{json, Map, Value};

use crate::error::ApiError;
use crate::http::body::{content_type_essence, describe_json_error, read_body};

/// DRF's parsers: a JSON object or a URL-encoded form, as string fields.
/// Returns DRF's 400 body when the body is neither.
pub async fn read_fields(req: &HttpRequest, payload: web::Payload, limit: usize) -> Result<Map<String, Value>, Value> {
    let body = read_body(payload, limit).await.map_err(|err| match err {
        ApiError::PayloadTooLarge => json!({"detail": "Request body too large."}),
        _ => json!({"detail": "Malformed request."}),
    })?;
    if body.is_empty() {
        return Ok(Map::new());
    }
    if content_type_essence(req) == "application/x-www-form-urlencoded" {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_bytes(&body).map_err(|_| json!({"detail": "Malformed request."}))?;
        return Ok(pairs.into_iter().map(|(k, v)| (k, Value::String(v))).collect());
    }
    match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(json!({"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]})),
        Err(err) => Err(json!({"detail": format!("JSON parse error - {}", describe_json_error(&err))})),
    }
}

/// DRF's field validation: each required field present, a string, not blank.
pub fn required_strings(fields: &Map<String, Value>, names: &[&str]) -> Result<Vec<String>, Value> {
    let mut errors = Map::new();
    let mut values = Vec::new();
    for name in names {
        match fields.get(*name) {
            None | Some(Value::Null) => {
                errors.insert((*name).to_owned(), json!(["This field is required."]));
            }
            Some(Value::String(s)) if s.is_empty() => {
                errors.insert((*name).to_owned(), json!(["This field may not be blank."]));
            }
            Some(Value::String(s)) => values.push(s.clone()),
            Some(Value::Number(n)) => values.push(n.to_string()),
            Some(_) => {
                errors.insert((*name).to_owned(), json!(["Not a valid string."]));
            }
        }
    }
    if errors.is_empty() {
        Ok(values)
    } else {
        Err(Value::Object(errors))
    }
}
