//! djangorestframework-simplejwt's views and wire format: `POST /api/token/`,
//! `/api/token/refresh/`, `/api/token/verify/`, `/api/token/blacklist/`.
//! Answers as simplejwt 5.5 does with `ROTATE_REFRESH_TOKENS` and
//! `BLACKLIST_AFTER_ROTATION` on (tests/contract/differential.py compares them),
//! except where signet is stricter (README, "Deliberate differences"): a reused
//! refresh token revokes its whole session, and blacklisting a refresh token
//! ends its whole session.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

use super::{read_fields, required_strings};
use crate::error::ApiError;
use crate::http::flows;
use crate::http::response::no_store;
use crate::http::state::AppState;
use crate::tokens::{verify_refresh, Minted, RefreshClaims};
use signet_verify::VerifyError;

const NO_ACCOUNT: &str = "No active account found with the given credentials";

/// simplejwt's `detail` for each way a token is refused (`code` is always
/// `token_not_valid`).
#[derive(Clone, Copy)]
enum Refusal {
    /// Not a JWT, a bad signature, a foreign issuer or audience.
    Invalid,
    Expired,
    /// An access token where a refresh token belongs.
    WrongType,
    /// Well-formed and signed, but rotated, revoked or its session ended.
    Blacklisted,
}

impl Refusal {
    fn detail(self) -> &'static str {
        match self {
            Refusal::Invalid => "Token is invalid",
            Refusal::Expired => "Token is expired",
            Refusal::WrongType => "Token has wrong type",
            Refusal::Blacklisted => "Token is blacklisted",
        }
    }
}

/// Why signet's checks refused `token` as a refresh token, in simplejwt's terms.
fn refusal_of_refresh(state: &AppState, token: &str) -> Refusal {
    match verify_refresh(state.verifier(), &state.settings.tokens.issuer, token) {
        Ok(_) => Refusal::Blacklisted,
        Err(VerifyError::Expired) => Refusal::Expired,
        Err(_) if state.verifier().verify(token).is_ok() => Refusal::WrongType,
        Err(_) => Refusal::Invalid,
    }
}

fn respond(status: StatusCode, body: Value) -> HttpResponse {
    let mut response = if status.is_success() { no_store(status) } else { HttpResponse::build(status) };
    if status == StatusCode::UNAUTHORIZED {
        response.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"api\""));
    }
    response.json(body)
}

fn token_not_valid(refusal: Refusal) -> HttpResponse {
    respond(StatusCode::UNAUTHORIZED, json!({"detail": refusal.detail(), "code": "token_not_valid"}))
}

/// signet errors in DRF's words; `invalid` is what a refused credential means here.
fn drf_error(err: ApiError, invalid: HttpResponse) -> HttpResponse {
    match err {
        ApiError::InvalidCredentials
        | ApiError::AccountDisabled
        | ApiError::InvalidRefreshToken
        | ApiError::RefreshTokenReused => invalid,
        ApiError::TooManyRequests { retry_after_secs } => {
            HttpResponse::TooManyRequests().insert_header((header::RETRY_AFTER, retry_after_secs)).json(
                json!({"detail": format!("Request was throttled. Expected available in {retry_after_secs} seconds.")}),
            )
        }
        ApiError::Unavailable(_) => HttpResponse::ServiceUnavailable()
            .insert_header((header::RETRY_AFTER, "5"))
            .json(json!({"detail": "Service temporarily unavailable, try again later."})),
        other => actix_web::ResponseError::error_response(&other),
    }
}

fn pair(minted: Minted) -> HttpResponse {
    respond(StatusCode::OK, json!({"access": minted.pair.access_token, "refresh": minted.pair.refresh_token}))
}

async fn fields(
    state: &AppState,
    req: &HttpRequest,
    payload: web::Payload,
    names: &[&str],
) -> Result<Vec<String>, HttpResponse> {
    if !state.settings.compat.simplejwt {
        return Err(actix_web::ResponseError::error_response(&ApiError::NotFound));
    }
    let map: Map<String, Value> = read_fields(req, payload, state.settings.server.body_limit_bytes)
        .await
        .map_err(|(status, body)| respond(status, body))?;
    required_strings(&map, names).map_err(|body| respond(StatusCode::BAD_REQUEST, body))
}

