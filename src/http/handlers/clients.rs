//! `/v1/admin/clients`: OAuth clients (service accounts), role `admin`.
//! Creating a client or a new secret mints a credential, so it needs a
//! password login (`require_password_login`), like API tokens.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::clients::model::Client;
use crate::clients::service::{self, NewClient, WithSecret};
use crate::error::ApiError;
use crate::http::caller::RequireAdmin;
use crate::http::response::no_store;
use crate::http::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateClient {
    name: String,
    roles: Vec<String>,
    #[serde(default)]
    audiences: Vec<String>,
}

/// The one kind of response that shows a secret.
fn with_secret(status: StatusCode, created: WithSecret) -> HttpResponse {
    let client = created.client.view();
    no_store(status).json(json!({
        "client_id": client.client_id,
        "client_secret": created.secret.expose_secret(),
        "name": client.name,
        "roles": client.roles,
        "audiences": client.audiences,
        "created_at": client.created_at,
    }))
}

/// POST /v1/admin/clients
pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    admin: RequireAdmin,
    body: web::Json<CreateClient>,
) -> Result<HttpResponse, ApiError> {
    admin.0.require_password_login()?;
    let body = body.into_inner();
    let new = NewClient::parse(&body.name, &body.roles, &body.audiences)?;
    let (keys, now, actor) = (state.keys.clone(), state.clock.now_db(), state.actor(&req, Some(&admin.0.user_id)));
    let created = state.db(move |conn| service::create(conn, keys.master(), &actor, &new, now)).await?;
    log::info!("client {} created by {}", created.client.id, admin.0.user_id);
    Ok(with_secret(StatusCode::CREATED, created))
}

/// GET /v1/admin/clients
pub async fn list(state: web::Data<AppState>, _admin: RequireAdmin) -> Result<HttpResponse, ApiError> {
    let clients = state.db(service::list).await?;
    let views: Vec<_> = clients.iter().map(Client::view).collect();
    Ok(HttpResponse::Ok().json(json!({ "clients": views })))
}

/// DELETE /v1/admin/clients/{client_id}: its tokens' session is revoked.
pub async fn delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    admin: RequireAdmin,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner().to_string();
    let deleted = id.clone();
    let (now, actor) = (state.clock.now_db(), state.actor(&req, Some(&admin.0.user_id)));
    state.db(move |conn| service::delete(conn, &actor, &id, now)).await?;
    log::info!("client {deleted} deleted by {}", admin.0.user_id);
    Ok(HttpResponse::NoContent().finish())
}

/// POST /v1/admin/clients/{client_id}/secret: a new secret; the old one and
/// the tokens it minted stop at once.
pub async fn rotate_secret(
    state: web::Data<AppState>,
    admin: RequireAdmin,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    admin.0.require_password_login()?;
    let (id, keys, now) = (id.into_inner().to_string(), state.keys.clone(), state.clock.now_db());
    let rotated = state.db(move |conn| service::rotate_secret(conn, keys.master(), &id, now)).await?;
    log::info!("client {} secret rotated by {}", rotated.client.id, admin.0.user_id);
    Ok(with_secret(StatusCode::OK, rotated))
}
