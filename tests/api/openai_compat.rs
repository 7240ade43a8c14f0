//! The OpenAI-compatible door, driven by the official `openai` Python SDK (pinned in
//! tests/openai-sdk/requirements.txt; its virtual environment is made by `.ci/run`, or here when missing).
//! The same environment holds Anthropic's SDK (tests/anthropic-sdk), for `anthropic_messages.rs`.

use std::path::PathBuf;

use mock_upstream::{Reply, ToolCall};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use crate::helpers::TestApp;

fn sdk_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/openai-sdk")
}

/// The virtual environment's Python, with both SDKs installed; made once per test binary (one pip at a
/// time in one environment).
pub async fn sdk_python() -> PathBuf {
    static VENV: OnceCell<PathBuf> = OnceCell::const_new();
    VENV.get_or_init(|| async {
        let requirements =
            [sdk_dir().join("requirements.txt"), sdk_dir().with_file_name("anthropic-sdk").join("requirements.txt")];
        crate::helpers::python_venv("openai-sdk-venv", &requirements).await
    })
    .await
    .clone()
}

/// Runs one of the SDK scripts (`tests/<path>`) against `base_url` with `key`, and returns the JSON it
/// prints of what the SDK parsed.
pub async fn run_sdk_script(path: &str, base_url: &str, key: &str) -> Value {
    let python = sdk_python().await;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join(path);
    let output = tokio::process::Command::new(python).arg(script).arg(base_url).arg(key).output().await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the SDK script {path} failed:\n{stderr}");
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| panic!("{path} printed no JSON: {error}"))
}

#[tokio::test]
async fn the_official_sdk_parses_every_answer_and_error() {
    sdk_python().await;
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    app.configure(&tenant, json!({ "default_provider": "openai", "default_model": "gpt-4o-mini" })).await;
    let weather =
        |city: &str| ToolCall { id: String::new(), name: "get_weather".into(), arguments: json!({ "city": city }) };
    app.mock.push(Reply { text: "Hello there".into(), usage: Some((11, 2)), ..Reply::default() });
    app.mock.push(Reply { text: "Streamed answer here".into(), usage: Some((7, 3)), ..Reply::default() });
    app.mock.push(Reply { tool_calls: vec![weather("Lyon")], ..Reply::default() });
    app.mock.push(Reply { text: "It is sunny in Lyon.".into(), ..Reply::default() });
    app.mock.push(Reply { tool_calls: vec![weather("Nantes")], ..Reply::default() });

    let out = run_sdk_script("openai-sdk/check.py", &app.url("/v1"), &tenant.admin_key).await;

    assert_eq!(out["plain"]["object"], "chat.completion");
    assert_eq!(out["plain"]["content"], "Hello there");
    assert_eq!(out["plain"]["finish_reason"], "stop");
    assert_eq!(out["plain"]["usage"]["prompt_tokens"], 11);
    assert_eq!(out["plain"]["usage"]["total_tokens"], 13);

    assert_eq!(out["streamed"]["pieces"], json!(["Streamed", " answer", " here"]));
    assert_eq!(out["streamed"]["finish_reason"], "stop");
    assert_eq!(out["streamed"]["usage"]["completion_tokens"], 3);

    assert_eq!(out["tool"]["finish_reason"], "tool_calls");
    assert_eq!(out["tool"]["name"], "get_weather");
    assert_eq!(out["tool"]["arguments"], json!({ "city": "Lyon" }));
    assert_eq!(out["tool"]["answer"], "It is sunny in Lyon.");
    assert_eq!(out["streamed_tool"]["finish_reason"], "tool_calls");
    assert_eq!(out["streamed_tool"]["calls"][0]["name"], "get_weather");
    assert_eq!(
        serde_json::from_str::<Value>(out["streamed_tool"]["calls"][0]["arguments"].as_str().unwrap()).unwrap(),
        json!({ "city": "Nantes" })
    );

    assert!(
        out["models"].as_array().unwrap().iter().any(|model| model == "switchboard-assistant"),
        "{}",
        out["models"]
    );
    assert!(out["models"].as_array().unwrap().iter().any(|model| model == "gpt-4o-mini"));
    for error in out["wrong_key"].as_array().unwrap() {
        assert_eq!(error["status"], 401, "{error}");
        assert_eq!(error["code"], "invalid_api_key");
    }
    assert_eq!(out["bad_request"]["status"], 400);

    // What the model was sent: the client's system prompt, tools and the tool result, as given.
    let requests = app.mock.requests();
    let chats: Vec<&Value> =
        requests.iter().filter(|r| r.path.ends_with("/chat/completions")).map(|r| &r.body).collect();
    assert_eq!(chats[0]["messages"][0], json!({ "role": "system", "content": "Be brief." }));
    assert_eq!(chats[2]["tools"][0]["function"]["name"], "get_weather");
    let sent_back = chats[3]["messages"].as_array().unwrap();
    let result = sent_back.iter().find(|message| message["role"] == "tool").unwrap();
    assert_eq!(serde_json::from_str::<Value>(result["content"].as_str().unwrap()).unwrap(), json!({ "sky": "sunny" }));

    // Every call was recorded as a turn of an integration conversation.
    let sessions = app.get_json("/api/v1/sessions?session_type=integration", &tenant.admin_key).await;
    assert_eq!(sessions["sessions"].as_array().unwrap().len(), 5, "{sessions}");
}

#[tokio::test]
async fn the_assistant_model_answers_from_the_documents_and_errors_keep_openais_shape() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let document =
        json!({ "source_path": "faq/refunds.md", "content": "# Refunds\n\nRefunds are paid within 14 days." });
    assert_eq!(app.post("/api/v1/documents", &tenant.admin_key, &document).send().await.unwrap().status(), 201);
    // The tenant's default (offline) model answers; the assistant model adds retrieval to it.
    let body = json!({ "model": "switchboard-assistant", "messages": [
        { "role": "user", "content": "Hi" }, { "role": "assistant", "content": "Hello!" },
        { "role": "user", "content": "How fast are refunds paid?" } ] });
    let response = app.post("/v1/chat/completions", &tenant.admin_key, &body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let completion: Value = response.json().await.unwrap();
    let content = completion["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(content.contains("14 days") && content.contains("refunds.md"), "{content}");
    let sessions = app.get_json("/api/v1/sessions?session_type=integration", &tenant.admin_key).await;
    let session = sessions["sessions"][0]["id"].as_str().unwrap();
    let messages = app.messages(&tenant.admin_key, session).await;
    let roles: Vec<&str> = messages.iter().map(|message| message["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["user", "assistant", "user", "assistant"]);

    for (body, status) in [
        (json!({ "model": "gpt-4o-mini", "messages": [{ "role": "wizard", "content": "hi" }] }), 400),
        (json!({ "model": "gpt-4o-mini", "messages": [{ "role": "user", "content": "hi" }], "n": 3 }), 400),
        (json!({ "messages": [] }), 422),
    ] {
        let response = app.post("/v1/chat/completions", &tenant.admin_key, &body).send().await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{body}");
        let error: Value = response.json().await.unwrap();
        assert!(error["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{error}");
        assert_eq!(error["error"]["type"], "invalid_request_error", "{error}");
        assert!(error["error"].get("param").is_some(), "{error}");
    }
    let response = app.get("/v1/models", "sbk_nonsense").send().await.unwrap();
    assert_eq!(response.status(), 401);
}
