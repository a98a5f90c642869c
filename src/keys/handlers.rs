use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::state::AppState;

/// GET /.well-known/jwks.json: public keys only, cacheable.
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    let max_age = state.settings.tokens.jwks_max_age_secs;
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, format!("public, max-age={max_age}")))
        .json(&*state.keys.jwks())
}

/// Metadata shared by both discovery documents. signet's token endpoint is the
/// password login; refresh is `/v1/auth/refresh` (documented in the README).
fn metadata(state: &AppState) -> serde_json::Value {
    let issuer = &state.settings.tokens.issuer;
    let algorithm = state.keys.signer().algorithm;
    json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "token_endpoint": format!("{issuer}/v1/auth/login"),
        "grant_types_supported": ["password", "refresh_token"],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": ["none"],
        "id_token_signing_alg_values_supported": [algorithm],
        "token_endpoint_auth_signing_alg_values_supported": [algorithm],
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
