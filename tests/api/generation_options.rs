//! The OpenAI door's generation options (sampling, stop sequences, the answer's format, tool choice):
//! each reaches the model in its provider's own fields, or is refused with a 400 naming it. None is
//! accepted and dropped.

use mock_upstream::Reply;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestTenant};

async fn tenant_on(app: &TestApp, slug: &str, provider: &str, model: &str) -> TestTenant {
    let tenant = app.create_tenant(slug).await;
    app.configure(&tenant, json!({ "default_provider": provider, "default_model": model })).await;
    tenant
}

fn weather_tool() -> Value {
    json!({ "type": "function", "function": { "name": "get_weather", "parameters": { "type": "object" } } })
}

fn schema_format() -> Value {
    json!({ "type": "json_schema", "json_schema": { "name": "city", "strict": true,
            "schema": { "type": "object", "properties": { "name": { "type": "string" } } } } })
}

/// Sends a completion and returns the body the model received.
async fn sent_upstream(app: &TestApp, key: &str, request: Value) -> Value {
    app.mock.push(Reply { text: "Done.".into(), ..Reply::default() });
    let response = app.post("/v1/chat/completions", key, &request).send().await.unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    app.mock.requests().pop().unwrap().body
}

/// Sends a completion that must be refused with 400 naming `parameter`, without reaching any model.
async fn refused(app: &TestApp, key: &str, request: Value, parameter: &str) {
    let before = app.mock.requests().len();
    let response = app.post("/v1/chat/completions", key, &request).send().await.unwrap();
    assert_eq!(response.status(), 400, "{request}");
    let body: Value = response.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(&format!("`{parameter}`")), "names `{parameter}`: {body}");
    assert_eq!(app.mock.requests().len(), before, "no model was called");
}

#[tokio::test]
async fn each_option_reaches_the_model_in_its_providers_own_fields() {
    let app = TestApp::spawn().await;
    let ask = |model: &str, extra: Value| {
        let mut request = json!({ "model": model, "messages": [{ "role": "user", "content": "Where?" }],
                                  "tools": [weather_tool()], "temperature": 0.25, "top_p": 0.5, "stop": ["END"] });
        request.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        request
    };

    let openai = tenant_on(&app, "openai", "openai", "gpt-4o-mini").await;
    let extra = json!({ "seed": 42, "response_format": schema_format(), "parallel_tool_calls": false, "user": "u-1",
                        "tool_choice": { "type": "function", "function": { "name": "get_weather" } } });
    let sent = sent_upstream(&app, &openai.admin_key, ask("gpt-4o-mini", extra)).await;
    assert_eq!((&sent["temperature"], &sent["top_p"], &sent["seed"]), (&json!(0.25), &json!(0.5), &json!(42)));
    assert_eq!(sent["stop"], json!(["END"]));
    assert_eq!(sent["response_format"], schema_format(), "the caller's format as sent");
    assert_eq!(sent["tool_choice"], json!({ "type": "function", "function": { "name": "get_weather" } }));
    assert_eq!((&sent["parallel_tool_calls"], &sent["user"]), (&json!(false), &json!("u-1")));

    let anthropic = tenant_on(&app, "anthropic", "anthropic", "claude-sonnet-4-5").await;
    let extra = json!({ "tool_choice": "required", "parallel_tool_calls": false, "user": "u-1" });
    let sent = sent_upstream(&app, &anthropic.admin_key, ask("claude-sonnet-4-5", extra)).await;
    assert_eq!((&sent["temperature"], &sent["top_p"]), (&json!(0.25), &json!(0.5)));
    assert_eq!(sent["stop_sequences"], json!(["END"]));
    assert_eq!(sent["tool_choice"], json!({ "type": "any", "disable_parallel_tool_use": true }));
    assert_eq!(sent["metadata"], json!({ "user_id": "u-1" }));

    let gemini = tenant_on(&app, "gemini", "gemini", "gemini-2.5-flash").await;
    let extra = json!({ "seed": 7, "response_format": schema_format(),
                        "tool_choice": { "type": "function", "function": { "name": "get_weather" } } });
    let sent = sent_upstream(&app, &gemini.admin_key, ask("gemini-2.5-flash", extra)).await;
    let config = &sent["generationConfig"];
    assert_eq!((&config["temperature"], &config["topP"], &config["seed"]), (&json!(0.25), &json!(0.5), &json!(7)));
    assert_eq!(config["stopSequences"], json!(["END"]));
    assert_eq!(config["responseMimeType"], "application/json");
    assert_eq!(config["responseJsonSchema"], schema_format()["json_schema"]["schema"]);
    let calling = &sent["toolConfig"]["functionCallingConfig"];
    assert_eq!(*calling, json!({ "mode": "ANY", "allowedFunctionNames": ["get_weather"] }));
}

#[tokio::test]
async fn an_option_nobody_can_honour_is_refused_by_name() {
    let app = TestApp::spawn().await;
    let question = |model: &str, extra: Value| {
        let mut request = json!({ "model": model, "messages": [{ "role": "user", "content": "Hi" }] });
        request.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        request
    };
    let openai = tenant_on(&app, "openai", "openai", "gpt-4o-mini").await;
    let key = &openai.admin_key;
    refused(&app, key, question("gpt-4o-mini", json!({ "logprobs": true })), "logprobs").await;
    refused(&app, key, question("gpt-4o-mini", json!({ "frequency_penalty": 0.5 })), "frequency_penalty").await;
    refused(&app, key, question("gpt-4o-mini", json!({ "temperature": 3 })), "temperature").await;
    refused(&app, key, question("switchboard-assistant", json!({ "temperature": 0.2 })), "temperature").await;
    // A null option is no option.
    sent_upstream(&app, key, question("gpt-4o-mini", json!({ "frequency_penalty": null, "logprobs": false }))).await;

    let anthropic = tenant_on(&app, "anthropic", "anthropic", "claude-sonnet-4-5").await;
    refused(&app, &anthropic.admin_key, question("claude-sonnet-4-5", json!({ "seed": 1 })), "seed").await;
    let json_mode = json!({ "response_format": { "type": "json_object" } });
    refused(&app, &anthropic.admin_key, question("claude-sonnet-4-5", json_mode), "response_format").await;

    let gemini = tenant_on(&app, "gemini", "gemini", "gemini-2.5-flash").await;
    let serial = json!({ "parallel_tool_calls": false });
    refused(&app, &gemini.admin_key, question("gemini-2.5-flash", serial), "parallel_tool_calls").await;

    let offline = app.create_tenant("offline").await;
    let model = "switchboard-extractive";
    refused(&app, &offline.admin_key, question(model, json!({ "temperature": 0.2 })), "temperature").await;
}
