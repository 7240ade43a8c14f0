//! `POST /api/v1/integration/chat` (chat): one message from an external system, answered as JSON or, when
//! asked, as the run's event stream. `Idempotency-Key` makes retries safe.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse as _, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use super::extract::{Json, Tenant};
use super::sse;
use crate::api_keys::Scope;
use crate::ids::SessionId;
use crate::integration::{self, IntegrationRequest};
use crate::runs::RunStatus;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatBody {
    message: String,
    session_id: Option<SessionId>,
    external_user_id: Option<String>,
    #[serde(default)]
    stream: bool,
    metadata: Option<Value>,
}

pub async fn chat(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    headers: HeaderMap,
    Json(body): Json<ChatBody>,
) -> Result<Response, ApiError> {
    context.require(Scope::Chat)?;
    let key = match headers.get("idempotency-key") {
        Some(value) => Some(
            value
                .to_str()
                .map_err(|_| ApiError::bad_request("invalid_request", "Idempotency-Key must be visible ASCII"))?
                .to_owned(),
        ),
        None => None,
    };
    let request = IntegrationRequest::parse(body.message, body.session_id, body.external_user_id, body.metadata, key)?;
    let accepted = integration::start(&state.db, &state.engine, &context, request).await?;
    if body.stream || sse::wants_event_stream(&headers) {
        let events = state.engine.follow(&context, accepted.run_id, 0).await?;
        return Ok(sse::stream(events).into_response());
    }
    let outcome = state.engine.wait(&context, accepted.run_id).await?;
    if let Some(code) = outcome.run.error_code.as_deref() {
        let message = outcome.run.error_message.as_deref().unwrap_or_default();
        return Err(ApiError::from_failed_run(code, message, outcome.run.id));
    }
    let status = if outcome.run.status == RunStatus::AwaitingApproval { StatusCode::ACCEPTED } else { StatusCode::OK };
    let message = outcome.message.as_ref().map(|message| {
        json!({
            "id": message.id, "content": message.content, "citations": message.citations,
            "tool_calls": message.tool_calls, "model": message.model_used, "provider": message.provider_used,
        })
    });
    let usage = outcome.message.as_ref().map(|message| {
        json!({ "input_tokens": message.input_tokens, "output_tokens": message.output_tokens,
                "total_tokens": message.total_tokens })
    });
    let body = json!({
        "session_id": accepted.session_id, "run_id": accepted.run_id, "status": outcome.run.status,
        "replayed": accepted.replayed, "message": message, "usage": usage,
    });
    Ok((status, axum::Json(body)).into_response())
}
