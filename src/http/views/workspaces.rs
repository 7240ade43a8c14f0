//! Workspaces of the IDE door, the agent run queued on one, and the changes a run proposed.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::runs::RunView;
use crate::ids::WorkspaceId;
use crate::runs::Run;
use crate::workspaces::Workspace;
use crate::workspaces::store::RunPatch;

#[derive(Debug, Serialize)]
pub struct WorkspaceView {
    pub id: WorkspaceId,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

impl From<&Workspace> for WorkspaceView {
    fn from(workspace: &Workspace) -> Self {
        Self { id: workspace.id, name: workspace.name.clone(), created_at: workspace.created_at }
    }
}

#[derive(Debug, Serialize)]
pub struct WorkspaceList {
    pub workspaces: Vec<WorkspaceView>,
}

impl WorkspaceList {
    pub fn new(workspaces: &[Workspace]) -> Self {
        Self { workspaces: workspaces.iter().map(WorkspaceView::from).collect() }
    }
}

/// The answer to queueing an agent run (202): follow it on `/runs/{id}/events`.
#[derive(Debug, Serialize)]
pub struct AgentRunStarted {
    pub run: RunView,
}

impl From<&Run> for AgentRunStarted {
    fn from(run: &Run) -> Self {
        Self { run: RunView::from(run) }
    }
}

/// A change a run proposed, for a person to review.
#[derive(Debug, Serialize)]
pub struct RunPatchView {
    pub path: String,
    pub summary: String,
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

#[derive(Debug, Serialize)]
pub struct PatchList {
    pub patches: Vec<RunPatchView>,
}
