//! SQL for workspaces, their files and the changes agent runs propose (`run_patches`); every function runs
//! inside a tenant-bound transaction.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::Workspace;
use crate::ids::{RunId, TenantId, WorkspaceId};

/// A taken name is a unique violation.
pub async fn insert(connection: &mut PgConnection, tenant_id: TenantId, name: &str) -> Result<Workspace, sqlx::Error> {
    sqlx::query_as("INSERT INTO workspaces (id, tenant_id, name) VALUES ($1, $2, $3) RETURNING id, name, created_at")
        .bind(WorkspaceId::new())
        .bind(tenant_id)
        .bind(name)
        .fetch_one(connection)
        .await
}

pub async fn list(connection: &mut PgConnection) -> Result<Vec<Workspace>, sqlx::Error> {
    sqlx::query_as("SELECT id, name, created_at FROM workspaces ORDER BY name").fetch_all(connection).await
}

pub async fn exists(connection: &mut PgConnection, id: WorkspaceId) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM workspaces WHERE id = $1)").bind(id).fetch_one(connection).await
}

/// Creates or replaces a file.
pub async fn upsert_file(
    connection: &mut PgConnection,
    tenant_id: TenantId,
    workspace_id: WorkspaceId,
    path: &str,
    content: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO workspace_files (tenant_id, workspace_id, path, content) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (tenant_id, workspace_id, path) DO UPDATE SET content = $4, updated_at = now()",
    )
    .bind(tenant_id)
    .bind(workspace_id)
    .bind(path)
    .bind(content)
    .execute(connection)
    .await?;
    Ok(())
}

/// The workspace's files with their sizes in bytes, by path.
pub async fn file_sizes(
    connection: &mut PgConnection,
    workspace_id: WorkspaceId,
) -> Result<Vec<(String, i32)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT path, octet_length(content) FROM workspace_files WHERE workspace_id = $1 ORDER BY path \
         LIMIT 1000",
    )
    .bind(workspace_id)
    .fetch_all(connection)
    .await
}

pub async fn file_content(
    connection: &mut PgConnection,
    workspace_id: WorkspaceId,
    path: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT content FROM workspace_files WHERE workspace_id = $1 AND path = $2")
        .bind(workspace_id)
        .bind(path)
        .fetch_optional(connection)
        .await
}

/// The files, path and content, that contain `query` ignoring case.
pub async fn files_containing(
    connection: &mut PgConnection,
    workspace_id: WorkspaceId,
    query: &str,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT path, content FROM workspace_files WHERE workspace_id = $1 AND strpos(lower(content), lower($2)) > 0 \
         ORDER BY path LIMIT 200",
    )
    .bind(workspace_id)
    .bind(query)
    .fetch_all(connection)
    .await
}

/// A change an agent run proposes; nothing applies it to the file.
pub async fn insert_patch(
    connection: &mut PgConnection,
    tenant_id: TenantId,
    run_id: RunId,
    path: &str,
    summary: &str,
    content: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO run_patches (id, tenant_id, run_id, path, summary, content) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(uuid::Uuid::now_v7())
    .bind(tenant_id)
    .bind(run_id)
    .bind(path)
    .bind(summary)
    .bind(content)
    .execute(connection)
    .await?;
    Ok(())
}

/// A change a run proposed.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RunPatch {
    pub path: String,
    pub summary: String,
    pub content: String,
    pub created_at: DateTime<Utc>,
}

/// The changes a run proposed, oldest first.
pub async fn run_patches(connection: &mut PgConnection, run_id: RunId) -> Result<Vec<RunPatch>, sqlx::Error> {
    sqlx::query_as("SELECT path, summary, content, created_at FROM run_patches WHERE run_id = $1 ORDER BY created_at")
        .bind(run_id)
        .fetch_all(connection)
        .await
}
