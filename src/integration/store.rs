//! SQL for the integration door: end users' conversations, message metadata, and the requests `/v1/responses`
//! keeps on its runs.

use sqlx::PgConnection;

use crate::auth::context::TenantContext;
use crate::ids::{MessageId, RunId, SessionId, UserId};

/// An integration conversation's owner (`Some(None)`: it has none); `None` if there is no such
/// integration conversation.
pub async fn integration_session(
    connection: &mut PgConnection,
    id: SessionId,
) -> Result<Option<Option<UserId>>, sqlx::Error> {
    sqlx::query_scalar("SELECT user_id FROM chat_sessions WHERE id = $1 AND session_type = 'integration'")
        .bind(id)
        .fetch_optional(connection)
        .await
}

/// The user's most recent integration conversation that is not archived.
pub async fn latest_session_of(
    connection: &mut PgConnection,
    user_id: UserId,
) -> Result<Option<SessionId>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM chat_sessions WHERE user_id = $1 AND session_type = 'integration' AND NOT archived \
         ORDER BY updated_at DESC, id DESC LIMIT 1",
    )
    .bind(user_id)
    .fetch_optional(connection)
    .await
}

pub async fn new_session(
    connection: &mut PgConnection,
    context: &TenantContext,
    user_id: Option<UserId>,
    collections: &crate::auth::context::CollectionScope,
) -> Result<SessionId, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO chat_sessions (id, tenant_id, session_type, api_key_id, user_id, collection_ids) \
         VALUES ($1, $2, 'integration', $3, $4, $5) RETURNING id",
    )
    .bind(SessionId::new())
    .bind(context.tenant_id())
    .bind(context.actor().api_key_id())
    .bind(user_id)
    .bind(collections.to_stored())
    .fetch_one(connection)
    .await
}

pub async fn set_message_metadata(
    connection: &mut PgConnection,
    id: MessageId,
    metadata: &serde_json::Value,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE chat_messages SET metadata = $2 WHERE id = $1")
        .bind(id)
        .bind(metadata)
        .execute(connection)
        .await?;
    Ok(())
}

/// The `/v1/responses` request a run answers; `None` for a run of another door, or no such run.
pub async fn response_request(
    connection: &mut PgConnection,
    run_id: RunId,
) -> Result<Option<serde_json::Value>, sqlx::Error> {
    sqlx::query_scalar("SELECT request FROM runs WHERE id = $1 AND request IS NOT NULL")
        .bind(run_id)
        .fetch_optional(connection)
        .await
}

/// The assistant's message of a run, if it recorded one (the latest, should there be several).
pub async fn answer_of_run(connection: &mut PgConnection, run_id: RunId) -> Result<Option<MessageId>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM chat_messages WHERE run_id = $1 AND role = 'assistant' ORDER BY created_at DESC, id DESC LIMIT 1",
    )
    .bind(run_id)
    .fetch_optional(connection)
    .await
}
