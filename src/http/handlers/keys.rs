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

/// Metadata shared by both discovery documents (RFC 8414). The token endpoint
/// is the OAuth one (client credentials, refresh, token exchange); signet's
/// first-party password login stays `POST /v1/auth/login` (JSON), named in
/// `signet_login_endpoint` and documented in the README.
fn metadata(state: &AppState) -> serde_json::Value {
    let issuer = &state.settings.tokens.issuer;
    let algorithms = state.keys.algorithms();
    let client_auth = ["client_secret_basic", "client_secret_post"];
    json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "token_endpoint": format!("{issuer}/oauth/token"),
        "introspection_endpoint": format!("{issuer}/oauth/introspect"),
        "revocation_endpoint": format!("{issuer}/oauth/revoke"),
        "signet_login_endpoint": format!("{issuer}/v1/auth/login"),
        "grant_types_supported": ["client_credentials", "refresh_token", crate::oauth::TOKEN_EXCHANGE_GRANT],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": client_auth,
        "introspection_endpoint_auth_methods_supported": client_auth,
        // The public client (`tokens.client_id`) revokes with its client_id alone.
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "id_token_signing_alg_values_supported": algorithms,
        "subject_types_supported": ["public"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id", "sid", "roles", "preferred_username", "scope", "act", "status"],
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
