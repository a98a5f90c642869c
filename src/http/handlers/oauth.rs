//! `/oauth/token`, `/oauth/introspect`, `/oauth/revoke`: form bodies in, JSON
//! out, RFC 6749 §5.2 error objects (never problem documents), `Cache-Control:
//! no-store` on every answer. Client authentication by `client_secret_basic`
//! or `client_secret_post`, throttled per IP and per client id.

use std::collections::HashMap;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use base64::Engine;
use secrecy::SecretString;
use serde_json::json;
use signet_verify::{AccessClaims, VerifyError, ACCESS_TOKEN_TYPE as AT_JWT};

use crate::clients::model::Client;
use crate::clients::service as clients;
use crate::error::ApiError;
use crate::http::body::{content_type_essence, read_body};
use crate::http::flows;
use crate::http::metrics::{self, Event};
use crate::http::problem::RETRY_AFTER_SECS;
use crate::http::rate_limit::client_key;
use crate::http::response::no_store;
use crate::http::state::{Access, AppState, ConnectionFault};
use crate::oauth::introspection::{self, Verified};
use crate::oauth::{grants, OAuthError, ACCESS_TOKEN_TYPE, TOKEN_EXCHANGE_GRANT};
use crate::tokens::verify_refresh;

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        match self {
            OAuthError::InvalidClient => StatusCode::UNAUTHORIZED,
            OAuthError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            OAuthError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            OAuthError::Api(ApiError::Unavailable(_)) => StatusCode::SERVICE_UNAVAILABLE,
            OAuthError::Api(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            OAuthError::Api(ApiError::Unavailable(cause)) => log::warn!("database unavailable: {cause}"),
            OAuthError::Api(cause) => log::error!("oauth endpoint failed: {cause:#}"),
            _ => {}
        }
        let mut response = no_store(self.status_code());
        match self {
            OAuthError::InvalidClient => {
                response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"signet\"")));
            }
            OAuthError::TooManyRequests { retry_after_secs } => {
                response.insert_header((header::RETRY_AFTER, HeaderValue::from(*retry_after_secs)));
            }
            OAuthError::Api(ApiError::Unavailable(_)) => {
                response.insert_header((header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECS)));
            }
            _ => {}
        }
        response.json(json!({"error": self.code(), "error_description": self.description()}))
    }
}

/// The 405 of an `/oauth/*` path, as an RFC 6749 error object.
pub fn method_not_allowed() -> HttpResponse {
    no_store(StatusCode::METHOD_NOT_ALLOWED)
        .json(json!({"error": "invalid_request", "error_description": "This method is not allowed here; use POST."}))
}

/// The parameters of an `application/x-www-form-urlencoded` body. Empty
/// values count as absent (RFC 6749 §3.1); a repeated one is refused.
pub struct Form(HashMap<String, String>);

impl Form {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    fn required(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name).ok_or_else(|| OAuthError::InvalidRequest(format!("The parameter {name} is missing.")))
    }

    /// Parses a body: `+` is a space, `%XX` a byte, and the result must be UTF-8.
    pub fn parse(body: &[u8]) -> Result<Form, OAuthError> {
        let mut params = HashMap::new();
        for pair in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
            let (name, value) = match pair.iter().position(|b| *b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &[][..]),
            };
            let (name, value) = (decode(name)?, decode(value)?);
            if value.is_empty() {
                continue;
            }
            if params.contains_key(&name) {
                return Err(OAuthError::InvalidRequest(format!("The parameter {} is repeated.", printable(&name))));
            }
            params.insert(name, value);
        }
        Ok(Form(params))
    }
}

/// A parameter name fit to echo in a description.
fn printable(name: &str) -> String {
    if name.len() <= 40 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        name.to_owned()
    } else {
        "(unnamed)".to_owned()
    }
}

fn decode(raw: &[u8]) -> Result<String, OAuthError> {
    let bad = || OAuthError::InvalidRequest("The body is not valid form-urlencoded UTF-8.".into());
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = raw.get(i + 1..i + 3).ok_or_else(bad)?;
                let hex = std::str::from_utf8(hex).map_err(|_| bad())?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| bad())
}

