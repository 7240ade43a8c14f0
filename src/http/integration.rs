//! `POST /api/v1/integration/chat` (chat): one message from an external system, answered as JSON or, when
//! asked, as the run's event stream. `Idempotency-Key` makes retries safe.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;

use super::AppState;
use super::answer;
use super::error::ApiError;
use super::extract::{self, Json, Tenant};
use super::rate_limits;
use super::sse;
use super::streams::{self, OpenStreams};
use super::views::integration::IntegrationAnswer;
use crate::auth::context::Scope;
use crate::ids::SessionId;
use crate::integration::{self, IntegrationRequest};
use crate::rate_limits::Demand;

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
    open_streams: OpenStreams,
    headers: HeaderMap,
    Json(body): Json<ChatBody>,
) -> Result<Response, ApiError> {
    context.require(Scope::Chat)?;
    let slot = open_streams.reserve_if(body.stream || sse::wants_event_stream(&headers), &context)?;
    let key = extract::idempotency_key(&headers)?;
    let mut request =
        IntegrationRequest::parse(body.message, body.session_id, body.external_user_id, body.metadata, key.as_deref())?;
    let end_user = request.external_user_id.as_deref();
    let demand = Demand { prompt: &[&request.turn.content], max_output_tokens: None, end_user };
    let admission = rate_limits::admit(&state, &context, &demand).await?;
    request.turn.rate_reservation = Some(admission.reservation);
    let accepted = Box::pin(integration::start(&state.db, &state.engine, &context, request)).await?;
    let answer = state.engine.answer(&context, accepted.run_id, streams::delivery(slot.as_ref())).await?;
    answer::respond(answer, slot, |outcome| IntegrationAnswer::new(&accepted, outcome))
}
