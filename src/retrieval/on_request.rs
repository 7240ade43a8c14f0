//! Texts embedded on request (`/v1/embeddings`): by the deployment's embedding model or another one the
//! caller names, under the tenant's budgets, recorded as usage (input tokens and cost) for the key.

use crate::audit::Recorder;
use crate::auth::context::TenantContext;
use crate::budgets::{Payer, RunBudgets};
use crate::db;
use crate::embeddings::{Embedded, EmbeddingModel, EmbeddingProvider, Purpose, local};
use crate::usage::{self, EmbeddingPayer};

use super::{RetrievalError, Retriever};

/// What a caller asked to embed.
#[derive(Debug, Clone)]
pub struct EmbeddingRequest {
    /// `local`, a model's name (`text-embedding-3-small`) or `provider/name`.
    pub model: String,
    pub texts: Vec<String>,
    pub dimensions: Option<u32>,
}

/// The vectors and the model that made them.
#[derive(Debug, Clone)]
pub struct EmbeddingAnswer {
    pub model: EmbeddingModel,
    pub embedded: Embedded,
}

/// Embeds the texts, refusing an unknown model, or a budget used up or without room for the texts' cost,
/// before any provider is asked.
pub async fn embed(
    pool: &sqlx::PgPool,
    retriever: &Retriever,
    context: &TenantContext,
    request: &EmbeddingRequest,
) -> Result<EmbeddingAnswer, RetrievalError> {
    let factory = retriever.factory().ok_or(RetrievalError::EmbeddingsUnavailable)?;
    let spec = spec_of(retriever, factory, &request.model)
        .ok_or_else(|| RetrievalError::UnknownModel(format!("The model `{}` does not exist.", request.model)))?;
    let model = EmbeddingModel::parse_for_request(&spec, request.dimensions)
        .map_err(|error| RetrievalError::Invalid(error.reason().to_owned()))?;
    let embedder = factory.build(model.clone()).map_err(|_| {
        RetrievalError::UnknownModel(format!(
            "The model `{}` is not available: this deployment has no key for {}.",
            request.model,
            model.provider.as_str()
        ))
    })?;

    let tenant_id = context.tenant_id();
    let payer = Payer::outside_run(context.actor().api_key_id(), None);
    let mut transaction = db::begin_tenant(pool, tenant_id).await?;
    let budgets = RunBudgets::of(&mut transaction, payer).await?;
    budgets.check_open().map_err(RetrievalError::BudgetExhausted)?;
    transaction.commit().await?;
    let estimate = embedder.estimated_cost(request.texts.iter().map(String::as_str));
    let call = budgets.reserve_call(pool, tenant_id, estimate).await?.map_err(RetrievalError::BudgetExhausted)?;

    let answer = match embedder.embed_counted(&request.texts, Purpose::Document).await {
        Ok(answer) => answer,
        Err(error) => {
            budgets.release_call(pool, tenant_id, call).await;
            return Err(RetrievalError::Embedding(error));
        }
    };

    let mut transaction = db::begin_tenant(pool, tenant_id).await?;
    let payer = EmbeddingPayer { api_key_id: context.actor().api_key_id(), ..EmbeddingPayer::default() };
    usage::record_embedding(&mut transaction, tenant_id, payer, &model, answer.spend).await?;
    budgets.settle_call(&mut transaction, &Recorder::of(context), call, answer.spend.cost_usd).await?;
    transaction.commit().await?;
    Ok(EmbeddingAnswer { model, embedded: answer })
}

/// The model spec a name means: `provider/name` as given; `local` or the local model's name; a name the
/// catalog prices for one provider; or the deployment's own model by its name.
fn spec_of(retriever: &Retriever, factory: &crate::embeddings::EmbedderFactory, name: &str) -> Option<String> {
    let name = name.trim();
    if name.contains('/') {
        return Some(name.to_owned());
    }
    if name == "local" || name == local::MODEL_NAME {
        return Some("local".to_owned());
    }
    let priced = [EmbeddingProvider::OpenAi, EmbeddingProvider::Voyage, EmbeddingProvider::Gemini]
        .into_iter()
        .find(|provider| factory.catalog.embedding_price(provider.as_str(), name).is_some());
    if let Some(provider) = priced {
        return Some(format!("{}/{name}", provider.as_str()));
    }
    let deployed = retriever.document_embedder()?;
    let deployed = deployed.model();
    (deployed.name == name).then(|| format!("{}/{}", deployed.provider.as_str(), deployed.name))
}
