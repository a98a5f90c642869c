//! Property tests with random input.
//!
//! - Against the running service: random bodies (bytes, JSON of any shape,
//!   JSON with each endpoint's fields of random types, tricky JSON text),
//!   content types, `Authorization` headers, refresh cookies, path ids and
//!   query strings, sent to every JSON endpoint and every token-only one.
//!   Never a 5xx; every 4xx is a problem document.
//! - Against `signet_verify::Verifier` alone: random strings never panic,
//!   a mutated real token is never accepted, and a payload of random claims
//!   signed with the real key is accepted only when its claims are right.
//!
//! `PROPTEST_CASES` overrides the number of cases.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, COOKIE};
use reqwest::Method;
use serde_json::{json, Value};
use signet::config::Settings;
use signet_verify::{AccessClaims, Audience, Rules, Verifier};

use crate::backend_tests;
use crate::helpers::{TestApp, PASSWORD};

backend_tests!(random_requests_never_get_a_5xx);

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn config(cases: u32) -> Config {
    // No regression files in the tree; a failure prints its minimal input.
    Config { cases, failure_persistence: None, max_shrink_time: 60_000, ..Config::default() }
}

// ---------------------------------------------------------------------------
// The running service
// ---------------------------------------------------------------------------

/// The rate limits stay on, but far above what the run sends: otherwise most
/// requests would end as 429 before reaching a body parser.
fn generous_limits(s: &mut Settings) {
    s.throttle.per_ip_burst = 1_000_000;
    s.throttle.per_ip_per_minute = 1_000_000;
}

async fn random_requests_never_get_a_5xx(app: TestApp) {
    let app = app.restart_with(generous_limits).await;
    let fixture = Arc::new(Fixture::new(app).await);
    let started = Instant::now();
    let cases = cases(512);
    let runner_fixture = fixture.clone();
    let result = tokio::task::spawn_blocking(move || {
        // A blocking thread may drive async requests with block_on; the server
        // keeps running on the runtime's workers.
        let runtime = tokio::runtime::Handle::current();
        let mut runner = TestRunner::new(config(cases));
        runner.run(&case(), |case| runtime.block_on(runner_fixture.check(&case))).map_err(|err| err.to_string())
    })
    .await
    .unwrap();
    let statuses = fixture.statuses.lock().unwrap().clone();
    let requests: usize = statuses.values().sum();
    eprintln!(
        "{:?}: {cases} cases, {requests} requests in {:.1} s; statuses {statuses:?}",
        fixture.app.backend,
        started.elapsed().as_secs_f64()
    );
    if let Err(err) = result {
        panic!("{err}");
    }
    // Still serving after all that (a fresh user: random bodies may have
    // changed fuzz-user's password, as /v1/auth/password sees PASSWORD often).
    fixture.app.register_ok("fuzz-after").await;
    let pair = fixture.app.login_ok("fuzz-after").await;
    assert_eq!(fixture.app.get("/v1/auth/me", Some(pair.access.as_str())).await.status(), 200);
}

/// The app plus the identities random requests may borrow.
struct Fixture {
    app: TestApp,
    user_token: String,
    admin_token: String,
    /// A user the admin routes act on (never the admin itself, so the admin
    /// token stays good whatever a PATCH sets).
    victim_id: String,
    statuses: Mutex<BTreeMap<u16, usize>>,
}

impl Fixture {
    async fn new(app: TestApp) -> Fixture {
        app.register_ok("fuzz-user").await;
        let user_token = app.login_ok("fuzz-user").await.access;
        let admin_token = app.admin_token("fuzz-admin").await;
        let victim_id = app.register_ok("fuzz-victim").await["id"].as_str().unwrap().to_owned();
        Fixture { app, user_token, admin_token, victim_id, statuses: Mutex::new(BTreeMap::new()) }
    }

