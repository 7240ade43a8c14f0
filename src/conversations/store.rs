//! SQL for conversations and messages; every function runs inside a tenant-bound transaction.

use sqlx::{PgConnection, Postgres, QueryBuilder};

use super::{BranchMessage, Message, MessageStatus, NewSession, Role, Session, SessionFilter, SessionPatch};
use crate::ids::{ApiKeyId, MessageId, RunId, SessionId, TenantId};
use crate::providers::FinishReason;

const SESSION_COLUMNS: &str = "id, session_type, user_id, workspace_id, title, collection_ids, \
     ARRAY(SELECT c.name FROM collections AS c WHERE c.id = ANY(collection_ids) ORDER BY c.name) AS collections, \
     archived, created_at, updated_at";
const MESSAGE_COLUMNS: &str = "id, session_id, parent_message_id, run_id, role, content, status, finish_reason, \
     tool_calls, citations, retrieved, \
     input_tokens, output_tokens, total_tokens, model_used, provider_used, is_byok, metadata, created_at";

/// A new conversation of the context's tenant, owned by its key (and its end user, for a widget user).
pub async fn insert_session(
    connection: &mut PgConnection,
    context: &crate::auth::context::TenantContext,
    new_session: &NewSession,
) -> Result<Session, sqlx::Error> {
    let (tenant_id, api_key_id) = (context.tenant_id(), context.actor().api_key_id());
    let mut query = QueryBuilder::<Postgres>::new(
        "INSERT INTO chat_sessions (id, tenant_id, session_type, workspace_id, title, api_key_id, user_id, \
         collection_ids) VALUES (",
    );
    query
        .push_bind(SessionId::new())
        .push(", ")
        .push_bind(tenant_id)
        .push(", ")
        .push_bind(new_session.session_type)
        .push(", ")
        .push_bind(new_session.workspace_id)
        .push(", ")
        .push_bind(&new_session.title)
        .push(", ")
        .push_bind(api_key_id)
        .push(", ")
        .push_bind(context.end_user())
        .push(", ")
        .push_bind(new_session.collections.to_stored())
        .push(") RETURNING ")
        .push(SESSION_COLUMNS);
    query.build_query_as().fetch_one(connection).await
}

/// The conversations matching `filter`; only `end_user`'s when given.
pub async fn list_sessions(
    connection: &mut PgConnection,
    filter: &SessionFilter,
    end_user: Option<crate::ids::UserId>,
) -> Result<Vec<Session>, sqlx::Error> {
    let mut query = QueryBuilder::<Postgres>::new("SELECT ");
    query.push(SESSION_COLUMNS).push(" FROM chat_sessions WHERE true");
    if let Some(user_id) = end_user {
        query.push(" AND user_id = ").push_bind(user_id);
    }
    if let Some(session_type) = filter.session_type {
        query.push(" AND session_type = ").push_bind(session_type);
    }
    if let Some(workspace_id) = filter.workspace_id {
        query.push(" AND workspace_id = ").push_bind(workspace_id);
    }
    if let Some(archived) = filter.archived {
        query.push(" AND archived = ").push_bind(archived);
    }
    if let Some(before) = filter.before {
        query
            .push(" AND (updated_at, id) < (SELECT updated_at, id FROM chat_sessions WHERE id = ")
            .push_bind(before)
            .push(")");
    }
    query.push(" ORDER BY updated_at DESC, id DESC LIMIT ").push_bind(filter.limit);
    query.build_query_as().fetch_all(connection).await
}

pub async fn get_session(connection: &mut PgConnection, id: SessionId) -> Result<Option<Session>, sqlx::Error> {
    let mut query = QueryBuilder::<Postgres>::new("SELECT ");
    query.push(SESSION_COLUMNS).push(" FROM chat_sessions WHERE id = ").push_bind(id);
    query.build_query_as().fetch_optional(connection).await
}

