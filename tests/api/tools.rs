//! MCP tools under policy profiles, end to end: a real rmcp server on 127.0.0.1, the mock upstream scripting
//! the model's tool calls, and the chat API in between.

use mock_upstream::{Reply, ToolCall};
use serde_json::{Value, json};

use crate::helpers::{SseEvent, TestApp, TestTenant, assert_error, read_sse};
use crate::mcp_server::McpTestServer;

/// A tenant answering with the mock's OpenAI model, a connector `crm` to the test server and an active
/// policy profile with these settings.
pub(crate) async fn tenant_with_tools(app: &TestApp, slug: &str, server: &McpTestServer, profile: Value) -> TestTenant {
    tenant_with_tools_on(app, slug, server, profile, "openai", "gpt-4o-mini").await
}

async fn tenant_with_tools_on(
    app: &TestApp,
    slug: &str,
    server: &McpTestServer,
    profile: Value,
    provider: &str,
    model: &str,
) -> TestTenant {
    let connector = json!({ "name": "crm", "transport": "streamable_http", "url": server.url });
    tenant_with_connector(app, slug, (provider, model), connector, profile).await.0
}

/// A tenant answering with the mock's `provider` and `model`, with one MCP connector (`connector`, the
/// body that creates it: it must come up active) and an active policy profile with these settings.
/// Returns the connector as created.
pub(crate) async fn tenant_with_connector(
    app: &TestApp,
    slug: &str,
    answering: (&str, &str),
    connector: Value,
    profile: Value,
) -> (TestTenant, Value) {
    let tenant = tenant_with_profile(app, slug, answering, profile).await;
    let response = app.post("/api/v1/mcp-connectors", &tenant.admin_key, &connector).send().await.unwrap();
    assert_eq!(response.status(), 201);
    let connector: Value = response.json().await.unwrap();
    assert_eq!(connector["status"], "active", "{connector}");
    (tenant, connector)
}

/// A tenant answering with the mock's `provider` and `model`, whose active policy profile (`default`) has
/// these settings.
pub(crate) async fn tenant_with_profile(
    app: &TestApp,
    slug: &str,
    (provider, model): (&str, &str),
    profile: Value,
) -> TestTenant {
    let tenant = app.create_tenant(slug).await;
    app.configure(&tenant, json!({ "default_provider": provider, "default_model": model })).await;
    let mut body = profile;
    body["name"] = json!("default");
    let response = app.post("/api/v1/policy-profiles", &tenant.admin_key, &body).send().await.unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    let profile: Value = response.json().await.unwrap();
    app.configure(&tenant, json!({ "active_policy_profile_id": profile["id"] })).await;
    tenant
}

pub(crate) fn call(name: &str, arguments: Value) -> ToolCall {
    ToolCall { id: String::new(), name: name.to_owned(), arguments }
}

fn events_named<'a>(events: &'a [SseEvent], name: &str) -> Vec<&'a SseEvent> {
    events.iter().filter(|event| event.event == name).collect()
}

#[tokio::test]
async fn discovery_stores_the_tools_with_their_annotations() {
    let app = TestApp::spawn().await;
    let server = McpTestServer::start().await;
    let tenant = tenant_with_tools(&app, "acme", &server, json!({ "tool_allowlist": ["crm.*"] })).await;
    let listed = app.get_json("/api/v1/mcp-connectors", &tenant.admin_key).await;
    let connector = &listed["connectors"][0];
    let tools = connector["tools"].as_array().unwrap();
    let find = tools.iter().find(|tool| tool["name"] == "find_customers").unwrap();
    assert_eq!(find["qualified_name"], "crm.find_customers");
    assert_eq!(find["read_only"], true);
    assert_eq!(find["annotations"]["readOnlyHint"], true);
    assert_eq!(find["input_schema"]["properties"]["query"]["type"], "string");
    let delete = tools.iter().find(|tool| tool["name"] == "delete_customer").unwrap();
    assert_eq!(delete["read_only"], false);
    assert_eq!(delete["annotations"]["destructiveHint"], true);

    // The model is offered them under names every provider accepts.
    let session = app.create_session(&tenant.admin_key).await;
    app.stream_turn(&tenant.admin_key, &session, "Hello").await;
    let request = app.mock.requests().into_iter().rev().find(|r| r.path.ends_with("/chat/completions")).unwrap();
    let offered: Vec<&str> = request.body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tool| tool["function"]["name"].as_str().unwrap())
        .collect();
    assert!(offered.contains(&"crm__find_customers") && offered.contains(&"crm__delete_customer"), "{offered:?}");
}

