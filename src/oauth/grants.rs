//! Client credentials and token exchange: RFC 9068 access tokens for clients.

use chrono::NaiveDateTime;
use serde::Serialize;
use signet_verify::{AccessClaims, Actor, Audience};
use uuid::Uuid;

use super::{OAuthError, ACCESS_TOKEN_TYPE};
use crate::clients::model::Client;
use crate::clients::service as clients;
use crate::config::{RevocationSettings, TokenSettings};
use crate::db::DbConnection;
use crate::error::ApiError;
use crate::keys::ring::SigningKey;
use crate::sessions::service::is_access_live;
use crate::status_lists::StatusRef;
use crate::tokens::{sign_access, status_claim};

/// A token response of `/oauth/token` without a refresh token.
#[derive(Debug, Serialize)]
pub struct Issued {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<&'static str>,
}

/// The roles a `scope` asks for: each must be one of the client's; none asked
/// means all of them. Sorted, without repeats.
pub fn granted_roles(client: &Client, scope: Option<&str>) -> Result<Vec<String>, OAuthError> {
    let held = client.role_list();
    let Some(scope) = scope else {
        return Ok(held);
    };
    let mut asked: Vec<String> = scope.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect();
    if asked.is_empty() {
        return Err(OAuthError::InvalidScope("The scope is empty.".into()));
    }
    if asked.iter().any(|role| !held.contains(role)) {
        return Err(OAuthError::InvalidScope("The scope names a role this client does not have.".into()));
    }
    asked.sort();
    asked.dedup();
    Ok(asked)
}

/// `audience`, if the client may have it; the configured audience otherwise.
fn target(settings: &TokenSettings, client: &Client, audience: Option<&str>) -> Result<String, OAuthError> {
    match audience {
        None => Ok(settings.audience.clone()),
        Some(audience) if client.audience_list().iter().any(|a| a == audience) => Ok(audience.to_owned()),
        Some(_) => Err(OAuthError::InvalidTarget("This client may not request that audience.".into())),
    }
}

/// `grant_type=client_credentials` for an authenticated client: an RFC 9068
/// token with `sub` = `client_id` = the client's id, the granted roles as
/// `roles` and `scope`, in the client's current session (no password-login
/// `amr`, so it cannot mint credentials). Usually no database write: the
/// session and its status index are shared by the client's tokens.
#[expect(clippy::too_many_arguments, reason = "plain arguments keep the grant testable without HTTP")]
pub fn client_credentials(
    conn: &mut DbConnection,
    settings: &TokenSettings,
    revocation: &RevocationSettings,
    signer: &SigningKey,
    client: &Client,
    scope: Option<&str>,
    audience: Option<&str>,
    now: NaiveDateTime,
) -> Result<Issued, OAuthError> {
    let roles = granted_roles(client, scope)?;
    let aud = target(settings, client, audience)?;
    let session = clients::session_for_token(conn, client, revocation.enabled, revocation.list_size, now).map_err(
        |err| match err {
            ApiError::NotFound => OAuthError::InvalidClient,
            other => other.into(),
        },
    )?;
    let now_unix = now.and_utc().timestamp();
    let exp = (now_unix + settings.access_ttl_secs).min(session.expires_at.and_utc().timestamp());
    let scope = roles.join(" ");
    let claims = AccessClaims {
        iss: settings.issuer.clone(),
        sub: client.id.clone(),
        aud: Audience::One(aud),
        exp,
        iat: now_unix,
        nbf: Some(now_unix),
        jti: Uuid::new_v4().to_string(),
        client_id: client.id.clone(),
        sid: session.id,
        roles,
        preferred_username: None,
        amr: Vec::new(),
        status: session.status.map(|s| status_claim(&settings.issuer, s)),
        scope: (!scope.is_empty()).then(|| scope.clone()),
        act: None,
    };
    let access_token = sign_access(signer, &claims).map_err(|e| OAuthError::Api(ApiError::internal(e)))?;
    Ok(Issued {
        access_token,
        token_type: "Bearer",
        expires_in: exp - now_unix,
        scope: Some(scope),
        issued_token_type: None,
    })
}

/// RFC 8693 token exchange: `subject` (a verified access token whose status
/// claim names `status`, or names none) for a token narrowed to `audience`,
/// one of the client's audiences. The new token keeps `sub`, `sid`, `roles`,
/// `scope` and `status`, so revoking the subject's session revokes it too;
/// it names the client in `act` (nesting any earlier actor) and never
/// outlives the subject token.
#[expect(clippy::too_many_arguments, reason = "plain arguments keep the grant testable without HTTP")]
pub fn token_exchange(
    conn: &mut DbConnection,
    settings: &TokenSettings,
    signer: &SigningKey,
    client: &Client,
    subject: AccessClaims,
    status: Option<StatusRef>,
    audience: &str,
    now: NaiveDateTime,
) -> Result<Issued, OAuthError> {
    if !client.audience_list().iter().any(|a| a == audience) {
        return Err(OAuthError::InvalidTarget("This client may not request that audience.".into()));
    }
    let now_unix = now.and_utc().timestamp();
    if subject.exp <= now_unix || !is_access_live(conn, &subject.sid, status, now)? {
        return Err(OAuthError::InvalidGrant("The subject token is expired or revoked.".into()));
    }
    let exp = (now_unix + settings.access_ttl_secs).min(subject.exp);
    let act = Actor { sub: client.id.clone(), act: subject.act.map(Box::new) };
    let claims = AccessClaims {
        aud: Audience::One(audience.to_owned()),
        exp,
        iat: now_unix,
        nbf: Some(now_unix),
        jti: Uuid::new_v4().to_string(),
        client_id: client.id.clone(),
        amr: Vec::new(),
        act: Some(act),
        ..subject
    };
    let access_token = sign_access(signer, &claims).map_err(|e| OAuthError::Api(ApiError::internal(e)))?;
    Ok(Issued {
        access_token,
        token_type: "Bearer",
        expires_in: exp - now_unix,
        scope: None,
        issued_token_type: Some(ACCESS_TOKEN_TYPE),
    })
}
