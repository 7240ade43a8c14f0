//! Wire-format tests: a real HTTP client against a started mock checks each provider's exact event sequence,
//! errors and faults, since the service's clients are tested against these bytes.

use std::time::{Duration, Instant};

use futures::StreamExt;
use mock_upstream::{Api, Fault, MockUpstream, Reply, ToolCall};
use serde_json::{Value, json};

const APIS: [Api; 3] = [Api::OpenAi, Api::Anthropic, Api::Gemini];

fn weather_call(id: &str) -> ToolCall {
    ToolCall {
        id: id.to_owned(),
        name: "get_weather".to_owned(),
        arguments: json!({"city": "Paris", "unit": "celsius"}),
    }
}

fn text_and_tool(id: &str) -> Reply {
    Reply { text: "Hello big world".to_owned(), tool_calls: vec![weather_call(id)], ..Reply::default() }
}

fn faulty(fault: Fault) -> Reply {
    Reply { text: "Hello big world".to_owned(), fault: Some(fault), ..Reply::default() }
}

/// A valid streaming request for `api` (prompt: 6 words), with `key` as that provider's credential.
fn request(mock: &MockUpstream, api: Api, key: Option<&str>) -> reqwest::RequestBuilder {
    let client = reqwest::Client::new();
    let prompt = "What is the weather in Paris";
    let builder = match api {
        Api::OpenAi => client.post(format!("{}/chat/completions", mock.openai_base())).json(&json!({
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": prompt}],
            "stream": true,
        })),
        Api::Anthropic => client
            .post(format!("{}/v1/messages", mock.anthropic_base()))
            .header("anthropic-version", "2023-06-01")
            .json(&json!({
                "model": "claude-sonnet-4-5",
                "max_tokens": 1024,
                "messages": [{"role": "user", "content": prompt}],
                "stream": true,
            })),
        Api::Gemini => client
            .post(format!("{}/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse", mock.gemini_base()))
            .json(&json!({"contents": [{"role": "user", "parts": [{"text": prompt}]}]})),
        Api::Voyage | Api::Cohere | Api::Jina => unreachable!("no chat API; embeddings.rs tests Voyage"),
    };
    match (api, key) {
        (_, None) => builder,
        (Api::OpenAi | Api::Voyage | Api::Cohere | Api::Jina, Some(key)) => builder.bearer_auth(key),
        (Api::Anthropic, Some(key)) => builder.header("x-api-key", key),
        (Api::Gemini, Some(key)) => builder.header("x-goog-api-key", key),
    }
}

/// One SSE event: its `event:` name if any and its `data:` payload.
#[derive(Debug)]
struct Event {
    name: Option<String>,
    data: String,
}

fn events(body: &str) -> Vec<Event> {
    body.replace("\r\n", "\n")
        .split("\n\n")
        .filter(|block| !block.is_empty())
        .map(|block| {
            let mut event = Event { name: None, data: String::new() };
            for line in block.lines() {
                if let Some(name) = line.strip_prefix("event: ") {
                    event.name = Some(name.to_owned());
                } else if let Some(data) = line.strip_prefix("data: ") {
                    event.data.push_str(data);
                } else {
                    panic!("unexpected SSE line {line:?}");
                }
            }
            event
        })
        .collect()
}

fn parse(data: &str) -> Value {
    serde_json::from_str(data).unwrap_or_else(|e| panic!("invalid JSON {data:?}: {e}"))
}

/// The text pieces a provider streamed, in order.
fn text_pieces(api: Api, body: &str) -> Vec<String> {
    let pointer = match api {
        Api::OpenAi => "/choices/0/delta/content",
        Api::Anthropic => "/delta/text",
        Api::Gemini => "/candidates/0/content/parts/0/text",
        Api::Voyage | Api::Cohere | Api::Jina => unreachable!("no chat API; embeddings.rs tests Voyage"),
    };
    events(body)
        .iter()
        .filter_map(|event| serde_json::from_str::<Value>(&event.data).ok())
        .filter_map(|value| value.pointer(pointer).and_then(Value::as_str).map(str::to_owned))
        .filter(|piece| !piece.is_empty())
        .collect()
}

