//! `/api/v1/workspaces` (runs scope): the IDE door. Workspaces and their files (listed, read with an `ETag`,
//! written under `If-Match`, deleted, renamed, imported from an archive, exported as a tar); agent runs
//! queued on them (202 at once; follow `/runs/{id}/events`); the changes a run proposed.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::error::ApiError;
use super::extract::{self, Json, Path, Query, Tenant};
use super::rate_limits;
use super::views::workspaces::{
    AgentRunStarted, FileInfo, FileList, FileView, ImportResult, PatchList, RunPatchView, WorkspaceDetail,
    WorkspaceList, WorkspaceView,
};
use crate::auth::context::Scope;
use crate::idempotency::IdempotencyKey;
use crate::ids::{RunId, WorkspaceId};
use crate::rate_limits::Demand;
use crate::workspaces;
use crate::workspaces::files::{self, Preconditions, Versions};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWorkspace {
    /// 1 to 200 characters (spaces around it trimmed), unique in the tenant.
    name: String,
}

/// Creates a workspace.
#[utoipa::path(
    post, path = "/workspaces", operation_id = "create_workspace",
    tag = "workspaces",
    request_body = NewWorkspace,
    responses((status = 201, description = "The new workspace.", body = WorkspaceView)),
    security(("tenant_key" = ["runs"])),
)]
pub async fn create(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Json(body): Json<NewWorkspace>,
) -> Result<(StatusCode, axum::Json<WorkspaceView>), ApiError> {
    context.require(Scope::Runs)?;
    Ok((
        StatusCode::CREATED,
        axum::Json(WorkspaceView::from(&workspaces::create(&state.db, &context, &body.name).await?)),
    ))
}

/// The tenant's workspaces.
#[utoipa::path(
    get, path = "/workspaces", operation_id = "list_workspaces",
    tag = "workspaces",
    responses((status = 200, description = "Every workspace of the tenant.", body = WorkspaceList)),
    security(("tenant_key" = ["runs"])),
)]
pub async fn list(
    State(state): State<AppState>,
    Tenant(context): Tenant,
) -> Result<axum::Json<WorkspaceList>, ApiError> {
    context.require(Scope::Runs)?;
    Ok(axum::Json(WorkspaceList::new(&workspaces::list(&state.db, &context).await?)))
}

/// One workspace, with its checks and how much of the quotas its files use.
#[utoipa::path(
    get, path = "/workspaces/{id}", operation_id = "get_workspace",
    tag = "workspaces",
    params(("id" = uuid::Uuid, Path, description = "The workspace's id.")),
    responses(
        (status = 200, description = "The workspace.", body = WorkspaceDetail),
        (status = 404, description = "No such workspace (`not_found`)."),
    ),
    security(("tenant_key" = ["runs"])),
)]
pub async fn get(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<WorkspaceId>,
) -> Result<axum::Json<WorkspaceDetail>, ApiError> {
    context.require(Scope::Runs)?;
    Ok(axum::Json(WorkspaceDetail::from(&files::get(&state.db, &context, id).await?)))
}

/// The most files a page lists.
const MAX_FILES_PER_PAGE: i64 = 5_000;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FileListQuery {
    /// Only the files whose path starts with this text (`src/` for a folder); all by default.
    #[param(max_length = 500)]
    prefix: Option<String>,
    /// The files after this path (the previous page's `next_after`).
    #[param(max_length = 500)]
    after: Option<String>,
    /// Files per page: 1 to 5000, 1000 by default.
    #[param(minimum = 1, maximum = 5000)]
    limit: Option<i64>,
}

