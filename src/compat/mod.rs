//! Compatibility routes for teams coming from Django REST Framework: DRF's
//! `obtain_auth_token` and djangorestframework-simplejwt's token views, with
//! their wire formats (not problem documents) so existing clients work
//! unchanged. Behind `compat.drf` and `compat.simplejwt`; the flows and the
//! tokens underneath are signet's own.

pub mod drf;
pub mod simplejwt;

use actix_web::http::header;
use actix_web::{web, HttpRequest};
use futures_util::StreamExt;
use serde_json::{json, Map, Value};

/// DRF's parsers: a JSON object or a URL-encoded form, as string fields.
/// Returns DRF's 400 body when the body is neither.
pub async fn read_fields(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<Map<String, Value>, Value> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| json!({"detail": "Malformed request."}))?;
        if body.len() + chunk.len() > limit {
            return Err(json!({"detail": "Request body too large."}));
        }
        body.extend_from_slice(&chunk);
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .unwrap_or_default();
    if body.is_empty() {
        return Ok(Map::new());
    }
    if content_type == "application/x-www-form-urlencoded" {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_bytes(&body).map_err(|_| json!({"detail": "Malformed request."}))?;
        return Ok(pairs.into_iter().map(|(k, v)| (k, Value::String(v))).collect());
    }
    match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(json!({"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]})),
        Err(err) => Err(json!({"detail": format!("JSON parse error - {}", err.classify_message())})),
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

trait ClassifyMessage {
    fn classify_message(&self) -> &'static str;
}

impl ClassifyMessage for serde_json::Error {
    fn classify_message(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Eof => "unexpected end of input",
            serde_json::error::Category::Syntax => "invalid syntax",
            serde_json::error::Category::Data | serde_json::error::Category::Io => "invalid data",
        }
    }
}
