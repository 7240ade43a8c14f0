//! Fitting a conversation into a model's context window: the newest messages that fit, counted with
//! tiktoken, always ending with the user's question.

use crate::providers::{ChatMessage, ChatRole};
use crate::tokens;

/// Keeps the newest messages whose tokens, with the system prompt and room for the answer, fit `window`.
/// The last message (the question) is always kept; the kept history starts with a user message, as some
/// providers require.
pub fn fit_to_window(
    system: &str,
    messages: Vec<ChatMessage>,
    window: usize,
    reserved_output: usize,
) -> Vec<ChatMessage> {
    let mut budget = window.saturating_sub(reserved_output + tokens::count(system));
    let mut kept_from = messages.len();
    for (index, message) in messages.iter().enumerate().rev() {
        let cost = tokens::count(&message.content) + tokens::PER_MESSAGE_OVERHEAD;
        let is_question = index + 1 == messages.len();
        if cost > budget && !is_question {
            break;
        }
        budget = budget.saturating_sub(cost);
        kept_from = index;
    }
    let mut kept: Vec<ChatMessage> = messages.into_iter().skip(kept_from).collect();
    while kept.len() > 1 && kept.first().is_some_and(|message| message.role != ChatRole::User) {
        kept.remove(0);
    }
    kept
}

/// The tokens a request's input costs, by our count.
pub fn estimate_input_tokens(system: &str, messages: &[ChatMessage]) -> usize {
    tokens::count(system)
        + tokens::PER_MESSAGE_OVERHEAD
        + messages.iter().map(|message| tokens::count(&message.content) + tokens::PER_MESSAGE_OVERHEAD).sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(role: ChatRole, words: usize) -> ChatMessage {
        ChatMessage { role, content: "word ".repeat(words) }
    }

    #[test]
    fn keeps_everything_that_fits() {
        let messages = vec![message(ChatRole::User, 10), message(ChatRole::Assistant, 10), message(ChatRole::User, 10)];
        assert_eq!(fit_to_window("system", messages.clone(), 10_000, 1_000), messages);
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
        let kept = fit_to_window("system", messages.clone(), 1_100, 100);
        assert_eq!(kept, messages[2..].to_vec());
        let kept = fit_to_window("system", messages.clone(), 400, 100);
        assert_eq!(kept, messages[4..].to_vec(), "an assistant message cannot lead");
    }

    #[test]
    fn the_question_is_kept_even_when_alone_it_is_too_long() {
        let messages = vec![message(ChatRole::User, 100), message(ChatRole::User, 5_000)];
        assert_eq!(fit_to_window("system", messages.clone(), 1_000, 100), messages[1..].to_vec());
    }
}
