//! MCP connectors as the API shows them: how they are reached and the tools they expose, never their
//! credential (only whether one is configured).

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::ids::ConnectorId;
use crate::tools::DiscoveredTool;
use crate::tools::connectors::{AuthView, Connector};

#[derive(Debug, Serialize)]
pub struct ConnectorView {
    pub id: ConnectorId,
    pub name: String,
    pub transport: &'static str,
    pub url: Option<String>,
    pub command: Option<String>,
    pub args: Vec<String>,
    pub auth: ConnectorAuthView,
    pub status: String,
    pub last_error: Option<String>,
    pub refreshed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub tools: Vec<DiscoveredToolView>,
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
            created_at: connector.created_at,
            updated_at: connector.updated_at,
            tools: connector.tools.iter().map(DiscoveredToolView::from).collect(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ConnectorAuthView {
    pub kind: &'static str,
    pub header: Option<String>,
    pub token_configured: bool,
}

impl From<&AuthView> for ConnectorAuthView {
    fn from(auth: &AuthView) -> Self {
        Self { kind: auth.kind, header: auth.header.clone(), token_configured: auth.token_configured }
    }
}

/// A tool as its server reported it; the connector it belongs to is the object around it.
#[derive(Debug, Serialize)]
pub struct DiscoveredToolView {
    pub name: String,
    pub qualified_name: String,
    pub description: Option<String>,
    pub input_schema: serde_json::Value,
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

#[derive(Debug, Serialize)]
pub struct ConnectorList {
    pub connectors: Vec<ConnectorView>,
}

impl ConnectorList {
    pub fn new(connectors: &[Connector]) -> Self {
        Self { connectors: connectors.iter().map(ConnectorView::from).collect() }
    }
}
