//! Conversations a caller sends whole with every request (the OpenAI-compatible door): each request is
//! recorded as a new integration conversation and answered as one turn of it.

use std::sync::Arc;

use sqlx::PgPool;

use super::IntegrationError;
use crate::auth::context::TenantContext;
use crate::conversations::{self, NewSession, Role, SessionType};
use crate::engine::{Engine, GivenConversation, StartedTurn, TurnMode, TurnRequest};
use crate::rate_limits::TokenReservation;

#[derive(Debug)]
pub enum WholeConversation {
    /// Switchboard's assistant answers `question` (retrieval, the tenant's tools), with the caller's
    /// earlier messages recorded before it as the conversation's history.
    Assistant { history: Vec<(Role, String)>, question: String },
    /// The caller's own model answers the conversation as given; `question` is recorded as the turn's
    /// user message.
    PassThrough { model: String, question: String, given: Box<GivenConversation> },
}

/// Records the conversation and starts its turn.
pub async fn start(
    pool: &PgPool,
    engine: &Engine,
    context: &TenantContext,
    conversation: WholeConversation,
    rate_reservation: TokenReservation,
) -> Result<StartedTurn, IntegrationError> {
    if let WholeConversation::PassThrough { model, .. } = &conversation {
        // An unknown model leaves no empty conversation behind.
        engine.check_model(context, model).await?;
    }
    let session = NewSession::parse(Some(SessionType::Integration), None, None)?;
    let session = conversations::create(pool, context, &session).await?;
    let request = match conversation {
        WholeConversation::Assistant { history, question } => {
            conversations::seed(pool, context, session.id, &history).await?;
            TurnRequest::parse(question, None)?
        }
        WholeConversation::PassThrough { model, question, given } => {
            TurnRequest::parse(question, Some(model))?.with_mode(TurnMode::PassThrough(Arc::from(given)))
        }
    };
    Ok(engine.start_turn(context, session.id, request.with_rate_reservation(rate_reservation)).await?)
}
