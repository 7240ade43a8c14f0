//! A workspace's files as a store an IDE works with: listed, read, written, deleted and renamed, each
//! version named by its content hash (the `ETag`), writes made under conditions on that hash checked with
//! the row locked, the tenant's quotas per workspace held on every write, and whole trees imported from an
//! archive (all or nothing) or exported as a tar. Every write is audited.

use std::collections::BTreeMap;

use sqlx::{PgConnection, PgPool};

use super::archive::{self, ArchiveError, ArchiveKind};
use super::store::{self, FileEntry, StoredFile};
use super::{MAX_FILE_BYTES, Workspace, WorkspaceError, check_path};
use crate::audit::{self, AuditEntry};
use crate::auth::context::TenantContext;
use crate::db;
use crate::ids::WorkspaceId;

/// One condition header: `*` (any version) or some content hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Versions {
    Any,
    Hashes(Vec<String>),
}

impl Versions {
    fn holds(&self, current: Option<&str>) -> bool {
        match (self, current) {
            (Self::Any, current) => current.is_some(),
            (Self::Hashes(hashes), Some(current)) => hashes.iter().any(|hash| hash == current),
            (Self::Hashes(_), None) => false,
        }
    }
}

/// What a write asks of the file's current version: `If-Match` (it is one of these; `*`: it exists) and
/// `If-None-Match` (it is none of these; `*`: there is no file).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preconditions {
    pub if_match: Option<Versions>,
    pub if_none_match: Option<Versions>,
}

impl Preconditions {
    /// True when both conditions hold for the file's current hash (`None`: there is no file).
    pub fn hold(&self, current: Option<&str>) -> bool {
        self.if_match.as_ref().is_none_or(|versions| versions.holds(current))
            && self.if_none_match.as_ref().is_none_or(|versions| !versions.holds(current))
    }

    fn check(&self, path: &str, current: Option<&StoredFile>) -> Result<(), WorkspaceError> {
        if self.hold(current.map(|file| file.content_hash.as_str())) {
            Ok(())
        } else {
            Err(WorkspaceError::PreconditionFailed(path.to_owned()))
        }
    }
}

/// A workspace with how much of its quotas its files use.
#[derive(Debug, Clone)]
pub struct WorkspaceUsage {
    pub workspace: Workspace,
    pub files: i64,
    pub bytes: i64,
    pub max_files: i64,
    pub max_bytes: i64,
}

/// A file written: its new version, and whether it was created.
#[derive(Debug, Clone)]
pub struct Saved {
    pub content_hash: String,
    pub created: bool,
}

/// What an import wrote: each path with its new hash and whether it was created, by path.
#[derive(Debug, Clone)]
pub struct Imported {
    pub files: Vec<(String, String, bool)>,
}

pub async fn get(pool: &PgPool, context: &TenantContext, id: WorkspaceId) -> Result<WorkspaceUsage, WorkspaceError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let workspace = store::get(&mut transaction, id).await?.ok_or(WorkspaceError::NotFound)?;
    let (files, bytes) = store::usage(&mut transaction, id).await?;
    let (max_files, max_bytes) = store::quotas(&mut transaction).await?;
    transaction.commit().await?;
    Ok(WorkspaceUsage { workspace, files, bytes, max_files: i64::from(max_files), max_bytes })
}

/// A page of the files under `prefix` (any text the paths start with), by path, after `after`.
pub async fn list(
    pool: &PgPool,
    context: &TenantContext,
    id: WorkspaceId,
    prefix: &str,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<FileEntry>, WorkspaceError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    if !store::exists(&mut transaction, id).await? {
        return Err(WorkspaceError::NotFound);
    }
    let files = store::list_files(&mut transaction, id, prefix, after, limit).await?;
    transaction.commit().await?;
    Ok(files)
}

pub async fn read(
    pool: &PgPool,
    context: &TenantContext,
    id: WorkspaceId,
    path: &str,
) -> Result<StoredFile, WorkspaceError> {
    check_path(path)?;
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    if !store::exists(&mut transaction, id).await? {
        return Err(WorkspaceError::NotFound);
    }
    let file = store::file(&mut transaction, id, path).await?;
    transaction.commit().await?;
    file.ok_or_else(|| WorkspaceError::FileNotFound(path.to_owned()))
}

