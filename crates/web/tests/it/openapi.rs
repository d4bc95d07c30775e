//! The OpenAPI document (issue 16): `/api/openapi.json` describes every
//! `/api/v1` route the router serves — a route added without its
//! `#[utoipa::path]` fails [`every_route_is_documented`] — and nothing
//! else; it is OpenAPI 3.1 whose references all resolve; `/api/docs`
//! renders it from the vendored Swagger UI without the network.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;

use crate::support::*;

/// `GET path`, answered 200.
async fn get(server: &TestApp, path: &str) -> reqwest::Response {
    let response = server
        .client
        .get(server.page_url(path))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    assert_eq!(response.status(), 200, "GET {path}");
    response
}

/// `/api/openapi.json` as a client reads it.
async fn document(server: &TestApp) -> Value {
    let response = get(server, "/api/openapi.json").await;
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let text = response.text().await.expect("the document");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// The methods an OpenAPI path item may hold.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Every `METHOD path` the document describes.
fn documented(doc: &Value) -> BTreeSet<String> {
    let paths = doc["paths"].as_object().expect("paths");
    paths
        .iter()
        .flat_map(|(path, item)| {
            METHODS
                .iter()
                .filter(|method| item.get(**method).is_some())
                .map(move |method| format!("{} {path}", method.to_uppercase()))
        })
        .collect()
}

#[tokio::test]
async fn every_route_is_documented() {
    let server = spawn_app().await;
    let doc = document(&server).await;
    let served: BTreeSet<String> = ordertrack_web::routes::table()
        .iter()
        .filter(|route| route.path.starts_with("/api/v1/"))
        .map(|route| route.to_string())
        .collect();
    let described = documented(&doc);
    assert!(served.len() > 50, "the table lists the API: {served:?}");
    let undocumented: Vec<_> = served.difference(&described).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from /api/openapi.json (add #[utoipa::path] and list them in the module's Doc): {undocumented:?}"
    );
    let unrouted: Vec<_> = described.difference(&served).collect();
    assert!(
        unrouted.is_empty(),
        "operations in the document that no route serves: {unrouted:?}"
    );
}

/// Every `$ref` in `value`.
fn references(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(fields) => {
            for (key, field) in fields {
                match (key.as_str(), field) {
                    ("$ref", Value::String(target)) => out.push(target.clone()),
                    _ => references(field, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| references(item, out)),
        _ => {}
    }
}

#[tokio::test]
async fn the_document_is_openapi_3_1_with_problems_and_security() {
    let server = spawn_app().await;
    let doc = document(&server).await;
    let version = doc["openapi"].as_str().expect("openapi");
    assert!(version.starts_with("3.1."), "{version}");

    // Every reference names a schema the document holds.
    let mut refs = Vec::new();
    references(&doc, &mut refs);
    assert!(!refs.is_empty());
    for target in &refs {
        let name = target
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("a reference outside the schemas: {target}"));
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "{target} does not resolve"
        );
    }

    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["session_cookie"]["in"], "cookie");
    assert_eq!(schemes["session_cookie"]["name"], "ordertrack_session");
    let codes = doc["components"]["schemas"]["Problem"]["properties"]["code"]["enum"]
        .as_array()
        .expect("the problem codes");
    assert!(
        codes.contains(&Value::from("version_conflict")),
        "{codes:?}"
    );

    // Signed-in operations say so; public ones allow anyone; every
    // operation documents its refusals as problem+json.
    let op = |method: &str, path: &str| doc["paths"][path][method].clone();
    let place = op("post", "/api/v1/orders");
    assert_eq!(
        place["security"],
        serde_json::json!([{"bearer": []}, {"session_cookie": []}])
    );
    assert!(place["responses"]["201"]["content"]["application/json"].is_object());
    let refusal = &place["responses"]["422"]["content"]["application/problem+json"]["schema"];
    assert_eq!(refusal["$ref"], "#/components/schemas/Problem");
    assert_eq!(
        op("get", "/api/v1/stores")["security"],
        serde_json::json!([{}])
    );
    assert!(
        op("get", "/api/v1/orders/{id}/events")["responses"]["200"]["content"]["text/event-stream"]
            .is_object()
    );
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if let Some(operation) = item.get(method) {
                let responses = operation["responses"].as_object().expect("responses");
                assert!(responses.contains_key("404"), "{method} {path}");
                assert!(operation["security"].is_array(), "{method} {path}");
            }
        }
    }
}

#[tokio::test]
async fn the_docs_page_loads_only_vendored_files() {
    let server = spawn_app().await;
    let response = get(&server, "/api/docs").await;
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.starts_with("default-src 'self'"), "{csp}");
    let html = response.text().await.expect("the page");
    let linked: Vec<&str> = html
        .split(['"', '\''])
        .filter(|part| part.starts_with('/') || part.contains("://"))
        .collect();
    assert_eq!(linked.len(), 3, "{linked:?}");
    for path in linked {
        assert!(path.starts_with("/api/docs/"), "not vendored: {path}");
        let body = get(&server, path).await.bytes().await.expect("its body");
        assert!(body.len() > 100, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn chromium_renders_every_operation_from_this_server_alone() {
    let Some(chrome) = Chrome::launch().await else {
        return;
    };
    let server = spawn_app().await;
    let operations = documented(&document(&server).await).len();
    let person = chrome.person().await;
    let page = &person.page;
    goto(page, &server.page_url("/api/docs")).await;
    let rendered = format!("document.querySelectorAll('.opblock').length === {operations}");
    if !poll(page, &rendered, Duration::from_secs(30)).await {
        panic!(
            "Swagger UI shows {} operations of {operations}: {}",
            eval(page, "document.querySelectorAll('.opblock').length").await,
            describe(page).await
        );
    }
    // Everything the page fetched came from this server.
    let origins = eval(
        page,
        "JSON.stringify(performance.getEntriesByType('resource').map(e => new URL(e.name).origin))",
    )
    .await;
    let origins: Vec<String> =
        serde_json::from_str(origins.as_str().expect("a JSON string")).expect("origins");
    assert!(!origins.is_empty());
    for origin in origins {
        assert_eq!(origin, server.base);
    }
    chrome.close().await;
}