/// The workspace's files by path, a page at a time: each with its size and version, without content.
#[utoipa::path(
    get, path = "/workspaces/{id}/files", operation_id = "list_workspace_files",
    tag = "workspaces",
    params(("id" = uuid::Uuid, Path, description = "The workspace's id."), FileListQuery),
    responses(
        (status = 200, description = "A page of files, by path.", body = FileList),
        (status = 404, description = "No such workspace (`not_found`)."),
    ),
    security(("tenant_key" = ["runs"])),
)]
pub async fn list_files(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<WorkspaceId>,
    Query(query): Query<FileListQuery>,
) -> Result<axum::Json<FileList>, ApiError> {
    context.require(Scope::Runs)?;
    let limit = extract::page_limit(query.limit, 1_000, MAX_FILES_PER_PAGE)?;
    let prefix = query.prefix.unwrap_or_default();
    if prefix.len() > 500 || query.after.as_ref().is_some_and(|after| after.len() > 500) {
        return Err(ApiError::invalid("prefix and after are at most 500 bytes"));
    }
    let page = files::list(&state.db, &context, id, &prefix, query.after.as_deref(), limit).await?;
    let next_after = extract::next_before(&page, limit, |file| file.path.clone());
    Ok(axum::Json(FileList { files: page.iter().map(FileInfo::from).collect(), next_after }))
}

