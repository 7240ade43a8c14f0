//! Changesets: the changes proposed to a workspace's files, by an agent run (its one changeset, `draft`
//! while it works, `pending_review` when it ends) or opened by an IDE. A changeset holds one patch per
//! path: the file's state after it, against the content hash it was made on, with its unified diff
//! (`diff.rs`; how changes stack, `stack.rs`). A person reviews it; applying writes every patch in one
//! transaction, or nothing when a file moved on since.

pub mod apply;
pub mod diff;
pub mod open;
pub mod review;
pub mod stack;
pub mod store;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

use crate::auth::context::TenantContext;
use crate::ids::{ChangesetId, RunId, TenantId, WorkspaceId};
use stack::{Change, Draft};

/// The most patches one changeset holds.
pub const MAX_PATCHES: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum Status {
    Draft,
    PendingReview,
    Approved,
    Rejected,
    Applied,
    Superseded,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::PendingReview => "pending_review",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Applied => "applied",
            Self::Superseded => "superseded",
        }
    }

    /// The one table of transitions: `draft → pending_review → approved → applied`; an open changeset
    /// may be rejected or superseded; `rejected`, `applied` and `superseded` are final.
    pub fn can_become(self, next: Self) -> bool {
        use Status::{Applied, Approved, Draft, PendingReview, Rejected, Superseded};
        matches!(
            (self, next),
            (Draft, PendingReview)
                | (PendingReview, Approved)
                | (Approved, Applied)
                | (Draft | PendingReview | Approved, Rejected | Superseded)
        )
    }

    pub fn is_final(self) -> bool {
        matches!(self, Self::Rejected | Self::Applied | Self::Superseded)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum Operation {
    Create,
    Modify,
    Delete,
    Rename,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Modify => "modify",
            Self::Delete => "delete",
            Self::Rename => "rename",
        }
    }
}

