//! Compatibility routes for teams coming from Django REST Framework: DRF's
//! `obtain_auth_token` and djangorestframework-simplejwt's token views, with
//! their wire formats (not problem documents) so existing clients work
//! unchanged. Behind `compat.drf` and `compat.simplejwt`; the flows and the
//! tokens underneath are signet's own.

pub mod drf;
pub mod simplejwt;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest};
use serde_json::{json, Map, Value};

use crate::error::ApiError;
use crate::http::body::{content_type_essence, describe_json_error, read_body};

/// DRF's default parsers: a JSON object (`application/json`) or a URL-encoded
/// form, as string fields; an empty body is no fields. Returns DRF's status
/// and body when the body is none of these: 415 for another media type (DRF
/// quotes the Content-Type as sent; signet does not parse multipart, see the
/// README), 400 for a body that does not parse.
pub async fn read_fields(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<Map<String, Value>, (StatusCode, Value)> {
    let bad = |body: Value| (StatusCode::BAD_REQUEST, body);
    let body = read_body(payload, limit).await.map_err(|err| match err {
        ApiError::PayloadTooLarge => bad(json!({"detail": "Request body too large."})),
        _ => bad(json!({"detail": "Malformed request."})),
    })?;
    if body.is_empty() {
        return Ok(Map::new());
    }
    match content_type_essence(req).as_str() {
        "application/x-www-form-urlencoded" => {
            let pairs: Vec<(String, String)> =
                serde_urlencoded::from_bytes(&body).map_err(|_| bad(json!({"detail": "Malformed request."})))?;
            Ok(pairs.into_iter().map(|(k, v)| (k, Value::String(v))).collect())
        }
        "application/json" => match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(other) => Err(bad(json!({"non_field_errors": [format!(
                "Invalid data. Expected a dictionary, but got {}.",
                python_type_name(&other)
            )]}))),
            Err(err) => Err(bad(json!({"detail": format!("JSON parse error - {}", describe_json_error(&err))}))),
        },
        _ => {
            let sent = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
            Err((
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                json!({"detail": format!("Unsupported media type \"{sent}\" in request.")}),
            ))
        }
    }
}

/// The Python type name DRF puts in "Expected a dictionary, but got ...".
fn python_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
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
