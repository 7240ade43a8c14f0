//! Building a turn's model request: the passages retrieved for the question, the system prompt rendered
//! with them, and the conversation trimmed to the model's context window.

use chrono::Utc;

use super::history;
use super::plan::{TurnFailure, TurnPlan};
use super::turn_tools::TurnTools;
use super::{GivenConversation, Inner, TurnMode};
use crate::conversations::{self, Role};
use crate::db;
use crate::prompts::{PromptTool, SystemPromptContext};
use crate::providers::Passage;
use crate::providers::options::GenerationOptions;
use crate::providers::{self, ChatMessage, ChatRequest};
use crate::retrieval::relevance::Floors;
use crate::retrieval::search::SearchMode;
use crate::retrieval::{self, Citation, RerankBill, Retriever};
use crate::usage;

/// Room kept for the answer when the history is trimmed to the model's window. It is not a cap: no
/// limit is sent that the caller did not ask for.
const RESERVED_OUTPUT_TOKENS: u32 = 1024;

/// How many passages a turn's search finds, before the relevance floor and the token budget choose.
const PASSAGES_SEARCHED: i64 = 8;

/// Retrieval keeps at most this many passages, within this many tokens.
const MAX_PASSAGES: usize = 5;
const PASSAGE_TOKEN_BUDGET: usize = 1_500;

/// A turn's model request, the citations of the passages it is grounded in, and its input tokens by our
/// count (for usage when the provider reports none).
pub(super) struct Built {
    pub request: ChatRequest,
    pub citations: Vec<Citation>,
    pub estimated_input_tokens: usize,
}

/// `tools`: what the turn may use: the tools the model is offered, which its system prompt may list, and
/// the policy profile in force, which it summarises.
pub(super) async fn build(inner: &Inner, plan: &TurnPlan, tools: &TurnTools) -> Result<Built, TurnFailure> {
    let offered = &tools.specs;
    if let TurnMode::PassThrough(given) = &plan.mode {
        return as_given(inner, plan, given).await;
    }
    let mut transaction = db::begin_tenant_patiently(&inner.db, plan.tenant_id).await?;
    let tenant_name = crate::tenants::store::name(&mut transaction, plan.tenant_id).await?;
    // What the tenant says about itself (`PUT /api/v1/tenant/profile`), in every turn's system prompt.
    let business_context = crate::tenants::profile::business_context(&mut transaction).await?;
    // The tenant's template in force (or the built-in one), recorded on the run.
    let prompt = crate::prompts::tenant::for_turn(&mut transaction, plan.run_id, plan.end_user).await?;
    // The branch that ends at the run's question: not another branch's messages (an edit's history leaves
    // out what it replaces), nor those posted after it (a run resumed after an approval).
    let stored = conversations::history_of_run(&mut transaction, plan.session_id, plan.run_id).await?;
    // MCP resources attached to the conversation, as the policy left them when they were attached.
    let attached = crate::tools::attachments::for_turn(&mut transaction, plan.session_id).await?;
    transaction.commit().await?;
    let query = retrieval_query(&stored);
    // Embedded with no connection held: the local model takes milliseconds of CPU.
    let vector = inner.retriever.embed_question(&query).await;
    let mut transaction = db::begin_tenant_patiently(&inner.db, plan.tenant_id).await?;
    let settings = retrieval::store::search_settings(&mut transaction).await?;
    // The tenant's reranker setting applies to its turns: more candidates are fetched for it to reorder.
    let rerank = inner.retriever.reranker().is_some() && settings.rerank;
    let depth = inner.retriever.candidates(PASSAGES_SEARCHED, rerank);
    let mut hits =
        Retriever::search_in(&mut transaction, &query, vector.as_ref(), depth, SearchMode::Hybrid, &plan.collections)
            .await?;
    // Passages below the tenant's floor are not given to the model: with none left, the prompt says so.
    Floors::from(settings.floors).judge(&mut hits, SearchMode::Hybrid);
    let payer =
        usage::EmbeddingPayer { run_id: Some(plan.run_id), api_key_id: plan.api_key_id, end_user: plan.end_user };
    if let Some(vector) = &vector {
        usage::record_embedding(&mut transaction, plan.tenant_id, payer, &vector.model, vector.spend).await?;
        // Spent against the run's budgets with the record, as a charge of its own.
        if vector.spend.cost_usd.is_some_and(|cost| !cost.is_zero()) {
            plan.budgets.charge(&mut transaction, &super::tools::audit_by(plan), vector.spend.cost_usd).await?;
        }
    }
    transaction.commit().await?;
    let hits = if rerank {
        // Outside any transaction: the reranker may take up to its timeout, and keeps the fused order if so.
        let bill = RerankBill { tenant_id: plan.tenant_id, payer, by: super::tools::audit_by(plan) };
        let limit = usize::try_from(PASSAGES_SEARCHED).unwrap_or(usize::MAX);
        inner.retriever.rerank(&inner.db, &bill, &query, hits, limit).await?.hits
    } else {
        hits
    };
    let hits = retrieval::select_passages(hits, PASSAGE_TOKEN_BUDGET, MAX_PASSAGES);
    let citations: Vec<Citation> = hits.iter().zip(1..).map(|(hit, number)| Citation::from_hit(number, hit)).collect();
    let passages: Vec<Passage> = hits.into_iter().map(Passage::from).collect();

    let variables = SystemPromptContext {
        tenant_name,
        today: Utc::now().format("%Y-%m-%d").to_string(),
        business_context,
        policy_summary: tools.policy_summary.clone(),
        citations: &passages,
        tools: offered
            .iter()
            .map(|tool| PromptTool { name: tool.name.clone(), description: tool.description.clone() })
            .collect(),
        end_user: prompt.end_user,
    };
    let mut system = match &prompt.template {
        Some((_, body)) => {
            crate::prompts::render_tenant(body, &variables).map_err(|error| TurnFailure::Internal(Box::new(error)))?
        }
        None => inner.prompts.system_prompt(&variables).map_err(|error| TurnFailure::Internal(Box::new(error)))?,
    };
    let (window, reserved) = window_and_room(inner, plan);
    // After the template's text, whatever template the tenant uses: attaching a resource is the
    // conversation's choice, which no template can drop.
    if let Some(block) = crate::tools::attachments::prompt_block(&attached, window) {
        system = format!("{system}\n\n{block}");
    }
    let messages: Vec<ChatMessage> = stored
        .into_iter()
        .filter(|message| !message.content.is_empty())
        .filter_map(|message| match message.role {
            Role::User => Some(ChatMessage::user(message.content)),
            Role::Assistant => Some(ChatMessage::assistant(message.content)),
            Role::System | Role::Tool => None,
        })
        .collect();
    let fitted = history::fit_to_window_off_workers(system.clone(), messages, window, reserved)
        .await
        .map_err(|error| TurnFailure::Internal(Box::new(error)))?;
    let request = ChatRequest {
        model: plan.model.clone(),
        system,
        messages: fitted.messages,
        // No cap the caller did not ask for: the model's own maximum is the only limit.
        max_output_tokens: None,
        passages,
        tools: Vec::new(),
        tool_calls_allowed: true,
        options: GenerationOptions::default(),
    };
    Ok(Built { request, citations, estimated_input_tokens: fitted.input_tokens })
}

