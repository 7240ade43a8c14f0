//! The operator's settings for tools: which stdio servers tenants may start, how long connecting and
//! calling may take, and where OAuth sends browsers back.

use std::collections::BTreeMap;
use std::time::Duration;

/// Stdio MCP servers the operator allows, by name: tenants choose one by name and never write a command
/// line. From `SWITCHBOARD_MCP_STDIO_SERVERS`, a JSON object `{"name": ["program", "arg", …]}`.
#[derive(Debug, Clone, Default)]
pub struct StdioServers {
    servers: BTreeMap<String, Vec<String>>,
}

impl StdioServers {
    pub fn parse(json: &str) -> Result<Self, String> {
        let servers: BTreeMap<String, Vec<String>> =
            serde_json::from_str(json).map_err(|error| format!("expected {{\"name\": [\"program\", …]}}: {error}"))?;
        if let Some((name, _)) = servers.iter().find(|(_, command)| command.is_empty()) {
            return Err(format!("`{name}` has an empty command line"));
        }
        Ok(Self { servers })
    }

    pub fn from_entries(entries: impl IntoIterator<Item = (String, Vec<String>)>) -> Self {
        Self { servers: entries.into_iter().filter(|(_, command)| !command.is_empty()).collect() }
    }

    pub fn allows(&self, name: &str) -> bool {
        self.servers.contains_key(name)
    }

    /// The program and its arguments for an allowed server.
    pub fn command_line(&self, name: &str) -> Option<&[String]> {
        self.servers.get(name).map(Vec::as_slice)
    }
}

#[derive(Debug, Clone)]
pub struct ToolSettings {
    pub stdio_servers: StdioServers,
    /// Connecting and the MCP handshake.
    pub connect_timeout: Duration,
    /// One `tools/call` (and one `tools/list` page).
    pub call_timeout: Duration,
    /// Model steps in one turn: a model that keeps calling tools is stopped here.
    pub max_steps: u32,
    /// Where browsers and authorization servers reach this service (`SWITCHBOARD_PUBLIC_URL`): OAuth
    /// connectors' redirect URI and client metadata document are under it. `None`: the admin's request's
    /// own `Host`, over http (a service embedded in tests).
    pub public_url: Option<String>,
}

impl Default for ToolSettings {
    fn default() -> Self {
        Self {
            stdio_servers: StdioServers::default(),
            connect_timeout: Duration::from_secs(10),
            call_timeout: Duration::from_secs(30),
            max_steps: 8,
            public_url: None,
        }
    }
}
