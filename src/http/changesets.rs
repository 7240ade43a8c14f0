//! `/api/v1/workspaces/{id}/changesets` (runs scope): changes to a workspace's files reviewed as diffs.
//! An agent run's proposals form its changeset; an IDE opens its own with patches against known versions
//! (`base_hash`). `GET …/{cid}.diff` (or `Accept: text/x-diff`) is the whole change as one unified diff for
//! `git apply`. Reviewers approve or reject it, whole or patch by patch; applying writes every approved
//! patch in one transaction, or answers `409 changeset_conflict` naming each file that moved on.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::error::ApiError;
use super::extract::{self, Json, Path, Query, Tenant};
use super::views::changesets::{ApplyResult, ChangesetDetail, ChangesetList, ChangesetView};
use crate::auth::context::Scope;
use crate::ids::{ChangesetId, WorkspaceId};
use crate::workspaces::changesets::open::{self, NewChangeset, PatchInput};
use crate::workspaces::changesets::review::{self, Decision};
use crate::workspaces::changesets::{Operation, Status, apply};

/// The most changesets a list gives.
const MAX_LIST: i64 = 200;

/// One patch of a changeset an IDE sends.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchBody {
    /// The file's path in the workspace (a rename's source).
    #[schema(min_length = 1, max_length = 500)]
    path: String,
    operation: Operation,
    /// The content hash (`ETag`) of the version the patch was made on: required for `modify`, `delete` and
    /// `rename`, absent for `create`. When a patch of the same changeset touched the path before, the hash
    /// of the content that patch leaves.
    #[schema(max_length = 200)]
    base_hash: Option<String>,
    /// The file's new text (`create`, `modify`; for a `rename`, its text at the new path — the same text
    /// when absent).
    content: Option<String>,
    /// Instead of `content`, a unified diff against the base version.
    diff: Option<String>,
    /// A rename's destination, where no file may be.
    #[schema(min_length = 1, max_length = 500)]
    new_path: Option<String>,
}

