use actix_web::{web, HttpResponse};
use diesel::Connection;
use serde::{Deserialize, Deserializer, Serialize};
use signet_verify::actix::RequireRole;
use uuid::Uuid;

use crate::accounts::model::{self as users, UserView};
use crate::accounts::rules::{check_email, check_roles};
use crate::error::ApiError;
pub use crate::roles::Admin;
use crate::sessions::model::revoke_user_sessions;
use crate::state::AppState;

const DEFAULT_PAGE: i64 = 50;
const MAX_PAGE: i64 = 200;

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
    _admin: RequireRole<Admin>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    let offset = query.offset.unwrap_or(0);
    if !(1..=MAX_PAGE).contains(&limit) || offset < 0 {
        return Err(ApiError::MalformedRequest(format!("limit must be 1..={MAX_PAGE} and offset at least 0")));
    }
    let (page, total) = state.db(move |conn| Ok(users::list(conn, limit, offset)?)).await?;
    Ok(HttpResponse::Ok().json(UserPage { users: page.iter().map(users::User::view).collect(), total }))
}

/// GET /v1/admin/users/{id}
pub async fn get_user(
    state: web::Data<AppState>,
    _admin: RequireRole<Admin>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner().to_string();
    let user = state.db(move |conn| Ok(users::find(conn, &id)?)).await?.ok_or(ApiError::NotFound)?;
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
    _admin: RequireRole<Admin>,
    id: web::Path<Uuid>,
    body: web::Json<PatchUser>,
) -> Result<HttpResponse, ApiError> {
    let PatchUser { disabled, email } = body.into_inner();
    if let Some(Some(email)) = &email {
        check_email(email).map_err(|e| ApiError::ValidationFailed(vec![e]))?;
    }
    let id = id.into_inner().to_string();
    let now = state.clock.now_db();
    let user = state
        .db(move |conn| {
            conn.transaction(|conn| {
                let user = users::find(conn, &id)?.ok_or(ApiError::NotFound)?;
                if let Some(disabled) = disabled {
                    users::set_disabled(conn, &user.id, disabled, now)?;
                    if disabled {
                        revoke_user_sessions(conn, &user.id, None, now, "user_disabled")?;
                    }
                }
                if let Some(email) = &email {
                    users::set_email(conn, &user.id, email.as_deref(), now)?;
                }
                users::find(conn, &user.id)?.ok_or(ApiError::NotFound)
            })
        })
        .await?;
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
    _admin: RequireRole<Admin>,
    id: web::Path<Uuid>,
    body: web::Json<SetRoles>,
) -> Result<HttpResponse, ApiError> {
    let roles = check_roles(&body.roles).map_err(|e| ApiError::ValidationFailed(vec![e]))?;
    let id = id.into_inner().to_string();
    let now = state.clock.now_db();
    let user = state
        .db(move |conn| {
            if users::set_roles(conn, &id, &roles, now)? == 0 {
                return Err(ApiError::NotFound);
            }
            users::find(conn, &id)?.ok_or(ApiError::NotFound)
        })
        .await?;
    Ok(HttpResponse::Ok().json(user.view()))
}

/// DELETE /v1/admin/users/{id}: its sessions and refresh tokens go with it.
pub async fn delete_user(
    state: web::Data<AppState>,
    _admin: RequireRole<Admin>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner().to_string();
    let deleted = state.db(move |conn| Ok(users::delete(conn, &id)?)).await?;
    if deleted == 0 {
        return Err(ApiError::NotFound);
    }
    Ok(HttpResponse::NoContent().finish())
}
