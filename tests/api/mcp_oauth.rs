//! OAuth 2.1 connectors end to end, against a real OAuth-protected MCP server and its authorization server,
//! both written with the MCP Python SDK v2's auth support (tests/mcp-python2/oauth_server.py, pinned):
//! discovery (RFC 9728, RFC 8414), dynamic registration (RFC 7591), the authorization code flow with PKCE
//! followed as a browser would (without one), the resource indicator (RFC 8707), refreshing before expiry,
//! and a refused refresh putting the connector in `needs_authorization`.

use mock_upstream::Reply;
use serde_json::{Value, json};

use crate::helpers::{SseEvent, TestApp, TestTenant};
use crate::python_mcp::{PythonMcpServer, Sdk};
use crate::tools::{call, tenant_with_profile};

/// A tenant answering with the mock's OpenAI model, whose active policy profile allows every tool.
async fn tenant(app: &TestApp, slug: &str) -> TestTenant {
    tenant_with_profile(app, slug, ("openai", "gpt-4o-mini"), json!({ "tool_allowlist": ["*"] })).await
}

/// The test server's own endpoints, beside `/mcp`.
fn origin(server: &PythonMcpServer) -> String {
    server.url.trim_end_matches("/mcp").to_owned()
}

/// What the authorization server saw.
async fn as_log(server: &PythonMcpServer) -> Vec<Value> {
    let log: Value = reqwest::get(format!("{}/test/log", origin(server))).await.unwrap().json().await.unwrap();
    log.as_array().unwrap().clone()
}

fn grants(log: &[Value], grant_type: &str) -> Vec<Value> {
    log.iter().filter(|entry| entry["event"] == "grant" && entry["grant_type"] == grant_type).cloned().collect()
}

