//! Tenant-supplied URLs (a provider's `base_url`, an MCP connector's `url`) that lead to special-purpose
//! addresses, or carry a credential, are refused with a 422 and nothing is stored; the operator's
//! `SWITCHBOARD_OUTBOUND_ALLOW` (127.0.0.1 in tests, where the mocks listen) still wins.

use serde_json::{Value, json};

use crate::helpers::{TestApp, TestTenant, assert_error};
use crate::mcp_server::McpTestServer;

/// Addresses a hostile tenant tried: transition forms of loopback and metadata, deprecated and reserved
/// blocks, and a cloud provider's wire server.
const SPECIAL_PURPOSE: [&str; 12] = [
    "http://[::127.0.0.1]/v1",
    "http://[64:ff9b::7f00:1]/v1",
    "http://[64:ff9b::a9fe:a9fe]/latest/meta-data",
    "http://[2002:7f00:1::]/v1",
    "http://[fec0::1]/v1",
    "http://[fd00:ec2::254]/latest/meta-data",
    "http://192.0.0.192/opc/v2/instance",
    "http://198.18.0.1/v1",
    "http://224.0.0.1/v1",
    "http://240.0.0.1/v1",
    "http://168.63.129.16/metadata/instance",
    // 169.254.169.254 spelled in hex, which the URL parser normalises before the check.
    "http://0xa9fea9fe/latest/meta-data",
];

const CANARY: &str = "canary-url-secret-4b7e";

/// URLs with a secret in them; none may come back in an answer.
fn with_credentials(path: &str) -> [String; 4] {
    [
        format!("http://user:{CANARY}@example.com{path}"),
        format!("https://example.com{path}?api_key={CANARY}"),
        format!("https://example.com{path}?model=x&access_token={CANARY}"),
        format!("https://example.com{path}?Signature={CANARY}"),
    ]
}

async fn put_provider(app: &TestApp, tenant: &TestTenant, base_url: &str) -> reqwest::Response {
    let body = json!({ "api_key": "tenant-key", "base_url": base_url });
    let request = app.client.put(app.url("/api/v1/providers/openai_compatible")).bearer_auth(&tenant.admin_key);
    request.json(&body).send().await.unwrap()
}

const CREDENTIALS: &str = "SELECT count(*) FROM provider_credentials WHERE tenant_id = $1";
const CONNECTORS: &str = "SELECT count(*) FROM mcp_connectors WHERE tenant_id = $1";

/// The tenant's rows as the database owner sees them, past any API view.
async fn rows(app: &TestApp, query: &'static str, tenant: &TestTenant) -> i64 {
    sqlx::query_scalar(query).bind(tenant.id).fetch_one(&app.owner_db).await.unwrap()
}

#[tokio::test]
async fn provider_base_urls_of_special_purpose_addresses_are_refused_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    for url in SPECIAL_PURPOSE {
        let error = assert_error(put_provider(&app, &tenant, url).await, 422, "invalid_request").await;
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.starts_with("base_url: ") && message.contains("not a public address"), "{url}: {message}");
    }
    let shown = app.get("/api/v1/providers/openai_compatible", &tenant.admin_key).send().await.unwrap();
    assert_error(shown, 404, "not_found").await;
    assert_eq!(rows(&app, CREDENTIALS, &tenant).await, 0);
    let audit = app.get_json("/api/v1/audit-events", &tenant.admin_key).await.to_string();
    assert!(!audit.contains("provider_credentials.saved"), "{audit}");

    // The operator's allow-list wins: the mock listens on 127.0.0.1, which the tests allow.
    assert_eq!(put_provider(&app, &tenant, &app.mock.openai_base()).await.status(), 200);
    assert_eq!(rows(&app, CREDENTIALS, &tenant).await, 1);
}

#[tokio::test]
async fn provider_base_urls_carrying_credentials_are_refused_without_echoing_them() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let brief = ["http://user:pw@example.com/".to_owned(), "https://example.com/v1?api_key=x".to_owned()];
    for url in brief.iter().chain(&with_credentials("/v1")) {
        let error = assert_error(put_provider(&app, &tenant, url).await, 422, "invalid_request").await;
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains("base_url carries a credential") && message.contains("api_key"), "{message}");
        assert!(!error.to_string().contains(CANARY) && !message.contains("pw@"), "{error}");
    }
    let shown = app.get("/api/v1/providers/openai_compatible", &tenant.admin_key).send().await.unwrap();
    assert_error(shown, 404, "not_found").await;
    assert_eq!(rows(&app, CREDENTIALS, &tenant).await, 0);
    let audit = app.get_json("/api/v1/audit-events", &tenant.admin_key).await.to_string();
    assert!(!audit.contains(CANARY) && !audit.contains("provider_credentials.saved"), "{audit}");
}

async fn post_connector(app: &TestApp, tenant: &TestTenant, name: &str, url: &str) -> reqwest::Response {
    let body = json!({ "name": name, "transport": "streamable_http", "url": url });
    app.post("/api/v1/mcp-connectors", &tenant.admin_key, &body).send().await.unwrap()
}

#[tokio::test]
async fn connector_urls_of_special_purpose_addresses_or_with_credentials_are_refused_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    for url in SPECIAL_PURPOSE {
        let error = assert_error(post_connector(&app, &tenant, "crm", url).await, 422, "invalid_request").await;
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.starts_with("url: ") && message.contains("not a public address"), "{url}: {message}");
    }
    let brief = ["http://user:pw@example.com/mcp".to_owned(), "https://example.com/mcp?api_key=x".to_owned()];
    for url in brief.iter().chain(&with_credentials("/mcp")) {
        let error = assert_error(post_connector(&app, &tenant, "crm", url).await, 422, "invalid_request").await;
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains("url carries a credential") && message.contains("auth"), "{message}");
        assert!(!error.to_string().contains(CANARY), "{error}");
    }
    assert_eq!(app.get_json("/api/v1/mcp-connectors", &tenant.admin_key).await["connectors"], json!([]));
    assert_eq!(rows(&app, CONNECTORS, &tenant).await, 0);

    // A stored connector cannot be moved to such a URL either, and keeps the one it had.
    let server = McpTestServer::start().await;
    let created = post_connector(&app, &tenant, "crm", &server.url).await;
    assert_eq!(created.status(), 201);
    let id = created.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let connector = format!("/api/v1/mcp-connectors/{id}");
    for url in [format!("{}?token={CANARY}", server.url), "http://[64:ff9b::7f00:1]/mcp".to_owned()] {
        let request = app.client.patch(app.url(&connector)).bearer_auth(&tenant.admin_key).json(&json!({ "url": url }));
        let error = assert_error(request.send().await.unwrap(), 422, "invalid_request").await;
        assert!(!error.to_string().contains(CANARY), "{error}");
    }
    let kept = app.get_json(&connector, &tenant.admin_key).await;
    assert_eq!(kept["url"], server.url.as_str(), "{kept}");
    let audit = app.get_json("/api/v1/audit-events", &tenant.admin_key).await.to_string();
    assert!(!audit.contains(CANARY), "{audit}");
}
