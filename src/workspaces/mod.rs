//! Workspaces of the IDE door: named sets of files, and the built-in tools an agent run uses on them
//! (`tools`: list, read, search, propose a change). A run never writes a file: it records the change it
//! proposes (`run_patches`), for a person to apply.

pub mod store;
pub mod tools;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

use crate::auth::context::TenantContext;
use crate::db;
use crate::ids::{RunId, WorkspaceId};
use store::RunPatch;

#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error("{0}")]
    Invalid(String),
    #[error("no such workspace")]
    NotFound,
    #[error("a workspace named `{0}` already exists")]
    NameTaken(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Workspace {
    pub id: WorkspaceId,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

const MAX_FILE_BYTES: usize = 1024 * 1024;

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

/// Creates or replaces a file.
pub async fn put_file(
    pool: &PgPool,
    context: &TenantContext,
    id: WorkspaceId,
    path: &str,
    text: &str,
) -> Result<(), WorkspaceError> {
    check_path(path)?;
    if text.len() > MAX_FILE_BYTES {
        return Err(WorkspaceError::Invalid(format!("a file may hold at most {MAX_FILE_BYTES} bytes")));
    }
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    if !store::exists(&mut transaction, id).await? {
        return Err(WorkspaceError::NotFound);
    }
    store::upsert_file(&mut transaction, context.tenant_id(), id, path, text).await?;
    transaction.commit().await?;
    Ok(())
}

/// The changes a run proposed.
pub async fn patches(pool: &PgPool, context: &TenantContext, run_id: RunId) -> Result<Vec<RunPatch>, WorkspaceError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let patches = store::run_patches(&mut transaction, run_id).await?;
    transaction.commit().await?;
    Ok(patches)
}
