//! Changesets an IDE opens itself: each patch names the version it was made on (`base_hash`) and brings
//! the new content whole or as a unified diff against that version. Every patch is checked against what
//! the changeset sees at its path (its own earlier patch, else the workspace's file) and folded as an
//! agent's change is (`stack`); all of a request is stored in one transaction, or nothing.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;

use sqlx::{PgConnection, PgPool};

use super::stack::{self, Change, Draft};
use super::{Changeset, ChangesetError, Conflict, MAX_PATCHES, Operation, Patch, Status, actor_label, review, store};
use crate::audit::{self, AuditEntry};
use crate::auth::context::TenantContext;
use crate::db;
use crate::ids::{ChangesetId, TenantId, WorkspaceId};
use crate::workspaces::{self, MAX_FILE_BYTES, check_path};

/// One patch as a client sends it.
#[derive(Debug, Clone)]
pub struct PatchInput {
    pub path: String,
    pub operation: Operation,
    /// The content hash of the version the patch was made on: required except for a create.
    pub base_hash: Option<String>,
    /// The new content (create, modify; for a rename, optional: the content moves unchanged without it).
    pub content: Option<String>,
    /// Instead of `content`, a unified diff against the base version.
    pub diff: Option<String>,
    /// A rename's destination.
    pub new_path: Option<String>,
}

/// A changeset an IDE opens.
#[derive(Debug, Clone)]
pub struct NewChangeset {
    pub title: String,
    pub patches: Vec<PatchInput>,
    /// Submitted for review at once.
    pub submit: bool,
    /// An open changeset of the workspace this one replaces: it becomes `superseded`.
    pub supersedes: Option<ChangesetId>,
}

/// A changeset with its patches.
#[derive(Debug, Clone)]
pub struct Detail {
    pub changeset: Changeset,
    pub patches: Vec<Patch>,
    pub artifacts: Vec<store::ArtifactSummary>,
}

/// Opens a changeset with its patches (and submits it, and supersedes another, when asked), all in one
/// transaction.
pub async fn create(
    pool: &PgPool,
    context: &TenantContext,
    workspace_id: WorkspaceId,
    request: NewChangeset,
) -> Result<Detail, ChangesetError> {
    let title = request.title.trim();
    if title.is_empty() || title.chars().count() > 500 {
        return Err(ChangesetError::Invalid("title must be 1 to 500 characters".to_owned()));
    }
    if request.patches.is_empty() {
        return Err(ChangesetError::Invalid("a changeset needs at least one patch".to_owned()));
    }
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    if !workspaces::store::exists(&mut transaction, workspace_id).await? {
        return Err(ChangesetError::WorkspaceNotFound);
    }
    let opened =
        store::insert(&mut transaction, context.tenant_id(), workspace_id, None, title, &actor_label(context)).await?;
    let patches = add(&mut transaction, context.tenant_id(), &opened, &request.patches).await?;
    if patches.is_empty() {
        return Err(ChangesetError::Invalid("the patches leave every file as it is".to_owned()));
    }
    let entry = AuditEntry::new("changeset.created", "changeset", opened.id.to_string()).with_details(
        serde_json::json!({ "workspace_id": workspace_id, "paths": paths_of(&patches), "supersedes": request.supersedes }),
    );
    audit::record(&mut transaction, context, &entry).await?;
    let mut changeset = opened;
    if request.submit {
        changeset = review::transition(&mut transaction, context, &changeset, Status::PendingReview, None, &[]).await?;
    }
    if let Some(replaced) = request.supersedes {
        if replaced == changeset.id {
            return Err(ChangesetError::Invalid("a changeset cannot supersede itself".to_owned()));
        }
        let old = review::locked(&mut transaction, workspace_id, replaced).await?;
        review::transition(&mut transaction, context, &old, Status::Superseded, None, &[]).await?;
    }
    let detail = detail(&mut transaction, changeset).await?;
    transaction.commit().await?;
    Ok(detail)
}

