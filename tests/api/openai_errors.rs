//! Under `/v1`, every error, the framework's too (no route, wrong method, body too large, no JSON
//! content type, malformed or misshapen JSON), has OpenAI's shape: the SDKs read `error.message`,
//! `error.type`, `error.param` and `error.code`, and find nothing in Switchboard's own shape.

use serde_json::{Value, json};

use crate::helpers::TestApp;

/// Asserts OpenAI's error shape (every field present, `param` possibly null) and returns the error.
async fn assert_openai_error(response: reqwest::Response, status: u16, kind: &str, code: &str) -> Value {
    let what = format!("{} {}", response.status(), response.url());
    assert_eq!(response.status(), status, "{what}");
    assert!(response.headers().contains_key("x-request-id"), "{what}");
    let content_type = response.headers().get("content-type").expect("content type").to_str().unwrap().to_owned();
    assert!(content_type.starts_with("application/json"), "{what}: {content_type}");
    let body: Value = response.json().await.expect("a JSON error body");
    let error = body["error"].as_object().unwrap_or_else(|| panic!("{what}: {body}"));
    let mut keys: Vec<&str> = error.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["code", "message", "param", "type"], "{what}: {body}");
    assert!(error["message"].as_str().is_some_and(|message| !message.is_empty()), "{what}: {body}");
    assert_eq!(error["type"], kind, "{what}: {body}");
    assert_eq!(error["code"], code, "{what}: {body}");
    assert!(error["param"].is_null() || error["param"].is_string(), "{what}: {body}");
    body["error"].clone()
}

#[tokio::test]
async fn unknown_routes_under_v1_answer_openais_404() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let body = json!({ "model": "gpt-4o-mini", "input": "hello" });
    for path in ["/v1/completions", "/v1/audio/speech", "/v1/images/generations", "/v1/nope"] {
        let response = app.post(path, &tenant.admin_key, &body).send().await.unwrap();
        let error = assert_openai_error(response, 404, "invalid_request_error", "not_found").await;
        assert!(error["param"].is_null(), "{error}");
        // Like OpenAI's own answer, the message names what was asked for.
        let message = error["message"].as_str().unwrap();
        assert!(message.contains("POST"), "{message}");
    }
    let response = app.get("/v1/nope", &tenant.admin_key).send().await.unwrap();
    let error = assert_openai_error(response, 404, "invalid_request_error", "not_found").await;
    assert!(error["message"].as_str().unwrap().contains("GET /v1/nope"), "{error}");
    // Without a key too: the route does not exist whoever asks.
    let response = app.client.get(app.url("/v1/nope")).send().await.unwrap();
    assert_openai_error(response, 404, "invalid_request_error", "not_found").await;
    let response = app.client.get(app.url("/v1")).send().await.unwrap();
    assert_openai_error(response, 404, "invalid_request_error", "not_found").await;

    // Outside `/v1` the API keeps its own shape.
    let response = app.get("/api/v1/nope", &tenant.admin_key).send().await.unwrap();
    crate::helpers::assert_error(response, 404, "not_found").await;
}

#[tokio::test]
async fn framework_errors_under_v1_have_openais_shape() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let completions = app.url("/v1/chat/completions");

    // A route that exists, with a method it does not take.
    let response = app.get("/v1/chat/completions", &tenant.admin_key).send().await.unwrap();
    assert_openai_error(response, 405, "invalid_request_error", "method_not_allowed").await;
    let response = app.post("/v1/models", &tenant.admin_key, &json!({})).send().await.unwrap();
    assert_openai_error(response, 405, "invalid_request_error", "method_not_allowed").await;

    // A body over the limit (64 KiB in tests), refused before any route sees it.
    let huge = json!({ "model": "gpt-4o-mini", "messages": [{ "role": "user", "content": "x".repeat(200 * 1024) }] });
    let response = app.post("/v1/chat/completions", &tenant.admin_key, &huge).send().await.unwrap();
    assert_openai_error(response, 413, "invalid_request_error", "payload_too_large").await;

    let response =
        app.client.post(&completions).bearer_auth(&tenant.admin_key).body("{\"model\": \"m\"}").send().await.unwrap();
    assert_openai_error(response, 415, "invalid_request_error", "unsupported_media_type").await;

    let send = |body: &'static str| {
        app.client
            .post(&completions)
            .bearer_auth(&tenant.admin_key)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let error =
        assert_openai_error(send("{\"model\": ").await.unwrap(), 400, "invalid_request_error", "malformed_json").await;
    assert!(error["param"].is_null(), "{error}");
    // A missing field is named in `param`, as OpenAI does.
    let error = assert_openai_error(
        send("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}").await.unwrap(),
        422,
        "invalid_request_error",
        "invalid_request",
    )
    .await;
    assert_eq!(error["param"], "model", "{error}");
    let error = assert_openai_error(
        send("{\"model\": \"m\", \"messages\": \"hi\"}").await.unwrap(),
        422,
        "invalid_request_error",
        "invalid_request",
    )
    .await;
    assert_eq!(error["param"], "messages", "{error}");

    // Authentication and scope keep OpenAI's codes.
    let response = app.get("/v1/models", "sb_wrong").send().await.unwrap();
    let error = assert_openai_error(response, 401, "invalid_request_error", "invalid_api_key").await;
    assert!(error["param"].is_null(), "{error}");
    let (_, admin_only) = app.create_key(&tenant, &["admin"]).await;
    let response = app.get("/v1/models", &admin_only).send().await.unwrap();
    assert_openai_error(response, 403, "permission_error", "forbidden").await;
}
