//! `POST /api-token-auth/`, as DRF's `obtain_auth_token` answers it. Unlike
//! DRF, which returns the user's one stored token, signet stores only a hash,
//! so every call creates a new API token (named "api-token-auth"); revoke
//! old ones with `DELETE /v1/auth/api-tokens/{id}`.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use secrecy::ExposeSecret;
use serde_json::json;

use super::{read_fields, required_strings};
use crate::api_tokens::service as api_tokens;
use crate::error::ApiError;
use crate::http::flows;
use crate::http::response::no_store;
use crate::http::state::AppState;

const UNABLE: &str = "Unable to log in with provided credentials.";

pub async fn obtain_auth_token(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload) -> HttpResponse {
    if !state.settings.compat.drf {
        return ApiError::NotFound.error_response();
    }
    let fields = match read_fields(&req, payload, state.settings.server.body_limit_bytes).await {
        Ok(fields) => fields,
        Err((status, body)) => return HttpResponse::build(status).json(body),
    };
    let [username, password] = match required_strings(&fields, &["username", "password"]) {
        Ok(values) => <[String; 2]>::try_from(values).unwrap_or_default(),
        Err(body) => return HttpResponse::BadRequest().json(body),
    };
    let user = match flows::check_password(&state, &req, &username, password.into()).await {
        Ok(user) => user,
        Err(ApiError::InvalidCredentials | ApiError::AccountDisabled) => {
            return HttpResponse::build(StatusCode::BAD_REQUEST).json(json!({"non_field_errors": [UNABLE]}))
        }
        Err(ApiError::TooManyRequests { retry_after_secs }) => {
            return HttpResponse::TooManyRequests().insert_header((header::RETRY_AFTER, retry_after_secs)).json(
                json!({"detail": format!("Request was throttled. Expected available in {retry_after_secs} seconds.")}),
            )
        }
        Err(other) => return other.error_response(),
    };
    let (keys, days) = (state.keys.clone(), state.settings.compat.drf_token_days);
    let (actor, now) = (state.actor(&req, Some(&user.id)), state.clock.now_db());
    let created = state
        .db(move |conn| {
            api_tokens::create_at_login(conn, keys.master(), &actor, &user, "api-token-auth", Some(days), now)
        })
        .await;
    match created {
        Ok(created) => no_store(StatusCode::OK).json(json!({"token": created.secret.expose_secret()})),
        Err(err) => err.error_response(),
    }
}