/// Creates an OAuth connector for `server`; it waits for an admin.
pub async fn oauth_connector(app: &TestApp, tenant: &TestTenant, server: &PythonMcpServer) -> Value {
    let body =
        json!({ "name": "auth", "transport": "streamable_http", "url": server.url, "auth": { "kind": "oauth" } });
    let response = app.post("/api/v1/mcp-connectors", &tenant.admin_key, &body).send().await.unwrap();
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

/// Starts the authorization as an admin: the URL to open.
async fn authorize(app: &TestApp, key: &str, id: &str) -> reqwest::Response {
    app.post(&format!("/api/v1/mcp-connectors/{id}/authorize"), key, &json!({})).send().await.unwrap()
}

/// Opens `url` as the admin's browser would, the authorization server approving at once: the URL of the
/// callback it sends the browser back to.
async fn approve(url: &str) -> String {
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let response = browser.get(url).send().await.unwrap();
    assert_eq!(response.status(), 302, "{}", response.text().await.unwrap());
    response.headers()["location"].to_str().unwrap().to_owned()
}

/// The browser comes back to Switchboard's callback.
async fn come_back(callback: &str) -> (u16, String) {
    let response = reqwest::get(callback).await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// An OAuth connector authorized through the whole flow; returns it as the API shows it.
pub async fn authorized_connector(app: &TestApp, tenant: &TestTenant, server: &PythonMcpServer) -> Value {
    let created = oauth_connector(app, tenant, server).await;
    let id = created["id"].as_str().unwrap();
    let started: Value = authorize(app, &tenant.admin_key, id).await.json().await.unwrap();
    let callback = approve(started["authorization_url"].as_str().unwrap()).await;
    let (status, page) = come_back(&callback).await;
    assert_eq!(status, 200, "{page}");
    connector(app, tenant, id).await
}

async fn connector(app: &TestApp, tenant: &TestTenant, id: &str) -> Value {
    app.get(&format!("/api/v1/mcp-connectors/{id}"), &tenant.admin_key).send().await.unwrap().json().await.unwrap()
}

/// A turn in which the model calls `auth.echo`; its events.
async fn turn_calling_echo(app: &TestApp, tenant: &TestTenant, text: &str) -> Vec<SseEvent> {
    app.mock.push(Reply { tool_calls: vec![call("auth__echo", json!({ "text": text }))], ..Reply::default() });
    app.mock.push(Reply { text: "Done.".into(), ..Reply::default() });
    let session = app.create_session(&tenant.admin_key).await;
    let events = app.stream_turn(&tenant.admin_key, &session, "Echo").await;
    assert_eq!(events.last().unwrap().event, "run.completed", "{events:#?}");
    events
}

/// Waits until the connector's access token has expired (by its own `token_expires_at`).
async fn until_the_token_expires(app: &TestApp, tenant: &TestTenant, id: &str) {
    let view = connector(app, tenant, id).await;
    let expires: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(view["auth"]["token_expires_at"].clone()).expect("an expiry");
    while chrono::Utc::now() <= expires {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn an_oauth_connector_is_authorized_by_an_admin_and_its_token_refreshed_until_refused() {
    let app = TestApp::spawn().await;
    let server = PythonMcpServer::start_with(Sdk::V2, "oauth_server.py").await;
    let tenant = tenant(&app, "acme").await;

    // Created, it waits for an admin: no tools, and it says what to do.
    let created = oauth_connector(&app, &tenant, &server).await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(created["status"], "needs_authorization", "{created}");
    assert!(created["last_error"].as_str().unwrap().contains("/authorize"), "{created}");
    assert_eq!(created["auth"]["kind"], "oauth");
    assert_eq!(created["auth"]["token_configured"], false);
    assert_eq!(created["tools"], json!([]));

    // The admin is given the authorization server's URL: PKCE S256, the resource, a state.
    let response = authorize(&app, &tenant.admin_key, id).await;
    assert_eq!(response.status(), 200);
    let started: Value = response.json().await.unwrap();
    let url = reqwest::Url::parse(started["authorization_url"].as_str().unwrap()).unwrap();
    let query: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(url.as_str().split('?').next().unwrap(), format!("{}/authorize", origin(&server)));
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["resource"], server.url);
    assert_eq!(query["scope"], "tools", "the protected resource's scopes_supported");
    assert_eq!(query["redirect_uri"], app.url("/api/v1/oauth/callback"));
    assert!(query["state"].len() >= 43 && query["code_challenge"].len() == 43);
    let log = as_log(&server).await;
    assert!(log.iter().any(|entry| entry["event"] == "register"), "registered dynamically: {log:?}");

    // The browser is sent back to the callback, which completes it: active, tools discovered.
    let callback = approve(url.as_str()).await;
    assert!(callback.starts_with(&app.url("/api/v1/oauth/callback")), "{callback}");
    let (status, page) = come_back(&callback).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Connector authorized"), "{page}");
    let authorized = connector(&app, &tenant, id).await;
    assert_eq!(authorized["status"], "active", "{authorized}");
    assert_eq!(authorized["auth"]["token_configured"], true);
    assert!(authorized["tools"].as_array().unwrap().iter().any(|tool| tool["name"] == "echo"), "{authorized}");
    // RFC 8707: the authorization and the code's grant were for the MCP server.
    let log = as_log(&server).await;
    let authorizations: Vec<&Value> = log.iter().filter(|entry| entry["event"] == "authorize").collect();
    assert_eq!(authorizations.last().unwrap()["resource"], server.url, "{log:?}");
    assert_eq!(grants(&log, "authorization_code")[0]["resource"], server.url, "{log:?}");

    // A turn calls the tool with the bearer token.
    let events = turn_calling_echo(&app, &tenant, "hello").await;
    let completed = events.iter().find(|event| event.event == "tool_call.completed");
    assert!(completed.is_some(), "{events:#?}");

    // Once the access token has expired, the next call refreshes it first, and succeeds.
    let before = grants(&as_log(&server).await, "refresh_token").len();
    until_the_token_expires(&app, &tenant, id).await;
    let events = turn_calling_echo(&app, &tenant, "again").await;
    assert!(events.iter().any(|event| event.event == "tool_call.completed"), "{events:#?}");
    let log = as_log(&server).await;
    let refresh_grants = grants(&log, "refresh_token");
    assert!(refresh_grants.len() > before, "a refresh grant: {log:?}");
    assert_eq!(refresh_grants.last().unwrap()["resource"], server.url);

    // The server forgets the access token before its time: that call fails, and the next one refreshes it.
    let revoked = reqwest::Client::new().post(format!("{}/test/revoke-access", origin(&server))).send().await;
    assert!(revoked.unwrap().status().is_success());
    let before = grants(&as_log(&server).await, "refresh_token").len();
    let events = turn_calling_echo(&app, &tenant, "revoked").await;
    assert!(events.iter().any(|event| event.event == "tool_call.failed"), "{events:#?}");
    let events = turn_calling_echo(&app, &tenant, "renewed").await;
    assert!(events.iter().any(|event| event.event == "tool_call.completed"), "{events:#?}");
    assert!(grants(&as_log(&server).await, "refresh_token").len() > before);

    // The authorization server refuses the next refresh: the call fails with a stable code, and the
    // connector needs authorization again, saying why.
    let rejected = reqwest::Client::new().post(format!("{}/test/reject-refresh", origin(&server))).send().await;
    assert!(rejected.unwrap().status().is_success());
    until_the_token_expires(&app, &tenant, id).await;
    let events = turn_calling_echo(&app, &tenant, "refused").await;
    let failed = events.iter().find(|event| event.event == "tool_call.failed").unwrap_or_else(|| panic!("{events:#?}"));
    assert_eq!(failed.data["code"], "tool_needs_authorization", "{failed:?}");
    let view = connector(&app, &tenant, id).await;
    assert_eq!(view["status"], "needs_authorization", "{view}");
    assert!(view["last_error"].as_str().unwrap().contains("refused to refresh"), "{view}");
    assert_eq!(view["auth"]["token_configured"], false, "the dead grant is forgotten");
    let audit: Value = app.get("/api/v1/audit-events", &tenant.admin_key).send().await.unwrap().json().await.unwrap();
    let actions: Vec<&str> =
        audit["audit_events"].as_array().unwrap().iter().filter_map(|event| event["action"].as_str()).collect();
    for action in
        ["mcp_connector.authorization_started", "mcp_connector.authorized", "mcp_connector.needs_authorization"]
    {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }

    // Its tools are no longer offered: the model is given none of them.
    app.mock.push(Reply { text: "No tools.".into(), ..Reply::default() });
    let session = app.create_session(&tenant.admin_key).await;
    app.stream_turn(&tenant.admin_key, &session, "anything").await;
    let requests = app.mock.requests();
    let last = requests.iter().rev().find(|request| request.path.ends_with("/chat/completions")).unwrap();
    assert!(!last.body.to_string().contains("auth__echo"), "{}", last.body);

    // Authorized again, it works again.
    let started: Value = authorize(&app, &tenant.admin_key, id).await.json().await.unwrap();
    let (status, page) = come_back(&approve(started["authorization_url"].as_str().unwrap()).await).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(connector(&app, &tenant, id).await["status"], "active");
}

#[tokio::test]
async fn a_replayed_forged_or_missing_state_is_refused_at_the_callback() {
    let app = TestApp::spawn().await;
    let server = PythonMcpServer::start_with(Sdk::V2, "oauth_server.py").await;
    let tenant = tenant(&app, "acme").await;
    let created = oauth_connector(&app, &tenant, &server).await;
    let id = created["id"].as_str().unwrap();

    // A newer authorization replaces an older one: only the newest link works.
    let older: Value = authorize(&app, &tenant.admin_key, id).await.json().await.unwrap();
    let older_callback = approve(older["authorization_url"].as_str().unwrap()).await;
    let newer: Value = authorize(&app, &tenant.admin_key, id).await.json().await.unwrap();
    let callback = approve(newer["authorization_url"].as_str().unwrap()).await;
    let (status, page) = come_back(&older_callback).await;
    assert_eq!(status, 400, "{page}");

    let (status, page) = come_back(&callback).await;
    assert_eq!(status, 200, "{page}");
    // The same state again: used already.
    let (status, page) = come_back(&callback).await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("oauth_state_invalid") && page.contains("used already or expired"), "{page}");
    // A forged state, and none.
    let code = reqwest::Url::parse(&callback)
        .unwrap()
        .query_pairs()
        .find(|(name, _)| name == "code")
        .map(|(_, code)| code.into_owned())
        .unwrap();
    for query in [format!("code={code}&state=forged-state-0123456789"), format!("code={code}"), String::new()] {
        let (status, page) = come_back(&app.url(&format!("/api/v1/oauth/callback?{query}"))).await;
        assert_eq!(status, 400, "{query}: {page}");
    }
    // Its answers are not cached: the URL carries a code.
    let response = reqwest::get(app.url("/api/v1/oauth/callback?state=x")).await.unwrap();
    assert_eq!(response.headers()["cache-control"], "no-store");
}

#[tokio::test]
async fn another_tenant_can_neither_authorize_nor_see_an_oauth_connector() {
    let app = TestApp::spawn().await;
    let server = PythonMcpServer::start_with(Sdk::V2, "oauth_server.py").await;
    let owner = tenant(&app, "acme").await;
    let other = tenant(&app, "globex").await;
    let created = oauth_connector(&app, &owner, &server).await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(authorize(&app, &other.admin_key, id).await.status(), 404);
    let seen = app.get(&format!("/api/v1/mcp-connectors/{id}"), &other.admin_key).send().await.unwrap();
    assert_eq!(seen.status(), 404);
    // A chat key is no admin.
    let (_, chat) = app.create_key(&owner, &["chat"]).await;
    assert_eq!(authorize(&app, &chat, id).await.status(), 403);
    // A connector without oauth is not authorized.
    let plain = json!({ "name": "plain", "transport": "streamable_http", "url": server.url });
    let plain: Value =
        app.post("/api/v1/mcp-connectors", &owner.admin_key, &plain).send().await.unwrap().json().await.unwrap();
    let response = authorize(&app, &owner.admin_key, plain["id"].as_str().unwrap()).await;
    assert_eq!(response.status(), 422);
}

#[tokio::test]
async fn switchboard_serves_its_client_id_metadata_document() {
    let app = TestApp::spawn().await;
    let document: Value =
        reqwest::get(app.url("/api/v1/oauth/client-metadata.json")).await.unwrap().json().await.unwrap();
    assert_eq!(document["client_id"], app.url("/api/v1/oauth/client-metadata.json"));
    assert_eq!(document["redirect_uris"], json!([app.url("/api/v1/oauth/callback")]));
    assert_eq!(document["token_endpoint_auth_method"], "none");
}
