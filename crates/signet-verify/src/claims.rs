use serde::{Deserialize, Serialize};

/// The `aud` claim: a single string or an array (RFC 7519 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    pub fn contains(&self, audience: &str) -> bool {
        match self {
            Audience::One(one) => one == audience,
            Audience::Many(many) => many.iter().any(|a| a == audience),
        }
    }
}

/// Claims of a signet access token (RFC 9068 profile plus `roles` and `sid`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    /// The user's id (a UUID string).
    pub sub: String,
    pub aud: Audience,
    pub exp: i64,
    pub iat: i64,
    /// Absent `nbf` is allowed by RFC 7519; signet always sets it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    pub jti: String,
    pub client_id: String,
    /// The session this token belongs to (shared by every token of one login).
    pub sid: String,
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    /// How the user authenticated (RFC 8176): `["pwd"]` for a password login
    /// and its refreshes. Derived credentials (API-token exchange, client
    /// credentials, token exchange) carry none, so routes that mint
    /// credentials can refuse them (see [`AccessClaims::is_password_login`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// Where this token's revocation status is published (IETF Token Status
    /// List): a list URI and an index in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// RFC 9068 `scope`: the granted roles, space-separated (tokens issued
    /// to OAuth clients).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// RFC 8693 §4.1 `act`: the client acting for `sub` (token exchange).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Actor>,
}

/// The `act` claim of RFC 8693: who acts, and (nested) for whom it acted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Box<Actor>>,
}

/// The RFC 8176 `amr` value of a password login.
pub const AMR_PASSWORD: &str = "pwd";

/// The `status` claim of draft-ietf-oauth-status-list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub status_list: StatusListRef,
}

/// One token's place in a status list: bit(s) `idx` of the list at `uri`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusListRef {
    pub idx: u64,
    pub uri: String,
}

impl AccessClaims {
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    pub fn has_any_role(&self, roles: &[&str]) -> bool {
        roles.iter().any(|role| self.has_role(role))
    }

    /// Whether the token came from a password login (or a refresh of one),
    /// as opposed to a derived credential.
    pub fn is_password_login(&self) -> bool {
        self.amr.iter().any(|m| m == AMR_PASSWORD)
    }
}
