//! The OpenAI Responses door (`/v1/responses`): a response is a run over the client's own model,
//! conversation and function tools; it is kept, shown again (`GET`, `input_items`), continued
//! (`previous_response_id`), streamed as OpenAI's typed events, and driven by the official SDK.

use std::time::Duration;

use mock_upstream::{Fault, Reply, ToolCall};
use serde_json::{Value, json};

use crate::helpers::{SseEvent, TestApp, TestTenant, read_sse};
use crate::openai_compat::{run_sdk_script, sdk_python};

async fn tenant(app: &TestApp, slug: &str) -> TestTenant {
    let tenant = app.create_tenant(slug).await;
    app.configure(&tenant, json!({ "default_provider": "openai", "default_model": "gpt-4o-mini" })).await;
    tenant
}

async fn create(app: &TestApp, key: &str, body: &Value) -> Value {
    let response = app.post("/v1/responses", key, body).send().await.unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

/// Asserts OpenAI's error shape and returns the error.
async fn openai_error(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status, "{}", response.url());
    let body: Value = response.json().await.unwrap();
    let error = &body["error"];
    assert_eq!(error["type"], "invalid_request_error", "{body}");
    assert!(error["message"].as_str().is_some_and(|message| !message.is_empty()), "{body}");
    error.clone()
}

fn weather(city: &str) -> ToolCall {
    ToolCall { id: String::new(), name: "get_weather".into(), arguments: json!({ "city": city }) }
}

fn tools() -> Value {
    json!([{
        "type": "function", "name": "get_weather", "description": "The weather in a city.", "strict": true,
        "parameters": { "type": "object", "properties": { "city": { "type": "string" } }, "required": ["city"] }
    }])
}

/// The chat completions requests the mock model received, oldest first.
fn chats(app: &TestApp) -> Vec<Value> {
    app.mock.requests().into_iter().filter(|r| r.path.ends_with("/chat/completions")).map(|r| r.body).collect()
}

#[tokio::test]
async fn responses_answer_with_text_and_keep_it_for_later() {
    let app = TestApp::spawn().await;
    let tenant = tenant(&app, "acme").await;
    let key = &tenant.admin_key;
    app.mock.push(Reply { text: "Hello there".into(), usage: Some((11, 2)), ..Reply::default() });

    let body = json!({ "model": "gpt-4o-mini", "input": "Say hello", "instructions": "Be brief.",
                       "temperature": 0.5, "metadata": { "ticket": "T-1" } });
    let response = create(&app, key, &body).await;
    let id = response["id"].as_str().unwrap();
    assert!(id.starts_with("resp_"), "{response}");
    assert_eq!(response["object"], "response");
    assert_eq!(response["status"], "completed");
    assert_eq!(response["incomplete_details"], Value::Null);
    assert_eq!(response["error"], Value::Null);
    assert_eq!(response["instructions"], "Be brief.");
    assert_eq!(response["model"], "gpt-4o-mini");
    assert_eq!(response["temperature"], 0.5);
    assert_eq!(response["metadata"], json!({ "ticket": "T-1" }));
    assert_eq!(response["previous_response_id"], Value::Null);
    assert_eq!(response["store"], true);
    let output = response["output"].as_array().unwrap();
    assert_eq!(output.len(), 1, "{response}");
    assert_eq!(output[0]["type"], "message");
    assert_eq!(output[0]["role"], "assistant");
    assert_eq!(output[0]["status"], "completed");
    assert_eq!(
        output[0]["content"],
        json!([{ "type": "output_text", "text": "Hello there", "annotations": [], "logprobs": [] }])
    );
    assert_eq!(
        response["usage"],
        json!({ "input_tokens": 11, "input_tokens_details": { "cached_tokens": 0 }, "output_tokens": 2,
                "output_tokens_details": { "reasoning_tokens": 0 }, "total_tokens": 13 })
    );

    // The instructions reach the model as its system message, the input after it.
    let sent = chats(&app).pop().unwrap();
    assert_eq!(
        sent["messages"],
        json!([{ "role": "system", "content": "Be brief." }, { "role": "user", "content": "Say hello" }])
    );
    assert_eq!(sent["temperature"], 0.5);

    // Kept: shown again as it was answered, with what it was asked.
    let again = app.get_json(&format!("/v1/responses/{id}"), key).await;
    for field in ["id", "status", "output", "usage", "instructions", "metadata", "created_at", "model"] {
        assert_eq!(again[field], response[field], "{field}: {again}");
    }
    let items = app.get_json(&format!("/v1/responses/{id}/input_items"), key).await;
    assert_eq!(items["object"], "list");
    assert_eq!(items["has_more"], false);
    let data = items["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{items}");
    assert_eq!(data[0]["type"], "message");
    assert_eq!(data[0]["role"], "user");
    assert_eq!(data[0]["content"], json!([{ "type": "input_text", "text": "Say hello" }]));
    assert_eq!(items["first_id"], data[0]["id"]);
    assert_eq!(items["last_id"], data[0]["id"]);

    // A response is a turn of an integration conversation, like any call of the door.
    let sessions = app.get_json("/api/v1/sessions?session_type=integration", key).await;
    assert_eq!(sessions["sessions"].as_array().unwrap().len(), 1, "{sessions}");

    // Deleted, it is gone.
    let deleted = app.delete(&format!("/v1/responses/{id}"), key).send().await.unwrap();
    assert_eq!(deleted.status(), 200);
    assert_eq!(deleted.json::<Value>().await.unwrap(), json!({ "id": id, "object": "response", "deleted": true }));
    let response = app.get(&format!("/v1/responses/{id}"), key).send().await.unwrap();
    openai_error(response, 404).await;
}

