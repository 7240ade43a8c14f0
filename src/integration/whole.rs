//! Conversations a caller sends whole with every request (the OpenAI-compatible door): each request is
//! recorded as a new integration conversation and answered as one turn of it.

use std::sync::Arc;

use super::IntegrationError;
use crate::auth::context::TenantContext;
use crate::conversations::{NewSession, Role, SessionType};
use crate::engine::{Engine, GivenConversation, NewConversation, Receipt, StartedTurn, TurnMode, TurnRequest};
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

/// Records the conversation and starts its turn; `kept`: the request to keep on its run, for the client to
/// come back to (a response's).
pub async fn start(
    engine: &Engine,
    context: &TenantContext,
    conversation: WholeConversation,
    rate_reservation: TokenReservation,
    kept: Option<serde_json::Value>,
) -> Result<StartedTurn, IntegrationError> {
    let session = NewSession::parse(Some(SessionType::Integration), None, None)?;
    let (history, request) = match conversation {
        WholeConversation::Assistant { history, question } => (history, TurnRequest::parse(question, None)?),
        WholeConversation::PassThrough { model, question, given } => {
            let request = TurnRequest::parse(question, Some(model))?.with_mode(TurnMode::PassThrough(Arc::from(given)));
            (Vec::new(), request)
        }
    };
    let request = request.with_rate_reservation(rate_reservation);
    // A conversation sent whole is answered whole: its client is told nothing of the start, unless a
    // request is kept for it to come back to.
    let request = match kept {
        Some(kept) => request.keeping(kept),
        None => request.with_receipt(Receipt::WithTheAnswer),
    };
    Ok(engine.start_in_new_session(context, NewConversation { session, history }, request).await?)
}
