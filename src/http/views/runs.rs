//! Runs as the API shows them: alone, with the tokens they used, or with the message they ended with.

use crate::usage::RunTotals;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::ids::{RunId, SessionId};
use crate::providers::FinishReason;
use crate::runs::{Run, RunKind, RunStatus};

/// A run: one execution of the engine (a chat turn or an agent run).
#[derive(Debug, Serialize, ToSchema)]
pub struct RunView {
    #[schema(value_type = uuid::Uuid)]
    pub id: RunId,
    #[schema(value_type = Option<uuid::Uuid>)]
    pub session_id: Option<SessionId>,
    pub kind: RunKind,
    pub status: RunStatus,
    /// Why the model stopped, for a completed run.
    pub finish_reason: Option<FinishReason>,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub is_byok: bool,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    /// The `x-request-id` of the request that started the run.
    pub request_id: Option<String>,
    /// Its OpenTelemetry trace, when the service exports traces.
    pub trace_id: Option<String>,
    /// The system prompt template its turn was built with: the built-in one's id (`system.md.j2@` and a
    /// hash of its text) or `tenant`; null when the caller sent its own system prompt, or before the
    /// prompt was built.
    pub prompt_template: Option<String>,
    /// The version of the tenant's own template; null for the built-in one.
    pub prompt_version: Option<i32>,
    pub first_token_ms: Option<i32>,
    pub latency_ms: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<&Run> for RunView {
    fn from(run: &Run) -> Self {
        Self {
            id: run.id,
            session_id: run.session_id,
            kind: run.kind,
            status: run.status,
            finish_reason: run.finish_reason,
            provider: run.provider.clone(),
            model: run.model.clone(),
            is_byok: run.is_byok,
            error_code: run.error_code.clone(),
            error_message: run.error_message.clone(),
            request_id: run.request_id.clone(),
            trace_id: run.trace_id.clone(),
            prompt_template: run.prompt_template.clone(),
            prompt_version: run.prompt_version,
            first_token_ms: run.first_token_ms,
            latency_ms: run.latency_ms,
            created_at: run.created_at,
            finished_at: run.finished_at,
        }
    }
}

/// `GET /runs/{id}`: the run's fields, and beside them the tokens it used.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunDetail {
    #[serde(flatten)]
    pub run: RunView,
    pub usage: RunUsage,
}

impl RunDetail {
    pub fn new(run: &Run, totals: &RunTotals) -> Self {
        let usage = RunUsage {
            input_tokens: totals.input_tokens,
            output_tokens: totals.output_tokens,
            total_tokens: totals.input_tokens + totals.output_tokens,
            cached_tokens: totals.cached_tokens,
            reasoning_tokens: totals.reasoning_tokens,
            cost_usd: totals.cost_usd,
            priced: totals.fully_priced,
        };
        Self { run: RunView::from(run), usage }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunUsage {
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub total_tokens: i64,
    /// Prompt tokens read from the provider's cache (part of `input_tokens`).
    pub cached_tokens: i64,
    /// Output tokens spent thinking (part of `output_tokens`).
    pub reasoning_tokens: i64,
    /// US dollars, as a decimal string; `null` when no model call of the run has a catalog price.
    pub cost_usd: Option<rust_decimal::Decimal>,
    /// False when some model call of the run had no catalog price: `cost_usd` then covers only part.
    pub priced: bool,
}
