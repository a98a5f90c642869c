//! `/v1/admin/users...`: the admin API (Bearer with the `admin` role).

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

use crate::accounts::model::UserView;
use crate::accounts::rules::{check_email, check_roles};
use crate::accounts::service::{self, Page};
use crate::error::ApiError;
use crate::http::caller::RequireAdmin;
use crate::http::state::AppState;
use crate::sessions::account_changes::{self, UserChanges};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    limit: Option<i64>,
    offset: Option<i64>,
}

#[derive(Serialize)]
struct UserPage {
    users: Vec<UserView>,
    total: i64,
}

/// GET /v1/admin/users?limit=&offset=
pub async fn list_users(
    state: web::Data<AppState>,
    _admin: RequireAdmin,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = Page::parse(query.limit, query.offset)?;
    let (users, total) = state.db(move |conn| service::list(conn, page)).await?;
    Ok(HttpResponse::Ok().json(UserPage { users: users.iter().map(|u| u.view()).collect(), total }))
}

/// GET /v1/admin/users/{id}
pub async fn get_user(
    state: web::Data<AppState>,
    _admin: RequireAdmin,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner().to_string();
    let user = state.db(move |conn| service::get(conn, &id)).await?;
    Ok(HttpResponse::Ok().json(user.view()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchUser {
    /// Absent: unchanged; `null` is no boolean, so a 400 (as the schema says).
    #[serde(default, deserialize_with = "not_null")]
    disabled: Option<bool>,
    /// Absent: unchanged; `null`: cleared; a string: set.
    #[serde(default, deserialize_with = "present")]
    email: Option<Option<String>>,
}

fn not_null<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    bool::deserialize(d).map(Some)
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// PATCH /v1/admin/users/{id}: disabling revokes all the user's sessions.
pub async fn patch_user(
    state: web::Data<AppState>,
    req: HttpRequest,
    admin: RequireAdmin,
    id: web::Path<Uuid>,
    body: web::Json<PatchUser>,
) -> Result<HttpResponse, ApiError> {
    let PatchUser { disabled, email } = body.into_inner();
    if let Some(Some(email)) = &email {
        check_email(email).map_err(|e| ApiError::ValidationFailed(vec![e]))?;
    }
    let (id, changes, now) = (id.into_inner().to_string(), UserChanges { disabled, email }, state.clock.now_db());
    let actor = state.actor(&req, Some(&admin.0.user_id));
    let user = state.db(move |conn| account_changes::update_user(conn, &actor, &id, &changes, now)).await?;
    Ok(HttpResponse::Ok().json(user.view()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetRoles {
    roles: Vec<String>,
}

/// PUT /v1/admin/users/{id}/roles: takes effect in the user's next access token.
pub async fn set_roles(
    state: web::Data<AppState>,
    req: HttpRequest,
    admin: RequireAdmin,
    id: web::Path<Uuid>,
    body: web::Json<SetRoles>,
) -> Result<HttpResponse, ApiError> {
    let roles = check_roles(&body.roles).map_err(|e| ApiError::ValidationFailed(vec![e]))?;
    let (id, now) = (id.into_inner().to_string(), state.clock.now_db());
    let actor = state.actor(&req, Some(&admin.0.user_id));
    let user = state.db(move |conn| service::set_roles(conn, &actor, &id, &roles, now)).await?;
    Ok(HttpResponse::Ok().json(user.view()))
}

/// DELETE /v1/admin/users/{id}: its sessions and refresh tokens go with it.
pub async fn delete_user(
    state: web::Data<AppState>,
    req: HttpRequest,
    admin: RequireAdmin,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let (id, now) = (id.into_inner().to_string(), state.clock.now_db());
    let actor = state.actor(&req, Some(&admin.0.user_id));
    state.db(move |conn| service::delete(conn, &actor, &id, now)).await?;
    Ok(HttpResponse::NoContent().finish())
}