#[tokio::test]
async fn an_allowed_call_runs_and_its_shaped_result_reaches_the_model() {
    let app = TestApp::spawn().await;
    let server = McpTestServer::start().await;
    let profile = json!({ "tool_allowlist": ["crm.find_*"], "blocked_fields": ["ssn"], "max_rows_per_query": 2 });
    let tenant = tenant_with_tools(&app, "acme", &server, profile).await;
    app.mock.push(Reply {
        tool_calls: vec![call("crm__find_customers", json!({ "query": "Dupont" }))],
        ..Reply::default()
    });
    app.mock.push(Reply { text: "Two customers match.".into(), ..Reply::default() });

    let session = app.create_session(&tenant.admin_key).await;
    let events = app.stream_turn(&tenant.admin_key, &session, "Who is Dupont?").await;
    assert_eq!(events.last().unwrap().event, "run.completed", "{events:#?}");
    let requested = events_named(&events, "tool_call.requested");
    assert_eq!(requested.len(), 1);
    assert_eq!(requested[0].data["name"], "crm.find_customers");
    assert_eq!(requested[0].data["arguments"]["query"], "Dupont");
    let completed = events_named(&events, "tool_call.completed");
    assert_eq!(completed.len(), 1, "{events:#?}");
    assert!(completed[0].data["note"].as_str().unwrap().contains("withheld"), "{}", completed[0].data);
    assert_eq!(server.calls(), 1);

    // What the model saw: two rows, no ssn at any depth, and the note.
    let results = app.tool_results_sent();
    assert_eq!(results.len(), 1);
    let sent = results[0].to_string();
    assert!(!sent.contains("SSN"), "{sent}");
    assert_eq!(results[0]["result"]["customers"].as_array().unwrap().len(), 2, "{sent}");
    assert_eq!(results[0]["result"]["customers"][0]["address"]["city"], "Lyon");
    assert!(results[0]["note"].as_str().unwrap().contains('2'), "{sent}");

    let messages = app.messages(&tenant.admin_key, &session).await;
    assert_eq!(messages[1]["content"], "Two customers match.");
    let audit = app.get_json("/api/v1/audit-events", &tenant.admin_key).await;
    let decided =
        audit["audit_events"].as_array().unwrap().iter().find(|event| event["action"] == "tool_call.decided").unwrap();
    assert_eq!(decided["details"]["decision"], "allow", "{decided}");
    assert_eq!(decided["details"]["name"], "crm.find_customers");
    assert!(decided["details"]["reason"].as_str().is_some_and(|reason| !reason.is_empty()), "{decided}");
    assert_eq!(messages[1]["tool_calls"][0]["name"], "crm.find_customers");
    assert_eq!(messages[1]["tool_calls"][0]["is_error"], false);
}

/// The last chat request the mock received (any provider).
fn last_chat_request(app: &TestApp) -> Value {
    let requests = app.mock.requests();
    let last = requests.iter().rev().find(|request| !request.path.contains("mbed")).unwrap();
    last.body.clone()
}

