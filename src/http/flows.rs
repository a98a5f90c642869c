//! The login and refresh flows shared by signet's own routes and the
//! compatibility routes (simplejwt, DRF): same checks, same throttling, same
//! sessions; only the wire format differs.

use actix_web::http::header;
use actix_web::HttpRequest;
use secrecy::{ExposeSecret, SecretString};
use signet_verify::VerifyError;

use super::batches::Batched;
use super::metrics::{self, Event, LoginOutcome, RefreshOutcome};
use super::rate_limit::Endpoint;
use super::state::{dummy_hash, AppState};
use crate::accounts::model::{self as users, User};
use crate::accounts::service::{record_failed_login, LoginFailure};
use crate::accounts::throttle;
use crate::accounts::username::Username;
use crate::audit::Actor;
use crate::error::ApiError;
use crate::sessions::service::{self, ClientInfo, OneCall};
use crate::tokens::{verify_refresh, Minted, RefreshClaims};

/// Whose password is being checked.
pub enum Account {
    /// A login: the name as typed (None when it breaks the username rules,
    /// so it cannot exist: no database, no lockout, but the same bcrypt time).
    Named(Option<Username>),
    /// A password change: the caller's own account, by id.
    Id(String),
}

/// Proves a password for a login: see [`prove_password`]. A disabled
/// account is told so only after the right password.
pub async fn check_password(
    state: &AppState,
    req: &HttpRequest,
    username: &str,
    password: SecretString,
) -> Result<User, ApiError> {
    let account = Account::Named(Username::parse(username).ok());
    let result = match prove_password(state, req, account, password).await {
        Ok(user) if user.disabled => {
            let (actor, now) = (state.actor(req, None), state.clock.now_db());
            let failure = LoginFailure::AccountDisabled;
            state
                .db_write(move |conn| record_failed_login(conn, &actor, Some(&user.id), failure, "login", now))
                .await?;
            Err(ApiError::AccountDisabled)
        }
        other => other,
    };
    let outcome = match &result {
        Ok(_) => Some(LoginOutcome::Success),
        Err(err) => LoginOutcome::of_error(err),
    };
    if let Some(outcome) = outcome {
        metrics::record(req, Event::Login(outcome));
    }
    result
}

/// The one password check, for logins and password changes alike: the
/// client IP's login budget, then the account's lockout reservation (429
/// while locked, even for the right password), then bcrypt. Unknown user and
/// wrong password cost the same bcrypt time and get the same answer; the
/// reservation stands as the failure, a match clears it. Old hash schemes and
/// costs are upgraded (the returned user carries the stored hash). A failure
/// is recorded (`login.failed`), a lockout it starts too (`login.locked`).
pub async fn prove_password(
    state: &AppState,
    req: &HttpRequest,
    account: Account,
    password: SecretString,
) -> Result<User, ApiError> {
    state.rate_limit(Endpoint::Login, req)?;
    // A hashing place first: a refused check costs nothing and counts nowhere.
    let slot = state.hash_pool.reserve(req)?;
    let throttle = state.throttle;
    let now = state.clock.now_db();
    // A password change is made by the logged-in user; a login by nobody yet.
    let (actor, flow) = match &account {
        Account::Named(_) => (state.actor(req, None), "login"),
        Account::Id(id) => (state.actor(req, Some(id)), "password_change"),
    };
    let reserving = actor.clone();
    let (user, key, locked_now) = state
        .db_write(move |conn| match account {
            Account::Named(None) => Ok((None, None, false)),
            Account::Named(Some(name)) => {
                let locked_now = throttle::reserve(conn, &throttle, name.key(), &reserving, now)?;
                Ok((users::find_by_username_key(conn, name.key())?, Some(name.key().to_owned()), locked_now))
            }
            Account::Id(id) => {
                let user = users::find(conn, &id)?.ok_or(ApiError::NotFound)?;
                let locked_now = throttle::reserve(conn, &throttle, &user.username_key, &reserving, now)?;
                let key = user.username_key.clone();
                Ok((Some(user), Some(key), locked_now))
            }
        })
        .await?;
    if locked_now {
        metrics::record(req, Event::Lockout);
    }

    let hasher = state.hasher;
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let dummy = state.dummy_hash.clone();
    let (verification, rehash) = state
        .hash_pool
        .run(slot, move || {
            let stored = stored.unwrap_or_else(|| dummy_hash(&dummy, hasher).to_owned());
            let verification = hasher.verify(password.expose_secret(), &stored);
            // Upgrade old schemes and costs while we hold the plain password.
            let rehash = verification.needs_rehash.then(|| hasher.hash(password.expose_secret()).ok()).flatten();
            (verification, rehash.map(|new| (stored, new)))
        })
        .await?;
    let (subject, failure) = match &user {
        Some(user) => (Some(user.id.clone()), LoginFailure::WrongPassword),
        None => (None, LoginFailure::UnknownUser),
    };
    let Some(mut user) = user.filter(|_| verification.matches) else {
        // The reservation already counted this failure; the event is its own write.
        state.db_write(move |conn| record_failed_login(conn, &actor, subject.as_deref(), failure, flow, now)).await?;
        return Err(ApiError::InvalidCredentials);
    };
    state
        .db_write(move |conn| {
            if let Some(key) = &key {
                throttle::record_success(conn, &throttle, key)?;
            }
            if let Some((old, new)) = rehash {
                if users::upgrade_password_hash(conn, &user.id, &old, &new)? == 1 {
                    user.password_hash = new;
                }
            }
            Ok(user)
        })
        .await
}

