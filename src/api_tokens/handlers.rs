use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use signet_verify::actix::{Authenticated, RequireRole};
use uuid::Uuid;

use super::model::{self, ApiToken};
use super::service;
use crate::accounts::model as users;
use crate::admin::handlers::Admin;
use crate::error::ApiError;
use crate::http::caller::{Caller, Via};
use crate::state::AppState;
use crate::tokens::{mint_access, Subject};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    name: String,
    #[serde(default, deserialize_with = "whole_number")]
    expires_in_days: Option<i64>,
}

/// An integer as JSON Schema counts them: `90` and `90.0` alike (openapi.yaml
/// says `type: integer`, and schema validators accept 90.0 as one).
fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    use serde::de::Error;
    match Option::<serde_json::Number>::deserialize(d)? {
        None => Ok(None),
        Some(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Ok(Some(i)),
            // Bounded before the cast, so it is exact; out-of-range days are a 422 later.
            (None, Some(f)) if f.fract() == 0.0 && f.abs() < 1e15 => Ok(Some(f as i64)),
            _ => Err(D::Error::custom("expires_in_days must be a whole number")),
        },
    }
}

/// The one response that ever shows the secret.
fn created(token: ApiToken, secret: String) -> HttpResponse {
    let mut body = serde_json::to_value(token.view()).unwrap_or_default();
    body["token"] = json!(secret);
    HttpResponse::Created()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(body)
}

async fn create(state: &AppState, user_id: String, body: CreateToken) -> Result<HttpResponse, ApiError> {
    service::check_request(&body.name, body.expires_in_days)?;
    let keys = state.keys.clone();
    let now = state.clock.now_db();
    let (token, secret) = state
        .db(move |conn| service::create(conn, keys.master(), &user_id, &body.name, body.expires_in_days, now))
        .await?;
    log::info!("API token {} created for user {}", token.id, token.user_id);
    Ok(created(token, secret))
}

async fn list(state: &AppState, user_id: String) -> Result<HttpResponse, ApiError> {
    let now = state.clock.now_db();
    let tokens = state
        .db(move |conn| {
            users::find(conn, &user_id)?.ok_or(ApiError::NotFound)?;
            Ok(model::live_for_user(conn, &user_id, now)?)
        })
        .await?;
    let views: Vec<_> = tokens.iter().map(ApiToken::view).collect();
    Ok(HttpResponse::Ok().json(json!({ "api_tokens": views })))
}

async fn revoke(state: &AppState, user_id: String, id: String) -> Result<HttpResponse, ApiError> {
    let now = state.clock.now_db();
    state.db(move |conn| service::revoke(conn, &user_id, &id, now)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// POST /v1/auth/api-tokens: a token for oneself. Needs a login (Bearer), so
/// a leaked API token cannot mint more tokens that outlive its revocation.
pub async fn create_own(
    state: web::Data<AppState>,
    auth: Authenticated,
    body: web::Json<CreateToken>,
) -> Result<HttpResponse, ApiError> {
    create(&state, auth.sub.clone(), body.into_inner()).await
}

/// GET /v1/auth/api-tokens (Bearer or Token).
pub async fn list_own(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    list(&state, caller.user_id).await
}

/// DELETE /v1/auth/api-tokens/{id} (Bearer or Token): only one's own.
pub async fn revoke_own(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    revoke(&state, caller.user_id, id.into_inner().to_string()).await
}

/// POST /v1/admin/users/{id}/api-tokens
pub async fn create_for_user(
    state: web::Data<AppState>,
    _admin: RequireRole<Admin>,
    id: web::Path<Uuid>,
    body: web::Json<CreateToken>,
) -> Result<HttpResponse, ApiError> {
    create(&state, id.into_inner().to_string(), body.into_inner()).await
}

/// GET /v1/admin/users/{id}/api-tokens
pub async fn list_for_user(
    state: web::Data<AppState>,
    _admin: RequireRole<Admin>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    list(&state, id.into_inner().to_string()).await
}

/// DELETE /v1/admin/users/{id}/api-tokens/{token_id}
pub async fn revoke_for_user(
    state: web::Data<AppState>,
    _admin: RequireRole<Admin>,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (user_id, token_id) = path.into_inner();
    revoke(&state, user_id.to_string(), token_id.to_string()).await
}

/// POST /v1/auth/token-exchange: `Authorization: Token` in, a short-lived
/// access JWT (current roles) out, so resource servers only ever verify JWTs.
/// Its `sid` is `api-token:<id>`.
pub async fn exchange(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let Via::Token { token_id } = &caller.via else {
        return Err(ApiError::MalformedRequest("token-exchange takes Authorization: Token <api token>".into()));
    };
    let (user_id, id) = (caller.user_id.clone(), token_id.clone());
    let (user, token) = state.db(move |conn| Ok((users::find(conn, &user_id)?, model::find(conn, &id)?))).await?;
    let (user, token) = user.zip(token).ok_or(ApiError::InvalidApiToken)?;
    // The access token never outlives the API token it came from.
    let not_after = token.expires_at.map_or(i64::MAX, |at| at.and_utc().timestamp());
    let now = state.clock.now_db();
    let now_unix = now.and_utc().timestamp();
    let signer = state.keys.signer(now)?;
    let session_id = format!("api-token:{token_id}");
    let subject =
        Subject { user_id: &user.id, username: &user.username, roles: user.role_list(), session_id: &session_id };
    let (access_token, expires_at) =
        mint_access(&state.settings.tokens, &signer, &subject, now_unix, not_after).map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(json!({"access_token": access_token, "token_type": "Bearer", "expires_in": expires_at - now_unix})))
}