#[tokio::test]
async fn anthropic_and_gemini_get_tools_and_results_in_their_own_formats() {
    let app = TestApp::spawn().await;
    let server = McpTestServer::start().await;
    let profile = json!({ "tool_allowlist": ["crm.find_*"], "blocked_fields": ["ssn"] });
    for (provider, model) in [("anthropic", "claude-sonnet-4-5"), ("gemini", "gemini-2.5-flash")] {
        let tenant = tenant_with_tools_on(&app, provider, &server, profile.clone(), provider, model).await;
        app.mock.push(Reply {
            text: "Looking.".into(),
            tool_calls: vec![call("crm__find_customers", json!({ "query": "Zed" }))],
            ..Reply::default()
        });
        app.mock.push(Reply { text: " Found them.".into(), ..Reply::default() });
        let session = app.create_session(&tenant.admin_key).await;
        let events = app.stream_turn(&tenant.admin_key, &session, "Find Zed").await;
        assert_eq!(events.last().unwrap().event, "run.completed", "{provider}: {events:#?}");
        assert_eq!(events_named(&events, "tool_call.completed").len(), 1, "{provider}");
        let body = last_chat_request(&app);
        let sent = body.to_string();
        assert!(sent.contains("Zed 1") && !sent.contains("SSN"), "{provider}: {sent}");
        match provider {
            "anthropic" => {
                assert_eq!(body["tools"][0]["name"], "crm__find_customers");
                assert_eq!(body["tools"][0]["input_schema"]["type"], "object");
                let messages = body["messages"].as_array().unwrap();
                let asked = &messages[messages.len() - 2];
                let answered = &messages[messages.len() - 1];
                assert_eq!(asked["role"], "assistant");
                let tool_use = asked["content"].as_array().unwrap().iter().find(|b| b["type"] == "tool_use").unwrap();
                assert_eq!(tool_use["input"]["query"], "Zed");
                assert_eq!(answered["role"], "user");
                assert_eq!(answered["content"][0]["type"], "tool_result");
                assert_eq!(answered["content"][0]["tool_use_id"], tool_use["id"]);
            }
            _ => {
                assert_eq!(body["tools"][0]["functionDeclarations"][0]["name"], "crm__find_customers");
                let contents = body["contents"].as_array().unwrap();
                let asked = &contents[contents.len() - 2];
                let answered = &contents[contents.len() - 1];
                assert_eq!(asked["role"], "model");
                let call = asked["parts"].as_array().unwrap().iter().find(|part| part.get("functionCall").is_some());
                assert_eq!(call.unwrap()["functionCall"]["args"]["query"], "Zed");
                assert_eq!(answered["parts"][0]["functionResponse"]["name"], "crm__find_customers");
                let response = &answered["parts"][0]["functionResponse"]["response"];
                assert_eq!(response["result"]["customers"][0]["name"], "Zed 1", "{response}");
                assert!(response["note"].as_str().is_some(), "{response}");
            }
        }
        let messages = app.messages(&tenant.admin_key, &session).await;
        assert_eq!(messages[1]["content"], "Looking. Found them.", "{provider}");
    }
}

#[tokio::test]
async fn sessions_with_a_server_are_reused_across_turns_and_closed_when_the_connector_goes() {
    let app = TestApp::spawn().await;
    // Sessions are the 2025-11-25 revision's; a 2026-07-28 server has none to end.
    let server = McpTestServer::start_legacy().await;
    let tenant = tenant_with_tools(&app, "acme", &server, json!({ "tool_allowlist": ["crm.*"] })).await;
    let handshakes_after_discovery = server.handshakes();
    let session = app.create_session(&tenant.admin_key).await;
    for query in ["first", "second"] {
        app.mock.push(Reply {
            tool_calls: vec![call("crm__find_customers", json!({ "query": query }))],
            ..Reply::default()
        });
        app.mock.push(Reply { text: "ok".into(), ..Reply::default() });
        let events = app.stream_turn(&tenant.admin_key, &session, query).await;
        assert_eq!(events_named(&events, "tool_call.completed").len(), 1, "{events:#?}");
    }
    assert_eq!(server.calls(), 2);
    assert_eq!(server.handshakes(), handshakes_after_discovery, "both turns used the pooled session");

    let listed = app.get_json("/api/v1/mcp-connectors", &tenant.admin_key).await;
    let id = listed["connectors"][0]["id"].as_str().unwrap().to_owned();
    let closed_before = server.session_closes();
    let response = app.delete(&format!("/api/v1/mcp-connectors/{id}"), &tenant.admin_key).send().await.unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(server.session_closes(), closed_before + 1, "deleting the connector ended its session");
}

