//! MCP sessions with tenants' tool servers, over rmcp: opened on first use, shared by every turn that
//! calls the same connector, replaced when the connector changes or the session breaks, and closed when
//! the connector is deleted. Every connection and every call has a deadline, so a hung server costs a
//! turn a timeout, never the turn.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderName, HeaderValue};
use chrono::{DateTime, Utc};
use rmcp::model::{CallToolRequestParams, CallToolResult, ContentBlock, Tool};
use rmcp::service::RunningService;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt as _};
use secrecy::ExposeSecret as _;
use serde_json::Value;
use tokio::sync::Mutex;

use super::DiscoveredTool;
use super::connectors::{Auth, ConnectorSpec, Transport};
use super::settings::ToolSettings;
use crate::ids::ConnectorId;
use crate::outbound::OutboundPolicy;

type Session = RunningService<RoleClient, ()>;

/// Why a call (or a discovery) produced no result. The texts are safe to show: they never hold a
/// credential (rmcp's errors name the URL at most, and connector URLs carry no secrets).
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallFailure {
    #[error("could not reach the tool server: {0}")]
    Unreachable(String),
    #[error("the tool server did not answer within {} s", .0.as_secs_f32())]
    Timeout(Duration),
    /// The tool ran and reported an error (`isError`).
    #[error("the tool reported an error: {0}")]
    Tool(String),
    #[error("the tool server broke the protocol: {0}")]
    Protocol(String),
}

impl CallFailure {
    /// The stable code recorded on the call and sent in `tool_call.failed`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unreachable(_) => "tool_unreachable",
            Self::Timeout(_) => "tool_timeout",
            Self::Tool(_) => "tool_error",
            Self::Protocol(_) => "tool_protocol_error",
        }
    }
}

struct Pooled {
    /// The connector's `updated_at` when the session was opened: a changed connector gets a new session.
    version: DateTime<Utc>,
    session: Arc<Session>,
}

/// The open sessions, one per connector, and the HTTP client they share.
#[derive(Clone)]
pub struct McpClients {
    sessions: Arc<Mutex<HashMap<ConnectorId, Pooled>>>,
    /// Resolves names through the outbound policy: a connector's host cannot be re-pointed inside.
    http: reqwest::Client,
}

impl std::fmt::Debug for McpClients {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("McpClients").finish_non_exhaustive()
    }
}

impl McpClients {
    pub fn new(outbound: &OutboundPolicy) -> Self {
        let http = reqwest::Client::builder()
            .dns_resolver(outbound.resolver())
            // As rmcp's own client: no idle pooling (delayed-ACK stalls), and no overall timeout, which
            // would cut long streamed answers; each call has its own deadline instead.
            .pool_max_idle_per_host(0)
            .connect_timeout(std::time::Duration::from_secs(10))
            .build()
            .expect("the HTTP client builds with rustls");
        Self { sessions: Arc::default(), http }
    }

    /// Every tool the server lists (all pages), as stored for discovery.
    pub async fn list_tools(
        &self,
        id: ConnectorId,
        version: DateTime<Utc>,
        spec: &ConnectorSpec,
        settings: &ToolSettings,
    ) -> Result<Vec<DiscoveredTool>, CallFailure> {
        let session = self.session(id, version, spec, settings).await?;
        let tools = within(settings.call_timeout, session.peer().list_all_tools()).await;
        if tools.is_err() {
            self.close(id).await;
        }
        Ok(tools?.into_iter().map(|tool| discovered(id, tool)).collect())
    }

    /// Calls `tool` and returns what it produced as JSON: its structured content when it gives one, else
    /// its text (parsed when it is JSON).
    pub async fn call(
        &self,
        id: ConnectorId,
        version: DateTime<Utc>,
        spec: &ConnectorSpec,
        settings: &ToolSettings,
        tool: &str,
        arguments: Value,
    ) -> Result<Value, CallFailure> {
        let session = self.session(id, version, spec, settings).await?;
        let mut params = CallToolRequestParams::new(tool.to_owned());
        if let Value::Object(arguments) = arguments {
            params = params.with_arguments(arguments);
        }
        match within(settings.call_timeout, session.peer().call_tool(params)).await {
            Ok(result) => result_value(&result),
            Err(failure) => {
                // A session that timed out or broke may be wedged: the next call opens a new one.
                self.close(id).await;
                Err(failure)
            }
        }
    }

