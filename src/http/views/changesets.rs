//! Changesets of a workspace as the API shows them: the changeset, its patches (diff, base version,
//! review) and the artifacts of checks run on it; what an apply wrote.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::ids::{ArtifactId, ChangesetId, RunId, WorkspaceId};
use crate::workspaces::changesets::apply::Applied;
use crate::workspaces::changesets::open::Detail;
use crate::workspaces::changesets::store::ArtifactSummary;
use crate::workspaces::changesets::{Changeset, Operation, Patch, Review, Status};

/// Changes proposed to a workspace's files, reviewed and applied together.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangesetView {
    #[schema(value_type = uuid::Uuid)]
    pub id: ChangesetId,
    #[schema(value_type = uuid::Uuid)]
    pub workspace_id: WorkspaceId,
    /// The agent run that proposed it; `null` when an IDE opened it.
    #[schema(value_type = Option<uuid::Uuid>)]
    pub run_id: Option<RunId>,
    pub title: String,
    /// `draft` → `pending_review` → `approved` → `applied`; `rejected` and `superseded` end it too.
    pub status: Status,
    /// Who opened it: `api_key:<id>`, `operator`, or `agent run`.
    pub created_by: String,
    /// Who approved or rejected it last, and their comment.
    pub reviewed_by: Option<String>,
    pub review_comment: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub applied_at: Option<DateTime<Utc>>,
}

impl From<&Changeset> for ChangesetView {
    fn from(changeset: &Changeset) -> Self {
        Self {
            id: changeset.id,
            workspace_id: changeset.workspace_id,
            run_id: changeset.run_id,
            title: changeset.title.clone(),
            status: changeset.status,
            created_by: changeset.created_by.clone(),
            reviewed_by: changeset.reviewed_by.clone(),
            review_comment: changeset.review_comment.clone(),
            created_at: changeset.created_at,
            updated_at: changeset.updated_at,
            applied_at: changeset.applied_at,
        }
    }
}

/// One file's change: its state after the changeset against the version it was made on.
#[derive(Debug, Serialize, ToSchema)]
pub struct PatchView {
    /// The file acted on (a rename's source).
    pub path: String,
    pub operation: Operation,
    /// A rename's destination.
    pub new_path: Option<String>,
    /// The content hash of the version it was made on; `null` for a create (no file may be there).
    pub base_hash: Option<String>,
    /// The change as a unified diff in git's format.
    pub diff: String,
    pub summary: String,
    pub review: Review,
    pub review_comment: Option<String>,
    pub updated_at: DateTime<Utc>,
}

impl From<&Patch> for PatchView {
    fn from(patch: &Patch) -> Self {
        Self {
            path: patch.path.clone(),
            operation: patch.operation,
            new_path: patch.new_path.clone(),
            base_hash: patch.base_hash.clone(),
            diff: patch.diff.clone(),
            summary: patch.summary.clone(),
            review: patch.review,
            review_comment: patch.review_comment.clone(),
            updated_at: patch.updated_at,
        }
    }
}

/// A check's outcome on the changeset (its output is served on its own).
#[derive(Debug, Serialize, ToSchema)]
pub struct ArtifactSummaryView {
    #[schema(value_type = uuid::Uuid)]
    pub id: ArtifactId,
    /// The agent run that ran the check; `null` when a person asked for it.
    #[schema(value_type = Option<uuid::Uuid>)]
    pub run_id: Option<RunId>,
    pub check_name: String,
    /// `passed`, `failed`, `error` or `denied`.
    pub status: String,
    pub content_type: String,
    pub truncated: bool,
    pub created_at: DateTime<Utc>,
}

impl From<&ArtifactSummary> for ArtifactSummaryView {
    fn from(artifact: &ArtifactSummary) -> Self {
        Self {
            id: artifact.id,
            run_id: artifact.run_id,
            check_name: artifact.check_name.clone(),
            status: artifact.status.clone(),
            content_type: artifact.content_type.clone(),
            truncated: artifact.truncated,
            created_at: artifact.created_at,
        }
    }
}

/// A changeset with its patches, in the order they were first made, and its artifacts.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangesetDetail {
    #[serde(flatten)]
    pub changeset: ChangesetView,
    pub patches: Vec<PatchView>,
    pub artifacts: Vec<ArtifactSummaryView>,
}

impl From<&Detail> for ChangesetDetail {
    fn from(detail: &Detail) -> Self {
        Self {
            changeset: ChangesetView::from(&detail.changeset),
            patches: detail.patches.iter().map(PatchView::from).collect(),
            artifacts: detail.artifacts.iter().map(ArtifactSummaryView::from).collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChangesetList {
    /// Newest first.
    pub changesets: Vec<ChangesetView>,
}

/// What an apply wrote.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApplyResult {
    pub changeset: ChangesetView,
    /// Every path written, created, deleted or renamed (a rename by its destination).
    pub written: Vec<String>,
    /// Those whose file had changed since the patch was made, written as a clean three-way merge.
    pub merged: Vec<String>,
    /// The paths of patches rejected in review, left as they were.
    pub skipped: Vec<String>,
}

impl From<&Applied> for ApplyResult {
    fn from(applied: &Applied) -> Self {
        Self {
            changeset: ChangesetView::from(&applied.changeset),
            written: applied.written.clone(),
            merged: applied.merged.clone(),
            skipped: applied.skipped.clone(),
        }
    }
}