#[tokio::test]
async fn calls_outside_the_allow_list_or_read_only_mode_are_denied_and_never_reach_the_server() {
    let app = TestApp::spawn().await;
    let server = McpTestServer::start().await;
    let profile = json!({ "tool_allowlist": ["crm.find_customers", "crm.delete_customer"], "read_only_mode": true });
    let tenant = tenant_with_tools(&app, "acme", &server, profile).await;
    // The destructive tool is not even offered in read-only mode; a model naming it anyway is refused.
    app.mock.push(Reply {
        tool_calls: vec![call("crm__delete_customer", json!({ "id": 3 })), call("crm__hang", json!({}))],
        ..Reply::default()
    });
    app.mock.push(Reply { text: "I cannot do that.".into(), ..Reply::default() });
    let session = app.create_session(&tenant.admin_key).await;
    let events = app.stream_turn(&tenant.admin_key, &session, "Delete customer 3").await;
    assert_eq!(events.last().unwrap().event, "run.completed", "{events:#?}");
    let denied = events_named(&events, "tool_call.denied");
    assert_eq!(denied.len(), 2, "{events:#?}");
    assert_eq!(server.calls(), 0);
    assert!(denied[0].data["reason"].as_str().unwrap().contains("read-only"), "{:?}", denied[0].data);
    assert!(denied[1].data["reason"].as_str().unwrap().contains("allow-list"), "{:?}", denied[1].data);
    let results = app.tool_results_sent();
    assert!(results.iter().all(|result| result["error"].as_str().unwrap().contains("denied")), "{results:?}");

    let request = app.mock.requests().into_iter().find(|r| r.path.ends_with("/chat/completions")).unwrap();
    let offered: Vec<&str> = request.body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tool| tool["function"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(offered, ["crm__find_customers"]);
}

#[tokio::test]
async fn parallel_calls_all_run_and_a_hung_tool_times_out_without_failing_the_turn() {
    let app = TestApp::spawn().await;
    let server = McpTestServer::start().await;
    let tenant = tenant_with_tools(&app, "acme", &server, json!({ "tool_allowlist": ["crm.*"] })).await;
    app.mock.push(Reply {
        tool_calls: vec![
            call("crm__find_customers", json!({ "query": "A" })),
            call("crm__find_customers", json!({ "query": "B" })),
            call("crm__hang", json!({})),
        ],
        ..Reply::default()
    });
    app.mock.push(Reply { text: "Done.".into(), ..Reply::default() });
    let session = app.create_session(&tenant.admin_key).await;
    let events = app.stream_turn(&tenant.admin_key, &session, "Look up A and B").await;
    assert_eq!(events.last().unwrap().event, "run.completed", "{events:#?}");
    assert_eq!(events_named(&events, "tool_call.completed").len(), 2, "{events:#?}");
    let failed = events_named(&events, "tool_call.failed");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].data["code"], "tool_timeout");
    assert_eq!(failed[0].data["name"], "crm.hang");
    let results = app.tool_results_sent();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0]["customers"][0]["name"], "A 1");
    assert_eq!(results[1]["customers"][0]["name"], "B 1");

    // The timed-out session was dropped; the next call connects afresh and works.
    let handshakes = server.handshakes();
    app.mock.push(Reply { tool_calls: vec![call("crm__find_customers", json!({ "query": "C" }))], ..Reply::default() });
    app.mock.push(Reply { text: "Done.".into(), ..Reply::default() });
    let events = app.stream_turn(&tenant.admin_key, &session, "And C?").await;
    assert_eq!(events_named(&events, "tool_call.completed").len(), 1, "{events:#?}");
    assert_eq!(server.handshakes(), handshakes + 1);
}

#[tokio::test]
async fn an_approval_pauses_the_run_and_approving_after_a_restart_resumes_it() {
    let first = TestApp::spawn().await;
    let app = &first;
    let server = McpTestServer::start().await;
    let profile = json!({ "tool_allowlist": ["crm.*"], "approval_required": ["crm.delete_*"] });
    let tenant = tenant_with_tools(app, "acme", &server, profile).await;
    app.mock.push(Reply { tool_calls: vec![call("crm__delete_customer", json!({ "id": 7 }))], ..Reply::default() });
    app.mock.push(Reply { text: "Customer 7 is deleted.".into(), ..Reply::default() });
    let session = app.create_session(&tenant.admin_key).await;
    let events = app.stream_turn(&tenant.admin_key, &session, "Delete customer 7").await;
    let last = events.last().unwrap();
    assert_eq!(last.event, "run.awaiting_approval", "{events:#?}");
    let run_id = last.data["run_id"].as_str().unwrap().to_owned();
    let waiting = events_named(&events, "tool_call.awaiting_approval");
    assert_eq!(waiting.len(), 1);
    let call_id = waiting[0].data["tool_call_id"].as_str().unwrap().to_owned();
    assert_eq!(server.calls(), 0);
    let run = app.get_json(&format!("/api/v1/runs/{run_id}"), &tenant.admin_key).await;
    assert_eq!(run["status"], "awaiting_approval");

    // Another tenant can neither see nor decide the call.
    let other = app.create_tenant("other").await;
    let response =
        app.post(&format!("/api/v1/tool-calls/{call_id}/approve"), &other.admin_key, &json!({})).send().await.unwrap();
    assert_error(response, 404, "not_found").await;

    // The decision reaches a service that was restarted meanwhile: all it has is the database.
    let restarted = first.restarted().await;
    let app = &restarted;
    let response =
        app.post(&format!("/api/v1/tool-calls/{call_id}/approve"), &tenant.admin_key, &json!({})).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let decided: Value = response.json().await.unwrap();
    assert!(decided["decided_by"].as_str().unwrap().starts_with("api_key:"), "{decided}");
    let after = last.id.clone();
    let response = app
        .get(&format!("/api/v1/runs/{run_id}/events"), &tenant.admin_key)
        .header("last-event-id", after)
        .send()
        .await
        .unwrap();
    let rest = read_sse(response).await;
    assert_eq!(rest.last().unwrap().event, "run.completed", "{rest:#?}");
    assert_eq!(events_named(&rest, "tool_call.completed").len(), 1);
    assert_eq!(server.calls(), 1);
    let messages = app.messages(&tenant.admin_key, &session).await;
    assert_eq!(messages[1]["content"], "Customer 7 is deleted.");

    // Deciding again is a conflict.
    let response =
        app.post(&format!("/api/v1/tool-calls/{call_id}/deny"), &tenant.admin_key, &json!({})).send().await.unwrap();
    assert_error(response, 409, "tool_call_decided").await;
}

