//! `GET /api/v1/tenant/export` (admin): the tenant's data as newline-delimited JSON, streamed from one
//! database snapshot (`tenants::export`; the format is in `docs_corpus/operations.md`).

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse as _, Response};
use futures::TryStreamExt as _;

use super::AppState;
use super::error::ApiError;
use super::extract::Tenant;
use crate::auth::context::Scope;
use crate::tenants::export;

/// The tenant's data as an archive a script can read: a manifest line, then one JSON object per line
/// (settings, users, API keys and providers without secrets, policy profiles with their versions, connectors
/// without credentials, documents with their chunks, workspaces and files, conversations with messages and
/// citations, usage records, audit events), then an `end` line with the count of each type.
#[utoipa::path(
    get, path = "/tenant/export", operation_id = "export_tenant", tag = "tenant",
    responses((
        status = 200,
        description = "The archive, streamed: one JSON object per line, each with its `type`; the first is \
                       the `manifest` (`format`, `version`, `tenant`, `exported_at`), the last `end` (`counts`). \
                       An archive without its `end` line was cut short.",
        content((String = "application/x-ndjson")),
    )),
    security(("tenant_key" = ["admin"])),
)]
pub async fn export(State(state): State<AppState>, Tenant(context): Tenant) -> Result<Response, ApiError> {
    context.require(Scope::Admin)?;
    let archive = export::open(&state.db, &state.exports, &context).await?;
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{}-export.ndjson\"", archive.slug))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    let body = Body::from_stream(archive.lines().map_ok(axum::body::Bytes::from).inspect_err(|error| {
        tracing::error!(%error, "the tenant export stopped");
    }));
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
    headers.insert(header::CONTENT_DISPOSITION, disposition);
    Ok(response)
}