    /// Closes the connector's session, if one is open.
    pub async fn close(&self, id: ConnectorId) {
        let pooled = self.sessions.lock().await.remove(&id);
        if let Some(pooled) = pooled
            && let Ok(session) = Arc::try_unwrap(pooled.session)
        {
            // Others still using it keep it alive; the last holder's drop closes it.
            let _ = session.cancel().await;
        }
    }

    async fn session(
        &self,
        id: ConnectorId,
        version: DateTime<Utc>,
        spec: &ConnectorSpec,
        settings: &ToolSettings,
    ) -> Result<Arc<Session>, CallFailure> {
        {
            let sessions = self.sessions.lock().await;
            if let Some(pooled) = sessions.get(&id).filter(|pooled| pooled.version == version)
                && !pooled.session.peer().is_transport_closed()
            {
                return Ok(Arc::clone(&pooled.session));
            }
        }
        let session = Arc::new(
            tokio::time::timeout(settings.connect_timeout, connect(&self.http, spec, settings)).await.map_err(
                |_| {
                    CallFailure::Unreachable(format!(
                        "no MCP handshake within {} s",
                        settings.connect_timeout.as_secs()
                    ))
                },
            )??,
        );
        self.sessions.lock().await.insert(id, Pooled { version, session: Arc::clone(&session) });
        Ok(session)
    }
}

async fn within<T, E: std::fmt::Display>(
    limit: Duration,
    call: impl Future<Output = Result<T, E>>,
) -> Result<T, CallFailure> {
    match tokio::time::timeout(limit, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(CallFailure::Protocol(error.to_string())),
        Err(_) => Err(CallFailure::Timeout(limit)),
    }
}

async fn connect(
    http: &reqwest::Client,
    spec: &ConnectorSpec,
    settings: &ToolSettings,
) -> Result<Session, CallFailure> {
    let unreachable = |error: &dyn std::fmt::Display| CallFailure::Unreachable(error.to_string());
    match &spec.transport {
        Transport::StreamableHttp { url } => {
            let mut config = StreamableHttpClientTransportConfig::with_uri(url.as_str());
            match &spec.auth {
                Auth::None => {}
                Auth::Bearer { secret } => config = config.auth_header(secret.expose_secret().to_owned()),
                Auth::ApiKey { header, secret } => {
                    let name = HeaderName::try_from(header.as_str()).map_err(|error| unreachable(&error))?;
                    let value = HeaderValue::try_from(secret.expose_secret())
                        .map_err(|_| CallFailure::Unreachable("the api key is not a valid header value".into()))?;
                    config = config.custom_headers(HashMap::from([(name, value)]));
                }
            }
            let transport = StreamableHttpClientTransport::with_client(http.clone(), config);
            ().serve(transport).await.map_err(|error| unreachable(&error))
        }
        Transport::Stdio { server, args } => {
            let command_line = settings
                .stdio_servers
                .command_line(server)
                .ok_or_else(|| CallFailure::Unreachable(format!("`{server}` is no longer an allowed stdio server")))?;
            let mut command = tokio::process::Command::new(&command_line[0]);
            // A clean environment: the server must not inherit the service's keys.
            command.args(&command_line[1..]).args(args).env_clear();
            for name in ["PATH", "HOME", "LANG", "TMPDIR"] {
                if let Some(value) = std::env::var_os(name) {
                    command.env(name, value);
                }
            }
            let (transport, _) = TokioChildProcess::builder(command)
                .stderr(std::process::Stdio::null())
                .spawn()
                .map_err(|error| unreachable(&error))?;
            ().serve(transport).await.map_err(|error| unreachable(&error))
        }
    }
}

fn discovered(connector_id: ConnectorId, tool: Tool) -> DiscoveredTool {
    let read_only = tool.annotations.as_ref().and_then(|annotations| annotations.read_only_hint) == Some(true);
    DiscoveredTool {
        connector_id,
        qualified_name: String::new(),
        name: tool.name.into_owned(),
        description: tool.description.map(std::borrow::Cow::into_owned),
        input_schema: Value::Object((*tool.input_schema).clone()),
        annotations: tool.annotations.and_then(|annotations| serde_json::to_value(annotations).ok()),
        read_only,
    }
}

fn result_value(result: &CallToolResult) -> Result<Value, CallFailure> {
    let text = || {
        result
            .content
            .iter()
            .filter_map(|block| match block {
                ContentBlock::Text(text) => Some(text.text.as_str()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    if result.is_error == Some(true) {
        return Err(CallFailure::Tool(text()));
    }
    if let Some(structured) = result.structured_content.clone() {
        return Ok(structured);
    }
    let text = text();
    Ok(serde_json::from_str(&text).unwrap_or(Value::String(text)))
}
