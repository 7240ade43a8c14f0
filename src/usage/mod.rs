//! Usage records: the tokens each run consumed (cached and reasoning tokens apart), from the provider's
//! report or counted here, what they cost by the model catalog, and whose key paid. Written in one
//! place, by the engine.

pub mod store;

use std::collections::HashSet;
use std::sync::{LazyLock, Mutex};

use rust_decimal::Decimal;
use sqlx::PgPool;

use crate::auth::context::TenantContext;
use crate::catalog::ModelInfo;
use crate::db;
use crate::ids::{ApiKeyId, RunId, UserId};
use crate::tokens::TokenUsage;

/// Where a token count comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    Provider,
    Estimated,
}

impl TokenSource {
    fn as_str(self) -> &'static str {
        match self {
            Self::Provider => "provider",
            Self::Estimated => "estimated",
        }
    }
}

/// What the tokens were spent on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// A model call of a run.
    Chat,
    /// Texts embedded: a document's chunks, a question, a `/v1/embeddings` request.
    Embedding,
    /// Passages reranked for a question (a search or a turn's retrieval).
    Rerank,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Self::Chat => "chat",
            Self::Embedding => "embedding",
            Self::Rerank => "rerank",
        }
    }
}

#[derive(Debug, Clone)]
pub struct UsageEntry<'a> {
    pub operation: Operation,
    /// `None` for embeddings made outside any run (ingestion, `/v1/embeddings`).
    pub run_id: Option<RunId>,
    pub api_key_id: Option<ApiKeyId>,
    /// The end user the run was for (a widget user, an integration user).
    pub end_user: Option<UserId>,
    pub provider: &'a str,
    pub model: &'a str,
    pub tokens: TokenUsage,
    /// `None`: the catalog has no price for the model (recorded as not priced, never as free).
    pub cost_usd: Option<Decimal>,
    pub source: TokenSource,
    pub is_byok: bool,
    /// The OpenTelemetry trace the usage was recorded in, when traces are on.
    pub trace_id: Option<String>,
}

/// What a run's model calls used and cost, all together.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct RunTotals {
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cached_tokens: i64,
    pub reasoning_tokens: i64,
    /// The sum of the priced records; `None` when no record is priced.
    pub cost_usd: Option<Decimal>,
    /// False when any record is not priced: the cost then covers only part of the run.
    pub fully_priced: bool,
}

/// Who embedded texts, for the usage record of an embedding.
#[derive(Debug, Clone, Copy, Default)]
pub struct EmbeddingPayer {
    pub run_id: Option<RunId>,
    pub api_key_id: Option<ApiKeyId>,
    pub end_user: Option<UserId>,
}

/// Records a run's usage and settles its budget reservations with the record's cost (in the same
/// statement, when the run is under budgets), then audits each budget threshold crossed.
pub async fn record_settling(
    connection: &mut sqlx::PgConnection,
    entry: &UsageEntry<'_>,
    budgets: &crate::budgets::RunBudgets,
    by: &crate::audit::Recorder<'_>,
    run_id: RunId,
) -> Result<(), sqlx::Error> {
    match budgets.settlement(by.tenant_id, run_id, entry.cost_usd) {
        Some(settlement) => {
            let settled = store::record_settling(connection, by.tenant_id, entry, &settlement).await?;
            budgets.audit_settled(connection, by, &settled).await
        }
        None => store::record(connection, by.tenant_id, entry).await,
    }
}

/// Records the input tokens and cost of an embedding (the platform's key: embedders are the deployment's).
pub async fn record_embedding(
    connection: &mut sqlx::PgConnection,
    tenant_id: crate::ids::TenantId,
    payer: EmbeddingPayer,
    model: &crate::embeddings::EmbeddingModel,
    spend: crate::embeddings::EmbeddingSpend,
) -> Result<(), sqlx::Error> {
    let entry = UsageEntry {
        operation: Operation::Embedding,
        run_id: payer.run_id,
        api_key_id: payer.api_key_id,
        end_user: payer.end_user,
        provider: model.provider.as_str(),
        model: &model.name,
        tokens: TokenUsage::new(spend.input_tokens, 0),
        cost_usd: spend.cost_usd,
        source: if spend.reported { TokenSource::Provider } else { TokenSource::Estimated },
        is_byok: false,
        trace_id: crate::telemetry::current_trace_id(),
    };
    store::record(connection, tenant_id, &entry).await
}

