//! `Caller`: who is calling, from either credential signet's own routes
//! accept: `Authorization: Bearer <access JWT>` (verified statelessly by
//! signet-verify) or `Authorization: Token <API token>` (DRF style, one
//! database lookup of its keyed hash).

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use signet_verify::actix::Authenticated;

use crate::api_tokens::service as api_tokens;
use crate::error::ApiError;
use crate::sessions::service as sessions;
use crate::state::AppState;

/// How the caller proved who they are.
#[derive(Debug, Clone)]
pub enum Via {
    /// An access JWT of login session `sid`.
    Bearer { sid: String },
    /// An API token.
    Token { token_id: String },
}

#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: String,
    pub roles: Vec<String>,
    pub via: Via,
}

/// The API token of an `Authorization: Token <key>` header, if that is the scheme.
pub fn token_credential(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("token").then(|| rest.trim().to_owned())
}

impl FromRequest for Caller {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let Some(secret) = token_credential(req) else {
            let bearer = Authenticated::from_request(req, payload);
            return Box::pin(async move {
                let Authenticated(claims) = bearer.await?;
                let state = state.ok_or_else(|| ApiError::internal(anyhow::anyhow!("no AppState")))?;
                // Stateless verification passed; the session decides whether
                // it still stands (revocations take effect at once here).
                let status = match &claims.status {
                    Some(status) => {
                        Some(state.status_lists.parse_ref(&status.status_list).ok_or(ApiError::RevokedToken)?)
                    }
                    None => None,
                };
                let (sid, now) = (claims.sid.clone(), state.clock.now_db());
                let live = state.db(move |conn| Ok(sessions::is_access_live(conn, &sid, status, now)?)).await?;
                if !live {
                    return Err(ApiError::RevokedToken.into());
                }
                Ok(Caller { user_id: claims.sub, roles: claims.roles, via: Via::Bearer { sid: claims.sid } })
            });
        };
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::internal(anyhow::anyhow!("no AppState")))?;
            let keys = state.keys.clone();
            let now = state.clock.now_db();
            let found = state.db(move |conn| api_tokens::authenticate(conn, keys.master(), &secret, now)).await?;
            let (user, token) = found.ok_or(ApiError::InvalidApiToken)?;
            Ok(Caller { roles: user.role_list(), user_id: user.id, via: Via::Token { token_id: token.id } })
        })
    }
}
