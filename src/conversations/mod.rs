//! Conversations (`chat_sessions`) and their messages. The engine appends messages; people list, rename,
//! archive and delete conversations. Messages form a tree (`parent_message_id`): editing a question or
//! regenerating an answer adds a sibling, on a branch of its own; a conversation shows and continues its
//! active branch (from the root to its `active_leaf_id`), and a turn's history is its question's branch.

pub mod store;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use sqlx::PgPool;

use crate::auth::context::{CollectionScope, TenantContext};
use crate::db;
use crate::ids::{MessageId, RunId, SessionId};
use crate::providers::FinishReason;

#[derive(Debug, thiserror::Error)]
pub enum ConversationError {
    #[error("no such conversation")]
    NotFound,
    #[error("no such message")]
    MessageNotFound,
    /// Regenerating is asked of an answer (an assistant message that answers a user's message).
    #[error("only an answer of the assistant to a user's message can be regenerated")]
    NotAnAnswer,
    /// Editing is asked of a user's message.
    #[error("only a user's message can be edited")]
    NotAUserMessage,
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Collection(#[from] crate::collections::CollectionError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum SessionType {
    Chat,
    Workspace,
    Onboarding,
    Integration,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Session {
    pub id: SessionId,
    pub session_type: SessionType,
    /// The end user whose conversation this is (widget and integration conversations).
    pub user_id: Option<crate::ids::UserId>,
    pub workspace_id: Option<uuid::Uuid>,
    pub title: Option<String>,
    /// The collections its turns may search (`None`: all its callers may), by id and by name.
    pub collection_ids: Option<Vec<uuid::Uuid>>,
    pub collections: Vec<String>,
    pub archived: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Session {
    pub fn collections(&self) -> CollectionScope {
        CollectionScope::from_stored(self.collection_ids.clone())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum Role {
    System,
    User,
    Assistant,
    Tool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum MessageStatus {
    Complete,
    /// Cut short by a failure or a cancellation; the content is what was produced before.
    Incomplete,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Message {
    pub id: MessageId,
    pub session_id: SessionId,
    /// The message it follows: a question's, the answer before it on its branch (none for the first); an
    /// answer's, the question it answers.
    pub parent_message_id: Option<MessageId>,
    pub run_id: Option<RunId>,
    pub role: Role,
    pub content: String,
    pub status: MessageStatus,
    /// Why the model stopped: `length` means the answer was cut at its token limit.
    pub finish_reason: Option<FinishReason>,
    pub tool_calls: sqlx::types::Json<serde_json::Value>,
    pub citations: sqlx::types::Json<serde_json::Value>,
    /// The passages an answer was given but did not cite.
    pub retrieved: sqlx::types::Json<serde_json::Value>,
    pub input_tokens: Option<i32>,
    pub output_tokens: Option<i32>,
    pub total_tokens: Option<i32>,
    pub model_used: Option<String>,
    pub provider_used: Option<String>,
    pub is_byok: Option<bool>,
    /// What an external system attached to the message (integration API).
    pub metadata: Option<sqlx::types::Json<serde_json::Value>>,
    pub created_at: DateTime<Utc>,
}

/// A message of a conversation's branch, with its siblings (itself among them).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BranchMessage {
    #[sqlx(flatten)]
    pub message: Message,
    /// The messages with the same parent (the versions of this one), oldest first.
    pub sibling_ids: Vec<MessageId>,
}

impl BranchMessage {
    /// Which of its versions it is (from 1) and how many there are.
    pub fn version(&self) -> (usize, usize) {
        let index = self.sibling_ids.iter().position(|id| *id == self.message.id).unwrap_or_default();
        (index + 1, self.sibling_ids.len().max(1))
    }
}

/// A validated new conversation.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub session_type: SessionType,
    pub workspace_id: Option<uuid::Uuid>,
    pub title: Option<String>,
    /// The collections its turns may search, within its creator's.
    pub collections: CollectionScope,
    /// The collections asked for by name, resolved when it is made.
    pub collection_names: Option<Vec<String>>,
}

impl NewSession {
    pub fn parse(
        session_type: Option<SessionType>,
        workspace_id: Option<uuid::Uuid>,
        title: Option<String>,
    ) -> Result<Self, ConversationError> {
        let session_type = session_type.unwrap_or(SessionType::Chat);
        if session_type == SessionType::Workspace && workspace_id.is_none() {
            return Err(ConversationError::Invalid("a workspace conversation needs a workspace_id".to_owned()));
        }
        let title = title.map(|title| parse_title(&title)).transpose()?;
        Ok(Self { session_type, workspace_id, title, collections: CollectionScope::All, collection_names: None })
    }

    /// Limits the conversation's turns to these collections (by name).
    #[must_use]
    pub fn in_collections(mut self, names: Option<Vec<String>>) -> Self {
        self.collection_names = names;
        self
    }
}

/// Filters for listing conversations; unset means any.
#[derive(Debug, Clone, Default)]
pub struct SessionFilter {
    pub session_type: Option<SessionType>,
    pub workspace_id: Option<uuid::Uuid>,
    pub archived: Option<bool>,
    pub limit: i64,
    /// Only conversations updated before this one (keyset paging).
    pub before: Option<SessionId>,
}

/// A change to a conversation: a new title, archiving or un-archiving.
#[derive(Debug, Clone, Default)]
pub struct SessionPatch {
    pub title: Option<String>,
    pub archived: Option<bool>,
}

impl SessionPatch {
    pub fn parse(title: Option<String>, archived: Option<bool>) -> Result<Self, ConversationError> {
        if title.is_none() && archived.is_none() {
            return Err(ConversationError::Invalid("nothing to change: give title or archived".to_owned()));
        }
        Ok(Self { title: title.map(|title| parse_title(&title)).transpose()?, archived })
    }
}

fn parse_title(title: &str) -> Result<String, ConversationError> {
    let title = title.trim();
    if title.is_empty() || title.chars().count() > 200 {
        return Err(ConversationError::Invalid("title must be 1 to 200 characters".to_owned()));
    }
    Ok(title.to_owned())
}

pub async fn create(
    pool: &PgPool,
    context: &TenantContext,
    new_session: &NewSession,
) -> Result<Session, ConversationError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let opened = insert_new(&mut transaction, context, new_session, &[]).await?;
    transaction.commit().await?;
    Ok(opened.session)
}

/// A conversation just recorded, and its last message (none yet: empty).
#[derive(Debug)]
pub struct Opened {
    pub session: Session,
    pub leaf: Option<MessageId>,
}

/// Records a new conversation in the caller's transaction, with the messages it begins with (the history a
/// request brings along): [`create`] as one part of something larger, such as a request's whole turn.
pub async fn insert_new(
    connection: &mut sqlx::PgConnection,
    context: &TenantContext,
    new_session: &NewSession,
    history: &[(Role, String)],
) -> Result<Opened, ConversationError> {
    // Under the tenant's row-level security another tenant's workspace does not exist either.
    if let Some(workspace_id) = new_session.workspace_id
        && !crate::workspaces::store::exists(&mut *connection, crate::ids::WorkspaceId(workspace_id)).await?
    {
        return Err(ConversationError::Invalid("no such workspace".to_owned()));
    }
    let session = match &new_session.collection_names {
        None => store::insert_session(&mut *connection, context, new_session).await?,
        Some(names) => {
            // A conversation reaches no further than the credentials that start it.
            let collections = crate::collections::narrow(&mut *connection, context.collections(), Some(names)).await?;
            let new_session = NewSession { collections, ..new_session.clone() };
            store::insert_session(&mut *connection, context, &new_session).await?
        }
    };
    let history: Vec<store::NewMessage> = history
        .iter()
        .map(|(role, content)| store::NewMessage {
            role: *role,
            run_id: None,
            ..store::NewMessage::user(session.id, RunId::new(), content)
        })
        .collect();
    let leaf = store::insert_opening(&mut *connection, context.tenant_id(), &history).await?;
    Ok(Opened { session, leaf })
}

pub async fn list(
    pool: &PgPool,
    context: &TenantContext,
    filter: &SessionFilter,
) -> Result<Vec<Session>, ConversationError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let sessions = store::list_sessions(&mut transaction, filter, context.end_user()).await?;
    transaction.commit().await?;
    Ok(sessions)
}

/// The conversation, if this context may see it: a widget user sees only their own.
pub async fn visible_session(
    connection: &mut sqlx::PgConnection,
    context: &TenantContext,
    id: SessionId,
) -> Result<Option<Session>, sqlx::Error> {
    let session = store::get_session(connection, id).await?;
    Ok(session.filter(|session| visible_to(context, session)))
}

/// [`visible_session`], held for a turn recorded in this transaction ([`store::hold_session`]).
pub async fn hold_visible_session(
    connection: &mut sqlx::PgConnection,
    context: &TenantContext,
    id: SessionId,
) -> Result<Option<Session>, sqlx::Error> {
    let session = store::hold_session(connection, id).await?;
    Ok(session.filter(|session| visible_to(context, session)))
}

/// A widget user sees only their own conversations; an API key sees its tenant's.
fn visible_to(context: &TenantContext, session: &Session) -> bool {
    context.end_user().is_none_or(|user| session.user_id == Some(user))
}

pub async fn get(pool: &PgPool, context: &TenantContext, id: SessionId) -> Result<Session, ConversationError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let session = visible_session(&mut transaction, context, id).await?.ok_or(ConversationError::NotFound)?;
    transaction.commit().await?;
    Ok(session)
}

pub async fn update(
    pool: &PgPool,
    context: &TenantContext,
    id: SessionId,
    patch: &SessionPatch,
) -> Result<Session, ConversationError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    visible_session(&mut transaction, context, id).await?.ok_or(ConversationError::NotFound)?;
    let session = store::update_session(&mut transaction, id, patch).await?.ok_or(ConversationError::NotFound)?;
    transaction.commit().await?;
    Ok(session)
}

/// Deletes a conversation with its messages, runs and events; usage records stay for accounting.
pub async fn delete(pool: &PgPool, context: &TenantContext, id: SessionId) -> Result<(), ConversationError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    visible_session(&mut transaction, context, id).await?.ok_or(ConversationError::NotFound)?;
    if !store::delete_session(&mut transaction, id).await? {
        return Err(ConversationError::NotFound);
    }
    transaction.commit().await?;
    Ok(())
}

