//! `/api/v1/runs/{id}` (chat or runs): a run's state, its events as resumable SSE, and cancellation.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse as _, Response};
use serde::Deserialize;
use utoipa::IntoParams;

use super::AppState;
use super::error::ApiError;
use super::extract::{Path, Query, Tenant};
use super::sse;
use super::streams::OpenStreams;
use super::views::runs::RunDetail;
use super::views::turns::RunOutcome;
use crate::auth::context::Scope;
use crate::auth::context::TenantContext;
use crate::ids::RunId;
use crate::runs::events::RunEvent;

fn require_chat_or_runs(context: &TenantContext) -> Result<(), ApiError> {
    context.require_conversations().or_else(|_| context.require(Scope::Runs)).map_err(ApiError::from)
}

/// A run's state, with the tokens it used and what they cost.
#[utoipa::path(
    get, path = "/runs/{id}", operation_id = "get_run",
    tag = "chat",
    params(("id" = uuid::Uuid, Path, description = "The run's id.")),
    responses((status = 200, description = "The run and its usage.", body = RunDetail)),
    security(("tenant_key" = ["chat"]), ("tenant_key" = ["runs"]), ("widget_token" = [])),
)]
pub async fn get(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<uuid::Uuid>,
) -> Result<axum::Json<RunDetail>, ApiError> {
    require_chat_or_runs(&context)?;
    let run = state.engine.run(&context, RunId(id)).await?;
    let totals = crate::usage::of_run(&state.db, &context, run.id).await?;
    Ok(axum::Json(RunDetail::new(&run, &totals)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// For clients that cannot set `Last-Event-ID` (a browser's first `EventSource` connection): the
    /// sequence number to resume after (default 0, from the start). `Last-Event-ID` wins when both are sent.
    after: Option<i64>,
}

/// Follows a run's events as a resumable Server-Sent Events stream.
///
/// The events already recorded come first (after `Last-Event-ID` or `after`), then the rest as they
/// happen, until the run ends or pauses for an approval.
#[utoipa::path(
    get, path = "/runs/{id}/events", operation_id = "run_events",
    tag = "chat",
    params(
        ("id" = uuid::Uuid, Path, description = "The run's id."),
        ("Last-Event-ID" = Option<i64>, Header, nullable = false, minimum = 0,
            description = "The `id` of the last frame received: the stream resumes after it."),
        EventsQuery,
    ),
    responses(
        (status = 200, description = "The run's events: each frame has `id` (the event's `seq`), `event` \
            (its `type`) and `data` (the event as JSON, the schema here). Comments (`: keep-alive`) every 15 s \
            keep an idle stream open; the stream ends after `run.completed`, `run.failed`, `run.cancelled` \
            or `run.awaiting_approval`.",
            content((RunEvent = "text/event-stream"))),
    ),
    security(("tenant_key" = ["chat"]), ("tenant_key" = ["runs"]), ("widget_token" = [])),
)]
pub async fn events(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<uuid::Uuid>,
    open_streams: OpenStreams,
    headers: HeaderMap,
    Query(query): Query<EventsQuery>,
) -> Result<Response, ApiError> {
    require_chat_or_runs(&context)?;
    let after = match sse::last_event_id(&headers) {
        Some(Ok(seq)) => seq,
        Some(Err(())) => {
            return Err(ApiError::bad_request("invalid_last_event_id", "Last-Event-ID must be a sequence number"));
        }
        None => query.after.unwrap_or(0),
    };
    let slot = open_streams.reserve(&context)?;
    let events = state.engine.follow(&context, RunId(id), after).await?;
    Ok(sse::stream(events, slot).into_response())
}

/// Cancels a run; what its answer held so far is kept.
#[utoipa::path(
    post, path = "/runs/{id}/cancel", operation_id = "cancel_run",
    tag = "chat",
    params(("id" = uuid::Uuid, Path, description = "The run's id.")),
    responses((status = 200, description = "The run as cancelled (or as it ended, if it ended first), and \
        its message.", body = RunOutcome)),
    security(("tenant_key" = ["chat"]), ("tenant_key" = ["runs"]), ("widget_token" = [])),
)]
pub async fn cancel(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<uuid::Uuid>,
) -> Result<axum::Json<RunOutcome>, ApiError> {
    require_chat_or_runs(&context)?;
    let outcome = state.engine.cancel(&context, RunId(id)).await?;
    Ok(axum::Json(RunOutcome::from(&outcome)))
}
