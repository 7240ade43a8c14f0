//! SQL for tools: MCP connectors and what they last reported (`mcp_connectors`, `discovered_tools`,
//! `discovered_resources`, `discovered_prompts`),
//! and the calls models made (`tool_calls`). Every function runs inside a tenant-bound transaction, except
//! [`tenant_ids`], which lists the tenants that key rotation visits. The rows' types live here with their
//! SQL because `connectors` and `calls` call this file, and a store names no module that calls it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;

use super::{DiscoveredTool, Offerings};
use crate::crypto::Sealed;
use crate::ids::{ConnectorId, PolicyProfileId, RunId, TenantId, ToolCallId};
use crate::policy::{PolicySource, Verdict};

/// A connector as stored. The settings and credential columns are visible inside `tools` only: the
/// credential leaves through `connectors`, opened for a connection, never as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ConnectorRow {
    pub id: ConnectorId,
    pub tenant_id: TenantId,
    pub name: String,
    pub(super) transport: String,
    pub(super) url: Option<String>,
    pub(super) command: Option<String>,
    pub(super) args: sqlx::types::Json<Vec<String>>,
    pub(super) auth_kind: String,
    pub(super) auth_header: Option<String>,
    pub(super) secret_ciphertext: Option<Vec<u8>>,
    pub(super) secret_nonce: Option<Vec<u8>>,
    pub(super) secret_key_id: Option<String>,
    pub(super) status: String,
    pub(super) last_error: Option<String>,
    pub(super) refreshed_at: Option<DateTime<Utc>>,
    pub(super) protocol_version: Option<String>,
    /// What is not secret about an OAuth grant (`oauth::GrantInfo`); the tokens are in `secret_*`.
    pub(super) oauth: Option<sqlx::types::Json<serde_json::Value>>,
    pub(super) token_expires_at: Option<DateTime<Utc>>,
    pub(super) created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A connector as written: validated settings and a credential that is already sealed.
#[derive(Debug, Clone)]
pub struct ConnectorColumns<'a> {
    pub id: ConnectorId,
    pub tenant_id: TenantId,
    pub name: &'a str,
    pub transport: &'a str,
    pub url: Option<&'a str>,
    pub command: Option<&'a str>,
    pub args: Vec<String>,
    pub auth_kind: &'a str,
    pub auth_header: Option<&'a str>,
    pub sealed: Option<&'a Sealed>,
    pub oauth: Option<&'a serde_json::Value>,
    pub token_expires_at: Option<DateTime<Utc>>,
}

const CONNECTOR_COLUMNS: &str = "id, tenant_id, name, transport, url, command, args, auth_kind, auth_header, \
     secret_ciphertext, secret_nonce, secret_key_id, status, last_error, refreshed_at, protocol_version, oauth, \
     token_expires_at, created_at, updated_at";

/// Inserts a connector, or replaces one (`id` exists); a taken name is a unique violation.
pub async fn upsert_connector(
    connection: &mut PgConnection,
    columns: &ConnectorColumns<'_>,
) -> Result<ConnectorRow, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO mcp_connectors (id, tenant_id, name, transport, url, command, args, auth_kind, auth_header, \
             secret_ciphertext, secret_nonce, secret_key_id, oauth, token_expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
         ON CONFLICT (id) DO UPDATE SET name = $3, transport = $4, url = $5, command = $6, args = $7, \
             auth_kind = $8, auth_header = $9, secret_ciphertext = $10, secret_nonce = $11, secret_key_id = $12, \
             oauth = $13, token_expires_at = $14, status = 'pending', last_error = NULL, protocol_version = NULL, updated_at = now() \
         RETURNING {CONNECTOR_COLUMNS}"
    )))
    .bind(columns.id)
    .bind(columns.tenant_id)
    .bind(columns.name)
    .bind(columns.transport)
    .bind(columns.url)
    .bind(columns.command)
    .bind(sqlx::types::Json(&columns.args))
    .bind(columns.auth_kind)
    .bind(columns.auth_header)
    .bind(columns.sealed.map(|sealed| &sealed.ciphertext))
    .bind(columns.sealed.map(|sealed| &sealed.nonce))
    .bind(columns.sealed.map(|sealed| &sealed.key_id))
    .bind(columns.oauth)
    .bind(columns.token_expires_at)
    .fetch_one(connection)
    .await
}

