//! A workspace's checks: MCP tools of the tenant's connectors (`connector.tool`, a validator, a test runner
//! it hosts; Switchboard runs no tenant code itself) that judge a changeset's version of the files. Each
//! check is called with `{"files": [{"path", "content"}, …]}` (bounded in total) and its result is kept as
//! an immutable artifact of the changeset. Calling them is the engine's (`engine/checks.rs`: through the
//! tenant's policy profile like any tool call); this module prepares the input, reads a result into an
//! artifact, and stores and serves artifacts.

pub mod store;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::{PgConnection, PgPool};

use super::changesets::{self, Changeset, Operation, Patch};
use crate::auth::context::TenantContext;
use crate::db;
use crate::ids::{ArtifactId, ChangesetId, RunId, TenantId, WorkspaceId};

/// The most bytes of file content (paths included) one check is given.
pub const MAX_INPUT_BYTES: usize = 4 * 1024 * 1024;
/// The most bytes kept of each of an artifact's stdout, stderr and report.
pub const MAX_OUTPUT_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, sqlx::Type, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum ArtifactStatus {
    /// The check ran and found nothing wrong.
    Passed,
    /// The check ran and found something wrong (it said `failed`, or answered `isError`).
    Failed,
    /// The check could not run: its server was unreachable, timed out, or broke the protocol; or it said
    /// `error`.
    Error,
    /// The tenant's policy profile refused the call (the reason is in `stderr`).
    Denied,
}

impl ArtifactStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Passed => "passed",
            Self::Failed => "failed",
            Self::Error => "error",
            Self::Denied => "denied",
        }
    }
}

/// What one check left for a changeset; never changed once written.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Artifact {
    pub id: ArtifactId,
    pub changeset_id: ChangesetId,
    pub run_id: Option<RunId>,
    pub check_name: String,
    pub status: ArtifactStatus,
    pub stdout: String,
    pub stderr: String,
    pub report: Option<String>,
    pub content_type: String,
    pub truncated: bool,
    pub created_at: DateTime<Utc>,
}

/// An artifact before it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewArtifact {
    pub check_name: String,
    pub status: ArtifactStatus,
    pub stdout: String,
    pub stderr: String,
    pub report: Option<String>,
    /// The report's type: `application/json` for a structured report, `text/plain` otherwise.
    pub content_type: &'static str,
    pub truncated: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("no such workspace")]
    WorkspaceNotFound,
    #[error("no such changeset")]
    ChangesetNotFound,
    #[error("no such artifact")]
    ArtifactNotFound,
    #[error("the workspace has no checks; set its `checks` to MCP tools of your connectors (`connector.tool`)")]
    NoChecks,
    #[error("the changeset's files hold {bytes} bytes; checks are given at most {MAX_INPUT_BYTES}")]
    TooLarge { bytes: usize },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// What the checks of one changeset run on.
#[derive(Debug, Clone)]
pub struct CheckInput {
    pub changeset: Changeset,
    /// The qualified names (`connector.tool`) of the workspace's checks.
    pub checks: Vec<String>,
    /// The files as the changeset leaves them, by path.
    pub files: Vec<(String, String)>,
}

impl CheckInput {
    /// The arguments every check is called with.
    pub fn arguments(&self) -> Value {
        let files: Vec<Value> =
            self.files.iter().map(|(path, content)| serde_json::json!({ "path": path, "content": content })).collect();
        serde_json::json!({ "files": files })
    }
}

/// The changeset (of this workspace), the workspace's checks and the files as the changeset leaves them.
pub async fn prepare(
    connection: &mut PgConnection,
    workspace_id: WorkspaceId,
    changeset_id: ChangesetId,
) -> Result<CheckInput, CheckError> {
    let workspace = super::store::get(connection, workspace_id).await?.ok_or(CheckError::WorkspaceNotFound)?;
    let changeset = changesets::store::get(connection, changeset_id)
        .await?
        .filter(|changeset| changeset.workspace_id == workspace_id)
        .ok_or(CheckError::ChangesetNotFound)?;
    let patches = changesets::store::patches(connection, changeset_id).await?;
    let stored = super::store::all_files(connection, workspace_id).await?;
    let files = changed_files(stored.into_iter().map(|file| (file.path, file.content)), &patches)?;
    Ok(CheckInput { changeset, checks: workspace.checks, files })
}