/// Reads a file: its content and version. With `If-None-Match` naming its version, 304 without a body.
#[utoipa::path(
    get, path = "/workspaces/{id}/files/{*path}", operation_id = "get_workspace_file",
    tag = "workspaces",
    params(
        ("id" = uuid::Uuid, Path, description = "The workspace's id."),
        ("path" = String, Path, description = "The file's path in the workspace."),
        ("If-None-Match" = Option<String>, Header, nullable = false,
            description = "Versions the client holds (`\"<content_hash>\"`, comma-separated, or `*`): when the \
            file is one of them, 304."),
    ),
    responses(
        (status = 200, description = "The file.", body = FileView,
            headers(("ETag" = String, description = "The file's content hash, quoted."))),
        (status = 304, description = "The file is the version `If-None-Match` names.",
            headers(("ETag" = String, description = "The file's content hash, quoted."))),
        (status = 404, description = "No such workspace (`not_found`) or file (`file_not_found`)."),
        (status = 422, description = "The path is not a workspace path."),
    ),
    security(("tenant_key" = ["runs"])),
)]
pub async fn get_file(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path((id, path)): Path<(WorkspaceId, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    context.require(Scope::Runs)?;
    let held = versions(&headers, &header::IF_NONE_MATCH, true)?;
    let file = files::read(&state.db, &context, id, &path).await?;
    let etag = etag(&file.content_hash);
    if held
        .is_some_and(|held| Preconditions { if_match: Some(held), if_none_match: None }.hold(Some(&file.content_hash)))
    {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    Ok(([(header::ETAG, etag)], axum::Json(FileView::from(file))).into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FileBody {
    /// The file's text, at most 1 MiB.
    content: String,
}

/// Creates or replaces a file of a workspace. With `If-Match`, only when the file is that version (412
/// `precondition_failed` otherwise, nothing written); with `If-None-Match: *`, only when there is no file.
/// The new version is the `ETag` of the answer.
#[utoipa::path(
    put, path = "/workspaces/{id}/files/{*path}", operation_id = "put_workspace_file",
    tag = "workspaces",
    params(
        ("id" = uuid::Uuid, Path, description = "The workspace's id."),
        ("path" = String, Path, description = "The file's path in the workspace: relative, `/`-separated, \
            without `.` or `..` segments, at most 500 bytes."),
        ("If-Match" = Option<String>, Header, nullable = false,
            description = "The version the change was made on (`\"<content_hash>\"`), or `*` for any existing file."),
        ("If-None-Match" = Option<String>, Header, nullable = false,
            description = "`*`: create only; versions (`\"<content_hash>\"`): not over these."),
    ),
    request_body = FileBody,
    responses(
        (status = 204, description = "Stored (created or replaced).",
            headers(("ETag" = String, description = "The file's new content hash, quoted."))),
        (status = 404, description = "No such workspace."),
        (status = 409, description = "Over a quota of the workspace (`workspace_quota_exceeded`)."),
        (status = 412, description = "The file is not the version `If-Match` names, or exists despite \
            `If-None-Match: *` (`precondition_failed`); nothing written."),
        (status = 413, description = "Over 1 MiB (`file_too_large`)."),
        (status = 422, description = "The path is not a workspace path."),
    ),
    security(("tenant_key" = ["runs"])),
)]
pub async fn put_file(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path((id, path)): Path<(WorkspaceId, String)>,
    headers: HeaderMap,
    Json(body): Json<FileBody>,
) -> Result<Response, ApiError> {
    context.require(Scope::Runs)?;
    let conditions = preconditions(&headers)?;
    let saved = files::put(&state.db, &context, id, &path, &body.content, &conditions).await?;
    Ok((StatusCode::NO_CONTENT, [(header::ETAG, etag(&saved.content_hash))]).into_response())
}

/// Deletes a file; with `If-Match`, only when it is that version.
#[utoipa::path(
    delete, path = "/workspaces/{id}/files/{*path}", operation_id = "delete_workspace_file",
    tag = "workspaces",
    params(
        ("id" = uuid::Uuid, Path, description = "The workspace's id."),
        ("path" = String, Path, description = "The file's path in the workspace."),
        ("If-Match" = Option<String>, Header, nullable = false,
            description = "The version the client last saw (`\"<content_hash>\"`)."),
    ),
    responses(
        (status = 204, description = "Deleted."),
        (status = 404, description = "No such workspace (`not_found`) or file (`file_not_found`)."),
        (status = 412, description = "The file is not the version `If-Match` names (`precondition_failed`)."),
        (status = 422, description = "The path is not a workspace path."),
    ),
    security(("tenant_key" = ["runs"])),
)]
pub async fn delete_file(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path((id, path)): Path<(WorkspaceId, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    context.require(Scope::Runs)?;
    let conditions = Preconditions { if_match: versions(&headers, &header::IF_MATCH, false)?, if_none_match: None };
    files::delete(&state.db, &context, id, &path, &conditions).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenameBody {
    /// The file's path now.
    #[schema(min_length = 1, max_length = 500)]
    from: String,
    /// Its new path, where no file may be.
    #[schema(min_length = 1, max_length = 500)]
    to: String,
    /// The version the client last saw (the content hash, quoted or not): renamed only when the file is it.
    #[schema(min_length = 1, max_length = 200)]
    if_match: Option<String>,
}

/// Moves a file to a new path; its content and version stay.
#[utoipa::path(
    post, path = "/workspaces/{id}/rename", operation_id = "rename_workspace_file",
    tag = "workspaces",
    params(("id" = uuid::Uuid, Path, description = "The workspace's id.")),
    request_body = RenameBody,
    responses(
        (status = 200, description = "The file at its new path.", body = FileInfo,
            headers(("ETag" = String, description = "The file's content hash, quoted."))),
        (status = 404, description = "No such workspace (`not_found`) or file (`file_not_found`)."),
        (status = 409, description = "A file is at `to` already (`file_exists`)."),
        (status = 412, description = "The file is not the version `if_match` names (`precondition_failed`)."),
        (status = 422, description = "A path is not a workspace path."),
    ),
    security(("tenant_key" = ["runs"])),
)]
pub async fn rename(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<WorkspaceId>,
    Json(body): Json<RenameBody>,
) -> Result<Response, ApiError> {
    context.require(Scope::Runs)?;
    let if_match = body.if_match.as_deref().map(|value| parse_versions(value, false)).transpose()?;
    let conditions = Preconditions { if_match, if_none_match: None };
    let renamed = files::rename(&state.db, &context, id, &body.from, &body.to, &conditions).await?;
    Ok(([(header::ETAG, etag(&renamed.content_hash))], axum::Json(FileInfo::from(&renamed))).into_response())
}

/// An archive to import: a tar, a gzip-compressed tar or a zip, told from its first bytes (a tar without
/// the `ustar` magic only as `application/x-tar`).
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)] // A schema: the handler reads the body as bytes.
pub struct ArchiveUpload(Vec<u8>);