pub async fn find_connector(
    connection: &mut PgConnection,
    id: ConnectorId,
) -> Result<Option<ConnectorRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {CONNECTOR_COLUMNS} FROM mcp_connectors WHERE id = $1")))
        .bind(id)
        .fetch_optional(connection)
        .await
}

/// The connector, its row locked until the transaction ends: an OAuth token is refreshed by one
/// process at a time, and the others then use what it stored.
pub async fn lock_connector(
    connection: &mut PgConnection,
    id: ConnectorId,
) -> Result<Option<ConnectorRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {CONNECTOR_COLUMNS} FROM mcp_connectors WHERE id = $1 FOR UPDATE"
    )))
    .bind(id)
    .fetch_optional(connection)
    .await
}

/// Stores an OAuth grant: what is not secret, the sealed tokens and when the access token expires. The
/// connector's `updated_at` stays: its sessions are renewed by the token, not by the row's version.
pub async fn set_connector_grant(
    connection: &mut PgConnection,
    id: ConnectorId,
    oauth: &serde_json::Value,
    sealed: &Sealed,
    token_expires_at: Option<DateTime<Utc>>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE mcp_connectors SET oauth = $2, secret_ciphertext = $3, secret_nonce = $4, secret_key_id = $5, \
             token_expires_at = $6 WHERE id = $1",
    )
    .bind(id)
    .bind(oauth)
    .bind(&sealed.ciphertext)
    .bind(&sealed.nonce)
    .bind(&sealed.key_id)
    .bind(token_expires_at)
    .execute(connection)
    .await?;
    Ok(())
}

/// The OAuth access token is treated as expired: the next connection refreshes it.
pub async fn expire_connector_token(connection: &mut PgConnection, id: ConnectorId) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE mcp_connectors SET token_expires_at = now() - interval '1 hour' \
         WHERE id = $1 AND auth_kind = 'oauth' AND secret_ciphertext IS NOT NULL",
    )
    .bind(id)
    .execute(connection)
    .await?;
    Ok(())
}

/// An OAuth connector whose grant is missing or no longer works: its tools are not offered until an admin
/// authorizes it again. Its tokens are forgotten.
pub async fn set_connector_needs_authorization(
    connection: &mut PgConnection,
    id: ConnectorId,
    reason: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE mcp_connectors SET status = 'needs_authorization', last_error = $2, secret_ciphertext = NULL, \
             secret_nonce = NULL, secret_key_id = NULL, token_expires_at = NULL WHERE id = $1 AND auth_kind = 'oauth'",
    )
    .bind(id)
    .bind(reason)
    .execute(connection)
    .await?;
    Ok(())
}

/// An authorization started by an admin, waiting for its callback.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OAuthStateRow {
    pub tenant_id: TenantId,
    pub connector_id: ConnectorId,
    pub actor_type: String,
    pub actor_id: Option<String>,
    pub flow: sqlx::types::Json<serde_json::Value>,
    pub sealed_ciphertext: Vec<u8>,
    pub sealed_nonce: Vec<u8>,
    pub sealed_key_id: String,
    pub expires_at: DateTime<Utc>,
}

