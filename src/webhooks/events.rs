//! The webhook events' vocabulary: the closed list of types a destination subscribes to, and one event as
//! it is sent (`{type, timestamp, data}`), built from ids and a few plain fields, never a secret or a
//! message's text. A leaf (it names only ids), so every domain that records a fact can build its event
//! without an import cycle: retrieval, budgets and the engine all do.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The kinds of event a destination can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
pub enum EventType {
    /// A run ended with an answer.
    #[serde(rename = "run.completed")]
    RunCompleted,
    /// A run ended with an error (the answer as far as it got is kept).
    #[serde(rename = "run.failed")]
    RunFailed,
    /// A tool call waits for a person's decision (`/tool-calls/{id}/approve` or `/deny`).
    #[serde(rename = "tool_call.awaiting_approval")]
    ToolCallAwaitingApproval,
    /// A tool's server asked a person for input (`/tool-calls/{id}/input`).
    #[serde(rename = "tool_call.awaiting_input")]
    ToolCallAwaitingInput,
    /// A document was stored (created, or its content replaced) with its chunks.
    #[serde(rename = "document.ingested")]
    DocumentIngested,
    /// A budget's spend crossed 50, 80 or 100 % of its limit this period.
    #[serde(rename = "budget.threshold")]
    BudgetThreshold,
}

impl EventType {
    pub const ALL: [Self; 6] = [
        Self::RunCompleted,
        Self::RunFailed,
        Self::ToolCallAwaitingApproval,
        Self::ToolCallAwaitingInput,
        Self::DocumentIngested,
        Self::BudgetThreshold,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::RunCompleted => "run.completed",
            Self::RunFailed => "run.failed",
            Self::ToolCallAwaitingApproval => "tool_call.awaiting_approval",
            Self::ToolCallAwaitingInput => "tool_call.awaiting_input",
            Self::DocumentIngested => "document.ingested",
            Self::BudgetThreshold => "budget.threshold",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

/// What `document.ingested` says of a document.
#[derive(Debug, Clone, Copy)]
pub struct IngestedDocument<'a> {
    pub id: uuid::Uuid,
    pub source_path: &'a str,
    pub title: &'a str,
    /// `created` or `updated`.
    pub outcome: &'a str,
    pub chunk_count: i32,
    pub collection_ids: &'a [uuid::Uuid],
}

/// One event, ready to be queued for every destination subscribed to its type.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub kind: EventType,
    pub timestamp: DateTime<Utc>,
    pub data: Value,
}

impl Event {
    pub fn new(kind: EventType, data: Value) -> Self {
        Self { kind, timestamp: Utc::now(), data }
    }

    /// `document.ingested`: what was stored, never its content.
    pub fn document_ingested(document: &IngestedDocument<'_>) -> Self {
        Self::new(
            EventType::DocumentIngested,
            json!({
                "document_id": document.id,
                "source_path": document.source_path,
                "title": document.title,
                "outcome": document.outcome,
                "chunk_count": document.chunk_count,
                "collection_ids": document.collection_ids,
            }),
        )
    }

    /// `budget.threshold`: which budget, how far, amounts as decimal strings.
    pub fn budget_threshold(budget: &str, subject: &str, percent: i16, period: &str, spent: &str, limit: &str) -> Self {
        Self::new(
            EventType::BudgetThreshold,
            json!({
                "budget": budget, "subject": subject, "percent": percent, "period": period,
                "spent_usd": spent, "limit_usd": limit,
            }),
        )
    }

    /// The body every attempt sends, byte for byte (and signs).
    pub fn body(&self) -> String {
        json!({
            "type": self.kind.as_str(),
            "timestamp": self.timestamp.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "data": self.data,
        })
        .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_parses_back_from_its_name_and_serialises_as_it() {
        for kind in EventType::ALL {
            assert_eq!(EventType::parse(kind.as_str()), Some(kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
        assert_eq!(EventType::parse("run.cancelled"), None);
        assert_eq!(EventType::parse("RUN.COMPLETED"), None);
    }

    #[test]
    fn the_body_has_the_type_a_timestamp_and_the_data() {
        let event = Event::new(EventType::RunCompleted, json!({ "run_id": "r" }));
        let body: Value = serde_json::from_str(&event.body()).unwrap();
        assert_eq!(body["type"], "run.completed");
        assert_eq!(body["data"]["run_id"], "r");
        assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
    }
}
