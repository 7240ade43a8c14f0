//! Feedback on answers: `POST /api/v1/messages/{id}/feedback` (chat scope, or a widget token on its own
//! conversations) and `GET /api/v1/feedback/export` (admin), JSON lines for evaluation.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use futures::TryStreamExt as _;
use serde::Deserialize;
use utoipa::ToSchema;

use super::AppState;
use super::error::ApiError;
use super::extract::{Json, Path, Tenant};
use super::views::feedback::FeedbackView;
use crate::auth::context::Scope;
use crate::feedback::{self, NewFeedback, Rating};
use crate::ids::MessageId;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GiveFeedback {
    rating: Rating,
    /// Trimmed; blank is none.
    #[schema(max_length = 2000)]
    comment: Option<String>,
    /// Labels such as `outdated` or `wrong_source`: one line of 1 to 50 characters each, none twice.
    #[schema(max_items = 10)]
    tags: Option<Vec<String>>,
}

/// Rates an answer (an assistant message). One feedback per message per giver (API key or widget user):
/// a second one replaces the first (200), keeping its id.
#[utoipa::path(
    post, path = "/messages/{id}/feedback", operation_id = "give_feedback", tag = "chat",
    params(("id" = uuid::Uuid, Path, description = "The assistant message's id.")),
    request_body = GiveFeedback,
    responses(
        (status = 201, description = "The feedback, new.", body = FeedbackView),
        (status = 200, description = "The feedback, replacing this giver's earlier one.", body = FeedbackView),
    ),
    security(("tenant_key" = ["chat"]), ("widget_token" = [])),
)]
pub async fn give(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Path(id): Path<uuid::Uuid>,
    Json(body): Json<GiveFeedback>,
) -> Result<(StatusCode, axum::Json<FeedbackView>), ApiError> {
    context.require_conversations()?;
    let new = NewFeedback::parse(body.rating, body.comment, body.tags)?;
    let (saved, created) = feedback::give(&state.db, &context, MessageId(id), &new).await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, axum::Json(FeedbackView::from(&saved))))
}

/// Every feedback of the tenant, oldest first, streamed as JSON lines: per line `id`, `message_id`,
/// `conversation_id`, `run_id`, `question`, `answer`, `rating`, `comment`, `tags`, `model`, `provider`,
/// `prompt_template`, `prompt_version`, `cited_chunk_ids`, `cited_chunks` (number, chunk and document ids,
/// source path, title, excerpt), `giver_type`, `giver_id`, `created_at`, `updated_at`. Audited as
/// `feedback.exported`.
#[utoipa::path(
    get, path = "/feedback/export", operation_id = "export_feedback", tag = "chat",
    responses((
        status = 200,
        description = "One JSON object per line; no line when there is no feedback.",
        content((String = "application/x-ndjson")),
    )),
    security(("tenant_key" = ["admin"])),
)]
pub async fn export(State(state): State<AppState>, Tenant(context): Tenant) -> Result<Response, ApiError> {
    context.require(Scope::Admin)?;
    let lines = feedback::export(&state.db, &context).await?;
    let body = Body::from_stream(lines.map_ok(axum::body::Bytes::from).inspect_err(|error| {
        tracing::error!(%error, "the feedback export stopped");
    }));
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
    headers.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment; filename=\"feedback.jsonl\""));
    Ok(response)
}
