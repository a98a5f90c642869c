//! The JWT attack suite (RFC 8725): hostile tokens on both token paths of the
//! running service.
//!
//! - access path: `GET /v1/auth/me` with `Authorization: Bearer` must answer
//!   401 `invalid_token` with `WWW-Authenticate: Bearer realm="signet", error="invalid_token"`;
//! - refresh path: `POST /v1/auth/refresh` must answer 401 `invalid_refresh_token`.
//!
//! Most attacks start from the header and claims of a live session's token and
//! are signed with the service's own key (`TestApp::real_signing_key`), so each
//! is wrong in exactly one way and its rejection proves that check, not just
//! the signature check. Every table starts with a control (the same claims
//! re-signed unchanged must be accepted), so a broken forger cannot pass for a
//! strict service. A table runs all its attacks on both paths and reports every
//! wrong answer at once; afterwards the service must still serve a good token.
//! The basic cases (garbage, a tampered payload, HS256 keyed with a JWKS string,
//! an unknown kid, expiry at the leeway) live in `bearer.rs`.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD as B64};
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey};
use reqwest::header::{HeaderValue, AUTHORIZATION};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::backend_tests;
use crate::helpers::{www_authenticate, TestApp};

backend_tests!(
    alg_none_and_key_confusion_are_rejected,
    hostile_kids_and_key_headers_are_rejected,
    wrong_types_and_claims_are_rejected,
    ambiguous_json_is_rejected,
    malformed_encodings_are_rejected,
);

// ---------------------------------------------------------------------------
// The tables
// ---------------------------------------------------------------------------

async fn alg_none_and_key_confusion_are_rejected(app: TestApp) {
    let mut attacks = vec![Attack::control()];
    for alg in ["none", "None", "NONE", "nOnE"] {
        attacks.push(Attack::rejected(format!("alg {alg}, empty signature"), move |_, t, _| {
            format!("{}.{}.", b64_json(&with(&t.header, "alg", alg)), t.parts[1])
        }));
        attacks.push(Attack::rejected(format!("alg {alg}, the real signature"), move |_, t, _| {
            format!("{}.{}.{}", b64_json(&with(&t.header, "alg", alg)), t.parts[1], t.parts[2])
        }));
        attacks.push(Attack::rejected(format!("alg {alg}, no kid, empty signature"), move |_, t, _| {
            let header = without(&with(&t.header, "alg", alg), "kid");
            format!("{}.{}.", b64_json(&header), b64_json(&t.claims))
        }));
    }
    // Key confusion: the public key used as an HMAC secret, in every form a
    // naive verifier might load it in.
    for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        for form in KeyForm::ALL {
            attacks.push(Attack::rejected(format!("{alg:?} keyed with the public key as {form:?}"), move |f, t, _| {
                let secret = EncodingKey::from_secret(&form.bytes(f)).unwrap();
                sign_with(&secret, alg, &with(&t.header, "alg", alg_name(alg)), &t.claims)
            }));
        }
    }
    attacks.push(Attack::rejected("ES256 signature of another key, real kid", |f, t, _| {
        sign_with(&f.attacker.es256, Algorithm::ES256, &with(&t.header, "alg", "ES256"), &t.claims)
    }));
    attacks.push(Attack::rejected("EdDSA signature of another key, real kid", |f, t, _| {
        sign_with(&f.attacker.ed25519, Algorithm::EdDSA, &with(&t.header, "alg", "EdDSA"), &t.claims)
    }));
    run(&app, attacks).await;
}