/// The model's context window (the tenant's declaration or the catalog's, else a guess from its
/// family's name), and the room kept in it for the answer: 1,024 tokens, less for a model whose output
/// ceiling is lower, and never more than half the window.
fn window_and_room(inner: &Inner, plan: &TurnPlan) -> (usize, usize) {
    let known = plan.model_info(&inner.providers.catalog, &plan.model);
    let window = known.as_ref().map_or_else(|| providers::context_window(&plan.model), |m| m.context_window as usize);
    let ceiling = known.map_or(RESERVED_OUTPUT_TOKENS, |model| model.max_output_tokens.min(RESERVED_OUTPUT_TOKENS));
    (window, (ceiling as usize).min(window / 2))
}

/// The caller's conversation as it gave it, trimmed to the model's window like any other.
async fn as_given(inner: &Inner, plan: &TurnPlan, given: &GivenConversation) -> Result<Built, TurnFailure> {
    let (window, room) = window_and_room(inner, plan);
    let reserved = given.max_output_tokens.map_or(room, |asked| asked as usize);
    let fitted = history::fit_to_window_off_workers(given.system.clone(), given.messages.clone(), window, reserved)
        .await
        .map_err(|error| TurnFailure::Internal(Box::new(error)))?;
    let request = ChatRequest {
        model: plan.model.clone(),
        system: given.system.clone(),
        messages: fitted.messages,
        max_output_tokens: given.max_output_tokens,
        passages: Vec::new(),
        tools: given.tools.clone(),
        tool_calls_allowed: true,
        options: given.options.clone(),
    };
    Ok(Built { request, citations: Vec::new(), estimated_input_tokens: fitted.input_tokens })
}

/// What to search for: the question, with the previous question for context (a follow-up such as
/// "and how do I revoke it?" names little by itself).
fn retrieval_query(messages: &[conversations::Message]) -> String {
    let mut questions = messages.iter().rev().filter(|message| message.role == Role::User).map(|m| m.content.as_str());
    let question = questions.next().unwrap_or_default();
    match questions.next() {
        Some(previous) => format!("{question}\n{previous}"),
        None => question.to_owned(),
    }
}