/// The conversation, held for a turn being recorded in this transaction (`FOR KEY SHARE`): an erasure or
/// a retention sweep that has it waits for the turn (and then finds its run), or the turn waits for them
/// and finds no conversation, instead of failing on the run's foreign key.
pub async fn hold_session(connection: &mut PgConnection, id: SessionId) -> Result<Option<Session>, sqlx::Error> {
    let mut query = QueryBuilder::<Postgres>::new("SELECT ");
    query.push(SESSION_COLUMNS).push(" FROM chat_sessions WHERE id = ").push_bind(id).push(" FOR KEY SHARE");
    query.build_query_as().fetch_optional(connection).await
}

pub async fn update_session(
    connection: &mut PgConnection,
    id: SessionId,
    patch: &SessionPatch,
) -> Result<Option<Session>, sqlx::Error> {
    let mut query = QueryBuilder::<Postgres>::new("UPDATE chat_sessions SET updated_at = now()");
    if let Some(title) = &patch.title {
        query.push(", title = ").push_bind(title);
    }
    if let Some(archived) = patch.archived {
        query.push(", archived = ").push_bind(archived);
    }
    query.push(" WHERE id = ").push_bind(id).push(" RETURNING ").push(SESSION_COLUMNS);
    query.build_query_as().fetch_optional(connection).await
}

pub async fn delete_session(connection: &mut PgConnection, id: SessionId) -> Result<bool, sqlx::Error> {
    let deleted = sqlx::query("DELETE FROM chat_sessions WHERE id = $1").bind(id).execute(connection).await?;
    Ok(deleted.rows_affected() == 1)
}

pub async fn get_message(connection: &mut PgConnection, id: MessageId) -> Result<Option<Message>, sqlx::Error> {
    let mut query = QueryBuilder::<Postgres>::new("SELECT ");
    query.push(MESSAGE_COLUMNS).push(" FROM chat_messages WHERE id = ").push_bind(id);
    query.build_query_as().fetch_optional(connection).await
}

/// The user message a run answers: the one it was started with, or the one it answers again (a
/// regenerated answer, `runs.user_message_id`).
///
/// The id is one scalar subquery, not `id = coalesce(…)`: under row-level security the planner only
/// moves a condition ahead of the policy's `tenant_id` filter (into the primary key's index) when it
/// deems it leakproof, which a COALESCE is not; compared so, every turn scanned all the tenant's messages.
pub async fn user_message_of_run(connection: &mut PgConnection, run_id: RunId) -> Result<Option<Message>, sqlx::Error> {
    let mut query = QueryBuilder::<Postgres>::new("SELECT ");
    query
        .push(MESSAGE_COLUMNS)
        .push(" FROM chat_messages WHERE id = (SELECT coalesce((SELECT user_message_id FROM runs WHERE id = ")
        .push_bind(run_id)
        .push("), (SELECT q.id FROM chat_messages AS q WHERE q.role = 'user' AND q.run_id = ")
        .push_bind(run_id)
        .push(" ORDER BY q.created_at, q.id LIMIT 1)))");
    query.build_query_as().fetch_optional(connection).await
}

/// The branch that ends at `leaf`, from its root: what a turn answering `leaf` is given as history, and
/// what a conversation shows. Each message comes with its siblings (the messages with its parent).
///
/// Each step up looks its parent up by primary key in a subquery kept apart (`OFFSET 0`): as a plain join,
/// a planner without statistics yet on `chat_messages` (a new database, or one that grew since the last
/// analyze) guessed the tenant's messages few and hashed them all, at every step of every turn.
pub async fn branch(
    connection: &mut PgConnection,
    session_id: SessionId,
    leaf: MessageId,
) -> Result<Vec<BranchMessage>, sqlx::Error> {
    let mut query = QueryBuilder::<Postgres>::new(
        "WITH RECURSIVE branch AS ( \
             SELECT m.*, 0 AS depth FROM chat_messages AS m WHERE m.id = ",
    );
    query
        .push_bind(leaf)
        .push(" AND m.session_id = ")
        .push_bind(session_id)
        .push(
            " UNION ALL \
             SELECT p.*, b.depth + 1 FROM branch AS b CROSS JOIN LATERAL ( \
                 SELECT * FROM chat_messages AS c \
                 WHERE c.id = b.parent_message_id AND c.session_id = b.session_id OFFSET 0) AS p) \
         SELECT ",
        )
        .push(MESSAGE_COLUMNS)
        .push(
            ", ARRAY(SELECT s.id FROM chat_messages AS s WHERE s.session_id = branch.session_id \
                 AND s.parent_message_id IS NOT DISTINCT FROM branch.parent_message_id \
                 ORDER BY s.created_at, s.id) AS sibling_ids \
             FROM branch ORDER BY depth DESC",
        );
    query.build_query_as().fetch_all(connection).await
}

