//! GET /metrics, parsed with a real Prometheus text parser (openmetrics-parser;
//! prometheus-parse mis-reads label values with braces such as `/users/{id}`).

use openmetrics_parser::{MetricsExposition, PrometheusType, PrometheusValue, Sample};
use reqwest::StatusCode;

use signet::config::Settings;

use crate::backend_tests;
use crate::helpers::{TestApp, PASSWORD};

type Exposition = MetricsExposition<PrometheusType, PrometheusValue>;

async fn scrape_at(app: &TestApp, base: &str) -> Exposition {
    let res = app.client.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let content_type = res.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    let body = res.text().await.unwrap();
    openmetrics_parser::prometheus::parse_prometheus(&body).unwrap_or_else(|e| panic!("{e:?}:\n{body}"))
}

async fn scrape(app: &TestApp) -> Exposition {
    scrape_at(app, &app.address).await
}

fn label(sample: &Sample<PrometheusValue>, name: &str) -> Option<String> {
    sample.get_labelset().ok()?.get_label_value(name).map(str::to_owned)
}

fn matches(sample: &Sample<PrometheusValue>, labels: &[(&str, &str)]) -> bool {
    labels.iter().all(|(k, v)| label(sample, k).as_deref() == Some(*v))
}

/// The sum of a family's counter or gauge samples with these labels (0 if none).
fn value(scrape: &Exposition, family: &str, labels: &[(&str, &str)]) -> f64 {
    let Some(family) = scrape.families.get(family) else {
        return 0.0;
    };
    family
        .iter_samples()
        .filter(|s| matches(s, labels))
        .map(|s| match &s.value {
            PrometheusValue::Counter(c) => c.value.as_f64(),
            PrometheusValue::Gauge(n) | PrometheusValue::Unknown(n) => n.as_f64(),
            other => panic!("{other:?} is not a counter or gauge"),
        })
        .sum()
}

backend_tests!(metrics_count_requests_and_domain_events, metrics_bind_serves_metrics_elsewhere_only);

