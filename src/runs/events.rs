//! The closed set of a run's events. The same values are streamed over SSE, persisted in `run_events`
//! and asserted in tests.

use serde::{Deserialize, Serialize};

use crate::ids::{ChangesetId, MessageId, PolicyProfileId, RunId, SessionId, ToolCallId};
use crate::policy::PolicySource;
use crate::providers::FinishReason;
use crate::retrieval::Citation;

/// One event of a run, numbered from 1 in the order it happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunEvent {
    #[schema(value_type = uuid::Uuid)]
    pub run_id: RunId,
    /// The event's sequence number, also the SSE frame's `id`.
    #[schema(minimum = 1)]
    pub seq: i64,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// The policy profile a tool call was decided under: its id and version, and whether it is the calling
/// key's own, its end user's group's, or the tenant's active one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AppliedPolicy {
    #[schema(value_type = uuid::Uuid)]
    pub profile_id: PolicyProfileId,
    pub version: i32,
    pub source: PolicySource,
}

/// What happened, by `type` (also the SSE frame's `event`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type")]
pub enum EventKind {
    #[serde(rename = "run.started")]
    RunStarted {
        #[schema(value_type = Option<uuid::Uuid>)]
        session_id: Option<SessionId>,
        provider: String,
        model: String,
    },
    /// The passages the answer is grounded in, numbered as the answer cites them.
    #[serde(rename = "retrieval")]
    Retrieval { citations: Vec<Citation> },
    #[serde(rename = "message.delta")]
    MessageDelta { text: String },
    /// The answer's sources once it is written: the passages it cites, each with the spans of the answer
    /// (bytes of its UTF-8 text) that cite it, and the passages retrieved but not cited. Sent before
    /// `usage` and the run's end when the turn was given passages; the stored message carries the same.
    #[serde(rename = "citations")]
    Citations { citations: Vec<Citation>, retrieved: Vec<Citation> },
    /// The model asked for a tool; the policy's decision follows in another event.
    #[serde(rename = "tool_call.requested")]
    ToolCallRequested {
        #[schema(value_type = uuid::Uuid)]
        tool_call_id: ToolCallId,
        name: String,
        arguments: serde_json::Value,
        /// The policy profile the call is decided under; null: none is in force (every call is denied).
        policy: Option<AppliedPolicy>,
    },
    #[serde(rename = "tool_call.awaiting_approval")]
    ToolCallAwaitingApproval {
        #[schema(value_type = uuid::Uuid)]
        tool_call_id: ToolCallId,
        name: String,
        reason: String,
    },
    /// The tool's server asked the person for input (MCP elicitation): answer on
    /// `POST /api/v1/tool-calls/{id}/input`; the call is then made again with the answer.
    #[serde(rename = "tool_call.awaiting_input")]
    ToolCallAwaitingInput {
        #[schema(value_type = uuid::Uuid)]
        tool_call_id: ToolCallId,
        name: String,
        /// The server's question.
        message: String,
        /// The JSON Schema the answer's `content` must fit (a flat object of primitive fields).
        #[schema(value_type = Object)]
        requested_schema: serde_json::Value,
    },
    #[serde(rename = "tool_call.completed")]
    ToolCallCompleted {
        #[schema(value_type = uuid::Uuid)]
        tool_call_id: ToolCallId,
        name: String,
        duration_ms: u64,
        /// What the model was told about blocked fields or truncated rows, if anything.
        note: Option<String>,
    },
    #[serde(rename = "tool_call.denied")]
    ToolCallDenied {
        #[schema(value_type = uuid::Uuid)]
        tool_call_id: ToolCallId,
        name: String,
        reason: String,
    },
    #[serde(rename = "tool_call.failed")]
    ToolCallFailed {
        #[schema(value_type = uuid::Uuid)]
        tool_call_id: ToolCallId,
        name: String,
        code: String,
        message: String,
    },
    /// The run paused until a person decides the calls named; the stream ends here and continues on
    /// `GET /runs/{id}/events` once they are decided.
    #[serde(rename = "run.awaiting_approval")]
    RunAwaitingApproval {
        #[schema(value_type = Vec<uuid::Uuid>)]
        tool_call_ids: Vec<ToolCallId>,
    },
    /// An agent run proposed a change: the file's patch in the run's changeset as it stands now (edits of
    /// one file stack into one patch). `operation` is `create`, `modify`, `delete` or `rename`, `null` when
    /// the change undid the path's patch; `diff` is its unified diff (empty when there is no patch).
    #[serde(rename = "changeset.patch")]
    ChangesetPatch {
        #[schema(value_type = uuid::Uuid)]
        changeset_id: ChangesetId,
        path: String,
        operation: Option<String>,
        new_path: Option<String>,
        diff: String,
    },
    /// The run's changeset awaits review (its run ended). The transitions that follow, by a reviewer,
    /// are appended after the run's end (follow the run with `Last-Event-ID` to see them).
    #[serde(rename = "changeset.pending_review")]
    ChangesetPendingReview(ChangesetTransition),
    #[serde(rename = "changeset.approved")]
    ChangesetApproved(ChangesetTransition),
    #[serde(rename = "changeset.rejected")]
    ChangesetRejected(ChangesetTransition),
    #[serde(rename = "changeset.applied")]
    ChangesetApplied(ChangesetTransition),
    #[serde(rename = "changeset.superseded")]
    ChangesetSuperseded(ChangesetTransition),
    #[serde(rename = "usage")]
    Usage {
        input_tokens: u32,
        output_tokens: u32,
        total_tokens: u32,
        /// Prompt tokens read from the provider's cache (part of `input_tokens`).
        #[serde(default)]
        cached_tokens: u32,
        /// Output tokens spent thinking (part of `output_tokens`).
        #[serde(default)]
        reasoning_tokens: u32,
        /// What these tokens cost in US dollars (a decimal string); `null` for a model the catalog has
        /// no price for.
        #[serde(default)]
        cost_usd: Option<rust_decimal::Decimal>,
        estimated: bool,
    },
    #[serde(rename = "run.completed")]
    RunCompleted {
        #[schema(value_type = uuid::Uuid)]
        message_id: MessageId,
        /// Why the model stopped: `length` means the answer was cut at its token limit. Absent on runs
        /// recorded before it was kept.
        #[serde(default)]
        finish_reason: Option<FinishReason>,
    },
    #[serde(rename = "run.failed")]
    RunFailed {
        code: String,
        message: String,
        #[schema(value_type = Option<uuid::Uuid>)]
        message_id: Option<MessageId>,
    },
    #[serde(rename = "run.cancelled")]
    RunCancelled {
        #[schema(value_type = Option<uuid::Uuid>)]
        message_id: Option<MessageId>,
    },
}