async fn hostile_kids_and_key_headers_are_rejected(app: TestApp) {
    let mut attacks = vec![Attack::control()];
    let kids = [
        ("path traversal", "../../etc/passwd".to_owned()),
        ("deep path traversal", "../../../../../../../../dev/zero".to_owned()),
        ("SQL", "' OR 1=1 --".to_owned()),
        ("SQL union", "x' UNION SELECT private_key FROM signing_keys --".to_owned()),
        ("10 KB", "k".repeat(10 * 1024)),
        ("5 KB (token under the 8 KiB limit)", "k".repeat(5 * 1024)),
        ("empty", String::new()),
        ("NUL byte", "\u{0}".to_owned()),
    ];
    for (what, kid) in kids {
        attacks.push(Attack::rejected(format!("kid: {what}"), move |f, t, _| {
            f.sign(&with(&t.header, "kid", kid.as_str()), &t.claims)
        }));
    }
    attacks.push(Attack::rejected("kid: the real kid plus a NUL byte", |f, t, _| {
        f.sign(&with(&t.header, "kid", format!("{}\u{0}", f.kid)), &t.claims)
    }));
    attacks.push(Attack::rejected("kid: a number", |f, t, _| f.sign(&with(&t.header, "kid", 1), &t.claims)));

    // Key-locating headers naming the attacker's key: signed by that key.
    let evil_jku = "https://attacker.example/.well-known/jwks.json";
    let evil_x5u = "https://attacker.example/cert.pem";
    attacks.push(Attack::rejected("jku to the attacker's JWKS, attacker-signed", move |f, t, _| {
        f.attacker_signs(&with(&t.header, "jku", evil_jku), &t.claims)
    }));
    attacks.push(Attack::rejected("x5u to the attacker's certificate, attacker-signed", move |f, t, _| {
        f.attacker_signs(&with(&t.header, "x5u", evil_x5u), &t.claims)
    }));
    attacks.push(Attack::rejected("embedded jwk with the real kid, attacker-signed", |f, t, _| {
        f.attacker_signs(&with(&t.header, "jwk", f.attacker.jwk.clone()), &t.claims)
    }));
    attacks.push(Attack::rejected("embedded jwk with its own kid, attacker-signed", |f, t, _| {
        let header = with(&with(&t.header, "jwk", f.attacker.jwk.clone()), "kid", "attacker");
        f.attacker_signs(&header, &t.claims)
    }));
    attacks.push(Attack::rejected("embedded jwk and no kid, attacker-signed", |f, t, _| {
        f.attacker_signs(&without(&with(&t.header, "jwk", f.attacker.jwk.clone()), "kid"), &t.claims)
    }));
    attacks.push(Attack::rejected("x5c chain of garbage, attacker-signed", |f, t, _| {
        f.attacker_signs(&with(&t.header, "x5c", json!([STANDARD.encode(b"not a certificate")])), &t.claims)
    }));
    // The same headers on a token the real key signed: RFC 8725 §3.10 lets a
    // verifier ignore them, and signet does (200 on both paths: the key comes
    // from its own key set by kid). Refusing would be fine too; only a 5xx or
    // a wrong code fails.
    attacks.push(Attack::either("jku to elsewhere, signed by the real key", move |f, t, _| {
        f.sign(&with(&t.header, "jku", evil_jku), &t.claims)
    }));
    attacks.push(Attack::either("x5u to elsewhere, signed by the real key", move |f, t, _| {
        f.sign(&with(&t.header, "x5u", evil_x5u), &t.claims)
    }));
    attacks.push(Attack::either("embedded attacker jwk, signed by the real key", |f, t, _| {
        f.sign(&with(&t.header, "jwk", f.attacker.jwk.clone()), &t.claims)
    }));

    // crit (RFC 7515 §4.1.11): an extension we do not understand must fail the token.
    attacks.push(Attack::rejected("crit with an unknown extension", |f, t, _| {
        let header = with(&with(&t.header, "crit", json!(["urn:signet:unknown"])), "urn:signet:unknown", true);
        f.sign(&header, &t.claims)
    }));
    attacks.push(Attack::rejected("crit listing an unknown extension that is absent", |f, t, _| {
        f.sign(&with(&t.header, "crit", json!(["urn:signet:unknown"])), &t.claims)
    }));
    attacks.push(Attack::rejected("crit empty", |f, t, _| f.sign(&with(&t.header, "crit", json!([])), &t.claims)));
    attacks.push(Attack::rejected("crit naming a registered claim", |f, t, _| {
        f.sign(&with(&t.header, "crit", json!(["exp"])), &t.claims)
    }));
    attacks.push(Attack::rejected("crit as a string", |f, t, _| {
        f.sign(&with(&t.header, "crit", "urn:signet:unknown"), &t.claims)
    }));
    attacks.push(Attack::rejected("crit b64 false (unencoded payload, RFC 7797)", |f, t, _| {
        let header = with(&with(&t.header, "crit", json!(["b64"])), "b64", false);
        f.sign(&header, &t.claims)
    }));
    run(&app, attacks).await;
}

