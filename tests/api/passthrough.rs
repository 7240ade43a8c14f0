//! A conversation sent to the OpenAI-compatible door reaches the model as it was sent: no system message
//! added, tool results byte for byte, tool-call arguments as given (even when they are not JSON).

use mock_upstream::Reply;
use serde_json::{Value, json};

use crate::helpers::TestApp;

/// A tool result whose key order and number formatting a JSON round trip would change.
const RESULT: &str = r#"{"zeta": 1, "total": 12345678901234567890123, "price": 21.50, "alpha": [1e3, -0.0]}"#;
/// A call the model cut off mid-way: not JSON.
const CUT_ARGUMENTS: &str = r#"{"city": "Ly"#;

fn conversation(model: &str) -> Value {
    json!({
        "model": model,
        "messages": [
            { "role": "user", "content": "What is the total?" },
            { "role": "assistant", "content": null, "tool_calls": [
                { "id": "call_1", "type": "function", "function": { "name": "get_total", "arguments": "{\"id\": 7}" } },
                { "id": "call_2", "type": "function", "function": { "name": "get_weather", "arguments": CUT_ARGUMENTS } }
            ] },
            { "role": "tool", "tool_call_id": "call_1", "content": RESULT },
            { "role": "tool", "tool_call_id": "call_2", "content": "city is incomplete" }
        ],
        "tools": [
            { "type": "function", "function": { "name": "get_total", "parameters": { "type": "object" } } },
            { "type": "function", "function": { "name": "get_weather", "parameters": { "type": "object" } } }
        ]
    })
}

#[tokio::test]
async fn the_conversation_reaches_an_openai_model_byte_for_byte() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    app.configure(&tenant, json!({ "default_provider": "openai", "default_model": "gpt-4o-mini" })).await;
    app.mock.push(Reply { text: "The total is large.".into(), ..Reply::default() });

    let response =
        app.post("/v1/chat/completions", &tenant.admin_key, &conversation("gpt-4o-mini")).send().await.unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());

    let sent = app.mock.requests().pop().unwrap().body;
    let messages = sent["messages"].as_array().unwrap();
    assert_eq!(messages[0]["role"], "user", "no system message added: {sent}");
    assert_eq!(messages.len(), 4, "{sent}");
    let calls = &messages[1]["tool_calls"];
    assert_eq!(calls[0]["function"]["arguments"], "{\"id\": 7}");
    assert_eq!(calls[1]["function"]["arguments"], CUT_ARGUMENTS, "a cut-off call goes on as it is");
    // A JSON string holding the result's exact text (the mock parses the body, not the string inside).
    assert_eq!(messages[2]["content"], RESULT, "the result's text, not a re-serialised value");
}

#[tokio::test]
async fn a_cut_off_call_still_reaches_a_model_that_needs_objects() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    app.configure(&tenant, json!({ "default_provider": "anthropic", "default_model": "claude-sonnet-4-5" })).await;
    app.mock.push(Reply { text: "Noted.".into(), ..Reply::default() });

    let request = conversation("claude-sonnet-4-5");
    let response = app.post("/v1/chat/completions", &tenant.admin_key, &request).send().await.unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());

    let sent = app.mock.requests().pop().unwrap().body;
    assert!(sent.get("system").is_none(), "no system prompt added: {sent}");
    let blocks = &sent["messages"][1]["content"];
    assert_eq!(blocks[0]["input"], json!({ "id": 7 }));
    assert_eq!(blocks[1]["input"], json!({}), "Anthropic takes an object: the unreadable call is empty");
    assert_eq!(sent["messages"][2]["content"][0]["content"], RESULT, "the result's text as given");
}
