//! SQL for check artifacts: written once, never changed (a trigger refuses updates); every function runs
//! inside a tenant-bound transaction.

use sqlx::PgConnection;

use super::{Artifact, NewArtifact};
use crate::ids::{ArtifactId, ChangesetId, RunId, TenantId};

const ARTIFACT_COLUMNS: &str = "id, changeset_id, run_id, check_name, status, stdout, stderr, report, content_type, \
     truncated, created_at";

pub async fn insert(
    connection: &mut PgConnection,
    tenant_id: TenantId,
    changeset_id: ChangesetId,
    run_id: Option<RunId>,
    artifact: &NewArtifact,
) -> Result<Artifact, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO changeset_artifacts (id, tenant_id, changeset_id, run_id, check_name, status, stdout, stderr, \
             report, content_type, truncated) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING {ARTIFACT_COLUMNS}"
    )))
    .bind(ArtifactId::new())
    .bind(tenant_id)
    .bind(changeset_id)
    .bind(run_id)
    .bind(&artifact.check_name)
    .bind(artifact.status)
    .bind(&artifact.stdout)
    .bind(&artifact.stderr)
    .bind(&artifact.report)
    .bind(artifact.content_type)
    .bind(artifact.truncated)
    .fetch_one(connection)
    .await
}

/// A changeset's artifacts, oldest first.
pub async fn list(connection: &mut PgConnection, changeset_id: ChangesetId) -> Result<Vec<Artifact>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ARTIFACT_COLUMNS} FROM changeset_artifacts WHERE changeset_id = $1 ORDER BY created_at, id LIMIT 1000"
    )))
    .bind(changeset_id)
    .fetch_all(connection)
    .await
}

pub async fn get(
    connection: &mut PgConnection,
    changeset_id: ChangesetId,
    id: ArtifactId,
) -> Result<Option<Artifact>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ARTIFACT_COLUMNS} FROM changeset_artifacts WHERE changeset_id = $1 AND id = $2"
    )))
    .bind(changeset_id)
    .bind(id)
    .fetch_optional(connection)
    .await
}
