//! The actix extractor and role guards in a plain actix-web app.
#![cfg(feature = "actix")]
#![expect(clippy::unwrap_used, reason = "a test should fail loudly at the first surprise")]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{test, web, App, HttpResponse};
use common::{claims, jwks, now, rules, TestKey};
use serde_json::Value;
use signet_verify::actix::{Authenticated, RequireRole};
use signet_verify::{FetchError, FetchJwks, Fetched, JwkSet, RefreshPolicy, Verifier};

signet_verify::roles!(Admin = "admin");
signet_verify::roles!(Staff = "admin", "support");

fn app_routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/me",
        web::get().to(|user: Authenticated| async move {
            HttpResponse::Ok().json(serde_json::json!({"sub": user.sub, "roles": user.roles}))
        }),
    )
    .route("/admin", web::get().to(|_: RequireRole<Admin>| async { HttpResponse::Ok().finish() }))
    .route("/staff", web::get().to(|_: RequireRole<Staff>| async { HttpResponse::Ok().finish() }));
}

fn header(res: &actix_web::dev::ServiceResponse, name: &str) -> String {
    res.headers().get(name).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default()
}

#[actix_web::test]
async fn status_codes_and_rfc6750_challenges() {
    let key = TestKey::es256("k1");
    let verifier = Verifier::builder(rules()).jwks(&jwks(&[&key])).build().unwrap();
    let app = test::init_service(App::new().app_data(web::Data::from(verifier)).configure(app_routes)).await;
    let t = now();
    let user = key.sign(&claims(t, &["user"]));
    let support = key.sign(&claims(t, &["user", "support"]));
    let get = |path: &str, token: Option<&str>| {
        let mut req = test::TestRequest::get().uri(path);
        if let Some(token) = token {
            req = req.insert_header(("authorization", format!("Bearer {token}")));
        }
        req.to_request()
    };

    let res = test::call_service(&app, get("/me", Some(&user))).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = test::read_body_json(res).await;
    assert_eq!(body["roles"][0], "user");

    let res = test::call_service(&app, get("/me", None)).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(header(&res, "www-authenticate"), "Bearer realm=\"signet\"");
    assert_eq!(header(&res, "content-type"), "application/problem+json");
    let body: Value = test::read_body_json(res).await;
    assert_eq!(body["code"], "missing_token");

    for bad in ["garbage", "", &format!("{user}x")] {
        let res = test::call_service(&app, get("/me", Some(bad))).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{bad:?}");
        let challenge = header(&res, "www-authenticate");
        assert!(challenge.starts_with("Bearer realm=\"signet\", error=\"invalid_token\""), "{challenge}");
        let body: Value = test::read_body_json(res).await;
        assert_eq!(body["code"], "invalid_token");
    }

    let res = test::call_service(&app, get("/admin", Some(&user))).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(header(&res, "www-authenticate").contains("error=\"insufficient_scope\""));
    let body: Value = test::read_body_json(res).await;
    assert_eq!(body["code"], "insufficient_role");
    let res = test::call_service(&app, get("/admin", None)).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // Any of several roles.
    let res = test::call_service(&app, get("/staff", Some(&support))).await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = test::call_service(&app, get("/staff", Some(&user))).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}

/// A key source whose first fetch is slow and whose keys change later.
struct Slow {
    jwks: Arc<std::sync::Mutex<JwkSet>>,
    fetches: Arc<AtomicUsize>,
}

impl FetchJwks for Slow {
    fn fetch(&mut self) -> Result<Fetched, FetchError> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(200));
        Ok(Fetched { jwks: self.jwks.lock().unwrap().clone(), max_age: None })
    }
}

#[actix_web::test]
async fn extractor_waits_for_a_refetch_without_blocking() {
    let old = TestKey::es256("old");
    let new = TestKey::es256("new");
    let served = Arc::new(std::sync::Mutex::new(jwks(&[&old])));
    let fetches = Arc::new(AtomicUsize::new(0));
    let verifier = Verifier::builder(rules())
        .fetcher(Slow { jwks: served.clone(), fetches: fetches.clone() })
        .refresh_policy(RefreshPolicy { unknown_kid_interval: Duration::from_millis(100), ..RefreshPolicy::default() })
        .build()
        .unwrap();
    let app = test::init_service(App::new().app_data(web::Data::from(verifier.clone())).configure(app_routes)).await;
    let t = now();
    let call = |token: String| {
        test::TestRequest::get().uri("/me").insert_header(("authorization", format!("Bearer {token}"))).to_request()
    };
    // The first request arrives while the first fetch is in flight: it waits.
    let res = test::call_service(&app, call(old.sign(&claims(t, &["user"])))).await;
    assert_eq!(res.status(), StatusCode::OK);

    // signet rotates: the new kid triggers one refetch, and the request waits for it.
    *served.lock().unwrap() = jwks(&[&old, &new]);
    actix_web::rt::time::sleep(Duration::from_millis(150)).await;
    let res = test::call_service(&app, call(new.sign(&claims(t, &["user"])))).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(fetches.load(Ordering::SeqCst), 2);
    assert_eq!(verifier.key_source_stats().unwrap().unknown_kid_refetches, 1);
}
