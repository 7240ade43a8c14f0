//! A tool call as the API shows it, after a person decided it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::ids::{PolicyProfileId, RunId, ToolCallId};
use crate::policy::PolicySource;
use crate::tools::calls::{CallStatus, ToolCallRecord};

/// A tool call the model asked for, with the policy's decision and, once decided and run, its outcome.
#[derive(Debug, Serialize, ToSchema)]
pub struct ToolCallView {
    #[schema(value_type = uuid::Uuid)]
    pub id: ToolCallId,
    #[schema(value_type = uuid::Uuid)]
    pub run_id: RunId,
    pub step: i32,
    /// `connector.tool`.
    pub name: String,
    /// The arguments as the model gave them.
    pub arguments: serde_json::Value,
    /// The policy's decision.
    #[schema(value_type = ToolCallDecision)]
    pub decision: String,
    /// The policy's reason for its decision.
    pub reason: String,
    pub status: CallStatus,
    /// `policy`, or who approved or denied the call.
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub result_summary: Option<String>,
    pub error_code: Option<String>,
    pub error: Option<String>,
    pub duration_ms: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    /// The policy profile the call was decided under (null: none was in force), its version then, and
    /// where it came from: the calling key's own (`key`), its end user's group's (`group`), or the
    /// tenant's active profile (`tenant`).
    #[schema(value_type = Option<uuid::Uuid>)]
    pub policy_profile_id: Option<PolicyProfileId>,
    pub policy_version: Option<i32>,
    pub policy_source: Option<PolicySource>,
    /// What the tool's server asked the person (MCP elicitation): `{key, message, requested_schema}`.
    #[schema(value_type = Option<Object>)]
    pub input_request: Option<serde_json::Value>,
    /// The answer given: `{action, content?}`.
    #[schema(value_type = Option<Object>)]
    pub input_response: Option<serde_json::Value>,
}

impl From<&ToolCallRecord> for ToolCallView {
    fn from(call: &ToolCallRecord) -> Self {
        Self {
            id: call.id,
            run_id: call.run_id,
            step: call.step,
            name: call.name.clone(),
            arguments: call.arguments.clone(),
            decision: call.decision.clone(),
            reason: call.reason.clone(),
            status: call.status,
            decided_by: call.decided_by.clone(),
            decided_at: call.decided_at,
            result_summary: call.result_summary.clone(),
            error_code: call.error_code.clone(),
            error: call.error.clone(),
            duration_ms: call.duration_ms,
            created_at: call.created_at,
            completed_at: call.completed_at,
            policy_profile_id: call.policy_profile_id,
            policy_version: call.policy_version,
            policy_source: call.policy_source,
            // The server's opaque `request_state` stays inside: it is the server's, not the client's.
            input_request: call.input_request.as_ref().map(|asked| {
                serde_json::json!({
                    "key": asked["key"], "message": asked["message"], "requested_schema": asked["requested_schema"],
                })
            }),
            input_response: call.input_response.as_ref().map(|given| given["result"].clone()),
        }
    }
}

/// The policy's decision on a call (a schema only: `ToolCallView::decision` is the stored text).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[expect(dead_code, reason = "a schema: the decision is stored and shown as text")]
pub enum ToolCallDecision {
    Allow,
    RequireApproval,
    Deny,
}
