//! The two MCP revisions, 2026-07-28 and 2025-11-25, on both sides. As a client, Switchboard speaks the
//! newer one to a server that answers `server/discover` (the MCP Python SDK v2, from PyPI, pinned in
//! tests/mcp-python2) and falls back to `initialize` with one that does not (the public everything
//! server, from npm, pinned in tests/mcp-everything), remembering which each connector's server speaks.
//! As a server, `/mcp` answers the Python SDK v2's client in either revision.

use std::process::Stdio;

use mock_upstream::Reply;
use serde_json::{Value, json};

use crate::helpers::{SseEvent, TestApp, TestTenant, assert_error};
use crate::mcp_server::McpTestServer;
use crate::python_mcp::{PythonMcpServer, Sdk};
use crate::tools::{call, tenant_with_profile};

/// A tenant answering with the mock's OpenAI model, whose active policy profile allows every tool.
async fn tenant(app: &TestApp) -> TestTenant {
    tenant_with_profile(app, "acme", ("openai", "gpt-4o-mini"), json!({ "tool_allowlist": ["*"] })).await
}

/// Creates a connector; it is discovered at once.
async fn connector(app: &TestApp, tenant: &TestTenant, body: Value) -> Value {
    let response = app.post("/api/v1/mcp-connectors", &tenant.admin_key, &body).send().await.unwrap();
    assert_eq!(response.status(), 201);
    let connector: Value = response.json().await.unwrap();
    assert_eq!(connector["status"], "active", "{connector}");
    connector
}