/// Reads a body until it ends or fails: the bytes received and whether it failed.
async fn read_body(response: reqwest::Response) -> (String, bool) {
    let mut stream = response.bytes_stream();
    let mut body = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(bytes) => body.extend_from_slice(&bytes),
            Err(_) => return (String::from_utf8(body).expect("utf-8"), true),
        }
    }
    (String::from_utf8(body).expect("utf-8"), false)
}

fn has_terminator(api: Api, body: &str) -> bool {
    match api {
        Api::OpenAi => body.contains("data: [DONE]"),
        Api::Anthropic => body.contains("event: message_stop"),
        Api::Gemini => body.contains("\"finishReason\":\"STOP\""),
        Api::Voyage | Api::Cohere | Api::Jina => unreachable!("no chat API; embeddings.rs tests Voyage"),
    }
}

#[tokio::test]
async fn openai_stream_with_text_tool_call_and_usage() {
    let mock = MockUpstream::start().await;
    mock.push(text_and_tool("call_w1"));
    let response = request(&mock, Api::OpenAi, Some("sk-test"))
        .json(&json!({
            "model": "gpt-4o-mini",
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather in Paris?"}],
            "stream": true,
            "stream_options": {"include_usage": true},
            "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let body = response.text().await.unwrap();
    assert!(body.ends_with("\n\ndata: [DONE]\n\n"), "{body}");
    assert!(!body.contains('\r'));

    let events = events(&body);
    assert!(events.iter().all(|event| event.name.is_none()));
    assert_eq!(events.last().unwrap().data, "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1].iter().map(|event| parse(&event.data)).collect();
    let id = chunks[0]["id"].as_str().unwrap();
    assert!(id.starts_with("chatcmpl-"));
    for chunk in &chunks {
        assert_eq!(chunk["id"], id);
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["model"], "gpt-4o-mini");
        assert!(chunk["created"].is_u64());
        assert!(chunk["system_fingerprint"].is_null());
    }
    let delta = |i: usize| chunks[i]["choices"][0]["delta"].clone();
    assert_eq!(delta(0), json!({"role": "assistant", "content": ""}));
    assert_eq!(
        [delta(1), delta(2), delta(3)],
        [json!({"content": "Hello"}), json!({"content": " big"}), json!({"content": " world"})]
    );
    assert_eq!(
        delta(4),
        json!({"tool_calls": [{"index": 0, "id": "call_w1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]})
    );
    let finish = chunks.len() - 2;
    let fragments: Vec<String> = (5..finish)
        .map(|i| {
            let call = &delta(i)["tool_calls"][0];
            assert_eq!(call.as_object().unwrap().len(), 2, "{call}");
            assert_eq!(call["index"], 0);
            assert_eq!(call["function"].as_object().unwrap().len(), 1);
            call["function"]["arguments"].as_str().unwrap().to_owned()
        })
        .collect();
    assert!((2..=3).contains(&fragments.len()));
    assert_eq!(parse(&fragments.concat()), json!({"city": "Paris", "unit": "celsius"}));
    assert_eq!(
        chunks[finish]["choices"][0],
        json!({"index": 0, "delta": {}, "logprobs": null, "finish_reason": "tool_calls"})
    );
    for chunk in &chunks[..=finish] {
        assert!(chunk["choices"][0]["logprobs"].is_null());
        assert!(chunk.get("usage").is_some_and(Value::is_null), "{chunk}");
    }
    let usage_chunk = &chunks[finish + 1];
    assert_eq!(usage_chunk["choices"], json!([]));
    // 2 + 3 prompt words, 3 text pieces.
    assert_eq!(usage_chunk["usage"], json!({"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}));

    let recorded = mock.requests();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].api, Api::OpenAi);
    assert_eq!(recorded[0].path, "/v1/chat/completions");
    assert_eq!(recorded[0].api_key.as_deref(), Some("sk-test"));
    assert_eq!(recorded[0].headers["authorization"], "Bearer sk-test");
    assert_eq!(recorded[0].body["tools"][0]["function"]["name"], "get_weather");
}

#[tokio::test]
async fn openai_stream_without_usage_uses_defaults_and_has_no_usage_field() {
    let mock = MockUpstream::start().await;
    let response = request(&mock, Api::OpenAi, Some("sk-test")).send().await.unwrap();
    let body = response.text().await.unwrap();
    assert_eq!(
        text_pieces(Api::OpenAi, &body).concat(),
        "token0 token1 token2 token3 token4 token5 token6 token7 token8 token9 token10 token11"
    );
    let events = events(&body);
    let chunks: Vec<Value> = events[..events.len() - 1].iter().map(|event| parse(&event.data)).collect();
    assert!(chunks.iter().all(|chunk| chunk.get("usage").is_none()));
    assert_eq!(chunks.len(), 1 + 12 + 1);
    assert_eq!(chunks.last().unwrap()["choices"][0]["finish_reason"], "stop");
}

#[tokio::test]
async fn openai_non_streaming_completion() {
    let mock = MockUpstream::start().await;
    mock.push(text_and_tool("call_w1"));
    mock.push(Reply { tool_calls: vec![weather_call("call_w2")], usage: Some((100, 7)), ..Reply::default() });
    let body = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi there"}]});
    let first: Value =
        request(&mock, Api::OpenAi, Some("sk-test")).json(&body).send().await.unwrap().json().await.unwrap();
    assert_eq!(first["object"], "chat.completion");
    assert_eq!(first["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(
        first["choices"][0]["message"],
        json!({
            "role": "assistant",
            "content": "Hello big world",
            "refusal": null,
            "tool_calls": [{"id": "call_w1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\",\"unit\":\"celsius\"}"}}],
        })
    );
    assert_eq!(first["usage"], json!({"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}));
    let second: Value =
        request(&mock, Api::OpenAi, Some("sk-test")).json(&body).send().await.unwrap().json().await.unwrap();
    assert!(second["choices"][0]["message"]["content"].is_null());
    assert_eq!(second["usage"], json!({"prompt_tokens": 100, "completion_tokens": 7, "total_tokens": 107}));
    let third: Value =
        request(&mock, Api::OpenAi, Some("sk-test")).json(&body).send().await.unwrap().json().await.unwrap();
    assert_eq!(third["choices"][0]["finish_reason"], "stop");
    assert!(third["choices"][0]["message"].get("tool_calls").is_none());
}

#[tokio::test]
async fn anthropic_stream_with_text_and_tool_use() {
    let mock = MockUpstream::start().await;
    mock.push(text_and_tool(""));
    let response = request(&mock, Api::Anthropic, Some("sk-ant-test")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let body = response.text().await.unwrap();
    assert!(body.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"), "{body}");

    let events = events(&body);
    let names: Vec<&str> = events.iter().map(|event| event.name.as_deref().unwrap()).collect();
    let fragments = names.len() - 11;
    let mut expected = vec!["message_start", "content_block_start", "ping"];
    expected.extend(["content_block_delta"; 3]);
    expected.extend(["content_block_stop", "content_block_start"]);
    expected.extend(vec!["content_block_delta"; fragments]);
    expected.extend(["content_block_stop", "message_delta", "message_stop"]);
    assert_eq!(names, expected);
    assert!((2..=3).contains(&fragments));
    let data: Vec<Value> = events.iter().map(|event| parse(&event.data)).collect();
    for (name, value) in names.iter().zip(&data) {
        assert_eq!(value["type"], *name);
    }

    let message = &data[0]["message"];
    assert!(message["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(message["type"], "message");
    assert_eq!(message["role"], "assistant");
    assert_eq!(message["content"], json!([]));
    assert_eq!(message["model"], "claude-sonnet-4-5");
    assert!(message["stop_reason"].is_null() && message["stop_sequence"].is_null());
    assert_eq!(message["usage"], json!({"input_tokens": 6, "output_tokens": 1}));
    assert_eq!(
        data[1],
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
    );
    assert_eq!(data[2], json!({"type": "ping"}));
    assert_eq!(
        data[3],
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}})
    );
    assert_eq!(text_pieces(Api::Anthropic, &body).concat(), "Hello big world");
    assert_eq!(data[6], json!({"type": "content_block_stop", "index": 0}));
    let tool_block = &data[7]["content_block"];
    assert_eq!(data[7]["index"], 1);
    assert_eq!(tool_block["type"], "tool_use");
    assert!(tool_block["id"].as_str().unwrap().starts_with("toolu_"));
    assert_eq!(tool_block["name"], "get_weather");
    assert_eq!(tool_block["input"], json!({}));
    let partial: String = data[8..8 + fragments]
        .iter()
        .map(|delta| {
            assert_eq!(delta["index"], 1);
            assert_eq!(delta["delta"]["type"], "input_json_delta");
            delta["delta"]["partial_json"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(parse(&partial), json!({"city": "Paris", "unit": "celsius"}));
    assert_eq!(data[8 + fragments], json!({"type": "content_block_stop", "index": 1}));
    assert_eq!(
        data[9 + fragments],
        json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null}, "usage": {"output_tokens": 3}})
    );

    let recorded = &mock.requests()[0];
    assert_eq!(recorded.api, Api::Anthropic);
    assert_eq!(recorded.path, "/v1/messages");
    assert_eq!(recorded.api_key.as_deref(), Some("sk-ant-test"));
    assert_eq!(recorded.headers["anthropic-version"], "2023-06-01");
}

#[tokio::test]
async fn anthropic_requires_version_header_and_answers_non_streaming() {
    let mock = MockUpstream::start().await;
    let response = reqwest::Client::new()
        .post(format!("{}/v1/messages", mock.anthropic_base()))
        .header("x-api-key", "sk-ant-test")
        .json(&json!({"model": "claude-sonnet-4-5", "max_tokens": 10, "messages": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(response.json::<Value>().await.unwrap()["error"]["type"], "invalid_request_error");

    mock.push(text_and_tool("toolu_1"));
    let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]});
    let message: Value =
        request(&mock, Api::Anthropic, Some("k")).json(&body).send().await.unwrap().json().await.unwrap();
    assert_eq!(message["type"], "message");
    assert_eq!(message["stop_reason"], "tool_use");
    assert_eq!(
        message["content"],
        json!([
            {"type": "text", "text": "Hello big world"},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris", "unit": "celsius"}},
        ])
    );
    assert_eq!(message["usage"], json!({"input_tokens": 1, "output_tokens": 3}));
}

#[tokio::test]
async fn gemini_stream_with_text_and_function_call() {
    let mock = MockUpstream::start().await;
    mock.push(text_and_tool(""));
    let url = format!("{}/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse&key=g-key", mock.gemini_base());
    let response = reqwest::Client::new()
        .post(url)
        .json(&json!({
            "systemInstruction": {"parts": [{"text": "Be brief."}]},
            "contents": [{"role": "user", "parts": [{"text": "Weather in Paris?"}]}],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let body = response.text().await.unwrap();
    let frames: Vec<&str> = body.strip_suffix("\r\n\r\n").unwrap().split("\r\n\r\n").collect();
    assert_eq!(frames.len(), 5, "{body}");
    let chunks: Vec<Value> = frames.iter().map(|frame| parse(frame.strip_prefix("data: ").unwrap())).collect();
    let response_id = chunks[0]["responseId"].as_str().unwrap();
    for (i, chunk) in chunks.iter().enumerate() {
        assert_eq!(chunk["responseId"], response_id);
        assert_eq!(chunk["modelVersion"], "gemini-2.0-flash");
        assert_eq!(chunk["candidates"][0]["index"], 0);
        assert_eq!(chunk["candidates"][0]["content"]["role"], "model");
        assert_eq!(chunk["candidates"][0].get("finishReason").is_some(), i == 4);
    }
    assert_eq!(
        chunks[0],
        json!({
            "candidates": [{"content": {"parts": [{"text": "Hello"}], "role": "model"}, "index": 0}],
            "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 1, "totalTokenCount": 6},
            "modelVersion": "gemini-2.0-flash",
            "responseId": response_id,
        })
    );
    assert_eq!(text_pieces(Api::Gemini, &body), ["Hello", " big", " world"]);
    assert_eq!(
        chunks[3]["candidates"][0]["content"]["parts"],
        json!([{"functionCall": {"name": "get_weather", "args": {"city": "Paris", "unit": "celsius"}}}])
    );
    assert_eq!(chunks[4]["candidates"][0]["finishReason"], "STOP");
    assert_eq!(
        chunks[4]["usageMetadata"],
        json!({"promptTokenCount": 5, "candidatesTokenCount": 3, "totalTokenCount": 8})
    );

    let recorded = &mock.requests()[0];
    assert_eq!(recorded.api, Api::Gemini);
    assert_eq!(recorded.path, "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse&key=g-key");
    assert_eq!(recorded.api_key.as_deref(), Some("g-key"));
}

#[tokio::test]
async fn gemini_header_key_and_non_streaming_generate_content() {
    let mock = MockUpstream::start().await;
    mock.push(text_and_tool(""));
    let response = reqwest::Client::new()
        .post(format!("{}/v1beta/models/gemini-2.0-flash:generateContent", mock.gemini_base()))
        .header("x-goog-api-key", "g-header")
        .json(&json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let value: Value = response.json().await.unwrap();
    assert_eq!(
        value["candidates"][0]["content"]["parts"],
        json!([{"text": "Hello big world"}, {"functionCall": {"name": "get_weather", "args": {"city": "Paris", "unit": "celsius"}}}])
    );
    assert_eq!(value["candidates"][0]["finishReason"], "STOP");
    assert_eq!(mock.requests()[0].api_key.as_deref(), Some("g-header"));
}

#[tokio::test]
async fn status_fault_gives_status_retry_after_and_provider_error() {
    let mock = MockUpstream::start().await;
    for api in APIS {
        mock.push(faulty(Fault::Status { status: 429, retry_after: Some(2) }));
        let response = request(&mock, api, Some("k")).send().await.unwrap();
        assert_eq!(response.status(), 429, "{api:?}");
        assert_eq!(response.headers()["retry-after"], "2");
        assert_eq!(response.headers()["content-type"], "application/json");
        let error: Value = response.json().await.unwrap();
        match api {
            Api::OpenAi => {
                assert_eq!(error["error"]["type"], "rate_limit_exceeded");
                assert_eq!(error["error"]["code"], "rate_limit_exceeded");
                assert!(error["error"]["param"].is_null() && error["error"]["message"].is_string());
            }
            Api::Anthropic => {
                assert_eq!(error["type"], "error");
                assert_eq!(error["error"]["type"], "rate_limit_error");
                assert!(error["error"]["message"].is_string());
            }
            Api::Gemini => {
                assert_eq!(error["error"]["code"], 429);
                assert_eq!(error["error"]["status"], "RESOURCE_EXHAUSTED");
                assert!(error["error"]["message"].is_string());
            }
            Api::Voyage | Api::Cohere | Api::Jina => unreachable!("no chat API; embeddings.rs tests Voyage"),
        }
    }
    mock.push(faulty(Fault::Status { status: 503, retry_after: None }));
    let response = request(&mock, Api::Gemini, Some("k")).send().await.unwrap();
    assert_eq!(response.status(), 503);
    assert!(response.headers().get("retry-after").is_none());
    assert_eq!(response.json::<Value>().await.unwrap()["error"]["status"], "UNAVAILABLE");
}

#[tokio::test]
async fn bad_or_missing_key_gives_401_without_taking_the_queued_reply() {
    let mock = MockUpstream::start().await;
    mock.push(Reply { text: "kept for later".to_owned(), ..Reply::default() });
    for api in APIS {
        for key in [None, Some("invalid-key")] {
            let response = request(&mock, api, key).send().await.unwrap();
            assert_eq!(response.status(), 401, "{api:?} {key:?}");
            let error: Value = response.json().await.unwrap();
            match api {
                Api::OpenAi => {
                    assert_eq!(error["error"]["type"], "invalid_request_error");
                    assert_eq!(error["error"]["code"], "invalid_api_key");
                }
                Api::Anthropic => assert_eq!(error["error"]["type"], "authentication_error"),
                Api::Gemini => assert_eq!(error["error"]["status"], "UNAUTHENTICATED"),
                Api::Voyage | Api::Cohere | Api::Jina => unreachable!("no chat API; embeddings.rs tests Voyage"),
            }
        }
    }
    let recorded = mock.requests();
    assert_eq!(recorded.len(), 6);
    assert_eq!(recorded[1].api_key.as_deref(), Some("invalid-key"));
    assert_eq!(recorded[0].api_key, None);

    let body = request(&mock, Api::Anthropic, Some("k")).send().await.unwrap().text().await.unwrap();
    assert_eq!(text_pieces(Api::Anthropic, &body).concat(), "kept for later");
}

#[tokio::test]
async fn cut_after_two_chunks_ends_without_terminator() {
    let mock = MockUpstream::start().await;
    for api in APIS {
        mock.push(faulty(Fault::CutAfter(2)));
        let response = request(&mock, api, Some("k")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let (body, failed) = read_body(response).await;
        assert!(failed, "{api:?}: the cut must surface as a body error");
        assert_eq!(text_pieces(api, &body), ["Hello", " big"], "{api:?}");
        assert!(!has_terminator(api, &body), "{api:?}: {body}");
    }
}

#[tokio::test]
async fn malformed_after_one_chunk_sends_invalid_json_then_ends() {
    let mock = MockUpstream::start().await;
    for api in APIS {
        mock.push(faulty(Fault::MalformedAfter(1)));
        let response = request(&mock, api, Some("k")).send().await.unwrap();
        let (body, failed) = read_body(response).await;
        assert!(!failed, "{api:?}");
        assert_eq!(text_pieces(api, &body), ["Hello"], "{api:?}");
        let last = events(&body).pop().unwrap();
        assert!(serde_json::from_str::<Value>(&last.data).is_err(), "{api:?}: {}", last.data);
        assert!(!has_terminator(api, &body), "{api:?}");
    }
}

#[tokio::test]
async fn stall_after_one_chunk_keeps_the_connection_silent() {
    let mock = MockUpstream::start().await;
    for api in APIS {
        mock.push(faulty(Fault::StallAfter(1)));
        let response = request(&mock, api, Some("k")).send().await.unwrap();
        let mut stream = response.bytes_stream();
        let mut body = Vec::new();
        loop {
            match tokio::time::timeout(Duration::from_millis(300), stream.next()).await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk.unwrap()),
                Ok(None) => panic!("{api:?}: a stalled stream must not end"),
                Err(_elapsed) => break,
            }
        }
        assert_eq!(text_pieces(api, &String::from_utf8(body).unwrap()), ["Hello"], "{api:?}");
    }
}

#[tokio::test]
async fn replies_are_taken_in_order_with_delay_and_scripted_usage() {
    let mock = MockUpstream::start().await;
    mock.push(Reply { text: "first".to_owned(), usage: Some((40, 2)), ..Reply::default() });
    mock.push(Reply { text: "a b c".to_owned(), chunk_delay: Duration::from_millis(40), ..Reply::default() });

    let body = request(&mock, Api::Anthropic, Some("k")).send().await.unwrap().text().await.unwrap();
    assert_eq!(text_pieces(Api::Anthropic, &body), ["first"]);
    let data: Vec<Value> = events(&body).iter().map(|event| parse(&event.data)).collect();
    assert_eq!(data[0]["message"]["usage"]["input_tokens"], 40);
    assert_eq!(data[data.len() - 2]["usage"]["output_tokens"], 2);

    let started = Instant::now();
    let body = request(&mock, Api::Gemini, Some("k")).send().await.unwrap().text().await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(120));
    assert_eq!(text_pieces(Api::Gemini, &body), ["a", " b", " c"]);

    let body = request(&mock, Api::OpenAi, Some("k")).send().await.unwrap().text().await.unwrap();
    assert_eq!(text_pieces(Api::OpenAi, &body).len(), 12);
    assert_eq!(mock.requests().iter().map(|r| r.api).collect::<Vec<_>>(), [Api::Anthropic, Api::Gemini, Api::OpenAi]);
}
