//! A check's artifact as the API answers it: what one check of a workspace left for a changeset.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::ids::{ArtifactId, ChangesetId, RunId};
use crate::workspaces::checks::{Artifact, ArtifactStatus};

/// What one check (an MCP tool of the tenant's connectors) reported on a changeset's version of the files;
/// never changed once written.
#[derive(Debug, Serialize, ToSchema)]
pub struct ArtifactView {
    #[schema(value_type = uuid::Uuid)]
    pub id: ArtifactId,
    #[schema(value_type = uuid::Uuid)]
    pub changeset_id: ChangesetId,
    /// The agent run that ran the check; `null` when a person asked for it.
    #[schema(value_type = Option<uuid::Uuid>)]
    pub run_id: Option<RunId>,
    /// The check, as `connector.tool`.
    pub check_name: String,
    /// `passed`, `failed`, `error` (it could not run) or `denied` (by the policy profile; the reason in
    /// `stderr`).
    pub status: ArtifactStatus,
    pub stdout: String,
    pub stderr: String,
    /// The check's report, as `content_type` says (`application/json` or `text/plain`).
    pub report: Option<String>,
    pub content_type: String,
    /// Whether stdout, stderr or the report was cut to its limit (64 KiB each).
    pub truncated: bool,
    pub created_at: DateTime<Utc>,
}

impl From<&Artifact> for ArtifactView {
    fn from(artifact: &Artifact) -> Self {
        Self {
            id: artifact.id,
            changeset_id: artifact.changeset_id,
            run_id: artifact.run_id,
            check_name: artifact.check_name.clone(),
            status: artifact.status,
            stdout: artifact.stdout.clone(),
            stderr: artifact.stderr.clone(),
            report: artifact.report.clone(),
            content_type: artifact.content_type.clone(),
            truncated: artifact.truncated,
            created_at: artifact.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ArtifactList {
    pub artifacts: Vec<ArtifactView>,
}

impl ArtifactList {
    pub fn of(artifacts: &[Artifact]) -> Self {
        Self { artifacts: artifacts.iter().map(ArtifactView::from).collect() }
    }
}