/// Merges a tree of text files from an archive into the workspace, in one transaction: every file is
/// created or replaced (the workspace's other files stay), or nothing is written. At most 10,000 entries,
/// 1 MiB per file and 64 MiB of files uncompressed (checked while inflating); the body at most 32 MiB.
/// Refused: entries leaving the workspace (`archive_unsafe_path`), links and special files
/// (`archive_link`), binary files (`binary_file`), what is not an archive (`invalid_archive`).
#[utoipa::path(
    post, path = "/workspaces/{id}/import", operation_id = "import_workspace_archive",
    tag = "workspaces",
    params(("id" = uuid::Uuid, Path, description = "The workspace's id.")),
    request_body(content(
        (ArchiveUpload = "application/x-tar"),
        (ArchiveUpload = "application/gzip"),
        (ArchiveUpload = "application/zip"),
        (ArchiveUpload = "application/octet-stream"),
    )),
    responses(
        (status = 200, description = "Every file written.", body = ImportResult),
        (status = 404, description = "No such workspace."),
        (status = 409, description = "Over a quota of the workspace (`workspace_quota_exceeded`); nothing \
            written."),
        (status = 413, description = "Too large: the body, a file (`file_too_large`), all files \
            (`archive_too_large`) or the entries (`archive_too_many_entries`); nothing written."),
        (status = 422, description = "A refused entry or not an archive (`invalid_archive`, \
            `archive_unsafe_path`, `archive_link`, `binary_file`); nothing written."),
    ),
    security(("tenant_key" = ["runs"])),
)]
pub async fn import(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<WorkspaceId>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<axum::Json<ImportResult>, ApiError> {
    context.require(Scope::Runs)?;
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::from_status(StatusCode::PAYLOAD_TOO_LARGE)
        } else if super::limits::is_body_timeout(&rejection) {
            ApiError::new(StatusCode::REQUEST_TIMEOUT, "request_timeout", "the request body stopped arriving")
        } else {
            ApiError::bad_request("bad_request", rejection.body_text())
        }
    })?;
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok());
    let imported = files::import(&state.db, &context, id, body.to_vec(), content_type).await?;
    Ok(axum::Json(ImportResult::from(&imported)))
}

/// The workspace as a tar: every file at its path (mode 0644), so that a patch can be applied with
/// `git apply` in the extracted tree.
#[utoipa::path(
    get, path = "/workspaces/{id}/export", operation_id = "export_workspace",
    tag = "workspaces",
    params(("id" = uuid::Uuid, Path, description = "The workspace's id.")),
    responses(
        (status = 200, description = "The tar.", content((ArchiveUpload = "application/x-tar"))),
        (status = 404, description = "No such workspace."),
    ),
    security(("tenant_key" = ["runs"])),
)]
pub async fn export(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<WorkspaceId>,
) -> Result<Response, ApiError> {
    context.require(Scope::Runs)?;
    let (workspace, tar) = files::export(&state.db, &context, id).await?;
    // The name as a file name: what is not a plain character becomes `_`.
    let name: String = workspace
        .name
        .chars()
        .map(|character| if character.is_ascii_alphanumeric() || "-_.".contains(character) { character } else { '_' })
        .collect();
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{name}.tar\""))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/x-tar")),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        tar,
    )
        .into_response())
}

/// A version as an `ETag`: the content hash, quoted (a strong validator).
fn etag(hash: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{hash}\"")).unwrap_or_else(|_| HeaderValue::from_static("\"\""))
}

/// `If-Match` and `If-None-Match` of a write.
fn preconditions(headers: &HeaderMap) -> Result<Preconditions, ApiError> {
    Ok(Preconditions {
        if_match: versions(headers, &header::IF_MATCH, false)?,
        if_none_match: versions(headers, &header::IF_NONE_MATCH, true)?,
    })
}

/// A condition header's versions (every field of the name, comma-separated), or none when absent.
fn versions(headers: &HeaderMap, name: &HeaderName, weak: bool) -> Result<Option<Versions>, ApiError> {
    let mut values = Vec::new();
    for value in headers.get_all(name) {
        let value = value
            .to_str()
            .map_err(|_| ApiError::bad_request("invalid_header", format!("{name} must be visible ASCII")))?;
        values.push(value.to_owned());
    }
    if values.is_empty() {
        return Ok(None);
    }
    parse_versions(&values.join(","), weak).map(Some)
}

