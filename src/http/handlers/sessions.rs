//! `/v1/auth/login`, `/refresh`, `/logout`, `/logout-all`, `/sessions`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::error::{ApiError, FieldError};
use crate::http::body::optional_json;
use crate::http::caller::BearerCaller;
use crate::http::response::no_store;
use crate::http::state::AppState;
use crate::http::{cookie, csrf, flows};
use crate::sessions::service;
use crate::tokens::TokenPair;

#[derive(Deserialize)]
pub struct LoginRequest {
    username: String,
    password: SecretString,
    #[serde(default)]
    token_delivery: Option<String>,
}

/// POST /v1/auth/login. Unknown user and wrong password cost the same bcrypt
/// time and get the same answer; a disabled account is told so only after
/// the right password.
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let LoginRequest { username, password, token_delivery } = body.into_inner();
    let delivery = match token_delivery.as_deref() {
        None | Some("body") => Delivery::Body,
        Some("cookie") => Delivery::Cookie,
        Some(_) => {
            return Err(ApiError::ValidationFailed(vec![FieldError::new(
                "token_delivery",
                "must be \"body\" or \"cookie\"",
            )]))
        }
    };

    let user = flows::check_password(&state, &req, &username, password).await?;
    let minted = flows::start_session(&state, &req, user).await?;
    Ok(token_response(minted.pair, delivery, &state))
}

/// Where the refresh token travels: in the JSON body, or only in the
/// HttpOnly cookie (SPA cookie mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    Body,
    Cookie,
}

#[derive(Deserialize, Default)]
pub struct RefreshRequest {
    #[serde(default)]
    refresh_token: Option<String>,
}

/// The refresh token of a refresh or logout: from the body, else from the
/// cookie, which must then pass the CSRF check.
async fn presented_refresh_token(
    state: &AppState,
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<(String, Delivery), ApiError> {
    let body: RefreshRequest =
        optional_json(req, payload, state.settings.server.body_limit_bytes).await?.unwrap_or_default();
    if let Some(token) = body.refresh_token {
        return Ok((token, Delivery::Body));
    }
    let token = cookie::from_request(req).ok_or(ApiError::InvalidRefreshToken)?;
    csrf::check(req, &state.settings)?;
    Ok((token, Delivery::Cookie))
}

/// POST /v1/auth/refresh: rotation. A cookie-mode refresh sets the rotated cookie.
pub async fn refresh(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (token, delivery) = presented_refresh_token(&state, &req, payload).await?;
    let minted = flows::rotate(&state, &req, &token).await?;
    Ok(token_response(minted.pair, delivery, &state))
}

/// POST /v1/auth/logout: revokes the session of the refresh token, and
/// clears the refresh cookie.
pub async fn logout(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (token, _) = presented_refresh_token(&state, &req, payload).await?;
    flows::end_session(&state, &req, &token).await?;
    Ok(HttpResponse::NoContent().cookie(cookie::removal(state.settings.cookies.same_site)).finish())
}

/// Token responses must not be cached anywhere (RFC 6749 §5.1). In cookie
/// mode the refresh token goes only into the cookie, never into the body.
fn token_response(mut pair: TokenPair, delivery: Delivery, state: &AppState) -> HttpResponse {
    let mut response = no_store(StatusCode::OK);
    if delivery == Delivery::Cookie {
        if let Some(token) = pair.refresh_token.take() {
            response.cookie(cookie::refresh_cookie(token, pair.refresh_expires_in, state.settings.cookies.same_site));
        }
    }
    response.json(pair)
}

/// POST /v1/auth/logout-all: revokes every session of the caller, this one too.
pub async fn logout_all(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: BearerCaller,
) -> Result<HttpResponse, ApiError> {
    let (actor, now) = (state.actor(&req, Some(&caller.user_id)), state.clock.now_db());
    state.db(move |conn| service::end_all_sessions(conn, &actor, now)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// GET /v1/auth/sessions: the caller's live sessions, its own marked `current`.
pub async fn list(state: web::Data<AppState>, caller: BearerCaller) -> Result<HttpResponse, ApiError> {
    let now = state.clock.now_db();
    let sessions = state.db(move |conn| service::list_sessions(conn, &caller.user_id, &caller.claims.sid, now)).await?;
    Ok(HttpResponse::Ok().json(json!({ "sessions": sessions })))
}

/// DELETE /v1/auth/sessions/{id}: only one's own.
pub async fn delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: BearerCaller,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let (id, now) = (id.into_inner().to_string(), state.clock.now_db());
    let actor = state.actor(&req, Some(&caller.user_id));
    state.db(move |conn| service::revoke_own_session(conn, &actor, &id, now)).await?;
    Ok(HttpResponse::NoContent().finish())
}
