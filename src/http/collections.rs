//! `/api/v1/collections` (admin): the named sets of documents that keys, widget tokens, conversations and
//! searches may be limited to.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::AppState;
use super::error::ApiError;
use super::extract::{Json, Path, Tenant};
use super::views::collections::{CollectionList, CollectionView};
use crate::auth::context::Scope;
use crate::collections;
use crate::ids::CollectionId;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCollection {
    /// Lowercase letters, digits, `-` and `_`; 1 to 63 characters, starting with a letter or digit.
    #[schema(pattern = r"^[a-z0-9][a-z0-9_-]{0,62}$")]
    name: String,
    #[schema(max_length = 1000)]
    description: Option<String>,
}

/// Creates a collection.
#[utoipa::path(
    post, path = "/collections", tag = "documents",
    request_body = CreateCollection,
    responses(
        (status = 201, description = "The new, empty collection.", body = CollectionView),
        (status = 409, description = "A collection of that name exists (`collection_exists`)."),
    ),
    security(("tenant_key" = ["admin"])),
)]
pub async fn create(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Json(body): Json<CreateCollection>,
) -> Result<(StatusCode, axum::Json<CollectionView>), ApiError> {
    context.require(Scope::Admin)?;
    let created = collections::create(&state.db, &context, &body.name, body.description.as_deref()).await?;
    Ok((StatusCode::CREATED, axum::Json(CollectionView::from(&created))))
}

/// The tenant's collections, and the shared corpus's once enabled, with how many documents each holds.
#[utoipa::path(
    get, path = "/collections", tag = "documents",
    responses((status = 200, description = "Every collection the tenant can search.", body = CollectionList)),
    security(("tenant_key" = ["admin"])),
)]
pub async fn list(
    State(state): State<AppState>,
    Tenant(context): Tenant,
) -> Result<axum::Json<CollectionList>, ApiError> {
    context.require(Scope::Admin)?;
    let collections = collections::list(&state.db, &context).await?;
    Ok(axum::Json(CollectionList::new(&collections)))
}

/// One collection.
#[utoipa::path(
    get, path = "/collections/{id}", tag = "documents",
    params(("id" = uuid::Uuid, Path, description = "The collection's id.")),
    responses((status = 200, description = "The collection.", body = CollectionView)),
    security(("tenant_key" = ["admin"])),
)]
pub async fn get(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<uuid::Uuid>,
) -> Result<axum::Json<CollectionView>, ApiError> {
    context.require(Scope::Admin)?;
    let collection = collections::get(&state.db, &context, CollectionId(id)).await?;
    Ok(axum::Json(CollectionView::from(&collection)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCollection {
    /// A new name; keys and conversations limited to the collection keep it under its new name.
    #[schema(pattern = r"^[a-z0-9][a-z0-9_-]{0,62}$")]
    name: Option<String>,
    #[schema(max_length = 1000)]
    description: Option<String>,
}

/// Renames a collection or changes its description (the shared corpus's cannot be changed: 409).
#[utoipa::path(
    patch, path = "/collections/{id}", tag = "documents",
    params(("id" = uuid::Uuid, Path, description = "The collection's id.")),
    request_body = UpdateCollection,
    responses((status = 200, description = "The collection as it is now.", body = CollectionView)),
    security(("tenant_key" = ["admin"])),
)]
pub async fn update(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<uuid::Uuid>,
    Json(fields): Json<Map<String, Value>>,
) -> Result<axum::Json<CollectionView>, ApiError> {
    context.require(Scope::Admin)?;
    // Read as an object first: serde would also take a struct of optional fields from an array.
    let body: UpdateCollection =
        serde_json::from_value(Value::Object(fields)).map_err(|error| ApiError::invalid(error.to_string()))?;
    let (name, description) = (body.name.as_deref(), body.description.as_deref());
    let updated = collections::update(&state.db, &context, CollectionId(id), name, description).await?;
    Ok(axum::Json(CollectionView::from(&updated)))
}

/// Deletes an empty collection (409 `collection_not_empty` while documents belong to it). Keys and
/// conversations limited to it then search nothing of it: deleting never widens a scope.
#[utoipa::path(
    delete, path = "/collections/{id}", tag = "documents",
    params(("id" = uuid::Uuid, Path, description = "The collection's id.")),
    responses((status = 204, description = "Deleted.")),
    security(("tenant_key" = ["admin"])),
)]
pub async fn delete(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<uuid::Uuid>,
) -> Result<StatusCode, ApiError> {
    context.require(Scope::Admin)?;
    collections::delete(&state.db, &context, CollectionId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}
