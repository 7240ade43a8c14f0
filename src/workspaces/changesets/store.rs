//! SQL for changesets and their patches; every function runs inside a tenant-bound transaction.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::stack::Draft;
use super::{Changeset, Patch, Review, Status};
use crate::ids::{ArtifactId, ChangesetId, RunId, TenantId, WorkspaceId};

const CHANGESET_COLUMNS: &str = "id, workspace_id, run_id, title, status, created_by, reviewed_by, review_comment, \
     created_at, updated_at, applied_at";

const PATCH_COLUMNS: &str = "position, path, operation, new_path, base_hash, base_content, content, diff, summary, \
     review, review_comment, created_at, updated_at";

/// A new changeset, `draft`.
pub async fn insert(
    connection: &mut PgConnection,
    tenant_id: TenantId,
    workspace_id: WorkspaceId,
    run_id: Option<RunId>,
    title: &str,
    created_by: &str,
) -> Result<Changeset, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO changesets (id, tenant_id, workspace_id, run_id, title, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {CHANGESET_COLUMNS}"
    )))
    .bind(ChangesetId::new())
    .bind(tenant_id)
    .bind(workspace_id)
    .bind(run_id)
    .bind(title)
    .bind(created_by)
    .fetch_one(connection)
    .await
}

/// The run's changeset, made on its first proposal.
pub async fn for_run(connection: &mut PgConnection, run_id: RunId) -> Result<Option<Changeset>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {CHANGESET_COLUMNS} FROM changesets WHERE run_id = $1")))
        .bind(run_id)
        .fetch_optional(connection)
        .await
}

pub async fn get(connection: &mut PgConnection, id: ChangesetId) -> Result<Option<Changeset>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {CHANGESET_COLUMNS} FROM changesets WHERE id = $1")))
        .bind(id)
        .fetch_optional(connection)
        .await
}

/// The changeset, locked until the transaction ends: its status and patches change one writer at a time.
pub async fn lock(connection: &mut PgConnection, id: ChangesetId) -> Result<Option<Changeset>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {CHANGESET_COLUMNS} FROM changesets WHERE id = $1 FOR UPDATE")))
        .bind(id)
        .fetch_optional(connection)
        .await
}

/// A workspace's changesets, newest first, optionally of one status.
pub async fn list(
    connection: &mut PgConnection,
    workspace_id: WorkspaceId,
    status: Option<Status>,
    limit: i64,
) -> Result<Vec<Changeset>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {CHANGESET_COLUMNS} FROM changesets WHERE workspace_id = $1 AND ($2::text IS NULL OR status = $2) \
         ORDER BY created_at DESC, id DESC LIMIT $3"
    )))
    .bind(workspace_id)
    .bind(status.map(Status::as_str))
    .bind(limit)
    .fetch_all(connection)
    .await
}

/// The changeset's patches in the order they were first made.
pub async fn patches(connection: &mut PgConnection, id: ChangesetId) -> Result<Vec<Patch>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {PATCH_COLUMNS} FROM changeset_patches WHERE changeset_id = $1 ORDER BY position"
    )))
    .bind(id)
    .fetch_all(connection)
    .await
}

pub async fn delete_patch(connection: &mut PgConnection, id: ChangesetId, path: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM changeset_patches WHERE changeset_id = $1 AND path = $2")
        .bind(id)
        .bind(path)
        .execute(connection)
        .await?;
    Ok(())
}

/// Stores a patch as folded (see `stack`), its review reset to pending.
pub async fn upsert_patch(
    connection: &mut PgConnection,
    tenant_id: TenantId,
    id: ChangesetId,
    position: i32,
    draft: &Draft,
    diff: &str,
    summary: &str,
) -> Result<Patch, sqlx::Error> {
    let (base_hash, base_content) = draft.base.clone().unzip();
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO changeset_patches (id, tenant_id, changeset_id, position, path, operation, new_path, base_hash, \
             base_content, content, diff, summary) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
         ON CONFLICT (tenant_id, changeset_id, path) DO UPDATE SET operation = $6, new_path = $7, base_hash = $8, \
             base_content = $9, content = $10, diff = $11, summary = $12, review = 'pending', review_comment = NULL, \
             updated_at = now() \
         RETURNING {PATCH_COLUMNS}"
    )))
    .bind(uuid::Uuid::now_v7())
    .bind(tenant_id)
    .bind(id)
    .bind(position)
    .bind(&draft.path)
    .bind(draft.operation)
    .bind(&draft.new_path)
    .bind(base_hash)
    .bind(base_content)
    .bind(&draft.content)
    .bind(diff)
    .bind(summary)
    .fetch_one(connection)
    .await
}

pub async fn touch(connection: &mut PgConnection, id: ChangesetId) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE changesets SET updated_at = now() WHERE id = $1").bind(id).execute(connection).await?;
    Ok(())
}

/// Moves the changeset to `status` (checked by the caller against `Status::can_become`); `review` is the
/// reviewer and their comment, recorded when given. `applied_at` is set when it becomes `applied`.
pub async fn set_status(
    connection: &mut PgConnection,
    id: ChangesetId,
    status: Status,
    review: Option<(&str, Option<&str>)>,
) -> Result<Changeset, sqlx::Error> {
    let (reviewer, comment) = review.unzip();
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE changesets SET status = $2, \
             reviewed_by = CASE WHEN $3 THEN $4 ELSE reviewed_by END, \
             review_comment = CASE WHEN $3 THEN $5 ELSE review_comment END, \
             applied_at = CASE WHEN $2 = 'applied' THEN now() ELSE applied_at END, updated_at = now() \
         WHERE id = $1 RETURNING {CHANGESET_COLUMNS}"
    )))
    .bind(id)
    .bind(status.as_str())
    .bind(reviewer.is_some())
    .bind(reviewer)
    .bind(comment.flatten())
    .fetch_one(connection)
    .await
}

/// Decides the changeset's patches at `paths` (all of them when `None`, or only those still pending when
/// `only_pending`); returns the paths decided.
pub async fn set_reviews(
    connection: &mut PgConnection,
    id: ChangesetId,
    paths: Option<&[String]>,
    only_pending: bool,
    review: Review,
    comment: Option<&str>,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE changeset_patches SET review = $4, review_comment = $5, updated_at = now() \
         WHERE changeset_id = $1 AND ($2::text[] IS NULL OR path = ANY($2)) AND (NOT $3 OR review = 'pending') \
         RETURNING path",
    )
    .bind(id)
    .bind(paths)
    .bind(only_pending)
    .bind(review)
    .bind(comment)
    .fetch_all(connection)
    .await
}

/// A check's outcome as a changeset lists it; the output itself is served on its own.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ArtifactSummary {
    pub id: ArtifactId,
    pub run_id: Option<RunId>,
    pub check_name: String,
    pub status: String,
    pub content_type: String,
    pub truncated: bool,
    pub created_at: DateTime<Utc>,
}

/// The changeset's artifacts, oldest first.
pub async fn artifacts(connection: &mut PgConnection, id: ChangesetId) -> Result<Vec<ArtifactSummary>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, run_id, check_name, status, content_type, truncated, created_at FROM changeset_artifacts \
         WHERE changeset_id = $1 ORDER BY created_at, id LIMIT 1000",
    )
    .bind(id)
    .fetch_all(connection)
    .await
}
