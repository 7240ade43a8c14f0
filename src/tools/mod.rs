//! Tools: the tenant's MCP servers (connectors), the tools they expose, and calling them. The engine asks
//! this module which tools a turn may offer and runs the calls the policy allows; the policy itself lives
//! in `policy`, the HTTP doors in `http::connectors`.

pub mod attachments;
pub mod authorization;
pub mod calls;
pub mod connectors;
pub mod elicitation;
mod mcp;
mod mcp_revision;
pub mod oauth;
pub mod prompts;
pub mod names;
pub mod settings;
pub mod store;
mod traced_http;

use std::sync::Arc;

use serde::Serialize;
use sqlx::{PgConnection, PgPool};

use crate::audit::{self, AuditEntry, Recorder};
use crate::auth::context::TenantContext;
use crate::crypto::{CryptoError, MasterKeys};
use crate::db;
use crate::ids::{ConnectorId, TenantId};
use crate::outbound::OutboundPolicy;
use connectors::{Connector, ConnectorInput, ConnectorSpec, Rules};
pub use mcp::{CallFailure, Called, McpClients, ToolRequest};
use settings::ToolSettings;
use store::ConnectorRow;

#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("{0}")]
    Invalid(String),
    #[error("no such connector")]
    NotFound,
    #[error("a connector named `{0}` already exists")]
    NameTaken(String),
    #[error("no such conversation")]
    SessionNotFound,
    #[error("no such attached resource")]
    AttachmentNotFound,
    #[error("no such prompt")]
    PromptNotFound,
    #[error("{0}")]
    ResourceNotAllowed(String),
    #[error("{0}")]
    UnsupportedResource(String),
    #[error("the resource holds {bytes} bytes of text after the policy; at most {limit} may be attached")]
    ResourceTooLarge { bytes: usize, limit: usize },
    #[error("a conversation may have at most {0} resources attached")]
    TooManyResources(i64),
    /// The connector's server failed the request (its text holds no credential).
    #[error("{0}")]
    Upstream(CallFailure),
    /// An OAuth authorization could not start or complete (the text names no secret).
    #[error("{0}")]
    OAuth(String),
    /// The callback's `state` is unknown, used already or expired.
    #[error("this authorization link is unknown, used already or expired: start the authorization again")]
    OAuthState,
    #[error("a stored connector credential cannot be opened: {0}")]
    Crypto(#[from] CryptoError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// A tool a connector reported, with the annotations the policy reads.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct DiscoveredTool {
    #[serde(skip)]
    pub connector_id: ConnectorId,
    pub name: String,
    /// `connector.tool`, the name policies match.
    #[sqlx(default)]
    pub qualified_name: String,
    pub description: Option<String>,
    pub input_schema: serde_json::Value,
    pub annotations: Option<serde_json::Value>,
    pub read_only: bool,
}

/// A resource a connector lists, or a template of resource URIs (RFC 6570) it reads on demand.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct DiscoveredResource {
    #[serde(skip)]
    pub connector_id: ConnectorId,
    /// The resource's URI, or the template's (`template`).
    pub uri: String,
    pub template: bool,
    pub name: String,
    pub title: Option<String>,
    pub description: Option<String>,
    pub mime_type: Option<String>,
    pub size_bytes: Option<i64>,
}

/// A prompt a connector offers: a message template that people (the widget, the IDE) fill in.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct DiscoveredPrompt {
    #[serde(skip)]
    pub connector_id: ConnectorId,
    pub name: String,
    /// `connector.prompt`, the name the prompts API takes.
    #[sqlx(default)]
    pub qualified_name: String,
    pub title: Option<String>,
    pub description: Option<String>,
    pub arguments: sqlx::types::Json<Vec<PromptArgumentInfo>>,
}

/// One argument a prompt takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct PromptArgumentInfo {
    pub name: String,
    pub description: Option<String>,
    pub required: bool,
}

/// A message of a filled-in prompt: its role (`user` or `assistant`) and its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PromptMessage {
    pub role: &'static str,
    pub text: String,
}

/// What discovery found on a server.
#[derive(Debug, Clone, Default)]
pub struct Offerings {
    pub tools: Vec<DiscoveredTool>,
    pub resources: Vec<DiscoveredResource>,
    pub prompts: Vec<DiscoveredPrompt>,
}

impl Offerings {
    /// Takes out what one connector offers (of what several offer).
    fn take(&mut self, connector: ConnectorId) -> Self {
        Self {
            tools: self.tools.extract_if(.., |tool| tool.connector_id == connector).collect(),
            resources: self.resources.extract_if(.., |resource| resource.connector_id == connector).collect(),
            prompts: self.prompts.extract_if(.., |prompt| prompt.connector_id == connector).collect(),
        }
    }
}

