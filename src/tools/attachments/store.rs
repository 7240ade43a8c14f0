//! SQL for the resources attached to conversations (`session_resources`). Every function runs inside a
//! tenant-bound transaction.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::ids::{AttachmentId, ConnectorId, PolicyProfileId, SessionId, TenantId};
use crate::policy::PolicySource;

/// A resource attached to a conversation, with its connector's name.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Attachment {
    pub id: AttachmentId,
    pub session_id: SessionId,
    pub connector_id: ConnectorId,
    pub connector: String,
    pub uri: String,
    pub name: Option<String>,
    pub mime_type: Option<String>,
    /// The text the model is given: the resource as the policy left it.
    pub content: String,
    /// Fields the policy's `blocked_fields` removed, and lists its row limit cut.
    pub removed_fields: i32,
    pub truncated_arrays: i32,
    pub policy_profile_id: PolicyProfileId,
    pub policy_version: i32,
    pub policy_source: PolicySource,
    pub attached_at: DateTime<Utc>,
}

/// An attachment as written.
#[derive(Debug, Clone)]
pub struct NewAttachment<'a> {
    pub tenant_id: TenantId,
    pub session_id: SessionId,
    pub connector_id: ConnectorId,
    pub uri: &'a str,
    pub name: Option<&'a str>,
    pub mime_type: Option<&'a str>,
    pub content: &'a str,
    pub removed_fields: i32,
    pub truncated_arrays: i32,
    pub policy: (PolicyProfileId, i32, PolicySource),
}

const COLUMNS: &str = "a.id, a.session_id, a.connector_id, c.name AS connector, a.uri, a.name, a.mime_type, a.content, \
     a.removed_fields, a.truncated_arrays, a.policy_profile_id, a.policy_version, a.policy_source, a.attached_at";

/// Attaches a resource, or reads the same one again (the same conversation, connector and URI): the
/// content and the policy it went through are replaced, the id kept.
pub async fn upsert(connection: &mut PgConnection, new: &NewAttachment<'_>) -> Result<AttachmentId, sqlx::Error> {
    let (profile, version, source) = new.policy;
    sqlx::query_scalar(
        "INSERT INTO session_resources (id, tenant_id, session_id, connector_id, uri, name, mime_type, content, \
             removed_fields, truncated_arrays, policy_profile_id, policy_version, policy_source) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
         ON CONFLICT (session_id, connector_id, uri) DO UPDATE SET name = EXCLUDED.name, \
             mime_type = EXCLUDED.mime_type, content = EXCLUDED.content, removed_fields = EXCLUDED.removed_fields, \
             truncated_arrays = EXCLUDED.truncated_arrays, policy_profile_id = EXCLUDED.policy_profile_id, \
             policy_version = EXCLUDED.policy_version, policy_source = EXCLUDED.policy_source, attached_at = now() \
         RETURNING id",
    )
    .bind(AttachmentId::new())
    .bind(new.tenant_id)
    .bind(new.session_id)
    .bind(new.connector_id)
    .bind(new.uri)
    .bind(new.name)
    .bind(new.mime_type)
    .bind(new.content)
    .bind(new.removed_fields)
    .bind(new.truncated_arrays)
    .bind(profile)
    .bind(version)
    .bind(source)
    .fetch_one(connection)
    .await
}

/// How many resources a conversation has attached, the one at `uri` of `connector` aside.
pub async fn count_others(
    connection: &mut PgConnection,
    session: SessionId,
    connector: ConnectorId,
    uri: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM session_resources WHERE session_id = $1 AND NOT (connector_id = $2 AND uri = $3)",
    )
    .bind(session)
    .bind(connector)
    .bind(uri)
    .fetch_one(connection)
    .await
}

/// A conversation's attached resources, oldest first.
pub async fn of_session(connection: &mut PgConnection, session: SessionId) -> Result<Vec<Attachment>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM session_resources a JOIN mcp_connectors c ON c.id = a.connector_id \
         WHERE a.session_id = $1 ORDER BY a.attached_at, a.id"
    )))
    .bind(session)
    .fetch_all(connection)
    .await
}

pub async fn find(
    connection: &mut PgConnection,
    session: SessionId,
    id: AttachmentId,
) -> Result<Option<Attachment>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM session_resources a JOIN mcp_connectors c ON c.id = a.connector_id \
         WHERE a.session_id = $1 AND a.id = $2"
    )))
    .bind(session)
    .bind(id)
    .fetch_optional(connection)
    .await
}

/// Detaches a resource; whether it was attached.
pub async fn delete(connection: &mut PgConnection, session: SessionId, id: AttachmentId) -> Result<bool, sqlx::Error> {
    let deleted = sqlx::query("DELETE FROM session_resources WHERE session_id = $1 AND id = $2")
        .bind(session)
        .bind(id)
        .execute(connection)
        .await?;
    Ok(deleted.rows_affected() > 0)
}