#[tokio::test]
async fn a_denied_approval_is_told_to_the_model_which_answers() {
    let app = TestApp::spawn().await;
    let server = McpTestServer::start().await;
    let profile = json!({ "tool_allowlist": ["crm.*"], "approval_required": ["crm.delete_*"] });
    let tenant = tenant_with_tools(&app, "acme", &server, profile).await;
    app.mock.push(Reply { tool_calls: vec![call("crm__delete_customer", json!({ "id": 7 }))], ..Reply::default() });
    app.mock.push(Reply { text: "I did not delete it.".into(), ..Reply::default() });
    let session = app.create_session(&tenant.admin_key).await;
    let events = app.stream_turn(&tenant.admin_key, &session, "Delete customer 7").await;
    let waiting = events_named(&events, "tool_call.awaiting_approval");
    let call_id = waiting[0].data["tool_call_id"].as_str().unwrap().to_owned();
    let run_id = waiting[0].data["run_id"].as_str().unwrap().to_owned();
    let response =
        app.post(&format!("/api/v1/tool-calls/{call_id}/deny"), &tenant.admin_key, &json!({})).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let response = app.get(&format!("/api/v1/runs/{run_id}/events"), &tenant.admin_key).send().await.unwrap();
    let all = read_sse(response).await;
    assert_eq!(all.last().unwrap().event, "run.completed", "{all:#?}");
    assert_eq!(events_named(&all, "tool_call.denied").len(), 1);
    assert_eq!(server.calls(), 0);
    let results = app.tool_results_sent();
    assert!(results[0]["error"].as_str().unwrap().contains("denied"), "{results:?}");
    let messages = app.messages(&tenant.admin_key, &session).await;
    assert_eq!(messages[1]["content"], "I did not delete it.");
}