/// Records a started authorization, replacing the connector's earlier ones (only the newest link works).
pub async fn insert_oauth_state(
    connection: &mut PgConnection,
    state_hash: &[u8],
    row: &OAuthStateRow,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM mcp_oauth_states WHERE connector_id = $1 OR expires_at < now()")
        .bind(row.connector_id)
        .execute(&mut *connection)
        .await?;
    sqlx::query(
        "INSERT INTO mcp_oauth_states (state_hash, tenant_id, connector_id, actor_type, actor_id, flow, \
             sealed_ciphertext, sealed_nonce, sealed_key_id, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(state_hash)
    .bind(row.tenant_id)
    .bind(row.connector_id)
    .bind(&row.actor_type)
    .bind(&row.actor_id)
    .bind(&row.flow)
    .bind(&row.sealed_ciphertext)
    .bind(&row.sealed_nonce)
    .bind(&row.sealed_key_id)
    .bind(row.expires_at)
    .execute(connection)
    .await?;
    Ok(())
}

/// Takes the started authorization whose state hashes to `state_hash`, before any tenant is known
/// (through the `mcp_oauth_state_lookup` and `_consume` policies): deleted as it is read, so a state works
/// once. The setting is transaction-local.
pub async fn consume_oauth_state(
    connection: &mut PgConnection,
    state_hash: &[u8],
) -> Result<Option<OAuthStateRow>, sqlx::Error> {
    sqlx::query("SELECT set_config('app.oauth_state_hash', $1, true)")
        .bind(hex::encode(state_hash))
        .execute(&mut *connection)
        .await?;
    sqlx::query_as(
        "DELETE FROM mcp_oauth_states WHERE state_hash = $1 RETURNING tenant_id, connector_id, actor_type, \
             actor_id, flow, sealed_ciphertext, sealed_nonce, sealed_key_id, expires_at",
    )
    .bind(state_hash)
    .fetch_optional(connection)
    .await
}

pub async fn list_connectors(connection: &mut PgConnection) -> Result<Vec<ConnectorRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {CONNECTOR_COLUMNS} FROM mcp_connectors ORDER BY name")))
        .fetch_all(connection)
        .await
}

pub async fn delete_connector(connection: &mut PgConnection, id: ConnectorId) -> Result<bool, sqlx::Error> {
    let deleted = sqlx::query("DELETE FROM mcp_connectors WHERE id = $1").bind(id).execute(connection).await?;
    Ok(deleted.rows_affected() > 0)
}

/// Records how discovery went: `None` is success (the connector's tools may be offered), else its error.
pub async fn set_connector_status(
    connection: &mut PgConnection,
    id: ConnectorId,
    error: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE mcp_connectors SET status = CASE WHEN $2::text IS NULL THEN 'active' ELSE 'error' END, \
             last_error = $2, refreshed_at = CASE WHEN $2::text IS NULL THEN now() ELSE refreshed_at END \
         WHERE id = $1",
    )
    .bind(id)
    .bind(error)
    .execute(connection)
    .await?;
    Ok(())
}

/// Records the MCP revision the connector's server negotiated in its last discovery.
pub async fn set_connector_protocol_version(
    connection: &mut PgConnection,
    id: ConnectorId,
    protocol_version: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE mcp_connectors SET protocol_version = $2 WHERE id = $1")
        .bind(id)
        .bind(protocol_version)
        .execute(connection)
        .await?;
    Ok(())
}

/// The connectors whose credential another key sealed, locked so that a concurrent save is not
/// overwritten with the credential it replaced.
pub async fn connectors_to_reseal(
    connection: &mut PgConnection,
    current_key_id: &str,
) -> Result<Vec<ConnectorRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {CONNECTOR_COLUMNS} FROM mcp_connectors WHERE secret_key_id <> $1 FOR UPDATE"
    )))
    .bind(current_key_id)
    .fetch_all(connection)
    .await
}

pub async fn set_connector_secret(
    connection: &mut PgConnection,
    id: ConnectorId,
    sealed: &Sealed,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE mcp_connectors SET secret_ciphertext = $2, secret_nonce = $3, secret_key_id = $4 WHERE id = $1",
    )
    .bind(id)
    .bind(&sealed.ciphertext)
    .bind(&sealed.nonce)
    .bind(&sealed.key_id)
    .execute(connection)
    .await?;
    Ok(())
}

