//! Runs: one execution of the engine (a chat turn or an agent run), its status, and its ordered events
//! (`events.rs`, the vocabulary every door streams) in `run_events`.

pub mod coalesce;
pub mod events;
pub mod executor;
pub mod store;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{RunId, SessionId};
use crate::providers::FinishReason;

/// The number a process's runs carry in `runs.executor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(transparent)]
pub struct ExecutorId(i64);

impl ExecutorId {
    /// A fresh number, positive so that the lock's two 32-bit halves read back the same in `pg_locks`.
    /// Nobody holds its lock until [`executor::Presence::take`] does: on its own it names a dead process.
    pub fn random() -> Self {
        Self(i64::try_from(rand::random::<u64>() >> 2).expect("62 bits fit"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum RunKind {
    Chat,
    Agent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum RunStatus {
    Queued,
    Running,
    AwaitingApproval,
    Succeeded,
    Failed,
    Cancelled,
}

impl RunKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Chat => "chat",
            Self::Agent => "agent",
        }
    }
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::AwaitingApproval => "awaiting_approval",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Run {
    pub id: RunId,
    pub session_id: Option<SessionId>,
    pub kind: RunKind,
    pub status: RunStatus,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub is_byok: bool,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    /// Why the model stopped, for a run that completed.
    pub finish_reason: Option<FinishReason>,
    /// The `x-request-id` of the request that started the run.
    pub request_id: Option<String>,
    /// Its OpenTelemetry trace, when traces are on.
    pub trace_id: Option<String>,
    /// The collections it may search (`None`: all of the tenant's), fixed when it started.
    pub collection_ids: Option<Vec<uuid::Uuid>>,
    /// The system prompt template its turn was built with: the built-in one's id (`system.md.j2@…`) or
    /// `tenant`, with the tenant's version in `prompt_version`; `None` before the prompt is built, or when
    /// the caller sent its own.
    pub prompt_template: Option<String>,
    pub prompt_version: Option<i32>,
    pub first_token_ms: Option<i32>,
    pub latency_ms: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// The agent-run queue now: how many runs wait for a worker (of any process), and the oldest one's wait.
pub async fn agent_queue(pool: &sqlx::PgPool) -> Result<(i64, std::time::Duration), sqlx::Error> {
    let mut transaction = crate::db::begin(pool).await?;
    let (queued, oldest) = store::agent_queue(&mut transaction).await?;
    transaction.commit().await?;
    Ok((queued, std::time::Duration::try_from_secs_f64(oldest).unwrap_or_default()))
}