#[tokio::test]
async fn profiles_are_checked_versioned_and_the_active_one_cannot_be_deleted() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let response = app
        .post(
            "/api/v1/policy-profiles",
            &tenant.admin_key,
            &json!({ "name": "p", "custom_rules": [{ "kind": "anything" }] }),
        )
        .send()
        .await
        .unwrap();
    assert_error(response, 422, "invalid_request").await;
    let response = app
        .post("/api/v1/policy-profiles", &tenant.admin_key, &json!({ "name": "p", "tool_allowlist": ["crm.*"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let profile: Value = response.json().await.unwrap();
    assert_eq!(profile["version"], 1);
    let id = profile["id"].as_str().unwrap();
    let response = app
        .client
        .put(app.url(&format!("/api/v1/policy-profiles/{id}")))
        .bearer_auth(&tenant.admin_key)
        .json(&json!({ "name": "p", "tool_allowlist": ["crm.find_*"], "read_only_mode": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let replaced: Value = response.json().await.unwrap();
    assert_eq!(replaced["version"], 2);
    assert_eq!(replaced["document"]["read_only_mode"], true);

    app.configure(&tenant, json!({ "active_policy_profile_id": id })).await;
    let response = app.delete(&format!("/api/v1/policy-profiles/{id}"), &tenant.admin_key).send().await.unwrap();
    assert_error(response, 409, "policy_profile_active").await;

    // Another tenant cannot read it, activate it or delete it.
    let other = app.create_tenant("other").await;
    let response = app.get(&format!("/api/v1/policy-profiles/{id}"), &other.admin_key).send().await.unwrap();
    assert_error(response, 404, "not_found").await;
    let response = app
        .client
        .patch(app.url("/api/v1/tenant/config"))
        .bearer_auth(&other.admin_key)
        .json(&json!({ "active_policy_profile_id": id }))
        .send()
        .await
        .unwrap();
    assert_error(response, 422, "invalid_request").await;
    let response = app.delete(&format!("/api/v1/policy-profiles/{id}"), &other.admin_key).send().await.unwrap();
    assert_error(response, 404, "not_found").await;
}

#[tokio::test]
async fn connectors_refuse_internal_urls_and_unlisted_commands_and_stay_private() {
    let app = TestApp::spawn().await;
    let server = McpTestServer::start().await;
    let tenant = app.create_tenant("acme").await;
    for body in [
        json!({ "name": "meta", "transport": "streamable_http", "url": "http://169.254.169.254/mcp" }),
        json!({ "name": "lan", "transport": "streamable_http", "url": "http://10.0.0.7/mcp" }),
        json!({ "name": "shell", "transport": "stdio", "command": "sh", "args": ["-c", "id"] }),
        // An allowed server, but a tenant may not add to its command line.
        json!({ "name": "ev", "transport": "stdio", "command": "everything", "args": ["--inspect"] }),
        json!({ "name": "creds", "transport": "streamable_http", "url": "http://user:pw@127.0.0.1:1/mcp" }),
        json!({ "name": "Bad Name", "transport": "streamable_http", "url": server.url }),
    ] {
        let response = app.post("/api/v1/mcp-connectors", &tenant.admin_key, &body).send().await.unwrap();
        assert_error(response, 422, "invalid_request").await;
    }
    let token = "canary-connector-token-5f1d";
    let body = json!({ "name": "crm", "transport": "streamable_http", "url": server.url,
                       "auth": { "kind": "bearer", "token": token } });
    let response = app.post("/api/v1/mcp-connectors", &tenant.admin_key, &body).send().await.unwrap();
    assert_eq!(response.status(), 201);
    let text = response.text().await.unwrap();
    assert!(!text.contains(token), "{text}");
    let connector: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(connector["auth"]["kind"], "bearer");
    assert_eq!(connector["auth"]["token_configured"], true);
    let id = connector["id"].as_str().unwrap();

    // Its token does not follow it to another server unless given again.
    let moved = json!({ "url": "http://127.0.0.1:9/mcp" });
    let response = app.client.patch(app.url(&format!("/api/v1/mcp-connectors/{id}"))).bearer_auth(&tenant.admin_key);
    assert_error(response.json(&moved).send().await.unwrap(), 422, "invalid_request").await;

    let other = app.create_tenant("other").await;
    let response = app.get(&format!("/api/v1/mcp-connectors/{id}"), &other.admin_key).send().await.unwrap();
    assert_error(response, 404, "not_found").await;
    let response = app.delete(&format!("/api/v1/mcp-connectors/{id}"), &other.admin_key).send().await.unwrap();
    assert_error(response, 404, "not_found").await;
    let listed = app.get_json("/api/v1/mcp-connectors", &other.admin_key).await;
    assert_eq!(listed["connectors"], json!([]));

    let audit = app.get_json("/api/v1/audit-events", &tenant.admin_key).await.to_string();
    assert!(audit.contains("mcp_connector.created") && !audit.contains(token), "{audit}");
    let response = app.delete(&format!("/api/v1/mcp-connectors/{id}"), &tenant.admin_key).send().await.unwrap();
    assert_eq!(response.status(), 204);
}

#[tokio::test]
async fn the_public_everything_server_works_over_stdio_and_streamable_http() {
    crate::everything::installed().await;
    let app = TestApp::spawn().await;
    let http = crate::everything::EverythingHttp::start().await;
    let tenant = app.create_tenant("acme").await;
    app.configure(&tenant, json!({ "default_provider": "openai", "default_model": "gpt-4o-mini" })).await;
    for body in [
        json!({ "name": "evstdio", "transport": "stdio", "command": "everything" }),
        json!({ "name": "evhttp", "transport": "streamable_http", "url": http.url }),
    ] {
        let response = app.post("/api/v1/mcp-connectors", &tenant.admin_key, &body).send().await.unwrap();
        assert_eq!(response.status(), 201);
        let connector: Value = response.json().await.unwrap();
        assert_eq!(connector["status"], "active", "{connector}");
        let echo = connector["tools"].as_array().unwrap().iter().find(|tool| tool["name"] == "echo").unwrap().clone();
        assert_eq!(echo["annotations"]["readOnlyHint"], true, "{echo}");
        assert_eq!(echo["read_only"], true);
        assert!(connector["tools"].as_array().unwrap().len() > 5, "{connector}");
    }
    let profile = json!({ "name": "echo only", "tool_allowlist": ["ev*.echo"], "read_only_mode": true });
    let response = app.post("/api/v1/policy-profiles", &tenant.admin_key, &profile).send().await.unwrap();
    let profile: Value = response.json().await.unwrap();
    app.configure(&tenant, json!({ "active_policy_profile_id": profile["id"] })).await;

    app.mock.push(Reply {
        tool_calls: vec![
            call("evstdio__echo", json!({ "message": "over stdio" })),
            call("evhttp__echo", json!({ "message": "over http" })),
        ],
        ..Reply::default()
    });
    app.mock.push(Reply { text: "Both echoed.".into(), ..Reply::default() });
    let session = app.create_session(&tenant.admin_key).await;
    let events = app.stream_turn(&tenant.admin_key, &session, "Echo twice").await;
    assert_eq!(events.last().unwrap().event, "run.completed", "{events:#?}");
    assert_eq!(events_named(&events, "tool_call.completed").len(), 2, "{events:#?}");
    let results = app.tool_results_sent();
    assert_eq!(results, [json!("Echo: over stdio"), json!("Echo: over http")]);
}

#[tokio::test]
async fn a_waiting_turn_answers_202_and_a_cancelled_run_takes_no_more_decisions() {
    let app = TestApp::spawn().await;
    let server = McpTestServer::start().await;
    let profile = json!({ "tool_allowlist": ["crm.*"], "approval_required": ["crm.delete_*"] });
    let tenant = tenant_with_tools(&app, "acme", &server, profile).await;
    app.mock.push(Reply { tool_calls: vec![call("crm__delete_customer", json!({ "id": 1 }))], ..Reply::default() });
    let session = app.create_session(&tenant.admin_key).await;
    let response = app
        .post(&format!("/api/v1/sessions/{session}/messages"), &tenant.admin_key, &json!({ "content": "Delete 1" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["run"]["status"], "awaiting_approval");
    assert_eq!(body["message"], Value::Null);
    let run_id = body["run"]["id"].as_str().unwrap();
    let events =
        read_sse(app.get(&format!("/api/v1/runs/{run_id}/events"), &tenant.admin_key).send().await.unwrap()).await;
    let waiting = events_named(&events, "tool_call.awaiting_approval");
    let call_id = waiting[0].data["tool_call_id"].as_str().unwrap();

    let response =
        app.post(&format!("/api/v1/runs/{run_id}/cancel"), &tenant.admin_key, &json!({})).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let response =
        app.post(&format!("/api/v1/tool-calls/{call_id}/approve"), &tenant.admin_key, &json!({})).send().await.unwrap();
    // Cancelling closed the waiting call: it is denied, and nothing can approve it any more.
    assert_error(response, 409, "tool_call_decided").await;
    assert_eq!(server.calls(), 0);
}

#[tokio::test]
async fn a_server_that_never_answers_the_handshake_leaves_the_connector_in_error() {
    let app = TestApp::spawn().await;
    // Accepts connections and never says a word.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let tenant = app.create_tenant("acme").await;
    let body = json!({ "name": "silent", "transport": "streamable_http", "url": url });
    let response = app.post("/api/v1/mcp-connectors", &tenant.admin_key, &body).send().await.unwrap();
    assert_eq!(response.status(), 201);
    let connector: Value = response.json().await.unwrap();
    assert_eq!(connector["status"], "error", "{connector}");
    assert!(connector["last_error"].as_str().unwrap().contains("handshake"), "{connector}");
    assert_eq!(connector["tools"], json!([]));
}