/// The workspace's files with the changeset's patches applied, refused above [`MAX_INPUT_BYTES`].
fn changed_files(
    workspace: impl Iterator<Item = (String, String)>,
    patches: &[Patch],
) -> Result<Vec<(String, String)>, CheckError> {
    let mut files: BTreeMap<String, String> = workspace.collect();
    for patch in patches {
        match patch.operation {
            Operation::Create | Operation::Modify => {
                files.insert(patch.path.clone(), patch.content.clone().unwrap_or_default());
            }
            Operation::Delete => {
                files.remove(&patch.path);
            }
            Operation::Rename => {
                files.remove(&patch.path);
                if let Some(to) = &patch.new_path {
                    files.insert(to.clone(), patch.content.clone().unwrap_or_default());
                }
            }
        }
    }
    let bytes: usize = files.iter().map(|(path, content)| path.len() + content.len()).sum();
    if bytes > MAX_INPUT_BYTES {
        return Err(CheckError::TooLarge { bytes });
    }
    Ok(files.into_iter().collect())
}

/// A check's result as an artifact. `ran` is what the tool answered (`Err` when it answered `isError`).
/// A structured answer `{status, stdout, stderr, report}` says its own status (`passed`, `failed` or
/// `error`; `isError` makes a `passed` `failed`); any other answer passes unless it is an error, and is
/// kept as stdout (text) or as the report (JSON).
pub fn artifact_from(check: &str, ran: Result<&Value, &Value>) -> NewArtifact {
    let (value, is_error) = match ran {
        Ok(value) => (value, false),
        Err(value) => (value, true),
    };
    let said = value.get("status").and_then(Value::as_str).and_then(|status| match status {
        "passed" => Some(ArtifactStatus::Passed),
        "failed" => Some(ArtifactStatus::Failed),
        "error" => Some(ArtifactStatus::Error),
        _ => None,
    });
    let text_of = |field: &str| match value.get(field) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    };
    let mut artifact = match said {
        Some(status) => {
            let status = if is_error && status == ArtifactStatus::Passed { ArtifactStatus::Failed } else { status };
            let (report, content_type) = match value.get("report") {
                None | Some(Value::Null) => (None, "text/plain"),
                Some(Value::String(text)) => (Some(text.clone()), "text/plain"),
                Some(report) => (Some(report.to_string()), "application/json"),
            };
            NewArtifact {
                check_name: check.to_owned(),
                status,
                stdout: text_of("stdout"),
                stderr: text_of("stderr"),
                report,
                content_type,
                truncated: false,
            }
        }
        None => {
            let status = if is_error { ArtifactStatus::Failed } else { ArtifactStatus::Passed };
            let (stdout, report, content_type) = match value {
                Value::String(text) => (text.clone(), None, "text/plain"),
                other => (String::new(), Some(other.to_string()), "application/json"),
            };
            NewArtifact {
                check_name: check.to_owned(),
                status,
                stdout,
                stderr: String::new(),
                report,
                content_type,
                truncated: false,
            }
        }
    };
    bound(&mut artifact);
    artifact
}

/// A check the policy refused, or one that needs a person's approval (checks run unattended: refused
/// with reason `approval_required`).
pub fn denied(check: &str, reason: &str) -> NewArtifact {
    outcome_without_output(check, ArtifactStatus::Denied, reason)
}

/// A check that could not run.
pub fn errored(check: &str, message: &str) -> NewArtifact {
    outcome_without_output(check, ArtifactStatus::Error, message)
}

fn outcome_without_output(check: &str, status: ArtifactStatus, said: &str) -> NewArtifact {
    let mut artifact = NewArtifact {
        check_name: check.to_owned(),
        status,
        stdout: String::new(),
        stderr: said.to_owned(),
        report: None,
        content_type: "text/plain",
        truncated: false,
    };
    bound(&mut artifact);
    artifact
}

/// Cuts stdout, stderr and report to [`MAX_OUTPUT_BYTES`] each (on a character boundary), and says so.
fn bound(artifact: &mut NewArtifact) {
    let mut truncated = cut(&mut artifact.stdout);
    truncated |= cut(&mut artifact.stderr);
    if let Some(report) = &mut artifact.report
        && cut(report)
    {
        truncated = true;
        // A JSON report cut short is JSON no more.
        artifact.content_type = "text/plain";
    }
    artifact.truncated |= truncated;
}

fn cut(text: &mut String) -> bool {
    if text.len() <= MAX_OUTPUT_BYTES {
        return false;
    }
    let mut end = MAX_OUTPUT_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    true
}

/// Stores a run of checks' artifacts in one transaction.
pub async fn store_all(
    connection: &mut PgConnection,
    tenant_id: TenantId,
    changeset_id: ChangesetId,
    run_id: Option<RunId>,
    artifacts: &[NewArtifact],
) -> Result<Vec<Artifact>, sqlx::Error> {
    let mut stored = Vec::with_capacity(artifacts.len());
    for artifact in artifacts {
        stored.push(store::insert(connection, tenant_id, changeset_id, run_id, artifact).await?);
    }
    Ok(stored)
}

