//! A turn's outcome as the API returns it: its run with the answer (and, for a posted message, the
//! user's message it answers).

use serde::Serialize;
use utoipa::ToSchema;

use super::conversations::MessageView;
use super::runs::RunView;
use crate::conversations::Message;
use crate::engine::TurnOutcome;

/// The answer to posting a message once its run ends or pauses: the assistant's reply (`null` when
/// nothing was produced), the message posted, and the run.
#[derive(Debug, Serialize, ToSchema)]
pub struct TurnAnswer {
    pub message: Option<MessageView>,
    pub user_message: MessageView,
    pub run: RunView,
}

impl TurnAnswer {
    pub fn new(outcome: &TurnOutcome, user_message: &Message) -> Self {
        Self {
            message: outcome.message.as_ref().map(MessageView::from),
            user_message: MessageView::from(user_message),
            run: RunView::from(&outcome.run),
        }
    }
}

/// A cancelled run and what its message holds of the answer (`null` when nothing was produced).
#[derive(Debug, Serialize, ToSchema)]
pub struct RunOutcome {
    pub run: RunView,
    pub message: Option<MessageView>,
}

impl From<&TurnOutcome> for RunOutcome {
    fn from(outcome: &TurnOutcome) -> Self {
        Self { run: RunView::from(&outcome.run), message: outcome.message.as_ref().map(MessageView::from) }
    }
}
