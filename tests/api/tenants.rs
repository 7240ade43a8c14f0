use serde_json::{Value, json};

use crate::helpers::{OPERATOR_TOKEN, TestApp, assert_error};

#[tokio::test]
async fn the_operator_creates_a_tenant_with_a_working_admin_key() {
    let app = TestApp::spawn().await;
    let response =
        app.post("/api/v1/tenants", OPERATOR_TOKEN, &json!({"name": "Acme", "slug": "acme"})).send().await.unwrap();
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["tenant"]["name"], "Acme");
    assert_eq!(body["tenant"]["slug"], "acme");
    let key = body["api_key"]["key"].as_str().unwrap();
    assert!(key.starts_with("sb_"));
    let mut scopes: Vec<&str> =
        body["api_key"]["scopes"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    scopes.sort_unstable();
    assert_eq!(scopes, ["admin", "chat", "runs"]);

    let listed = app.get("/api/v1/api-keys", key).send().await.unwrap();
    assert_eq!(listed.status(), 200);
}

#[tokio::test]
async fn tenant_creation_needs_the_operator_token() {
    let app = TestApp::spawn().await;
    let body = json!({"name": "Acme", "slug": "acme"});
    let response = app.post("/api/v1/tenants", "not-the-token", &body).send().await.unwrap();
    assert_error(response, 401, "unauthorized").await;
    let response = app.client.post(app.url("/api/v1/tenants")).json(&body).send().await.unwrap();
    assert_error(response, 401, "unauthorized").await;

    let tenant = app.create_tenant("first").await;
    let response = app.post("/api/v1/tenants", &tenant.admin_key, &body).send().await.unwrap();
    assert_error(response, 401, "unauthorized").await;
}

#[tokio::test]
async fn slugs_are_unique_and_validated() {
    let app = TestApp::spawn().await;
    app.create_tenant("acme").await;
    let again = app.post("/api/v1/tenants", OPERATOR_TOKEN, &json!({"name": "Other", "slug": "acme"}));
    assert_error(again.send().await.unwrap(), 409, "slug_taken").await;
    let system = app.post("/api/v1/tenants", OPERATOR_TOKEN, &json!({"name": "Sys", "slug": "system"}));
    assert_error(system.send().await.unwrap(), 409, "slug_taken").await;
    let bad = app.post("/api/v1/tenants", OPERATOR_TOKEN, &json!({"name": "Bad", "slug": "Not A Slug"}));
    assert_error(bad.send().await.unwrap(), 422, "invalid_request").await;
}
