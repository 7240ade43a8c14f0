//! Running a workspace's checks on a changeset: each check (`connector.tool`, an MCP tool of the
//! tenant's connectors) is decided by the policy profile in force for the caller (the key's own, else the
//! end user's group's, else the tenant's active one) exactly as a model's call would be
//! (`policy::decide_call`), called through the pooled MCP clients with the changeset's version of the
//! files, its result shaped by the policy, and kept as an immutable artifact. A check that needs a
//! person's approval is not held (nobody waits on it): it is recorded `denied` with reason
//! `approval_required`. Asked for by an IDE (`Engine::run_checks`) or by an agent run (`run_checks`).

use serde_json::{Value, json};

use super::{Engine, Inner};
use crate::audit::{self, AuditEntry, Recorder};
use crate::auth::context::TenantContext;
use crate::db;
use crate::ids::{ApiKeyId, ChangesetId, RunId, TenantId, UserId, WorkspaceId};
use crate::policy::{self, CallTarget, Policy, Verdict};
use crate::tools::store as connector_store;
use crate::tools::{CallFailure, Called, ToolRequest};
use crate::workspaces::checks::{self, Artifact, CheckError, NewArtifact};

/// The most characters of each output an agent is told (the artifact keeps more).
const TOLD_CHARS: usize = 4_000;

impl Engine {
    /// Runs the workspace's checks on one of its changesets; answers the artifacts they left.
    pub async fn run_checks(
        &self,
        context: &TenantContext,
        workspace_id: WorkspaceId,
        changeset_id: ChangesetId,
    ) -> Result<Vec<Artifact>, CheckError> {
        let caller = (context.actor().api_key_id(), context.end_user());
        run(&self.inner, context.tenant_id(), &Recorder::of(context), caller, workspace_id, changeset_id, None).await
    }
}

/// The checks of an agent run's changeset, summed up for the model; an error is told to it.
pub(super) async fn for_agent(
    inner: &Inner,
    tenant_id: TenantId,
    by: &Recorder<'_>,
    caller: (Option<ApiKeyId>, Option<UserId>),
    run_id: RunId,
    workspace_id: WorkspaceId,
) -> Result<Value, String> {
    let found = async {
        let mut transaction = db::begin_tenant(&inner.db, tenant_id).await?;
        let changeset = crate::workspaces::changesets::store::for_run(&mut transaction, run_id).await?;
        transaction.commit().await?;
        Ok::<_, sqlx::Error>(changeset)
    };
    let changeset = found.await.map_err(|error| {
        tracing::error!(%error, "could not find a run's changeset");
        "the run's changes could not be read".to_owned()
    })?;
    let Some(changeset) = changeset else {
        return Err("you have changed nothing yet: the checks run on your changes".to_owned());
    };
    let artifacts = run(inner, tenant_id, by, caller, workspace_id, changeset.id, Some(run_id)).await.map_err(
        |error| match error {
            CheckError::Database(error) => {
                tracing::error!(%error, "could not run a run's checks");
                "the checks could not be run".to_owned()
            }
            other => other.to_string(),
        },
    )?;
    let told = |text: &str| -> String { text.chars().take(TOLD_CHARS).collect() };
    let results: Vec<Value> = artifacts
        .iter()
        .map(|artifact| {
            json!({
                "check": artifact.check_name,
                "status": artifact.status,
                "stdout": told(&artifact.stdout),
                "stderr": told(&artifact.stderr),
                "report": artifact.report.as_deref().map(told),
                "artifact_id": artifact.id,
            })
        })
        .collect();
    let passed = artifacts.iter().all(|artifact| artifact.status == checks::ArtifactStatus::Passed);
    Ok(json!({ "passed": passed, "checks": results }))
}

