//! `/api/v1/documents` (admin) and `POST /api/v1/search` (chat): the tenant's documents and search over
//! them and the shared corpus.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;

use super::AppState;
use super::error::ApiError;
use super::extract::{Json, Path, Tenant};
use super::views::documents::{DocumentAdded, DocumentList, SearchResults};
use crate::auth::context::Scope;
use crate::retrieval::search::SearchMode;
use crate::retrieval::{self, IngestOutcome, NewDocument};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddDocument {
    source_path: String,
    title: Option<String>,
    content: String,
}

pub async fn add(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Json(body): Json<AddDocument>,
) -> Result<(StatusCode, axum::Json<DocumentAdded>), ApiError> {
    context.require(Scope::Admin)?;
    let document = NewDocument::parse(&body.source_path, body.title.as_deref(), body.content)?;
    let (stored, outcome) = retrieval::add_document(&state.db, &state.retriever, &context, &document).await?;
    let status = if outcome == IngestOutcome::Created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, axum::Json(DocumentAdded::new(&stored, outcome))))
}

pub async fn list(
    State(state): State<AppState>,
    Tenant(context): Tenant,
) -> Result<axum::Json<DocumentList>, ApiError> {
    context.require(Scope::Admin)?;
    let documents = retrieval::list_documents(&state.db, &context).await?;
    Ok(axum::Json(DocumentList::new(&documents)))
}

pub async fn delete(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<uuid::Uuid>,
) -> Result<StatusCode, ApiError> {
    context.require(Scope::Admin)?;
    retrieval::delete_document(&state.db, &context, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    query: String,
    k: Option<i64>,
    #[serde(default)]
    mode: SearchMode,
}

pub async fn search(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Json(body): Json<SearchRequest>,
) -> Result<axum::Json<SearchResults>, ApiError> {
    context.require(Scope::Chat)?;
    let k = body.k.unwrap_or(10);
    let results = state.retriever.search(&state.db, &context, &body.query, k, body.mode).await?;
    Ok(axum::Json(SearchResults::new(&results, body.mode)))
}
