use actix_web::{web, HttpResponse};
use serde::Deserialize;
use signet_verify::actix::Authenticated;

use super::model;
use super::service::{self, DEFAULT_ROLE};
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct RegisterRequest {
    username: String,
    password: String,
    #[serde(default)]
    email: Option<String>,
}

/// POST /v1/auth/register.
pub async fn register(state: web::Data<AppState>, body: web::Json<RegisterRequest>) -> Result<HttpResponse, ApiError> {
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

/// GET /v1/auth/me: the caller's account.
pub async fn me(state: web::Data<AppState>, auth: Authenticated) -> Result<HttpResponse, ApiError> {
    let id = auth.sub.clone();
    let user = state.db(move |conn| Ok(model::find(conn, &id)?)).await?.ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok().json(user.view()))
}
