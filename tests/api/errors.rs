//! Bad input of every kind gets the JSON error shape with a stable code, never a 500.

use crate::helpers::{TestApp, assert_error};

#[tokio::test]
async fn malformed_json_wrong_types_and_missing_fields_are_client_errors() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let send = |body: &'static str| {
        app.client
            .post(app.url("/api/v1/api-keys"))
            .bearer_auth(&tenant.admin_key)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    assert_error(send("{\"name\": ").await.unwrap(), 400, "malformed_json").await;
    assert_error(send("{\"name\": 5, \"scopes\": [\"chat\"]}").await.unwrap(), 422, "invalid_request").await;
    assert_error(send("{\"scopes\": [\"chat\"]}").await.unwrap(), 422, "invalid_request").await;
    assert_error(send("{\"name\": \"a\", \"scopes\": \"chat\"}").await.unwrap(), 422, "invalid_request").await;
    assert_error(
        send("{\"name\": \"a\", \"scopes\": [\"chat\"], \"extra\": 1}").await.unwrap(),
        422,
        "invalid_request",
    )
    .await;

    let no_content_type =
        app.client.post(app.url("/api/v1/api-keys")).bearer_auth(&tenant.admin_key).body("{}").send().await.unwrap();
    assert_error(no_content_type, 415, "unsupported_media_type").await;
}

#[tokio::test]
async fn an_oversized_body_is_refused_with_413() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let huge = format!("{{\"name\": \"{}\", \"scopes\": [\"chat\"]}}", "x".repeat(200 * 1024));
    let response = app
        .client
        .post(app.url("/api/v1/api-keys"))
        .bearer_auth(&tenant.admin_key)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_error(response, 413, "payload_too_large").await;
}

#[tokio::test]
async fn unknown_routes_wrong_methods_and_bad_ids_get_json_errors() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let response = app.get("/api/v1/no-such-thing", &tenant.admin_key).send().await.unwrap();
    assert_error(response, 404, "not_found").await;
    let response = app.client.put(app.url("/healthz")).send().await.unwrap();
    assert_error(response, 405, "method_not_allowed").await;
    let response = app.delete("/api/v1/api-keys/not-a-uuid", &tenant.admin_key).send().await.unwrap();
    assert_error(response, 400, "invalid_path").await;
    let response = app.get("/api/v1/audit-events?limit=abc", &tenant.admin_key).send().await.unwrap();
    assert_error(response, 400, "invalid_query").await;
    let response = app.get("/api/v1/audit-events?limit=0", &tenant.admin_key).send().await.unwrap();
    assert_error(response, 422, "invalid_request").await;
}