/// Starts a session for a proven user and signs its first pair.
pub async fn start_session(state: &AppState, req: &HttpRequest, user: User) -> Result<Minted, ApiError> {
    let settings = state.settings.clone();
    let now = state.clock.now_db();
    let signer = state.keys.signer(now)?;
    let client = client_info(state, req);
    let minted = state
        .db_write(move |conn| {
            service::start_session(conn, &settings.tokens, &settings.revocation, &signer, &user, client, now)
        })
        .await?;
    issued_pair(req);
    Ok(minted)
}

fn issued_pair(req: &HttpRequest) {
    metrics::record(req, Event::Issued("access"));
    metrics::record(req, Event::Issued("refresh"));
}

/// Rotates a refresh token (reuse detection and grace included), within the
/// client IP's refresh budget. The outcome is recorded for the metrics.
pub async fn rotate(state: &AppState, req: &HttpRequest, token: &str) -> Result<Minted, ApiError> {
    state.rate_limit(Endpoint::Refresh, req)?;
    let result = rotate_verified(state, state.actor(req, None), token).await;
    match &result {
        Ok(rotated) => {
            let outcome = if rotated.within_grace { RefreshOutcome::Grace } else { RefreshOutcome::Rotated };
            metrics::record(req, Event::Refresh(outcome));
            issued_pair(req);
        }
        Err(ApiError::RefreshTokenReused) => {
            metrics::record(req, Event::Refresh(RefreshOutcome::Reused));
            metrics::record(req, Event::Revoked("refresh_token_reused"));
        }
        Err(ApiError::InvalidRefreshToken) => metrics::record(req, Event::Refresh(RefreshOutcome::Invalid)),
        Err(_) => {}
    }
    result.map(|rotated| rotated.minted)
}

async fn rotate_verified(state: &AppState, client: Actor, token: &str) -> Result<service::Rotated, ApiError> {
    let claims = verified_refresh_claims(state, token).await?;
    let settings = state.settings.clone();
    let now = state.clock.now_db();
    let signer = state.keys.signer(now)?;
    let mut one_call = OneCall::Try;
    if let Some(rotations) = &state.pg_rotations {
        let request = service::one_call_request(&settings.tokens, &claims, now);
        let successor = request.successor.clone();
        match rotations.ask(request).await {
            Batched::Done(Some(rotated)) => {
                let (tokens, revocation) = (&settings.tokens, &settings.revocation);
                let minted = service::mint_rotated(tokens, revocation, &signer, successor, now, *rotated)?;
                return Ok(service::Rotated { minted, within_grace: false });
            }
            Batched::Done(None) => one_call = OneCall::Declined,
            Batched::NotRun => {}
        }
    }
    state
        .db_write(move |conn| {
            service::rotate(conn, &settings.tokens, &settings.revocation, &signer, &claims, &client, now, one_call)
        })
        .await
}

/// Revokes the session of a refresh token.
pub async fn end_session(state: &AppState, req: &HttpRequest, token: &str) -> Result<(), ApiError> {
    let claims = verified_refresh_claims(state, token).await?;
    let (client, now) = (state.actor(req, None), state.clock.now_db());
    state.db_write(move |conn| service::end_session(conn, &claims, &client, now)).await
}

/// Verifies a refresh token's signature and claims. A `kid` this instance
/// does not know yet (another instance just rotated) triggers one reload.
async fn verified_refresh_claims(state: &AppState, token: &str) -> Result<RefreshClaims, ApiError> {
    let issuer = &state.settings.tokens.issuer;
    match verify_refresh(state.verifier(), issuer, token) {
        Ok(claims) => Ok(claims),
        Err(VerifyError::UnknownKid) => {
            let keys = state.keys.clone();
            state.blocking(move || keys.reload_for_unknown_kid()).await?.map_err(ApiError::internal)?;
            verify_refresh(state.verifier(), issuer, token).map_err(|_| ApiError::InvalidRefreshToken)
        }
        Err(_) => Err(ApiError::InvalidRefreshToken),
    }
}

fn client_info(state: &AppState, req: &HttpRequest) -> ClientInfo {
    ClientInfo {
        user_agent: req.headers().get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned),
        ip: state.client_ip(req).map(|ip| ip.to_string()),
    }
}
