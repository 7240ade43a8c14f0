//! A changeset's review: submitted, approved or rejected (whole, or patch by patch), superseded. Every
//! move goes through `Status::can_become`, is audited with who made it, and — for an agent run's
//! changeset whose run has ended — is appended to the run's events as the matching `changeset.*` event.
//!
//! Patch by patch: a reviewer approves or rejects single patches (`paths`) of a changeset pending review;
//! it stays pending until every patch is decided, then becomes `approved` when at least one patch is
//! approved, else `rejected`. Approving the whole changeset approves every patch still pending (patches
//! rejected one by one stay rejected and are skipped when it is applied); rejecting it rejects them all.

use sqlx::{PgConnection, PgPool};

use super::{Changeset, ChangesetError, Review, Status, actor_label, store};
use crate::audit::{self, AuditEntry};
use crate::auth::context::TenantContext;
use crate::db;
use crate::ids::{ChangesetId, WorkspaceId};
use crate::runs::events::{ChangesetTransition, EventKind};

/// A reviewer's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Reject,
}

/// The changeset of this workspace, locked until the transaction ends; another workspace's is not found.
/// An agent run's changeset is locked after its run's row, in the order the run's end takes them (run,
/// then changeset), so a review and the run's end never wait on each other crosswise.
pub async fn locked(
    connection: &mut PgConnection,
    workspace_id: WorkspaceId,
    id: ChangesetId,
) -> Result<Changeset, ChangesetError> {
    let found = store::get(connection, id).await?.filter(|changeset| changeset.workspace_id == workspace_id);
    let Some(found) = found else { return Err(ChangesetError::NotFound) };
    if let Some(run_id) = found.run_id {
        crate::runs::store::get_for_update(connection, run_id).await?;
    }
    store::lock(connection, id)
        .await?
        .filter(|changeset| changeset.workspace_id == workspace_id)
        .ok_or(ChangesetError::NotFound)
}

/// Submits a draft for review. An agent run's draft is submitted by its run when it ends, not by a person.
pub async fn submit(
    pool: &PgPool,
    context: &TenantContext,
    workspace_id: WorkspaceId,
    id: ChangesetId,
) -> Result<Changeset, ChangesetError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let changeset = locked(&mut transaction, workspace_id, id).await?;
    if changeset.run_id.is_some() && changeset.status == Status::Draft {
        return Err(ChangesetError::RunInProgress);
    }
    if changeset.status.can_become(Status::PendingReview) && store::patches(&mut transaction, id).await?.is_empty() {
        return Err(ChangesetError::Invalid("a changeset without patches cannot be submitted".to_owned()));
    }
    let submitted = transition(&mut transaction, context, &changeset, Status::PendingReview, None, &[]).await?;
    transaction.commit().await?;
    Ok(submitted)
}