#[tokio::test]
async fn responses_continue_a_function_call_round_trip_from_what_is_stored() {
    let app = TestApp::spawn().await;
    let tenant = tenant(&app, "acme").await;
    let key = &tenant.admin_key;
    app.mock.push(Reply { tool_calls: vec![weather("Lyon")], ..Reply::default() });
    app.mock.push(Reply { text: "It is sunny in Lyon.".into(), ..Reply::default() });
    app.mock.push(Reply { text: "Take a hat.".into(), ..Reply::default() });

    let first =
        create(&app, key, &json!({ "model": "gpt-4o-mini", "input": "Weather in Lyon?", "tools": tools() })).await;
    assert_eq!(first["status"], "completed");
    let output = first["output"].as_array().unwrap();
    assert_eq!(output.len(), 1, "a call alone, no empty message: {first}");
    let call = &output[0];
    assert_eq!(call["type"], "function_call");
    assert_eq!(call["name"], "get_weather");
    assert_eq!(call["status"], "completed");
    assert!(call["id"].as_str().unwrap().starts_with("fc_"), "{call}");
    assert_eq!(serde_json::from_str::<Value>(call["arguments"].as_str().unwrap()).unwrap(), json!({ "city": "Lyon" }));
    assert_eq!(first["tools"][0]["name"], "get_weather");
    assert_eq!(first["tools"][0]["strict"], true);
    let call_id = call["call_id"].as_str().unwrap();
    let first_sent = chats(&app).pop().unwrap();
    assert_eq!(first_sent["tools"][0]["function"]["name"], "get_weather");

    // The client runs the function and sends its output alone, naming the response it answers.
    let result = r#"{"sky": "sunny", "celsius": 21.50}"#;
    let second = create(
        &app,
        key,
        &json!({
            "model": "gpt-4o-mini", "previous_response_id": first["id"], "tools": tools(),
            "input": [{ "type": "function_call_output", "call_id": call_id, "output": result }]
        }),
    )
    .await;
    assert_eq!(second["output"][0]["content"][0]["text"], "It is sunny in Lyon.");
    assert_eq!(second["previous_response_id"], first["id"]);
    // The model was given the whole earlier conversation: the question, its call, and the output as sent.
    let sent = chats(&app).pop().unwrap();
    let messages = sent["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 3, "{sent}");
    assert_eq!(messages[0], json!({ "role": "user", "content": "Weather in Lyon?" }));
    assert_eq!(messages[1]["tool_calls"][0]["id"], call_id);
    assert_eq!(messages[1]["tool_calls"][0]["function"]["name"], "get_weather");
    assert_eq!(messages[2], json!({ "role": "tool", "tool_call_id": call_id, "content": result }));

    // A third turn continues the second: every earlier item, and the answer, come before the new question.
    let third = create(
        &app,
        key,
        &json!({ "model": "gpt-4o-mini", "previous_response_id": second["id"],
                                           "input": [{ "role": "user", "content": "And tomorrow?" }] }),
    )
    .await;
    assert_eq!(third["output"][0]["content"][0]["text"], "Take a hat.");
    let sent = chats(&app).pop().unwrap();
    let roles: Vec<&str> = sent["messages"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["user", "assistant", "tool", "assistant", "user"], "{sent}");
    assert_eq!(sent["messages"][3]["content"], "It is sunny in Lyon.");
    assert!(sent.get("tools").is_none(), "tools are not carried over: {sent}");

    // Its input items are the whole conversation it answered, oldest first when asked.
    let items =
        app.get_json(&format!("/v1/responses/{}/input_items?order=asc", third["id"].as_str().unwrap()), key).await;
    let kinds: Vec<&str> =
        items["data"].as_array().unwrap().iter().map(|item| item["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["message", "function_call", "function_call_output", "message", "message"], "{items}");
    assert_eq!(items["data"][2]["output"], result);
    let newest =
        app.get_json(&format!("/v1/responses/{}/input_items?limit=2", third["id"].as_str().unwrap()), key).await;
    assert_eq!(newest["data"][0]["content"][0]["text"], "And tomorrow?");
    assert_eq!(newest["has_more"], true);
    let after = newest["last_id"].as_str().unwrap();
    let rest = app
        .get_json(&format!("/v1/responses/{}/input_items?limit=10&after={after}", third["id"].as_str().unwrap()), key)
        .await;
    assert_eq!(rest["data"].as_array().unwrap().len(), 3, "{rest}");
    assert_eq!(rest["has_more"], false);
}

#[tokio::test]
async fn responses_continue_on_an_anthropic_model_too() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    app.configure(&tenant, json!({ "default_provider": "anthropic", "default_model": "claude-sonnet-4-5" })).await;
    let key = &tenant.admin_key;
    app.mock.push(Reply { tool_calls: vec![weather("Lyon")], ..Reply::default() });
    app.mock.push(Reply { text: "Sunny.".into(), ..Reply::default() });
    let body = json!({ "model": "claude-sonnet-4-5", "input": "Weather in Lyon?", "tools": tools(),
                       "instructions": "Be brief." });
    let first = create(&app, key, &body).await;
    let call_id = first["output"][0]["call_id"].as_str().unwrap();
    let second = create(
        &app,
        key,
        &json!({
            "model": "claude-sonnet-4-5", "previous_response_id": first["id"], "tools": tools(),
            "input": [{ "type": "function_call_output", "call_id": call_id, "output": "sunny" }]
        }),
    )
    .await;
    assert_eq!(second["output"][0]["content"][0]["text"], "Sunny.");
    let sent = app.mock.requests().pop().unwrap().body;
    assert!(sent.get("system").is_none(), "instructions are not carried over: {sent}");
    assert_eq!(sent["messages"][1]["content"][0]["id"], call_id, "{sent}");
    assert_eq!(sent["messages"][2]["content"][0]["tool_use_id"], call_id, "{sent}");
    assert_eq!(sent["messages"][2]["content"][0]["content"], "sunny", "{sent}");
}

#[tokio::test]
async fn responses_of_another_tenant_and_unstored_ones_are_not_found() {
    let app = TestApp::spawn().await;
    let acme = tenant(&app, "acme").await;
    let globex = tenant(&app, "globex").await;
    app.mock.push(Reply { text: "Secret answer".into(), ..Reply::default() });
    let theirs = create(&app, &acme.admin_key, &json!({ "model": "gpt-4o-mini", "input": "Hi" })).await;
    let id = theirs["id"].as_str().unwrap();

    let continued = json!({ "model": "gpt-4o-mini", "previous_response_id": id, "input": "Go on" });
    let response = app.post("/v1/responses", &globex.admin_key, &continued).send().await.unwrap();
    let error = openai_error(response, 404).await;
    assert_eq!(error["code"], "previous_response_not_found");
    assert_eq!(error["param"], "previous_response_id");
    for path in [format!("/v1/responses/{id}"), format!("/v1/responses/{id}/input_items")] {
        let response = app.get(&path, &globex.admin_key).send().await.unwrap();
        openai_error(response, 404).await;
    }
    let response = app.delete(&format!("/v1/responses/{id}"), &globex.admin_key).send().await.unwrap();
    openai_error(response, 404).await;
    assert_eq!(app.get(&format!("/v1/responses/{id}"), &acme.admin_key).send().await.unwrap().status(), 200);
    let unknown = json!({ "model": "gpt-4o-mini", "previous_response_id": "resp_nope", "input": "Go on" });
    let response = app.post("/v1/responses", &acme.admin_key, &unknown).send().await.unwrap();
    assert_eq!(openai_error(response, 404).await["code"], "previous_response_not_found");

    // `store: false`: answered, then nothing to show or continue.
    app.mock.push(Reply { text: "Forgotten".into(), ..Reply::default() });
    let unstored =
        create(&app, &acme.admin_key, &json!({ "model": "gpt-4o-mini", "input": "Hi", "store": false })).await;
    assert_eq!(unstored["store"], false);
    assert_eq!(unstored["output"][0]["content"][0]["text"], "Forgotten");
    let unstored_id = unstored["id"].as_str().unwrap();
    let response = app.get(&format!("/v1/responses/{unstored_id}"), &acme.admin_key).send().await.unwrap();
    openai_error(response, 404).await;
    let continued = json!({ "model": "gpt-4o-mini", "previous_response_id": unstored_id, "input": "Go on" });
    let response = app.post("/v1/responses", &acme.admin_key, &continued).send().await.unwrap();
    assert_eq!(openai_error(response, 404).await["code"], "previous_response_not_found");
}

#[tokio::test]
async fn responses_refuse_what_they_cannot_carry_by_name() {
    let app = TestApp::spawn().await;
    let tenant = tenant(&app, "acme").await;
    for (body, param) in [
        (json!({ "model": "gpt-4o-mini", "input": "hi", "reasoning": { "effort": "low" } }), "reasoning"),
        (json!({ "model": "gpt-4o-mini", "input": "hi", "tools": [{ "type": "web_search" }] }), "tools[0].type"),
        (
            json!({ "model": "gpt-4o-mini", "input": [{ "role": "user", "content": [{ "type": "input_image", "image_url": "x" }] }] }),
            "input[0].content[0].type",
        ),
        (json!({ "model": "gpt-4o-mini", "input": "hi", "include": ["reasoning.encrypted_content"] }), "include"),
        (json!({ "model": "gpt-4o-mini", "input": "hi", "metadata": { "n": 1 } }), "metadata.n"),
        (json!({ "model": "gpt-4o-mini" }), "input"),
    ] {
        let response = app.post("/v1/responses", &tenant.admin_key, &body).send().await.unwrap();
        let error = openai_error(response, 400).await;
        assert_eq!(error["param"], param, "{body}: {error}");
    }
    // Nothing refused was recorded, nor sent to a model.
    let sessions = app.get_json("/api/v1/sessions?session_type=integration", &tenant.admin_key).await;
    assert_eq!(sessions["sessions"].as_array().unwrap().len(), 0, "{sessions}");
    assert!(chats(&app).is_empty());
    // An unknown model is OpenAI's 404 with `param: "model"`.
    let response = app
        .post("/v1/responses", &tenant.admin_key, &json!({ "model": "no-such-model", "input": "hi" }))
        .send()
        .await
        .unwrap();
    assert_eq!(openai_error(response, 404).await["param"], "model");
}

/// The events' types, checking that each is numbered one after the other from `first` (its SSE id too) and named
/// by its type.
fn event_types(events: &[SseEvent], first: u64) -> Vec<String> {
    for (number, event) in (first..).zip(events) {
        assert_eq!(event.data["sequence_number"], number, "{events:#?}");
        assert_eq!(event.id, number.to_string(), "{events:#?}");
        assert_eq!(event.data["type"], event.event.as_str(), "{events:#?}");
    }
    events.iter().map(|event| event.event.clone()).collect()
}

#[tokio::test]
async fn responses_stream_typed_events_numbered_from_zero_and_resume_after_any() {
    let app = TestApp::spawn().await;
    let tenant = tenant(&app, "acme").await;
    let key = &tenant.admin_key;
    app.mock.push(Reply { text: "Streamed answer here".into(), usage: Some((7, 3)), ..Reply::default() });

    let body = json!({ "model": "gpt-4o-mini", "input": "Stream please", "stream": true });
    let events = read_sse(app.post("/v1/responses", key, &body).send().await.unwrap()).await;
    let types = event_types(&events, 0);
    assert_eq!(
        types,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    assert_eq!(events[0].data["response"]["status"], "in_progress");
    let deltas: String = events.iter().filter_map(|event| event.data["delta"].as_str()).collect();
    assert_eq!(deltas, "Streamed answer here");
    let item_id = events[2].data["item"]["id"].as_str().unwrap();
    assert!(events[4..10].iter().all(|event| event.data["output_index"] == 0));
    assert_eq!(events[4].data["item_id"], item_id);
    assert_eq!(events[7].data["text"], "Streamed answer here");
    let completed = &events[10].data["response"];
    assert_eq!(completed["status"], "completed");
    assert_eq!(completed["usage"]["output_tokens"], 3);
    assert_eq!(completed["output"][0]["id"], item_id);

    // Kept like any other, and its events can be read again after any of them.
    let id = completed["id"].as_str().unwrap();
    let shown = app.get_json(&format!("/v1/responses/{id}"), key).await;
    assert_eq!(shown["output"], completed["output"]);
    let again =
        read_sse(app.get(&format!("/v1/responses/{id}?stream=true&starting_after=6"), key).send().await.unwrap()).await;
    assert_eq!(event_types(&again, 7), types[7..]);
    assert_eq!(again.last().unwrap().data["response"]["output"], completed["output"]);
    // A client reconnecting says where it was with `Last-Event-ID`.
    let request = app.get(&format!("/v1/responses/{id}?stream=true"), key).header("last-event-id", "9");
    let resumed = read_sse(request.send().await.unwrap()).await;
    assert_eq!(event_types(&resumed, 10), types[10..]);

    // A function call streams as an item of its own, its arguments in one delta.
    app.mock.push(Reply { tool_calls: vec![weather("Nantes")], ..Reply::default() });
    let body = json!({ "model": "gpt-4o-mini", "input": "Weather in Nantes?", "tools": tools(), "stream": true });
    let events = read_sse(app.post("/v1/responses", key, &body).send().await.unwrap()).await;
    assert_eq!(
        event_types(&events, 0),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    assert_eq!(events[2].data["item"]["type"], "function_call");
    assert_eq!(events[2].data["item"]["arguments"], "");
    let arguments = events[4].data["arguments"].as_str().unwrap();
    assert_eq!(serde_json::from_str::<Value>(arguments).unwrap(), json!({ "city": "Nantes" }));
    assert_eq!(events[3].data["delta"], arguments);
    assert_eq!(events[5].data["item"]["arguments"], arguments);
    assert_eq!(events[6].data["response"]["output"][0]["call_id"], events[2].data["item"]["call_id"]);
}

#[tokio::test]
async fn responses_that_fail_before_any_text_are_http_errors_and_after_it_fail_in_the_stream() {
    let app = TestApp::spawn().await;
    let tenant = tenant(&app, "acme").await;
    let key = &tenant.admin_key;
    app.mock.push(Reply { fault: Some(Fault::Status { status: 400, retry_after: None }), ..Reply::default() });
    let body = json!({ "model": "gpt-4o-mini", "input": "hi", "stream": true });
    let response = app.post("/v1/responses", key, &body).send().await.unwrap();
    assert_eq!(response.status(), 502);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["type"], "server_error", "{error}");

    app.mock.push(Reply { text: "one two three four".into(), fault: Some(Fault::CutAfter(2)), ..Reply::default() });
    let events = read_sse(app.post("/v1/responses", key, &body).send().await.unwrap()).await;
    let types = event_types(&events, 0);
    assert!(!types.iter().any(|name| name == "response.completed"), "a failed answer never looks complete: {types:?}");
    let failed = events.last().unwrap();
    assert_eq!(failed.event, "response.failed");
    let response = &failed.data["response"];
    assert_eq!(response["status"], "failed");
    assert!(response["error"]["code"].as_str().is_some_and(|code| !code.is_empty()), "{response}");
    assert_eq!(response["output"][0]["status"], "incomplete");
    assert_eq!(response["output"][0]["content"][0]["text"], "one two");
    // Kept as it ended.
    let shown = app.get_json(&format!("/v1/responses/{}", response["id"].as_str().unwrap()), key).await;
    assert_eq!(shown["status"], "failed");
    assert_eq!(shown["error"]["code"], response["error"]["code"]);
    assert_eq!(shown["output"][0]["content"][0]["text"], "one two");
}

#[tokio::test]
async fn responses_cut_at_their_limit_are_incomplete() {
    let app = TestApp::spawn().await;
    let tenant = tenant(&app, "acme").await;
    let key = &tenant.admin_key;
    let words = "w1 w2 w3 w4 w5 w6 w7 w8";
    app.mock.push(Reply { text: words.into(), limit: Some(3), ..Reply::default() });
    let response =
        create(&app, key, &json!({ "model": "gpt-4o-mini", "input": "Count", "max_output_tokens": 3 })).await;
    assert_eq!(response["status"], "incomplete");
    assert_eq!(response["incomplete_details"], json!({ "reason": "max_output_tokens" }));
    assert_eq!(response["max_output_tokens"], 3);
    assert_eq!(response["output"][0]["status"], "incomplete");
    assert_eq!(response["output"][0]["content"][0]["text"], "w1 w2 w3");
    assert_eq!(chats(&app).pop().unwrap()["max_completion_tokens"], 3);

    app.mock.push(Reply { text: words.into(), limit: Some(3), ..Reply::default() });
    let body = json!({ "model": "gpt-4o-mini", "input": "Count", "max_output_tokens": 3, "stream": true });
    let events = read_sse(app.post("/v1/responses", key, &body).send().await.unwrap()).await;
    let last = events.last().unwrap();
    assert_eq!(last.event, "response.incomplete");
    assert_eq!(last.data["response"]["incomplete_details"]["reason"], "max_output_tokens");
}

#[tokio::test]
async fn responses_in_the_background_answer_at_once_and_are_followed_to_their_end() {
    let app = TestApp::spawn().await;
    let tenant = tenant(&app, "acme").await;
    let key = &tenant.admin_key;
    app.mock.push(Reply { text: "Done in the background".into(), ..Reply::default() });
    let started = create(&app, key, &json!({ "model": "gpt-4o-mini", "input": "Work", "background": true })).await;
    assert!(matches!(started["status"].as_str(), Some("queued" | "in_progress")), "{started}");
    assert_eq!(started["background"], true);
    let id = started["id"].as_str().unwrap();
    // Followed to its end, then shown finished.
    let events = read_sse(app.get(&format!("/v1/responses/{id}?stream=true"), key).send().await.unwrap()).await;
    assert_eq!(events.last().unwrap().event, "response.completed");
    let shown = app.get_json(&format!("/v1/responses/{id}"), key).await;
    assert_eq!(shown["status"], "completed");
    assert_eq!(shown["output"][0]["content"][0]["text"], "Done in the background");
    // Cancelling one that has ended changes nothing: it is answered as it stands.
    let response = app.post(&format!("/v1/responses/{id}/cancel"), key, &json!({})).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["status"], "completed");

    // One still writing stops, keeping what it wrote.
    let slow = Reply {
        text: "one two three four five six".into(),
        chunk_delay: Duration::from_millis(300),
        ..Reply::default()
    };
    app.mock.push(slow);
    let started = create(&app, key, &json!({ "model": "gpt-4o-mini", "input": "Go slowly", "background": true })).await;
    let id = started["id"].as_str().unwrap();
    let response = app.post(&format!("/v1/responses/{id}/cancel"), key, &json!({})).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let cancelled: Value = response.json().await.unwrap();
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    assert_eq!(app.get_json(&format!("/v1/responses/{id}"), key).await["status"], "cancelled");
}

#[tokio::test]
async fn the_official_sdk_creates_streams_continues_and_retrieves_responses() {
    sdk_python().await;
    let app = TestApp::spawn().await;
    let tenant = tenant(&app, "acme").await;
    app.mock.push(Reply { text: "Hello there".into(), usage: Some((11, 2)), ..Reply::default() });
    app.mock.push(Reply { text: "Streamed answer here".into(), ..Reply::default() });
    app.mock.push(Reply { tool_calls: vec![weather("Lyon")], ..Reply::default() });
    app.mock.push(Reply { text: "It is sunny in Lyon.".into(), ..Reply::default() });
    app.mock.push(Reply { text: "Done in the background".into(), ..Reply::default() });

    let out = run_sdk_script("openai-sdk/responses.py", &app.url("/v1"), &tenant.admin_key).await;

    assert_eq!(out["plain"]["status"], "completed");
    assert_eq!(out["plain"]["output_text"], "Hello there");
    assert_eq!(out["plain"]["usage"]["total_tokens"], 13);
    assert_eq!(out["streamed"]["deltas"], json!(["Streamed", " answer", " here"]));
    assert_eq!(out["streamed"]["numbers"], json!((0..11).collect::<Vec<_>>()));
    assert_eq!(out["streamed"]["last"], "response.completed");
    assert_eq!(out["streamed"]["output_text"], "Streamed answer here");
    assert_eq!(out["tool"]["name"], "get_weather");
    assert_eq!(out["tool"]["arguments"], json!({ "city": "Lyon" }));
    assert_eq!(out["tool"]["answer"], "It is sunny in Lyon.");
    assert_eq!(out["retrieved"]["output_text"], "It is sunny in Lyon.");
    assert_eq!(out["retrieved"]["previous_response_id"], out["tool"]["first_id"]);
    assert_eq!(out["input_items"], json!(["message", "function_call", "function_call_output"]));
    let background = &out["background"];
    assert!(matches!(background["first_status"].as_str(), Some("queued" | "in_progress")), "{background}");
    assert_eq!(background["status"], "completed", "{background}");
    assert_eq!(background["output_text"], "Done in the background");
    // Resumed after event 3: every later event once, in order, the text's deltas among them.
    let numbers: Vec<u64> =
        background["resumed_numbers"].as_array().unwrap().iter().filter_map(Value::as_u64).collect();
    assert_eq!(numbers.first(), Some(&4), "{background}");
    assert!(numbers.windows(2).all(|pair| pair[1] == pair[0] + 1), "{background}");
    let resumed: String = background["resumed_deltas"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert_eq!(resumed, "Done in the background", "{background}");
    assert_eq!(out["bad_request"]["status"], 400);
    assert_eq!(out["bad_request"]["param"], "reasoning");
    assert_eq!(out["not_found"]["status"], 404);

    let sent = chats(&app);
    assert_eq!(sent[0]["messages"][0], json!({ "role": "system", "content": "Be brief." }));
    let result =
        sent[3]["messages"].as_array().unwrap().iter().find(|message| message["role"] == "tool").cloned().unwrap();
    assert_eq!(serde_json::from_str::<Value>(result["content"].as_str().unwrap()).unwrap(), json!({ "sky": "sunny" }));
}
