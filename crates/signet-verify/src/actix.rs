//! actix-web integration: the [`Authenticated`] extractor and role guards.
//!
//! Register the verifier once with `App::app_data(web::Data::from(verifier))`
//! (the `Arc` of [`VerifierBuilder::build`](crate::VerifierBuilder::build); or
//! `web::Data::new(Verifier::new(..))`), then take `Authenticated` (any valid
//! access token) or `RequireRole<R>` (a valid token carrying any role of `R`)
//! as a handler argument. Failures answer RFC 9457 problem documents with
//! RFC 6750 `WWW-Authenticate` headers.
//!
//! Verification is synchronous and in memory; the only wait is for a token
//! whose `kid` the remote key source is fetching right now (see
//! [`Verifier::verify_or_wait`]), and it does not block the worker.

use std::future::Future;
use std::marker::PhantomData;
use std::ops::Deref;
use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse, ResponseError};
use serde_json::json;

use crate::{AccessClaims, KeysRefreshed, StatusLoaded, Verification, Verifier, VerifyError};

/// The realm named in every `WWW-Authenticate` challenge.
pub const REALM: &str = "signet";

/// Why a request was not authenticated or not authorized.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer` header at all.
    #[error("missing bearer token")]
    MissingToken,
    /// A token was presented and refused.
    #[error("invalid bearer token: {0}")]
    InvalidToken(VerifyError),
    /// A valid token without any of the roles the route needs.
    #[error("token lacks role {required}")]
    InsufficientRole { required: String },
    /// The app has no `web::Data<Verifier>`: a wiring bug, not the client's fault.
    #[error("no Verifier registered as app data")]
    NotConfigured,
}

impl AuthError {
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::MissingToken => "missing_token",
            AuthError::InvalidToken(_) => "invalid_token",
            AuthError::InsufficientRole { .. } => "insufficient_role",
            AuthError::NotConfigured => "internal_error",
        }
    }

    fn detail(&self) -> String {
        match self {
            AuthError::MissingToken => "This route needs an Authorization: Bearer access token.".into(),
            AuthError::InvalidToken(why) => format!("The access token was refused: {why}."),
            AuthError::InsufficientRole { required } => {
                format!("This route needs the role {required}.")
            }
            AuthError::NotConfigured => "Internal error.".into(),
        }
    }

    /// The RFC 6750 §3 challenge.
    fn challenge(&self) -> Option<String> {
        match self {
            AuthError::MissingToken => Some(format!("Bearer realm=\"{REALM}\"")),
            AuthError::InvalidToken(why) => {
                Some(format!("Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"{why}\""))
            }
            AuthError::InsufficientRole { required } => {
                Some(format!("Bearer realm=\"{REALM}\", error=\"insufficient_scope\", scope=\"{required}\""))
            }
            AuthError::NotConfigured => None,
        }
    }
}

impl ResponseError for AuthError {
    fn status_code(&self) -> StatusCode {
        match self {
            AuthError::MissingToken | AuthError::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            AuthError::InsufficientRole { .. } => StatusCode::FORBIDDEN,
            AuthError::NotConfigured => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let body = json!({
            "type": format!("urn:signet:problem:{}", self.code()),
            "title": status.canonical_reason().unwrap_or("Error"),
            "status": status.as_u16(),
            "detail": self.detail(),
            "code": self.code(),
        });
        let mut response = HttpResponse::build(status);
        response.content_type("application/problem+json");
        if let Some(challenge) = self.challenge().and_then(|c| HeaderValue::from_str(&c).ok()) {
            response.insert_header((header::WWW_AUTHENTICATE, challenge));
        }
        response.body(body.to_string())
    }
}

/// Reads the token of an `Authorization: Bearer` header (scheme without case).
/// `Ok(None)` when there is no bearer credential at all.
pub fn bearer_token(req: &HttpRequest) -> Result<Option<&str>, AuthError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    // ASCII only, as `HeaderValue::to_str` demands (the HTTP parser has
    // already refused control characters), but checked a word at a time:
    // this runs on every protected request.
    let value = Some(value.as_bytes())
        .filter(|bytes| bytes.is_ascii())
        .and_then(|bytes| std::str::from_utf8(bytes).ok())
        .ok_or(AuthError::InvalidToken(VerifyError::Malformed))?;
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Ok(None);
    }
    Ok(Some(rest.trim()))
}

