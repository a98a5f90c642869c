//! `GET /v1/admin/audit`: the audit trail, newest first, a page at a time.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use crate::audit::service::{self, Query};
use crate::error::ApiError;
use crate::http::caller::RequireAdmin;
use crate::http::state::AppState;

/// The raw query; [`Query::parse`] checks it (400 `malformed_request`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    #[serde(rename = "type")]
    kind: Option<String>,
    user_id: Option<String>,
    limit: Option<String>,
    before: Option<String>,
}

/// GET /v1/admin/audit?type=&user_id=&limit=&before=
pub async fn list(
    state: web::Data<AppState>,
    _admin: RequireAdmin,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let AuditQuery { kind, user_id, limit, before } = query.into_inner();
    let query = Query::parse(kind.as_deref(), user_id.as_deref(), limit.as_deref(), before.as_deref())?;
    let page = state.db(move |conn| service::list(conn, &query)).await?;
    Ok(HttpResponse::Ok().json(page))
}
