use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use signet_verify::actix::Authenticated;

use super::model;
use super::service::{self, DEFAULT_ROLE};
use crate::error::ApiError;
use crate::http::caller::Caller;
use crate::http::rate_limit::Endpoint;
use crate::sessions::model::revoke_user_sessions;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct RegisterRequest {
    username: String,
    password: String,
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
    let policy = state.policy;
    let hasher = state.hasher;
    let (registration, password) = state
        .blocking(move || {
            service::check_registration(&policy, &username, email.as_deref(), &[DEFAULT_ROLE.to_owned()], &password)
                .map(|registration| (registration, password))
        })
        .await??;

    // Spare the bcrypt work when the name is plainly taken; the unique index
    // still settles a race.
    let name = registration.username.clone();
    if state.db(move |conn| service::username_exists(conn, &name)).await? {
        return Err(ApiError::UsernameTaken);
    }
    let hash = state.blocking(move || hasher.hash(&password)).await?.map_err(ApiError::internal)?;
    let now = state.clock.now_db();
    let user = state.db(move |conn| service::insert_user(conn, &registration, &hash, now)).await?;
    log::info!("registered user {}", user.id);
    Ok(HttpResponse::Created().json(user.view()))
}

/// GET /v1/auth/me: the caller's account (Bearer JWT or API token).
pub async fn me(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let id = caller.user_id;
    let user = state.db(move |conn| Ok(model::find(conn, &id)?)).await?.ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok().json(user.view()))
}

#[derive(Deserialize)]
pub struct ChangePassword {
    current_password: String,
    new_password: String,
}

/// POST /v1/auth/password: proves the current password, sets a new one under
/// the policy, and revokes every other session (the caller's stays).
pub async fn change_password(
    state: web::Data<AppState>,
    auth: Authenticated,
    body: web::Json<ChangePassword>,
) -> Result<HttpResponse, ApiError> {
    let Authenticated(claims) = auth;
    let ChangePassword { current_password, new_password } = body.into_inner();
    let id = claims.sub.clone();
    let user = state.db(move |conn| Ok(model::find(conn, &id)?)).await?.ok_or(ApiError::NotFound)?;

    let (hasher, policy) = (state.hasher, state.policy);
    let (old_hash, username, email) = (user.password_hash.clone(), user.username.clone(), user.email.clone());
    let new_hash = state
        .blocking(move || {
            if !hasher.verify(&current_password, &old_hash).matches {
                return Err(ApiError::InvalidCredentials);
            }
            policy.check(&new_password, &username, email.as_deref()).map_err(|mut errors| {
                for e in &mut errors {
                    e.field = "new_password";
                }
                ApiError::WeakPassword(errors)
            })?;
            hasher.hash(&new_password).map_err(ApiError::internal)
        })
        .await??;

    let now = state.clock.now_db();
    state
        .db(move |conn| {
            use diesel::Connection;
            conn.transaction(|conn| {
                // Only if nobody changed it meanwhile: the proof was for `old_hash`.
                if model::upgrade_password_hash(conn, &user.id, &user.password_hash, &new_hash)? == 0 {
                    return Err(ApiError::InvalidCredentials);
                }
                model::touch(conn, &user.id, now)?;
                revoke_user_sessions(conn, &user.id, Some(&claims.sid), now, "password_changed")?;
                Ok(())
            })
        })
        .await?;
    log::info!("user {} changed their password; other sessions revoked", claims.sub);
    Ok(HttpResponse::NoContent().finish())
}