    /// Sends the case to every endpoint; the first wrong answer fails it.
    async fn check(&self, case: &Case) -> Result<(), TestCaseError> {
        for endpoint in Endpoint::ALL {
            let res = self.request(endpoint, case).send().await.map_err(|e| TestCaseError::fail(e.to_string()))?;
            let status = res.status().as_u16();
            *self.statuses.lock().unwrap().entry(status).or_default() += 1;
            let content_type = res.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
            let body = res.text().await.unwrap_or_default();
            let wrong = |why: &str| {
                let body: String = body.chars().take(300).collect();
                Err(TestCaseError::fail(format!("{endpoint:?}: {why}: {status} {content_type} {body}")))
            };
            if status >= 500 {
                return wrong("server error");
            }
            if !(200..300).contains(&status) && !(400..500).contains(&status) {
                return wrong("neither success nor client error");
            }
            if (400..500).contains(&status) {
                if content_type != "application/problem+json" {
                    return wrong("a 4xx that is not a problem document");
                }
                let problem: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                if problem["status"] != status || !problem["code"].is_string() || !problem["title"].is_string() {
                    return wrong("an incomplete problem document");
                }
            }
        }
        Ok(())
    }

    fn request(&self, endpoint: Endpoint, case: &Case) -> reqwest::RequestBuilder {
        let id = match &case.id {
            PathId::Victim => self.victim_id.clone(),
            PathId::Other(id) => id.clone(),
        };
        let mut url = reqwest::Url::parse(&self.app.url("/")).unwrap();
        url.path_segments_mut().unwrap().pop_if_empty().extend(endpoint.path(&id));
        if endpoint == Endpoint::AdminList {
            url.query_pairs_mut().append_pair("limit", &case.query.0).append_pair("offset", &case.query.1);
        }
        let mut req = self.app.client.request(endpoint.method(), url);
        if endpoint.has_body() {
            req = req.body(case.body.bytes());
            if let Some(content_type) = case.content_type {
                req = req.header(CONTENT_TYPE, content_type);
            }
        }
        let valid = match endpoint.role() {
            Role::Admin => &self.admin_token,
            Role::User | Role::None => &self.user_token,
        };
        if let Some(value) = case.auth.header(valid) {
            req = req.header(AUTHORIZATION, value);
        }
        match &case.cookie {
            Cookie::None => {}
            Cookie::Plain(value) | Cookie::WithCsrfHeaders(value) => {
                if let Ok(value) = HeaderValue::from_str(&format!("__Host-signet_refresh={value}")) {
                    req = req.header(COOKIE, value);
                }
                if matches!(case.cookie, Cookie::WithCsrfHeaders(_)) {
                    req = req.header("origin", self.app.address.as_str()).header("x-requested-with", "signet");
                }
            }
        }
        req
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Endpoint {
    Register,
    Login,
    Refresh,
    Logout,
    Password,
    AdminPatchUser,
    AdminSetRoles,
    Me,
    Sessions,
    DeleteSession,
    AdminList,
    AdminGetUser,
}

enum Role {
    None,
    User,
    Admin,
}

impl Endpoint {
    /// Every JSON endpoint, then the token-only ones (logout-all and the
    /// admin delete are left out: they would end the identities the run uses).
    const ALL: [Endpoint; 12] = [
        Endpoint::Register,
        Endpoint::Login,
        Endpoint::Refresh,
        Endpoint::Logout,
        Endpoint::Password,
        Endpoint::AdminPatchUser,
        Endpoint::AdminSetRoles,
        Endpoint::Me,
        Endpoint::Sessions,
        Endpoint::DeleteSession,
        Endpoint::AdminList,
        Endpoint::AdminGetUser,
    ];

    fn path(self, id: &str) -> Vec<&str> {
        let mut path = match self {
            Endpoint::Register => vec!["v1", "auth", "register"],
            Endpoint::Login => vec!["v1", "auth", "login"],
            Endpoint::Refresh => vec!["v1", "auth", "refresh"],
            Endpoint::Logout => vec!["v1", "auth", "logout"],
            Endpoint::Password => vec!["v1", "auth", "password"],
            Endpoint::Me => vec!["v1", "auth", "me"],
            Endpoint::Sessions => vec!["v1", "auth", "sessions"],
            Endpoint::DeleteSession => vec!["v1", "auth", "sessions", id],
            Endpoint::AdminList => vec!["v1", "admin", "users"],
            Endpoint::AdminPatchUser | Endpoint::AdminGetUser | Endpoint::AdminSetRoles => {
                vec!["v1", "admin", "users", id]
            }
        };
        if self == Endpoint::AdminSetRoles {
            path.push("roles");
        }
        path
    }

    fn method(self) -> Method {
        match self {
            Endpoint::Register | Endpoint::Login | Endpoint::Refresh | Endpoint::Logout | Endpoint::Password => {
                Method::POST
            }
            Endpoint::AdminPatchUser => Method::PATCH,
            Endpoint::AdminSetRoles => Method::PUT,
            Endpoint::DeleteSession => Method::DELETE,
            Endpoint::Me | Endpoint::Sessions | Endpoint::AdminList | Endpoint::AdminGetUser => Method::GET,
        }
    }

    fn has_body(self) -> bool {
        matches!(self.method(), Method::POST | Method::PATCH | Method::PUT)
    }

    fn role(self) -> Role {
        match self {
            Endpoint::Register | Endpoint::Login | Endpoint::Refresh | Endpoint::Logout => Role::None,
            Endpoint::AdminPatchUser | Endpoint::AdminSetRoles | Endpoint::AdminList | Endpoint::AdminGetUser => {
                Role::Admin
            }
            Endpoint::Password | Endpoint::Me | Endpoint::Sessions | Endpoint::DeleteSession => Role::User,
        }
    }
}

/// One random request, sent to every endpoint.
#[derive(Clone, Debug)]
struct Case {
    body: Body,
    content_type: Option<&'static str>,
    auth: Auth,
    cookie: Cookie,
    id: PathId,
    query: (String, String),
}

#[derive(Clone, Debug)]
enum Body {
    Bytes(Vec<u8>),
    Json(Value),
    Text(String),
}

impl Body {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Body::Bytes(bytes) => bytes.clone(),
            Body::Json(value) => serde_json::to_vec(value).unwrap(),
            Body::Text(text) => text.clone().into_bytes(),
        }
    }
}

