//! `/api/v1/documents` (admin) and `POST /api/v1/search` (chat): the tenant's documents and search over
//! them and the shared corpus.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;

use super::AppState;
use super::error::ApiError;
use super::extract::{Json, Path, Tenant};
use super::uploads::{self, JsonOrUpload, UploadDocument};
use super::views::documents::{DocumentAdded, DocumentList, SearchResults};
use crate::auth::context::Scope;
use crate::collections;
use crate::retrieval::search::SearchMode;
use crate::retrieval::{self, IngestOutcome, NewDocument};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddDocument {
    source_path: String,
    title: Option<String>,
    content: String,
    /// The collections (by name) it belongs to; absent: `default`, made on first use. Sending a document
    /// again with other collections moves it.
    #[schema(min_items = 1, max_items = 32)]
    collections: Option<Vec<String>>,
}

/// Adds a document, or replaces the one at the same `source_path` (200 when it changed or was the same):
/// its text as JSON, or a file (PDF, DOCX, HTML, CSV, Markdown, plain text) as `multipart/form-data`.
#[utoipa::path(
    post, path = "/documents", tag = "documents",
    request_body(content((AddDocument = "application/json"), (UploadDocument = "multipart/form-data"))),
    responses(
        (status = 201, description = "A new document, chunked and stored.", body = DocumentAdded),
        (status = 200, description = "The document at this path, changed or unchanged.", body = DocumentAdded),
    ),
    security(("tenant_key" = ["admin"])),
)]
pub async fn add(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    body: JsonOrUpload<AddDocument>,
) -> Result<(StatusCode, axum::Json<DocumentAdded>), ApiError> {
    context.require(Scope::Admin)?;
    let body = match body {
        JsonOrUpload::Json(body) => body,
        JsonOrUpload::Upload(upload) => return uploads::add(&state, &context, upload).await,
    };
    let mut document = NewDocument::parse(&body.source_path, body.title.as_deref(), body.content)?;
    if let Some(names) = &body.collections {
        document = document.in_collections(names)?;
    }
    let (stored, outcome) =
        retrieval::add_document(&state.db, &state.retriever, state.engine.background(), &context, &document).await?;
    let status = if outcome == IngestOutcome::Created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, axum::Json(DocumentAdded::new(&stored, outcome))))
}

/// The tenant's documents.
#[utoipa::path(
    get, path = "/documents", tag = "documents",
    responses((status = 200, description = "Every document of the tenant.", body = DocumentList)),
    security(("tenant_key" = ["admin"])),
)]
pub async fn list(
    State(state): State<AppState>,
    Tenant(context): Tenant,
) -> Result<axum::Json<DocumentList>, ApiError> {
    context.require(Scope::Admin)?;
    let documents = retrieval::list_documents(&state.db, &context).await?;
    Ok(axum::Json(DocumentList::new(&documents)))
}

/// Deletes a document and its chunks.
#[utoipa::path(
    delete, path = "/documents/{id}", tag = "documents",
    params(("id" = uuid::Uuid, Path, description = "The document's id.")),
    responses((status = 204, description = "Deleted.")),
    security(("tenant_key" = ["admin"])),
)]
pub async fn delete(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<uuid::Uuid>,
) -> Result<StatusCode, ApiError> {
    context.require(Scope::Admin)?;
    retrieval::delete_document(&state.db, &context, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    query: String,
    /// How many passages (default 10).
    k: Option<i64>,
    #[serde(default)]
    mode: SearchMode,
    /// Search only these collections (by name), among those the credentials may search; absent: all of
    /// them. Naming one they may not search is refused (403 `collection_forbidden`).
    #[schema(min_items = 1, max_items = 32)]
    collections: Option<Vec<String>>,
    /// Reorder the best candidates with the deployment's reranker (`true`), or not (`false`); absent: the
    /// tenant's `rerank` setting. `true` on a deployment without a reranker is refused (422
    /// `reranker_unavailable`). The candidates' text is sent to the reranking provider.
    rerank: Option<bool>,
}

/// Searches the tenant's documents (and the shared corpus, once enabled) within the credentials'
/// collections.
#[utoipa::path(
    post, path = "/search", tag = "documents",
    request_body = SearchRequest,
    responses((status = 200, description = "The best passages, best first.", body = SearchResults)),
    security(("tenant_key" = ["chat"])),
)]
pub async fn search(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Json(body): Json<SearchRequest>,
) -> Result<axum::Json<SearchResults>, ApiError> {
    context.require(Scope::Chat)?;
    let k = body.k.unwrap_or(10);
    let scope = collections::narrow_for(&state.db, &context, body.collections.as_deref()).await?;
    let searched = state.retriever.search(&state.db, &context, &body.query, k, body.mode, &scope, body.rerank).await?;
    Ok(axum::Json(SearchResults::new(&searched, body.mode)))
}
