//! The timed response body shared by all providers: a list of already-framed steps played with the chunk delay,
//! cut short by the reply's fault (`CutAfter`, `MalformedAfter`, `StallAfter`) at the same point for every provider.

use std::collections::VecDeque;
use std::io;
use std::time::Duration;

use axum::body::Body;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::Stream;
use serde::Serialize;

use crate::Fault;
use crate::script::Turn;

/// One framed piece of a response body.
#[derive(Debug)]
pub(crate) enum Step {
    /// Structure around the content (`message_start`, the role chunk, block starts and stops): sent at once.
    Framing(Bytes),
    /// A content chunk (text piece, tool-call chunk or argument fragment): preceded by the delay, counted by faults.
    Content(Bytes),
    /// The end of the answer (finish chunk, usage, terminator): never sent when a fault is scripted.
    Closing(Bytes),
}

/// A complete body to play: its steps, and the invalid-JSON frame a `MalformedAfter` fault sends instead of the rest.
#[derive(Debug)]
pub(crate) struct Script {
    pub content_type: &'static str,
    pub steps: Vec<Step>,
    pub malformed: &'static str,
}

#[derive(Debug)]
enum Action {
    Pause(Duration),
    Send(Bytes),
    Cut,
    Stall,
}

/// Serialises a wire value; the mock's wire types have no maps with non-string keys, so this cannot fail.
pub(crate) fn json(value: &impl Serialize) -> String {
    serde_json::to_string(value).expect("mock wire types always serialise")
}

/// A 200 answer carrying one JSON value, as the embedding endpoints send.
pub(crate) fn json_response(value: &impl Serialize) -> Response {
    ([(CONTENT_TYPE, "application/json")], json(value)).into_response()
}

impl Script {
    /// Plays the script as a 200 response for `turn`.
    pub(crate) fn into_response(self, turn: &Turn) -> Response {
        let streamed = self.steps.iter().any(|step| matches!(step, Step::Content(_)));
        let mut actions = plan(self.steps, self.malformed, turn.delay, turn.fault.as_ref());
        // An answer sent in one piece comes once all of it is generated: as late as its stream would end.
        if !streamed && !turn.delay.is_zero() {
            let pieces = u32::try_from(turn.pieces.len()).unwrap_or(u32::MAX);
            actions.push_front(Action::Pause(turn.delay.saturating_mul(pieces)));
        }
        ([(CONTENT_TYPE, self.content_type), (CACHE_CONTROL, "no-cache")], Body::from_stream(play(actions)))
            .into_response()
    }
}

/// Decides, before anything is sent, exactly which bytes go out and where the fault strikes: after `n` content
/// steps (framing between contents still goes out), or at the closing steps when there are fewer contents.
fn plan(steps: Vec<Step>, malformed: &'static str, delay: Duration, fault: Option<&Fault>) -> VecDeque<Action> {
    let limit = match fault {
        Some(Fault::CutAfter(n) | Fault::MalformedAfter(n) | Fault::StallAfter(n)) => Some(*n),
        Some(Fault::Status { .. }) | None => None,
    };
    let mut actions = VecDeque::new();
    let mut contents = 0;
    for step in steps {
        let (bytes, is_content, strikes) = match step {
            Step::Framing(bytes) => (bytes, false, false),
            Step::Content(bytes) => (bytes, true, limit.is_some_and(|n| contents >= n)),
            Step::Closing(bytes) => (bytes, false, limit.is_some()),
        };
        if strikes {
            actions.push_back(match fault {
                Some(Fault::CutAfter(_)) => Action::Cut,
                Some(Fault::MalformedAfter(_)) => Action::Send(Bytes::from_static(malformed.as_bytes())),
                _ => Action::Stall,
            });
            return actions;
        }
        if is_content {
            contents += 1;
            if !delay.is_zero() {
                actions.push_back(Action::Pause(delay));
            }
        }
        actions.push_back(Action::Send(bytes));
    }
    actions
}

/// The body stream. An error item makes hyper abort the connection without the final chunk, which is the "cut".
fn play(actions: VecDeque<Action>) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
    futures::stream::unfold(actions, |mut actions| async move {
        loop {
            match actions.pop_front()? {
                Action::Pause(delay) => tokio::time::sleep(delay).await,
                Action::Send(bytes) => return Some((Ok(bytes), actions)),
                Action::Cut => {
                    // Hyper drops its unflushed write buffer when the body fails; returning Pending once lets it
                    // flush the status line and the chunks already produced, so only the rest goes missing.
                    tokio::task::yield_now().await;
                    return Some((Err(io::Error::other("mock-upstream: connection cut by fault")), actions));
                }
                Action::Stall => futures::future::pending::<()>().await,
            }
        }
    })
}

/// The JSON payloads a script sends, in order: each `data:` line's (but `[DONE]`), or a one-piece body's.
#[cfg(test)]
pub(crate) fn payloads(script: Script) -> Vec<serde_json::Value> {
    let mut payloads = Vec::new();
    for step in script.steps {
        let (Step::Framing(bytes) | Step::Content(bytes) | Step::Closing(bytes)) = step;
        let text = String::from_utf8(bytes.to_vec()).expect("UTF-8 frames");
        let data: Vec<&str> = text.lines().filter_map(|line| line.strip_prefix("data: ")).collect();
        if data.is_empty() {
            payloads.push(serde_json::from_str(&text).expect("a JSON body"));
        }
        payloads.extend(
            data.into_iter()
                .filter(|data| *data != "[DONE]")
                .map(|data| serde_json::from_str::<serde_json::Value>(data.trim_end_matches('\r')).expect("JSON data")),
        );
    }
    payloads
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps() -> Vec<Step> {
        let b = Bytes::from_static;
        vec![
            Step::Framing(b(b"start")),
            Step::Content(b(b"a")),
            Step::Content(b(b"b")),
            Step::Framing(b(b"block")),
            Step::Content(b(b"c")),
            Step::Closing(b(b"end")),
        ]
    }

    fn sent(actions: &VecDeque<Action>) -> Vec<&[u8]> {
        actions.iter().filter_map(|a| if let Action::Send(b) = a { Some(b.as_ref()) } else { None }).collect()
    }

    #[test]
    fn no_fault_sends_everything_with_pauses_before_contents() {
        let actions = plan(steps(), "bad", Duration::from_millis(5), None);
        assert_eq!(sent(&actions), [&b"start"[..], b"a", b"b", b"block", b"c", b"end"]);
        assert_eq!(actions.iter().filter(|a| matches!(a, Action::Pause(_))).count(), 3);
    }

    #[test]
    fn faults_strike_after_n_contents() {
        let actions = plan(steps(), "bad", Duration::ZERO, Some(&Fault::CutAfter(2)));
        assert_eq!(sent(&actions), [&b"start"[..], b"a", b"b", b"block"]);
        assert!(matches!(actions.back(), Some(Action::Cut)));

        let actions = plan(steps(), "bad", Duration::ZERO, Some(&Fault::MalformedAfter(0)));
        assert_eq!(sent(&actions), [&b"start"[..], b"bad"]);

        let actions = plan(steps(), "bad", Duration::ZERO, Some(&Fault::StallAfter(9)));
        assert_eq!(sent(&actions), [&b"start"[..], b"a", b"b", b"block", b"c"]);
        assert!(matches!(actions.back(), Some(Action::Stall)));
    }
}
