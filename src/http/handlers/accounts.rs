//! `/v1/auth/register`, `/v1/auth/me`, `/v1/auth/password`.

use actix_web::{web, HttpRequest, HttpResponse};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::accounts::service;
use crate::error::ApiError;
use crate::http::caller::{BearerCaller, Caller};
use crate::http::flows::{self, Account};
use crate::http::rate_limit::Endpoint;
use crate::http::state::AppState;
use crate::roles;
use crate::sessions::account_changes;

#[derive(Deserialize)]
pub struct RegisterRequest {
    username: String,
    password: SecretString,
    #[serde(default)]
    email: Option<String>,
}

/// POST /v1/auth/register.
pub async fn register(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<RegisterRequest>,
) -> Result<HttpResponse, ApiError> {
    state.rate_limit(Endpoint::Register, &req)?;
    if !state.settings.registration.open {
        return Err(ApiError::RegistrationClosed);
    }
    let RegisterRequest { username, password, email } = body.into_inner();
    let (policy, hasher) = (state.policy, state.hasher);
    let roles = [roles::USER.to_owned()];
    let (registration, password) = state
        .blocking(move || {
            service::check_registration(&policy, &username, email.as_deref(), &roles, password.expose_secret())
                .map(|registration| (registration, password))
        })
        .await??;

    // Spare the bcrypt work when the name is plainly taken; the unique index
    // still settles a race.
    let name = registration.username.clone();
    if state.db(move |conn| service::username_exists(conn, &name)).await? {
        return Err(ApiError::UsernameTaken);
    }
    let slot = state.hash_pool.reserve(&req)?;
    let hash =
        state.hash_pool.run(slot, move || hasher.hash(password.expose_secret())).await?.map_err(ApiError::internal)?;
    let now = state.clock.now_db();
    let actor = state.actor(&req, None);
    let user = state.db(move |conn| service::insert_user(conn, &actor, &registration, &hash, now)).await?;
    log::info!("registered user {}", user.id);
    Ok(HttpResponse::Created().json(user.view()))
}

/// GET /v1/auth/me: the caller's account (Bearer JWT or API token).
pub async fn me(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    // Authenticating read the user's current row already (one query).
    let user = match caller.account {
        Some(user) => *user,
        None => state.db(move |conn| service::get(conn, &caller.user_id)).await?,
    };
    Ok(HttpResponse::Ok().json(user.view()))
}

#[derive(Deserialize)]
pub struct ChangePassword {
    current_password: SecretString,
    new_password: SecretString,
}

/// POST /v1/auth/password: proves the current password (the login's
/// throttled check: per-IP budget and per-account lockout), sets a new one
/// under the policy, and revokes every other session and the user's API
/// tokens (the caller's session stays).
pub async fn change_password(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: BearerCaller,
    body: web::Json<ChangePassword>,
) -> Result<HttpResponse, ApiError> {
    caller.require_password_login()?;
    let ChangePassword { current_password, new_password } = body.into_inner();
    let user = flows::prove_password(&state, &req, Account::Id(caller.user_id.clone()), current_password).await?;
    let (hasher, policy, checked) = (state.hasher, state.policy, user.clone());
    let slot = state.hash_pool.reserve(&req)?;
    let new_hash = state
        .hash_pool
        .run(slot, move || service::new_password_hash(&hasher, &policy, &checked, new_password.expose_secret()))
        .await??;
    let (now, keep) = (state.clock.now_db(), caller.claims.sid.clone());
    let actor = state.actor(&req, Some(&caller.user_id));
    state.db(move |conn| account_changes::store_new_password(conn, &actor, &user, &new_hash, Some(&keep), now)).await?;
    log::info!("user {} changed their password; other sessions revoked", caller.user_id);
    Ok(HttpResponse::NoContent().finish())
}
