//! The served `/openapi.yaml` against the app: it parses, has the shape OpenAPI 3.1 requires,
//! every `$ref` resolves, and it lists exactly the (method, path) pairs the app registers
//! (`signet::http::registered_routes`, derived from the same table as the routes themselves).

use std::collections::BTreeSet;

use serde_json::Value;

use crate::backend_tests;
use crate::helpers::TestApp;

backend_tests!(served_openapi_is_valid_3_1_and_matches_the_routes);

const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

async fn served_openapi_is_valid_3_1_and_matches_the_routes(app: TestApp) {
    let res = app.get("/openapi.yaml", None).await;
    assert_eq!(res.status(), reqwest::StatusCode::OK);
    let text = res.text().await.unwrap();
    let doc: Value = serde_norway::from_str(&text).expect("openapi.yaml parses as YAML");

    check_structure(&doc);

    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            METHODS.iter().filter(|m| item.get(**m).is_some()).map(move |m| (m.to_uppercase(), path.clone()))
        })
        .collect();
    let registered: BTreeSet<(String, String)> =
        signet::http::registered_routes().into_iter().map(|(m, p)| (m.to_string(), p.to_owned())).collect();
    let undocumented: Vec<_> = registered.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&registered).collect();
    assert!(undocumented.is_empty(), "routes missing from openapi.yaml: {undocumented:?}");
    assert!(unserved.is_empty(), "openapi.yaml operations without a route: {unserved:?}");
}

/// The fields OpenAPI 3.1 requires, unique operationIds, declared path parameters, and
/// local `$ref`s that resolve.
fn check_structure(doc: &Value) {
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1.")), "openapi: 3.1.x");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string(), "info.title and info.version");
    let paths = doc["paths"].as_object().expect("paths is an object");
    let mut operation_ids = BTreeSet::new();
    for (path, item) in paths {
        assert!(path.starts_with('/'), "path {path} starts with /");
        let templated: BTreeSet<&str> =
            path.split('{').skip(1).filter_map(|rest| rest.split_once('}').map(|(name, _)| name)).collect();
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let responses = op["responses"].as_object().unwrap_or_else(|| panic!("{method} {path}: responses"));
            assert!(!responses.is_empty(), "{method} {path}: at least one response");
            for (status, response) in responses {
                let ok = status == "default"
                    || (status.len() == 3 && (status.chars().all(|c| c.is_ascii_digit()) || status.ends_with("XX")));
                assert!(ok, "{method} {path}: response key {status}");
                let response = resolve(doc, response);
                assert!(response["description"].is_string(), "{method} {path} {status}: description");
            }
            if let Some(id) = op["operationId"].as_str() {
                assert!(operation_ids.insert(id.to_owned()), "operationId {id} is unique");
            }
            let declared: BTreeSet<String> = [&item["parameters"], &op["parameters"]]
                .into_iter()
                .filter_map(Value::as_array)
                .flatten()
                .map(|p| resolve(doc, p))
                .filter(|p| p["in"] == "path")
                .inspect(|p| assert_eq!(p["required"], true, "{method} {path}: path parameters are required"))
                .map(|p| p["name"].as_str().unwrap().to_owned())
                .collect();
            let declared: BTreeSet<&str> = declared.iter().map(String::as_str).collect();
            assert_eq!(declared, templated, "{method} {path}: path parameters declared = templated");
        }
    }
    check_refs(doc, doc);
}

fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) => lookup(doc, reference).unwrap_or_else(|| panic!("$ref {reference} resolves")),
        None => value,
    }
}

fn lookup<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    let pointer = reference.strip_prefix('#')?;
    doc.pointer(pointer)
}

fn check_refs(doc: &Value, value: &Value) {
    match value {
        Value::Object(map) => {
            if let Some(reference) = map.get("$ref").and_then(Value::as_str) {
                assert!(lookup(doc, reference).is_some(), "$ref {reference} resolves within the document");
            }
            map.values().for_each(|v| check_refs(doc, v));
        }
        Value::Array(items) => items.iter().for_each(|v| check_refs(doc, v)),
        _ => {}
    }
}
