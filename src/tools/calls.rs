//! `tool_calls`: one row per call a model made, with the policy's decision and reason, who approved or
//! denied it, what the model was given back, how long it took and how it failed.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;

use crate::ids::{ConnectorId, PolicyProfileId, RunId, TenantId, ToolCallId};
use crate::policy::Verdict;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum CallStatus {
    AwaitingApproval,
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
    pub policy: Option<(PolicyProfileId, i32)>,
    pub status: CallStatus,
}

pub async fn insert(
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
             arguments, decision, reason, policy_profile_id, policy_version, status, decided_by, decided_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, \
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
    .bind(call.policy.map(|(id, _)| id))
    .bind(call.policy.map(|(_, version)| version))
    .bind(call.status)
    .execute(connection)
    .await?;
    Ok(())
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

pub async fn finish(
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

/// A person's decision on a waiting call; `None` when the call is not waiting (decided already, or not
/// this tenant's).
pub async fn decide(
    connection: &mut PgConnection,
    id: ToolCallId,
    approved: bool,
    decided_by: &str,
) -> Result<Option<ToolCallRecord>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE tool_calls SET decided_by = $3, decided_at = now(), \
             status = CASE WHEN $2 THEN 'running' ELSE 'denied' END, \
             reason = CASE WHEN $2 THEN reason ELSE reason || '; denied by ' || $3 END \
         WHERE id = $1 AND status = 'awaiting_approval' RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(approved)
    .bind(decided_by)
    .fetch_optional(connection)
    .await
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
}

const COLUMNS: &str = "id, run_id, step, name, arguments, decision, reason, status, decided_by, decided_at, \
     result_summary, error_code, error, duration_ms, created_at, completed_at";

pub async fn get(connection: &mut PgConnection, id: ToolCallId) -> Result<Option<ToolCallRecord>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM tool_calls WHERE id = $1")))
        .bind(id)
        .fetch_optional(connection)
        .await
}

pub async fn for_run(connection: &mut PgConnection, run_id: RunId) -> Result<Vec<ToolCallRecord>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM tool_calls WHERE run_id = $1 ORDER BY step, position"
    )))
    .bind(run_id)
    .fetch_all(connection)
    .await
}

/// When a run ends: calls still waiting are denied, calls cut off mid-way failed, so no call stays open.
pub async fn close_open(connection: &mut PgConnection, run_id: RunId) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE tool_calls SET \
             status = CASE WHEN status = 'awaiting_approval' THEN 'denied' ELSE 'failed' END, \
             reason = CASE WHEN status = 'awaiting_approval' THEN reason || '; the run ended first' ELSE reason END, \
             error_code = CASE WHEN status = 'running' THEN 'interrupted' END, \
             error = CASE WHEN status = 'running' THEN 'the run ended before the call did' END, \
             completed_at = now() \
         WHERE run_id = $1 AND status IN ('awaiting_approval', 'running')",
    )
    .bind(run_id)
    .execute(connection)
    .await?;
    Ok(())
}