/// A patch's review, separate from its changeset's status: a reviewer may decide single patches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum Review {
    Pending,
    Approved,
    Rejected,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Changeset {
    pub id: ChangesetId,
    pub workspace_id: WorkspaceId,
    pub run_id: Option<RunId>,
    pub title: String,
    pub status: Status,
    pub created_by: String,
    pub reviewed_by: Option<String>,
    pub review_comment: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub applied_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Patch {
    pub position: i32,
    pub path: String,
    pub operation: Operation,
    pub new_path: Option<String>,
    pub base_hash: Option<String>,
    pub base_content: Option<String>,
    pub content: Option<String>,
    pub diff: String,
    pub summary: String,
    pub review: Review,
    pub review_comment: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Patch {
    fn draft(&self) -> Draft {
        Draft {
            path: self.path.clone(),
            operation: self.operation,
            new_path: self.new_path.clone(),
            base: self.base_hash.clone().map(|hash| (hash, self.base_content.clone().unwrap_or_default())),
            content: self.content.clone(),
        }
    }
}

/// A path whose file moved on since a patch was made against it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Conflict {
    pub path: String,
    /// The hash the patch was made against (`null`: the patch creates the file).
    pub base_hash: Option<String>,
    /// The file's hash now (`null`: there is no file).
    pub current_hash: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ChangesetError {
    #[error("no such changeset")]
    NotFound,
    #[error("{0}")]
    Invalid(String),
    /// The change cannot be made to the files as the changeset sees them; told to a model as a tool error.
    #[error("{0}")]
    Refused(String),
    #[error("a changeset that is {from} cannot become {to}", from = .from.as_str(), to = .to.as_str())]
    InvalidTransition { from: Status, to: Status },
    #[error("the files changed since the changeset was made: {}", conflicts.iter().map(|c| c.path.as_str()).collect::<Vec<_>>().join(", "))]
    Conflict { conflicts: Vec<Conflict> },
    #[error("no such workspace")]
    WorkspaceNotFound,
    /// A unified diff sent by a client that does not parse, or does not apply to its base.
    #[error("{0}")]
    InvalidDiff(String),
    /// The changeset's agent run is still working on it: only the run ends its draft.
    #[error("the changeset's run is still working; its changeset awaits review when it ends")]
    RunInProgress,
    /// Applying it would break a rule of the workspace (its quotas).
    #[error(transparent)]
    Workspace(#[from] crate::workspaces::WorkspaceError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Folds one change into a draft changeset's patches and stores the outcome; returns the patches the
/// change touched (with their diffs), or none when it undid itself. The changeset's row is locked first,
/// so concurrent changes to one changeset apply one after the other.
pub async fn record(
    connection: &mut PgConnection,
    tenant_id: TenantId,
    changeset: ChangesetId,
    change: Change,
    summary: &str,
) -> Result<Vec<Patch>, ChangesetError> {
    let current = store::lock(connection, changeset).await?.ok_or(ChangesetError::NotFound)?;
    if current.status != Status::Draft {
        return Err(ChangesetError::InvalidTransition { from: current.status, to: Status::Draft });
    }
    let before = store::patches(connection, changeset).await?;
    let mut workspace = std::collections::HashMap::new();
    for path in change.paths() {
        let file = crate::workspaces::store::file(connection, current.workspace_id, path).await?;
        workspace.insert(path.to_owned(), file.map(|file| (file.content_hash, file.content)));
    }
    let mut drafts: Vec<Draft> = before.iter().map(Patch::draft).collect();
    stack::fold(&mut drafts, change, &|path| workspace.get(path).cloned().flatten())
        .map_err(ChangesetError::Refused)?;
    if drafts.len() > MAX_PATCHES {
        return Err(ChangesetError::Refused(format!("a changeset holds at most {MAX_PATCHES} files")));
    }
    let touched = store_drafts(connection, tenant_id, changeset, &before, &drafts, summary).await?;
    store::touch(connection, changeset).await?;
    Ok(touched)
}

/// Stores folded drafts over the patches `before` they were folded from: patches gone are deleted, the
/// changed ones written with their diffs (new ones after the others); returns the patches written.
async fn store_drafts(
    connection: &mut PgConnection,
    tenant_id: TenantId,
    changeset: ChangesetId,
    before: &[Patch],
    drafts: &[Draft],
    summary: &str,
) -> Result<Vec<Patch>, sqlx::Error> {
    let gone: Vec<String> = before
        .iter()
        .filter(|patch| !drafts.iter().any(|draft| draft.path == patch.path))
        .map(|patch| patch.path.clone())
        .collect();
    for path in &gone {
        store::delete_patch(connection, changeset, path).await?;
    }
    let changed: Vec<&Draft> = drafts
        .iter()
        .filter(|draft| !before.iter().any(|patch| patch.path == draft.path && patch.draft() == **draft))
        .collect();
    let mut next_position = before.iter().map(|patch| patch.position).max().unwrap_or(0) + 1;
    let mut touched = Vec::new();
    for draft in changed {
        let before_text = draft.base.as_ref().map_or("", |(_, content)| content.as_str());
        let after_text = draft.content.as_deref().unwrap_or("");
        let diff = diff::render(draft.operation, &draft.path, draft.new_path.as_deref(), before_text, after_text);
        let position = before.iter().find(|patch| patch.path == draft.path).map(|patch| patch.position);
        let position = position.unwrap_or_else(|| {
            next_position += 1;
            next_position - 1
        });
        touched.push(store::upsert_patch(connection, tenant_id, changeset, position, draft, &diff, summary).await?);
    }
    Ok(touched)
}

/// Who acted, as a changeset records it (`created_by`, `reviewed_by`): the actor's kind and id.
pub fn actor_label(context: &TenantContext) -> String {
    let actor = context.actor();
    match actor.id() {
        Some(id) => format!("{}:{id}", actor.kind()),
        None => actor.kind().to_owned(),
    }
}

/// The content a changeset shows at `path`: its own patch's, else the workspace's file.
pub async fn read(
    connection: &mut PgConnection,
    changeset: &Changeset,
    path: &str,
) -> Result<Option<String>, sqlx::Error> {
    let drafts: Vec<Draft> = store::patches(connection, changeset.id).await?.iter().map(Patch::draft).collect();
    let file = crate::workspaces::store::file_content(connection, changeset.workspace_id, path).await?;
    Ok(stack::view(&drafts, path, file.map(|content| (String::new(), content))))
}

#[cfg(test)]
mod tests {
    use super::Status::{self, Applied, Approved, Draft, PendingReview, Rejected, Superseded};

    #[test]
    fn only_the_documented_transitions_are_possible() {
        let all = [Draft, PendingReview, Approved, Rejected, Applied, Superseded];
        let allowed: Vec<(Status, Status)> = all
            .iter()
            .flat_map(|from| all.iter().map(move |to| (*from, *to)))
            .filter(|(from, to)| from.can_become(*to))
            .collect();
        assert_eq!(
            allowed,
            vec![
                (Draft, PendingReview),
                (Draft, Rejected),
                (Draft, Superseded),
                (PendingReview, Approved),
                (PendingReview, Rejected),
                (PendingReview, Superseded),
                (Approved, Rejected),
                (Approved, Applied),
                (Approved, Superseded),
            ]
        );
        assert!(all.iter().filter(|status| status.is_final()).all(|from| all.iter().all(|to| !from.can_become(*to))));
    }
}
