//! A real MCP server for the tool tests, written with rmcp and served over streamable HTTP on 127.0.0.1:
//! a read-only customer search whose rows carry a field policies block, a destructive delete, and a tool
//! that never answers. rmcp speaks both MCP revisions, 2026-07-28 and 2025-11-25; started with
//! [`McpTestServer::start_legacy`], it refuses the newer one as a 2025-11-25 server does.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::response::IntoResponse as _;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::RequestMetaObject;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{schemars, tool, tool_router};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub struct FindCustomers {
    /// Part of the customer's name.
    pub query: String,
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub struct DeleteCustomer {
    pub id: u32,
}

#[derive(Clone, Default)]
pub struct CrmServer {
    /// How many calls reached a tool: a denied call must never get here.
    pub calls: Arc<AtomicUsize>,
    /// The `traceparent` each search's `_meta` carried (MCP's SEP-414), if any.
    pub meta_traceparents: Arc<Mutex<Vec<Option<String>>>>,
}

#[tool_router(server_handler)]
impl CrmServer {
    #[tool(description = "Find customers by name.", annotations(read_only_hint = true, destructive_hint = false))]
    async fn find_customers(&self, Parameters(request): Parameters<FindCustomers>, meta: RequestMetaObject) -> String {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.meta_traceparents.lock().unwrap().push(meta.get_traceparent().map(str::to_owned));
        let customers: Vec<Value> = (1..=5)
            .map(|id| {
                json!({
                    "id": id,
                    "name": format!("{} {id}", request.query),
                    "ssn": format!("SECRET-SSN-{id:04}"),
                    "address": { "city": "Lyon", "ssn": format!("NESTED-SSN-{id:04}") },
                })
            })
            .collect();
        json!({ "customers": customers }).to_string()
    }

    #[tool(description = "Delete a customer for good.", annotations(read_only_hint = false, destructive_hint = true))]
    async fn delete_customer(&self, Parameters(request): Parameters<DeleteCustomer>) -> String {
        self.calls.fetch_add(1, Ordering::SeqCst);
        json!({ "deleted": request.id }).to_string()
    }

    #[tool(description = "Answers only when cancelled.", annotations(read_only_hint = true))]
    async fn hang(&self, cancelled: CancellationToken) -> String {
        self.calls.fetch_add(1, Ordering::SeqCst);
        cancelled.cancelled().await;
        "cancelled".to_owned()
    }
}

/// A running server: its URL, the count of calls that reached a tool, and the `Authorization` headers
/// it was sent.
pub struct McpTestServer {
    pub url: String,
    pub calls: Arc<AtomicUsize>,
    pub authorizations: Arc<Mutex<Vec<String>>>,
    /// The `traceparent` headers of the requests it was sent.
    pub traceparent_headers: Arc<Mutex<Vec<String>>>,
    /// The `traceparent` in each search's `_meta`.
    pub meta_traceparents: Arc<Mutex<Vec<Option<String>>>>,
    /// (handshakes: `server/discover`, or `initialize` (a 2025-11-25 request without a session id yet);
    /// `DELETE`s: sessions the client ended; `server/discover` requests)
    traffic: Arc<Mutex<(usize, usize, usize)>>,
    /// Whether it refuses the 2026-07-28 revision (as a server of the previous one does).
    legacy: Arc<AtomicBool>,
}

impl McpTestServer {
    /// A server of both revisions.
    pub async fn start() -> Self {
        Self::start_speaking(false).await
    }

    /// A server of the 2025-11-25 revision only: a 2026-07-28 request (one with an `Mcp-Method` header)
    /// gets the answer the TypeScript SDK 1.x gives, a 400 with a JSON-RPC error of code -32000.
    pub async fn start_legacy() -> Self {
        Self::start_speaking(true).await
    }

    async fn start_speaking(legacy_only: bool) -> Self {
        let server = CrmServer::default();
        let calls = Arc::clone(&server.calls);
        let meta_traceparents = Arc::clone(&server.meta_traceparents);
        let service = StreamableHttpService::new(
            move || Ok(server.clone()),
            LocalSessionManager::default().into(),
            StreamableHttpServerConfig::default(),
        );
        let authorizations = Arc::new(Mutex::new(Vec::new()));
        let traffic = Arc::new(Mutex::new((0, 0, 0)));
        let legacy = Arc::new(AtomicBool::new(legacy_only));
        let refusing = Arc::clone(&legacy);
        let traceparent_headers = Arc::new(Mutex::new(Vec::new()));
        let (seen, counted) = (Arc::clone(&authorizations), Arc::clone(&traffic));
        let traced = Arc::clone(&traceparent_headers);
        let router = axum::Router::new().nest_service("/mcp", service).layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                let header = request.headers().get("authorization").and_then(|value| value.to_str().ok());
                if let Some(header) = header {
                    seen.lock().unwrap().push(header.to_owned());
                }
                if let Some(traceparent) = request.headers().get("traceparent").and_then(|value| value.to_str().ok()) {
                    traced.lock().unwrap().push(traceparent.to_owned());
                }
                let method = request.headers().get("mcp-method").and_then(|value| value.to_str().ok());
                let discover = method == Some("server/discover");
                let mut counts = counted.lock().unwrap();
                if request.method() == axum::http::Method::DELETE {
                    counts.1 += 1;
                } else if request.method() == axum::http::Method::POST
                    && (discover || (method.is_none() && !request.headers().contains_key("mcp-session-id")))
                {
                    counts.0 += 1;
                }
                counts.2 += usize::from(discover);
                drop(counts);
                let refused = method.is_some() && refusing.load(Ordering::SeqCst);
                async move {
                    if refused {
                        let body = json!({ "jsonrpc": "2.0", "id": null,
                                           "error": { "code": -32000, "message": "Bad Request: Server not initialized" } });
                        return (axum::http::StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
                    }
                    next.run(request).await
                }
            },
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/mcp", listener.local_addr().expect("address"));
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { url, calls, authorizations, traceparent_headers, meta_traceparents, traffic, legacy }
    }

    /// From now on, refuses the 2026-07-28 revision, as a server replaced by one of the previous revision.
    pub fn downgrade(&self) {
        self.legacy.store(true, Ordering::SeqCst);
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// MCP handshakes: `server/discover` requests (2026-07-28), and `initialize` requests (2025-11-25),
    /// which carry no session id yet.
    pub fn handshakes(&self) -> usize {
        self.traffic.lock().unwrap().0
    }

    /// `server/discover` requests, answered or refused.
    pub fn discovers(&self) -> usize {
        self.traffic.lock().unwrap().2
    }

    /// Sessions the client ended with `DELETE`.
    pub fn session_closes(&self) -> usize {
        self.traffic.lock().unwrap().1
    }
}
