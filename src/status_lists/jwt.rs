//! The signed list: a compact JWS with `typ: statuslist+jwt`, signed by the
//! key that signs access tokens now (its `kid` is in the JWKS).

use serde::Serialize;

use crate::keys::ring::SigningKey;

pub const STATUS_LIST_TYPE: &str = "statuslist+jwt";

#[derive(Serialize)]
struct ListClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    iat: i64,
    exp: i64,
    ttl: i64,
    status_list: ListBody<'a>,
}

#[derive(Serialize)]
struct ListBody<'a> {
    bits: u8,
    lst: &'a str,
}

/// What goes into one signed list.
pub struct ListToken<'a> {
    pub issuer: &'a str,
    pub uri: &'a str,
    pub lst: &'a str,
    pub iat: i64,
    pub exp: i64,
    pub ttl: i64,
}

pub fn sign(key: &SigningKey, list: &ListToken<'_>) -> anyhow::Result<String> {
    let claims = ListClaims {
        iss: list.issuer,
        sub: list.uri,
        iat: list.iat,
        exp: list.exp,
        ttl: list.ttl,
        status_list: ListBody { bits: 1, lst: list.lst },
    };
    key.sign_jwt(STATUS_LIST_TYPE, &claims)
}
