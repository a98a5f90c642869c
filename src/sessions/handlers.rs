use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use signet_verify::actix::Authenticated;
use signet_verify::VerifyError;

use super::model::revoke_user_sessions;
use super::cookie;
use super::service::{self, ClientInfo};
use crate::accounts::model as users;
use crate::accounts::rules::username_key;
use crate::accounts::throttle;
use crate::error::{ApiError, FieldError};
use crate::http::rate_limit::Endpoint;
use crate::http::{csrf, optional_json};
use crate::state::{dummy_hash, AppState};
use crate::tokens::{verify_refresh, RefreshClaims, TokenPair};

#[derive(Deserialize)]
pub struct LoginRequest {
    username: String,
    password: String,
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

    state.rate_limit(Endpoint::Login, &req)?;

    // A locked-out name is refused before any password check, whether or not
    // it exists; the right password does not get through either.
    let key = username_key(&username);
    let throttle = state.throttle;
    let now = state.clock.now_db();
    let lookup_key = key.clone();
    let user = state
        .db(move |conn| {
            throttle::check(conn, &throttle, &lookup_key, now)?;
            Ok(users::find_by_username_key(conn, &lookup_key)?)
        })
        .await?;

    let hasher = state.hasher;
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let dummy = state.dummy_hash.clone();
    let (verification, rehash) = state
        .blocking(move || {
            let stored = stored.unwrap_or_else(|| dummy_hash(&dummy, hasher).to_owned());
            let verification = hasher.verify(&password, &stored);
            // Upgrade old schemes and costs while we hold the plain password.
            let rehash = verification.needs_rehash.then(|| hasher.hash(&password).ok()).flatten();
            (verification, rehash.map(|new| (stored, new)))
        })
        .await?;
    let user = match user {
        Some(user) if verification.matches => user,
        _ => {
            // Same work for an unknown name as for a wrong password.
            state.db(move |conn| throttle::record_failure(conn, &throttle, &key, now)).await?;
            return Err(ApiError::InvalidCredentials);
        }
    };
    if user.disabled {
        return Err(ApiError::AccountDisabled);
    }

    let settings = state.settings.clone();
    let signer = state.keys.signer(now)?;
    let client = client_info(&state, &req);
    let minted = state
        .db(move |conn| {
            throttle::record_success(conn, &throttle, &key)?;
            if let Some((old, new)) = rehash {
                users::upgrade_password_hash(conn, &user.id, &old, &new)?;
            }
            service::start_session(conn, &settings.tokens, &signer, &user, client, now)
        })
        .await?;
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
    state.rate_limit(Endpoint::Refresh, &req)?;
    let (token, delivery) = presented_refresh_token(&state, &req, payload).await?;
    let claims = verified_refresh_claims(&state, &token).await?;
    let settings = state.settings.clone();
    let now = state.clock.now_db();
    let signer = state.keys.signer(now)?;
    let minted = state.db(move |conn| service::rotate(conn, &settings.tokens, &signer, &claims, now)).await?;
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
    let claims = verified_refresh_claims(&state, &token).await?;
    let now = state.clock.now_db();
    state.db(move |conn| service::end_session(conn, &claims, now)).await?;
    Ok(HttpResponse::NoContent().cookie(cookie::removal(state.settings.cookies.same_site)).finish())
}

/// Verifies a refresh token's signature and claims. A `kid` this instance
/// does not know yet (another instance just rotated) triggers one reload.
async fn verified_refresh_claims(state: &web::Data<AppState>, token: &str) -> Result<RefreshClaims, ApiError> {
    let issuer = &state.settings.tokens.issuer;
    match verify_refresh(state.verifier(), issuer, token) {
        Ok(claims) => Ok(claims),
        Err(VerifyError::UnknownKid) => {
            let keys = state.keys.clone();
            state.blocking(move || keys.reload_for_unknown_kid()).await?.map_err(ApiError::internal)?;
            verify_refresh(state.verifier(), issuer, token).map_err(|_| ApiError::InvalidRefreshToken)
        }
        Err(_) => Err(ApiError::InvalidRefreshToken),
    }
}

/// Token responses must not be cached anywhere (RFC 6749 §5.1). In cookie
/// mode the refresh token goes only into the cookie, never into the body.
fn token_response(mut pair: TokenPair, delivery: Delivery, state: &AppState) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    response.insert_header((header::CACHE_CONTROL, "no-store")).insert_header((header::PRAGMA, "no-cache"));
    if delivery == Delivery::Cookie {
        if let Some(token) = pair.refresh_token.take() {
            response.cookie(cookie::refresh_cookie(token, pair.refresh_expires_in, state.settings.cookies.same_site));
        }
    }
    response.json(pair)
}

fn client_info(state: &AppState, req: &HttpRequest) -> ClientInfo {
    ClientInfo {
        user_agent: req.headers().get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned),
        ip: state.client_ip(req).map(|ip| ip.to_string()),
    }
}

/// POST /v1/auth/logout-all: revokes every session of the caller, this one too.
pub async fn logout_all(state: web::Data<AppState>, auth: Authenticated) -> Result<HttpResponse, ApiError> {
    let user_id = auth.sub.clone();
    let now = state.clock.now_db();
    state.db(move |conn| Ok(revoke_user_sessions(conn, &user_id, None, now, "logout_all")?)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// GET /v1/auth/sessions: the caller's live sessions, its own marked `current`.
pub async fn list(state: web::Data<AppState>, auth: Authenticated) -> Result<HttpResponse, ApiError> {
    let Authenticated(claims) = auth;
    let now = state.clock.now_db();
    let sessions = state.db(move |conn| service::list_sessions(conn, &claims.sub, &claims.sid, now)).await?;
    Ok(HttpResponse::Ok().json(json!({ "sessions": sessions })))
}

/// DELETE /v1/auth/sessions/{id}: only one's own.
pub async fn delete(
    state: web::Data<AppState>,
    auth: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user_id = auth.sub.clone();
    let id = id.into_inner();
    let now = state.clock.now_db();
    state.db(move |conn| service::revoke_own_session(conn, &user_id, &id, now)).await?;
    Ok(HttpResponse::NoContent().finish())
}
