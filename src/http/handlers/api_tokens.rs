//! `/v1/auth/api-tokens`, `/v1/auth/token-exchange` and the admin's
//! `/v1/admin/users/{id}/api-tokens`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::api_tokens::model::ApiToken;
use crate::api_tokens::service::{self, CreatedApiToken};
use crate::audit::Actor;
use crate::error::ApiError;
use crate::http::caller::{BearerCaller, Caller, RequireAdmin, Via};
use crate::http::response::no_store;
use crate::http::state::AppState;

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
fn created(created: CreatedApiToken) -> HttpResponse {
    let mut body = serde_json::to_value(created.token.view()).unwrap_or_default();
    body["token"] = json!(created.secret.expose_secret());
    no_store(StatusCode::CREATED).json(body)
}

async fn create(state: &AppState, actor: Actor, user_id: String, body: CreateToken) -> Result<HttpResponse, ApiError> {
    service::check_request(&body.name, body.expires_in_days)?;
    let (keys, now) = (state.keys.clone(), state.clock.now_db());
    let token = state
        .db(move |conn| service::create(conn, keys.master(), &actor, &user_id, &body.name, body.expires_in_days, now))
        .await?;
    log::info!("API token {} created for user {}", token.token.id, token.token.user_id);
    Ok(created(token))
}

async fn list(state: &AppState, user_id: String) -> Result<HttpResponse, ApiError> {
    let now = state.clock.now_db();
    let tokens = state.db(move |conn| service::live_for_user(conn, &user_id, now)).await?;
    let views: Vec<_> = tokens.iter().map(ApiToken::view).collect();
    Ok(HttpResponse::Ok().json(json!({ "api_tokens": views })))
}

async fn revoke(state: &AppState, actor: Actor, user_id: String, id: String) -> Result<HttpResponse, ApiError> {
    let now = state.clock.now_db();
    state.db(move |conn| service::revoke(conn, &actor, &user_id, &id, now)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// POST /v1/auth/api-tokens: a token for oneself. Needs a password login
/// (not an API token nor its exchanged JWT), so a leaked API token cannot
/// mint more tokens that outlive its revocation.
pub async fn create_own(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: BearerCaller,
    body: web::Json<CreateToken>,
) -> Result<HttpResponse, ApiError> {
    caller.require_password_login()?;
    let actor = state.actor(&req, Some(&caller.user_id));
    create(&state, actor, caller.user_id.clone(), body.into_inner()).await
}

/// GET /v1/auth/api-tokens (Bearer or Token).
pub async fn list_own(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    list(&state, caller.user_id).await
}

/// DELETE /v1/auth/api-tokens/{id} (Bearer or Token): only one's own.
pub async fn revoke_own(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let actor = state.actor(&req, Some(&caller.user_id));
    revoke(&state, actor, caller.user_id, id.into_inner().to_string()).await
}

/// POST /v1/admin/users/{id}/api-tokens
pub async fn create_for_user(
    state: web::Data<AppState>,
    req: HttpRequest,
    admin: RequireAdmin,
    id: web::Path<Uuid>,
    body: web::Json<CreateToken>,
) -> Result<HttpResponse, ApiError> {
    admin.0.require_password_login()?;
    let actor = state.actor(&req, Some(&admin.0.user_id));
    create(&state, actor, id.into_inner().to_string(), body.into_inner()).await
}

/// GET /v1/admin/users/{id}/api-tokens
pub async fn list_for_user(
    state: web::Data<AppState>,
    _admin: RequireAdmin,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    list(&state, id.into_inner().to_string()).await
}

/// DELETE /v1/admin/users/{id}/api-tokens/{token_id}
pub async fn revoke_for_user(
    state: web::Data<AppState>,
    req: HttpRequest,
    admin: RequireAdmin,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (user_id, token_id) = path.into_inner();
    let actor = state.actor(&req, Some(&admin.0.user_id));
    revoke(&state, actor, user_id.to_string(), token_id.to_string()).await
}

/// POST /v1/auth/token-exchange: `Authorization: Token` in, a short-lived
/// access JWT (current roles) out, so resource servers only ever verify JWTs.
pub async fn exchange(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let Via::Token { token_id } = caller.via else {
        return Err(ApiError::MalformedRequest("token-exchange takes Authorization: Token <api token>".into()));
    };
    if let Some(limits) = &state.rate_limits {
        limits.check_token_exchange(&token_id)?;
    }
    let (settings, now) = (state.settings.clone(), state.clock.now_db());
    let signer = state.keys.signer(now)?;
    let user_id = caller.user_id;
    let exchanged = state
        .db(move |conn| {
            service::exchange(conn, &settings.tokens, &settings.revocation, &signer, &user_id, &token_id, now)
        })
        .await?;
    Ok(no_store(StatusCode::OK).json(exchanged))
}
