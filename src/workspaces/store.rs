//! SQL for workspaces and their files; every function runs inside a tenant-bound transaction.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::Workspace;
use crate::ids::{TenantId, WorkspaceId};

/// A taken name is a unique violation.
pub async fn insert(connection: &mut PgConnection, tenant_id: TenantId, name: &str) -> Result<Workspace, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO workspaces (id, tenant_id, name) VALUES ($1, $2, $3) RETURNING id, name, checks, created_at",
    )
    .bind(WorkspaceId::new())
    .bind(tenant_id)
    .bind(name)
    .fetch_one(connection)
    .await
}

pub async fn list(connection: &mut PgConnection) -> Result<Vec<Workspace>, sqlx::Error> {
    sqlx::query_as("SELECT id, name, checks, created_at FROM workspaces ORDER BY name").fetch_all(connection).await
}

pub async fn exists(connection: &mut PgConnection, id: WorkspaceId) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM workspaces WHERE id = $1)").bind(id).fetch_one(connection).await
}

/// A file as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredFile {
    pub path: String,
    pub content: String,
    /// [`super::content_hash`] of the content.
    pub content_hash: String,
    pub updated_at: DateTime<Utc>,
}

/// Creates or replaces a file; returns its new content hash.
pub async fn upsert_file(
    connection: &mut PgConnection,
    tenant_id: TenantId,
    workspace_id: WorkspaceId,
    path: &str,
    content: &str,
) -> Result<String, sqlx::Error> {
    let hash = super::content_hash(content);
    sqlx::query(
        "INSERT INTO workspace_files (tenant_id, workspace_id, path, content, content_hash) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (tenant_id, workspace_id, path) DO UPDATE SET content = $4, content_hash = $5, updated_at = now()",
    )
    .bind(tenant_id)
    .bind(workspace_id)
    .bind(path)
    .bind(content)
    .bind(&hash)
    .execute(connection)
    .await?;
    Ok(hash)
}

/// One file as stored.
pub async fn file(
    connection: &mut PgConnection,
    workspace_id: WorkspaceId,
    path: &str,
) -> Result<Option<StoredFile>, sqlx::Error> {
    sqlx::query_as(
        "SELECT path, content, content_hash, updated_at FROM workspace_files WHERE workspace_id = $1 AND path = $2",
    )
    .bind(workspace_id)
    .bind(path)
    .fetch_optional(connection)
    .await
}

/// One file, locked until the transaction ends (`FOR UPDATE`) so that a check of its hash holds until
/// the write that depends on it.
pub async fn file_for_update(
    connection: &mut PgConnection,
    workspace_id: WorkspaceId,
    path: &str,
) -> Result<Option<StoredFile>, sqlx::Error> {
    sqlx::query_as(
        "SELECT path, content, content_hash, updated_at FROM workspace_files \
         WHERE workspace_id = $1 AND path = $2 FOR UPDATE",
    )
    .bind(workspace_id)
    .bind(path)
    .fetch_optional(connection)
    .await
}

/// Deletes a file; false when there was none.
pub async fn delete_file(
    connection: &mut PgConnection,
    workspace_id: WorkspaceId,
    path: &str,
) -> Result<bool, sqlx::Error> {
    let deleted = sqlx::query("DELETE FROM workspace_files WHERE workspace_id = $1 AND path = $2")
        .bind(workspace_id)
        .bind(path)
        .execute(connection)
        .await?;
    Ok(deleted.rows_affected() > 0)
}

/// One workspace.
pub async fn get(connection: &mut PgConnection, id: WorkspaceId) -> Result<Option<Workspace>, sqlx::Error> {
    sqlx::query_as("SELECT id, name, checks, created_at FROM workspaces WHERE id = $1")
        .bind(id)
        .fetch_optional(connection)
        .await
}

/// One workspace, locked against other writers of its files until the transaction ends, so that a quota
/// checked holds until the write that depends on it (`FOR NO KEY UPDATE`: inserts of its files, whose
/// foreign key takes a key-share lock, are not blocked by it).
pub async fn lock(connection: &mut PgConnection, id: WorkspaceId) -> Result<Option<Workspace>, sqlx::Error> {
    sqlx::query_as("SELECT id, name, checks, created_at FROM workspaces WHERE id = $1 FOR NO KEY UPDATE")
        .bind(id)
        .fetch_optional(connection)
        .await
}

