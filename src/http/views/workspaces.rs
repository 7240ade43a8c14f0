//! Workspaces of the IDE door, the agent run queued on one, and the changes a run proposed.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::runs::RunView;
use crate::ids::WorkspaceId;
use crate::runs::Run;
use crate::workspaces::Workspace;
use crate::workspaces::store::RunPatch;

/// A workspace of the IDE door: files an agent run reads and proposes changes to.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkspaceView {
    #[schema(value_type = uuid::Uuid)]
    pub id: WorkspaceId,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

impl From<&Workspace> for WorkspaceView {
    fn from(workspace: &Workspace) -> Self {
        Self { id: workspace.id, name: workspace.name.clone(), created_at: workspace.created_at }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WorkspaceList {
    pub workspaces: Vec<WorkspaceView>,
}

impl WorkspaceList {
    pub fn new(workspaces: &[Workspace]) -> Self {
        Self { workspaces: workspaces.iter().map(WorkspaceView::from).collect() }
    }
}

/// The answer to queueing an agent run (202): follow it on `/runs/{id}/events`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentRunStarted {
    pub run: RunView,
}

impl From<&Run> for AgentRunStarted {
    fn from(run: &Run) -> Self {
        Self { run: RunView::from(run) }
    }
}

/// A change a run proposed, for a person to review.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunPatchView {
    /// The workspace file it changes.
    pub path: String,
    pub summary: String,
    /// The file's proposed content, whole.
    pub content: String,
    pub created_at: DateTime<Utc>,
}

impl From<&RunPatch> for RunPatchView {
    fn from(patch: &RunPatch) -> Self {
        Self {
            path: patch.path.clone(),
            summary: patch.summary.clone(),
            content: patch.content.clone(),
            created_at: patch.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PatchList {
    pub patches: Vec<RunPatchView>,
}
