//! The tools a turn may use: the policy profile in force for its run (its key's own, else its end user's
//! group's, else the tenant's active one: `policy::store::effective`) over the tenant's connectors'
//! discovered tools (what the model is shown, and what it is refused with the policy's own reason), plus
//! an agent run's built-in workspace tools (`run_checks` among them when its workspace has checks).

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::Inner;
use super::plan::{TurnFailure, TurnPlan};
use crate::db;
use crate::ids::{ConnectorId, WorkspaceId};
use crate::policy::{self, Policy};
use crate::providers::ToolSpec;
use crate::runs::events::AppliedPolicy;
use crate::tools::connectors::ConnectorSpec;
use crate::tools::names::{self, WireNames};
use crate::tools::store as connector_store;

/// What a turn may use: the policy and the tools it lets the model see.
#[derive(Default)]
pub(super) struct TurnTools {
    /// The profile in force, its id and version, and where it came from (key, group or tenant).
    pub policy: Option<(Policy, AppliedPolicy)>,
    pub names: WireNames,
    pub offered: HashMap<String, Offered>,
    /// Tools the connectors have but the policy hides, by qualified name, with their read-only hint: a
    /// model naming one anyway is refused with the policy's own reason.
    pub hidden: HashMap<String, bool>,
    /// An agent run's built-in workspace tools, by qualified name (`workspace.read_file`).
    pub builtin: HashMap<String, (WorkspaceId, &'static str)>,
    pub specs: Vec<ToolSpec>,
    /// The profile in force in a line, for the system prompt (read once, with the tools it decides).
    pub policy_summary: String,
}

pub(super) struct Offered {
    pub connector_id: ConnectorId,
    pub connector_version: DateTime<Utc>,
    pub connector: Arc<ConnectorSpec>,
    pub tool: String,
    pub read_only: bool,
}

impl TurnTools {
    /// No policy profile in force means no tools: tools are something a tenant turns on. The profile is
    /// resolved once here, for every step of the turn, from the run's key and end user.
    pub async fn load(inner: &Inner, plan: &TurnPlan) -> Result<Self, TurnFailure> {
        let mut tools = Self::default();
        let mut transaction = db::begin_tenant_patiently(&inner.db, plan.tenant_id).await?;
        if let Some(workspace_id) = plan.workspace_id {
            let workspace = crate::workspaces::store::get(&mut transaction, workspace_id).await?;
            let has_checks = workspace.is_some_and(|workspace| !workspace.checks.is_empty());
            for (tool, spec) in crate::workspaces::tools::tool_specs(has_checks) {
                let qualified = names::qualified("workspace", tool);
                let wire = tools.names.add(&qualified);
                tools.specs.push(ToolSpec { name: wire, ..spec });
                tools.builtin.insert(qualified, (workspace_id, tool));
            }
        }
        let effective = policy::store::effective(&mut transaction, plan.api_key_id, plan.end_user).await?;
        tools.policy_summary = policy::profiles::summary(effective.as_ref().map(|(profile, _)| profile));
        let Some((profile, source)) = effective else {
            transaction.commit().await?;
            return Ok(tools);
        };
        let rows = connector_store::list_connectors(&mut transaction).await?;
        let discovered = connector_store::discovered_tools(&mut transaction, None).await?;
        transaction.commit().await?;
        let policy = Policy::parse(profile.document).map_err(|error| TurnFailure::Internal(Box::new(error)))?;
        for row in rows.iter().filter(|row| row.is_active()) {
            let (mine, hidden): (Vec<_>, Vec<_>) = discovered
                .iter()
                .filter(|tool| tool.connector_id == row.id)
                .partition(|tool| policy::visible(&policy, &names::qualified(&row.name, &tool.name), tool.read_only));
            for tool in hidden {
                let qualified = names::qualified(&row.name, &tool.name);
                tools.names.add(&qualified);
                tools.hidden.insert(qualified, tool.read_only);
            }
            if mine.is_empty() {
                continue;
            }
            let connector = match row.spec(&inner.tools.keys) {
                Ok(spec) => Arc::new(spec),
                Err(error) => {
                    tracing::warn!(connector_id = %row.id, %error, "a connector's credential cannot be opened; its tools are not offered");
                    continue;
                }
            };
            for tool in mine {
                let qualified = names::qualified(&row.name, &tool.name);
                let wire = tools.names.add(&qualified);
                tools.specs.push(ToolSpec {
                    name: wire,
                    description: tool.description.clone().unwrap_or_default(),
                    parameters: tool.input_schema.clone(),
                });
                let offered = Offered {
                    connector_id: row.id,
                    connector_version: row.updated_at,
                    connector: Arc::clone(&connector),
                    tool: tool.name.clone(),
                    read_only: tool.read_only,
                };
                tools.offered.insert(qualified, offered);
            }
        }
        tools.policy = Some((policy, AppliedPolicy { profile_id: profile.id, version: profile.version, source }));
        Ok(tools)
    }
}
