//! MCP sessions with tenants' tool servers, over rmcp: opened on first use, shared by every turn that
//! calls the same connector, replaced when the connector changes or the session breaks, and closed when
//! the connector is deleted. Every connection and every call has a deadline, so a hung server costs a
//! turn a timeout, never the turn.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderName, HeaderValue};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ElicitRequestParams, GetPromptRequestParams,
    InputRequest, InputRequiredResult, MetaObject, Prompt, ReadResourceRequestParams, RequestMetaObject,
    ResourceContents, Tool,
};
use rmcp::service::{ClientInitializeError, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientLifecycleMode, ClientServiceExt as _, RoleClient};
use secrecy::ExposeSecret as _;
use serde_json::Value;
use tokio::sync::Mutex;

use super::authorization::{NoToken, TokenKeeper};
use super::connectors::{Auth, ConnectorSpec, OAuthAuth, Transport};
use super::elicitation::{Asker, InputGiven, InputNeeded};
use super::mcp_revision::{self, Revisions};
use super::settings::ToolSettings;
use super::traced_http::TracedHttp;
use super::{DiscoveredPrompt, DiscoveredResource, DiscoveredTool, Offerings, PromptArgumentInfo, PromptMessage};
use crate::ids::ConnectorId;
use crate::outbound::OutboundPolicy;

type Session = RunningService<RoleClient, Asker>;

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
    /// An OAuth connector without a working grant: an admin must authorize it (again).
    #[error("the connector needs authorization: {0}")]
    NeedsAuthorization(String),
}

impl From<NoToken> for CallFailure {
    fn from(missing: NoToken) -> Self {
        match missing {
            NoToken::NeedsAuthorization(reason) => Self::NeedsAuthorization(reason),
            NoToken::Unreachable(reason) => Self::Unreachable(reason),
        }
    }
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
            Self::NeedsAuthorization(text) => Self::NeedsAuthorization(clean(text)),
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
            Self::NeedsAuthorization(_) => "tool_needs_authorization",
        }
    }
}

struct Pooled {
    /// The connector's `updated_at` when the session was opened: a changed connector gets a new session.
    version: DateTime<Utc>,
    /// The SHA-256 of the credential it was opened with: a refreshed OAuth token gets a new session.
    credential: Option<Vec<u8>>,
    session: Arc<Session>,
    last_used: std::time::Instant,
}

/// A session unused this long is closed (its stdio child process ends with it).
const IDLE: Duration = Duration::from_mins(10);