#[derive(Clone, Debug)]
enum Auth {
    None,
    /// The right token for the endpoint (the admin's on admin routes).
    Valid,
    /// That token with a few characters changed.
    Mutated(Vec<Mutation>),
    /// `Bearer ` and printable ASCII.
    Bearer(String),
    /// Any bytes a header value may hold, scheme or not.
    Raw(Vec<u8>),
}

impl Auth {
    fn header(&self, valid: &str) -> Option<HeaderValue> {
        let value = match self {
            Auth::None => return None,
            Auth::Valid => format!("Bearer {valid}").into_bytes(),
            Auth::Mutated(mutations) => format!("Bearer {}", mutate(valid, mutations)).into_bytes(),
            Auth::Bearer(token) => format!("Bearer {token}").into_bytes(),
            Auth::Raw(bytes) => bytes.clone(),
        };
        // A value the client cannot send is not a request: leave the header out.
        HeaderValue::from_bytes(&value).ok()
    }
}

#[derive(Clone, Debug)]
enum Cookie {
    None,
    Plain(String),
    /// With `Origin` (our own) and `X-Requested-With: signet`: past the CSRF check.
    WithCsrfHeaders(String),
}

#[derive(Clone, Debug)]
enum PathId {
    Victim,
    Other(String),
}