/// The conversation's active leaf: the last message of the branch it shows and continues. A conversation
/// without one (its messages written by a version before branches) ends with its latest message.
macro_rules! active_leaf_sql {
    () => {
        "SELECT coalesce(s.active_leaf_id, (SELECT m.id FROM chat_messages AS m WHERE m.session_id = s.id \
         ORDER BY m.created_at DESC, m.id DESC LIMIT 1)) FROM chat_sessions AS s WHERE s.id = $1"
    };
}

pub async fn active_leaf(
    connection: &mut PgConnection,
    session_id: SessionId,
) -> Result<Option<MessageId>, sqlx::Error> {
    let leaf: Option<Option<MessageId>> =
        sqlx::query_scalar(active_leaf_sql!()).bind(session_id).fetch_optional(connection).await?;
    Ok(leaf.flatten())
}

/// Makes the branch through `message` the conversation's active one: its leaf is found by following the
/// most recent child down from `message`. Returns the new leaf; `None` when `message` is not one of the
/// conversation's.
pub async fn switch_branch(
    connection: &mut PgConnection,
    session_id: SessionId,
    message: MessageId,
) -> Result<Option<MessageId>, sqlx::Error> {
    sqlx::query_scalar(
        "WITH RECURSIVE down AS ( \
             SELECT id, 0 AS depth FROM chat_messages WHERE id = $2 AND session_id = $1 \
             UNION ALL \
             SELECT (SELECT c.id FROM chat_messages AS c WHERE c.parent_message_id = d.id \
                     ORDER BY c.created_at DESC, c.id DESC LIMIT 1), d.depth + 1 \
             FROM down AS d WHERE d.id IS NOT NULL) \
         UPDATE chat_sessions SET active_leaf_id = \
             (SELECT id FROM down WHERE id IS NOT NULL ORDER BY depth DESC LIMIT 1) \
         WHERE id = $1 AND EXISTS (SELECT 1 FROM down) RETURNING active_leaf_id",
    )
    .bind(session_id)
    .bind(message)
    .fetch_optional(connection)
    .await
}

/// A new user message beside `edited` (a sibling: the same parent), on a branch of its own that becomes
/// the conversation's active one. `None` when `edited` is not a user message of the conversation.
pub async fn insert_edit(
    connection: &mut PgConnection,
    tenant_id: TenantId,
    edited: MessageId,
    message: &NewMessage<'_>,
    title_if_untitled: &str,
) -> Result<Option<Message>, sqlx::Error> {
    let parent: Option<Option<MessageId>> = sqlx::query_scalar(
        "SELECT parent_message_id FROM chat_messages WHERE id = $1 AND session_id = $2 AND role = 'user'",
    )
    .bind(edited)
    .bind(message.session_id)
    .fetch_optional(&mut *connection)
    .await?;
    let Some(parent) = parent else { return Ok(None) };
    let question = LeafMove::Question { title_if_untitled };
    Ok(Some(insert_under(connection, tenant_id, MessageId::new(), message, parent, Some(question)).await?))
}

