//! `/mcp` refuses a caller as the MCP authorization spec says: 401 with a `WWW-Authenticate: Bearer`
//! challenge (`error="invalid_token"` when a token was presented), 403 with `insufficient_scope` for a key
//! without the `chat` scope, each with a JSON-RPC error body, so MCP clients can tell the user what is wrong
//! rather than "Server returned an error response".

use rmcp::ServiceExt as _;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};

use crate::helpers::TestApp;

fn initialize() -> Value {
    json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": { "name": "test", "version": "1" } } })
}

/// Sends `initialize` with `token` (none when `None`) and returns the status, challenge and body.
async fn refused(app: &TestApp, token: Option<&str>) -> (u16, Option<String>, Value) {
    let mut request =
        app.client.post(app.url("/mcp")).header("accept", "application/json, text/event-stream").json(&initialize());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let challenge = response.headers().get("www-authenticate").map(|value| value.to_str().unwrap().to_owned());
    assert!(response.headers().contains_key("x-request-id"));
    let content_type = response.headers().get("content-type").unwrap().to_str().unwrap().to_owned();
    assert!(content_type.starts_with("application/json"), "{content_type}");
    (status, challenge, response.json().await.unwrap())
}

fn assert_json_rpc_error(body: &Value) {
    assert_eq!(body["jsonrpc"], "2.0", "{body}");
    assert!(body.get("id").is_some_and(Value::is_null), "{body}");
    assert_eq!(body["error"]["code"], -32001, "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|message| !message.is_empty()), "{body}");
    assert!(body.get("result").is_none(), "{body}");
}

#[tokio::test]
async fn a_missing_or_wrong_key_is_a_bearer_challenge_with_a_json_rpc_error() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;

    let (status, challenge, body) = refused(&app, None).await;
    assert_eq!(status, 401);
    let challenge = challenge.expect("a WWW-Authenticate challenge");
    assert!(challenge.starts_with("Bearer"), "{challenge}");
    // No token, no error code (RFC 6750 §3.1); no metadata document exists to point at.
    assert!(!challenge.contains("error="), "{challenge}");
    assert!(!challenge.contains("resource_metadata"), "{challenge}");
    assert_json_rpc_error(&body);

    for wrong in ["sb_wrong", "sb_ABCDEFGHIJ12_notasecretatall", "not-even-a-key"] {
        let (status, challenge, body) = refused(&app, Some(wrong)).await;
        assert_eq!(status, 401, "{wrong}");
        let challenge = challenge.expect("a WWW-Authenticate challenge");
        assert!(challenge.starts_with("Bearer "), "{challenge}");
        assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
        assert!(!challenge.contains("resource_metadata"), "{challenge}");
        assert_json_rpc_error(&body);
    }

    // A real MCP client sees the challenge, not a bare "error response".
    let config = StreamableHttpClientTransportConfig::with_uri(app.url("/mcp")).auth_header("sb_wrong".to_owned());
    let error = ().serve(StreamableHttpClientTransport::from_config(config)).await.expect_err("refused");
    let error = format!("{error:?}");
    assert!(error.contains("AuthRequired") && error.contains("invalid_token"), "{error}");

    // The right key still gets in.
    let (_, chat_key) = app.create_key(&tenant, &["chat"]).await;
    let config = StreamableHttpClientTransportConfig::with_uri(app.url("/mcp")).auth_header(chat_key);
    let client = ().serve(StreamableHttpClientTransport::from_config(config)).await.expect("the handshake succeeds");
    assert!(client.peer().list_all_tools().await.unwrap().iter().any(|tool| tool.name == "search_docs"));
}

#[tokio::test]
async fn a_key_without_the_chat_scope_is_403_insufficient_scope_with_a_json_rpc_error() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let (_, admin_only) = app.create_key(&tenant, &["admin"]).await;

    let (status, challenge, body) = refused(&app, Some(&admin_only)).await;
    assert_eq!(status, 403);
    let challenge = challenge.expect("a WWW-Authenticate challenge");
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert!(challenge.contains("error=\"insufficient_scope\""), "{challenge}");
    assert!(challenge.contains("scope=\"chat\""), "{challenge}");
    assert_json_rpc_error(&body);
    assert!(body["error"]["message"].as_str().unwrap().contains("chat"), "{body}");

    let config = StreamableHttpClientTransportConfig::with_uri(app.url("/mcp")).auth_header(admin_only);
    let error = ().serve(StreamableHttpClientTransport::from_config(config)).await.expect_err("refused");
    let error = format!("{error:?}");
    assert!(error.contains("InsufficientScope") && error.contains("chat"), "{error}");
}