/// Adds patches to a draft changeset an IDE opened, in one transaction.
pub async fn add_patches(
    pool: &PgPool,
    context: &TenantContext,
    workspace_id: WorkspaceId,
    id: ChangesetId,
    patches: &[PatchInput],
) -> Result<Detail, ChangesetError> {
    if patches.is_empty() {
        return Err(ChangesetError::Invalid("patches must not be empty".to_owned()));
    }
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let changeset = review::locked(&mut transaction, workspace_id, id).await?;
    if changeset.run_id.is_some() {
        return Err(ChangesetError::Refused("only its run adds patches to an agent run's changeset".to_owned()));
    }
    let written = add(&mut transaction, context.tenant_id(), &changeset, patches).await?;
    let entry = AuditEntry::new("changeset.patched", "changeset", id.to_string())
        .with_details(serde_json::json!({ "workspace_id": workspace_id, "paths": paths_of(&written) }));
    audit::record(&mut transaction, context, &entry).await?;
    let detail = detail(&mut transaction, changeset).await?;
    transaction.commit().await?;
    Ok(detail)
}

/// A changeset of the workspace with its patches and artifacts.
pub async fn get(
    pool: &PgPool,
    context: &TenantContext,
    workspace_id: WorkspaceId,
    id: ChangesetId,
) -> Result<Detail, ChangesetError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let changeset = store::get(&mut transaction, id)
        .await?
        .filter(|changeset| changeset.workspace_id == workspace_id)
        .ok_or(ChangesetError::NotFound)?;
    let detail = detail(&mut transaction, changeset).await?;
    transaction.commit().await?;
    Ok(detail)
}

/// The workspace's changesets, newest first.
pub async fn list(
    pool: &PgPool,
    context: &TenantContext,
    workspace_id: WorkspaceId,
    status: Option<Status>,
    limit: i64,
) -> Result<Vec<Changeset>, ChangesetError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    if !workspaces::store::exists(&mut transaction, workspace_id).await? {
        return Err(ChangesetError::WorkspaceNotFound);
    }
    let changesets = store::list(&mut transaction, workspace_id, status, limit).await?;
    transaction.commit().await?;
    Ok(changesets)
}

/// The changeset's whole diff: its patches' diffs in order, one unified diff that `git apply` takes on
/// the workspace's files (rejected patches left out).
pub fn unified_diff(patches: &[Patch]) -> String {
    patches.iter().filter(|patch| patch.review != super::Review::Rejected).map(|patch| patch.diff.as_str()).collect()
}

pub(super) async fn detail(connection: &mut PgConnection, changeset: Changeset) -> Result<Detail, sqlx::Error> {
    let patches = store::patches(connection, changeset.id).await?;
    // Written by checks (`workspaces::checks`); listed here without their output, which is served on its own.
    let artifacts = store::artifacts(connection, changeset.id).await?;
    Ok(Detail { changeset, patches, artifacts })
}

fn paths_of(patches: &[Patch]) -> Vec<&str> {
    patches.iter().map(|patch| patch.path.as_str()).collect()
}