/// Starts answering `question` again (a regenerated answer): `run` records that it answers it, and the
/// conversation's active branch ends at the question until the new answer is recorded beside the earlier
/// ones. Returns the question; `None` when it is not a user message of the conversation.
pub async fn answer_again(
    connection: &mut PgConnection,
    session_id: SessionId,
    question: MessageId,
    run: RunId,
    title_if_untitled: &str,
) -> Result<Option<Message>, sqlx::Error> {
    let mut query = QueryBuilder::<Postgres>::new("SELECT ");
    query
        .push(MESSAGE_COLUMNS)
        .push(" FROM chat_messages WHERE role = 'user' AND id = ")
        .push_bind(question)
        .push(" AND session_id = ")
        .push_bind(session_id);
    let Some(question) = query.build_query_as::<Message>().fetch_optional(&mut *connection).await? else {
        return Ok(None);
    };
    sqlx::query("UPDATE runs SET user_message_id = $2 WHERE id = $1")
        .bind(run)
        .bind(question.id)
        .execute(&mut *connection)
        .await?;
    move_leaf(connection, session_id, question.id, LeafMove::Question { title_if_untitled }).await?;
    Ok(Some(question))
}

/// When a new message becomes the conversation's active leaf.
#[derive(Debug, Clone, Copy)]
enum LeafMove<'a> {
    Always,
    /// Only if the leaf is this message: an answer continues the branch of its question, unless the
    /// person moved to another branch meanwhile.
    IfAt(Option<MessageId>),
    /// A person's question (new, edited or answered again): always, and the conversation is touched, its
    /// last activity now and its title this one if it has none.
    Question {
        title_if_untitled: &'a str,
    },
}

async fn move_leaf(
    connection: &mut PgConnection,
    session_id: SessionId,
    leaf: MessageId,
    when: LeafMove<'_>,
) -> Result<(), sqlx::Error> {
    let mut query = QueryBuilder::<Postgres>::new("");
    push_leaf_move(&mut query, session_id, NewLeaf::Message(leaf), when);
    query.build().execute(connection).await?;
    Ok(())
}

/// The message a leaf move makes the leaf: one known by its id, or the one its statement inserts (in the
/// common table expression `stored`).
#[derive(Debug, Clone, Copy)]
enum NewLeaf {
    Message(MessageId),
    Inserted,
}

/// Pushes the `UPDATE` that moves the conversation's leaf to `leaf` as `when` says.
fn push_leaf_move(query: &mut QueryBuilder<Postgres>, session_id: SessionId, leaf: NewLeaf, when: LeafMove<'_>) {
    query.push("UPDATE chat_sessions SET active_leaf_id = ");
    match leaf {
        NewLeaf::Message(id) => query.push_bind(id),
        NewLeaf::Inserted => query.push("(SELECT id FROM stored)"),
    };
    if let LeafMove::Question { title_if_untitled } = when {
        query.push(", updated_at = now(), title = coalesce(title, ").push_bind(title_if_untitled).push(")");
    }
    query.push(" WHERE id = ").push_bind(session_id);
    if let LeafMove::IfAt(from) = when {
        query.push(" AND active_leaf_id IS NOT DISTINCT FROM ").push_bind(from);
    }
}

/// A message as the engine records it.
#[derive(Debug, Clone)]
pub struct NewMessage<'a> {
    pub session_id: SessionId,
    pub run_id: Option<RunId>,
    pub role: Role,
    pub content: &'a str,
    pub status: MessageStatus,
    /// Why the model stopped (assistant answers only).
    pub finish_reason: Option<FinishReason>,
    pub input_tokens: Option<i32>,
    pub output_tokens: Option<i32>,
    pub model_used: Option<&'a str>,
    pub provider_used: Option<&'a str>,
    pub is_byok: Option<bool>,
    pub tool_calls: Option<serde_json::Value>,
    pub citations: Option<serde_json::Value>,
    /// The passages an answer was given but did not cite.
    pub retrieved: Option<serde_json::Value>,
}

impl<'a> NewMessage<'a> {
    pub fn user(session_id: SessionId, run_id: RunId, content: &'a str) -> Self {
        Self {
            session_id,
            run_id: Some(run_id),
            role: Role::User,
            content,
            status: MessageStatus::Complete,
            finish_reason: None,
            input_tokens: None,
            output_tokens: None,
            model_used: None,
            provider_used: None,
            is_byok: None,
            tool_calls: None,
            citations: None,
            retrieved: None,
        }
    }
}