/// Everything tools need from the service: the operator's settings, the pooled MCP sessions, the keys
/// that open connector credentials and the rule for outbound URLs.
#[derive(Debug, Clone)]
pub struct Toolbox {
    pub settings: Arc<ToolSettings>,
    pub clients: McpClients,
    pub keys: Arc<MasterKeys>,
    pub outbound: OutboundPolicy,
}

impl Toolbox {
    pub fn new(settings: ToolSettings, keys: Arc<MasterKeys>, outbound: OutboundPolicy) -> Self {
        Self { settings: Arc::new(settings), clients: McpClients::new(&outbound), keys, outbound }
    }

    /// Lets OAuth connectors' connections read, refresh and store their grant's tokens. Without it (a
    /// service without a database, as some tests build), they send the token their spec was read with.
    #[must_use]
    pub fn with_database(mut self, db: &PgPool) -> Self {
        let keeper = authorization::TokenKeeper {
            db: db.clone(),
            keys: Arc::clone(&self.keys),
            http: self.clients.http().clone(),
            outbound: self.outbound.clone(),
        };
        self.clients = self.clients.with_token_keeper(keeper);
        self
    }

    fn rules(&self) -> Rules<'_> {
        Rules { outbound: &self.outbound, stdio: &self.settings.stdio_servers }
    }
}

pub async fn create(
    pool: &PgPool,
    toolbox: &Toolbox,
    context: &TenantContext,
    input: ConnectorInput,
) -> Result<Connector, ToolError> {
    let spec = ConnectorSpec::parse(input, None, toolbox.rules()).await?;
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let row = connectors::save(&mut transaction, &toolbox.keys, context.tenant_id(), ConnectorId::new(), &spec)
        .await?
        .ok_or_else(|| ToolError::NameTaken(spec.name.clone()))?;
    audited(&mut transaction, context, "mcp_connector.created", &row, &spec).await?;
    transaction.commit().await?;
    // Discovery right away, so the answer shows the tools (or why there are none).
    refresh(pool, toolbox, context, row.id).await
}

pub async fn update(
    pool: &PgPool,
    toolbox: &Toolbox,
    context: &TenantContext,
    id: ConnectorId,
    input: ConnectorInput,
) -> Result<Connector, ToolError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let current = store::find_connector(&mut transaction, id).await?.ok_or(ToolError::NotFound)?;
    let spec = ConnectorSpec::parse(input, Some(current.spec(&toolbox.keys)?), toolbox.rules()).await?;
    let row = connectors::save(&mut transaction, &toolbox.keys, context.tenant_id(), id, &spec)
        .await?
        .ok_or_else(|| ToolError::NameTaken(spec.name.clone()))?;
    audited(&mut transaction, context, "mcp_connector.updated", &row, &spec).await?;
    transaction.commit().await?;
    toolbox.clients.close(id).await;
    refresh(pool, toolbox, context, id).await
}

pub async fn delete(
    pool: &PgPool,
    toolbox: &Toolbox,
    context: &TenantContext,
    id: ConnectorId,
) -> Result<(), ToolError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    if !store::delete_connector(&mut transaction, id).await? {
        return Err(ToolError::NotFound);
    }
    audit::record(
        &mut transaction,
        context,
        &AuditEntry::new("mcp_connector.deleted", "mcp_connector", id.to_string()),
    )
    .await?;
    transaction.commit().await?;
    toolbox.clients.close(id).await;
    Ok(())
}

pub async fn list(pool: &PgPool, context: &TenantContext) -> Result<Vec<Connector>, ToolError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let rows = store::list_connectors(&mut transaction).await?;
    let mut offerings = store::offerings(&mut transaction, None).await?;
    transaction.commit().await?;
    Ok(rows.into_iter().map(|row| row.view(with_qualified_names(&row.name, offerings.take(row.id)))).collect())
}

pub async fn get(pool: &PgPool, context: &TenantContext, id: ConnectorId) -> Result<Connector, ToolError> {
    get_of(pool, context.tenant_id(), id).await
}

async fn get_of(pool: &PgPool, tenant_id: TenantId, id: ConnectorId) -> Result<Connector, ToolError> {
    let mut transaction = db::begin_tenant(pool, tenant_id).await?;
    let row = store::find_connector(&mut transaction, id).await?.ok_or(ToolError::NotFound)?;
    let offerings = store::offerings(&mut transaction, Some(id)).await?;
    transaction.commit().await?;
    Ok(row.view(with_qualified_names(&row.name, offerings)))
}