/// Replaces what a connector offers with what discovery found now.
pub async fn replace_offerings(
    connection: &mut PgConnection,
    tenant_id: TenantId,
    id: ConnectorId,
    offerings: &Offerings,
) -> Result<(), sqlx::Error> {
    for table in ["discovered_tools", "discovered_resources", "discovered_prompts"] {
        sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table} WHERE connector_id = $1")))
            .bind(id)
            .execute(&mut *connection)
            .await?;
    }
    for tool in &offerings.tools {
        sqlx::query(
            "INSERT INTO discovered_tools (tenant_id, connector_id, name, description, input_schema, annotations, \
                 read_only) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(tenant_id)
        .bind(id)
        .bind(&tool.name)
        .bind(&tool.description)
        .bind(&tool.input_schema)
        .bind(&tool.annotations)
        .bind(tool.read_only)
        .execute(&mut *connection)
        .await?;
    }
    for resource in &offerings.resources {
        sqlx::query(
            "INSERT INTO discovered_resources (tenant_id, connector_id, uri, template, name, title, description, \
                 mime_type, size_bytes) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(tenant_id)
        .bind(id)
        .bind(&resource.uri)
        .bind(resource.template)
        .bind(&resource.name)
        .bind(&resource.title)
        .bind(&resource.description)
        .bind(&resource.mime_type)
        .bind(resource.size_bytes)
        .execute(&mut *connection)
        .await?;
    }
    for prompt in &offerings.prompts {
        sqlx::query(
            "INSERT INTO discovered_prompts (tenant_id, connector_id, name, title, description, arguments) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(tenant_id)
        .bind(id)
        .bind(&prompt.name)
        .bind(&prompt.title)
        .bind(&prompt.description)
        .bind(&prompt.arguments)
        .execute(&mut *connection)
        .await?;
    }
    Ok(())
}

/// The name a connector's server lists for the resource at `uri` (`None`: not listed, as a URI a template
/// makes).
pub async fn listed_resource_name(
    connection: &mut PgConnection,
    connector: ConnectorId,
    uri: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT name FROM discovered_resources WHERE connector_id = $1 AND NOT template AND uri = $2")
        .bind(connector)
        .bind(uri)
        .fetch_optional(connection)
        .await
}

/// What every connector offers, or one.
pub async fn offerings(
    connection: &mut PgConnection,
    connector: Option<ConnectorId>,
) -> Result<Offerings, sqlx::Error> {
    let tools = discovered_tools(&mut *connection, connector).await?;
    let resources = sqlx::query_as(
        "SELECT connector_id, uri, template, name, title, description, mime_type, size_bytes \
         FROM discovered_resources WHERE $1::uuid IS NULL OR connector_id = $1 ORDER BY connector_id, template, uri",
    )
    .bind(connector)
    .fetch_all(&mut *connection)
    .await?;
    let prompts = sqlx::query_as(
        "SELECT connector_id, name, title, description, arguments FROM discovered_prompts \
         WHERE $1::uuid IS NULL OR connector_id = $1 ORDER BY connector_id, name",
    )
    .bind(connector)
    .fetch_all(&mut *connection)
    .await?;
    Ok(Offerings { tools, resources, prompts })
}

/// The discovered tools of every connector, or of one.
pub async fn discovered_tools(
    connection: &mut PgConnection,
    connector: Option<ConnectorId>,
) -> Result<Vec<DiscoveredTool>, sqlx::Error> {
    sqlx::query_as(
        "SELECT connector_id, name, description, input_schema, annotations, read_only FROM discovered_tools \
         WHERE $1::uuid IS NULL OR connector_id = $1 ORDER BY connector_id, name",
    )
    .bind(connector)
    .fetch_all(connection)
    .await
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, sqlx::Type, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum CallStatus {
    AwaitingApproval,
    /// Its server asked the person for input (MCP elicitation); made again with the answer.
    AwaitingInput,
    Running,
    Completed,
    Denied,
    Failed,
}

/// A call as decided, before it runs.
#[derive(Debug, Clone)]
pub struct NewToolCall<'a> {
    pub id: ToolCallId,
    pub run_id: RunId,
    pub step: i32,
    pub position: i32,
    pub provider_call_id: &'a str,
    pub connector_id: Option<ConnectorId>,
    pub name: &'a str,
    pub arguments: &'a serde_json::Value,
    pub verdict: Verdict,
    pub reason: &'a str,
    /// The profile in force (its id, version, and where it came from); `None`: no profile, so denied.
    pub policy: Option<(PolicyProfileId, i32, PolicySource)>,
    pub status: CallStatus,
}

/// How a call ended.
#[derive(Debug, Clone)]
pub struct CallOutcome<'a> {
    pub status: CallStatus,
    pub result: Option<&'a serde_json::Value>,
    pub summary: Option<&'a str>,
    pub error: Option<(&'a str, &'a str)>,
    pub duration_ms: Option<i32>,
}

/// What the API shows of a call.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ToolCallRecord {
    pub id: ToolCallId,
    pub run_id: RunId,
    pub step: i32,
    pub name: String,
    pub arguments: serde_json::Value,
    pub decision: String,
    pub reason: String,
    pub status: CallStatus,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub result_summary: Option<String>,
    pub error_code: Option<String>,
    pub error: Option<String>,
    pub duration_ms: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub policy_profile_id: Option<PolicyProfileId>,
    pub policy_version: Option<i32>,
    pub policy_source: Option<PolicySource>,
    /// What the server asked the person, when it asked (`tools::elicitation::InputNeeded`).
    pub input_request: Option<serde_json::Value>,
    /// The person's answer (`tools::elicitation::InputGiven`).
    pub input_response: Option<serde_json::Value>,
}

