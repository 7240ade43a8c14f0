//! Workspaces of the IDE door, the agent run queued on one, and the changes a run proposed.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::runs::RunView;
use crate::ids::WorkspaceId;
use crate::runs::Run;
use crate::workspaces::Workspace;
use crate::workspaces::changesets::{Operation, Patch};
use crate::workspaces::files::{Imported, WorkspaceUsage};
use crate::workspaces::store::{FileEntry, StoredFile};

/// A workspace of the IDE door: files an agent run reads and proposes changes to.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkspaceView {
    #[schema(value_type = uuid::Uuid)]
    pub id: WorkspaceId,
    pub name: String,
    /// The MCP tools (`connector.tool`) run as the workspace's checks.
    pub checks: Vec<String>,
    pub created_at: DateTime<Utc>,
}

impl From<&Workspace> for WorkspaceView {
    fn from(workspace: &Workspace) -> Self {
        Self {
            id: workspace.id,
            name: workspace.name.clone(),
            checks: workspace.checks.clone(),
            created_at: workspace.created_at,
        }
    }
}

/// One workspace, with how much of the tenant's quotas per workspace its files use.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkspaceDetail {
    #[serde(flatten)]
    pub workspace: WorkspaceView,
    pub usage: WorkspaceUsageView,
}

/// The files and bytes a workspace holds, and the most it may (`workspace_max_files` and
/// `workspace_max_bytes` of the tenant's settings).
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkspaceUsageView {
    pub files: i64,
    pub bytes: i64,
    pub max_files: i64,
    pub max_bytes: i64,
}

impl From<&WorkspaceUsage> for WorkspaceDetail {
    fn from(usage: &WorkspaceUsage) -> Self {
        Self {
            workspace: WorkspaceView::from(&usage.workspace),
            usage: WorkspaceUsageView {
                files: usage.files,
                bytes: usage.bytes,
                max_files: usage.max_files,
                max_bytes: usage.max_bytes,
            },
        }
    }
}

/// A file as listed: its version (`content_hash`, the `ETag` its reads answer) without its content.
#[derive(Debug, Serialize, ToSchema)]
pub struct FileInfo {
    pub path: String,
    /// Its content's size in bytes (UTF-8).
    pub bytes: i64,
    /// Lowercase hex SHA-256 of the content: the file's version.
    pub content_hash: String,
    pub updated_at: DateTime<Utc>,
}

impl From<&FileEntry> for FileInfo {
    fn from(file: &FileEntry) -> Self {
        Self {
            path: file.path.clone(),
            bytes: i64::from(file.bytes),
            content_hash: file.content_hash.clone(),
            updated_at: file.updated_at,
        }
    }
}

impl From<&StoredFile> for FileInfo {
    fn from(file: &StoredFile) -> Self {
        Self {
            path: file.path.clone(),
            bytes: i64::try_from(file.content.len()).unwrap_or(i64::MAX),
            content_hash: file.content_hash.clone(),
            updated_at: file.updated_at,
        }
    }
}

/// A page of files, by path.
#[derive(Debug, Serialize, ToSchema)]
pub struct FileList {
    pub files: Vec<FileInfo>,
    /// When the page is full: the last path, to pass as `after` for the next page.
    pub next_after: Option<String>,
}

/// A file, whole.
#[derive(Debug, Serialize, ToSchema)]
pub struct FileView {
    pub path: String,
    pub content: String,
    /// Lowercase hex SHA-256 of the content; also the `ETag` header, quoted.
    pub content_hash: String,
    pub bytes: i64,
    pub updated_at: DateTime<Utc>,
}

impl From<StoredFile> for FileView {
    fn from(file: StoredFile) -> Self {
        Self {
            bytes: i64::try_from(file.content.len()).unwrap_or(i64::MAX),
            path: file.path,
            content: file.content,
            content_hash: file.content_hash,
            updated_at: file.updated_at,
        }
    }
}

/// What an import wrote.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportResult {
    /// Files the workspace did not hold before.
    pub created: usize,
    /// Files whose content the archive's replaced.
    pub replaced: usize,
    /// Every file written, by path.
    pub files: Vec<ImportedFile>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImportedFile {
    pub path: String,
    pub content_hash: String,
    pub created: bool,
}

impl From<&Imported> for ImportResult {
    fn from(imported: &Imported) -> Self {
        let files: Vec<ImportedFile> = imported
            .files
            .iter()
            .map(|(path, content_hash, created)| ImportedFile {
                path: path.clone(),
                content_hash: content_hash.clone(),
                created: *created,
            })
            .collect();
        let created = files.iter().filter(|file| file.created).count();
        Self { created, replaced: files.len() - created, files }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WorkspaceList {
    pub workspaces: Vec<WorkspaceView>,
}

impl WorkspaceList {
    pub fn new(workspaces: &[Workspace]) -> Self {
        Self { workspaces: workspaces.iter().map(WorkspaceView::from).collect() }
    }
}

/// The answer to queueing an agent run (202): follow it on `/runs/{id}/events`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentRunStarted {
    pub run: RunView,
}

impl From<&Run> for AgentRunStarted {
    fn from(run: &Run) -> Self {
        Self { run: RunView::from(run) }
    }
}

/// A change a run proposed, for a person to review: the file as the run leaves it.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunPatchView {
    /// The workspace file as the run leaves it (a rename's new path).
    pub path: String,
    /// A renamed file's old path.
    pub renamed_from: Option<String>,
    pub operation: Operation,
    pub summary: String,
    /// The file's proposed content, whole; `null` for a delete.
    pub content: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<Patch> for RunPatchView {
    fn from(patch: Patch) -> Self {
        let (target, renamed_from) = match patch.new_path {
            Some(new_path) => (new_path, Some(patch.path)),
            None => (patch.path, None),
        };
        Self {
            path: target,
            renamed_from,
            operation: patch.operation,
            summary: patch.summary,
            content: patch.content,
            created_at: patch.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PatchList {
    pub patches: Vec<RunPatchView>,
}
