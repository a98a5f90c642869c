//! actix-web integration: the [`Authenticated`] extractor and role guards.
//!
//! Register the verifier once with `App::app_data(web::Data::new(verifier))`,
//! then take `Authenticated` (any valid access token) or `RequireRole<R>`
//! (a valid token carrying role `R`) as a handler argument. Failures answer
//! RFC 9457 problem documents with RFC 6750 `WWW-Authenticate` headers.

use std::future::{ready, Ready};
use std::marker::PhantomData;
use std::ops::Deref;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse, ResponseError};
use serde_json::json;

use crate::{AccessClaims, Verifier, VerifyError};

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
            AuthError::MissingToken => {
                "This route needs an Authorization: Bearer access token.".into()
            }
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
            AuthError::InvalidToken(why) => Some(format!(
                "Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"{why}\""
            )),
            AuthError::InsufficientRole { required } => Some(format!(
                "Bearer realm=\"{REALM}\", error=\"insufficient_scope\", scope=\"{required}\""
            )),
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
        if let Some(challenge) = self
            .challenge()
            .and_then(|c| HeaderValue::from_str(&c).ok())
        {
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
    let value = value
        .to_str()
        .map_err(|_| AuthError::InvalidToken(VerifyError::Malformed))?;
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Ok(None);
    }
    Ok(Some(rest.trim()))
}

fn authenticate(req: &HttpRequest) -> Result<AccessClaims, AuthError> {
    let token = bearer_token(req)?.ok_or(AuthError::MissingToken)?;
    let verifier = req
        .app_data::<web::Data<Verifier>>()
        .ok_or(AuthError::NotConfigured)?;
    verifier.verify(token).map_err(AuthError::InvalidToken)
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
    type Future = Ready<Result<Self, AuthError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        ready(authenticate(req).map(Authenticated))
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
    type Future = Ready<Result<Self, AuthError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        ready(authenticate(req).and_then(|claims| {
            if claims.has_any_role(R::ROLES) {
                Ok(RequireRole {
                    claims,
                    _roles: PhantomData,
                })
            } else {
                Err(AuthError::InsufficientRole {
                    required: R::ROLES.join(" "),
                })
            }
        }))
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