/// POST /api/token/ {"username","password"} → {"access","refresh"}
pub async fn obtain(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload) -> HttpResponse {
    let values = match fields(&state, &req, payload, &["username", "password"]).await {
        Ok(values) => values,
        Err(response) => return response,
    };
    let [username, password] = <[String; 2]>::try_from(values).unwrap_or_default();
    let no_account = || respond(StatusCode::UNAUTHORIZED, json!({"detail": NO_ACCOUNT}));
    let user = match flows::check_password(&state, &req, &username, password.into()).await {
        Ok(user) => user,
        Err(err) => return drf_error(err, no_account()),
    };
    match flows::start_session(&state, &req, user).await {
        Ok(minted) => pair(minted),
        Err(err) => drf_error(err, no_account()),
    }
}

/// POST /api/token/refresh/ {"refresh"} → {"access","refresh"} (rotated)
pub async fn refresh(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload) -> HttpResponse {
    let values = match fields(&state, &req, payload, &["refresh"]).await {
        Ok(values) => values,
        Err(response) => return response,
    };
    match flows::rotate(&state, &req, &values[0]).await {
        Ok(minted) => pair(minted),
        Err(err) => drf_error(err, token_not_valid(refusal_of_refresh(&state, &values[0]))),
    }
}

/// POST /api/token/verify/ {"token"} → {} when it is a valid access token or
/// a current refresh token. Like simplejwt, a well-formed refresh token that
/// is no longer current is `400 {"non_field_errors": ["Token is blacklisted"]}`.
pub async fn verify(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload) -> HttpResponse {
    let values = match fields(&state, &req, payload, &["token"]).await {
        Ok(values) => values,
        Err(response) => return response,
    };
    let token = values[0].clone();
    if state.verifier().verify(&token).is_ok() {
        return respond(StatusCode::OK, json!({}));
    }
    let claims = match verify_refresh(state.verifier(), &state.settings.tokens.issuer, &token) {
        Ok(claims) => claims,
        // simplejwt's verify takes any token type, so the only refusals are these two.
        Err(VerifyError::Expired) => return token_not_valid(Refusal::Expired),
        Err(_) => return token_not_valid(Refusal::Invalid),
    };
    match is_current(&state, claims).await {
        Ok(true) => respond(StatusCode::OK, json!({})),
        Ok(false) => respond(StatusCode::BAD_REQUEST, json!({"non_field_errors": [Refusal::Blacklisted.detail()]})),
        Err(err) => drf_error(err, token_not_valid(Refusal::Invalid)),
    }
}

/// POST /api/token/blacklist/ {"refresh"} → {} (ends the whole session). A
/// refresh token already rotated or blacklisted is `401 Token is blacklisted`.
pub async fn blacklist(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload) -> HttpResponse {
    let values = match fields(&state, &req, payload, &["refresh"]).await {
        Ok(values) => values,
        Err(response) => return response,
    };
    let token = &values[0];
    let Ok(claims) = verify_refresh(state.verifier(), &state.settings.tokens.issuer, token) else {
        return token_not_valid(refusal_of_refresh(&state, token));
    };
    match is_current(&state, claims).await {
        Ok(true) => {}
        Ok(false) => return token_not_valid(Refusal::Blacklisted),
        Err(err) => return drf_error(err, token_not_valid(Refusal::Invalid)),
    }
    match flows::end_session(&state, &req, token).await {
        Ok(()) => respond(StatusCode::OK, json!({})),
        Err(err) => drf_error(err, token_not_valid(refusal_of_refresh(&state, token))),
    }
}

/// Whether a verified refresh token is still usable (not rotated, its session live).
async fn is_current(state: &AppState, claims: RefreshClaims) -> Result<bool, ApiError> {
    let now = state.clock.now_db();
    state.db(move |conn| Ok(crate::sessions::service::refresh_token_is_current(conn, &claims, now)?)).await
}