/// What a rerank call read and cost, for its usage record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RerankSpend {
    /// The tokens the provider reported (Voyage, Jina), else counted here.
    pub tokens: u64,
    /// False when the tokens were counted here (with the chat tokenizer: an estimate).
    pub reported: bool,
    /// What Cohere bills instead of tokens.
    pub search_units: Option<u64>,
    /// `None`: the model catalog has no price for the model (recorded as not priced, never as free).
    pub cost_usd: Option<Decimal>,
}

/// Records a rerank call (the platform's key: the reranker is the deployment's).
pub async fn record_rerank(
    connection: &mut sqlx::PgConnection,
    tenant_id: crate::ids::TenantId,
    payer: EmbeddingPayer,
    (provider, model): (&str, &str),
    spend: RerankSpend,
) -> Result<(), sqlx::Error> {
    let entry = UsageEntry {
        operation: Operation::Rerank,
        run_id: payer.run_id,
        api_key_id: payer.api_key_id,
        end_user: payer.end_user,
        provider,
        model,
        tokens: TokenUsage::new(spend.tokens, 0),
        cost_usd: spend.cost_usd,
        source: if spend.reported { TokenSource::Provider } else { TokenSource::Estimated },
        is_byok: false,
        trace_id: crate::telemetry::current_trace_id(),
    };
    store::record_with_search_units(connection, tenant_id, &entry, spend.search_units).await
}

/// A run's tokens and cost over all its model calls.
pub async fn of_run(pool: &PgPool, context: &TenantContext, run_id: RunId) -> Result<RunTotals, sqlx::Error> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let totals = store::run_totals(&mut transaction, run_id).await?;
    transaction.commit().await?;
    Ok(totals)
}

/// The cost of a model call by the prices known for its model (`known`: the tenant's declaration or the
/// catalog's entry); `None` (and one log line per model and process) when nothing is known of it.
pub fn price(known: Option<&ModelInfo>, provider: &str, model: &str, tokens: &TokenUsage) -> Option<Decimal> {
    static UNPRICED: LazyLock<Mutex<HashSet<(String, String)>>> = LazyLock::new(Mutex::default);
    if let Some(info) = known {
        return Some(info.prices.cost(tokens));
    }
    let first_time = UNPRICED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert((provider.to_owned(), model.to_owned()));
    if first_time {
        tracing::warn!(
            provider,
            model,
            "the model catalog has no price for this model: its usage is recorded unpriced"
        );
    }
    None
}

/// What a usage report groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    Day,
    Model,
    Provider,
    ApiKey,
    EndUser,
    RunKind,
}

/// One group of a usage report: its key (`""` for records without one: no API key, no end user) and its
/// totals.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UsageGroup {
    pub key: String,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cached_tokens: i64,
    pub reasoning_tokens: i64,
    /// The priced records' cost.
    pub cost_usd: Decimal,
    /// Records the catalog had no price for (their cost is not in `cost_usd`).
    pub unpriced_records: i64,
    pub runs: i64,
}

/// The longest period one report covers.
pub const MOST_DAYS: i64 = 366;

/// The tenant's usage from `from` to `to` (both days included, UTC), grouped.
pub async fn report(
    pool: &PgPool,
    context: &TenantContext,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
    group_by: GroupBy,
) -> Result<Vec<UsageGroup>, sqlx::Error> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let groups = store::report(&mut transaction, from, to, group_by).await?;
    transaction.commit().await?;
    Ok(groups)
}
