//! Minting signed tokens: the RFC 9068 access token and the refresh token,
//! exactly as API.md describes them. Verification lives in `signet-verify`.

use serde::{Deserialize, Serialize};
use signet_verify::{AccessClaims, Audience, Status, StatusListRef, TimeBound, Verifier, VerifyError};
use uuid::Uuid;

use crate::config::TokenSettings;
use crate::keys::ring::SigningKey;
use crate::status_lists::service::list_uri;
use crate::status_lists::StatusRef;

pub const REFRESH_TOKEN_TYPE: &str = "refresh+jwt";

/// Claims of a refresh token. Its audience is the issuer itself, so no
/// resource server's access-token check can accept it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefreshClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    pub sid: String,
    /// signet does not set it on refresh tokens, but honours it if present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
}

impl TimeBound for RefreshClaims {
    fn exp(&self) -> i64 {
        self.exp
    }
    fn nbf(&self) -> Option<i64> {
        self.nbf
    }
}

/// The token pair body of API.md. In cookie mode the refresh token is left out.
#[derive(Debug, Clone, Serialize)]
pub struct TokenPair {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub refresh_expires_in: i64,
}

/// Whom a pair is for.
pub struct Subject<'a> {
    pub user_id: &'a str,
    pub username: &'a str,
    pub roles: Vec<String>,
    pub session_id: &'a str,
    /// The status list index access tokens carry (None: revocation disabled).
    pub status: Option<StatusRef>,
    /// How the user authenticated (RFC 8176 `amr`): `["pwd"]` for a password
    /// login and its refreshes, empty for derived credentials (API-token
    /// exchange), so routes that mint credentials can tell them apart.
    pub amr: &'static [&'static str],
}

/// The identity of the refresh token to sign: a new one at rotation, or the
/// already-issued successor again within the reuse grace window.
pub struct RefreshSpec {
    pub jti: String,
    pub issued_at: i64,
    pub expires_at: i64,
}

impl RefreshSpec {
    pub fn new(now: i64, expires_at: i64) -> Self {
        RefreshSpec { jti: new_refresh_jti(), issued_at: now, expires_at }
    }
}

/// A refresh token's `jti`, its primary key in `refresh_tokens`: a UUIDv7
/// (RFC 9562: the time in milliseconds, then a randomly seeded counter and
/// random bits; uuid keeps one process's ids in creation order), so new tokens
/// land at the right edge of the key's index instead of on a random page of
/// it: fewer pages written per commit (SQLite's WAL, PostgreSQL's full-page
/// images after a checkpoint). The time it shows is the token's `iat` anyway.
pub fn new_refresh_jti() -> String {
    Uuid::now_v7().to_string()
}

/// A freshly signed pair and what must be stored about its refresh token.
pub struct Minted {
    pub pair: TokenPair,
    pub refresh_jti: String,
    pub refresh_expires_at: i64,
}

/// Signs a pair at `now` (Unix seconds). The refresh token is `refresh`
/// (the caller caps its expiry by the session's lifetime); the access token
/// never outlives it.
pub fn mint_pair(
    settings: &TokenSettings,
    key: &SigningKey,
    subject: Subject<'_>,
    now: i64,
    refresh: RefreshSpec,
) -> anyhow::Result<Minted> {
    let refresh_expires_at = refresh.expires_at;
    let (access_token, access_expires_at) = mint_access(settings, key, &subject, now, refresh_expires_at)?;
    let refresh = RefreshClaims {
        iss: settings.issuer.clone(),
        sub: subject.user_id.to_owned(),
        aud: settings.issuer.clone(),
        iat: refresh.issued_at,
        exp: refresh.expires_at,
        jti: refresh.jti,
        sid: subject.session_id.to_owned(),
        nbf: None,
    };
    let refresh_token = key.sign_jwt(REFRESH_TOKEN_TYPE, &refresh)?;
    Ok(Minted {
        pair: TokenPair {
            access_token,
            token_type: "Bearer",
            expires_in: access_expires_at - now,
            refresh_token: Some(refresh_token),
            refresh_expires_in: refresh_expires_at - now,
        },
        refresh_jti: refresh.jti,
        refresh_expires_at,
    })
}

/// Signs an access token at `now`, expiring after the access TTL but never
/// after `not_after`. Returns it and its expiry.
pub fn mint_access(
    settings: &TokenSettings,
    key: &SigningKey,
    subject: &Subject<'_>,
    now: i64,
    not_after: i64,
) -> anyhow::Result<(String, i64)> {
    let expires_at = (now + settings.access_ttl_secs).min(not_after);
    let access = AccessClaims {
        iss: settings.issuer.clone(),
        sub: subject.user_id.to_owned(),
        aud: Audience::One(settings.audience.clone()),
        exp: expires_at,
        iat: now,
        nbf: Some(now),
        jti: Uuid::new_v4().to_string(),
        client_id: settings.client_id.clone(),
        sid: subject.session_id.to_owned(),
        roles: subject.roles.clone(),
        preferred_username: Some(subject.username.to_owned()),
        amr: subject.amr.iter().map(|m| (*m).to_owned()).collect(),
        status: subject.status.map(|s| status_claim(&settings.issuer, s)),
        scope: None,
        act: None,
    };
    Ok((sign_access(key, &access)?, expires_at))
}

/// The `status` claim of a token holding index `entry`.
pub fn status_claim(issuer: &str, entry: StatusRef) -> Status {
    Status { status_list: StatusListRef { idx: entry.idx as u64, uri: list_uri(issuer, entry.list) } }
}

/// Signs access-token claims built elsewhere (the OAuth grants) as `at+jwt`.
pub fn sign_access(key: &SigningKey, claims: &AccessClaims) -> anyhow::Result<String> {
    key.sign_jwt(signet_verify::ACCESS_TOKEN_TYPE, claims)
}

/// Verifies a refresh token's signature, type, issuer, audience and expiry.
/// Whether it is still current is the session store's question.
pub fn verify_refresh(verifier: &Verifier, issuer: &str, token: &str) -> Result<RefreshClaims, VerifyError> {
    verifier.verify_as::<RefreshClaims>(token, REFRESH_TOKEN_TYPE, issuer)
}

#[cfg(test)]
mod tests {
    use super::new_refresh_jti;

    /// Refresh jtis go to the right edge of the primary key's index: each one
    /// sorts after the one before (the text is what the index compares).
    #[test]
    fn refresh_jtis_are_uuid_v7_in_issue_order() {
        let jtis: Vec<String> = (0..2_000).map(|_| new_refresh_jti()).collect();
        for pair in jtis.windows(2) {
            assert!(pair[0] < pair[1], "{} then {}", pair[0], pair[1]);
        }
        let parsed = uuid::Uuid::parse_str(&jtis[0]).unwrap();
        assert_eq!(parsed.get_version_num(), 7);
    }
}