/// `*`, or entity tags (`"<hash>"`, bare hashes taken too). A weak tag (`W/"…"`) counts only where weak
/// comparison applies (`If-None-Match`): our versions are strong, so under `If-Match` it matches none.
fn parse_versions(value: &str, weak: bool) -> Result<Versions, ApiError> {
    if value.trim() == "*" {
        return Ok(Versions::Any);
    }
    let mut hashes = Vec::new();
    for tag in value.split(',').map(str::trim).filter(|tag| !tag.is_empty()) {
        let (is_weak, tag) = match tag.strip_prefix("W/") {
            Some(rest) => (true, rest),
            None => (false, tag),
        };
        let tag = tag.strip_prefix('"').and_then(|tag| tag.strip_suffix('"')).unwrap_or(tag);
        if tag.contains('"') || tag == "*" {
            return Err(ApiError::bad_request(
                "invalid_header",
                "an entity tag is a quoted content hash, or `*` alone",
            ));
        }
        if weak || !is_weak {
            hashes.push(tag.to_ascii_lowercase());
        }
    }
    Ok(Versions::Hashes(hashes))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunBody {
    /// What the agent is to do.
    #[schema(min_length = 1, max_length = 100_000)]
    instruction: String,
    /// As the `Idempotency-Key` header, which it overrides.
    #[schema(min_length = 1, max_length = 200)]
    idempotency_key: Option<String>,
}

/// Queues an agent run on a workspace; follow it on `/runs/{id}/events`, then read its patches.
#[utoipa::path(
    post, path = "/workspaces/{id}/runs", operation_id = "start_agent_run",
    tag = "workspaces",
    params(
        ("id" = uuid::Uuid, Path, description = "The workspace's id."),
        ("Idempotency-Key" = Option<String>, Header, nullable = false, min_length = 1, max_length = 200,
            description = "Makes a retry safe: a second request with the key answers the first one's run."),
    ),
    request_body = RunBody,
    responses((status = 202, description = "The run, queued (or the first request's, for a repeated \
        `Idempotency-Key`).", body = AgentRunStarted)),
    security(("tenant_key" = ["runs"])),
)]
pub async fn start_run(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<WorkspaceId>,
    headers: HeaderMap,
    Json(body): Json<RunBody>,
) -> Result<(StatusCode, axum::Json<AgentRunStarted>), ApiError> {
    context.require(Scope::Runs)?;
    // Each checked, even when the body's wins: a malformed key is refused wherever it is.
    let header = extract::idempotency_key(&headers)?.as_deref().map(IdempotencyKey::parse).transpose()?;
    let in_body = body.idempotency_key.as_deref().map(IdempotencyKey::parse).transpose()?;
    let key = in_body.or(header);
    let admission =
        rate_limits::admit(&state, &context, &Demand { prompt: &[&body.instruction], ..Demand::default() }).await?;
    let reservation = admission.reservation;
    let run = state.engine.start_agent_run(&context, id, body.instruction, key.as_ref(), reservation).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(AgentRunStarted::from(&run))))
}

/// The changes a run proposed to its workspace's files, for a person to review: the patches of the run's
/// changeset as they stand (each file's proposed content, whole). The changeset itself, with its diffs,
/// review and apply, is under `/workspaces/{id}/changesets`.
#[utoipa::path(
    get, path = "/runs/{id}/patches", operation_id = "list_run_patches",
    tag = "workspaces",
    params(("id" = uuid::Uuid, Path, description = "The run's id.")),
    responses((status = 200, description = "The run's proposed changes.", body = PatchList)),
    security(("tenant_key" = ["runs"])),
)]
pub async fn patches(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<RunId>,
) -> Result<axum::Json<PatchList>, ApiError> {
    context.require(Scope::Runs)?;
    state.engine.run(&context, id).await?;
    let patches =
        workspaces::tools::proposed(&state.db, &context, id).await.map_err(|error| ApiError::database(&error))?;
    let patches = patches.into_iter().map(RunPatchView::from).collect();
    Ok(axum::Json(PatchList { patches }))
}
