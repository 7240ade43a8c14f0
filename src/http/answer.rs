//! Delivering a turn's answer in the chat API's shape (the conversations and integration doors): an
//! event stream, or JSON once the run ends (200) or pauses for an approval (202, the run says why); a
//! failed run answers with its error.

use axum::http::StatusCode;
use axum::response::{IntoResponse as _, Response};
use serde::Serialize;

use super::error::ApiError;
use super::sse;
use super::streams::{self, StreamSlot};
use crate::engine::{Answer, TurnOutcome};

/// `body` renders the ended or paused run as the door's JSON; `slot` is the stream's, reserved when the
/// client asked for one (the engine answers with a stream only then).
pub fn respond<T: Serialize>(
    answer: Answer,
    slot: Option<StreamSlot>,
    body: impl FnOnce(&TurnOutcome) -> T,
) -> Result<Response, ApiError> {
    match answer {
        Answer::Stream(events, _) => Ok(sse::stream(events, streams::required(slot)?).into_response()),
        Answer::Failed(failure) => Err(failure.into()),
        Answer::AwaitingApproval(outcome) => Ok((StatusCode::ACCEPTED, axum::Json(body(&outcome))).into_response()),
        Answer::Finished(outcome) => Ok((StatusCode::OK, axum::Json(body(&outcome))).into_response()),
    }
}
