//! MCP connectors as the API shows them: how they are reached and the tools they expose, never their
//! credential (only whether one is configured).

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::ids::ConnectorId;
use crate::tools::connectors::{AuthView, Connector};
use crate::tools::{DiscoveredPrompt, DiscoveredResource, DiscoveredTool, PromptArgumentInfo, PromptMessage};

/// An MCP connector: how its server is reached, and the tools it last reported.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectorView {
    #[schema(value_type = uuid::Uuid)]
    pub id: ConnectorId,
    pub name: String,
    #[schema(value_type = ConnectorTransport)]
    pub transport: &'static str,
    /// The server's URL (`streamable_http`).
    pub url: Option<String>,
    /// The allowed stdio server (`stdio`).
    pub command: Option<String>,
    pub args: Vec<String>,
    pub auth: ConnectorAuthView,
    /// `pending` until the server is first reached, then `active`, or `error` when the last try failed.
    #[schema(value_type = ConnectorStatus)]
    pub status: String,
    pub last_error: Option<String>,
    pub refreshed_at: Option<DateTime<Utc>>,
    /// The MCP revision its server spoke in the last discovery: `2026-07-28` when it answers that
    /// revision, else what its `initialize` settled on (`2025-11-25` or older). None until it is reached.
    pub protocol_version: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub tools: Vec<DiscoveredToolView>,
    /// The resources and resource templates it lists (when its server has resources).
    pub resources: Vec<DiscoveredResourceView>,
    /// The prompts it offers (when its server has prompts).
    pub prompts: Vec<PromptView>,
}

impl From<&Connector> for ConnectorView {
    fn from(connector: &Connector) -> Self {
        Self {
            id: connector.id,
            name: connector.name.clone(),
            transport: connector.transport,
            url: connector.url.clone(),
            command: connector.command.clone(),
            args: connector.args.clone(),
            auth: ConnectorAuthView::from(&connector.auth),
            status: connector.status.clone(),
            last_error: connector.last_error.clone(),
            refreshed_at: connector.refreshed_at,
            protocol_version: connector.protocol_version.clone(),
            created_at: connector.created_at,
            updated_at: connector.updated_at,
            tools: connector.tools.iter().map(DiscoveredToolView::from).collect(),
            resources: connector.resources.iter().map(DiscoveredResourceView::from).collect(),
            prompts: connector.prompts.iter().map(PromptView::from).collect(),
        }
    }
}

/// The connector's credential, never its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectorAuthView {
    #[schema(value_type = ConnectorAuthKind)]
    pub kind: &'static str,
    /// The header an `api_key` is sent in.
    pub header: Option<String>,
    /// Whether a credential is stored: for `oauth`, whether an admin has authorized it.
    pub token_configured: bool,
    /// For `oauth`: the scope asked for (by default the server's `scopes_supported`).
    pub scope: Option<String>,
    /// For `oauth`: when the access token expires; it is refreshed before.
    pub token_expires_at: Option<DateTime<Utc>>,
}

impl From<&AuthView> for ConnectorAuthView {
    fn from(auth: &AuthView) -> Self {
        Self {
            kind: auth.kind,
            header: auth.header.clone(),
            token_configured: auth.token_configured,
            scope: auth.scope.clone(),
            token_expires_at: auth.token_expires_at,
        }
    }
}

/// An OAuth authorization started: open `authorization_url` in a browser.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuthorizationView {
    pub authorization_url: String,
    /// The URL works once, until then.
    pub expires_at: DateTime<Utc>,
}

/// A tool as its server reported it; the connector it belongs to is the object around it.
#[derive(Debug, Serialize, ToSchema)]
pub struct DiscoveredToolView {
    pub name: String,
    /// `connector.tool`, the name policies match.
    pub qualified_name: String,
    pub description: Option<String>,
    /// The JSON Schema of the tool's arguments, as its server gave it.
    #[schema(value_type = Object)]
    pub input_schema: serde_json::Value,
    /// MCP's tool annotations (`readOnlyHint`, …), as its server gave them.
    #[schema(value_type = Option<Object>)]
    pub annotations: Option<serde_json::Value>,
    pub read_only: bool,
}