/// Creates or replaces a file when `conditions` hold for its current version; checked with the row locked
/// in the transaction that writes, so no other write comes between.
pub async fn put(
    pool: &PgPool,
    context: &TenantContext,
    id: WorkspaceId,
    path: &str,
    text: &str,
    conditions: &Preconditions,
) -> Result<Saved, WorkspaceError> {
    check_path(path)?;
    if text.len() > MAX_FILE_BYTES {
        return Err(WorkspaceError::FileTooLarge);
    }
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let before = lock_workspace(&mut transaction, id).await?;
    let current = store::file_for_update(&mut transaction, id, path).await?;
    conditions.check(path, current.as_ref())?;
    let content_hash = store::upsert_file(&mut transaction, context.tenant_id(), id, path, text).await?;
    check_quotas(&mut transaction, id, before).await?;
    let created = current.is_none();
    let entry = AuditEntry::new("workspace_file.saved", "workspace", id.to_string())
        .with_details(serde_json::json!({ "path": path, "content_hash": content_hash, "created": created }));
    audit::record(&mut transaction, context, &entry).await?;
    transaction.commit().await?;
    Ok(Saved { content_hash, created })
}

/// Deletes a file when `conditions` hold for its current version.
pub async fn delete(
    pool: &PgPool,
    context: &TenantContext,
    id: WorkspaceId,
    path: &str,
    conditions: &Preconditions,
) -> Result<(), WorkspaceError> {
    check_path(path)?;
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    lock_workspace(&mut transaction, id).await?;
    let current = store::file_for_update(&mut transaction, id, path).await?;
    let Some(file) = current else { return Err(WorkspaceError::FileNotFound(path.to_owned())) };
    conditions.check(path, Some(&file))?;
    store::delete_file(&mut transaction, id, path).await?;
    let entry = AuditEntry::new("workspace_file.deleted", "workspace", id.to_string())
        .with_details(serde_json::json!({ "path": path, "content_hash": file.content_hash }));
    audit::record(&mut transaction, context, &entry).await?;
    transaction.commit().await?;
    Ok(())
}

/// Moves a file to a path where there is none, when `conditions` hold for the file's current version.
pub async fn rename(
    pool: &PgPool,
    context: &TenantContext,
    id: WorkspaceId,
    from: &str,
    to: &str,
    conditions: &Preconditions,
) -> Result<StoredFile, WorkspaceError> {
    check_path(from)?;
    check_path(to)?;
    if from == to {
        return Err(WorkspaceError::Invalid("from and to must be different paths".to_owned()));
    }
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let before = lock_workspace(&mut transaction, id).await?;
    let current = store::file_for_update(&mut transaction, id, from).await?;
    let Some(file) = current else { return Err(WorkspaceError::FileNotFound(from.to_owned())) };
    conditions.check(from, Some(&file))?;
    // Every writer of the workspace's files waits on its lock, so the destination cannot appear meanwhile;
    // the unique index would refuse it anyway.
    if store::file_for_update(&mut transaction, id, to).await?.is_some() {
        return Err(WorkspaceError::FileExists(to.to_owned()));
    }
    let renamed = db::none_if_unique_violation(store::rename_file(&mut transaction, id, from, to).await)?
        .flatten()
        .ok_or_else(|| WorkspaceError::FileExists(to.to_owned()))?;
    check_quotas(&mut transaction, id, before).await?;
    let entry = AuditEntry::new("workspace_file.renamed", "workspace", id.to_string())
        .with_details(serde_json::json!({ "from": from, "to": to, "content_hash": renamed.content_hash }));
    audit::record(&mut transaction, context, &entry).await?;
    transaction.commit().await?;
    Ok(renamed)
}

