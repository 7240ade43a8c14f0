//! MCP resources and prompts, end to end against real servers: a records server written with the
//! official Python SDK (tests/mcp-python/records_server.py) and the public everything server. Resources
//! and prompts are discovered with the tools; a resource attached to a conversation is read through the
//! policy (allow-list, blocked fields, row limits) and reaches every later turn's prompt; prompts are
//! listed and filled for widget users and keys.

use mock_upstream::Reply;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestTenant, assert_error};
use crate::python_mcp::PythonMcpServer;
use crate::tools::tenant_with_connector;

/// A tenant answering with the mock's OpenAI model, a connector `records` to `url`, and an active policy
/// profile with these settings.
async fn tenant_with_records(app: &TestApp, slug: &str, url: &str, profile: Value) -> (TestTenant, Value) {
    let connector = json!({ "name": "records", "transport": "streamable_http", "url": url });
    tenant_with_connector(app, slug, ("openai", "gpt-4o-mini"), connector, profile).await
}

async fn attach(app: &TestApp, key: &str, session: &str, connector: &Value, uri: &str) -> reqwest::Response {
    let body = json!({ "connector_id": connector["id"], "uri": uri });
    app.post(&format!("/api/v1/sessions/{session}/resources"), key, &body).send().await.unwrap()
}