pub async fn insert_message(
    connection: &mut PgConnection,
    tenant_id: TenantId,
    message: &NewMessage<'_>,
) -> Result<Message, sqlx::Error> {
    insert_message_with_id(connection, tenant_id, MessageId::new(), message, None).await
}

/// Inserts a message whose id was chosen beforehand (the engine names it in events first), where it goes
/// in the conversation's tree: an answer of a run under the question the run answers, the active branch
/// moving on to it if it ended at that question; any other message (a user's, or one a caller brings
/// with it) after the active leaf, becoming the leaf. `answers` is the question, when the caller knows it
/// (else an answer's is looked up by its run).
pub async fn insert_message_with_id(
    connection: &mut PgConnection,
    tenant_id: TenantId,
    id: MessageId,
    message: &NewMessage<'_>,
    answers: Option<MessageId>,
) -> Result<Message, sqlx::Error> {
    let question = match (answers, message.run_id) {
        _ if message.role == Role::User => None,
        (Some(question), _) => Some(question),
        (None, Some(run_id)) => user_message_of_run(&mut *connection, run_id).await?.map(|question| question.id),
        (None, None) => None,
    };
    let (parent, when) = match question {
        Some(question) => (Some(question), LeafMove::IfAt(Some(question))),
        None => (active_leaf_held(connection, message.session_id).await?, LeafMove::Always),
    };
    insert_under(connection, tenant_id, id, message, parent, Some(when)).await
}

/// Where a new message goes in its conversation's tree.
#[derive(Debug, Clone, Copy)]
pub enum After {
    /// The conversation's active leaf, looked up (its row held until commit).
    ActiveLeaf,
    /// A message the caller knows is the leaf (none: the conversation is empty), in a conversation the
    /// caller's transaction holds already (it made it).
    Known(Option<MessageId>),
}

