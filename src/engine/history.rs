//! Fitting a conversation into a model's context window: the newest messages that fit, counted with
//! tiktoken, always ending with the user's question.

use crate::providers::{ChatMessage, ChatRole};
use crate::tokens;

/// The messages that fit, and what the whole input costs by our count (system prompt included), so the
/// estimate needs no second tokenization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fitted {
    pub messages: Vec<ChatMessage>,
    pub input_tokens: usize,
}

/// Text up to this size is counted on the async worker: a few microseconds, less than a hand-off costs.
const COUNTED_IN_PLACE_BYTES: usize = 16 * 1024;

/// [`fit_to_window`], off the async workers (under the process's bound on CPU-heavy work) when the text
/// is large: tokenizing a conversation of long messages takes milliseconds that every other request on
/// the worker would wait for.
pub async fn fit_to_window_off_workers(
    system: String,
    messages: Vec<ChatMessage>,
    window: usize,
    reserved_output: usize,
) -> Result<Fitted, tokio::task::JoinError> {
    let size = system.len() + messages.iter().map(|message| message.content.len()).sum::<usize>();
    if size <= COUNTED_IN_PLACE_BYTES {
        return Ok(fit_to_window(&system, messages, window, reserved_output));
    }
    crate::background::cpu_bound(move || fit_to_window(&system, messages, window, reserved_output)).await
}

/// Keeps the newest messages whose tokens, with the system prompt and room for the answer, fit `window`.
/// The last message (the question) is always kept; the kept history starts with a user message, as some
/// providers require.
pub fn fit_to_window(system: &str, messages: Vec<ChatMessage>, window: usize, reserved_output: usize) -> Fitted {
    let system_tokens = tokens::count(system) + tokens::PER_MESSAGE_OVERHEAD;
    let mut budget = window.saturating_sub(reserved_output + system_tokens);
    // Costs of the kept messages, newest first.
    let mut costs = Vec::new();
    for (index, message) in messages.iter().enumerate().rev() {
        let cost = tokens::count(&message.content) + tokens::PER_MESSAGE_OVERHEAD;
        let is_question = index + 1 == messages.len();
        if cost > budget && !is_question {
            break;
        }
        budget = budget.saturating_sub(cost);
        costs.push(cost);
    }
    let mut kept: Vec<ChatMessage> = messages.into_iter().rev().take(costs.len()).rev().collect();
    costs.reverse();
    let leading_replies =
        kept.iter().take(kept.len().saturating_sub(1)).take_while(|message| message.role != ChatRole::User).count();
    kept.drain(..leading_replies);
    let input_tokens = system_tokens + costs[leading_replies..].iter().sum::<usize>();
    Fitted { messages: kept, input_tokens }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(role: ChatRole, words: usize) -> ChatMessage {
        ChatMessage { role, ..ChatMessage::user("word ".repeat(words)) }
    }

    #[test]
    fn keeps_everything_that_fits() {
        let messages = vec![message(ChatRole::User, 10), message(ChatRole::Assistant, 10), message(ChatRole::User, 10)];
        let fitted = fit_to_window("system", messages.clone(), 10_000, 1_000);
        assert_eq!(fitted.messages, messages);
        let recount = tokens::count("system")
            + messages.iter().map(|message| tokens::count(&message.content)).sum::<usize>()
            + 4 * tokens::PER_MESSAGE_OVERHEAD;
        assert_eq!(fitted.input_tokens, recount, "the estimate counts exactly what is sent");
    }

    #[test]
    fn drops_the_oldest_first_and_starts_with_a_user_message() {
        let messages = vec![
            message(ChatRole::User, 400),
            message(ChatRole::Assistant, 400),
            message(ChatRole::User, 400),
            message(ChatRole::Assistant, 50),
            message(ChatRole::User, 50),
        ];
        let kept = fit_to_window("system", messages.clone(), 1_100, 100).messages;
        assert_eq!(kept, messages[2..].to_vec());
        let kept = fit_to_window("system", messages.clone(), 400, 100).messages;
        assert_eq!(kept, messages[4..].to_vec(), "an assistant message cannot lead");
    }

    #[test]
    fn the_question_is_kept_even_when_alone_it_is_too_long() {
        let messages = vec![message(ChatRole::User, 100), message(ChatRole::User, 5_000)];
        assert_eq!(fit_to_window("system", messages.clone(), 1_000, 100).messages, messages[1..].to_vec());
    }
}
