//! `/api/v1/documents` (admin) and `POST /api/v1/search` (chat): the tenant's documents and search over
//! them and the shared corpus.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use super::extract::{Json, Path, Tenant};
use crate::api_keys::Scope;
use crate::retrieval::search::{self, MAX_K};
use crate::retrieval::{self, IngestOutcome, NewDocument, RetrievalError};
use crate::{audit, db};

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
) -> Result<(StatusCode, axum::Json<Value>), ApiError> {
    context.require(Scope::Admin)?;
    let document = NewDocument::parse(&body.source_path, body.title.as_deref(), body.content)?;
    let mut transaction = db::begin_tenant(&state.db, context.tenant_id()).await?;
    let (stored, outcome) = retrieval::ingest(&mut transaction, context.tenant_id(), &document).await?;
    if outcome != IngestOutcome::Unchanged {
        let entry = audit::AuditEntry::new("document.saved", "document", stored.id.to_string()).with_details(
            json!({ "source_path": stored.source_path, "outcome": outcome, "chunks": stored.chunk_count }),
        );
        audit::record(&mut transaction, &context, &entry).await?;
    }
    transaction.commit().await?;
    let status = if outcome == IngestOutcome::Created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, axum::Json(json!({ "document": stored, "outcome": outcome }))))
}

pub async fn list(State(state): State<AppState>, Tenant(context): Tenant) -> Result<axum::Json<Value>, ApiError> {
    context.require(Scope::Admin)?;
    let mut transaction = db::begin_tenant(&state.db, context.tenant_id()).await?;
    let documents = retrieval::store::list(&mut transaction).await?;
    transaction.commit().await?;
    Ok(axum::Json(json!({ "documents": documents })))
}

pub async fn delete(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<uuid::Uuid>,
) -> Result<StatusCode, ApiError> {
    context.require(Scope::Admin)?;
    let mut transaction = db::begin_tenant(&state.db, context.tenant_id()).await?;
    if !retrieval::store::delete(&mut transaction, id).await? {
        return Err(RetrievalError::NotFound.into());
    }
    audit::record(&mut transaction, &context, &audit::AuditEntry::new("document.deleted", "document", id.to_string()))
        .await?;
    transaction.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    query: String,
    k: Option<i64>,
}

pub async fn search(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Json(body): Json<SearchRequest>,
) -> Result<axum::Json<Value>, ApiError> {
    context.require(Scope::Chat)?;
    let k = body.k.unwrap_or(10);
    if !(1..=MAX_K).contains(&k) {
        return Err(ApiError::invalid(format!("k must be between 1 and {MAX_K}")));
    }
    if body.query.trim().is_empty() || body.query.len() > 10_000 {
        return Err(ApiError::invalid("query must be 1 to 10000 characters"));
    }
    let mut transaction = db::begin_tenant(&state.db, context.tenant_id()).await?;
    let results = search::search(&mut transaction, &body.query, k).await?;
    transaction.commit().await?;
    Ok(axum::Json(json!({ "results": results })))
}