impl From<PatchBody> for PatchInput {
    fn from(body: PatchBody) -> Self {
        Self {
            path: body.path,
            operation: body.operation,
            base_hash: body.base_hash.map(|hash| hash.trim_matches('"').to_ascii_lowercase()),
            content: body.content,
            diff: body.diff,
            new_path: body.new_path,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewChangesetBody {
    /// 1 to 500 characters.
    #[schema(min_length = 1, max_length = 500)]
    title: String,
    /// At least one, at most 500.
    #[schema(min_items = 1, max_items = 500)]
    patches: Vec<PatchBody>,
    /// Submit it for review at once (`pending_review`); a `draft` by default, to which more patches can
    /// be added.
    #[serde(default)]
    submit: bool,
    /// An open changeset of the workspace this one replaces: it becomes `superseded` in the same
    /// transaction.
    #[schema(value_type = Option<uuid::Uuid>)]
    supersedes: Option<ChangesetId>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchesBody {
    #[schema(min_items = 1, max_items = 500)]
    patches: Vec<PatchBody>,
}

/// A reviewer's decision: `{}` for the whole changeset without a comment.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewBody {
    #[schema(max_length = 10000)]
    comment: Option<String>,
    /// Only the patches at these paths; the whole changeset when absent.
    #[schema(min_items = 1, max_items = 500)]
    paths: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SupersedeBody {
    #[schema(max_length = 10000)]
    comment: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChangesetListQuery {
    /// Only changesets in this status.
    status: Option<Status>,
    /// At most this many: 1 to 200, 50 by default.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

/// The workspace's changesets, newest first.
#[utoipa::path(
    get, path = "/workspaces/{id}/changesets", operation_id = "list_changesets",
    tag = "workspaces",
    params(("id" = uuid::Uuid, Path, description = "The workspace's id."), ChangesetListQuery),
    responses(
        (status = 200, description = "The changesets, newest first.", body = ChangesetList),
        (status = 400, description = "A malformed id or query (`invalid_path`, `invalid_query`)."),
        (status = 404, description = "No such workspace (`not_found`)."),
        (status = 422, description = "`limit` out of range."),
    ),
    security(("tenant_key" = ["runs"])),
)]
pub async fn list(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<WorkspaceId>,
    Query(query): Query<ChangesetListQuery>,
) -> Result<axum::Json<ChangesetList>, ApiError> {
    context.require(Scope::Runs)?;
    let limit = extract::page_limit(query.limit, 50, MAX_LIST)?;
    let changesets = open::list(&state.db, &context, id, query.status, limit).await?;
    Ok(axum::Json(ChangesetList { changesets: changesets.iter().map(ChangesetView::from).collect() }))
}

/// Opens a changeset of patches, each against the version it was made on (`base_hash`), with its new
/// content whole or as a unified diff against that version; all stored in one transaction, or nothing.
/// A `base_hash` that is not the file's current version (or a create where a file is) is 409
/// `changeset_conflict` with each path, its base and current hash in `error.details.conflicts`: re-read
/// the file and make the patch again.
#[utoipa::path(
    post, path = "/workspaces/{id}/changesets", operation_id = "create_changeset",
    tag = "workspaces",
    params(("id" = uuid::Uuid, Path, description = "The workspace's id.")),
    request_body = NewChangesetBody,
    responses(
        (status = 201, description = "The changeset, `draft` (or `pending_review` with `submit`).",
            body = ChangesetDetail),
        (status = 400, description = "Malformed JSON or id."),
        (status = 404, description = "No such workspace (`not_found`), or no changeset `supersedes` names \
            (`changeset_not_found`)."),
        (status = 409, description = "A file is not at the version its patch names (`changeset_conflict`), \
            or `supersedes` names a changeset that is no longer open (`invalid_transition`); nothing stored."),
        (status = 422, description = "Invalid fields (`invalid_request`), a diff that does not parse or \
            apply to its base (`invalid_diff`), or changes that contradict each other (`invalid_change`)."),
    ),
    security(("tenant_key" = ["runs"])),
)]
pub async fn create(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<WorkspaceId>,
    Json(body): Json<NewChangesetBody>,
) -> Result<(StatusCode, axum::Json<ChangesetDetail>), ApiError> {
    context.require(Scope::Runs)?;
    let request = NewChangeset {
        title: body.title,
        patches: body.patches.into_iter().map(PatchInput::from).collect(),
        submit: body.submit,
        supersedes: body.supersedes,
    };
    let detail = open::create(&state.db, &context, id, request).await?;
    Ok((StatusCode::CREATED, axum::Json(ChangesetDetail::from(&detail))))
}

/// Adds patches to a `draft` an IDE opened (same shape and checks as opening one); a later patch of a
/// path already patched stacks on it (its `base_hash` is the hash of the content the earlier patch leaves).
#[utoipa::path(
    post, path = "/workspaces/{id}/changesets/{cid}/patches", operation_id = "add_changeset_patches",
    tag = "workspaces",
    params(
        ("id" = uuid::Uuid, Path, description = "The workspace's id."),
        ("cid" = uuid::Uuid, Path, description = "The changeset's id."),
    ),
    request_body = PatchesBody,
    responses(
        (status = 200, description = "The changeset with its patches.", body = ChangesetDetail),
        (status = 400, description = "Malformed JSON or id."),
        (status = 404, description = "No such changeset in the workspace (`changeset_not_found`)."),
        (status = 409, description = "Not a draft (`invalid_transition`), or a file is not at the version its \
            patch names (`changeset_conflict`); nothing stored."),
        (status = 422, description = "Invalid fields, an agent run's changeset (`invalid_change`), or a diff \
            that does not apply (`invalid_diff`)."),
    ),
    security(("tenant_key" = ["runs"])),
)]
pub async fn add_patches(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path((id, changeset)): Path<(WorkspaceId, ChangesetId)>,
    Json(body): Json<PatchesBody>,
) -> Result<axum::Json<ChangesetDetail>, ApiError> {
    context.require(Scope::Runs)?;
    let patches: Vec<PatchInput> = body.patches.into_iter().map(PatchInput::from).collect();
    let detail = open::add_patches(&state.db, &context, id, changeset, &patches).await?;
    Ok(axum::Json(ChangesetDetail::from(&detail)))
}