/// The conversation's active branch, from its first message to its active leaf.
pub async fn messages(
    pool: &PgPool,
    context: &TenantContext,
    id: SessionId,
) -> Result<Vec<BranchMessage>, ConversationError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    visible_session(&mut transaction, context, id).await?.ok_or(ConversationError::NotFound)?;
    let messages = match store::active_leaf(&mut transaction, id).await? {
        Some(leaf) => store::branch(&mut transaction, id, leaf).await?,
        None => Vec::new(),
    };
    transaction.commit().await?;
    Ok(messages)
}

/// What a run answering in this conversation is given as history: the branch that ends at its question
/// (the active branch when it has none), oldest first.
pub async fn history_of_run(
    connection: &mut sqlx::PgConnection,
    id: SessionId,
    run_id: RunId,
) -> Result<Vec<Message>, sqlx::Error> {
    let leaf = match store::user_message_of_run(connection, run_id).await? {
        Some(question) => Some(question.id),
        None => store::active_leaf(connection, id).await?,
    };
    let Some(leaf) = leaf else { return Ok(Vec::new()) };
    Ok(store::branch(connection, id, leaf).await?.into_iter().map(|message| message.message).collect())
}

/// Makes the branch through `message` (one of the conversation's) the active one, continuing down its
/// most recent messages, and returns that branch.
pub async fn switch_branch(
    pool: &PgPool,
    context: &TenantContext,
    id: SessionId,
    message: MessageId,
) -> Result<Vec<BranchMessage>, ConversationError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    visible_session(&mut transaction, context, id).await?.ok_or(ConversationError::NotFound)?;
    let leaf = store::switch_branch(&mut transaction, id, message).await?.ok_or(ConversationError::MessageNotFound)?;
    let messages = store::branch(&mut transaction, id, leaf).await?;
    transaction.commit().await?;
    Ok(messages)
}