/// Reads the form body: only `application/x-www-form-urlencoded` (anything
/// else, JSON included, is `invalid_request`), at most the body limit (413).
async fn read_form(state: &AppState, req: &HttpRequest, payload: web::Payload) -> Result<Form, OAuthError> {
    if content_type_essence(req) != "application/x-www-form-urlencoded" {
        return Err(OAuthError::InvalidRequest("Send the body as application/x-www-form-urlencoded.".into()));
    }
    let body = read_body(payload, state.settings.server.body_limit_bytes).await?;
    Form::parse(&body)
}

/// How the client identified itself.
enum ClientAuth {
    /// `client_secret_basic` or `client_secret_post`.
    Secret { id: String, secret: SecretString },
    /// No secret: a public client naming itself, or nobody.
    Public(Option<String>),
}

fn check_client_id(id: &str) -> Result<(), OAuthError> {
    if id.chars().any(char::is_control) {
        return Err(OAuthError::InvalidRequest("The client_id contains control characters.".into()));
    }
    Ok(())
}

/// The client's credentials from `Authorization: Basic` (RFC 6749 §2.3.1:
/// form-urlencoded id and secret, base64) or from the body; both at once is
/// `invalid_request`, a header that does not decode `invalid_client`.
fn client_auth(req: &HttpRequest, form: &Form) -> Result<ClientAuth, OAuthError> {
    let header = req.headers().get(header::AUTHORIZATION);
    let auth = if let Some(value) = header {
        let value = value.to_str().map_err(|_| OAuthError::InvalidClient)?;
        let (scheme, encoded) = value.split_once(' ').ok_or(OAuthError::InvalidClient)?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(OAuthError::InvalidClient);
        }
        let decoded =
            base64::engine::general_purpose::STANDARD.decode(encoded.trim()).map_err(|_| OAuthError::InvalidClient)?;
        let decoded = String::from_utf8(decoded).map_err(|_| OAuthError::InvalidClient)?;
        let (id, secret) = decoded.split_once(':').ok_or(OAuthError::InvalidClient)?;
        let (id, secret) = (
            decode(id.as_bytes()).map_err(|_| OAuthError::InvalidClient)?,
            decode(secret.as_bytes()).map_err(|_| OAuthError::InvalidClient)?,
        );
        if form.get("client_secret").is_some() {
            return Err(OAuthError::InvalidRequest(
                "Authenticate with one method only: Basic or client_secret.".into(),
            ));
        }
        if form.get("client_id").is_some_and(|body_id| body_id != id) {
            return Err(OAuthError::InvalidRequest("The client_id in the body differs from the Basic one.".into()));
        }
        ClientAuth::Secret { id, secret: secret.into() }
    } else {
        match (form.get("client_id"), form.get("client_secret")) {
            (Some(id), Some(secret)) => ClientAuth::Secret { id: id.to_owned(), secret: secret.to_owned().into() },
            (None, Some(_)) => return Err(OAuthError::InvalidRequest("client_secret without client_id.".into())),
            (id, None) => ClientAuth::Public(id.map(str::to_owned)),
        }
    };
    match &auth {
        ClientAuth::Secret { id, .. } | ClientAuth::Public(Some(id)) => check_client_id(id)?,
        ClientAuth::Public(None) => {}
    }
    Ok(auth)
}

/// Authenticates a confidential client, throttled: an IP past its failure
/// budget is refused unchecked; a client id past its budget still lets the
/// right secret through (no lock-out of a valid client), but its failures
/// answer 429.
async fn authenticate(state: &AppState, req: &HttpRequest, auth: ClientAuth) -> Result<Client, OAuthError> {
    authenticate_then(state, req, auth, |_, client| Ok(client)).await
}

