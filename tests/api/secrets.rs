//! Tenants' provider keys: sealed at rest, re-sealed by master-key rotation, and never in a log line or
//! a response.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use mock_upstream::{Fault, Reply};
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::json;
use switchboard::crypto::MasterKeys;
use switchboard::db;
use switchboard::ids::TenantId;
use switchboard::providers::ProviderKind;
use switchboard::providers::credentials::{self, CredentialError};
use switchboard::tenants::secrets::reseal_all;

use crate::helpers::{MASTER_KEY, TestApp};

#[tokio::test]
async fn rotation_reseals_every_key_and_the_old_master_key_no_longer_opens_them() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let canary = "sk-rotation-canary-5e1d";
    app.put_provider_key(&tenant, "anthropic", json!({"api_key": canary, "base_url": app.mock_base("anthropic")}))
        .await;
    let other = app.create_tenant("globex").await;
    app.put_provider_key(&other, "gemini", json!({"api_key": "globex-key", "base_url": app.mock_base("gemini")})).await;

    let rotated_keys = MasterKeys::new(&SecretString::from("rotated-master-key"), &[SecretString::from(MASTER_KEY)]);
    assert_eq!(reseal_all(&app.app_db, &rotated_keys).await.unwrap(), 2);
    assert_eq!(reseal_all(&app.app_db, &rotated_keys).await.unwrap(), 0, "nothing left to re-seal");
    let key_ids: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT key_id FROM provider_credentials").fetch_all(&app.owner_db).await.unwrap();
    assert_eq!(key_ids, [rotated_keys.current_id()]);

    let mut transaction = db::begin_tenant(&app.app_db, TenantId(tenant.id)).await.unwrap();
    let old_only =
        credentials::tenant_credential(&mut transaction, &app.keys, TenantId(tenant.id), ProviderKind::Anthropic).await;
    assert!(matches!(old_only, Err(CredentialError::Crypto(_))), "the old master key must not open re-sealed keys");
    let new_only = MasterKeys::new(&SecretString::from("rotated-master-key"), &[]);
    let opened =
        credentials::tenant_credential(&mut transaction, &new_only, TenantId(tenant.id), ProviderKind::Anthropic)
            .await
            .unwrap()
            .unwrap();
    assert_eq!(opened.api_key.expose_secret(), canary);
    transaction.rollback().await.unwrap();

    // The running app still holds only the old key: the turn fails cleanly rather than leaking anything.
    app.configure(&tenant, json!({"default_provider": "anthropic"})).await;
    let session = app.create_session(&tenant.admin_key).await;
    let events = app.stream_turn(&tenant.admin_key, &session, "hi").await;
    assert_eq!(events.last().unwrap().data["code"], "provider_not_configured");
}

#[derive(Clone, Default)]
struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl Write for CapturedLogs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every log line of this test binary, at debug level, from the moment this is first called.
fn captured_logs() -> &'static CapturedLogs {
    static LOGS: OnceLock<CapturedLogs> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = CapturedLogs::default();
        let writer = logs.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || writer.clone())
            .try_init()
            .expect("no other subscriber in this test binary");
        logs
    })
}

#[tokio::test]
async fn a_canary_key_never_appears_in_logs_responses_or_errors() {
    let logs = captured_logs();
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let canary = "sk-log-canary-91b2c3d4";
    app.configure(&tenant, json!({"default_provider": "openai"})).await;
    let put = app.client.put(app.url("/api/v1/providers/openai")).bearer_auth(&tenant.admin_key);
    let body = json!({"api_key": canary, "base_url": app.mock_base("openai")});
    let mut seen = put.json(&body).send().await.unwrap().text().await.unwrap();
    let session = app.create_session(&tenant.admin_key).await;

    app.mock.push(Reply { text: "fine".into(), ..Reply::default() });
    for fault in [Fault::Status { status: 401, retry_after: None }, Fault::Status { status: 400, retry_after: None }] {
        app.mock.push(Reply { fault: Some(fault), ..Reply::default() });
    }
    for question in ["one", "two", "three"] {
        let events = app.stream_turn(&tenant.admin_key, &session, question).await;
        seen.extend(events.iter().map(|event| event.data.to_string()));
    }
    for path in ["/api/v1/providers/openai", "/api/v1/audit-events", "/api/v1/tenant/config"] {
        seen.push_str(&app.get(path, &tenant.admin_key).send().await.unwrap().text().await.unwrap());
    }
    seen.push_str(&serde_json::to_string(&app.messages(&tenant.admin_key, &session).await).unwrap());
    assert_eq!(app.mock.requests().iter().filter(|request| request.api_key.as_deref() == Some(canary)).count(), 3);
    assert!(!seen.contains(canary), "a response carried the key");

    let logged = String::from_utf8_lossy(&logs.0.lock().unwrap()).to_string();
    assert!(logged.contains("request"), "the capture works");
    assert!(!logged.contains(canary), "a log line carried the key");
}

