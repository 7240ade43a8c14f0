//! `/api/v1/webhooks` (admin): destinations for events (the signing secret is shown once), their deliveries
//! with every attempt, and redelivery.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::AppState;
use super::error::ApiError;
use super::extract::{Json, Path, Query, Tenant, page_limit};
use super::views::webhooks::{CreatedWebhookView, DeliveryList, DeliveryView, WebhookList, WebhookView};
use crate::auth::context::Scope;
use crate::ids::{DeliveryId, WebhookId};
use crate::webhooks::events::EventType;
use crate::webhooks::{self, NewWebhook, WebhookChange};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// Where deliveries are POSTed: http(s), a public address unless the operator allows it, no credential in it.
    #[schema(min_length = 1, max_length = 2000)]
    url: String,
    /// The event types to receive; at least one.
    #[schema(value_type = Vec<EventType>, min_items = 1, max_items = 20)]
    events: Vec<String>,
    #[schema(max_length = 1000)]
    description: Option<String>,
}

/// Creates a webhook destination; its signing secret is in this answer only.
#[utoipa::path(
    post, path = "/webhooks", tag = "webhooks",
    request_body = CreateWebhook,
    responses(
        (status = 201, description = "The destination, with its signing secret shown once.", body = CreatedWebhookView),
        (status = 400, description = "An event type that does not exist (`unknown_webhook_event`)."),
        (status = 409, description = "The tenant has as many destinations as it may (`too_many_webhooks`)."),
    ),
    security(("tenant_key" = ["admin"])),
)]
pub async fn create(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Json(body): Json<CreateWebhook>,
) -> Result<(StatusCode, axum::Json<CreatedWebhookView>), ApiError> {
    context.require(Scope::Admin)?;
    let new = NewWebhook { url: body.url, events: body.events, description: body.description };
    let created = webhooks::create(&state.db, &state.keys, &state.outbound, &context, &new).await?;
    Ok((StatusCode::CREATED, axum::Json(CreatedWebhookView::from(&created))))
}

/// The tenant's webhook destinations; never their secrets.
#[utoipa::path(
    get, path = "/webhooks", tag = "webhooks",
    responses((status = 200, description = "Every destination of the tenant.", body = WebhookList)),
    security(("tenant_key" = ["admin"])),
)]
pub async fn list(State(state): State<AppState>, Tenant(context): Tenant) -> Result<axum::Json<WebhookList>, ApiError> {
    context.require(Scope::Admin)?;
    let endpoints = webhooks::list(&state.db, &context).await?;
    Ok(axum::Json(WebhookList::new(&endpoints)))
}

/// One webhook destination; never its secret.
#[utoipa::path(
    get, path = "/webhooks/{id}", tag = "webhooks",
    params(("id" = uuid::Uuid, Path, description = "The destination's id.")),
    responses((status = 200, description = "The destination.", body = WebhookView)),
    security(("tenant_key" = ["admin"])),
)]
pub async fn get(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<uuid::Uuid>,
) -> Result<axum::Json<WebhookView>, ApiError> {
    context.require(Scope::Admin)?;
    let endpoint = webhooks::get(&state.db, &context, WebhookId(id)).await?;
    Ok(axum::Json(WebhookView::from(&endpoint)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhook {
    #[schema(min_length = 1, max_length = 2000)]
    url: Option<String>,
    #[schema(value_type = Option<Vec<EventType>>, min_items = 1, max_items = 20)]
    events: Option<Vec<String>>,
    #[schema(max_length = 1000)]
    description: Option<String>,
    /// Turns the destination off or on; turning it on again clears its failure count.
    enabled: Option<bool>,
}

/// Changes a webhook destination's URL, events, description or whether it is enabled.
#[utoipa::path(
    patch, path = "/webhooks/{id}", tag = "webhooks",
    params(("id" = uuid::Uuid, Path, description = "The destination's id.")),
    request_body = UpdateWebhook,
    responses(
        (status = 200, description = "The destination as it is now.", body = WebhookView),
        (status = 400, description = "An event type that does not exist (`unknown_webhook_event`)."),
    ),
    security(("tenant_key" = ["admin"])),
)]
pub async fn update(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<uuid::Uuid>,
    Json(fields): Json<Map<String, Value>>,
) -> Result<axum::Json<WebhookView>, ApiError> {
    context.require(Scope::Admin)?;
    // Read as an object first: serde would also take a struct of optional fields from an array.
    let body: UpdateWebhook =
        serde_json::from_value(Value::Object(fields)).map_err(|error| ApiError::invalid(error.to_string()))?;
    let change =
        WebhookChange { url: body.url, events: body.events, description: body.description, enabled: body.enabled };
    let endpoint = webhooks::update(&state.db, &state.outbound, &context, WebhookId(id), &change).await?;
    Ok(axum::Json(WebhookView::from(&endpoint)))
}

/// Deletes a webhook destination with its deliveries and their log.
#[utoipa::path(
    delete, path = "/webhooks/{id}", tag = "webhooks",
    params(("id" = uuid::Uuid, Path, description = "The destination's id.")),
    responses((status = 204, description = "Deleted.")),
    security(("tenant_key" = ["admin"])),
)]
pub async fn delete(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<uuid::Uuid>,
) -> Result<StatusCode, ApiError> {
    context.require(Scope::Admin)?;
    webhooks::delete(&state.db, &context, WebhookId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesQuery {
    /// How many deliveries, newest first (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

/// A destination's deliveries, newest first, each with every attempt (status code or error, latency).
#[utoipa::path(
    get, path = "/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = uuid::Uuid, Path, description = "The destination's id."), DeliveriesQuery),
    responses((status = 200, description = "The newest deliveries.", body = DeliveryList)),
    security(("tenant_key" = ["admin"])),
)]
pub async fn deliveries(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<uuid::Uuid>,
    Query(query): Query<DeliveriesQuery>,
) -> Result<axum::Json<DeliveryList>, ApiError> {
    context.require(Scope::Admin)?;
    let limit = page_limit(query.limit, 50, webhooks::MAX_LISTED)?;
    let logs = webhooks::deliveries(&state.db, &context, WebhookId(id), limit).await?;
    Ok(axum::Json(DeliveryList::new(&logs)))
}

/// Queues a delivery again, now, with the same `webhook-id`, for a new round of retries.
#[utoipa::path(
    post, path = "/webhooks/{id}/deliveries/{delivery_id}/redeliver", tag = "webhooks",
    params(
        ("id" = uuid::Uuid, Path, description = "The destination's id."),
        ("delivery_id" = uuid::Uuid, Path, description = "The delivery's id."),
    ),
    responses(
        (status = 202, description = "Queued; its attempts follow in the delivery log.", body = DeliveryView),
        (status = 409, description = "The destination is disabled (`webhook_disabled`)."),
    ),
    security(("tenant_key" = ["admin"])),
)]
pub async fn redeliver(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path((id, delivery_id)): Path<(uuid::Uuid, uuid::Uuid)>,
) -> Result<(StatusCode, axum::Json<DeliveryView>), ApiError> {
    context.require(Scope::Admin)?;
    let log = webhooks::redeliver(&state.db, &context, WebhookId(id), DeliveryId(delivery_id)).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(DeliveryView::from(&log))))
}