/// Starts authenticating `req`: the claims, or a future that waits for a
/// key refetch when the token names a `kid` the verifier is fetching.
fn authenticate<T>(req: &HttpRequest, finish: fn(AccessClaims) -> Result<T, AuthError>) -> AuthFuture<T> {
    let token = match bearer_token(req) {
        Ok(Some(token)) => token,
        Ok(None) => return AuthFuture::ready(Err(AuthError::MissingToken)),
        Err(err) => return AuthFuture::ready(Err(err)),
    };
    let Some(verifier) = req.app_data::<web::Data<Verifier>>() else {
        return AuthFuture::ready(Err(AuthError::NotConfigured));
    };
    match verifier.verify_or_wait(token) {
        Verification::Done(result) => AuthFuture::ready(result.map_err(AuthError::InvalidToken).and_then(finish)),
        Verification::WaitForKeys(refreshed) => AuthFuture {
            state: State::Waiting {
                verifier: verifier.clone(),
                token: token.to_owned(),
                wait: Wait::Keys(refreshed),
                finish,
            },
        },
        Verification::WaitForStatus(loaded) => AuthFuture {
            state: State::Waiting {
                verifier: verifier.clone(),
                token: token.to_owned(),
                wait: Wait::Status(loaded),
                finish,
            },
        },
    }
}

/// The future of the extractors: ready at once, except when a token's `kid`
/// is being fetched (then it waits for that fetch, without blocking the
/// worker, and verifies once more).
pub struct AuthFuture<T> {
    state: State<T>,
}

enum State<T> {
    Ready(Option<Result<T, AuthError>>),
    Waiting {
        verifier: web::Data<Verifier>,
        token: String,
        wait: Wait,
        finish: fn(AccessClaims) -> Result<T, AuthError>,
    },
}

/// What a waiting extractor waits for.
enum Wait {
    Keys(KeysRefreshed),
    Status(StatusLoaded),
}

impl<T> AuthFuture<T> {
    fn ready(result: Result<T, AuthError>) -> Self {
        AuthFuture { state: State::Ready(Some(result)) }
    }
}

impl<T> Unpin for AuthFuture<T> {}

impl<T> Future for AuthFuture<T> {
    type Output = Result<T, AuthError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.state {
            State::Ready(result) => match result.take() {
                Some(result) => Poll::Ready(result),
                None => Poll::Ready(Err(AuthError::NotConfigured)),
            },
            State::Waiting { verifier, token, wait, finish } => {
                let ready = match wait {
                    Wait::Keys(refreshed) => Pin::new(refreshed).poll(cx),
                    Wait::Status(loaded) => Pin::new(loaded).poll(cx),
                };
                if ready.is_pending() {
                    return Poll::Pending;
                }
                // With new keys, the token may still name a list being fetched.
                let result = match (&*wait, verifier.verify_or_wait(token)) {
                    (Wait::Keys(_), Verification::WaitForStatus(loaded)) => {
                        *wait = Wait::Status(loaded);
                        return self.poll(cx);
                    }
                    (_, Verification::Done(result)) => result,
                    (_, Verification::WaitForKeys(_)) => Err(VerifyError::UnknownKid),
                    (_, Verification::WaitForStatus(_)) => Err(VerifyError::StatusUnavailable),
                };
                let result = result.map_err(AuthError::InvalidToken).and_then(*finish);
                self.state = State::Ready(None);
                Poll::Ready(result)
            }
        }
    }
}

/// A request with a valid access token; derefs to its claims.
#[derive(Debug, Clone)]
pub struct Authenticated(pub AccessClaims);

impl Deref for Authenticated {
    type Target = AccessClaims;
    fn deref(&self) -> &AccessClaims {
        &self.0
    }
}

impl FromRequest for Authenticated {
    type Error = AuthError;
    type Future = AuthFuture<Self>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        authenticate(req, |claims| Ok(Authenticated(claims)))
    }
}

/// A set of roles, any one of which a route accepts. Declare with [`roles!`](crate::roles).
pub trait AnyOf {
    const ROLES: &'static [&'static str];
}

/// A request with a valid access token carrying at least one role of `R`.
/// A missing or bad token is 401; a good token without the role is 403.
pub struct RequireRole<R: AnyOf> {
    pub claims: AccessClaims,
    _roles: PhantomData<R>,
}

impl<R: AnyOf> Deref for RequireRole<R> {
    type Target = AccessClaims;
    fn deref(&self) -> &AccessClaims {
        &self.claims
    }
}

impl<R: AnyOf> FromRequest for RequireRole<R> {
    type Error = AuthError;
    type Future = AuthFuture<Self>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        authenticate(req, |claims| {
            if claims.has_any_role(R::ROLES) {
                Ok(RequireRole { claims, _roles: PhantomData })
            } else {
                Err(AuthError::InsufficientRole { required: R::ROLES.join(" ") })
            }
        })
    }
}

/// Declares a role set for [`RequireRole`]:
/// `signet_verify::roles!(Admin = "admin");` or `roles!(Staff = "admin", "support");`.
#[macro_export]
macro_rules! roles {
    ($name:ident = $($role:literal),+ $(,)?) => {
        pub struct $name;
        impl $crate::actix::AnyOf for $name {
            const ROLES: &'static [&'static str] = &[$($role),+];
        }
    };
}