/// The open sessions, one per connector, and the HTTP client they share.
#[derive(Clone)]
pub struct McpClients {
    sessions: Arc<Mutex<HashMap<ConnectorId, Pooled>>>,
    /// The MCP revision each connector's server speaks, so a new session need not probe for it.
    revisions: Revisions,
    /// Resolves names through the outbound policy: a connector's host cannot be re-pointed inside.
    http: reqwest::Client,
    outbound: OutboundPolicy,
    /// Reads and refreshes OAuth connectors' tokens (`Toolbox::with_database`).
    keeper: Option<TokenKeeper>,
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
        Self {
            sessions: Arc::default(),
            revisions: Revisions::default(),
            http,
            outbound: outbound.clone(),
            keeper: None,
        }
    }

    pub(super) fn with_token_keeper(self, keeper: TokenKeeper) -> Self {
        Self { keeper: Some(keeper), ..self }
    }

    /// The connectors' HTTP client (the outbound policy's resolver, no redirects), which OAuth uses too.
    pub(super) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Calls a tool. It produces JSON (its structured content when it gives one, else its text, parsed
    /// when it is JSON), or asks the person for input (MCP elicitation under the 2026-07-28 revision):
    /// the call is then made again with `request.input`, however much later.
    pub async fn call(
        &self,
        id: ConnectorId,
        version: DateTime<Utc>,
        spec: &ConnectorSpec,
        settings: &ToolSettings,
        request: ToolRequest<'_>,
    ) -> Result<Called, CallFailure> {
        self.request(id, version, spec, settings, |session| async move {
            let mut params = CallToolRequestParams::new(request.tool.to_owned());
            if let Value::Object(arguments) = request.arguments {
                params = params.with_arguments(arguments);
            }
            if let Some(given) = request.input {
                params.input_responses = Some([(given.key.clone(), given.result.clone())].into_iter().collect());
                params.request_state.clone_from(&given.request_state);
            }
            // The trace goes on to the server in the request's `_meta` (MCP's SEP-414), and in the HTTP
            // headers too (`traced_http.rs`).
            let trace = crate::telemetry::current_trace_context();
            if !trace.is_empty() {
                let fields = trace.into_iter().map(|(field, value)| (field, Value::String(value))).collect();
                params.meta = Some(RequestMetaObject(MetaObject(fields)));
            }
            match within(settings.call_timeout, session.peer().call_tool_once(params)).await? {
                CallToolResponse::Complete(result) => result_value(&result).map(Called::Done),
                CallToolResponse::InputRequired(asked) => question(asked).map(Called::NeedsInput),
                _ => {
                    Err(CallFailure::Protocol("the server answered with a task, which Switchboard does not use".into()))
                }
            }
        })
        .await
    }

    /// Everything the server offers (every page of each list): its tools, and its resources, resource
    /// templates and prompts when its capabilities say it has them.
    pub async fn discover(
        &self,
        id: ConnectorId,
        version: DateTime<Utc>,
        spec: &ConnectorSpec,
        settings: &ToolSettings,
    ) -> Result<Offerings, CallFailure> {
        self.request(id, version, spec, settings, |session| async move {
            let peer = session.peer();
            let limit = settings.call_timeout;
            let mut tools = within(limit, peer.list_all_tools()).await?;
            // A server listing a name twice gets its first entry kept.
            let mut seen = std::collections::HashSet::new();
            tools.retain(|tool| seen.insert(tool.name.clone()));
            let capabilities = peer.peer_info().map(|info| info.capabilities.clone()).unwrap_or_default();
            let mut resources = Vec::new();
            if capabilities.resources.is_some() {
                let listed = within(limit, peer.list_all_resources()).await?;
                resources.extend(listed.into_iter().map(|resource| DiscoveredResource {
                    connector_id: id,
                    uri: resource.uri,
                    template: false,
                    name: resource.name,
                    title: resource.title,
                    description: resource.description,
                    mime_type: resource.mime_type,
                    size_bytes: resource.size.and_then(|size| i64::try_from(size).ok()),
                }));
                let templates = within(limit, peer.list_all_resource_templates()).await?;
                resources.extend(templates.into_iter().map(|template| DiscoveredResource {
                    connector_id: id,
                    uri: template.uri_template,
                    template: true,
                    name: template.name,
                    title: template.title,
                    description: template.description,
                    mime_type: template.mime_type,
                    size_bytes: None,
                }));
                let mut seen = std::collections::HashSet::new();
                resources.retain(|resource| seen.insert((resource.template, resource.uri.clone())));
            }
            let mut prompts = Vec::new();
            if capabilities.prompts.is_some() {
                let mut seen = std::collections::HashSet::new();
                for prompt in within(limit, peer.list_all_prompts()).await? {
                    if seen.insert(prompt.name.clone()) {
                        prompts.push(discovered_prompt(id, prompt));
                    }
                }
            }
            Ok(Offerings { tools: tools.into_iter().map(|tool| discovered(id, tool)).collect(), resources, prompts })
        })
        .await
    }

    /// Reads a resource: each of its parts, text or binary.
    pub async fn read_resource(
        &self,
        id: ConnectorId,
        version: DateTime<Utc>,
        spec: &ConnectorSpec,
        settings: &ToolSettings,
        uri: &str,
    ) -> Result<Vec<ResourcePart>, CallFailure> {
        self.request(id, version, spec, settings, |session| async move {
            let params = ReadResourceRequestParams::new(uri.to_owned());
            let read = within(settings.call_timeout, session.peer().read_resource(params)).await?;
            Ok(read.contents.into_iter().map(ResourcePart::from).collect())
        })
        .await
    }

    /// A prompt filled with `arguments`: its messages, text only (anything else is named, not passed on:
    /// an embedded resource would bypass the policy that attaching one goes through).
    pub async fn get_prompt(
        &self,
        id: ConnectorId,
        version: DateTime<Utc>,
        spec: &ConnectorSpec,
        settings: &ToolSettings,
        (name, arguments): (&str, serde_json::Map<String, Value>),
    ) -> Result<Vec<PromptMessage>, CallFailure> {
        self.request(id, version, spec, settings, |session| async move {
            let mut params = GetPromptRequestParams::new(name.to_owned());
            if !arguments.is_empty() {
                params = params.with_arguments(arguments);
            }
            let prompt = within(settings.call_timeout, session.peer().get_prompt(params)).await?;
            Ok(prompt
                .messages
                .into_iter()
                .map(|message| PromptMessage {
                    role: if message.role == rmcp::model::Role::Assistant { "assistant" } else { "user" },
                    text: match message.content {
                        ContentBlock::Text(text) => text.text,
                        _ => "[non-text content omitted]".to_owned(),
                    },
                })
                .collect())
        })
        .await
    }

    /// Runs `operation` on the connector's session. A failure other than the tool's own error closes the
    /// session (it may be wedged: the next request opens a new one); its text loses the credential.
    async fn request<T, Operation, Done>(
        &self,
        id: ConnectorId,
        version: DateTime<Utc>,
        spec: &ConnectorSpec,
        settings: &ToolSettings,
        operation: Operation,
    ) -> Result<T, CallFailure>
    where
        Operation: FnOnce(Arc<Session>) -> Done,
        Done: Future<Output = Result<T, CallFailure>>,
    {
        let oauth = match (&spec.auth, &self.keeper) {
            (Auth::OAuth(grant), Some(keeper)) => grant.tenant_id.map(|tenant_id| (grant, tenant_id, keeper)),
            _ => None,
        };
        let refreshed = match oauth {
            Some((grant, tenant_id, keeper)) => {
                let tokens = keeper.fresh(tenant_id, id).await?;
                let auth = Auth::OAuth(OAuthAuth { tokens: Some(tokens), ..grant.clone() });
                Some(ConnectorSpec { auth, ..spec.clone() })
            }
            None => None,
        };
        let spec = refreshed.as_ref().unwrap_or(spec);
        let secret = spec.secret();
        // A server that refuses an OAuth token before its time (revoked, or the server forgot it) gets a
        // refreshed one on the next request; a refused refresh then asks for authorization.
        let refused = async |failure: &CallFailure| {
            if let Some((_, tenant_id, keeper)) = oauth
                && failure.to_string().contains("Auth required")
            {
                keeper.expire(tenant_id, id).await;
            }
        };
        let session = match self.session(id, version, spec, settings).await {
            Ok(session) => session,
            Err(failure) => {
                refused(&failure).await;
                return Err(failure.redacted(secret));
            }
        };
        let outcome = operation(session).await;
        if let Err(failure) = &outcome {
            refused(failure).await;
        }
        // A tool that reported an error (`isError`) did answer: its session is sound.
        if outcome.as_ref().is_err_and(|failure| !matches!(failure, CallFailure::Tool(_))) {
            self.close(id).await;
        }
        outcome.map_err(|failure| failure.redacted(secret))
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

    /// The MCP revision the connector's server negotiated last (`2026-07-28`, `2025-11-25`, …), if it
    /// was reached since the connector last changed.
    pub fn protocol_version(&self, id: ConnectorId, version: DateTime<Utc>) -> Option<String> {
        self.revisions.known(id, version).map(|protocol| protocol.to_string())
    }

    async fn session(
        &self,
        id: ConnectorId,
        version: DateTime<Utc>,
        spec: &ConnectorSpec,
        settings: &ToolSettings,
    ) -> Result<Arc<Session>, CallFailure> {
        let credential = credential_of(spec);
        {
            let mut sessions = self.sessions.lock().await;
            sessions.retain(|_, pooled| pooled.last_used.elapsed() < IDLE);
            if let Some(pooled) =
                sessions.get_mut(&id).filter(|pooled| pooled.version == version && pooled.credential == credential)
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
        let session = Arc::new(connect(&self.http, spec, settings, (&self.revisions, id, version)).await?);
        let pooled =
            Pooled { version, credential, session: Arc::clone(&session), last_used: std::time::Instant::now() };
        self.sessions.lock().await.insert(id, pooled);
        Ok(session)
    }
}

fn credential_of(spec: &ConnectorSpec) -> Option<Vec<u8>> {
    use sha2::Digest as _;
    spec.secret().map(|secret| sha2::Sha256::digest(secret.as_bytes()).to_vec())
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

/// Opens a session in the revision the server speaks: the one it spoke last time when that is known,
/// else the 2026-07-28 revision when the server answers `server/discover`, else 2025-11-25's
/// `initialize`. A server that no longer speaks the remembered revision is probed again, once.
async fn connect(
    http: &reqwest::Client,
    spec: &ConnectorSpec,
    settings: &ToolSettings,
    (revisions, id, version): (&Revisions, ConnectorId, DateTime<Utc>),
) -> Result<Session, CallFailure> {
    let no_answer =
        || CallFailure::Unreachable(format!("no MCP handshake within {} s", settings.connect_timeout.as_secs()));
    if let Some(known) = revisions.known(id, version) {
        match open(http, spec, settings, mcp_revision::lifecycle(Some(&known))).await {
            Ok(Ok(session)) => return Ok(session),
            // It answered, but not in that revision: it may have been upgraded or replaced.
            Ok(Err(_)) => revisions.forget(id),
            // Silence says nothing of the revision; the next session probes again.
            Err(_) => {
                revisions.forget(id);
                return Err(no_answer());
            }
        }
    }
    let session = match open(http, spec, settings, mcp_revision::lifecycle(None)).await {
        Ok(opened) => opened?,
        // rmcp waits a fixed 10 s for a `server/discover` answer before it falls back to `initialize`, and
        // a server of the previous revision may ignore that method rather than refuse it (a stdio one
        // can): past our own deadline the previous revision's handshake gets a try of its own.
        Err(_) => open(http, spec, settings, ClientLifecycleMode::Initialize).await.map_err(|_| no_answer())??,
    };
    if let Some(info) = session.peer().peer_info() {
        revisions.record(id, version, info.protocol_version.clone());
    }
    Ok(session)
}

/// One handshake, under `lifecycle`, within the connect deadline (`Err`: the deadline passed).
async fn open(
    http: &reqwest::Client,
    spec: &ConnectorSpec,
    settings: &ToolSettings,
    lifecycle: ClientLifecycleMode,
) -> Result<Result<Session, CallFailure>, tokio::time::error::Elapsed> {
    tokio::time::timeout(settings.connect_timeout, handshake(http, spec, settings, lifecycle)).await
}

async fn handshake(
    http: &reqwest::Client,
    spec: &ConnectorSpec,
    settings: &ToolSettings,
    lifecycle: ClientLifecycleMode,
) -> Result<Session, CallFailure> {
    let unreachable = |error: &dyn std::fmt::Display| CallFailure::Unreachable(error.to_string());
    match &spec.transport {
        Transport::StreamableHttp { url } => {
            let mut config = StreamableHttpClientTransportConfig::with_uri(url.as_str());
            match &spec.auth {
                Auth::None => {}
                Auth::Bearer { secret } => config = config.auth_header(secret.expose_secret().to_owned()),
                // `request` has put a fresh access token here (`authorization::TokenKeeper`).
                Auth::OAuth(grant) => {
                    let tokens = grant.tokens.as_ref().ok_or_else(|| {
                        CallFailure::NeedsAuthorization("the connector has not been authorized".to_owned())
                    })?;
                    config = config.auth_header(tokens.access.expose_secret().to_owned());
                }
                Auth::ApiKey { header, secret } => {
                    let name = HeaderName::try_from(header.as_str()).map_err(|error| unreachable(&error))?;
                    let value = HeaderValue::try_from(secret.expose_secret())
                        .map_err(|_| CallFailure::Unreachable("the api key is not a valid header value".into()))?;
                    config = config.custom_headers(HashMap::from([(name, value)]));
                }
            }
            let transport = StreamableHttpClientTransport::with_client(TracedHttp(http.clone()), config);
            Asker.serve_with_lifecycle(transport, lifecycle).await.map_err(|error| refused(&error))
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
            Asker.serve_with_lifecycle(transport, lifecycle).await.map_err(|error| refused(&error))
        }
    }
}

/// A handshake's failure. rmcp's text for a probe and a fallback that both failed names neither cause.
fn refused(error: &ClientInitializeError) -> CallFailure {
    match error {
        ClientInitializeError::LegacyFallbackFailed { discover, fallback } => {
            CallFailure::Unreachable(format!("{fallback} (server/discover: {discover})"))
        }
        other => CallFailure::Unreachable(other.to_string()),
    }
}

/// A tool call as made: the tool, its arguments, and the person's answer when its server asked for one.
#[derive(Debug, Clone)]
pub struct ToolRequest<'a> {
    pub tool: &'a str,
    pub arguments: Value,
    pub input: Option<&'a InputGiven>,
}

/// What a call produced: a result, or a question for the person.
#[derive(Debug, Clone)]
pub enum Called {
    Done(Value),
    NeedsInput(InputNeeded),
}

/// The one form question an `input_required` result asks. Anything else (several questions at once, a
/// URL to open, sampling, roots) is not something a person can answer here: the call fails, saying so.
fn question(asked: InputRequiredResult) -> Result<InputNeeded, CallFailure> {
    let unsupported =
        |what: &str| CallFailure::Protocol(format!("the server asked for {what}, which Switchboard does not give"));
    let mut requests = asked.input_requests.unwrap_or_default().into_iter();
    let (Some((key, request)), None) = (requests.next(), requests.next()) else {
        return Err(unsupported("several inputs at once (or none)"));
    };
    let InputRequest::Elicitation(request) = request else { return Err(unsupported("sampling or roots")) };
    match request.params {
        ElicitRequestParams::FormElicitationParams { message, requested_schema, .. } => Ok(InputNeeded {
            key,
            message,
            requested_schema: serde_json::to_value(requested_schema).unwrap_or_default(),
            request_state: asked.request_state,
        }),
        _ => Err(unsupported("a URL to open")),
    }
}

/// One part of a read resource: its text, or `None` for binary content (a blob).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePart {
    pub mime_type: Option<String>,
    pub text: Option<String>,
}

impl From<ResourceContents> for ResourcePart {
    fn from(contents: ResourceContents) -> Self {
        match contents {
            ResourceContents::TextResourceContents { mime_type, text, .. } => Self { mime_type, text: Some(text) },
            ResourceContents::BlobResourceContents { mime_type, .. } => Self { mime_type, text: None },
            _ => Self { mime_type: None, text: None },
        }
    }
}

fn discovered_prompt(connector_id: ConnectorId, prompt: Prompt) -> DiscoveredPrompt {
    let arguments = prompt
        .arguments
        .unwrap_or_default()
        .into_iter()
        .map(|argument| PromptArgumentInfo {
            name: argument.name,
            description: argument.description,
            required: argument.required.unwrap_or(false),
        })
        .collect();
    DiscoveredPrompt {
        connector_id,
        name: prompt.name,
        qualified_name: String::new(),
        title: prompt.title,
        description: prompt.description,
        arguments: sqlx::types::Json(arguments),
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
