//! Applying an approved changeset: every patch not rejected written in one transaction, or nothing.
//!
//! Each target file is locked (after the workspace, as every writer of its files does) and compared with
//! the version the patch was made on. A file that moved on is a conflict unless a three-way merge is clean:
//! for a modification (or a rename's content) whose base content is known, `diffy::merge(base, current,
//! patch)` without conflict markers — edits on lines apart — is written and reported as merged. A create
//! whose file exists, a rename whose destination exists, a delete of a changed file and overlapping edits
//! stay conflicts: `409 changeset_conflict` naming every one, nothing written.

use std::collections::BTreeMap;

use sqlx::PgPool;

use super::{Changeset, ChangesetError, Conflict, Operation, Patch, Review, Status, review, store};
use crate::auth::context::TenantContext;
use crate::db;
use crate::ids::{ChangesetId, WorkspaceId};
use crate::workspaces::store::{self as files_store, StoredFile};

/// What an apply did.
#[derive(Debug, Clone)]
pub struct Applied {
    pub changeset: Changeset,
    /// The paths written, created, deleted or renamed (a rename by its destination), in patch order.
    pub written: Vec<String>,
    /// Those written as a three-way merge with changes made since.
    pub merged: Vec<String>,
    /// The patches rejected in review, left out.
    pub skipped: Vec<String>,
}

/// One write the apply will make.
enum Write {
    Put { path: String, content: String },
    Delete { path: String },
}

pub async fn apply(
    pool: &PgPool,
    context: &TenantContext,
    workspace_id: WorkspaceId,
    id: ChangesetId,
) -> Result<Applied, ChangesetError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    // The workspace first, as every writer of its files: the quota checked below holds until commit.
    files_store::lock(&mut transaction, workspace_id).await?.ok_or(ChangesetError::WorkspaceNotFound)?;
    let usage_before = files_store::usage(&mut transaction, workspace_id).await?;
    let changeset = review::locked(&mut transaction, workspace_id, id).await?;
    if !changeset.status.can_become(Status::Applied) {
        return Err(ChangesetError::InvalidTransition { from: changeset.status, to: Status::Applied });
    }
    let patches = store::patches(&mut transaction, id).await?;
    let (skipped, patches): (Vec<Patch>, Vec<Patch>) =
        patches.into_iter().partition(|patch| patch.review == Review::Rejected);

    // Every target, locked in path order (two applies never wait on each other crosswise).
    let mut targets: Vec<&str> = patches
        .iter()
        .flat_map(|patch| std::iter::once(patch.path.as_str()).chain(patch.new_path.as_deref()))
        .collect();
    targets.sort_unstable();
    targets.dedup();
    let mut current: BTreeMap<String, Option<StoredFile>> = BTreeMap::new();
    for path in targets {
        let file = files_store::file_for_update(&mut transaction, workspace_id, path).await?;
        current.insert(path.to_owned(), file);
    }

    let mut conflicts = Vec::new();
    let mut writes = Vec::new();
    let mut written = Vec::new();
    let mut merged = Vec::new();
    for patch in &patches {
        let file = current.get(&patch.path).and_then(Option::as_ref);
        let hash = file.map(|file| file.content_hash.clone());
        let conflict = |path: &str, base_hash: Option<String>, current_hash: Option<String>| Conflict {
            path: path.to_owned(),
            base_hash,
            current_hash,
        };
        match patch.operation {
            Operation::Create => {
                if file.is_some() {
                    conflicts.push(conflict(&patch.path, None, hash));
                    continue;
                }
                writes
                    .push(Write::Put { path: patch.path.clone(), content: patch.content.clone().unwrap_or_default() });
                written.push(patch.path.clone());
            }
            Operation::Delete => {
                if file.is_none() || hash != patch.base_hash {
                    conflicts.push(conflict(&patch.path, patch.base_hash.clone(), hash));
                    continue;
                }
                writes.push(Write::Delete { path: patch.path.clone() });
                written.push(patch.path.clone());
            }
            Operation::Modify | Operation::Rename => {
                let Some(file) = file else {
                    conflicts.push(conflict(&patch.path, patch.base_hash.clone(), None));
                    continue;
                };
                let ours = patch.content.clone().unwrap_or_default();
                let text = if hash == patch.base_hash {
                    ours
                } else if let Some(text) = merge(patch, &file.content, &ours) {
                    merged.push(patch.new_path.clone().unwrap_or_else(|| patch.path.clone()));
                    text
                } else {
                    conflicts.push(conflict(&patch.path, patch.base_hash.clone(), hash));
                    continue;
                };
                let target = match &patch.new_path {
                    Some(to) => {
                        if let Some(there) = current.get(to).and_then(Option::as_ref) {
                            conflicts.push(conflict(to, None, Some(there.content_hash.clone())));
                            continue;
                        }
                        writes.push(Write::Delete { path: patch.path.clone() });
                        to.clone()
                    }
                    None => patch.path.clone(),
                };
                writes.push(Write::Put { path: target.clone(), content: text });
                written.push(target);
            }
        }
    }
    if !conflicts.is_empty() {
        return Err(ChangesetError::Conflict { conflicts });
    }
    write(&mut transaction, context, workspace_id, writes).await?;
    crate::workspaces::files::check_quotas(&mut transaction, workspace_id, usage_before).await?;
    let applied = review::transition(&mut transaction, context, &changeset, Status::Applied, None, &written).await?;
    transaction.commit().await?;
    Ok(Applied { changeset: applied, written, merged, skipped: skipped.into_iter().map(|patch| patch.path).collect() })
}

/// Makes the writes, deletes first: a rename's source goes before anything is written at another path.
async fn write(
    connection: &mut sqlx::PgConnection,
    context: &TenantContext,
    workspace_id: WorkspaceId,
    mut writes: Vec<Write>,
) -> Result<(), sqlx::Error> {
    writes.sort_by_key(|write| matches!(write, Write::Put { .. }));
    for write in &writes {
        match write {
            Write::Delete { path } => {
                files_store::delete_file(connection, workspace_id, path).await?;
            }
            Write::Put { path, content } => {
                files_store::upsert_file(connection, context.tenant_id(), workspace_id, path, content).await?;
            }
        }
    }
    Ok(())
}

/// The patch's content merged with the file's changes since its base, when the base is known and the two
/// sets of edits do not overlap.
fn merge(patch: &Patch, current: &str, ours: &str) -> Option<String> {
    let base = patch.base_content.as_deref().filter(|_| patch.base_hash.is_some())?;
    diffy::merge(base, current, ours).ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn edits_apart_merge_and_overlapping_ones_do_not() {
        let base = "one\ntwo\nthree\nfour\nfive\n";
        let theirs = "ONE\ntwo\nthree\nfour\nfive\n";
        let ours = "one\ntwo\nthree\nfour\nFIVE\n";
        assert_eq!(diffy::merge(base, theirs, ours).unwrap(), "ONE\ntwo\nthree\nfour\nFIVE\n");
        assert!(diffy::merge(base, "one\n2\nthree\nfour\nfive\n", "one\nTWO\nthree\nfour\nfive\n").is_err());
    }
}