/// Checks and folds the patches into the (locked, draft) changeset and stores the outcome.
async fn add(
    connection: &mut PgConnection,
    tenant_id: TenantId,
    changeset: &Changeset,
    inputs: &[PatchInput],
) -> Result<Vec<Patch>, ChangesetError> {
    if changeset.status != Status::Draft {
        return Err(ChangesetError::InvalidTransition { from: changeset.status, to: Status::Draft });
    }
    if inputs.len() > MAX_PATCHES {
        return Err(ChangesetError::Invalid(format!("a changeset holds at most {MAX_PATCHES} files")));
    }
    for input in inputs {
        check(input)?;
    }
    let before = store::patches(connection, changeset.id).await?;
    let mut paths: Vec<String> = Vec::new();
    for input in inputs {
        paths.push(input.path.clone());
        paths.extend(input.new_path.clone());
    }
    paths.sort_unstable();
    paths.dedup();
    let mut workspace: HashMap<String, Option<(String, String)>> = HashMap::new();
    for path in paths {
        let file = workspaces::store::file(connection, changeset.workspace_id, &path).await?;
        workspace.insert(path, file.map(|file| (file.content_hash, file.content)));
    }
    let mut drafts: Vec<Draft> = before.iter().map(Patch::draft).collect();
    fold_inputs(&mut drafts, inputs, &workspace)?;
    if drafts.len() > MAX_PATCHES {
        return Err(ChangesetError::Invalid(format!("a changeset holds at most {MAX_PATCHES} files")));
    }
    let touched = super::store_drafts(connection, tenant_id, changeset.id, &before, &drafts, "").await?;
    store::touch(connection, changeset.id).await?;
    Ok(touched)
}

/// Folds the patches into `drafts`, each checked against what the changeset sees at its path;
/// `workspace` holds the workspace's file (hash, content) at every path they name.
fn fold_inputs(
    drafts: &mut Vec<Draft>,
    inputs: &[PatchInput],
    workspace: &HashMap<String, Option<(String, String)>>,
) -> Result<(), ChangesetError> {
    let lookup = |path: &str| workspace.get(path).cloned().flatten();
    let mut conflicts = Vec::new();
    for input in inputs {
        let seen = stack::view(drafts, &input.path, lookup(&input.path));
        let seen_hash = seen.as_deref().map(workspaces::content_hash);
        let base_holds = match input.operation {
            Operation::Create => seen.is_none(),
            _ => seen_hash.is_some() && seen_hash == input.base_hash,
        };
        if !base_holds {
            conflicts.push(Conflict {
                path: input.path.clone(),
                base_hash: input.base_hash.clone(),
                current_hash: seen_hash,
            });
            continue;
        }
        if let Some(to) = &input.new_path
            && let Some(there) = stack::view(drafts, to, lookup(to))
        {
            let current_hash = Some(workspaces::content_hash(&there));
            conflicts.push(Conflict { path: to.clone(), base_hash: None, current_hash });
            continue;
        }
        let base = seen.unwrap_or_default();
        let content = match (&input.content, &input.diff) {
            (Some(content), _) => Some(content.clone()),
            (None, Some(diff)) => Some(apply_diff(&input.path, &base, diff)?),
            (None, None) => None,
        };
        if content.as_ref().is_some_and(|content| content.len() > MAX_FILE_BYTES) {
            return Err(ChangesetError::Invalid(format!(
                "`{}`: a file may hold at most {MAX_FILE_BYTES} bytes",
                input.path
            )));
        }
        for change in changes(input, content) {
            stack::fold(drafts, change, &lookup).map_err(ChangesetError::Refused)?;
        }
    }
    if conflicts.is_empty() { Ok(()) } else { Err(ChangesetError::Conflict { conflicts }) }
}

/// The fields each operation needs, and only those.
fn check(input: &PatchInput) -> Result<(), ChangesetError> {
    let invalid = |message: &str| Err(ChangesetError::Invalid(format!("`{}`: {message}", input.path)));
    check_path(&input.path).map_err(|error| ChangesetError::Invalid(format!("`{}`: {error}", input.path)))?;
    if let Some(to) = &input.new_path {
        check_path(to).map_err(|error| ChangesetError::Invalid(format!("`{to}`: {error}")))?;
    }
    if input.content.is_some() && input.diff.is_some() {
        return invalid("give content or diff, not both");
    }
    let has_new_content = input.content.is_some() || input.diff.is_some();
    match input.operation {
        Operation::Create if input.base_hash.is_some() => {
            invalid("a create has no base_hash (the file must not exist)")
        }
        Operation::Modify | Operation::Delete | Operation::Rename if input.base_hash.is_none() => {
            invalid("base_hash (the content hash of the version the patch was made on) is required")
        }
        Operation::Create | Operation::Modify if !has_new_content => invalid("content or diff is required"),
        Operation::Delete if has_new_content => invalid("a delete has no content or diff"),
        Operation::Rename if input.new_path.is_none() => invalid("a rename needs new_path"),
        Operation::Rename if input.new_path.as_deref() == Some(input.path.as_str()) => {
            invalid("new_path must differ from path")
        }
        Operation::Create | Operation::Modify | Operation::Delete if input.new_path.is_some() => {
            invalid("only a rename has new_path")
        }
        _ => Ok(()),
    }
}