/// The changeset's artifacts, oldest first.
pub async fn list(
    pool: &PgPool,
    context: &TenantContext,
    workspace_id: WorkspaceId,
    changeset_id: ChangesetId,
) -> Result<Vec<Artifact>, CheckError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    of_workspace(&mut transaction, workspace_id, changeset_id).await?;
    let artifacts = store::list(&mut transaction, changeset_id).await?;
    transaction.commit().await?;
    Ok(artifacts)
}

pub async fn get(
    pool: &PgPool,
    context: &TenantContext,
    workspace_id: WorkspaceId,
    changeset_id: ChangesetId,
    id: ArtifactId,
) -> Result<Artifact, CheckError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    of_workspace(&mut transaction, workspace_id, changeset_id).await?;
    let artifact = store::get(&mut transaction, changeset_id, id).await?.ok_or(CheckError::ArtifactNotFound)?;
    transaction.commit().await?;
    Ok(artifact)
}

/// Refuses a changeset that is not the workspace's (or a workspace that is not the tenant's).
async fn of_workspace(
    connection: &mut PgConnection,
    workspace_id: WorkspaceId,
    changeset_id: ChangesetId,
) -> Result<(), CheckError> {
    if !super::store::exists(connection, workspace_id).await? {
        return Err(CheckError::WorkspaceNotFound);
    }
    changesets::store::get(connection, changeset_id)
        .await?
        .filter(|changeset| changeset.workspace_id == workspace_id)
        .ok_or(CheckError::ChangesetNotFound)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_structured_result_says_its_status_and_keeps_its_report_as_json() {
        let said = json!({ "status": "failed", "stdout": "1 TODO", "stderr": "", "report": { "todos": ["a.txt"] } });
        let artifact = artifact_from("ci.lint", Ok(&said));
        assert_eq!(artifact.status, ArtifactStatus::Failed);
        assert_eq!(artifact.stdout, "1 TODO");
        assert_eq!(artifact.report.as_deref(), Some(r#"{"todos":["a.txt"]}"#));
        assert_eq!(artifact.content_type, "application/json");
        assert!(!artifact.truncated);
    }

    #[test]
    fn an_unstructured_result_passes_unless_it_is_an_error() {
        assert_eq!(artifact_from("c", Ok(&json!("all good"))).status, ArtifactStatus::Passed);
        let failed = artifact_from("c", Err(&json!("broken")));
        assert_eq!(
            (failed.status, failed.stdout.as_str(), failed.content_type),
            (ArtifactStatus::Failed, "broken", "text/plain")
        );
        assert_eq!(artifact_from("c", Err(&json!({ "status": "passed" }))).status, ArtifactStatus::Failed);
    }

    #[test]
    fn output_is_cut_and_marked() {
        let long = "é".repeat(MAX_OUTPUT_BYTES);
        let artifact = artifact_from("c", Ok(&json!({ "status": "passed", "stdout": long, "report": long })));
        assert!(artifact.truncated);
        assert!(artifact.stdout.len() <= MAX_OUTPUT_BYTES && artifact.report.unwrap().len() <= MAX_OUTPUT_BYTES);
        let denied = denied("c", "approval_required");
        assert_eq!((denied.status, denied.stderr.as_str()), (ArtifactStatus::Denied, "approval_required"));
    }

    #[test]
    fn the_files_are_the_changesets_version_and_bounded() {
        let patch = |path: &str, operation, new_path: Option<&str>, content: Option<&str>| Patch {
            position: 0,
            path: path.to_owned(),
            operation,
            new_path: new_path.map(str::to_owned),
            base_hash: None,
            base_content: None,
            content: content.map(str::to_owned),
            diff: String::new(),
            summary: String::new(),
            review: changesets::Review::Pending,
            review_comment: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        };
        let workspace = [("a", "A"), ("b", "B"), ("c", "C")].map(|(p, c)| (p.to_owned(), c.to_owned()));
        let patches = [
            patch("a", Operation::Modify, None, Some("A2")),
            patch("b", Operation::Delete, None, None),
            patch("c", Operation::Rename, Some("d"), Some("C")),
            patch("e", Operation::Create, None, Some("E")),
        ];
        let files = changed_files(workspace.into_iter(), &patches).unwrap();
        let expected: Vec<(String, String)> =
            [("a", "A2"), ("d", "C"), ("e", "E")].map(|(p, c)| (p.to_owned(), c.to_owned())).into();
        assert_eq!(files, expected);
        let huge = [("big".to_owned(), "x".repeat(MAX_INPUT_BYTES))];
        assert!(matches!(changed_files(huge.into_iter(), &[]), Err(CheckError::TooLarge { .. })));
    }
}