/// The user message to branch from: the question an answer (`Role::Assistant`) answers, to regenerate it,
/// or a user's message (`Role::User`) itself, to edit it. A message of another tenant, or of another end
/// user's conversation for a widget user, does not exist.
pub async fn branch_point(
    pool: &PgPool,
    context: &TenantContext,
    id: MessageId,
    role: Role,
) -> Result<Message, ConversationError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let message = store::get_message(&mut transaction, id).await?.ok_or(ConversationError::MessageNotFound)?;
    visible_session(&mut transaction, context, message.session_id).await?.ok_or(ConversationError::MessageNotFound)?;
    let question = match role {
        Role::User if message.role == Role::User => message,
        Role::User => return Err(ConversationError::NotAUserMessage),
        _ if message.role != Role::Assistant => return Err(ConversationError::NotAnAnswer),
        _ => match message.parent_message_id {
            Some(parent) => store::get_message(&mut transaction, parent)
                .await?
                .filter(|parent| parent.role == Role::User)
                .ok_or(ConversationError::NotAnAnswer)?,
            None => return Err(ConversationError::NotAnAnswer),
        },
    };
    transaction.commit().await?;
    Ok(question)
}

/// One message, if it is this tenant's.
pub async fn message(
    pool: &PgPool,
    context: &TenantContext,
    id: MessageId,
) -> Result<Option<Message>, ConversationError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let message = store::get_message(&mut transaction, id).await?;
    transaction.commit().await?;
    Ok(message)
}

/// The title a conversation gets from its first message: its first line, cut at a word near 60 characters.
pub fn title_from_message(content: &str) -> String {
    const LIMIT: usize = 60;
    let first_line = content.trim().lines().next().unwrap_or_default().trim();
    if first_line.chars().count() <= LIMIT {
        return first_line.to_owned();
    }
    let cut: String = first_line.chars().take(LIMIT).collect();
    let at_word = cut.rfind(char::is_whitespace).filter(|&index| index > LIMIT / 2).map_or(cut.as_str(), |i| &cut[..i]);
    format!("{}…", at_word.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_come_from_the_first_line_cut_at_a_word() {
        assert_eq!(title_from_message("  How do I rotate keys?\nMore detail"), "How do I rotate keys?");
        let long = "Please explain in detail how the retrieval pipeline ranks chunks for tiny tenants";
        let title = title_from_message(long);
        assert!(title.ends_with('…') && title.chars().count() <= 61, "{title}");
        assert!(long.starts_with(title.trim_end_matches('…')));
        assert_eq!(title_from_message(&"é".repeat(100)).chars().count(), 61);
    }

    #[test]
    fn workspace_conversations_need_a_workspace() {
        assert!(NewSession::parse(Some(SessionType::Workspace), None, None).is_err());
        assert!(NewSession::parse(None, None, Some("  ".to_owned())).is_err());
        assert!(SessionPatch::parse(None, None).is_err());
        assert_eq!(NewSession::parse(None, None, None).unwrap().session_type, SessionType::Chat);
    }
}
