//! `Caller`: who is calling signet's own protected routes. The one place
//! that turns a credential into a caller, so every check on callers (roles
//! today; login method or session state tomorrow) is made here.
//!
//! Two credentials: `Authorization: Bearer <access JWT>` (verified
//! statelessly by signet-verify, claims kept) or `Authorization: Token <API
//! token>` (DRF style, one database lookup of its keyed hash). Routes that
//! take only a login ([`BearerCaller`], [`RequireAdmin`]) treat a `Token`
//! header as no bearer credential at all (401 `missing_token`), without
//! looking it up.

use std::ops::Deref;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use signet_verify::actix::{AuthError, Authenticated};
use signet_verify::AccessClaims;

use super::batches::Batched;
use super::state::AppState;
use crate::accounts::model::User;
use crate::api_tokens::service as api_tokens;
use crate::error::ApiError;
use crate::roles;
use crate::sessions::service::{self as sessions, AccessHolder};

/// How the caller proved who they are.
#[derive(Debug, Clone)]
pub enum Via {
    /// A verified access JWT (of login session `claims.sid`).
    Bearer { claims: Box<AccessClaims> },
    /// An API token.
    Token { token_id: String },
}

#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: String,
    pub roles: Vec<String>,
    pub via: Via,
    /// The user as stored now, when authenticating read it anyway (a login
    /// session's token or an API token; not a client's): saves the handler
    /// a second read.
    pub account: Option<Box<User>>,
}

impl Caller {
    fn from_claims(claims: AccessClaims, account: Option<Box<User>>) -> Caller {
        Caller {
            user_id: claims.sub.clone(),
            roles: claims.roles.clone(),
            via: Via::Bearer { claims: Box::new(claims) },
            account,
        }
    }

    /// The verified claims when the caller came with an access JWT.
    pub fn claims(&self) -> Option<&AccessClaims> {
        match &self.via {
            Via::Bearer { claims } => Some(claims),
            Via::Token { .. } => None,
        }
    }

    /// The login session of a Bearer caller.
    pub fn session_id(&self) -> Option<&str> {
        self.claims().map(|claims| claims.sid.as_str())
    }

    /// 403 `insufficient_role` (with the RFC 6750 challenge) unless the
    /// caller holds `role`.
    pub fn require_role(&self, role: &str) -> Result<(), AuthError> {
        if self.roles.iter().any(|held| held == role) {
            Ok(())
        } else {
            Err(AuthError::InsufficientRole { required: role.to_owned() })
        }
    }
}

impl Caller {
    /// 401 `insufficient_user_authentication` (RFC 9470) unless the caller's
    /// access token came from a password login or a refresh of one (signed
    /// `amr: ["pwd"]`). Guards the routes that mint credentials or change the
    /// password, so no derived credential can outlive the login behind it.
    pub fn require_password_login(&self) -> Result<(), ApiError> {
        match self.claims() {
            Some(claims) if claims.is_password_login() => Ok(()),
            _ => Err(ApiError::InsufficientUserAuthentication),
        }
    }
}

/// The API token of an `Authorization: Token <key>` header, if that is the scheme.
pub fn token_credential(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("token").then(|| rest.trim().to_owned())
}

/// Which credentials a route accepts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Accept {
    BearerOrToken,
    Bearer,
}

/// The one way from a request to a `Caller`.
fn authenticate(
    req: &HttpRequest,
    payload: &mut Payload,
    accept: Accept,
) -> LocalBoxFuture<'static, Result<Caller, actix_web::Error>> {
    let token = if accept == Accept::BearerOrToken { token_credential(req) } else { None };
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let Some(secret) = token else {
        // A `Token` header on a Bearer-only route is "no bearer token" here.
        let bearer = Authenticated::from_request(req, payload);
        return Box::pin(async move {
            let Authenticated(claims) = bearer.await?;
            let state = state.ok_or_else(|| ApiError::internal(anyhow::anyhow!("no AppState")))?;
            let holder = require_live_session(&state, &claims).await?;
            let account = match holder {
                AccessHolder::User(user) => Some(user),
                AccessHolder::Other => None,
            };
            Ok(Caller::from_claims(claims, account))
        });
    };
    Box::pin(async move {
        let state = state.ok_or_else(|| ApiError::internal(anyhow::anyhow!("no AppState")))?;
        let keys = state.keys.clone();
        let now = state.clock.now_db();
        let found = state.db(move |conn| api_tokens::authenticate(conn, keys.master(), &secret, now)).await?;
        let (user, token) = found.ok_or(ApiError::InvalidApiToken)?;
        let (roles, user_id) = (user.role_list(), user.id.clone());
        Ok(Caller { roles, user_id, via: Via::Token { token_id: token.id }, account: Some(Box::new(user)) })
    })
}

/// Stateless verification passed; the session (or API token) decides whether
/// the token still stands, so a revocation on any instance is refused at once
/// (401 `invalid_token`). One primary-key read, which brings the session's
/// user along.
async fn require_live_session(state: &AppState, claims: &AccessClaims) -> Result<AccessHolder, ApiError> {
    let status = match &claims.status {
        Some(status) => Some(state.status_lists.parse_ref(&status.status_list).ok_or(ApiError::RevokedToken)?),
        None => None,
    };
    let (sid, now) = (claims.sid.clone(), state.clock.now_db());
    if let (Some(reads), true) = (&state.session_reads, sessions::is_user_session(&sid)) {
        if let Batched::Done(found) = reads.ask(sid.clone()).await {
            let holder = found.and_then(|row| {
                let (session, index, user) = *row;
                sessions::session_holder(session, index, user, status, now)
            });
            return holder.ok_or(ApiError::RevokedToken);
        }
    }
    let holder = state.db(move |conn| Ok(sessions::access_holder(conn, &sid, status, now)?)).await?;
    holder.ok_or(ApiError::RevokedToken)
}

impl FromRequest for Caller {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        authenticate(req, payload, Accept::BearerOrToken)
    }
}

/// A caller with an access JWT: for routes that need a login, so a leaked
/// API token cannot reach them.
#[derive(Debug, Clone)]
pub struct BearerCaller {
    pub caller: Caller,
    pub claims: AccessClaims,
}

impl Deref for BearerCaller {
    type Target = Caller;
    fn deref(&self) -> &Caller {
        &self.caller
    }
}

impl FromRequest for BearerCaller {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let caller = authenticate(req, payload, Accept::Bearer);
        Box::pin(async move {
            let caller = caller.await?;
            let claims = caller.claims().cloned().ok_or(AuthError::MissingToken)?;
            Ok(BearerCaller { caller, claims })
        })
    }
}

/// A Bearer caller holding the `admin` role: the admin API's guard.
#[derive(Debug, Clone)]
pub struct RequireAdmin(pub BearerCaller);

impl FromRequest for RequireAdmin {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let caller = BearerCaller::from_request(req, payload);
        Box::pin(async move {
            let caller = caller.await?;
            caller.require_role(roles::ADMIN)?;
            Ok(RequireAdmin(caller))
        })
    }
}
