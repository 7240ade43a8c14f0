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
use super::sse;
use super::views::integration::IntegrationAnswer;
use crate::auth::context::Scope;
use crate::engine::Delivery;
use crate::ids::SessionId;
use crate::integration::{self, IntegrationRequest};

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
    let key = extract::idempotency_key(&headers)?;
    let request =
        IntegrationRequest::parse(body.message, body.session_id, body.external_user_id, body.metadata, key.as_deref())?;
    let accepted = Box::pin(integration::start(&state.db, &state.engine, &context, request)).await?;
    let streams = body.stream || sse::wants_event_stream(&headers);
    let delivery = if streams { Delivery::Stream } else { Delivery::Wait };
    let answer = state.engine.answer(&context, accepted.run_id, delivery).await?;
    answer::respond(answer, |outcome| IntegrationAnswer::new(&accepted, outcome))
}