/// Connects (afresh), lists the server's tools (with their annotations), resources and prompts, and stores
/// them; a failure is
/// stored as the connector's status and last error, and the connector is returned either way.
pub async fn refresh(
    pool: &PgPool,
    toolbox: &Toolbox,
    context: &TenantContext,
    id: ConnectorId,
) -> Result<Connector, ToolError> {
    rediscover(pool, toolbox, &Recorder::of(context), id).await
}

/// [`refresh`] for whoever `recorder` names (the OAuth callback has no request context).
async fn rediscover(
    pool: &PgPool,
    toolbox: &Toolbox,
    recorder: &Recorder<'_>,
    id: ConnectorId,
) -> Result<Connector, ToolError> {
    let tenant_id = recorder.tenant_id;
    let mut transaction = db::begin_tenant(pool, tenant_id).await?;
    let row = store::find_connector(&mut transaction, id).await?.ok_or(ToolError::NotFound)?;
    transaction.commit().await?;
    let spec = row.spec(&toolbox.keys)?;
    toolbox.clients.close(id).await;
    // An OAuth connector nobody has authorized yet is not reached: it waits for an admin.
    let unauthorized = matches!(&spec.auth, connectors::Auth::OAuth(grant) if grant.tokens.is_none());
    let listed = if unauthorized {
        let reason = row.last_error.clone().filter(|_| row.status == "needs_authorization");
        Err(CallFailure::NeedsAuthorization(reason.unwrap_or_else(|| authorization::not_yet_authorized(id))))
    } else {
        toolbox.clients.discover(id, row.updated_at, &spec, &toolbox.settings).await
    };
    let mut transaction = db::begin_tenant(pool, tenant_id).await?;
    match &listed {
        Ok(offerings) => {
            store::replace_offerings(&mut transaction, tenant_id, id, offerings).await?;
            store::set_connector_status(&mut transaction, id, None).await?;
            let protocol_version = toolbox.clients.protocol_version(id, row.updated_at);
            store::set_connector_protocol_version(&mut transaction, id, protocol_version.as_deref()).await?;
        }
        Err(CallFailure::NeedsAuthorization(reason)) => {
            store::replace_offerings(&mut transaction, tenant_id, id, &Offerings::default()).await?;
            store::set_connector_needs_authorization(&mut transaction, id, reason).await?;
        }
        Err(error) => {
            tracing::warn!(connector_id = %id, %error, "tool discovery failed");
            store::set_connector_status(&mut transaction, id, Some(&error.to_string())).await?;
        }
    }
    let details = match &listed {
        Ok(offerings) => serde_json::json!({
            "status": "active", "tools": offerings.tools.len(), "resources": offerings.resources.len(),
            "prompts": offerings.prompts.len(),
        }),
        Err(error @ CallFailure::NeedsAuthorization(_)) => {
            serde_json::json!({ "status": "needs_authorization", "error": error.to_string() })
        }
        Err(error) => serde_json::json!({ "status": "error", "error": error.to_string() }),
    };
    let entry = AuditEntry::new("mcp_connector.refreshed", "mcp_connector", id.to_string()).with_details(details);
    audit::store::append(&mut transaction, recorder, &entry).await?;
    transaction.commit().await?;
    get_of(pool, tenant_id, id).await
}

fn with_qualified_names(connector: &str, offerings: Offerings) -> Offerings {
    let tools = offerings
        .tools
        .into_iter()
        .map(|tool| DiscoveredTool { qualified_name: names::qualified(connector, &tool.name), ..tool })
        .collect();
    let prompts = offerings
        .prompts
        .into_iter()
        .map(|prompt| DiscoveredPrompt { qualified_name: names::qualified(connector, &prompt.name), ..prompt })
        .collect();
    Offerings { tools, prompts, ..offerings }
}

async fn audited(
    connection: &mut PgConnection,
    context: &TenantContext,
    action: &'static str,
    row: &ConnectorRow,
    spec: &ConnectorSpec,
) -> Result<(), sqlx::Error> {
    let view = row.view(Offerings::default());
    // Names, address and auth kind only: the credential never reaches the trail.
    let details = serde_json::json!({
        "name": spec.name, "transport": view.transport, "url": view.url, "command": view.command,
        "args": view.args, "auth": view.auth.kind,
    });
    audit::record(
        connection,
        context,
        &AuditEntry::new(action, "mcp_connector", row.id.to_string()).with_details(details),
    )
    .await
}