/// Merges an archive's files into the workspace, all in one transaction: every file is written (created or
/// replaced; the others stay) or, when any entry is refused or a quota would be passed, none.
pub async fn import(
    pool: &PgPool,
    context: &TenantContext,
    id: WorkspaceId,
    body: Vec<u8>,
    content_type: Option<&str>,
) -> Result<Imported, WorkspaceError> {
    let kind = ArchiveKind::detect(&body, content_type)?;
    // Inflating and hashing up to the archive limits is CPU work: off the async workers, before any
    // connection is taken.
    let read = crate::background::cpu_bound(move || -> Result<Vec<(String, String, String)>, ArchiveError> {
        let files: BTreeMap<String, String> = archive::read(&body, kind)?;
        Ok(files
            .into_iter()
            .map(|(path, content)| {
                let hash = super::content_hash(&content);
                (path, content, hash)
            })
            .collect())
    })
    .await;
    let files = match read {
        Ok(files) => files?,
        Err(error) if error.is_panic() => {
            tracing::warn!(%error, "reading an archive panicked; it is refused as invalid");
            return Err(ArchiveError::Invalid("the archive could not be read".to_owned()).into());
        }
        Err(error) => panic!("the archive was never read: {error}"),
    };
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let before = lock_workspace(&mut transaction, id).await?;
    let rows: Vec<(&str, &str, &str)> =
        files.iter().map(|(path, content, hash)| (path.as_str(), content.as_str(), hash.as_str())).collect();
    let written = store::upsert_files(&mut transaction, context.tenant_id(), id, &rows).await?;
    check_quotas(&mut transaction, id, before).await?;
    let created = written.iter().filter(|(_, _, created)| *created).count();
    let entry = AuditEntry::new("workspace.imported", "workspace", id.to_string()).with_details(serde_json::json!({
        "files": written.len(),
        "created": created,
        "replaced": written.len() - created,
    }));
    audit::record(&mut transaction, context, &entry).await?;
    transaction.commit().await?;
    let mut files = written;
    files.sort_unstable();
    Ok(Imported { files })
}

/// The workspace as a tar of its files, read in one snapshot.
pub async fn export(
    pool: &PgPool,
    context: &TenantContext,
    id: WorkspaceId,
) -> Result<(Workspace, Vec<u8>), WorkspaceError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let workspace = store::get(&mut transaction, id).await?.ok_or(WorkspaceError::NotFound)?;
    let files = store::all_files(&mut transaction, id).await?;
    transaction.commit().await?;
    let tar = crate::background::cpu_bound(move || {
        let entries: Vec<archive::TarFile<'_>> = files
            .iter()
            .map(|file| archive::TarFile {
                path: &file.path,
                content: &file.content,
                modified: u64::try_from(file.updated_at.timestamp()).unwrap_or(0),
            })
            .collect();
        archive::write_tar(&entries)
    })
    .await
    .expect("writing a tar into memory does not panic")
    .expect("writing a tar into memory does not fail");
    Ok((workspace, tar))
}

/// Locks the workspace (every writer of its files queues here) and says how much it holds before the write.
async fn lock_workspace(connection: &mut PgConnection, id: WorkspaceId) -> Result<(i64, i64), WorkspaceError> {
    store::lock(connection, id).await?.ok_or(WorkspaceError::NotFound)?;
    Ok(store::usage(connection, id).await?)
}

/// Refuses a write that left the workspace past one of the tenant's quotas and grew it there (a workspace
/// already past a quota lowered since may still shrink, or be edited within what it holds). Called after
/// the write, in its transaction, with the workspace locked: what is refused is rolled back.
pub async fn check_quotas(
    connection: &mut PgConnection,
    id: WorkspaceId,
    (files_before, bytes_before): (i64, i64),
) -> Result<(), WorkspaceError> {
    let (max_files, max_bytes) = store::quotas(connection).await?;
    let (files, bytes) = store::usage(connection, id).await?;
    if files > i64::from(max_files) && files > files_before {
        return Err(WorkspaceError::QuotaExceeded { setting: "workspace_max_files", limit: i64::from(max_files) });
    }
    if bytes > max_bytes && bytes > bytes_before {
        return Err(WorkspaceError::QuotaExceeded { setting: "workspace_max_bytes", limit: max_bytes });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_hold_as_http_has_them() {
        let hashes = |list: &[&str]| Some(Versions::Hashes(list.iter().map(|hash| (*hash).to_owned()).collect()));
        let none = Preconditions::default();
        let matching = Preconditions { if_match: hashes(&["a", "b"]), ..Preconditions::default() };
        let exists = Preconditions { if_match: Some(Versions::Any), ..Preconditions::default() };
        let absent = Preconditions { if_none_match: Some(Versions::Any), ..Preconditions::default() };
        let not_these = Preconditions { if_none_match: hashes(&["a"]), ..Preconditions::default() };
        let table = [
            (&none, None, true),
            (&none, Some("a"), true),
            (&matching, Some("b"), true),
            (&matching, Some("c"), false),
            (&matching, None, false),
            (&exists, Some("c"), true),
            (&exists, None, false),
            (&absent, None, true),
            (&absent, Some("a"), false),
            (&not_these, Some("a"), false),
            (&not_these, Some("b"), true),
            (&not_these, None, true),
        ];
        for (conditions, current, expected) in table {
            assert_eq!(conditions.hold(current), expected, "{conditions:?} on {current:?}");
        }
    }
}
