//! `GET /openapi.json` and `GET /docs`: the contract is served, says OpenAPI 3.1, and each operation it lists
//! is one the service really answers (the other way round, that no route is served without being in it, is
//! `tests/structure`'s `every_route_is_in_the_openapi_document`).

use serde_json::Value;

use crate::helpers::TestApp;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

async fn document(app: &TestApp) -> Value {
    let response = app.client.get(app.url("/openapi.json")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Every operation of the document, as (method, path template, operation).
pub fn operations(document: &Value) -> Vec<(String, String, Value)> {
    let mut found = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for method in METHODS {
            if let Some(operation) = item.get(method) {
                found.push((method.to_owned(), path.clone(), operation.clone()));
            }
        }
    }
    found
}

#[tokio::test]
async fn the_document_is_openapi_3_1_with_the_security_schemes_and_an_error_shape_for_every_operation() {
    let app = TestApp::spawn().await;
    let document = document(&app).await;
    assert_eq!(document["openapi"], "3.1.0");
    let schemes = document["components"]["securitySchemes"].as_object().unwrap();
    for scheme in ["tenant_key", "operator_token", "widget_token", "anthropic_key"] {
        assert!(schemes.contains_key(scheme), "no security scheme {scheme}");
    }
    let operations = operations(&document);
    assert!(operations.len() >= 60, "only {} operations", operations.len());
    // The OAuth callback is reached by an admin's browser (its `state` is the credential), and the client
    // metadata document by authorization servers.
    let public =
        ["/", "/widget.js", "/healthz", "/readyz", "/api/v1/oauth/callback", "/api/v1/oauth/client-metadata.json"];
    for (method, path, operation) in &operations {
        let responses = operation["responses"].as_object().unwrap();
        assert!(responses.contains_key("default"), "{method} {path} has no error response");
        assert!(
            responses.keys().any(|status| status.starts_with('2')),
            "{method} {path} documents no successful answer"
        );
        let secured = operation.get("security").and_then(Value::as_array).is_some_and(|list| !list.is_empty());
        assert_eq!(
            secured,
            !public.contains(&path.as_str()),
            "{method} {path}: security {:?}",
            operation.get("security")
        );
    }
    // The doors answer errors in their own shapes, and the document says so.
    let error_of = |method: &str, path: &str| {
        let operation = &document["paths"][path][method];
        operation["responses"]["default"]["content"]["application/json"]["schema"]["$ref"].clone()
    };
    assert_eq!(error_of("post", "/api/v1/documents"), "#/components/schemas/ApiErrorBody");
    assert_eq!(error_of("post", "/v1/chat/completions"), "#/components/schemas/OpenAiErrorBody");
    assert_eq!(error_of("post", "/v1/messages"), "#/components/schemas/AnthropicErrorBody");
}

#[tokio::test]
async fn every_documented_operation_is_served() {
    let app = TestApp::spawn().await;
    let document = document(&app).await;
    for (method, path, _) in operations(&document) {
        // Any value fills a parameter: without credentials, a served route refuses (401) or answers, and
        // only a path or method no route has gets 404 or 405.
        let concrete = fill_parameters(&path);
        let request = app.client.request(method.to_uppercase().parse().unwrap(), app.url(&concrete));
        let request =
            if method == "get" || method == "delete" { request } else { request.json(&serde_json::json!({})) };
        let status = request.send().await.unwrap().status().as_u16();
        assert!(status != 404 && status != 405, "{method} {path} ({concrete}) answered {status}: not served");
    }
}

fn fill_parameters(template: &str) -> String {
    let mut concrete = String::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        concrete.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("a closed parameter") + start;
        concrete.push_str(&uuid::Uuid::new_v4().to_string());
        rest = &rest[end + 1..];
    }
    concrete.push_str(rest);
    concrete
}

#[tokio::test]
async fn the_reference_page_is_served_from_the_binary_and_reads_the_document() {
    let app = TestApp::spawn().await;
    let response = app.client.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let page = response.text().await.unwrap();
    assert!(page.contains("swagger-ui"), "{page}");
    assert!(!page.contains("https://") && !page.contains("http://"), "the page loads something from elsewhere: {page}");
    let config = app.client.get(app.url("/docs/swagger-initializer.js")).send().await.unwrap();
    assert_eq!(config.status(), 200);
    assert!(config.text().await.unwrap().contains("/openapi.json"));
    for asset in ["/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css"] {
        assert_eq!(app.client.get(app.url(asset)).send().await.unwrap().status(), 200, "{asset}");
    }
}