async fn wrong_types_and_claims_are_rejected(app: TestApp) {
    let mut attacks = vec![Attack::control()];
    attacks.push(Attack::rejected("typ JWT", |f, t, _| f.sign(&with(&t.header, "typ", "JWT"), &t.claims)));
    attacks.push(Attack::rejected("typ of the other token", |f, t, path| {
        f.sign(&with(&t.header, "typ", path.other().typ()), &t.claims)
    }));
    attacks.push(Attack::rejected("typ empty", |f, t, _| f.sign(&with(&t.header, "typ", ""), &t.claims)));
    attacks.push(Attack::rejected("typ missing", |f, t, _| f.sign(&without(&t.header, "typ"), &t.claims)));

    attacks.push(Attack::rejected("exp missing", |f, t, _| f.sign(&t.header, &without(&t.claims, "exp"))));
    attacks.push(Attack::rejected("exp null", |f, t, _| f.sign(&t.header, &with(&t.claims, "exp", Value::Null))));
    attacks.push(Attack::rejected("exp a string", |f, t, _| {
        f.sign(&t.header, &with(&t.claims, "exp", (t.now() + 600).to_string()))
    }));
    attacks.push(Attack::rejected("exp a fraction", |f, t, _| {
        f.sign(&t.header, &with(&t.claims, "exp", t.now() as f64 + 600.5))
    }));
    attacks.push(Attack::rejected("exp a whole float (600.0)", |f, t, _| {
        f.sign(&t.header, &with(&t.claims, "exp", (t.now() + 600) as f64))
    }));
    attacks.push(Attack::rejected("exp beyond i64", |f, t, _| f.sign(&t.header, &with(&t.claims, "exp", u64::MAX))));
    attacks.push(Attack::rejected("exp 31 s ago (just past the leeway)", |f, t, _| {
        f.sign(&t.header, &with(&t.claims, "exp", t.now() - 31))
    }));
    attacks.push(Attack::rejected("exp a day ago, iat now", |f, t, _| {
        f.sign(&t.header, &with(&t.claims, "exp", t.now() - 86_400))
    }));
    // nbf on refresh tokens too (RefreshClaims once had none, so the refresh
    // path accepted a future or malformed nbf; API.md: "nbf honoured").
    attacks.extend(nbf_attacks());

    attacks.push(Attack::rejected("aud a list without us", |f, t, path| {
        let ours = f.audience(path);
        let lookalikes = json!([format!("{ours}/"), ours.to_uppercase(), "other-service"]);
        f.sign(&t.header, &with(&t.claims, "aud", lookalikes))
    }));
    attacks.push(Attack::rejected("aud of the other token", |f, t, path| {
        f.sign(&t.header, &with(&t.claims, "aud", f.audience(path.other())))
    }));
    attacks
        .push(Attack::rejected("aud an empty list", |f, t, _| f.sign(&t.header, &with(&t.claims, "aud", json!([])))));
    attacks.push(Attack::rejected("aud missing", |f, t, _| f.sign(&t.header, &without(&t.claims, "aud"))));

    attacks.push(Attack::rejected("iss another issuer", |f, t, _| {
        f.sign(&t.header, &with(&t.claims, "iss", "https://attacker.example"))
    }));
    attacks.push(Attack::rejected("iss with a trailing slash", |f, t, _| {
        f.sign(&t.header, &with(&t.claims, "iss", format!("{}/", f.issuer)))
    }));
    attacks.push(Attack::rejected("iss upper case", |f, t, _| {
        f.sign(&t.header, &with(&t.claims, "iss", f.issuer.to_uppercase()))
    }));
    attacks.push(Attack::rejected("iss a list holding ours", |f, t, _| {
        f.sign(&t.header, &with(&t.claims, "iss", json!([f.issuer])))
    }));
    attacks.push(Attack::rejected("iss missing", |f, t, _| f.sign(&t.header, &without(&t.claims, "iss"))));
    attacks.push(Attack::rejected("sub missing", |f, t, _| f.sign(&t.header, &without(&t.claims, "sub"))));
    run(&app, attacks).await;
}

/// `nbf` ahead of the clock or malformed (RFC 7519 §4.1.5).
pub(crate) fn nbf_attacks() -> Vec<Attack> {
    vec![
        Attack::rejected("nbf 32 s ahead (just past the leeway)", |f, t, _| {
            f.sign(&t.header, &with(&t.claims, "nbf", t.now() + 32))
        }),
        Attack::rejected("nbf an hour ahead", |f, t, _| f.sign(&t.header, &with(&t.claims, "nbf", t.now() + 3600))),
        Attack::rejected("nbf a string", |f, t, _| f.sign(&t.header, &with(&t.claims, "nbf", "0"))),
    ]
}

