//! Responses (the `/v1/responses` door): each is one pass-through turn of its own integration
//! conversation, whose run keeps the request it answered. A later request naming it as
//! `previous_response_id` continues from what is kept there, so the chain needs nothing else stored, and
//! deleting one response never changes another.

use sqlx::PgPool;

use super::IntegrationError;
use super::store;
use super::whole::{self, WholeConversation};
use crate::auth::context::TenantContext;
use crate::conversations::{self, Message};
use crate::db;
use crate::engine::{Engine, EngineError, StartedTurn};
use crate::ids::RunId;
use crate::rate_limits::TokenReservation;
use crate::runs::{self, Run};

/// A response as kept: its run, the request (in the door's own terms, opaque here) and the assistant's
/// message once there is one.
#[derive(Debug, Clone)]
pub struct StoredResponse {
    pub run: Run,
    pub request: serde_json::Value,
    pub answer: Option<Message>,
}

/// Starts the turn as `/v1/chat/completions` does, with `request` kept on its run (written with it).
pub async fn start(
    engine: &Engine,
    context: &TenantContext,
    conversation: WholeConversation,
    rate_reservation: TokenReservation,
    request: serde_json::Value,
) -> Result<StartedTurn, IntegrationError> {
    whole::start(engine, context, conversation, rate_reservation, Some(request)).await
}

/// The response `run_id` answered, if it is one this context may see (a run of another door, another
/// tenant's or another end user's is none).
pub async fn find(
    pool: &PgPool,
    context: &TenantContext,
    run_id: RunId,
) -> Result<Option<StoredResponse>, IntegrationError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let Some(request) = store::response_request(&mut transaction, run_id).await? else {
        return Ok(None);
    };
    let Some(run) = runs::store::get(&mut transaction, run_id).await? else {
        return Ok(None);
    };
    let visible = match run.session_id {
        Some(session_id) => conversations::visible_session(&mut transaction, context, session_id).await?.is_some(),
        None => false,
    };
    if !visible {
        return Ok(None);
    }
    let answer = match store::answer_of_run(&mut transaction, run_id).await? {
        Some(message_id) => conversations::store::get_message(&mut transaction, message_id).await?,
        None => None,
    };
    transaction.commit().await?;
    Ok(Some(StoredResponse { run, request, answer }))
}

/// Deletes a response with its conversation (usage records stay, as for any conversation). One still
/// running is cancelled first, so that no turn goes on writing into a conversation that is gone. False
/// when there is no such response.
pub async fn delete(
    pool: &PgPool,
    engine: &Engine,
    context: &TenantContext,
    run_id: RunId,
) -> Result<bool, IntegrationError> {
    let Some(response) = find(pool, context, run_id).await? else {
        return Ok(false);
    };
    if !response.run.status.is_terminal() {
        match engine.cancel(context, run_id).await {
            Ok(_) | Err(EngineError::RunEnded) => {}
            Err(error) => return Err(error.into()),
        }
    }
    let Some(session_id) = response.run.session_id else {
        return Ok(false);
    };
    match conversations::delete(pool, context, session_id).await {
        Ok(()) => Ok(true),
        Err(conversations::ConversationError::NotFound) => Ok(false),
        Err(error) => Err(error.into()),
    }
}