/// The messages a new conversation begins with (all of one conversation, in order), each after the one
/// before; the last becomes the leaf, in one move. Returns it (none: no messages).
pub async fn insert_opening(
    connection: &mut PgConnection,
    tenant_id: TenantId,
    messages: &[NewMessage<'_>],
) -> Result<Option<MessageId>, sqlx::Error> {
    let mut leaf = None;
    for message in messages {
        leaf = Some(insert_under(&mut *connection, tenant_id, MessageId::new(), message, leaf, None).await?.id);
    }
    if let (Some(leaf), Some(message)) = (leaf, messages.last()) {
        move_leaf(connection, message.session_id, leaf, LeafMove::Always).await?;
    }
    Ok(leaf)
}

/// A person's new question, becoming the leaf; the conversation is touched with it (its last activity,
/// and `title_if_untitled` if it has no title), in the same statement.
pub async fn insert_question(
    connection: &mut PgConnection,
    tenant_id: TenantId,
    message: &NewMessage<'_>,
    after: After,
    title_if_untitled: &str,
) -> Result<Message, sqlx::Error> {
    let parent = match after {
        After::ActiveLeaf => active_leaf_held(connection, message.session_id).await?,
        After::Known(leaf) => leaf,
    };
    let question = LeafMove::Question { title_if_untitled };
    insert_under(connection, tenant_id, MessageId::new(), message, parent, Some(question)).await
}

/// The conversation's active leaf, its row locked until commit: two messages posted at once follow one
/// another, not the same leaf.
async fn active_leaf_held(
    connection: &mut PgConnection,
    session_id: SessionId,
) -> Result<Option<MessageId>, sqlx::Error> {
    let leaf: Option<Option<MessageId>> = sqlx::query_scalar(concat!(active_leaf_sql!(), " FOR NO KEY UPDATE OF s"))
        .bind(session_id)
        .fetch_optional(&mut *connection)
        .await?;
    Ok(leaf.flatten())
}

/// Inserts the message under `parent` and, when `leaf` says how, makes it the conversation's leaf in the
/// same statement.
async fn insert_under(
    connection: &mut PgConnection,
    tenant_id: TenantId,
    id: MessageId,
    message: &NewMessage<'_>,
    parent: Option<MessageId>,
    leaf: Option<LeafMove<'_>>,
) -> Result<Message, sqlx::Error> {
    let total_tokens = message.input_tokens.zip(message.output_tokens).map(|(input, output)| input + output);
    let mut query = QueryBuilder::<Postgres>::new(if leaf.is_some() { "WITH stored AS (" } else { "" });
    query.push(
        "INSERT INTO chat_messages (id, tenant_id, session_id, parent_message_id, run_id, role, content, status, \
         finish_reason, input_tokens, output_tokens, total_tokens, model_used, provider_used, is_byok, tool_calls, \
         citations, retrieved) ",
    );
    query.push_values([message], |mut row, message| {
        row.push_bind(id)
            .push_bind(tenant_id)
            .push_bind(message.session_id)
            .push_bind(parent)
            .push_bind(message.run_id)
            .push_bind(message.role)
            .push_bind(message.content)
            .push_bind(message.status)
            .push_bind(message.finish_reason)
            .push_bind(message.input_tokens)
            .push_bind(message.output_tokens)
            .push_bind(total_tokens)
            .push_bind(message.model_used)
            .push_bind(message.provider_used)
            .push_bind(message.is_byok)
            .push_bind(sqlx::types::Json(message.tool_calls.clone().unwrap_or_else(|| serde_json::json!([]))))
            .push_bind(sqlx::types::Json(message.citations.clone().unwrap_or_else(|| serde_json::json!([]))))
            .push_bind(sqlx::types::Json(message.retrieved.clone().unwrap_or_else(|| serde_json::json!([]))));
    });
    query.push(" RETURNING ").push(MESSAGE_COLUMNS);
    if let Some(when) = leaf {
        query.push("), moved AS (");
        push_leaf_move(&mut query, message.session_id, NewLeaf::Inserted, when);
        query.push(") SELECT * FROM stored");
    }
    query.build_query_as().fetch_one(connection).await
}

/// The key that opened the conversation (an agent run's key pays for it).
pub async fn session_api_key(connection: &mut PgConnection, id: SessionId) -> Result<Option<ApiKeyId>, sqlx::Error> {
    sqlx::query_scalar("SELECT api_key_id FROM chat_sessions WHERE id = $1").bind(id).fetch_one(connection).await
}

/// The end user's conversations, locked (a turn starting in one waits until the caller's transaction
/// ends, then finds it gone): for erasing them.
pub async fn lock_sessions_of_user(
    connection: &mut PgConnection,
    user_id: crate::ids::UserId,
) -> Result<Vec<SessionId>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM chat_sessions WHERE user_id = $1 ORDER BY id FOR UPDATE")
        .bind(user_id)
        .fetch_all(connection)
        .await
}

/// Up to `batch` conversations with no activity for `days` and no run still going, oldest first, locked;
/// those another transaction holds (a turn in them) are skipped, not waited for.
pub async fn lock_expired_sessions(
    connection: &mut PgConnection,
    days: i32,
    batch: i64,
) -> Result<Vec<SessionId>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT s.id FROM chat_sessions s \
         WHERE s.updated_at < now() - make_interval(days => $1) \
           AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.session_id = s.id \
                           AND r.status IN ('queued', 'running', 'awaiting_approval')) \
         ORDER BY s.updated_at LIMIT $2 FOR UPDATE OF s SKIP LOCKED",
    )
    .bind(days)
    .bind(batch)
    .fetch_all(connection)
    .await
}

/// Deletes conversations with their messages (and citations, which messages hold), and the idempotency
/// keys that point at them (a request's hash is of its text); returns how many conversations. Their runs'
/// text goes first: `runs::store::strip_runs_of_sessions`.
pub async fn delete_sessions(connection: &mut PgConnection, ids: &[SessionId]) -> Result<u64, sqlx::Error> {
    let ids: Vec<uuid::Uuid> = ids.iter().map(|id| id.0).collect();
    sqlx::query("DELETE FROM idempotency_keys WHERE session_id = ANY($1)").bind(&ids).execute(&mut *connection).await?;
    let deleted = sqlx::query("DELETE FROM chat_sessions WHERE id = ANY($1)").bind(&ids).execute(connection).await?;
    Ok(deleted.rows_affected())
}