fn case() -> impl Strategy<Value = Case> {
    let content_type = prop_oneof![
        12 => Just(Some("application/json")),
        1 => Just(None),
        1 => Just(Some("text/plain")),
        1 => Just(Some("application/x-www-form-urlencoded")),
        1 => Just(Some("application/json; charset=utf-8")),
        1 => Just(Some("application/json; charset=latin1")),
        1 => Just(Some("application/merge-patch+json")),
        1 => Just(Some("multipart/form-data; boundary=x")),
    ];
    let cookie = prop_oneof![
        6 => Just(Cookie::None),
        1 => token_like().prop_map(Cookie::Plain),
        1 => token_like().prop_map(Cookie::WithCsrfHeaders),
    ];
    let id = prop_oneof![
        3 => Just(PathId::Victim),
        1 => Just(PathId::Other(uuid::Uuid::new_v4().to_string())),
        2 => any::<String>().prop_map(PathId::Other),
    ];
    let query_value = || prop_oneof![any::<i64>().prop_map(|n| n.to_string()), "[ -~]{0,20}", any::<String>()];
    (body(), content_type, auth(), cookie, id, (query_value(), query_value()))
        .prop_map(|(body, content_type, auth, cookie, id, query)| Case { body, content_type, auth, cookie, id, query })
}

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        2 => prop::collection::vec(any::<u8>(), 0..512).prop_map(Body::Bytes),
        3 => json_value().prop_map(Body::Json),
        6 => shaped_body().prop_map(Body::Json),
        2 => tricky_text().prop_map(Body::Text),
    ]
}

/// Every field any endpoint reads.
const FIELDS: [&str; 9] = [
    "username",
    "password",
    "email",
    "token_delivery",
    "refresh_token",
    "current_password",
    "new_password",
    "disabled",
    "roles",
];

/// An endpoint's own fields (each present or not), with plausible values or
/// values of a random type, or a random subset of all fields.
fn shaped_body() -> impl Strategy<Value = Value> {
    let field =
        |plausible: BoxedStrategy<Value>| prop::option::weighted(0.85, prop_oneof![3 => plausible, 1 => json_value()]);
    let object = |members: Vec<(&'static str, Option<Value>)>| {
        Value::Object(members.into_iter().filter_map(|(k, v)| v.map(|v| (k.to_owned(), v))).collect())
    };
    let username = || "[A-Za-z0-9._-]{0,70}".prop_map(Value::from).boxed();
    let password = || prop_oneof![Just(Value::from(PASSWORD)), any::<String>().prop_map(Value::from)].boxed();
    let email = || prop_oneof![Just(Value::Null), "[a-z]{1,8}@[a-z]{1,8}\\.[a-z]{2,3}".prop_map(Value::from)].boxed();
    let delivery = || prop_oneof![Just(json!("cookie")), Just(json!("body")), "[a-z]{0,8}".prop_map(Value::from)];
    let roles = || prop::collection::vec("[a-z_:-]{0,80}", 0..40).prop_map(Value::from).boxed();
    prop_oneof![
        (field(username()), field(password()), field(email())).prop_map(move |(u, p, e)| object(vec![
            ("username", u),
            ("password", p),
            ("email", e)
        ])),
        (field(username()), field(password()), field(delivery().boxed())).prop_map(move |(u, p, d)| object(vec![
            ("username", u),
            ("password", p),
            ("token_delivery", d)
        ])),
        field(token_like().prop_map(Value::from).boxed()).prop_map(move |t| object(vec![("refresh_token", t)])),
        (field(password()), field(password()))
            .prop_map(move |(c, n)| object(vec![("current_password", c), ("new_password", n)])),
        (field(any::<bool>().prop_map(Value::from).boxed()), field(email()))
            .prop_map(move |(d, e)| object(vec![("disabled", d), ("email", e)])),
        field(roles()).prop_map(move |r| object(vec![("roles", r)])),
        prop::collection::btree_map(prop::sample::select(FIELDS.to_vec()), json_value(), 0..9)
            .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
    ]
}