/// How many files a workspace holds, and their bytes together.
pub async fn usage(connection: &mut PgConnection, id: WorkspaceId) -> Result<(i64, i64), sqlx::Error> {
    sqlx::query_as(
        "SELECT count(*), coalesce(sum(octet_length(content)), 0)::bigint FROM workspace_files WHERE workspace_id = $1",
    )
    .bind(id)
    .fetch_one(connection)
    .await
}

/// The tenant's quotas per workspace: files, and bytes.
pub async fn quotas(connection: &mut PgConnection) -> Result<(i32, i64), sqlx::Error> {
    sqlx::query_as("SELECT workspace_max_files, workspace_max_bytes FROM tenant_configs").fetch_one(connection).await
}

/// A file as listed: no content.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FileEntry {
    pub path: String,
    pub bytes: i32,
    pub content_hash: String,
    pub updated_at: DateTime<Utc>,
}

/// A page of the files whose path starts with `prefix`, by path, after the path `after`.
pub async fn list_files(
    connection: &mut PgConnection,
    workspace_id: WorkspaceId,
    prefix: &str,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<FileEntry>, sqlx::Error> {
    sqlx::query_as(
        "SELECT path, octet_length(content) AS bytes, content_hash, updated_at FROM workspace_files \
         WHERE workspace_id = $1 AND starts_with(path, $2) AND ($3::text IS NULL OR path > $3) \
         ORDER BY path LIMIT $4",
    )
    .bind(workspace_id)
    .bind(prefix)
    .bind(after)
    .bind(limit)
    .fetch_all(connection)
    .await
}

/// Every file of a workspace, by path (for an export).
pub async fn all_files(
    connection: &mut PgConnection,
    workspace_id: WorkspaceId,
) -> Result<Vec<StoredFile>, sqlx::Error> {
    sqlx::query_as(
        "SELECT path, content, content_hash, updated_at FROM workspace_files WHERE workspace_id = $1 ORDER BY path",
    )
    .bind(workspace_id)
    .fetch_all(connection)
    .await
}

/// Moves a file to a new path (a unique violation when one is there); `None` when there was no file.
pub async fn rename_file(
    connection: &mut PgConnection,
    workspace_id: WorkspaceId,
    from: &str,
    to: &str,
) -> Result<Option<StoredFile>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE workspace_files SET path = $3, updated_at = now() WHERE workspace_id = $1 AND path = $2 \
         RETURNING path, content, content_hash, updated_at",
    )
    .bind(workspace_id)
    .bind(from)
    .bind(to)
    .fetch_optional(connection)
    .await
}

/// Creates or replaces many files in one statement: each a distinct path, its content and the content's
/// [`super::content_hash`]. Returns each path, its hash and whether it was created.
pub async fn upsert_files(
    connection: &mut PgConnection,
    tenant_id: TenantId,
    workspace_id: WorkspaceId,
    files: &[(&str, &str, &str)],
) -> Result<Vec<(String, String, bool)>, sqlx::Error> {
    let paths: Vec<&str> = files.iter().map(|(path, _, _)| *path).collect();
    let contents: Vec<&str> = files.iter().map(|(_, content, _)| *content).collect();
    let hashes: Vec<&str> = files.iter().map(|(_, _, hash)| *hash).collect();
    // `xmax = 0` only on a row this statement inserted.
    sqlx::query_as(
        "INSERT INTO workspace_files (tenant_id, workspace_id, path, content, content_hash) \
         SELECT $1, $2, path, content, hash FROM UNNEST($3::text[], $4::text[], $5::text[]) AS f (path, content, hash) \
         ON CONFLICT (tenant_id, workspace_id, path) \
         DO UPDATE SET content = excluded.content, content_hash = excluded.content_hash, updated_at = now() \
         RETURNING path, content_hash, (xmax = 0) AS created",
    )
    .bind(tenant_id)
    .bind(workspace_id)
    .bind(&paths)
    .bind(&contents)
    .bind(&hashes)
    .fetch_all(connection)
    .await
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