#[tokio::test]
async fn a_connector_canary_token_never_appears_in_logs_responses_or_the_audit_trail() {
    let logs = captured_logs();
    let app = TestApp::spawn().await;
    let server = crate::mcp_server::McpTestServer::start().await;
    let tenant = app.create_tenant("acme").await;
    app.configure(&tenant, json!({"default_provider": "openai", "default_model": "gpt-4o-mini"})).await;
    let canary = "mcp-token-canary-77aa01";
    let mut seen = String::new();
    for body in [
        json!({ "name": "crm", "transport": "streamable_http", "url": server.url,
                "auth": { "kind": "bearer", "token": canary } }),
        // Nothing listens there: the failure is logged and stored, the token must not be.
        json!({ "name": "gone", "transport": "streamable_http", "url": "http://127.0.0.1:9/mcp",
                "auth": { "kind": "api_key", "header": "x-api-key", "token": canary } }),
    ] {
        let response = app.post("/api/v1/mcp-connectors", &tenant.admin_key, &body).send().await.unwrap();
        assert_eq!(response.status(), 201);
        seen.push_str(&response.text().await.unwrap());
    }
    let profile = json!({ "name": "p", "tool_allowlist": ["crm.*"] });
    let profile: serde_json::Value =
        app.post("/api/v1/policy-profiles", &tenant.admin_key, &profile).send().await.unwrap().json().await.unwrap();
    app.configure(&tenant, json!({ "active_policy_profile_id": profile["id"] })).await;
    let call = mock_upstream::ToolCall {
        id: String::new(),
        name: "crm__find_customers".into(),
        arguments: json!({ "query": "x" }),
    };
    app.mock.push(Reply { tool_calls: vec![call], ..Reply::default() });
    let session = app.create_session(&tenant.admin_key).await;
    let events = app.stream_turn(&tenant.admin_key, &session, "find x").await;
    assert!(events.iter().any(|event| event.event == "tool_call.completed"), "{events:#?}");
    seen.extend(events.iter().map(|event| event.data.to_string()));
    for path in ["/api/v1/mcp-connectors", "/api/v1/audit-events"] {
        seen.push_str(&app.get(path, &tenant.admin_key).send().await.unwrap().text().await.unwrap());
    }
    seen.push_str(&serde_json::to_string(&app.messages(&tenant.admin_key, &session).await).unwrap());
    assert!(server.authorizations.lock().unwrap().contains(&format!("Bearer {canary}")), "the token is used");
    assert!(seen.contains("gone") && seen.contains("error"), "the failing connector is reported");
    assert!(!seen.contains(canary), "a response carried the token");
    let logged = String::from_utf8_lossy(&logs.0.lock().unwrap()).to_string();
    assert!(!logged.contains(canary), "a log line carried the token");
}

#[tokio::test]
async fn an_oauth_connectors_tokens_never_appear_in_logs_responses_or_the_audit_trail() {
    let logs = captured_logs();
    let app = TestApp::spawn().await;
    let server = crate::python_mcp::PythonMcpServer::start_with(crate::python_mcp::Sdk::V2, "oauth_server.py").await;
    let tenant = app.create_tenant("acme").await;
    app.configure(&tenant, json!({"default_provider": "openai", "default_model": "gpt-4o-mini"})).await;
    let profile = json!({ "name": "p", "tool_allowlist": ["auth.*"] });
    let profile: serde_json::Value =
        app.post("/api/v1/policy-profiles", &tenant.admin_key, &profile).send().await.unwrap().json().await.unwrap();
    app.configure(&tenant, json!({ "active_policy_profile_id": profile["id"] })).await;
    let connector = crate::mcp_oauth::authorized_connector(&app, &tenant, &server).await;
    let mut seen = connector.to_string();
    let call =
        mock_upstream::ToolCall { id: String::new(), name: "auth__echo".into(), arguments: json!({ "text": "x" }) };
    app.mock.push(Reply { tool_calls: vec![call], ..Reply::default() });
    let session = app.create_session(&tenant.admin_key).await;
    let events = app.stream_turn(&tenant.admin_key, &session, "echo x").await;
    assert!(events.iter().any(|event| event.event == "tool_call.completed"), "{events:#?}");
    seen.extend(events.iter().map(|event| event.data.to_string()));
    for path in ["/api/v1/mcp-connectors", "/api/v1/audit-events"] {
        seen.push_str(&app.get(path, &tenant.admin_key).send().await.unwrap().text().await.unwrap());
    }
    let origin = server.url.trim_end_matches("/mcp");
    let issued: Vec<String> = reqwest::get(format!("{origin}/test/tokens")).await.unwrap().json().await.unwrap();
    assert!(issued.len() >= 2, "an access and a refresh token were issued");
    let logged = String::from_utf8_lossy(&logs.0.lock().unwrap()).to_string();
    for token in &issued {
        assert!(!seen.contains(token.as_str()), "a response carried a token");
        assert!(!logged.contains(token.as_str()), "a log line carried a token");
    }
}

#[tokio::test]
async fn the_application_roles_password_never_appears_in_logs() {
    let logs = captured_logs();
    let app = TestApp::spawn().await;
    // What every start does: the role made or its password set again (here the one the cluster has).
    db::prepare(&app.owner_options, &SecretString::from("test-app-password")).await.expect("prepared");

    let logged = String::from_utf8_lossy(&logs.0.lock().unwrap()).to_string();
    assert!(logged.contains("ROLE switchboard_app"), "the capture holds the role's statement");
    assert!(!logged.contains("test-app-password"), "a log line carried the role's password");
}