/// Approves or rejects the changeset, or only its patches at `paths` (see the module's documentation).
pub async fn decide(
    pool: &PgPool,
    context: &TenantContext,
    workspace_id: WorkspaceId,
    id: ChangesetId,
    decision: Decision,
    comment: Option<&str>,
    paths: Option<&[String]>,
) -> Result<Changeset, ChangesetError> {
    if comment.is_some_and(|comment| comment.chars().count() > 10_000) {
        return Err(ChangesetError::Invalid("comment is at most 10000 characters".to_owned()));
    }
    let target = match decision {
        Decision::Approve => Status::Approved,
        Decision::Reject => Status::Rejected,
    };
    let review = match decision {
        Decision::Approve => Review::Approved,
        Decision::Reject => Review::Rejected,
    };
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let changeset = locked(&mut transaction, workspace_id, id).await?;
    let decided = match paths {
        None => {
            if !changeset.status.can_become(target) {
                return Err(ChangesetError::InvalidTransition { from: changeset.status, to: target });
            }
            // Approving keeps single rejections; rejecting rejects every patch.
            let only_pending = decision == Decision::Approve;
            store::set_reviews(&mut transaction, id, None, only_pending, review, comment).await?;
            let patches = store::patches(&mut transaction, id).await?;
            if decision == Decision::Approve && patches.iter().all(|patch| patch.review == Review::Rejected) {
                return Err(ChangesetError::Invalid(
                    "every patch of the changeset is rejected: reject the changeset instead".to_owned(),
                ));
            }
            transition(&mut transaction, context, &changeset, target, comment, &[]).await?
        }
        Some(paths) => {
            // Single patches are decided only while the changeset awaits review.
            if changeset.status != Status::PendingReview {
                return Err(ChangesetError::InvalidTransition { from: changeset.status, to: target });
            }
            if paths.is_empty() {
                return Err(ChangesetError::Invalid("paths must not be empty (leave it out for all)".to_owned()));
            }
            let patches = store::patches(&mut transaction, id).await?;
            if let Some(unknown) = paths.iter().find(|path| !patches.iter().any(|patch| &patch.path == *path)) {
                return Err(ChangesetError::Invalid(format!("the changeset has no patch at `{unknown}`")));
            }
            store::set_reviews(&mut transaction, id, Some(paths), false, review, comment).await?;
            let patches = store::patches(&mut transaction, id).await?;
            let pending = patches.iter().any(|patch| patch.review == Review::Pending);
            let approved = patches.iter().any(|patch| patch.review == Review::Approved);
            let entry = AuditEntry::new("changeset.reviewed", "changeset", id.to_string())
                .with_details(serde_json::json!({ "workspace_id": workspace_id, "decision": review, "paths": paths }));
            audit::record(&mut transaction, context, &entry).await?;
            match (pending, approved) {
                (true, _) => changeset,
                (false, true) => {
                    transition(&mut transaction, context, &changeset, Status::Approved, comment, paths).await?
                }
                (false, false) => {
                    transition(&mut transaction, context, &changeset, Status::Rejected, comment, paths).await?
                }
            }
        }
    };
    transaction.commit().await?;
    Ok(decided)
}

/// Marks an open changeset superseded (a newer one replaces it).
pub async fn supersede(
    pool: &PgPool,
    context: &TenantContext,
    workspace_id: WorkspaceId,
    id: ChangesetId,
    comment: Option<&str>,
) -> Result<Changeset, ChangesetError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let changeset = locked(&mut transaction, workspace_id, id).await?;
    let superseded = transition(&mut transaction, context, &changeset, Status::Superseded, comment, &[]).await?;
    transaction.commit().await?;
    Ok(superseded)
}

/// Moves the (locked) changeset to `to`: refused unless the transition table allows it; audited; the
/// reviewer and comment recorded on approval and rejection; appended to its run's events when the run has
/// ended (a run still working emits its own, and ends its draft itself).
pub(super) async fn transition(
    connection: &mut PgConnection,
    context: &TenantContext,
    changeset: &Changeset,
    to: Status,
    comment: Option<&str>,
    paths: &[String],
) -> Result<Changeset, ChangesetError> {
    if !changeset.status.can_become(to) {
        return Err(ChangesetError::InvalidTransition { from: changeset.status, to });
    }
    let reviewer = actor_label(context);
    let review = matches!(to, Status::Approved | Status::Rejected).then_some((reviewer.as_str(), comment));
    let moved = store::set_status(connection, changeset.id, to, review).await?;
    let (action, event): (&'static str, fn(ChangesetTransition) -> EventKind) = match to {
        Status::Draft => unreachable!("no changeset becomes a draft again"),
        Status::PendingReview => ("changeset.submitted", EventKind::ChangesetPendingReview),
        Status::Approved => ("changeset.approved", EventKind::ChangesetApproved),
        Status::Rejected => ("changeset.rejected", EventKind::ChangesetRejected),
        Status::Applied => ("changeset.applied", EventKind::ChangesetApplied),
        Status::Superseded => ("changeset.superseded", EventKind::ChangesetSuperseded),
    };
    let entry = AuditEntry::new(action, "changeset", changeset.id.to_string()).with_details(serde_json::json!({
        "workspace_id": changeset.workspace_id,
        "run_id": changeset.run_id,
        "from": changeset.status,
        "to": to,
        "paths": paths,
        "has_comment": comment.is_some(),
    }));
    audit::record(connection, context, &entry).await?;
    if let Some(run_id) = changeset.run_id {
        let transition = ChangesetTransition {
            changeset_id: changeset.id,
            comment: comment.map(str::to_owned),
            paths: paths.to_vec(),
        };
        crate::runs::store::append_event_after_end(connection, context.tenant_id(), run_id, &event(transition)).await?;
    }
    Ok(moved)
}