async fn refreshed(app: &TestApp, tenant: &TestTenant, connector: &Value) -> Value {
    let path = format!("/api/v1/mcp-connectors/{}/refresh", connector["id"].as_str().unwrap());
    let response = app.post(&path, &tenant.admin_key, &json!({})).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Runs a turn in which the model calls `tool`; returns the turn's events and what the tool gave the model.
async fn turn_calling(app: &TestApp, tenant: &TestTenant, tool: &str, arguments: Value) -> (Vec<SseEvent>, Value) {
    app.mock.push(Reply { tool_calls: vec![call(tool, arguments)], ..Reply::default() });
    app.mock.push(Reply { text: "Done.".into(), ..Reply::default() });
    let session = app.create_session(&tenant.admin_key).await;
    let events = app.stream_turn(&tenant.admin_key, &session, "Go").await;
    assert_eq!(events.last().unwrap().event, "run.completed", "{events:#?}");
    let requests = app.mock.requests();
    let last = requests.iter().rev().find(|request| request.path.ends_with("/chat/completions")).unwrap();
    let messages = last.body["messages"].as_array().unwrap();
    let result = messages.iter().find(|message| message["role"] == "tool").expect("a tool result")["content"].clone();
    let result = serde_json::from_str(result.as_str().unwrap()).unwrap_or(result);
    (events, result)
}

fn completed(events: &[SseEvent]) -> usize {
    events.iter().filter(|event| event.event == "tool_call.completed").count()
}

#[tokio::test]
async fn a_server_of_the_2026_07_28_revision_is_spoken_to_in_it() {
    let app = TestApp::spawn().await;
    let server = PythonMcpServer::start_with(Sdk::V2, "revision_server.py").await;
    let tenant = tenant(&app).await;
    let body = json!({ "name": "v2", "transport": "streamable_http", "url": server.url });
    let created = connector(&app, &tenant, body).await;
    assert_eq!(created["protocol_version"], "2026-07-28", "{created}");
    assert!(created["tools"].as_array().unwrap().iter().any(|tool| tool["name"] == "protocol_version"), "{created}");

    // The tool says which revision the server saw its call made in.
    let (events, result) = turn_calling(&app, &tenant, "v2__protocol_version", json!({})).await;
    assert_eq!(completed(&events), 1, "{events:#?}");
    assert_eq!(result, json!({ "result": "2026-07-28" }));

    // Discovered again in a new session, it is still that revision.
    let again = refreshed(&app, &tenant, &created).await;
    assert_eq!(again["status"], "active", "{again}");
    assert_eq!(again["protocol_version"], "2026-07-28", "{again}");
}

#[tokio::test]
async fn the_everything_server_of_2025_11_25_is_spoken_to_in_its_revision_over_http_and_stdio() {
    crate::everything::installed().await;
    let app = TestApp::spawn().await;
    let http = crate::everything::EverythingHttp::start().await;
    let tenant = tenant(&app).await;
    for body in [
        json!({ "name": "evhttp", "transport": "streamable_http", "url": http.url }),
        json!({ "name": "evstdio", "transport": "stdio", "command": "everything" }),
    ] {
        let created = connector(&app, &tenant, body).await;
        assert_eq!(created["protocol_version"], "2025-11-25", "{created}");
        let again = refreshed(&app, &tenant, &created).await;
        assert_eq!((&again["status"], &again["protocol_version"]), (&json!("active"), &json!("2025-11-25")));
        let tool = format!("{}__echo", created["name"].as_str().unwrap());
        let (events, result) = turn_calling(&app, &tenant, &tool, json!({ "message": "hello" })).await;
        assert_eq!(completed(&events), 1, "{events:#?}");
        assert_eq!(result, json!("Echo: hello"));
    }
}

#[tokio::test]
async fn a_servers_revision_is_remembered_and_probed_again_when_it_no_longer_holds() {
    let app = TestApp::spawn().await;
    let tenant = tenant(&app).await;

    // A server of the previous revision refuses the first `server/discover`; later sessions skip it.
    let legacy = McpTestServer::start_legacy().await;
    let body = json!({ "name": "old", "transport": "streamable_http", "url": legacy.url });
    let created = connector(&app, &tenant, body).await;
    assert_eq!(created["protocol_version"], "2025-11-25", "{created}");
    assert_eq!(legacy.discovers(), 1);
    let again = refreshed(&app, &tenant, &created).await;
    assert_eq!((&again["status"], &again["protocol_version"]), (&json!("active"), &json!("2025-11-25")));
    assert_eq!(legacy.discovers(), 1, "the remembered revision spared the probe");

    // A server that spoke 2026-07-28 and now refuses it is probed afresh, and spoken to in 2025-11-25.
    let server = McpTestServer::start().await;
    let body = json!({ "name": "crm", "transport": "streamable_http", "url": server.url });
    let created = connector(&app, &tenant, body).await;
    assert_eq!(created["protocol_version"], "2026-07-28", "{created}");
    server.downgrade();
    let again = refreshed(&app, &tenant, &created).await;
    assert_eq!((&again["status"], &again["protocol_version"]), (&json!("active"), &json!("2025-11-25")), "{again}");
    let (events, result) = turn_calling(&app, &tenant, "crm__find_customers", json!({ "query": "Ada" })).await;
    assert_eq!(completed(&events), 1, "{events:#?}");
    assert_eq!(result["customers"][0]["name"], "Ada 1", "{result}");
}

#[tokio::test]
async fn an_api_key_header_may_not_be_one_the_2026_07_28_revision_sets() {
    let app = TestApp::spawn().await;
    let server = McpTestServer::start().await;
    let tenant = app.create_tenant("acme").await;
    for header in ["MCP-Protocol-Version", "mcp-method", "Mcp-Name", "mcp-param-region"] {
        let body = json!({ "name": "crm", "transport": "streamable_http", "url": server.url,
                           "auth": { "kind": "api_key", "header": header, "token": "secret" } });
        let response = app.post("/api/v1/mcp-connectors", &tenant.admin_key, &body).send().await.unwrap();
        assert_error(response, 422, "invalid_request").await;
    }
}

/// Runs tests/mcp-python2/search_client.py against `/mcp` in `mode`; returns the line it printed.
async fn python_client(app: &TestApp, key: &str, mode: &str, query: &str) -> Value {
    let output = tokio::process::Command::new(Sdk::V2.python().await)
        .arg(Sdk::V2.dir().join("search_client.py"))
        .args([&app.url("/mcp"), mode, query])
        .env("SWITCHBOARD_KEY", key)
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "search_client.py {mode}: {stderr}");
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| panic!("{error}: {stderr}"))
}

#[tokio::test]
async fn the_mcp_endpoint_answers_the_python_sdk_v2_client_in_both_revisions() {
    let app = TestApp::spawn().await;
    let acme = app.create_tenant("acme").await;
    let document = json!({ "source_path": "runbooks/espresso.md", "title": "Espresso",
                           "content": "# Espresso machine\n\nDescale the espresso machine every Friday with citric acid." });
    let response = app.post("/api/v1/documents", &acme.admin_key, &document).send().await.unwrap();
    assert_eq!(response.status(), 201);

    for (mode, revision) in [("auto", "2026-07-28"), ("legacy", "2025-11-25")] {
        let answer = python_client(&app, &acme.admin_key, mode, "how often to descale the espresso machine").await;
        assert_eq!(answer["protocol_version"], revision, "{mode}: {answer}");
        assert_eq!(answer["tools"], json!(["search_docs"]), "{mode}: {answer}");
        assert_eq!(answer["is_error"], false, "{mode}: {answer}");
        let results = &answer["result"]["results"];
        assert_eq!(results[0]["source_path"], "runbooks/espresso.md", "{mode}: {answer}");
        assert!(results[0]["content"].as_str().unwrap().contains("citric acid"), "{mode}: {answer}");
    }
}