async fn ambiguous_json_is_rejected(app: TestApp) {
    let mut attacks = vec![Attack::control()];
    // Controls of the raw-text surgery below: with harmless content it is accepted.
    attacks.push(Attack::accepted("control: a raw member added to the header", |f, t, _| {
        f.sign_bytes(&duplicate(&t.header, r#""x-extra":1"#, Place::First), &json_bytes(&t.claims))
    }));
    attacks.push(Attack::accepted("control: a raw member added to the payload", |f, t, _| {
        f.sign_bytes(&json_bytes(&t.header), &duplicate(&t.claims, r#""x-extra":1"#, Place::Last))
    }));
    attacks.push(Attack::accepted("control: UTF-8 spliced into an unknown header member", |f, t, _| {
        f.sign_bytes(&splice(&with(&t.header, "x-note", MARK), "é".as_bytes()), &json_bytes(&t.claims))
    }));
    // A parser where the first (or the last) duplicate wins would read these
    // differently from one that rejects them: RFC 7515 §5.2 says reject.
    let header_duplicates: [(&str, HeaderMember); 4] = [
        ("alg none", |_| r#""alg":"none""#.into()),
        ("alg HS256", |_| r#""alg":"HS256""#.into()),
        ("typ of the other token", |path| format!(r#""typ":"{}""#, path.other().typ())),
        ("kid path traversal", |_| r#""kid":"../../etc/passwd""#.into()),
    ];
    for (what, member) in header_duplicates {
        for place in [Place::First, Place::Last] {
            attacks.push(Attack::rejected(format!("header: duplicate {what}, {place:?}"), move |f, t, path| {
                f.sign_bytes(&duplicate(&t.header, &member(path), place), &json_bytes(&t.claims))
            }));
        }
    }
    let claim_duplicates: [(&str, ClaimMember); 4] = [
        ("sub of someone else", |_| format!(r#""sub":"{}""#, uuid::Uuid::new_v4())),
        ("exp in the past", |t| format!(r#""exp":{}"#, t.now() - 3600)),
        ("aud of another service", |_| r#""aud":"other-service""#.into()),
        ("iss of another issuer", |_| r#""iss":"https://attacker.example""#.into()),
    ];
    for (what, member) in claim_duplicates {
        for place in [Place::First, Place::Last] {
            attacks.push(Attack::rejected(format!("payload: duplicate {what}, {place:?}"), move |f, t, _| {
                f.sign_bytes(&json_bytes(&t.header), &duplicate(&t.claims, &member(t), place))
            }));
        }
    }

    // Not UTF-8 (RFC 7515 §5.2 step 3, RFC 8259 §8.1), in a field the
    // service reads and in one it ignores.
    for (what, bytes) in NOT_UTF8 {
        attacks.push(Attack::rejected(format!("header: kid with {what}"), move |f, t, _| {
            let header = splice(&with(&t.header, "kid", format!("{}{MARK}", f.kid)), bytes);
            f.sign_bytes(&header, &json_bytes(&t.claims))
        }));
        attacks.push(Attack::rejected(format!("header: unknown member with {what}"), move |f, t, _| {
            let header = splice(&with(&t.header, "x-note", MARK), bytes);
            f.sign_bytes(&header, &json_bytes(&t.claims))
        }));
        attacks.push(Attack::rejected(format!("payload: sub with {what}"), move |f, t, _| {
            let sub = t.claims["sub"].as_str().unwrap();
            let claims = splice(&with(&t.claims, "sub", format!("{sub}{MARK}")), bytes);
            f.sign_bytes(&json_bytes(&t.header), &claims)
        }));
        // serde_json skips the strings of fields it ignores without checking
        // their UTF-8; the verifier once let this through (RFC 7519 §7.2).
        attacks.push(Attack::rejected(format!("payload: unknown claim with {what}"), move |f, t, _| {
            let claims = splice(&with(&t.claims, "x-note", MARK), bytes);
            f.sign_bytes(&json_bytes(&t.header), &claims)
        }));
    }
    attacks.push(Attack::rejected("header: a raw 0xff between members", |f, t, _| {
        f.sign_bytes(&outside_strings(&t.header, b"\xff"), &json_bytes(&t.claims))
    }));
    attacks.push(Attack::rejected("payload: a raw 0xfe between members", |f, t, _| {
        f.sign_bytes(&json_bytes(&t.header), &outside_strings(&t.claims, b"\xfe"))
    }));
    attacks.push(Attack::rejected("payload: a UTF-8 byte order mark", |f, t, _| {
        f.sign_bytes(&json_bytes(&t.header), &[b"\xef\xbb\xbf".as_slice(), &json_bytes(&t.claims)].concat())
    }));
    run(&app, attacks).await;
}

/// Byte sequences that are not UTF-8.
pub(crate) const NOT_UTF8: [(&str, &[u8]); 4] = [
    ("a lone 0xff", b"\xff"),
    ("a truncated sequence", b"\xc3\x28"),
    ("an encoded surrogate", b"\xed\xa0\x80"),
    ("an overlong '/'", b"\xc0\xaf"),
];

async fn malformed_encodings_are_rejected(app: TestApp) {
    let mut attacks = vec![Attack::control()];
    // Non-canonical base64url: each variant decodes to the very bytes that
    // were signed (for a lenient decoder), and the header and payload ones
    // are signed over their non-canonical text, so only strict decoding
    // rejects them (RFC 7515 §2 and §7.1: base64url without padding).
    attacks.push(Attack::accepted("control: header and payload as recoded below, canonical", |f, t, _| {
        let header = B64.encode(recodable(&with(&t.header, "x-pad", PAD)));
        f.sign_parts(&header, &B64.encode(recodable(&with(&t.claims, "x-pad", PAD))))
    }));
    for (what, recode) in [
        ("trailing bits set", set_trailing_bits as fn(&str) -> String),
        ("= padding", add_padding),
        ("standard alphabet (+ /)", to_standard_alphabet),
    ] {
        attacks.push(Attack::rejected(format!("header with {what}"), move |f, t, _| {
            let header = recode(&B64.encode(recodable(&with(&t.header, "x-pad", PAD))));
            f.sign_parts(&header, &t.parts[1])
        }));
        attacks.push(Attack::rejected(format!("payload with {what}"), move |f, t, _| {
            let payload = recode(&B64.encode(recodable(&with(&t.claims, "x-pad", PAD))));
            f.sign_parts(&t.parts[0], &payload)
        }));
        attacks.push(Attack::rejected(format!("signature with {what}"), move |f, t, _| {
            // ECDSA signatures are randomised: sign until one has a - or _.
            let token = (0..64)
                .map(|_| f.sign(&t.header, &t.claims))
                .find(|token| token.rsplit('.').next().unwrap().contains(['-', '_']))
                .unwrap();
            let (message, signature) = token.rsplit_once('.').unwrap();
            format!("{message}.{}", recode(signature))
        }));
    }

    // Not a JWS at all.
    attacks.push(Attack::rejected("JWE (5 parts, RSA-OAEP)", |f, t, path| {
        let header = json!({"alg": "RSA-OAEP", "enc": "A256GCM", "kid": f.kid, "typ": path.typ()});
        let parts = [
            b64_json(&header),
            B64.encode([7u8; 256]),
            B64.encode([1u8; 12]),
            b64_json(&t.claims),
            B64.encode([2u8; 16]),
        ];
        parts.join(".")
    }));
    attacks.push(Attack::rejected("JWE (5 parts, dir, empty key part)", |f, t, path| {
        let header = json!({"alg": "dir", "enc": "A256GCM", "kid": f.kid, "typ": path.typ()});
        [b64_json(&header), String::new(), B64.encode([1u8; 12]), b64_json(&t.claims), B64.encode([2u8; 16])].join(".")
    }));
    attacks
        .push(Attack::rejected("a valid token followed by two more parts", |_, t, _| format!("{}.AAAA.AAAA", t.raw)));
    attacks.push(Attack::rejected("a valid token's first two parts only", |_, t, _| {
        format!("{}.{}", t.parts[0], t.parts[1])
    }));
    attacks.push(Attack::rejected("nested JWT (cty JWT, payload = the token)", |f, t, _| {
        f.sign_bytes(&json_bytes(&with(&t.header, "cty", "JWT")), t.raw.as_bytes())
    }));
    attacks.push(Attack::rejected("nested JWT (cty JWT, payload = the token as a JSON string)", |f, t, _| {
        f.sign_bytes(&json_bytes(&with(&t.header, "cty", "JWT")), &json_bytes(&json!(t.raw)))
    }));
    attacks
        .push(Attack::rejected("payload a JSON array of the claims", |f, t, _| f.sign(&t.header, &json!([t.claims]))));
    attacks.push(Attack::rejected("header a JSON array", |f, t, _| f.sign(&json!([t.header]), &t.claims)));
    for dots in ["", ".", "..", "...", "...."] {
        let name = if dots.is_empty() { "empty token".to_owned() } else { format!("only dots: {dots}") };
        attacks.push(Attack::rejected(name, move |_, _, _| dots.to_owned()));
    }
    // Whitespace inside: the access path trims only the ends of the header
    // value; HTTP forbids CR and LF there, so those go to the refresh path only.
    for (what, space, paths) in [
        ("a space", " ", &Path::BOTH[..]),
        ("a tab", "\t", &Path::BOTH[..]),
        ("a no-break space", "\u{a0}", &Path::BOTH[..]),
        ("a newline", "\n", &[Path::Refresh][..]),
        ("a CR LF", "\r\n", &[Path::Refresh][..]),
    ] {
        attacks.push(
            Attack::rejected(format!("{what} after the first dot"), move |_, t, _| {
                format!("{}.{space}{}.{}", t.parts[0], t.parts[1], t.parts[2])
            })
            .on(paths),
        );
        attacks.push(
            Attack::rejected(format!("{what} inside the signature"), move |_, t, _| {
                let (a, b) = t.parts[2].split_at(10);
                format!("{}.{}.{a}{space}{b}", t.parts[0], t.parts[1])
            })
            .on(paths),
        );
    }
    run(&app, attacks).await;

    // Bytes that are not even text in the Authorization header.
    let value = HeaderValue::from_bytes(b"Bearer \xff\xfe.\x80\x81.\xc0\xaf").unwrap();
    let res = app.client.get(app.url("/v1/auth/me")).header(AUTHORIZATION, value).send().await.unwrap();
    let reply = Reply::read(res).await;
    if let Err(why) = judge(Expect::Rejected, Path::Access, &reply, "") {
        panic!("raw non-UTF-8 Authorization header: {why}");
    }
}

// ---------------------------------------------------------------------------
// The runner
// ---------------------------------------------------------------------------

/// The two places a token is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Path {
    Access,
    Refresh,
}

impl Path {
    pub(crate) const BOTH: [Path; 2] = [Path::Access, Path::Refresh];

    fn typ(self) -> &'static str {
        match self {
            Path::Access => "at+jwt",
            Path::Refresh => "refresh+jwt",
        }
    }

    fn other(self) -> Path {
        match self {
            Path::Access => Path::Refresh,
            Path::Refresh => Path::Access,
        }
    }

    fn code(self) -> &'static str {
        match self {
            Path::Access => "invalid_token",
            Path::Refresh => "invalid_refresh_token",
        }
    }
}

/// What the service must do with a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Expect {
    /// 401 with the path's code, a problem document, the token not echoed.
    Rejected,
    /// 200: the controls, which prove the forger signs as the service does.
    Accepted,
    /// Either (headers a verifier may ignore); the outcome is printed.
    Either,
}

pub(crate) type Build = Box<dyn Fn(&Forger, &Template, Path) -> String>;

pub(crate) struct Attack {
    name: String,
    expect: Expect,
    paths: &'static [Path],
    build: Build,
}

impl Attack {
    fn new(
        name: impl Into<String>,
        expect: Expect,
        build: impl Fn(&Forger, &Template, Path) -> String + 'static,
    ) -> Self {
        Attack { name: name.into(), expect, paths: &Path::BOTH, build: Box::new(build) }
    }

    pub(crate) fn rejected(
        name: impl Into<String>,
        build: impl Fn(&Forger, &Template, Path) -> String + 'static,
    ) -> Self {
        Self::new(name, Expect::Rejected, build)
    }

    fn accepted(name: impl Into<String>, build: impl Fn(&Forger, &Template, Path) -> String + 'static) -> Self {
        Self::new(name, Expect::Accepted, build)
    }

    fn either(name: impl Into<String>, build: impl Fn(&Forger, &Template, Path) -> String + 'static) -> Self {
        Self::new(name, Expect::Either, build)
    }

    /// The live token's header and claims re-signed unchanged by the real key.
    pub(crate) fn control() -> Self {
        Self::accepted("control: the live claims re-signed", |f, t, _| f.sign(&t.header, &t.claims))
    }

    pub(crate) fn on(mut self, paths: &'static [Path]) -> Self {
        self.paths = paths;
        self
    }
}

const VICTIM: &str = "mallory";

/// Runs every attack on every path it applies to, then checks that the
/// service still serves a good token. Fails with the list of all wrong answers.
pub(crate) async fn run(app: &TestApp, attacks: Vec<Attack>) {
    app.register_ok(VICTIM).await;
    let forger = Forger::new(app).await;
    let mut failures = Vec::new();
    let mut sent = 0;
    for path in Path::BOTH {
        let mut session = app.login_ok(VICTIM).await;
        for attack in attacks.iter().filter(|a| a.paths.contains(&path)) {
            let template = Template::parse(session.body[token_field(path)].as_str().unwrap());
            let token = (attack.build)(&forger, &template, path);
            let reply = send(app, path, &token).await;
            sent += 1;
            if let Err(why) = judge(attack.expect, path, &reply, &token) {
                failures.push(format!("{path:?} / {}: {why}", attack.name));
            }
            if attack.expect == Expect::Either {
                eprintln!("{path:?} / {}: answered {}", attack.name, reply.status);
            }
            if reply.status == 200 && path == Path::Refresh {
                // An accepted refresh rotated the session: start a fresh one.
                session = app.login_ok(VICTIM).await;
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {sent} attack requests answered wrongly:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_still_serving(app).await;
    eprintln!("{sent} attack requests answered as expected");
}

fn token_field(path: Path) -> &'static str {
    match path {
        Path::Access => "access_token",
        Path::Refresh => "refresh_token",
    }
}

/// The service stays up and a good token still works on both paths.
async fn assert_still_serving(app: &TestApp) {
    assert_eq!(app.get("/healthz", None).await.status(), StatusCode::OK);
    let pair = app.login_ok(VICTIM).await;
    let me = app.get("/v1/auth/me", Some(pair.access.as_str())).await;
    assert_eq!(me.status(), StatusCode::OK, "a good access token after the attacks");
    let res = app.refresh(pair.refresh.as_str()).await;
    assert_eq!(res.status(), StatusCode::OK, "a good refresh token after the attacks");
}

struct Reply {
    status: u16,
    content_type: String,
    challenge: String,
    body: String,
}

impl Reply {
    async fn read(res: reqwest::Response) -> Reply {
        let status = res.status().as_u16();
        let content_type = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let challenge = www_authenticate(&res);
        let body = res.text().await.unwrap();
        Reply { status, content_type, challenge, body }
    }
}

async fn send(app: &TestApp, path: Path, token: &str) -> Reply {
    let request = match path {
        Path::Access => {
            // from_bytes: lets non-ASCII through as obs-text, as a raw client would send it.
            let value = HeaderValue::from_bytes(format!("Bearer {token}").as_bytes()).expect("a sendable header value");
            app.client.get(app.url("/v1/auth/me")).header(AUTHORIZATION, value)
        }
        Path::Refresh => app.client.post(app.url("/v1/auth/refresh")).json(&json!({ "refresh_token": token })),
    };
    Reply::read(request.send().await.unwrap()).await
}

fn judge(expect: Expect, path: Path, reply: &Reply, token: &str) -> Result<(), String> {
    let body = || reply.body.chars().take(300).collect::<String>();
    if reply.status >= 500 {
        return Err(format!("server error {}: {}", reply.status, body()));
    }
    match (expect, reply.status) {
        (Expect::Accepted | Expect::Either, 200) => return Ok(()),
        (Expect::Accepted, status) => return Err(format!("control refused with {status}: {}", body())),
        _ => {}
    }
    let problem: Value = serde_json::from_str(&reply.body).unwrap_or(Value::Null);
    if reply.status != 401 || reply.content_type != "application/problem+json" || problem["code"] != path.code() {
        return Err(format!("expected 401 {}, got {} ({}): {}", path.code(), reply.status, reply.content_type, body()));
    }
    if problem["status"] != 401 || !problem["detail"].is_string() {
        return Err(format!("not a complete problem document: {}", body()));
    }
    if path == Path::Access
        && !(reply.challenge.starts_with("Bearer realm=\"signet\"")
            && reply.challenge.contains("error=\"invalid_token\""))
    {
        return Err(format!("WWW-Authenticate: {}", reply.challenge));
    }
    if token.len() > 16 && (reply.body.contains(token) || reply.challenge.contains(token)) {
        return Err("the token is echoed".into());
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Forging
// ---------------------------------------------------------------------------

/// A live token taken apart: what attacks start from.
pub(crate) struct Template {
    pub(crate) raw: String,
    pub(crate) parts: Vec<String>,
    pub(crate) header: Value,
    pub(crate) claims: Value,
}

impl Template {
    fn parse(raw: &str) -> Template {
        let parts: Vec<String> = raw.split('.').map(str::to_owned).collect();
        assert_eq!(parts.len(), 3, "a live token is a compact JWS");
        let decode = |part: &str| -> Value { serde_json::from_slice(&B64.decode(part).unwrap()).unwrap() };
        Template { raw: raw.to_owned(), header: decode(&parts[0]), claims: decode(&parts[1]), parts }
    }

    /// The service's "now" when the token was minted (its `iat`).
    pub(crate) fn now(&self) -> i64 {
        self.claims["iat"].as_i64().unwrap()
    }
}

/// The service's signing key, its public forms, and an attacker's keys.
pub(crate) struct Forger {
    key: EncodingKey,
    alg: Algorithm,
    kid: String,
    /// The real key's entry in the published JWKS.
    jwk: Value,
    /// The whole JWKS document, as served.
    jwks_text: String,
    issuer: String,
    audience: String,
    attacker: Attacker,
}

struct Attacker {
    es256: EncodingKey,
    ed25519: EncodingKey,
    /// The public JWK of `es256`.
    jwk: Value,
}

impl Forger {
    async fn new(app: &TestApp) -> Forger {
        let (key, kid) = app.real_signing_key();
        let jwks_text = app.get("/.well-known/jwks.json", None).await.text().await.unwrap();
        let jwks: Value = serde_json::from_str(&jwks_text).unwrap();
        let jwk =
            jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"] == kid.as_str()).expect("kid in JWKS").clone();
        let alg: Algorithm = serde_json::from_value(jwk["alg"].clone()).unwrap();
        Forger {
            key,
            alg,
            kid,
            jwk,
            jwks_text,
            issuer: app.settings.tokens.issuer.clone(),
            audience: app.settings.tokens.audience.clone(),
            attacker: Attacker::new(),
        }
    }

    fn audience(&self, path: Path) -> &str {
        match path {
            Path::Access => &self.audience,
            Path::Refresh => &self.issuer,
        }
    }

    /// `header_b64.payload_b64`, taken as given, signed with the real key.
    fn sign_parts(&self, header_b64: &str, payload_b64: &str) -> String {
        let message = format!("{header_b64}.{payload_b64}");
        let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &self.key, self.alg).unwrap();
        format!("{message}.{signature}")
    }

    /// Raw header and payload bytes (JSON or not) signed with the real key.
    pub(crate) fn sign_bytes(&self, header: &[u8], payload: &[u8]) -> String {
        self.sign_parts(&B64.encode(header), &B64.encode(payload))
    }

    pub(crate) fn sign(&self, header: &Value, claims: &Value) -> String {
        self.sign_bytes(&json_bytes(header), &json_bytes(claims))
    }

    /// `header` and `claims` signed by the attacker's ES256 key.
    fn attacker_signs(&self, header: &Value, claims: &Value) -> String {
        sign_with(&self.attacker.es256, Algorithm::ES256, &with(header, "alg", "ES256"), claims)
    }
}

impl Attacker {
    fn new() -> Attacker {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        let point = pair.public_key().as_ref();
        let jwk = json!({"kty": "EC", "crv": "P-256", "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..65])});
        let ed = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        Attacker {
            es256: EncodingKey::from_ec_der(pkcs8.as_ref()),
            ed25519: EncodingKey::from_ed_der(ed.as_ref()),
            jwk,
        }
    }
}

fn sign_with(key: &EncodingKey, alg: Algorithm, header: &Value, claims: &Value) -> String {
    let message = format!("{}.{}", b64_json(header), b64_json(claims));
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), key, alg).unwrap();
    format!("{message}.{signature}")
}

fn alg_name(alg: Algorithm) -> String {
    serde_json::to_value(alg).unwrap().as_str().unwrap().to_owned()
}

/// Forms of the real public key a confused verifier might use as an HMAC secret.
#[derive(Clone, Copy, Debug)]
enum KeyForm {
    /// SubjectPublicKeyInfo PEM with its final newline.
    Pem,
    /// The same without the final newline.
    PemNoNewline,
    /// SubjectPublicKeyInfo DER.
    Der,
    /// The bare key bytes (0x04 || x || y for EC, x for Ed25519).
    Raw,
    /// The JWKS entry as JSON.
    Jwk,
    /// The RFC 7638 thumbprint input (required members, sorted).
    JwkThumbprintInput,
    /// The whole JWKS document as served.
    Jwks,
}

impl KeyForm {
    const ALL: [KeyForm; 7] = [
        KeyForm::Pem,
        KeyForm::PemNoNewline,
        KeyForm::Der,
        KeyForm::Raw,
        KeyForm::Jwk,
        KeyForm::JwkThumbprintInput,
        KeyForm::Jwks,
    ];

    fn bytes(self, f: &Forger) -> Vec<u8> {
        let jwk = &f.jwk;
        let b = |member: &str| B64.decode(jwk[member].as_str().unwrap()).unwrap();
        let (raw, spki_prefix, thumbprint_input) = match jwk["kty"].as_str().unwrap() {
            // id-ecPublicKey, prime256v1, BIT STRING of 66 bytes.
            "EC" => (
                [vec![4], b("x"), b("y")].concat(),
                "3059301306072a8648ce3d020106082a8648ce3d030107034200",
                json!({"crv": jwk["crv"], "kty": "EC", "x": jwk["x"], "y": jwk["y"]}),
            ),
            // id-Ed25519, BIT STRING of 33 bytes.
            "OKP" => (b("x"), "302a300506032b6570032100", json!({"crv": jwk["crv"], "kty": "OKP", "x": jwk["x"]})),
            other => panic!("the attack suite covers EC and OKP signing keys, not {other}"),
        };
        let der = [hex(spki_prefix), raw.clone()].concat();
        let pem = || {
            let body = STANDARD.encode(&der);
            let lines: Vec<&str> = body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
            format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", lines.join("\n"))
        };
        match self {
            KeyForm::Pem => pem().into_bytes(),
            KeyForm::PemNoNewline => pem().trim_end().as_bytes().to_vec(),
            KeyForm::Der => der,
            KeyForm::Raw => raw,
            KeyForm::Jwk => jwk.to_string().into_bytes(),
            KeyForm::JwkThumbprintInput => thumbprint_input.to_string().into_bytes(),
            KeyForm::Jwks => f.jwks_text.clone().into_bytes(),
        }
    }
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
}

// ---------------------------------------------------------------------------
// JSON and base64 surgery
// ---------------------------------------------------------------------------

/// A copy of the object `value` with `key` set.
pub(crate) fn with(value: &Value, key: &str, member: impl Into<Value>) -> Value {
    let mut value = value.clone();
    value[key] = member.into();
    value
}

/// A copy of the object `value` without `key`.
fn without(value: &Value, key: &str) -> Value {
    let mut value = value.clone();
    value.as_object_mut().unwrap().remove(key);
    value
}

pub(crate) fn json_bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap()
}

fn b64_json(value: &Value) -> String {
    B64.encode(json_bytes(value))
}

/// The raw `"key":value` text of a header member, for a path.
type HeaderMember = fn(Path) -> String;
/// The raw `"key":value` text of a claim, for a template.
type ClaimMember = fn(&Template) -> String;

#[derive(Clone, Copy, Debug)]
enum Place {
    First,
    Last,
}

/// The object `value` as JSON text with a raw `"key":value` member added
/// before (First) or after (Last) the existing ones.
fn duplicate(value: &Value, member: &str, place: Place) -> Vec<u8> {
    let text = value.to_string();
    let inner = text.strip_prefix('{').and_then(|t| t.strip_suffix('}')).unwrap();
    match place {
        Place::First => format!("{{{member},{inner}}}"),
        Place::Last => format!("{{{inner},{member}}}"),
    }
    .into_bytes()
}

/// Where [`splice`] puts its raw bytes.
pub(crate) const MARK: &str = "@@MARK@@";

/// `value` as JSON text with [`MARK`] (inside some string) replaced by raw `bytes`.
pub(crate) fn splice(value: &Value, bytes: &[u8]) -> Vec<u8> {
    let text = value.to_string();
    let at = text.find(MARK).expect("the mark");
    [&text.as_bytes()[..at], bytes, &text.as_bytes()[at + MARK.len()..]].concat()
}

/// `value` as JSON text with raw `bytes` right after its opening brace.
fn outside_strings(value: &Value, bytes: &[u8]) -> Vec<u8> {
    let text = value.to_string();
    [b"{".as_slice(), bytes, &text.as_bytes()[1..]].concat()
}

/// Twelve '~' (0x7e): wherever they fall, their base64 holds a '-'.
const PAD: &str = "~~~~~~~~~~~~";

/// `value` as JSON whose length is not a multiple of 3 (trailing spaces are
/// valid JSON), so its base64url has spare bits and room for padding.
fn recodable(value: &Value) -> Vec<u8> {
    let mut bytes = json_bytes(value);
    while bytes.len() % 3 == 0 {
        bytes.push(b' ');
    }
    bytes
}

const URL_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Sets the lowest spare bit of the last character: the same bytes to a
/// decoder that ignores spare bits.
fn set_trailing_bits(part: &str) -> String {
    assert_ne!(part.len() % 4, 0, "no spare bits in {part}");
    let (head, last) = part.split_at(part.len() - 1);
    let index = URL_ALPHABET.iter().position(|c| *c == last.as_bytes()[0]).unwrap();
    assert_eq!(index & 1, 0, "canonical base64 has zero spare bits");
    format!("{head}{}", URL_ALPHABET[index | 1] as char)
}

fn add_padding(part: &str) -> String {
    assert_ne!(part.len() % 4, 0, "{part} needs no padding");
    format!("{part}{}", "=".repeat(4 - part.len() % 4))
}

fn to_standard_alphabet(part: &str) -> String {
    assert!(part.contains(['-', '_']), "{part} reads the same in both alphabets");
    part.replace('-', "+").replace('_', "/")
}
