//! Workspaces of the IDE door: named sets of files (`files`: versions named by their content hash; `archive`:
//! trees in and out), the built-in tools an agent run uses on them (`tools`), the changes proposed to them
//! (`changesets`: a run never writes a file, a person applies its changeset) and the checks run on those
//! (`checks`).

pub mod archive;
pub mod changesets;
pub mod checks;
pub mod files;
pub mod store;
pub mod tools;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

use crate::auth::context::TenantContext;
use crate::db;
use crate::ids::WorkspaceId;

#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error("{0}")]
    Invalid(String),
    #[error("no such workspace")]
    NotFound,
    #[error("a workspace named `{0}` already exists")]
    NameTaken(String),
    #[error("no file `{0}` in the workspace")]
    FileNotFound(String),
    /// An `If-Match` or `If-None-Match` condition did not hold: the file changed, appeared or went away.
    #[error("the file `{0}` is not in the state the request's condition names")]
    PreconditionFailed(String),
    #[error("a file `{0}` already exists")]
    FileExists(String),
    /// A write would take the workspace past one of the tenant's quotas (`setting` is its name).
    #[error("the workspace would go past its quota `{setting}` of {limit}")]
    QuotaExceeded { setting: &'static str, limit: i64 },
    #[error("a file may hold at most {MAX_FILE_BYTES} bytes")]
    FileTooLarge,
    #[error(transparent)]
    Archive(#[from] archive::ArchiveError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Workspace {
    pub id: WorkspaceId,
    pub name: String,
    /// The MCP tools (`connector.tool`) run as the workspace's checks.
    pub checks: Vec<String>,
    pub created_at: DateTime<Utc>,
}

/// The most bytes one file may hold.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;

/// The hash that names a file's content: lowercase hex SHA-256 of its UTF-8 bytes (an `ETag`, and the base a
/// patch is made against).
pub fn content_hash(content: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(content.as_bytes()))
}

/// A file path inside a workspace: relative, `/`-separated, no `.` or `..` segments.
pub fn check_path(path: &str) -> Result<(), WorkspaceError> {
    let valid = (1..=500).contains(&path.len())
        && !path.starts_with('/')
        && !path.contains('\0')
        && !path.contains('\\')
        && path.split('/').all(|segment| !segment.is_empty() && segment != "." && segment != "..");
    if valid {
        Ok(())
    } else {
        Err(WorkspaceError::Invalid("path must be a relative path without . or .. segments".into()))
    }
}

pub async fn create(pool: &PgPool, context: &TenantContext, name: &str) -> Result<Workspace, WorkspaceError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(WorkspaceError::Invalid("name must be 1 to 200 characters".to_owned()));
    }
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let created = db::none_if_unique_violation(store::insert(&mut transaction, context.tenant_id(), name).await)?
        .ok_or_else(|| WorkspaceError::NameTaken(name.to_owned()))?;
    transaction.commit().await?;
    Ok(created)
}

pub async fn list(pool: &PgPool, context: &TenantContext) -> Result<Vec<Workspace>, WorkspaceError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let workspaces = store::list(&mut transaction).await?;
    transaction.commit().await?;
    Ok(workspaces)
}
