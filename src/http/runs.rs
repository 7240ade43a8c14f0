//! `/api/v1/runs/{id}` (chat or runs): a run's state, its events as resumable SSE, and cancellation.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse as _, Response};
use serde::Deserialize;

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

fn require_chat_or_runs(context: &TenantContext) -> Result<(), ApiError> {
    context.require_conversations().or_else(|_| context.require(Scope::Runs)).map_err(ApiError::from)
}

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

#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    /// For clients that cannot set `Last-Event-ID` (a browser's first `EventSource` connection).
    after: Option<i64>,
}

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

pub async fn cancel(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<uuid::Uuid>,
) -> Result<axum::Json<RunOutcome>, ApiError> {
    require_chat_or_runs(&context)?;
    let outcome = state.engine.cancel(&context, RunId(id)).await?;
    Ok(axum::Json(RunOutcome::from(&outcome)))
}
