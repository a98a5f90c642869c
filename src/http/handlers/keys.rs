//! JWKS and the discovery documents.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use crate::http::state::AppState;

/// GET /.well-known/jwks.json: public keys only, cacheable, with an ETag.
pub async fn jwks(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let snapshot = state.keys.snapshot();
    let max_age = state.settings.tokens.jwks_max_age_secs;
    let cache_control = format!("public, max-age={max_age}");
    let unchanged = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == snapshot.jwks_etag || t.trim() == "*"));
    if unchanged {
        return HttpResponse::NotModified()
            .insert_header((header::ETAG, snapshot.jwks_etag.clone()))
            .insert_header((header::CACHE_CONTROL, cache_control))
            .finish();
    }
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, cache_control))
        .insert_header((header::ETAG, snapshot.jwks_etag.clone()))
        .json(&*snapshot.jwks)
}

/// Metadata shared by both discovery documents. signet's token endpoint is the
/// password login; refresh is `/v1/auth/refresh` (documented in the README).
fn metadata(state: &AppState) -> serde_json::Value {
    let issuer = &state.settings.tokens.issuer;
    let algorithms = state.keys.algorithms();
    json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "token_endpoint": format!("{issuer}/v1/auth/login"),
        "revocation_endpoint": format!("{issuer}/v1/auth/logout"),
        "grant_types_supported": ["password", "refresh_token"],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": ["none"],
        "id_token_signing_alg_values_supported": algorithms,
        "subject_types_supported": ["public"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id", "sid", "roles", "preferred_username"],
    })
}

/// GET /.well-known/openid-configuration
pub async fn openid_configuration(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(metadata(&state))
}

/// GET /.well-known/oauth-authorization-server (RFC 8414)
pub async fn authorization_server(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(metadata(&state))
}
