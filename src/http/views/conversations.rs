//! Conversations and their messages as the API shows them, and the answer to posting a message.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::conversations::{BranchMessage, Message, MessageStatus, Role, Session, SessionType};
use crate::ids::{MessageId, RunId, SessionId, UserId};
use crate::providers::FinishReason;
use crate::retrieval::Citation;

/// A conversation.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    #[schema(value_type = uuid::Uuid)]
    pub id: SessionId,
    pub session_type: SessionType,
    /// The end user whose conversation this is (widget and integration conversations).
    #[schema(value_type = Option<uuid::Uuid>)]
    pub user_id: Option<UserId>,
    pub workspace_id: Option<uuid::Uuid>,
    pub title: Option<String>,
    /// The collections (by name) its turns may search; null: all its callers may.
    pub collections: Option<Vec<String>>,
    pub archived: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&Session> for SessionView {
    fn from(session: &Session) -> Self {
        Self {
            id: session.id,
            session_type: session.session_type,
            user_id: session.user_id,
            workspace_id: session.workspace_id,
            collections: session.collection_ids.as_ref().map(|_| session.collections.clone()),
            title: session.title.clone(),
            archived: session.archived,
            created_at: session.created_at,
            updated_at: session.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList {
    pub sessions: Vec<SessionView>,
    /// Where the next page starts (the `before` of the next request); `null` on the last page.
    #[schema(value_type = Option<uuid::Uuid>)]
    pub next_before: Option<SessionId>,
}

impl SessionList {
    pub fn new(sessions: &[Session], next_before: Option<SessionId>) -> Self {
        Self { sessions: sessions.iter().map(SessionView::from).collect(), next_before }
    }
}

/// A message of a conversation.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageView {
    #[schema(value_type = uuid::Uuid)]
    pub id: MessageId,
    #[schema(value_type = uuid::Uuid)]
    pub session_id: SessionId,
    /// The message it follows: a user's message's, the answer before it on its branch (`null` for the
    /// first); an answer's, the question it answers.
    #[schema(value_type = Option<uuid::Uuid>)]
    pub parent_message_id: Option<MessageId>,
    /// The run that wrote (or answers) the message.
    #[schema(value_type = Option<uuid::Uuid>)]
    pub run_id: Option<RunId>,
    pub role: Role,
    pub content: String,
    pub status: MessageStatus,
    /// Why the model stopped (assistant answers): `length` means the answer was cut at its token limit.
    pub finish_reason: Option<FinishReason>,
    /// The tool calls of an assistant answer (`id`, `name`, `arguments`, and once run `is_error`); empty
    /// when none.
    #[schema(value_type = Vec<Object>)]
    pub tool_calls: serde_json::Value,
    /// The passages the answer cites, each with the `spans` of the answer (bytes of its UTF-8 text) that
    /// cite it, numbered as the prompt numbered them; empty when it cites none. (Answers recorded before
    /// issue 26 list every passage they were given here.)
    #[schema(value_type = Vec<Citation>)]
    pub citations: serde_json::Value,
    /// The passages the answer was given but does not cite.
    #[schema(value_type = Vec<Citation>)]
    pub retrieved: serde_json::Value,
    pub input_tokens: Option<i32>,
    pub output_tokens: Option<i32>,
    pub total_tokens: Option<i32>,
    pub model_used: Option<String>,
    pub provider_used: Option<String>,
    pub is_byok: Option<bool>,
    /// The `metadata` object an integration request attached to the message it posted.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    pub created_at: DateTime<Utc>,
}

impl From<&Message> for MessageView {
    fn from(message: &Message) -> Self {
        Self {
            id: message.id,
            session_id: message.session_id,
            parent_message_id: message.parent_message_id,
            run_id: message.run_id,
            role: message.role,
            content: message.content.clone(),
            status: message.status,
            finish_reason: message.finish_reason,
            tool_calls: message.tool_calls.0.clone(),
            citations: message.citations.0.clone(),
            retrieved: message.retrieved.0.clone(),
            input_tokens: message.input_tokens,
            output_tokens: message.output_tokens,
            total_tokens: message.total_tokens,
            model_used: message.model_used.clone(),
            provider_used: message.provider_used.clone(),
            is_byok: message.is_byok,
            metadata: message.metadata.as_ref().map(|metadata| metadata.0.clone()),
            created_at: message.created_at,
        }
    }
}

/// Where a message stands among its versions: the messages with the same parent (an edited question's
/// versions, or a regenerated answer's).
#[derive(Debug, Serialize, ToSchema)]
pub struct SiblingsView {
    /// Which version this message is, from 1 (oldest first).
    pub index: usize,
    /// How many versions there are (1: none but itself).
    pub count: usize,
    /// Every version's id, oldest first: only with `include=siblings`, or when a branch was chosen.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<uuid::Uuid>>)]
    pub ids: Option<Vec<MessageId>>,
}

/// A message of the conversation's active branch, with its versions.
#[derive(Debug, Serialize, ToSchema)]
pub struct BranchMessageView {
    #[serde(flatten)]
    pub message: MessageView,
    pub siblings: SiblingsView,
}

/// A conversation's active branch, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageList {
    pub messages: Vec<BranchMessageView>,
}

impl MessageList {
    /// The branch; `with_ids` lists each message's versions by id.
    pub fn new(messages: &[BranchMessage], with_ids: bool) -> Self {
        let view = |message: &BranchMessage| {
            let (index, count) = message.version();
            BranchMessageView {
                message: MessageView::from(&message.message),
                siblings: SiblingsView { index, count, ids: with_ids.then(|| message.sibling_ids.clone()) },
            }
        };
        Self { messages: messages.iter().map(view).collect() }
    }
}
