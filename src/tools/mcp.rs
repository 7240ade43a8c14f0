//! MCP sessions with tenants' tool servers, over rmcp: opened on first use, shared by every turn that
//! calls the same connector, replaced when the connector changes or the session breaks, and closed when
//! the connector is deleted. Every connection and every call has a deadline, so a hung server costs a
//! turn a timeout, never the turn.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderName, HeaderValue};
use rmcp::model::{CallToolRequestParams, CallToolResult, ContentBlock, MetaObject, RequestMetaObject, Tool};
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
use super::traced_http::TracedHttp;
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
    /// The tool ran and reported an error (`isError`); what it said passes the policy's shaping before
    /// anyone sees it, so it is not part of the message.
    #[error("the tool reported an error")]
    Tool(Value),
    #[error("the tool server broke the protocol: {0}")]
    Protocol(String),
}

impl CallFailure {
    /// The same failure with the connector's credential cut out of its text (a server may echo it).
    fn redacted(self, secret: Option<&str>) -> Self {
        let Some(secret) = secret.filter(|secret| !secret.is_empty()) else { return self };
        let clean = |text: String| text.replace(secret, "[redacted]");
        match self {
            Self::Unreachable(text) => Self::Unreachable(clean(text)),
            Self::Tool(value) => {
                let text = clean(value.to_string());
                Self::Tool(serde_json::from_str(&text).unwrap_or(Value::String(text)))
            }
            Self::Protocol(text) => Self::Protocol(clean(text)),
            timeout @ Self::Timeout(_) => timeout,
        }
    }

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
    last_used: std::time::Instant,
}

/// A session unused this long is closed (its stdio child process ends with it).
const IDLE: Duration = Duration::from_mins(10);

/// The open sessions, one per connector, and the HTTP client they share.
#[derive(Clone)]
pub struct McpClients {
    sessions: Arc<Mutex<HashMap<ConnectorId, Pooled>>>,
    /// Resolves names through the outbound policy: a connector's host cannot be re-pointed inside.
    http: reqwest::Client,
    outbound: OutboundPolicy,
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
            // A redirect could lead anywhere, an internal address included, with the credential.
            .redirect(reqwest::redirect::Policy::none())
            // A proxy from the environment would resolve the name itself, past the policy.
            .no_proxy()
            .connect_timeout(std::time::Duration::from_secs(10))
            .build()
            .expect("the HTTP client builds with rustls");
        Self { sessions: Arc::default(), http, outbound: outbound.clone() }
    }

    /// Every tool the server lists (all pages), as stored for discovery.
    pub async fn list_tools(
        &self,
        id: ConnectorId,
        version: DateTime<Utc>,
        spec: &ConnectorSpec,
        settings: &ToolSettings,
    ) -> Result<Vec<DiscoveredTool>, CallFailure> {
        let secret = spec.secret();
        let session = self.session(id, version, spec, settings).await.map_err(|failure| failure.redacted(secret))?;
        let tools = within(settings.call_timeout, session.peer().list_all_tools()).await;
        if tools.is_err() {
            self.close(id).await;
        }
        let mut tools = tools.map_err(|failure| failure.redacted(secret))?;
        // A server listing a name twice gets its first entry kept.
        let mut seen = std::collections::HashSet::new();
        tools.retain(|tool| seen.insert(tool.name.clone()));
        Ok(tools.into_iter().map(|tool| discovered(id, tool)).collect())
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
        let secret = spec.secret();
        let session = self.session(id, version, spec, settings).await.map_err(|failure| failure.redacted(secret))?;
        let mut params = CallToolRequestParams::new(tool.to_owned());
        if let Value::Object(arguments) = arguments {
            params = params.with_arguments(arguments);
        }
        // The trace goes on to the server in the request's `_meta` (MCP's SEP-414), and in the HTTP
        // headers too (`traced_http.rs`).
        let trace = crate::telemetry::current_trace_context();
        if !trace.is_empty() {
            let fields = trace.into_iter().map(|(field, value)| (field, Value::String(value))).collect();
            params.meta = Some(RequestMetaObject(MetaObject(fields)));
        }
        match within(settings.call_timeout, session.peer().call_tool(params)).await {
            Ok(result) => result_value(&result).map_err(|failure| failure.redacted(secret)),
            Err(failure) => {
                // A session that timed out or broke may be wedged: the next call opens a new one.
                self.close(id).await;
                Err(failure.redacted(secret))
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
            let mut sessions = self.sessions.lock().await;
            sessions.retain(|_, pooled| pooled.last_used.elapsed() < IDLE);
            if let Some(pooled) = sessions.get_mut(&id).filter(|pooled| pooled.version == version)
                && !pooled.session.peer().is_transport_closed()
            {
                pooled.last_used = std::time::Instant::now();
                return Ok(Arc::clone(&pooled.session));
            }
        }
        // Checked again at every new session: the operator's allowances may have changed since the URL
        // was saved (names are also checked by the resolver at every connection; IP literals only here).
        if let Transport::StreamableHttp { url } = &spec.transport {
            self.outbound.check(url).await.map_err(|error| CallFailure::Unreachable(error.to_string()))?;
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
        let pooled = Pooled { version, session: Arc::clone(&session), last_used: std::time::Instant::now() };
        self.sessions.lock().await.insert(id, pooled);
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
            let transport = StreamableHttpClientTransport::with_client(TracedHttp(http.clone()), config);
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

/// What a tool produced, as JSON: its structured content when it gives one, else its content blocks —
/// each text block parsed as JSON when it is JSON (one block: that value; several: an array), other
/// blocks named but not passed on.
fn result_value(result: &CallToolResult) -> Result<Value, CallFailure> {
    let mut blocks: Vec<Value> = result
        .content
        .iter()
        .map(|block| match block {
            ContentBlock::Text(text) => {
                serde_json::from_str(&text.text).unwrap_or_else(|_| Value::String(text.text.clone()))
            }
            _ => Value::String("[non-text content omitted]".to_owned()),
        })
        .collect();
    let content = if blocks.len() == 1 { blocks.remove(0) } else { Value::Array(blocks) };
    if result.is_error == Some(true) {
        return Err(CallFailure::Tool(content));
    }
    Ok(result.structured_content.clone().unwrap_or(content))
}