/// A changeset with its patches (diff, base version, review) and its checks' artifacts. `{cid}.diff`, or
/// `Accept: text/x-diff`, answers the whole change as one unified diff in git's format (the patches'
/// diffs in order, rejected ones left out), which `git apply` takes on the workspace's exported tree.
#[utoipa::path(
    get, path = "/workspaces/{id}/changesets/{cid}", operation_id = "get_changeset",
    tag = "workspaces",
    params(
        ("id" = uuid::Uuid, Path, description = "The workspace's id."),
        ("cid" = String, Path, description = "The changeset's id, with `.diff` after it for the unified diff."),
    ),
    responses(
        (status = 200, description = "The changeset, or its unified diff.", content(
            (ChangesetDetail = "application/json"),
            (String = "text/x-diff"),
        )),
        (status = 400, description = "A malformed workspace id (`invalid_path`)."),
        (status = 404, description = "No such changeset in the workspace (`changeset_not_found`)."),
    ),
    security(("tenant_key" = ["runs"])),
)]
pub async fn get(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path((id, changeset)): Path<(WorkspaceId, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    context.require(Scope::Runs)?;
    let (changeset, as_diff) = match changeset.strip_suffix(".diff") {
        Some(changeset) => (changeset, true),
        None => (changeset.as_str(), extract::accepts(&headers, "text/x-diff")),
    };
    // Not an id: no such changeset.
    let changeset = uuid::Uuid::parse_str(changeset)
        .map(ChangesetId)
        .map_err(|_| ApiError::new(StatusCode::NOT_FOUND, "changeset_not_found", "no such changeset"))?;
    let detail = open::get(&state.db, &context, id, changeset).await?;
    if as_diff {
        let diff = open::unified_diff(&detail.patches);
        return Ok(
            ([(header::CONTENT_TYPE, HeaderValue::from_static("text/x-diff; charset=utf-8"))], diff).into_response()
        );
    }
    Ok(axum::Json(ChangesetDetail::from(&detail)).into_response())
}

/// Submits a `draft` for review (`pending_review`). An agent run's draft is submitted by its run when it
/// ends.
#[utoipa::path(
    post, path = "/workspaces/{id}/changesets/{cid}/submit", operation_id = "submit_changeset",
    tag = "workspaces",
    params(
        ("id" = uuid::Uuid, Path, description = "The workspace's id."),
        ("cid" = uuid::Uuid, Path, description = "The changeset's id."),
    ),
    responses(
        (status = 200, description = "The changeset, `pending_review`.", body = ChangesetView),
        (status = 400, description = "A malformed id."),
        (status = 404, description = "No such changeset in the workspace (`changeset_not_found`)."),
        (status = 409, description = "Not a draft (`invalid_transition`), or its run is still working \
            (`run_in_progress`)."),
        (status = 422, description = "It has no patches."),
    ),
    security(("tenant_key" = ["runs"])),
)]
pub async fn submit(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path((id, changeset)): Path<(WorkspaceId, ChangesetId)>,
) -> Result<axum::Json<ChangesetView>, ApiError> {
    context.require(Scope::Runs)?;
    let submitted = review::submit(&state.db, &context, id, changeset).await?;
    Ok(axum::Json(ChangesetView::from(&submitted)))
}

/// Approves a changeset pending review, or only its patches at `paths`. Whole: every patch still pending
/// is approved and the changeset becomes `approved`. By paths: those patches are approved; the changeset
/// stays `pending_review` until every patch is decided, then becomes `approved` (at least one patch
/// approved) or `rejected` (none).
#[utoipa::path(
    post, path = "/workspaces/{id}/changesets/{cid}/approve", operation_id = "approve_changeset",
    tag = "workspaces",
    params(
        ("id" = uuid::Uuid, Path, description = "The workspace's id."),
        ("cid" = uuid::Uuid, Path, description = "The changeset's id."),
    ),
    request_body = ReviewBody,
    responses(
        (status = 200, description = "The changeset as decided.", body = ChangesetView),
        (status = 400, description = "Malformed JSON or id."),
        (status = 404, description = "No such changeset in the workspace (`changeset_not_found`)."),
        (status = 409, description = "Not pending review (`invalid_transition`, naming both states)."),
        (status = 422, description = "A path without a patch, or every patch already rejected."),
    ),
    security(("tenant_key" = ["runs"])),
)]
pub async fn approve(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path((id, changeset)): Path<(WorkspaceId, ChangesetId)>,
    Json(body): Json<ReviewBody>,
) -> Result<axum::Json<ChangesetView>, ApiError> {
    decide(&state, &context, id, changeset, Decision::Approve, body).await
}