async fn run(
    inner: &Inner,
    tenant_id: TenantId,
    by: &Recorder<'_>,
    (api_key_id, end_user): (Option<ApiKeyId>, Option<UserId>),
    workspace_id: WorkspaceId,
    changeset_id: ChangesetId,
    run_id: Option<RunId>,
) -> Result<Vec<Artifact>, CheckError> {
    let mut transaction = db::begin_tenant(&inner.db, tenant_id).await?;
    let input = checks::prepare(&mut transaction, workspace_id, changeset_id).await?;
    if input.checks.is_empty() {
        return Err(CheckError::NoChecks);
    }
    let profile = policy::store::effective(&mut transaction, api_key_id, end_user).await?;
    let connectors = connector_store::list_connectors(&mut transaction).await?;
    let discovered = connector_store::discovered_tools(&mut transaction, None).await?;
    transaction.commit().await?;
    let applied = profile.as_ref().map(|(profile, source)| (profile.id, profile.version, *source));
    let active = profile.and_then(|(profile, _)| match Policy::parse(profile.document) {
        Ok(policy) => Some(policy),
        Err(error) => {
            tracing::warn!(%error, "the active policy profile cannot be read; checks are denied");
            None
        }
    });
    let arguments = input.arguments();
    let (connectors, discovered, arguments, active) = (&connectors, &discovered, &arguments, active.as_ref());
    let runs = input.checks.iter().map(|name| async move {
        let (connector, tool) = name.split_once('.').unwrap_or((name.as_str(), ""));
        let row = connectors.iter().find(|row| row.name == connector && row.is_active());
        let found = row.and_then(|row| {
            discovered.iter().find(|found| found.connector_id == row.id && found.name == tool).map(|found| (row, found))
        });
        let target =
            found.map_or(CallTarget::Unknown, |(_, found)| CallTarget::Connector { read_only: found.read_only });
        let decision = policy::decide_call(active, name, target, Some(arguments));
        let artifact = match (decision.verdict, found) {
            (Verdict::Deny, _) => checks::denied(name, &decision.reason),
            (Verdict::RequireApproval, _) => {
                checks::denied(name, &format!("approval_required: {} (checks run unattended)", decision.reason))
            }
            (Verdict::Allow, None) => {
                checks::errored(name, &format!("`{name}` is not a tool of this tenant's connectors"))
            }
            (Verdict::Allow, Some((row, found))) => call(inner, active, name, row, &found.name, arguments).await,
        };
        (artifact, decision)
    });
    let ran: Vec<(NewArtifact, policy::Decision)> = futures::future::join_all(runs).await;
    let mut transaction = db::begin_tenant(&inner.db, tenant_id).await?;
    let artifacts: Vec<NewArtifact> = ran.iter().map(|(artifact, _)| artifact.clone()).collect();
    let stored = checks::store_all(&mut transaction, tenant_id, changeset_id, run_id, &artifacts).await?;
    for (artifact, (_, decision)) in stored.iter().zip(&ran) {
        let entry = AuditEntry::new("changeset.checked", "changeset", changeset_id.to_string()).with_details(json!({
            "check": artifact.check_name, "artifact_id": artifact.id, "status": artifact.status, "run_id": run_id,
            "decision": decision.verdict, "reason": decision.reason,
            "policy_profile_id": applied.map(|(id, _, _)| id),
            "policy_version": applied.map(|(_, version, _)| version),
            "policy_source": applied.map(|(_, _, source)| source),
        }));
        audit::store::append(&mut transaction, by, &entry).await?;
    }
    transaction.commit().await?;
    Ok(stored)
}

/// One allowed check, called; what it answered passes the policy's shaping before it is kept.
async fn call(
    inner: &Inner,
    active: Option<&Policy>,
    name: &str,
    row: &connector_store::ConnectorRow,
    tool: &str,
    arguments: &Value,
) -> NewArtifact {
    let spec = match row.spec(&inner.tools.keys) {
        Ok(spec) => spec,
        Err(error) => {
            tracing::warn!(connector_id = %row.id, %error, "a connector's credential cannot be opened");
            return checks::errored(name, "the connector's credential cannot be opened");
        }
    };
    let toolbox = &inner.tools;
    let request = ToolRequest { tool, arguments: arguments.clone(), input: None };
    let outcome = toolbox.clients.call(row.id, row.updated_at, &spec, &toolbox.settings, request).await;
    let shaped = |value: Value| match active {
        Some(policy) => policy::shape(policy, value).value,
        None => value,
    };
    match outcome {
        Ok(Called::Done(value)) => checks::artifact_from(name, Ok(&shaped(value))),
        // A check runs with nobody to ask: its question is its error.
        Ok(Called::NeedsInput(asked)) => {
            checks::errored(name, &format!("the check asked for input, which checks cannot give: {}", asked.message))
        }
        Err(CallFailure::Tool(said)) => checks::artifact_from(name, Err(&shaped(said))),
        Err(other) => checks::errored(name, &other.to_string()),
    }
}