impl From<&DiscoveredTool> for DiscoveredToolView {
    fn from(tool: &DiscoveredTool) -> Self {
        Self {
            name: tool.name.clone(),
            qualified_name: tool.qualified_name.clone(),
            description: tool.description.clone(),
            input_schema: tool.input_schema.clone(),
            annotations: tool.annotations.clone(),
            read_only: tool.read_only,
        }
    }
}

/// A resource a connector's server lists, or a template of the URIs it reads (`template`).
#[derive(Debug, Serialize, ToSchema)]
pub struct DiscoveredResourceView {
    /// The resource's URI, or an RFC 6570 URI template (`template`); attach it to a conversation with
    /// `POST /api/v1/sessions/{id}/resources`.
    pub uri: String,
    pub template: bool,
    pub name: String,
    pub title: Option<String>,
    pub description: Option<String>,
    pub mime_type: Option<String>,
    pub size_bytes: Option<i64>,
}

impl From<&DiscoveredResource> for DiscoveredResourceView {
    fn from(resource: &DiscoveredResource) -> Self {
        Self {
            uri: resource.uri.clone(),
            template: resource.template,
            name: resource.name.clone(),
            title: resource.title.clone(),
            description: resource.description.clone(),
            mime_type: resource.mime_type.clone(),
            size_bytes: resource.size_bytes,
        }
    }
}

/// A prompt a connector's server offers: a message template a person fills in.
#[derive(Debug, Serialize, ToSchema)]
pub struct PromptView {
    pub name: String,
    /// `connector.prompt`, the name `POST /api/v1/mcp-prompts/{name}/fill` takes.
    pub qualified_name: String,
    pub title: Option<String>,
    pub description: Option<String>,
    pub arguments: Vec<PromptArgumentView>,
}

impl From<&DiscoveredPrompt> for PromptView {
    fn from(prompt: &DiscoveredPrompt) -> Self {
        Self {
            name: prompt.name.clone(),
            qualified_name: prompt.qualified_name.clone(),
            title: prompt.title.clone(),
            description: prompt.description.clone(),
            arguments: prompt.arguments.iter().map(PromptArgumentView::from).collect(),
        }
    }
}

/// An argument of a prompt: always a string.
#[derive(Debug, Serialize, ToSchema)]
pub struct PromptArgumentView {
    pub name: String,
    pub description: Option<String>,
    pub required: bool,
}

impl From<&PromptArgumentInfo> for PromptArgumentView {
    fn from(argument: &PromptArgumentInfo) -> Self {
        Self { name: argument.name.clone(), description: argument.description.clone(), required: argument.required }
    }
}

/// The prompts of the tenant's active connectors.
#[derive(Debug, Serialize, ToSchema)]
pub struct PromptList {
    pub prompts: Vec<PromptView>,
}

impl PromptList {
    pub fn new(prompts: &[DiscoveredPrompt]) -> Self {
        Self { prompts: prompts.iter().map(PromptView::from).collect() }
    }
}

/// A filled-in prompt: the messages to put in the composer, in order.
#[derive(Debug, Serialize, ToSchema)]
pub struct FilledPrompt {
    pub messages: Vec<PromptMessageView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PromptMessageView {
    /// `user` or `assistant`.
    pub role: &'static str,
    pub text: String,
}

impl FilledPrompt {
    pub fn new(messages: Vec<PromptMessage>) -> Self {
        Self {
            messages: messages
                .into_iter()
                .map(|message| PromptMessageView { role: message.role, text: message.text })
                .collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectorList {
    pub connectors: Vec<ConnectorView>,
}

impl ConnectorList {
    pub fn new(connectors: &[Connector]) -> Self {
        Self { connectors: connectors.iter().map(ConnectorView::from).collect() }
    }
}

// Schemas only: the view's fields are the connector's stored text, one of these.

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[expect(dead_code, reason = "a schema: `ConnectorView::transport` is text")]
pub enum ConnectorTransport {
    StreamableHttp,
    Stdio,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[expect(dead_code, reason = "a schema: `ConnectorView::status` is text")]
pub enum ConnectorStatus {
    Pending,
    Active,
    Error,
    /// An OAuth connector not authorized yet, or whose grant the authorization server no longer honours.
    NeedsAuthorization,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[expect(dead_code, reason = "a schema: `ConnectorAuthView::kind` is text")]
pub enum ConnectorAuthKind {
    None,
    ApiKey,
    Bearer,
    Oauth,
}