/// [`authenticate`], then `then` with the client on the same connection in
/// the same trip to the database (introspection: one round trip, not two).
async fn authenticate_then<T, F>(
    state: &AppState,
    req: &HttpRequest,
    auth: ClientAuth,
    then: F,
) -> Result<T, OAuthError>
where
    F: FnOnce(&mut crate::db::DbConnection, Client) -> Result<T, OAuthError> + Send + 'static,
    T: Send + 'static,
{
    let ClientAuth::Secret { id, secret } = auth else {
        return Err(OAuthError::InvalidClient);
    };
    let now = state.clock.now_db();
    let ip = state.client_ip(req).map(|ip| client_key(ip, state.settings.throttle.ipv6_prefix_len));
    let throttle = state.client_throttle.as_ref();
    if let (Some(throttle), Some(ip)) = (throttle, ip) {
        if let Some(retry_after_secs) = throttle.by_ip.locked(&ip, now) {
            return Err(OAuthError::TooManyRequests { retry_after_secs });
        }
    }
    let keys = state.keys.clone();
    let client_id = id.clone();
    let found = state
        .db_as(Access::Read, move |conn| match clients::authenticate(conn, keys.master(), &client_id, &secret)? {
            Some(client) => then(conn, client).map(Some),
            None => Ok(None),
        })
        .await?;
    match (found, throttle) {
        (Some(done), _) => Ok(done),
        (None, None) => Err(OAuthError::InvalidClient),
        (None, Some(throttle)) => {
            log::info!("client authentication failed");
            let ip_locked = ip.and_then(|ip| throttle.by_ip.fail(&ip, now));
            throttle.by_client.fail(&id, now);
            match ip_locked.or_else(|| throttle.by_client.locked(&id, now)) {
                Some(retry_after_secs) => Err(OAuthError::TooManyRequests { retry_after_secs }),
                None => Err(OAuthError::InvalidClient),
            }
        }
    }
}

/// Verifies a presented token as an access token (any audience of this
/// issuer) or a refresh token; None if it is neither, or not valid now. A
/// `kid` this instance does not know yet (another instance just rotated)
/// triggers one key reload, as for refreshes.
async fn verify_presented(state: &AppState, token: &str) -> Option<Verified> {
    let verified = verify_once(state, token);
    if verified.as_ref().err() != Some(&VerifyError::UnknownKid) {
        return verified.ok();
    }
    let keys = state.keys.clone();
    state.blocking(move || keys.reload_for_unknown_kid()).await.ok()?.ok()?;
    verify_once(state, token).ok()
}

fn verify_once(state: &AppState, token: &str) -> Result<Verified, VerifyError> {
    match state.verifier().verify_any_audience::<AccessClaims>(token, AT_JWT) {
        Ok(claims) => {
            let status = match &claims.status {
                Some(status) => state.status_lists.parse_ref(&status.status_list).map(Some).ok_or(()),
                None => Ok(None),
            };
            Ok(Verified::Access(Box::new(claims), status))
        }
        Err(VerifyError::WrongType) => {
            verify_refresh(state.verifier(), &state.settings.tokens.issuer, token).map(Verified::Refresh)
        }
        Err(err) => Err(err),
    }
}