/// Any JSON value: scalars of every kind, arrays and objects up to depth 4.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f).map(Value::Number)),
        any::<String>().prop_map(Value::from),
        "[A-Za-z0-9._-]{0,70}".prop_map(Value::from),
        (0usize..4000).prop_map(|n| Value::from("x".repeat(n))),
    ];
    leaf.prop_recursive(4, 48, 8, |inner| {
        let key = prop_oneof![prop::sample::select(FIELDS.to_vec()).prop_map(str::to_owned), any::<String>()];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(key, inner, 0..8).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// JSON text no `Value` can spell: deep nesting, duplicate keys, numbers out
/// of range, lone surrogates, a BOM, trailing garbage, a body over the limit.
fn tricky_text() -> impl Strategy<Value = String> {
    prop_oneof![
        (1usize..3000).prop_map(|n| format!("{}{}", "[".repeat(n), "]".repeat(n))),
        (1usize..3000).prop_map(|n| format!("{}1{}", "{\"username\":".repeat(n), "}".repeat(n))),
        (1usize..3000).prop_map(|n| "[".repeat(n)),
        Just(r#"{"username":"fuzz-user","username":1,"password":"x"}"#.to_owned()),
        Just(r#"{"refresh_token":"a","refresh_token":"b"}"#.to_owned()),
        Just(r#"{"roles":["user"],"roles":null}"#.to_owned()),
        Just(r#"{"disabled":1e999999}"#.to_owned()),
        Just(r#"{"username":123456789012345678901234567890}"#.to_owned()),
        Just(r#"{"username":"\ud800","password":"\udfff"}"#.to_owned()),
        Just(r#"{"username":"a\u0000b","password":"x"}"#.to_owned()),
        Just("\u{feff}{}".to_owned()),
        Just("{} trailing".to_owned()),
        Just(String::new()),
        Just("null".to_owned()),
        (16 * 1024usize..17 * 1024).prop_map(|n| format!(r#"{{"username":"{}"}}"#, "u".repeat(n))),
    ]
}

/// A JWT-like string: dot-separated base64url-ish segments, or anything.
fn token_like() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec("[A-Za-z0-9_-]{0,60}", 0..6).prop_map(|parts| parts.join(".")),
        "[ -~]{0,200}",
        (8100usize..8300).prop_map(|n| "A".repeat(n)),
    ]
}

fn auth() -> impl Strategy<Value = Auth> {
    prop_oneof![
        2 => Just(Auth::None),
        3 => Just(Auth::Valid),
        3 => prop::collection::vec(mutation(), 1..4).prop_map(Auth::Mutated),
        2 => token_like().prop_map(Auth::Bearer),
        // Control characters other than tab cannot be sent: they become 'x'.
        1 => prop::collection::vec(any::<u8>(), 0..300).prop_map(|bytes| Auth::Raw(
            bytes.into_iter().map(|b| if (b < 0x20 && b != b'\t') || b == 0x7f { b'x' } else { b }).collect()
        )),
        1 => (prop_oneof![Just("Basic "), Just("bearer "), Just("BEARER\t"), Just("Bearer  ")], token_like())
            .prop_map(|(scheme, token)| Auth::Raw(format!("{scheme}{token}").into_bytes())),
    ]
}

// ---------------------------------------------------------------------------
// Mutations of a real token
// ---------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Mutation {
    Replace(Index, char),
    Delete(Index),
    Insert(Index, char),
    Truncate(Index),
    FlipBit(Index, u8),
    SwapCase(Index),
    SwapParts(Index, Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let ch = prop_oneof![
        4 => prop::sample::select(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ \t".to_vec())
            .prop_map(char::from),
        1 => any::<char>(),
    ];
    prop_oneof![
        (any::<Index>(), ch.clone()).prop_map(|(i, c)| Mutation::Replace(i, c)),
        any::<Index>().prop_map(Mutation::Delete),
        (any::<Index>(), ch).prop_map(|(i, c)| Mutation::Insert(i, c)),
        any::<Index>().prop_map(Mutation::Truncate),
        (any::<Index>(), 0u8..8).prop_map(|(i, bit)| Mutation::FlipBit(i, bit)),
        any::<Index>().prop_map(Mutation::SwapCase),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::SwapParts(a, b)),
    ]
}

fn mutate(token: &str, mutations: &[Mutation]) -> String {
    let mut chars: Vec<char> = token.chars().collect();
    for mutation in mutations {
        let len = chars.len().max(1);
        match mutation {
            Mutation::Replace(i, c) if !chars.is_empty() => chars[i.index(len)] = *c,
            Mutation::Delete(i) if !chars.is_empty() => {
                chars.remove(i.index(len));
            }
            Mutation::Insert(i, c) => chars.insert(i.index(chars.len() + 1), *c),
            Mutation::Truncate(i) => chars.truncate(i.index(len)),
            Mutation::FlipBit(i, bit) if !chars.is_empty() => {
                let at = i.index(len);
                let flipped = (chars[at] as u32) ^ (1 << bit);
                chars[at] = char::from_u32(flipped).unwrap_or('\u{fffd}');
            }
            Mutation::SwapCase(i) if !chars.is_empty() => {
                let at = i.index(len);
                let c = chars[at];
                chars[at] = if c.is_ascii_uppercase() { c.to_ascii_lowercase() } else { c.to_ascii_uppercase() };
            }
            Mutation::SwapParts(a, b) => {
                let text: String = chars.iter().collect();
                let mut parts: Vec<&str> = text.split('.').collect();
                let (a, b) = (a.index(parts.len()), b.index(parts.len()));
                parts.swap(a, b);
                chars = parts.join(".").chars().collect();
            }
            _ => {}
        }
    }
    chars.into_iter().collect()
}

// ---------------------------------------------------------------------------
// The verifier alone
// ---------------------------------------------------------------------------

const ISSUER: &str = "https://id.example.test";
const AUDIENCE: &str = "signet";
const NOW: i64 = 1_800_000_000;
const KID: &str = "proptest-key";

/// A verifier with one ES256 key, a fixed clock, and tokens it accepts.
struct Keyed {
    verifier: Arc<Verifier>,
    key: EncodingKey,
    access: String,
    refresh: String,
}

fn keyed() -> &'static Keyed {
    static KEYED: OnceLock<Keyed> = OnceLock::new();
    KEYED.get_or_init(|| {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new()).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        let point = pair.public_key().as_ref();
        let jwks = json!({"keys": [{"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": KID,
            "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..65])}]});
        let verifier = Verifier::builder(Rules::new(ISSUER, AUDIENCE))
            .jwks_json(&jwks.to_string())
            .clock(Arc::new(|| NOW))
            .build()
            .unwrap();
        let key = EncodingKey::from_ec_der(pkcs8.as_ref());
        let access = sign(&key, signet_verify::ACCESS_TOKEN_TYPE, &access_claims());
        let refresh = sign(&key, signet::tokens::REFRESH_TOKEN_TYPE, &refresh_claims());
        let keyed = Keyed { verifier, key, access, refresh };
        assert!(keyed.verifier.verify(&keyed.access).is_ok(), "the access token verifies");
        assert!(verify_refresh(&keyed.verifier, &keyed.refresh).is_ok(), "the refresh token verifies");
        keyed
    })
}

fn access_claims() -> AccessClaims {
    AccessClaims {
        iss: ISSUER.into(),
        sub: "4b1c6f9e-2d7a-4c55-9a0e-0f5d7c1e2a3b".into(),
        aud: Audience::One(AUDIENCE.into()),
        exp: NOW + 600,
        iat: NOW,
        nbf: Some(NOW),
        jti: "j-1".into(),
        client_id: "signet".into(),
        sid: "s-1".into(),
        roles: vec!["user".into()],
        preferred_username: Some("alice".into()),
        amr: Vec::new(),
        status: None,
        scope: None,
        act: None,
    }
}

fn refresh_claims() -> Value {
    json!({"iss": ISSUER, "sub": "4b1c6f9e-2d7a-4c55-9a0e-0f5d7c1e2a3b", "aud": ISSUER,
        "iat": NOW, "exp": NOW + 3600, "jti": "r-1", "sid": "s-1"})
}

fn sign(key: &EncodingKey, typ: &str, claims: &impl serde::Serialize) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(KID.into());
    header.typ = Some(typ.into());
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

fn verify_refresh(
    verifier: &Verifier,
    token: &str,
) -> Result<signet::tokens::RefreshClaims, signet_verify::VerifyError> {
    signet::tokens::verify_refresh(verifier, ISSUER, token)
}

/// A claims object: each registered claim right, wrong, of a random type or
/// absent, plus the rest of an access token.
fn random_claims() -> impl Strategy<Value = Value> {
    let member = |right: Value, wrong: Value| {
        prop_oneof![
            4 => Just(Some(right)),
            2 => Just(Some(wrong)),
            1 => json_value().prop_map(Some),
            1 => Just(None),
        ]
    };
    let time = |center: i64| {
        prop_oneof![
            Just(Some(json!(center))),
            (-100_000i64..100_000).prop_map(move |d| Some(json!(center + d))),
            json_value().prop_map(Some),
            Just(None)
        ]
    };
    (
        member(json!(ISSUER), json!(format!("{ISSUER}/"))),
        member(json!(AUDIENCE), json!(["other", AUDIENCE.to_uppercase()])),
        member(json!("4b1c6f9e-2d7a-4c55-9a0e-0f5d7c1e2a3b"), json!(7)),
        time(NOW + 600),
        time(NOW),
        member(json!(["user"]), json!("user")),
    )
        .prop_map(|(iss, aud, sub, exp, nbf, roles)| {
            let mut claims = json!({"iat": NOW, "jti": "j", "client_id": "signet", "sid": "s"});
            for (name, value) in
                [("iss", iss), ("aud", aud), ("sub", sub), ("exp", exp), ("nbf", nbf), ("roles", roles)]
            {
                if let Some(value) = value {
                    claims[name] = value;
                }
            }
            claims
        })
}

/// What API.md requires of accepted claims, read from the raw JSON.
fn claims_are_right(claims: &Value) -> bool {
    let leeway = signet_verify::DEFAULT_LEEWAY_SECS as i64;
    let strings = |value: &Value| value.as_array().is_some_and(|items| items.iter().all(Value::is_string));
    let aud_ok = match &claims["aud"] {
        Value::String(aud) => aud == AUDIENCE,
        auds => strings(auds) && auds.as_array().unwrap().iter().any(|a| a == AUDIENCE),
    };
    let exp_ok = claims["exp"].as_i64().is_some_and(|exp| exp.saturating_add(leeway) > NOW);
    let nbf_ok = match &claims["nbf"] {
        Value::Null => true,
        nbf => nbf.as_i64().is_some_and(|nbf| nbf.saturating_sub(leeway) <= NOW),
    };
    claims["iss"] == ISSUER && aud_ok && exp_ok && nbf_ok && claims["sub"].is_string() && strings(&claims["roles"])
}

proptest! {
    #![proptest_config(config(cases(2000)))]

    #[test]
    fn verifier_never_panics_on_random_text(text in prop_oneof![
        any::<String>(),
        prop::collection::vec(any::<u8>(), 0..9000).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        token_like(),
        (json_value(), json_value(), "[A-Za-z0-9_-]{0,100}").prop_map(|(h, p, s)| {
            format!("{}.{}.{s}", B64.encode(h.to_string()), B64.encode(p.to_string()))
        }),
    ]) {
        let keyed = keyed();
        prop_assert!(keyed.verifier.verify(&text).is_err());
        prop_assert!(verify_refresh(&keyed.verifier, &text).is_err());
        let _ = keyed.verifier.verify_as::<AccessClaims>(&text, "refresh+jwt", ISSUER);
    }

    #[test]
    fn verifier_never_accepts_a_mutated_token(
        refresh in any::<bool>(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let keyed = keyed();
        let original = if refresh { &keyed.refresh } else { &keyed.access };
        let mutated = mutate(original, &mutations);
        prop_assume!(&mutated != original);
        prop_assert!(keyed.verifier.verify(&mutated).is_err(), "accepted as access: {mutated}");
        prop_assert!(verify_refresh(&keyed.verifier, &mutated).is_err(), "accepted as refresh: {mutated}");
    }

    #[test]
    fn verifier_accepts_signed_claims_only_when_they_are_right(claims in random_claims()) {
        let keyed = keyed();
        let token = sign(&keyed.key, signet_verify::ACCESS_TOKEN_TYPE, &claims);
        let verdict = keyed.verifier.verify(&token);
        prop_assert_eq!(verdict.is_ok(), claims_are_right(&claims), "{} -> {:?}", claims, verdict);
    }
}