/// The system prompt of the last chat request the mock received.
fn last_system_prompt(app: &TestApp) -> String {
    let requests = app.mock.requests();
    let last = requests.iter().rev().find(|request| request.path.ends_with("/chat/completions")).unwrap();
    last.body["messages"][0]["content"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn resources_and_prompts_are_discovered_with_the_tools() {
    let app = TestApp::spawn().await;
    let server = PythonMcpServer::start("records_server.py").await;
    let (_, connector) = tenant_with_records(&app, "acme", &server.url, json!({})).await;
    let resources = connector["resources"].as_array().unwrap();
    let find = |uri: &str| resources.iter().find(|resource| resource["uri"] == uri).cloned();
    let record = find("crm://customers/42").expect("the customer record is listed");
    assert_eq!((record["template"].clone(), record["mime_type"].clone()), (json!(false), json!("application/json")));
    assert_eq!(find("notes://handbook").unwrap()["name"], "handbook");
    let template = find("crm://customers/{customer_id}").expect("the template is listed");
    assert_eq!(template["template"], true);
    let prompts = connector["prompts"].as_array().unwrap();
    assert_eq!(prompts.len(), 1, "{prompts:?}");
    assert_eq!(prompts[0]["qualified_name"], "records.summarize_customer");
    let arguments: Vec<(Value, Value)> = prompts[0]["arguments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|argument| (argument["name"].clone(), argument["required"].clone()))
        .collect();
    assert_eq!(arguments, [(json!("customer_id"), json!(true)), (json!("tone"), json!(false))]);
}

#[tokio::test]
async fn an_attached_resource_goes_through_the_policy_and_reaches_every_later_turn() {
    let app = TestApp::spawn().await;
    let server = PythonMcpServer::start("records_server.py").await;
    let profile = json!({
        "resource_allowlist": ["records:crm://*", "records:files://*"],
        "blocked_fields": ["ssn"],
        "max_rows_per_query": 2,
    });
    let (tenant, connector) = tenant_with_records(&app, "acme", &server.url, profile).await;
    let key = tenant.admin_key.as_str();
    let session = app.create_session(key).await;

    let response = attach(&app, key, &session, &connector, "crm://customers/42").await;
    assert_eq!(response.status(), 201);
    let attached: Value = response.json().await.unwrap();
    let content = attached["content"].as_str().unwrap();
    assert!(content.contains("Customer 42") && !content.contains("SECRET-SSN"), "{content}");
    assert!(content.contains(r#""number":2"#) && !content.contains(r#""number":3"#), "{content}");
    assert_eq!((attached["removed_fields"].clone(), attached["truncated_arrays"].clone()), (json!(1), json!(1)));
    assert_eq!(attached["policy"]["source"], "tenant");
    assert_eq!(attached["name"], "customer-42");
    // A URI the template makes is read too.
    let response = attach(&app, key, &session, &connector, "crm://customers/7").await;
    assert_eq!(response.status(), 201);
    let seventh: Value = response.json().await.unwrap();
    assert!(seventh["content"].as_str().unwrap().contains("Customer 7"), "{seventh}");

    // Outside the allow-list, binary only, or not on the server: refused, nothing attached.
    assert_error(attach(&app, key, &session, &connector, "notes://handbook").await, 403, "resource_not_allowed").await;
    assert_error(attach(&app, key, &session, &connector, "files://logo.png").await, 422, "unsupported_resource").await;
    let missing = attach(&app, key, &session, &connector, "crm://nothing/here").await;
    assert_eq!(missing.status(), 502);

    app.mock.push(Reply { text: "Customer 42 has the gold plan.".into(), ..Reply::default() });
    let events = app.stream_turn(key, &session, "Which plan is the customer on?").await;
    assert_eq!(events.last().unwrap().event, "run.completed", "{events:#?}");
    let system = last_system_prompt(&app);
    assert!(system.contains("uri=\"crm://customers/42\"") && system.contains("\"plan\":\"gold\""), "{system}");
    assert!(system.contains("Customer 7") && !system.contains("SECRET-SSN"), "{system}");

    // Detached, it is gone from the next turn; the other stays.
    let listed: Value =
        app.get(&format!("/api/v1/sessions/{session}/resources"), key).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed["resources"].as_array().unwrap().len(), 2, "{listed}");
    let id = attached["id"].as_str().unwrap();
    let response = app.delete(&format!("/api/v1/sessions/{session}/resources/{id}"), key).send().await.unwrap();
    assert_eq!(response.status(), 204);
    app.mock.push(Reply { text: "Done.".into(), ..Reply::default() });
    let events = app.stream_turn(key, &session, "And now?").await;
    assert_eq!(events.last().unwrap().event, "run.completed", "{events:#?}");
    let system = last_system_prompt(&app);
    assert!(!system.contains("crm://customers/42") && system.contains("Customer 7"), "{system}");

    // Another tenant sees neither the conversation's resources nor can attach to it.
    let (other, other_connector) = tenant_with_records(&app, "globex", &server.url, json!({})).await;
    let response = app.get(&format!("/api/v1/sessions/{session}/resources"), &other.admin_key).send().await.unwrap();
    assert_error(response, 404, "not_found").await;
    let response = attach(&app, &other.admin_key, &session, &other_connector, "crm://customers/42").await;
    assert_error(response, 404, "not_found").await;
}

#[tokio::test]
async fn prompts_are_listed_and_filled_as_the_profile_allows_and_a_profile_without_resources_reads_none() {
    let app = TestApp::spawn().await;
    let server = PythonMcpServer::start("records_server.py").await;
    let profile = json!({ "tool_allowlist": ["*"], "prompt_allowlist": ["records.summarize_*"] });
    let (tenant, connector) = tenant_with_records(&app, "acme", &server.url, profile).await;
    let minted: Value = app
        .post("/api/v1/widget-tokens", &tenant.admin_key, &json!({ "external_user_id": "ada", "ttl_seconds": 600 }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let widget = minted["token"].as_str().unwrap();

    let listed: Value = app.get("/api/v1/mcp-prompts", widget).send().await.unwrap().json().await.unwrap();
    let names: Vec<&str> =
        listed["prompts"].as_array().unwrap().iter().map(|p| p["qualified_name"].as_str().unwrap()).collect();
    assert_eq!(names, ["records.summarize_customer"]);
    let fill = |arguments: Value| {
        app.post("/api/v1/mcp-prompts/records.summarize_customer/fill", widget, &json!({ "arguments": arguments }))
            .send()
    };
    let filled: Value = fill(json!({ "customer_id": "42", "tone": "friendly" })).await.unwrap().json().await.unwrap();
    assert_eq!(filled["messages"], json!([{ "role": "user", "text": "Summarize customer 42 in a friendly tone." }]));
    assert_error(fill(json!({ "tone": "friendly" })).await.unwrap(), 422, "invalid_request").await;
    assert_error(fill(json!({ "customer_id": 42 })).await.unwrap(), 422, "invalid_request").await;
    assert_error(fill(json!({ "customer_id": "42", "colour": "red" })).await.unwrap(), 422, "invalid_request").await;
    let response = app.post("/api/v1/mcp-prompts/records.nothing/fill", widget, &json!({})).send().await.unwrap();
    assert_error(response, 404, "not_found").await;

    // A profile without `prompt_allowlist` offers no prompt: none listed, none filled.
    let profiles = app.get_json("/api/v1/policy-profiles", &tenant.admin_key).await;
    let id = profiles["policy_profiles"][0]["id"].as_str().unwrap().to_owned();
    let replaced = json!({ "name": "default", "tool_allowlist": ["*"] });
    let url = app.url(&format!("/api/v1/policy-profiles/{id}"));
    let response = app.client.put(url).bearer_auth(&tenant.admin_key).json(&replaced).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let listed: Value = app.get("/api/v1/mcp-prompts", widget).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed["prompts"], json!([]));
    assert_error(fill(json!({ "customer_id": "42" })).await.unwrap(), 404, "not_found").await;

    // The widget user's own conversation: their profile has no resource_allowlist, so nothing is read.
    let session = app.create_session(widget).await;
    let response = attach(&app, widget, &session, &connector, "crm://customers/42").await;
    assert_error(response, 403, "resource_not_allowed").await;
    // And another user's conversation is not theirs to attach to.
    let other_session = app.create_session(&tenant.admin_key).await;
    let response = attach(&app, widget, &other_session, &connector, "crm://customers/42").await;
    assert_error(response, 404, "not_found").await;
}
