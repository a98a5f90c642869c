//! Introspection (RFC 7662) and revocation (RFC 7009) of tokens this issuer
//! signed, whatever their audience. The HTTP face verifies the signature; the
//! database decides whether the session behind a token still stands.

use chrono::NaiveDateTime;
use serde::Serialize;
use signet_verify::AccessClaims;

use crate::accounts::model as users;
use crate::api_tokens;
use crate::clients;
use crate::db::DbConnection;
use crate::error::ApiError;
use crate::sessions::model as sessions;
use crate::sessions::service::{is_access_live, refresh_token_is_current};
use crate::status_lists::StatusRef;
use crate::tokens::RefreshClaims;

/// A token whose signature, issuer, type and expiry were verified.
pub enum Verified {
    /// An access token, and the index its `status` claim names (`Err` when
    /// the claim names no list of this issuer: such a token is never live).
    Access(Box<AccessClaims>, Result<Option<StatusRef>, ()>),
    Refresh(RefreshClaims),
}

/// The RFC 7662 answer: `{"active": false}` and nothing else, or the claims.
#[derive(Debug, Serialize)]
pub struct Introspection {
    pub active: bool,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub details: Option<Details>,
}

#[derive(Debug, Serialize)]
pub struct Details {
    pub sub: String,
    pub client_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    pub roles: Vec<String>,
    pub exp: i64,
    pub iat: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    pub jti: String,
    pub sid: String,
    pub token_type: &'static str,
    pub aud: serde_json::Value,
    pub iss: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub act: Option<signet_verify::Actor>,
}

impl Introspection {
    pub fn inactive() -> Self {
        Introspection { active: false, details: None }
    }
}

/// What an authenticated client may learn about `token`. `client_id` of a
/// refresh token is the first-party client's (`tokens.client_id`).
pub fn introspect(
    conn: &mut DbConnection,
    token: Verified,
    first_party_client: &str,
    now: NaiveDateTime,
) -> Result<Introspection, ApiError> {
    match token {
        Verified::Access(_, Err(())) => Ok(Introspection::inactive()),
        Verified::Access(claims, Ok(status)) => {
            if !is_access_live(conn, &claims.sid, status, now)? {
                return Ok(Introspection::inactive());
            }
            let claims = *claims;
            Ok(Introspection {
                active: true,
                details: Some(Details {
                    aud: serde_json::to_value(&claims.aud).unwrap_or_default(),
                    sub: claims.sub,
                    client_id: claims.client_id,
                    username: claims.preferred_username,
                    scope: claims.scope,
                    roles: claims.roles,
                    exp: claims.exp,
                    iat: claims.iat,
                    nbf: claims.nbf,
                    jti: claims.jti,
                    sid: claims.sid,
                    token_type: "Bearer",
                    iss: claims.iss,
                    act: claims.act,
                }),
            })
        }
        Verified::Refresh(claims) => {
            if !refresh_token_is_current(conn, &claims, now)? {
                return Ok(Introspection::inactive());
            }
            let Some(user) = users::find(conn, &claims.sub)?.filter(|u| !u.disabled) else {
                return Ok(Introspection::inactive());
            };
            Ok(Introspection {
                active: true,
                details: Some(Details {
                    roles: user.role_list(),
                    username: Some(user.username),
                    sub: claims.sub,
                    client_id: first_party_client.to_owned(),
                    scope: None,
                    exp: claims.exp,
                    iat: claims.iat,
                    nbf: claims.nbf,
                    jti: claims.jti,
                    sid: claims.sid,
                    token_type: "refresh_token",
                    aud: serde_json::Value::String(claims.aud),
                    iss: claims.iss,
                    act: None,
                }),
            })
        }
    }
}

/// Revokes the session behind `token` (RFC 7009): a login session (its status
/// index flips), a client's session, or the API token behind an exchanged
/// token. Anything already revoked or unknown is a success: RFC 7009 answers
/// 200 either way. Holding a token already lets one log its session out
/// (`/v1/auth/logout`, `/v1/auth/logout-all`), so any authenticated client
/// presenting a token may revoke it. Returns whether something was revoked.
pub fn revoke(conn: &mut DbConnection, token: Verified, now: NaiveDateTime) -> Result<bool, ApiError> {
    let revoked = match token {
        Verified::Access(claims, _) => {
            if let Some(client_id) = clients::client_of_session(&claims.sid) {
                clients::model::end_session(conn, client_id, &claims.sid)?
            } else if let Some(token_id) = claims.sid.strip_prefix(api_tokens::EXCHANGE_SID_PREFIX) {
                api_tokens::model::revoke(conn, &claims.sub, token_id, now)?
            } else {
                sessions::revoke_session(conn, &claims.sid, now, "oauth_revoke")?
            }
        }
        Verified::Refresh(claims) => match sessions::find_refresh_token(conn, &claims.jti)? {
            Some(row) if row.session_id == claims.sid => {
                sessions::revoke_session(conn, &row.session_id, now, "oauth_revoke")?
            }
            _ => 0,
        },
    };
    Ok(revoked > 0)
}
