//! Request bodies: the limits and problem documents of actix's extractors,
//! and the raw-payload reader of the handlers that accept an empty body or
//! a form (cookie-mode refresh/logout, the DRF routes).

use actix_web::error::{JsonPayloadError, PayloadError, QueryPayloadError};
use actix_web::http::header;
use actix_web::{web, HttpRequest};

use crate::config::Settings;
use crate::error::ApiError;

/// Body and query limits, answered with problem documents.
pub fn extractor_config(
    settings: &Settings,
) -> (web::JsonConfig, web::PayloadConfig, web::QueryConfig, web::PathConfig) {
    let limit = settings.server.body_limit_bytes;
    let json = web::JsonConfig::default().limit(limit).error_handler(|err, _req| json_error(err).into());
    let payload = web::PayloadConfig::default().limit(limit);
    let query = web::QueryConfig::default().error_handler(|err: QueryPayloadError, _req| {
        ApiError::MalformedRequest(format!("invalid query: {err}")).into()
    });
    // Ids in paths are UUIDs; anything else names no resource (and never
    // reaches the database: PostgreSQL text cannot even hold a NUL byte).
    let path = web::PathConfig::default().error_handler(|_, _| ApiError::NotFound.into());
    (json, payload, query, path)
}

fn json_error(err: JsonPayloadError) -> ApiError {
    match err {
        JsonPayloadError::ContentType => ApiError::UnsupportedMediaType,
        JsonPayloadError::Overflow { .. }
        | JsonPayloadError::OverflowKnownLength { .. }
        | JsonPayloadError::Payload(PayloadError::Overflow) => ApiError::PayloadTooLarge,
        JsonPayloadError::Deserialize(err) => ApiError::MalformedRequest(describe_json_error(&err)),
        _ => ApiError::MalformedRequest("The request body could not be read.".into()),
    }
}

/// serde's messages can quote the offending value (a password sent as a
/// number, say); keep only the ones that name a field.
pub fn describe_json_error(err: &serde_json::Error) -> String {
    let message = err.to_string();
    if message.starts_with("missing field") || message.starts_with("unknown field") {
        return format!("Invalid JSON body: {message}.");
    }
    let what = match err.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => "is not valid JSON",
        serde_json::error::Category::Data => "has a field of the wrong type",
        serde_json::error::Category::Io => "could not be read",
    };
    format!("The JSON body {what} (line {}, column {}).", err.line(), err.column())
}

/// Reads a whole request body, refusing more than `limit` bytes (413).
/// For handlers that take the raw `web::Payload` instead of `web::Json`.
pub async fn read_body(mut payload: web::Payload, limit: usize) -> Result<web::BytesMut, ApiError> {
    use futures_util::StreamExt;
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| ApiError::MalformedRequest("The request body could not be read.".into()))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The media type of the body, lower case, without parameters ("" if none).
pub fn content_type_essence(req: &HttpRequest) -> String {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// A JSON body that may be absent (empty): `None` then. Otherwise the same
/// rules and problem documents as `web::Json` (415, 413, 400).
pub async fn optional_json<T: serde::de::DeserializeOwned>(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<Option<T>, ApiError> {
    let body = read_body(payload, limit).await?;
    if body.is_empty() {
        return Ok(None);
    }
    let essence = content_type_essence(req);
    if !(essence == "application/json" || essence.ends_with("+json")) {
        return Err(ApiError::UnsupportedMediaType);
    }
    serde_json::from_slice(&body).map(Some).map_err(|err| ApiError::MalformedRequest(describe_json_error(&err)))
}
