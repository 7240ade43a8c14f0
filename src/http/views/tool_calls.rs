//! A tool call as the API shows it, after a person decided it.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::ids::{RunId, ToolCallId};
use crate::tools::calls::{CallStatus, ToolCallRecord};

#[derive(Debug, Serialize)]
pub struct ToolCallView {
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
        }
    }
}