const TOOL_CALL_COLUMNS: &str = "id, run_id, step, name, arguments, decision, reason, status, decided_by, decided_at, \
     result_summary, error_code, error, duration_ms, created_at, completed_at, policy_profile_id, policy_version, \
     policy_source, input_request, input_response";

pub async fn insert_tool_call(
    connection: &mut PgConnection,
    tenant_id: TenantId,
    call: &NewToolCall<'_>,
) -> Result<(), sqlx::Error> {
    let decision = match call.verdict {
        Verdict::Allow => "allow",
        Verdict::RequireApproval => "require_approval",
        Verdict::Deny => "deny",
    };
    sqlx::query(
        "INSERT INTO tool_calls (id, tenant_id, run_id, step, position, provider_call_id, connector_id, name, \
             arguments, decision, reason, policy_profile_id, policy_version, status, policy_source, decided_by, \
             decided_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
             CASE WHEN $10 = 'require_approval' THEN NULL ELSE 'policy' END, \
             CASE WHEN $10 = 'require_approval' THEN NULL ELSE now() END)",
    )
    .bind(call.id)
    .bind(tenant_id)
    .bind(call.run_id)
    .bind(call.step)
    .bind(call.position)
    .bind(call.provider_call_id)
    .bind(call.connector_id)
    .bind(call.name)
    .bind(call.arguments)
    .bind(decision)
    .bind(call.reason)
    .bind(call.policy.map(|(id, _, _)| id))
    .bind(call.policy.map(|(_, version, _)| version))
    .bind(call.status)
    .bind(call.policy.map(|(_, _, source)| source))
    .execute(connection)
    .await?;
    Ok(())
}