/// POST /oauth/token
pub async fn token(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, OAuthError> {
    let form = read_form(&state, &req, payload).await?;
    let auth = client_auth(&req, &form)?;
    match form.required("grant_type")? {
        "client_credentials" => client_credentials(&state, &req, &form, auth).await,
        "refresh_token" => refresh_token(&state, &req, &form, auth).await,
        TOKEN_EXCHANGE_GRANT => token_exchange(&state, &req, &form, auth).await,
        _ => Err(OAuthError::UnsupportedGrantType),
    }
}

/// The OAuth routes' database work keeps its OAuth errors (`AppState::db_as`).
impl ConnectionFault for OAuthError {
    fn may_be_the_connection(&self) -> bool {
        matches!(self, OAuthError::Api(err) if err.may_be_the_connection())
    }
}

async fn client_credentials(
    state: &AppState,
    req: &HttpRequest,
    form: &Form,
    auth: ClientAuth,
) -> Result<HttpResponse, OAuthError> {
    let client = authenticate(state, req, auth).await?;
    let (scope, audience) = (form.get("scope").map(str::to_owned), form.get("audience").map(str::to_owned));
    let (settings, now) = (state.settings.clone(), state.clock.now_db());
    let signer = state.keys.signer(now)?;
    let issued = state
        .db_as(Access::Write, move |conn| {
            grants::client_credentials(
                conn,
                &settings.tokens,
                &settings.revocation,
                &signer,
                &client,
                scope.as_deref(),
                audience.as_deref(),
                now,
            )
        })
        .await?;
    metrics::record(req, Event::Issued("access"));
    Ok(no_store(StatusCode::OK).json(issued))
}

/// The refresh-token grant of the public client (`tokens.client_id`): the
/// very rotation of `/v1/auth/refresh` (`flows::rotate`), its errors as
/// `invalid_grant`. Refresh tokens are issued to the public client only, so a
/// confidential client may not use one.
async fn refresh_token(
    state: &AppState,
    req: &HttpRequest,
    form: &Form,
    auth: ClientAuth,
) -> Result<HttpResponse, OAuthError> {
    let first_party = &state.settings.tokens.client_id;
    match auth {
        ClientAuth::Public(None) => {}
        ClientAuth::Public(Some(id)) if &id == first_party => {}
        ClientAuth::Public(Some(_)) => return Err(OAuthError::InvalidClient),
        auth @ ClientAuth::Secret { .. } => {
            authenticate(state, req, auth).await?;
            return Err(OAuthError::InvalidGrant(format!(
                "Refresh tokens are issued to the public client {first_party} only."
            )));
        }
    }
    let token = form.required("refresh_token")?;
    let minted = flows::rotate(state, req, token).await?;
    Ok(no_store(StatusCode::OK).json(minted.pair))
}

/// RFC 8693 token exchange by an authenticated client.
async fn token_exchange(
    state: &AppState,
    req: &HttpRequest,
    form: &Form,
    auth: ClientAuth,
) -> Result<HttpResponse, OAuthError> {
    let client = authenticate(state, req, auth).await?;
    let subject_token = form.required("subject_token")?;
    if form.required("subject_token_type")? != ACCESS_TOKEN_TYPE {
        return Err(OAuthError::InvalidRequest(format!("subject_token_type must be {ACCESS_TOKEN_TYPE}.")));
    }
    if form.get("requested_token_type").is_some_and(|t| t != ACCESS_TOKEN_TYPE) {
        return Err(OAuthError::InvalidRequest(format!("requested_token_type must be {ACCESS_TOKEN_TYPE}.")));
    }
    if form.get("actor_token").is_some() {
        return Err(OAuthError::InvalidRequest("actor_token is not supported; the client is the actor.".into()));
    }
    let audience = form.required("audience")?.to_owned();
    let invalid_subject = || OAuthError::InvalidGrant("The subject_token is not a valid access token.".into());
    let Some(Verified::Access(subject, status)) = verify_presented(state, subject_token).await else {
        return Err(invalid_subject());
    };
    let status = status.map_err(|()| invalid_subject())?;
    let (settings, now) = (state.settings.clone(), state.clock.now_db());
    let signer = state.keys.signer(now)?;
    let issued = state
        .db_as(Access::Write, move |conn| {
            grants::token_exchange(conn, &settings.tokens, &signer, &client, *subject, status, &audience, now)
        })
        .await?;
    metrics::record(req, Event::Issued("access"));
    Ok(no_store(StatusCode::OK).json(issued))
}

/// POST /oauth/introspect (RFC 7662): for authenticated clients only.
pub async fn introspect(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, OAuthError> {
    let form = read_form(&state, &req, payload).await?;
    let auth = client_auth(&req, &form)?;
    // Verified before the client is known (anyone can check a signature with
    // the published keys), so both checks take one trip to the database; a
    // missing token is still reported after the client's authentication.
    let verified = match form.required("token") {
        Ok(token) => Ok(verify_presented(&state, token).await),
        Err(missing) => Err(missing),
    };
    let (first_party, now) = (state.settings.tokens.client_id.clone(), state.clock.now_db());
    let answer = authenticate_then(&state, &req, auth, move |conn, _client| match verified? {
        None => Ok(introspection::Introspection::inactive()),
        Some(verified) => Ok(introspection::introspect(conn, verified, &first_party, now)?),
    })
    .await?;
    Ok(no_store(StatusCode::OK).json(answer))
}

/// POST /oauth/revoke (RFC 7009): authenticated clients, and the public
/// client naming itself. 200 whatever the token was.
pub async fn revoke(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, OAuthError> {
    let form = read_form(&state, &req, payload).await?;
    match client_auth(&req, &form)? {
        ClientAuth::Public(Some(id)) if id == state.settings.tokens.client_id => {}
        ClientAuth::Public(_) => return Err(OAuthError::InvalidClient),
        auth => {
            authenticate(&state, &req, auth).await?;
        }
    }
    let token = form.required("token")?;
    if let Some(verified) = verify_presented(&state, token).await {
        let now = state.clock.now_db();
        if state.db_write(move |conn| introspection::revoke(conn, verified, now)).await? {
            metrics::record(&req, Event::Revoked("oauth_revoke"));
        }
    }
    Ok(no_store(StatusCode::OK).finish())
}