/// The patch as changes to fold: a rename with new content moves the file, then writes it.
fn changes(input: &PatchInput, content: Option<String>) -> Vec<Change> {
    let path = input.path.clone();
    match input.operation {
        Operation::Create | Operation::Modify => vec![Change::Write { path, content: content.unwrap_or_default() }],
        Operation::Delete => vec![Change::Delete { path }],
        Operation::Rename => {
            let to = input.new_path.clone().unwrap_or_default();
            let mut changes = vec![Change::Rename { from: path, to: to.clone() }];
            changes.extend(content.map(|content| Change::Write { path: to, content }));
            changes
        }
    }
}

/// Applies a client's unified diff to the base it names; 422 `invalid_diff` when it does not parse or apply.
fn apply_diff(path: &str, base: &str, diff: &str) -> Result<String, ChangesetError> {
    // diffy's parser and applier see arbitrary client input: a panic in them is a refusal, not a 500.
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let parsed = diffy::Patch::from_str(diff).map_err(|error| format!("the diff does not parse: {error}"))?;
        diffy::apply(base, &parsed).map_err(|error| format!("the diff does not apply to its base: {error}"))
    }));
    match outcome {
        Ok(result) => result.map_err(|message| ChangesetError::InvalidDiff(format!("`{path}`: {message}"))),
        Err(_) => Err(ChangesetError::InvalidDiff(format!("`{path}`: the diff could not be read"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(operation: Operation) -> PatchInput {
        PatchInput {
            path: "a.txt".to_owned(),
            operation,
            base_hash: Some("h".to_owned()),
            content: Some("x".to_owned()),
            diff: None,
            new_path: None,
        }
    }

    #[test]
    fn each_operation_takes_its_fields() {
        assert!(check(&input(Operation::Modify)).is_ok());
        assert!(check(&input(Operation::Create)).is_err(), "a create has no base");
        assert!(check(&PatchInput { base_hash: None, ..input(Operation::Create) }).is_ok());
        assert!(check(&PatchInput { base_hash: None, ..input(Operation::Modify) }).is_err());
        assert!(check(&input(Operation::Delete)).is_err(), "a delete has no content");
        assert!(check(&PatchInput { content: None, ..input(Operation::Delete) }).is_ok());
        assert!(check(&input(Operation::Rename)).is_err(), "a rename needs new_path");
        assert!(
            check(&PatchInput { new_path: Some("b.txt".into()), content: None, ..input(Operation::Rename) }).is_ok()
        );
        assert!(check(&PatchInput { diff: Some(String::new()), ..input(Operation::Modify) }).is_err(), "both");
        assert!(check(&PatchInput { path: "../x".into(), ..input(Operation::Modify) }).is_err());
    }

    #[test]
    fn a_diff_applies_to_its_base_or_is_refused() {
        let diff = "--- a/a.txt\n+++ b/a.txt\n@@ -1,2 +1,2 @@\n one\n-two\n+2\n";
        assert_eq!(apply_diff("a.txt", "one\ntwo\n", diff).unwrap(), "one\n2\n");
        assert!(matches!(apply_diff("a.txt", "one\nthree\n", diff), Err(ChangesetError::InvalidDiff(_))));
        assert!(matches!(apply_diff("a.txt", "one\n", "@@ nonsense"), Err(ChangesetError::InvalidDiff(_))));
    }
}
