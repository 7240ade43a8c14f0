//! `/mcp`: Switchboard's own MCP server, reached by a real MCP client (rmcp) with a tenant API key.

use rmcp::ServiceExt as _;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::json;

use crate::helpers::TestApp;

async fn connect(app: &TestApp, key: &str) -> Result<rmcp::service::RunningService<rmcp::RoleClient, ()>, String> {
    let config = StreamableHttpClientTransportConfig::with_uri(app.url("/mcp")).auth_header(key.to_owned());
    ().serve(StreamableHttpClientTransport::from_config(config)).await.map_err(|error| error.to_string())
}

#[tokio::test]
async fn an_mcp_client_lists_and_calls_search_docs_over_the_tenants_documents_only() {
    let app = TestApp::spawn().await;
    let acme = app.create_tenant("acme").await;
    let other = app.create_tenant("other").await;
    let document = json!({ "source_path": "runbooks/espresso.md", "title": "Espresso",
                           "content": "# Espresso machine\n\nDescale the espresso machine every Friday with citric acid." });
    let response = app.post("/api/v1/documents", &acme.admin_key, &document).send().await.unwrap();
    assert_eq!(response.status(), 201);

    let client = connect(&app, &acme.admin_key).await.expect("the MCP handshake succeeds");
    let tools = client.peer().list_all_tools().await.unwrap();
    let search = tools.iter().find(|tool| tool.name == "search_docs").expect("search_docs is listed");
    assert_eq!(search.annotations.as_ref().and_then(|annotations| annotations.read_only_hint), Some(true));
    let arguments = json!({ "query": "how often to descale the espresso machine", "limit": 3 });
    let params = CallToolRequestParams::new("search_docs").with_arguments(arguments.as_object().unwrap().clone());
    let result = client.peer().call_tool(params.clone()).await.unwrap();
    let results = result.structured_content.expect("structured results")["results"].clone();
    assert_eq!(results[0]["source_path"], "runbooks/espresso.md", "{results}");
    assert!(results[0]["content"].as_str().unwrap().contains("citric acid"));

    // Another tenant's key searches only what that tenant may read.
    let client = connect(&app, &other.admin_key).await.unwrap();
    let result = client.peer().call_tool(params).await.unwrap();
    let text = result.structured_content.unwrap().to_string();
    assert!(!text.contains("espresso.md"), "{text}");

    assert!(connect(&app, "sbk_wrong").await.is_err());
}