pub async fn finish_tool_call(
    connection: &mut PgConnection,
    id: ToolCallId,
    outcome: &CallOutcome<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE tool_calls SET status = $2, result = $3, result_summary = $4, error_code = $5, error = $6, \
             duration_ms = $7, completed_at = now() WHERE id = $1",
    )
    .bind(id)
    .bind(outcome.status)
    .bind(outcome.result)
    .bind(outcome.summary)
    .bind(outcome.error.map(|(code, _)| code))
    .bind(outcome.error.map(|(_, message)| message))
    .bind(outcome.duration_ms)
    .execute(connection)
    .await?;
    Ok(())
}

/// A call whose server asked for input now waits for a person's answer.
pub async fn await_input(
    connection: &mut PgConnection,
    id: ToolCallId,
    request: &serde_json::Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE tool_calls SET status = 'awaiting_input', input_request = $2, input_response = NULL WHERE id = $1",
    )
    .bind(id)
    .bind(request)
    .execute(connection)
    .await?;
    Ok(())
}

/// A person's answer to a call waiting for input: it runs again with it. `None` when the call is not
/// waiting for input (answered already, or not this tenant's).
pub async fn answer_input(
    connection: &mut PgConnection,
    id: ToolCallId,
    response: &serde_json::Value,
    answered_by: &str,
) -> Result<Option<ToolCallRecord>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE tool_calls SET status = 'running', input_response = $2, decided_by = $3, decided_at = now()          WHERE id = $1 AND status = 'awaiting_input' RETURNING {TOOL_CALL_COLUMNS}"
    )))
    .bind(id)
    .bind(response)
    .bind(answered_by)
    .fetch_optional(connection)
    .await
}

/// `None` when the call is not waiting (decided already, or not this tenant's).
pub async fn decide_tool_call(
    connection: &mut PgConnection,
    id: ToolCallId,
    approved: bool,
    decided_by: &str,
) -> Result<Option<ToolCallRecord>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE tool_calls SET decided_by = $3, decided_at = now(), \
             status = CASE WHEN $2 THEN 'running' ELSE 'denied' END, \
             reason = CASE WHEN $2 THEN reason ELSE reason || '; denied by ' || $3 END \
         WHERE id = $1 AND status = 'awaiting_approval' RETURNING {TOOL_CALL_COLUMNS}"
    )))
    .bind(id)
    .bind(approved)
    .bind(decided_by)
    .fetch_optional(connection)
    .await
}

pub async fn find_tool_call(
    connection: &mut PgConnection,
    id: ToolCallId,
) -> Result<Option<ToolCallRecord>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {TOOL_CALL_COLUMNS} FROM tool_calls WHERE id = $1")))
        .bind(id)
        .fetch_optional(connection)
        .await
}

pub async fn tool_calls_of_run(
    connection: &mut PgConnection,
    run_id: RunId,
) -> Result<Vec<ToolCallRecord>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {TOOL_CALL_COLUMNS} FROM tool_calls WHERE run_id = $1 ORDER BY step, position"
    )))
    .bind(run_id)
    .fetch_all(connection)
    .await
}

/// Waiting calls become denied and running ones failed, so no call of an ended run stays open.
pub async fn close_open_tool_calls(connection: &mut PgConnection, run_id: RunId) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE tool_calls SET \
             status = CASE WHEN status = 'awaiting_approval' THEN 'denied' ELSE 'failed' END, \
             reason = CASE WHEN status = 'awaiting_approval' THEN reason || '; the run ended first' ELSE reason END, \
             error_code = CASE WHEN status <> 'awaiting_approval' THEN 'interrupted' END, \
             error = CASE WHEN status = 'running' THEN 'the run ended before the call did' \
                 WHEN status = 'awaiting_input' THEN 'the run ended before the input came' END, \
             completed_at = now() \
         WHERE run_id = $1 AND status IN ('awaiting_approval', 'awaiting_input', 'running')",
    )
    .bind(run_id)
    .execute(connection)
    .await?;
    Ok(())
}