async fn metrics_count_requests_and_domain_events(app: TestApp) {
    let user = app.register_ok("metered").await;
    let before = scrape(&app).await;

    let pair = app.login_ok("metered").await;
    let res = app.login("metered", "wrong-password-123").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = app.refresh(&pair.refresh).await;
    assert_eq!(res.status(), StatusCode::OK);
    // Reusing the rotated token revokes the session.
    let res = app.refresh(&pair.refresh).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // A route with an id, and a path no route matches.
    let admin = app.admin_token("boss").await;
    let id = user["id"].as_str().unwrap();
    assert_eq!(app.get(&format!("/v1/admin/users/{id}"), Some(&admin)).await.status(), StatusCode::OK);
    assert_eq!(app.get("/no/such/path-4711", None).await.status(), StatusCode::NOT_FOUND);

    let after = scrape(&app).await;
    let delta = |metric: &str, labels: &[(&str, &str)]| value(&after, metric, labels) - value(&before, metric, labels);

    for family in [
        "signet_http_requests_total",
        "signet_logins_total",
        "signet_refreshes_total",
        "signet_lockouts_total",
        "signet_revocations_total",
        "signet_tokens_issued_total",
        "signet_db_pool_connections",
        "signet_signing_key_age_seconds",
        "signet_build_info",
    ] {
        assert!(after.families.contains_key(family), "{family} missing");
    }
    let histogram = &after.families["signet_http_request_duration_seconds"];
    assert_eq!(histogram.family_type, PrometheusType::Histogram);
    assert_eq!(after.families["signet_logins_total"].family_type, PrometheusType::Counter);
    let pool = &after.families["signet_db_pool_connections"];
    for state in ["idle", "in_use"] {
        assert!(pool.iter_samples().any(|s| matches(s, &[("state", state)])), "pool {state}");
    }
    assert!(value(&after, "signet_signing_key_age_seconds", &[]) >= 0.0);
    assert_eq!(value(&after, "signet_build_info", &[("version", env!("CARGO_PKG_VERSION"))]), 1.0);

    // login_ok twice (metered, boss) + one failure.
    assert_eq!(delta("signet_logins_total", &[("outcome", "success")]), 2.0);
    assert_eq!(delta("signet_logins_total", &[("outcome", "invalid_credentials")]), 1.0);
    assert_eq!(delta("signet_refreshes_total", &[("outcome", "rotated")]), 1.0);
    assert_eq!(delta("signet_refreshes_total", &[("outcome", "reused")]), 1.0);
    assert_eq!(delta("signet_revocations_total", &[("reason", "refresh_token_reused")]), 1.0);
    assert_eq!(delta("signet_tokens_issued_total", &[("kind", "access")]), 3.0);
    assert_eq!(delta("signet_tokens_issued_total", &[("kind", "refresh")]), 3.0);
    let login_route = [("route", "/v1/auth/login"), ("method", "POST")];
    assert_eq!(delta("signet_http_requests_total", &[login_route[0], login_route[1], ("status", "200")]), 2.0);
    assert_eq!(delta("signet_http_requests_total", &[login_route[0], login_route[1], ("status", "401")]), 1.0);
    assert_eq!(
        delta("signet_http_requests_total", &[("route", "/v1/admin/users/{id}"), ("method", "GET"), ("status", "200")]),
        1.0
    );
    assert_eq!(delta("signet_http_requests_total", &[("route", "unmatched"), ("status", "404")]), 1.0);

    // Route labels are patterns: no id, no raw unmatched path.
    let routes: Vec<String> =
        after.families.values().flat_map(|f| f.iter_samples()).filter_map(|s| label(s, "route")).collect();
    assert!(routes.iter().all(|r| !r.contains(id) && !r.contains("4711")), "{routes:?}");
    assert!(routes.iter().all(|r| r == "unmatched" || r.starts_with('/')), "{routes:?}");
    assert!(routes.iter().any(|r| r == "/v1/admin/users/{id}"), "{routes:?}");
    let latency = histogram.iter_samples().find(|s| matches(s, &[("route", "/v1/auth/login")]));
    match latency.map(|s| &s.value) {
        Some(PrometheusValue::Histogram(h)) => {
            assert_eq!(h.count, Some(3), "{h:?}");
            assert!(h.buckets.len() > 5, "{h:?}");
        }
        other => panic!("no login latency histogram: {other:?}"),
    }

    // With the failure above, four more lock the name out (5 in a row); the
    // next attempt is refused as locked.
    for _ in 0..4 {
        app.login("metered", "wrong-password-123").await;
    }
    let res = app.login("metered", PASSWORD).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let locked = scrape(&app).await;
    assert_eq!(value(&locked, "signet_lockouts_total", &[]) - value(&after, "signet_lockouts_total", &[]), 1.0);
    assert_eq!(
        value(&locked, "signet_logins_total", &[("outcome", "locked")])
            - value(&after, "signet_logins_total", &[("outcome", "locked")]),
        1.0
    );
}

async fn metrics_bind_serves_metrics_elsewhere_only(app: TestApp) {
    let app = app.restart_with(|s: &mut Settings| s.metrics.bind = "127.0.0.1:0".into()).await;
    let port = app.metrics_port.expect("a metrics port");
    assert_eq!(app.get("/metrics", None).await.status(), StatusCode::NOT_FOUND);
    app.register_ok("counted").await;
    let scrape = scrape_at(&app, &format!("http://127.0.0.1:{port}")).await;
    assert_eq!(value(&scrape, "signet_http_requests_total", &[("route", "/v1/auth/register"), ("status", "201")]), 1.0);
    // The metrics address serves nothing else.
    let res = app.client.get(format!("http://127.0.0.1:{port}/healthz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    // metrics.enabled = false: no route, no counting.
    let app = app.restart_with(|s: &mut Settings| s.metrics.enabled = false).await;
    assert_eq!(app.get("/metrics", None).await.status(), StatusCode::NOT_FOUND);
    assert!(app.metrics_port.is_none());
}