/// A changeset's move to another status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChangesetTransition {
    #[schema(value_type = uuid::Uuid)]
    pub changeset_id: ChangesetId,
    /// The reviewer's comment, if any.
    #[serde(default)]
    pub comment: Option<String>,
    /// The paths of the patches decided, when a reviewer decided single patches; empty for the whole
    /// changeset.
    #[serde(default)]
    pub paths: Vec<String>,
}

impl EventKind {
    /// The SSE `event:` name, also stored as `run_events.event_type`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::RunStarted { .. } => "run.started",
            Self::Retrieval { .. } => "retrieval",
            Self::MessageDelta { .. } => "message.delta",
            Self::Citations { .. } => "citations",
            Self::ToolCallRequested { .. } => "tool_call.requested",
            Self::ToolCallAwaitingApproval { .. } => "tool_call.awaiting_approval",
            Self::ToolCallAwaitingInput { .. } => "tool_call.awaiting_input",
            Self::ToolCallCompleted { .. } => "tool_call.completed",
            Self::ToolCallDenied { .. } => "tool_call.denied",
            Self::ToolCallFailed { .. } => "tool_call.failed",
            Self::RunAwaitingApproval { .. } => "run.awaiting_approval",
            Self::ChangesetPatch { .. } => "changeset.patch",
            Self::ChangesetPendingReview(_) => "changeset.pending_review",
            Self::ChangesetApproved(_) => "changeset.approved",
            Self::ChangesetRejected(_) => "changeset.rejected",
            Self::ChangesetApplied(_) => "changeset.applied",
            Self::ChangesetSuperseded(_) => "changeset.superseded",
            Self::Usage { .. } => "usage",
            Self::RunCompleted { .. } => "run.completed",
            Self::RunFailed { .. } => "run.failed",
            Self::RunCancelled { .. } => "run.cancelled",
        }
    }

    /// A terminal event ends the run.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::RunCompleted { .. } | Self::RunFailed { .. } | Self::RunCancelled { .. })
    }

    /// Ends a stream of the run's events: the run ended, or paused for an approval.
    pub fn ends_stream(&self) -> bool {
        self.is_terminal() || matches!(self, Self::RunAwaitingApproval { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialise_with_their_wire_name_run_id_and_seq() {
        let event = RunEvent { run_id: RunId::new(), seq: 7, kind: EventKind::MessageDelta { text: "Hi".into() } };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["type"], "message.delta");
        assert_eq!(json["seq"], 7);
        assert_eq!(json["text"], "Hi");
        assert_eq!(json["run_id"], event.run_id.to_string());
        assert_eq!(serde_json::from_value::<RunEvent>(json).unwrap(), event);
        assert_eq!(event.kind.name(), "message.delta");
        assert!(!event.kind.is_terminal());
    }
}
