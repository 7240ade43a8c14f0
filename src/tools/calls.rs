//! `tool_calls`: one row per call a model made, with the policy's decision and reason, who approved or
//! denied it, what the model was given back, how long it took and how it failed. The rows' types and SQL
//! are in `store` (a store names no module that calls it); these are the functions the engine calls.

use sqlx::PgConnection;

use super::store;
pub use super::store::{CallOutcome, CallStatus, NewToolCall, ToolCallRecord};
use crate::ids::{RunId, TenantId, ToolCallId};

pub async fn insert(
    connection: &mut PgConnection,
    tenant_id: TenantId,
    call: &NewToolCall<'_>,
) -> Result<(), sqlx::Error> {
    store::insert_tool_call(connection, tenant_id, call).await
}

pub async fn finish(
    connection: &mut PgConnection,
    id: ToolCallId,
    outcome: &CallOutcome<'_>,
) -> Result<(), sqlx::Error> {
    store::finish_tool_call(connection, id, outcome).await
}

/// A person's decision on a waiting call; `None` when the call is not waiting (decided already, or not
/// this tenant's).
pub async fn decide(
    connection: &mut PgConnection,
    id: ToolCallId,
    approved: bool,
    decided_by: &str,
) -> Result<Option<ToolCallRecord>, sqlx::Error> {
    store::decide_tool_call(connection, id, approved, decided_by).await
}

/// A call whose server asked for input (`tools::elicitation::InputNeeded`) now waits for a person.
pub async fn await_input(
    connection: &mut PgConnection,
    id: ToolCallId,
    request: &serde_json::Value,
) -> Result<(), sqlx::Error> {
    store::await_input(connection, id, request).await
}

/// A person's answer to a call waiting for input; `None` when the call is not waiting for input.
pub async fn answer_input(
    connection: &mut PgConnection,
    id: ToolCallId,
    response: &serde_json::Value,
    answered_by: &str,
) -> Result<Option<ToolCallRecord>, sqlx::Error> {
    store::answer_input(connection, id, response, answered_by).await
}

pub async fn get(connection: &mut PgConnection, id: ToolCallId) -> Result<Option<ToolCallRecord>, sqlx::Error> {
    store::find_tool_call(connection, id).await
}

pub async fn for_run(connection: &mut PgConnection, run_id: RunId) -> Result<Vec<ToolCallRecord>, sqlx::Error> {
    store::tool_calls_of_run(connection, run_id).await
}

/// When a run ends: calls still waiting are denied, calls cut off mid-way failed, so no call stays open.
pub async fn close_open(connection: &mut PgConnection, run_id: RunId) -> Result<(), sqlx::Error> {
    store::close_open_tool_calls(connection, run_id).await
}