/// Rejects a changeset (a draft, pending review or approved, not yet applied: every patch rejected), or
/// only its patches at `paths` while it is pending review (see `approve_changeset` for when it is decided).
#[utoipa::path(
    post, path = "/workspaces/{id}/changesets/{cid}/reject", operation_id = "reject_changeset",
    tag = "workspaces",
    params(
        ("id" = uuid::Uuid, Path, description = "The workspace's id."),
        ("cid" = uuid::Uuid, Path, description = "The changeset's id."),
    ),
    request_body = ReviewBody,
    responses(
        (status = 200, description = "The changeset as decided.", body = ChangesetView),
        (status = 400, description = "Malformed JSON or id."),
        (status = 404, description = "No such changeset in the workspace (`changeset_not_found`)."),
        (status = 409, description = "Already ended, or (by paths) not pending review \
            (`invalid_transition`)."),
        (status = 422, description = "A path without a patch."),
    ),
    security(("tenant_key" = ["runs"])),
)]
pub async fn reject(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path((id, changeset)): Path<(WorkspaceId, ChangesetId)>,
    Json(body): Json<ReviewBody>,
) -> Result<axum::Json<ChangesetView>, ApiError> {
    decide(&state, &context, id, changeset, Decision::Reject, body).await
}

async fn decide(
    state: &AppState,
    context: &crate::auth::context::TenantContext,
    id: WorkspaceId,
    changeset: ChangesetId,
    decision: Decision,
    body: ReviewBody,
) -> Result<axum::Json<ChangesetView>, ApiError> {
    context.require(Scope::Runs)?;
    let decided =
        review::decide(&state.db, context, id, changeset, decision, body.comment.as_deref(), body.paths.as_deref())
            .await?;
    Ok(axum::Json(ChangesetView::from(&decided)))
}

/// Marks an open changeset `superseded` (a newer one replaces it; or open the new one with `supersedes`).
#[utoipa::path(
    post, path = "/workspaces/{id}/changesets/{cid}/supersede", operation_id = "supersede_changeset",
    tag = "workspaces",
    params(
        ("id" = uuid::Uuid, Path, description = "The workspace's id."),
        ("cid" = uuid::Uuid, Path, description = "The changeset's id."),
    ),
    request_body = SupersedeBody,
    responses(
        (status = 200, description = "The changeset, `superseded`.", body = ChangesetView),
        (status = 400, description = "Malformed JSON or id."),
        (status = 404, description = "No such changeset in the workspace (`changeset_not_found`)."),
        (status = 409, description = "Already ended (`invalid_transition`)."),
        (status = 422, description = "A comment over 10000 characters."),
    ),
    security(("tenant_key" = ["runs"])),
)]
pub async fn supersede(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path((id, changeset)): Path<(WorkspaceId, ChangesetId)>,
    Json(body): Json<SupersedeBody>,
) -> Result<axum::Json<ChangesetView>, ApiError> {
    context.require(Scope::Runs)?;
    if body.comment.as_ref().is_some_and(|comment| comment.chars().count() > 10_000) {
        return Err(ApiError::invalid("comment is at most 10000 characters"));
    }
    let superseded = review::supersede(&state.db, &context, id, changeset, body.comment.as_deref()).await?;
    Ok(axum::Json(ChangesetView::from(&superseded)))
}

/// Applies an `approved` changeset in one transaction: every patch not rejected is written when its file
/// is still the version it was made on. A file that moved on is merged three-way when the edits do not
/// overlap (listed in `merged`); otherwise 409 `changeset_conflict` names every conflicting path with its
/// base and current hash (`error.details.conflicts`), and nothing is written.
#[utoipa::path(
    post, path = "/workspaces/{id}/changesets/{cid}/apply", operation_id = "apply_changeset",
    tag = "workspaces",
    params(
        ("id" = uuid::Uuid, Path, description = "The workspace's id."),
        ("cid" = uuid::Uuid, Path, description = "The changeset's id."),
    ),
    responses(
        (status = 200, description = "Applied: what was written.", body = ApplyResult),
        (status = 400, description = "A malformed id."),
        (status = 404, description = "No such workspace (`not_found`) or changeset (`changeset_not_found`)."),
        (status = 409, description = "Not approved (`invalid_transition`), files moved on \
            (`changeset_conflict`), or over a quota (`workspace_quota_exceeded`); nothing written."),
    ),
    security(("tenant_key" = ["runs"])),
)]
pub async fn apply(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path((id, changeset)): Path<(WorkspaceId, ChangesetId)>,
) -> Result<axum::Json<ApplyResult>, ApiError> {
    context.require(Scope::Runs)?;
    let applied = apply::apply(&state.db, &context, id, changeset).await?;
    Ok(axum::Json(ApplyResult::from(&applied)))
}
