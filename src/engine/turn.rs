//! One chat turn, after it has been accepted: build the request, stream the model, record the outcome.
//! The turn runs in its own task, independent of any connection; only cancellation or its own end stop it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;

use super::event_log::EventLog;
use super::plan::{ToolCallDraft, TurnFailure, TurnPlan};
use super::request;
use super::reserving;
use super::tools;
use super::transcript::Transcript;
use super::turn_tools::TurnTools;
use super::{Inner, TurnMode};
use crate::conversations::store::NewMessage;
use crate::conversations::{self, MessageStatus, Role};
use crate::db;
use crate::ids::{MessageId, ToolCallId};
use crate::providers::{ChatChunk, ChatRequest, FinishReason, ProviderError, ProviderErrorKind, retry};
use crate::retrieval::{self, Citation};
use crate::runs::events::EventKind;
use crate::runs::store::RunOutcome;
use crate::runs::{RunKind, RunStatus};
use crate::tokens::TokenUsage;
use crate::usage::{self, TokenSource, UsageEntry};

/// How a run ends when its database cannot be reached (and a waiting client gets 503 for it).
const DATABASE_UNAVAILABLE: (&str, &str) =
    ("database_unavailable", "the database cannot be reached; try again shortly");

/// The longest wait for the next piece of a streamed answer.
const CHUNK_TIMEOUT: Duration = Duration::from_mins(2);

/// What the model produced so far; survives a cancellation or failure mid-stream.
#[derive(Debug, Default)]
struct Answer {
    /// The model that answered: the planned one, or the fallback.
    model: String,
    text: String,
    /// Tool calls as the model streamed them in the current step, by their index.
    tool_calls: Vec<ToolCallDraft>,
    /// The tool steps taken (calls, decisions, results).
    transcript: Transcript,
    /// Text from before a pause, whose usage was recorded then: estimates count only what follows.
    billed_text_len: usize,
    /// The passages the model was given, numbered as the prompt numbers them.
    citations: Vec<Citation>,
    first_token_at: Option<Instant>,
    reported_usage: Option<TokenUsage>,
    estimated_input_tokens: u32,
    /// Why the model stopped its last step, as the provider said.
    finish_reason: Option<FinishReason>,
    /// Model calls made (an agent run may have a most).
    model_steps: u32,
    /// Time spent waiting for providers and tool servers: the rest of the run's time is the service's own.
    waited: Duration,
}

impl Answer {
    /// Why the answer ended: the provider's word for its last step, else what the answer shows (calls
    /// left for the caller to run, or a natural end).
    fn finish_reason(&self) -> FinishReason {
        self.finish_reason.unwrap_or(if self.tool_calls.is_empty() {
            FinishReason::Stop
        } else {
            FinishReason::ToolCalls
        })
    }

    /// The message's `tool_calls`: the calls made and their outcome, or (when no tool was offered) the
    /// calls as the model asked for them.
    fn recorded_tool_calls(&self) -> Option<serde_json::Value> {
        if self.transcript.steps.is_empty() {
            (!self.tool_calls.is_empty()).then(|| serde_json::json!(self.tool_calls))
        } else {
            Some(serde_json::json!(self.transcript.summary()))
        }
    }

    fn add_tool_call_piece(&mut self, index: u32, id: Option<String>, name: Option<String>, arguments: &str) {
        let position = match self.tool_calls.iter().position(|call| call.index == index) {
            Some(position) => position,
            None => {
                self.tool_calls.push(ToolCallDraft { index, ..ToolCallDraft::default() });
                self.tool_calls.len() - 1
            }
        };
        let call = &mut self.tool_calls[position];
        call.id = call.id.take().or(id);
        call.name = call.name.take().or(name);
        call.arguments.push_str(arguments);
    }
}

/// Where a turn's task stopped: the run ended, or it waits for a person to decide these calls.
enum Stop {
    Ended(Ending),
    Paused(Vec<ToolCallId>),
}

enum Ending {
    Completed,
    Failed { code: String, message: String },
    Cancelled,
}

/// Runs a turn from its start, or (`resume`) from the step where it paused for an approval.
#[tracing::instrument(name = "turn", skip_all, fields(run_id = %plan.run_id, tenant_id = %plan.tenant_id))]
pub async fn execute(inner: Arc<Inner>, plan: TurnPlan, mut log: EventLog, resume: Option<Transcript>) {
    let cancelled = log.cancellation();
    let mut answer = Answer { model: plan.model.clone(), ..Answer::default() };
    let stop = tokio::select! {
        biased;
        () = cancelled.cancelled() => Stop::Ended(Ending::Cancelled),
        result = stream_answer(&inner, &plan, &mut log, &mut answer, resume) => match result {
            Ok(paused) if !paused.is_empty() => Stop::Paused(paused),
            Ok(_) => Stop::Ended(Ending::Completed),
            Err(TurnFailure::Provider(error)) => {
                Stop::Ended(Ending::Failed { code: error.code().to_owned(), message: error.message })
            }
            Err(failure @ (TurnFailure::Budget(_) | TurnFailure::StepsExhausted(_))) => {
                Stop::Ended(Ending::Failed { code: "budget_exhausted".to_owned(), message: failure.to_string() })
            }
            Err(TurnFailure::DatabaseUnavailable) => {
                let (code, message) = DATABASE_UNAVAILABLE;
                Stop::Ended(Ending::Failed { code: code.to_owned(), message: message.to_owned() })
            }
            Err(TurnFailure::Internal(error)) => {
                tracing::error!(run_id = %plan.run_id, %error, "turn failed");
                let message = "an internal error occurred".to_owned();
                Stop::Ended(Ending::Failed { code: "internal_error".to_owned(), message })
            }
        },
    };
    let stop = match stop {
        // Stopped by shutdown, not by anyone who asked: a pause is kept for the next process; anything
        // else failed, and may be asked again.
        Stop::Ended(Ending::Cancelled) if inner.hub.is_shutting_down() => Stop::Ended(Ending::Failed {
            code: "shutting_down".to_owned(),
            message: "the server stopped before this turn finished; ask again".to_owned(),
        }),
        // A cancel that arrived while the turn was pausing wins: the run ends instead of waiting.
        Stop::Paused(_) if cancelled.is_cancelled() && !inner.hub.is_shutting_down() => Stop::Ended(Ending::Cancelled),
        stop => stop,
    };
    log.take_over_writing().await;
    // The outcome is only in memory until recorded: a database that is briefly out of reach (its pool
    // exhausted under a burst, or a restart) is waited for a little before the run is given up as
    // failed. A try whose commit was acknowledged nowhere is found by the next (`ended_elsewhere`).
    let mut retry_in = RECORD_RETRY_FIRST;
    let recorded = loop {
        let recorded = match &stop {
            Stop::Paused(calls) => Box::pin(record_pause(&inner, &plan, &mut log, &answer, calls)).await,
            Stop::Ended(ending) => Box::pin(record(&inner, &plan, &mut log, &answer, ending)).await,
        };
        match recorded {
            Err(error) if crate::db::is_unavailable(&error) && retry_in <= RECORD_RETRY_LAST => {
                tracing::warn!(run_id = %plan.run_id, %error, retry_in_ms = retry_in.as_millis(), "could not record the end of a run yet");
                tokio::time::sleep(retry_in).await;
                retry_in *= 2;
            }
            recorded => break recorded,
        }
    };
    if let Err(error) = recorded {
        tracing::error!(run_id = %plan.run_id, %error, "could not record the end of a run");
        let (code, message) = if crate::db::is_unavailable(&error) {
            DATABASE_UNAVAILABLE
        } else {
            ("internal_error", "the run's outcome could not be recorded")
        };
        log.publish_failure_in_memory(code, message);
        Box::pin(close_when_the_database_returns(&inner, &plan, code, message)).await;
    }
    inner.hub.remove(plan.run_id, log.live());
}

/// How often a run whose end could not be recorded tries again to close itself.
const CLOSE_RETRY_EVERY: Duration = Duration::from_secs(1);

/// Closes, as failed with what its followers here were told, a run whose end could not be recorded: in
/// the database it is still running, and whoever follows it there (another process, a client that
/// reconnects) would otherwise wait for the sweeper to call it `interrupted`. It stays registered here
/// meanwhile, so the sweeper leaves it alone; a shutdown first leaves it to the next process's sweep.
async fn close_when_the_database_returns(inner: &Arc<Inner>, plan: &TurnPlan, code: &str, message: &str) {
    let engine = super::Engine { inner: Arc::clone(inner) };
    let closing = || EventKind::RunFailed { code: code.to_owned(), message: message.to_owned(), message_id: None };
    loop {
        tokio::select! {
            () = inner.background.stopping().cancelled() => return,
            () = tokio::time::sleep(CLOSE_RETRY_EVERY) => {}
        }
        match engine.close_abandoned(plan.tenant_id, plan.run_id, closing()).await {
            Err(super::EngineError::Database(error)) if crate::db::is_unavailable(&error) => continue,
            Err(error) => tracing::error!(run_id = %plan.run_id, %error, "could not close a run as failed"),
            Ok(()) => tracing::info!(run_id = %plan.run_id, code, "closed a run whose end could not be recorded"),
        }
        return;
    }
}

/// The waits between tries to record a run's end while the database is out of reach: 0.5, 1, 2 and 4 s.
const RECORD_RETRY_FIRST: Duration = Duration::from_millis(500);
const RECORD_RETRY_LAST: Duration = Duration::from_secs(4);

/// When another process already ended the run (a cancel of a run executing here), nothing more is
/// recorded; followers here get its terminal event. True when that was the case.
async fn ended_elsewhere(
    transaction: &mut sqlx::PgConnection,
    plan: &TurnPlan,
    log: &mut EventLog,
) -> Result<bool, sqlx::Error> {
    let run = crate::runs::store::get_for_update(&mut *transaction, plan.run_id).await?;
    if !run.is_some_and(|run| run.status.is_terminal()) {
        return Ok(false);
    }
    let stored = crate::runs::store::events_after(&mut *transaction, plan.run_id, 0).await?;
    let terminal = stored.into_iter().rev().find(|event| event.kind.is_terminal());
    log.publish_in_memory(terminal.map_or(EventKind::RunCancelled { message_id: None }, |event| event.kind));
    Ok(true)
}

/// Streams the model's answer, running the tool steps it asks for, until it answers without calling a
/// tool; returns the calls it paused for (none when the answer is complete).
async fn stream_answer(
    inner: &Inner,
    plan: &TurnPlan,
    log: &mut EventLog,
    answer: &mut Answer,
    resume: Option<Transcript>,
) -> Result<Vec<ToolCallId>, TurnFailure> {
    // Loaded first: the system prompt may list the tools the model is offered.
    let tools = match &plan.mode {
        TurnMode::PassThrough(_) => TurnTools::default(),
        TurnMode::Assistant => Box::pin(TurnTools::load(inner, plan)).await?,
    };
    let request::Built { mut request, citations, estimated_input_tokens } =
        Box::pin(request::build(inner, plan, &tools)).await?;
    answer.citations.clone_from(&citations);
    answer.estimated_input_tokens = u32::try_from(estimated_input_tokens).unwrap_or(u32::MAX);
    if let TurnMode::PassThrough(_) = &plan.mode {
        // The caller's tools are the caller's to run: their calls end the turn and go back to it.
        stream_step(inner, plan, log, &mut request, answer).await?;
        return Ok(Vec::new());
    }
    request.tools.clone_from(&tools.specs);
    let conversation = request.messages.clone();
    match resume {
        Some(transcript) => {
            answer.text.clone_from(&transcript.text);
            answer.billed_text_len = transcript.text.len();
            answer.transcript = transcript;
            if let Some(step) = answer.transcript.steps.last_mut() {
                Box::pin(tools::apply_decisions(inner, plan, log, step)).await?;
            }
        }
        None => {
            answer.transcript.api_key_id = plan.api_key_id;
            log.emit(EventKind::Retrieval { citations }).await;
        }
    }
    loop {
        if let Some(step) = answer.transcript.steps.last_mut() {
            answer.waited += Box::pin(tools::run_allowed(inner, plan, log, &tools, step)).await?;
            // A call whose server asked the person for input waits for the answer.
            let awaiting = answer.transcript.awaiting();
            if !awaiting.is_empty() {
                return Ok(awaiting);
            }
        }
        request.messages = conversation.iter().cloned().chain(answer.transcript.messages()).collect();
        if answer.transcript.steps.len() >= inner.tools.settings.max_steps as usize {
            // Enough tool steps: the model must now answer with what it has.
            request.tool_calls_allowed = false;
        }
        let step_text = stream_step(inner, plan, log, &mut request, answer).await?;
        let drafts = std::mem::take(&mut answer.tool_calls);
        if drafts.is_empty() || request.tools.is_empty() || !request.tool_calls_allowed {
            // Calls of tools nobody offered stay on the message as the model made them.
            answer.tool_calls = drafts;
            return Ok(Vec::new());
        }
        let number = answer.transcript.steps.len() + 1;
        let step = Box::pin(tools::decide_step(inner, plan, log, &tools, number, step_text, drafts)).await?;
        answer.transcript.steps.push(step);
        answer.transcript.text.clone_from(&answer.text);
        let awaiting = answer.transcript.awaiting();
        if !awaiting.is_empty() {
            return Ok(awaiting);
        }
    }
}

/// One model request, streamed into the answer (with a fallback model if the first fails before any
/// token); returns the text of this step. Its span carries OpenTelemetry's GenAI attributes.
#[tracing::instrument(
    name = "chat",
    skip_all,
    fields(
        otel.name = format!("chat {}", request.model),
        otel.kind = "client",
        gen_ai.operation.name = "chat",
        gen_ai.system = plan.provider.as_ref().map_or("none", |provider| provider.name()),
        gen_ai.request.model = %request.model,
        gen_ai.response.model = tracing::field::Empty,
        gen_ai.usage.input_tokens = tracing::field::Empty,
        gen_ai.usage.output_tokens = tracing::field::Empty,
    )
)]
async fn stream_step(
    inner: &Inner,
    plan: &TurnPlan,
    log: &mut EventLog,
    request: &mut ChatRequest,
    answer: &mut Answer,
) -> Result<String, TurnFailure> {
    let provider = plan.provider.as_ref().map_err(|error| TurnFailure::Provider(error.clone()))?;
    Box::pin(reserve_worst_case(inner, plan, request, answer)).await?;
    let settings = &inner.providers.http.settings;
    let opened = waiting_for(&mut answer.waited, Box::pin(retry::open_with_retries(provider, request, settings))).await;
    let mut chunks = match opened {
        Ok(chunks) => chunks,
        Err(error) => {
            let fallback = plan.fallback_model.as_ref().filter(|fallback| **fallback != request.model);
            let Some(fallback) = fallback.filter(|_| worth_a_fallback(&error)) else {
                return Err(TurnFailure::Provider(error));
            };
            tracing::warn!(run_id = %plan.run_id, code = error.code(), %fallback, "the model failed; trying the fallback");
            request.model.clone_from(fallback);
            answer.model.clone_from(fallback);
            waiting_for(&mut answer.waited, Box::pin(retry::open_with_retries(provider, request, settings)))
                .await
                .map_err(TurnFailure::Provider)?
        }
    };
    let mut text = String::new();
    let mut usage = None;
    answer.finish_reason = None;
    loop {
        let next = waiting_for(&mut answer.waited, tokio::time::timeout(CHUNK_TIMEOUT, chunks.next())).await;
        let next = next.map_err(|_| {
            TurnFailure::Provider(ProviderError::new(
                ProviderErrorKind::Timeout,
                format!("the model sent nothing for {} s", CHUNK_TIMEOUT.as_secs()),
            ))
        })?;
        match next {
            None => break,
            Some(Err(error)) => return Err(TurnFailure::Provider(error)),
            Some(Ok(ChatChunk::Text(piece))) => {
                if piece.is_empty() {
                    continue;
                }
                answer.first_token_at.get_or_insert_with(Instant::now);
                answer.text.push_str(&piece);
                text.push_str(&piece);
                log.emit(EventKind::MessageDelta { text: piece }).await;
            }
            Some(Ok(ChatChunk::ToolCall { index, id, name, arguments })) => {
                answer.add_tool_call_piece(index, id, name, &arguments);
            }
            // A provider may repeat its (cumulative) report within one answer: the last one counts.
            Some(Ok(ChatChunk::Usage(reported))) => usage = Some(reported),
            Some(Ok(ChatChunk::Finish(reason))) => answer.finish_reason = Some(reason),
        }
    }
    let span = tracing::Span::current();
    span.record("gen_ai.response.model", request.model.as_str());
    if let Some(usage) = usage {
        span.record("gen_ai.usage.input_tokens", usage.input);
        span.record("gen_ai.usage.output_tokens", usage.output);
        answer.reported_usage = Some(answer.reported_usage.unwrap_or_default().plus(usage));
    }
    Ok(text)
}

/// Awaits `work` (a provider's), adding its time to `waited`: time the run spent on others, not its own.
async fn waiting_for<T>(waited: &mut Duration, work: impl Future<Output = T>) -> T {
    let started = Instant::now();
    let output = work.await;
    *waited += started.elapsed();
    output
}

/// Reserves, against every budget the run is under, the most this model call can cost (every prompt
/// token uncached, the whole output ceiling written); refuses the call when a budget has no room. An
/// agent run over its model steps is refused here too.
async fn reserve_worst_case(
    inner: &Inner,
    plan: &TurnPlan,
    request: &ChatRequest,
    answer: &mut Answer,
) -> Result<(), TurnFailure> {
    answer.model_steps += 1;
    if let Some(max_steps) = plan.budgets.max_steps
        && answer.model_steps > max_steps
    {
        return Err(TurnFailure::StepsExhausted(max_steps));
    }
    if plan.budgets.lines.is_empty() {
        return Ok(());
    }
    let model = plan.model_info(&inner.providers.catalog, &request.model);
    let amount = reserving::worst_case(model.as_deref(), &request.system, &request.messages, request.max_output_tokens);
    // Reserved when the turn was accepted, for its first call: only what this call needs beyond.
    let ahead = plan.reserved_ahead.filter(|_| answer.model_steps == 1).unwrap_or_default();
    if amount <= ahead {
        return Ok(());
    }
    let reserving = || plan.budgets.reserve(&inner.db, plan.tenant_id, plan.run_id, amount - ahead);
    Ok(db::patiently(&inner.db, reserving).await??)
}

/// A fallback model helps when the model failed, not when the key or the provider itself is the problem.
fn worth_a_fallback(error: &ProviderError) -> bool {
    !matches!(
        error.kind,
        ProviderErrorKind::AuthFailed | ProviderErrorKind::NotConfigured | ProviderErrorKind::Unsupported { .. }
    )
}

/// The turn's tokens: the provider's report, else our count of what this part of the run produced.
fn usage_of(answer: &Answer, ending: &Ending) -> (TokenUsage, TokenSource) {
    match answer.reported_usage {
        Some(reported) => (reported, TokenSource::Provider),
        None => {
            let new_text = answer.text.get(answer.billed_text_len..).unwrap_or_default();
            let output = crate::tokens::count(new_text) as u64;
            let input = if answer.estimated_input_tokens > 0 && (output > 0 || matches!(ending, Ending::Completed)) {
                u64::from(answer.estimated_input_tokens)
            } else {
                0
            };
            (TokenUsage::new(input, output), TokenSource::Estimated)
        }
    }
}

/// Records the tokens of (this part of) the run, and settles its budget reservations with their cost;
/// returns its `usage` event.
async fn record_usage(
    transaction: &mut sqlx::PgConnection,
    inner: &Inner,
    plan: &TurnPlan,
    model: &str,
    tokens: TokenUsage,
    source: TokenSource,
) -> Result<EventKind, sqlx::Error> {
    let known = plan.model_info(&inner.providers.catalog, model);
    let cost = usage::price(known.as_deref(), plan.provider_name, model, &tokens);
    // Only a model something knows is a label: a name from a client could grow the series without end.
    crate::metrics::model_usage(
        plan.tenant_id,
        plan.provider_name,
        known.as_ref().map_or("other", |_| model),
        &tokens,
        cost,
    );
    let entry = UsageEntry {
        operation: usage::Operation::Chat,
        run_id: Some(plan.run_id),
        api_key_id: plan.api_key_id,
        end_user: plan.end_user,
        provider: plan.provider_name,
        model,
        tokens,
        cost_usd: cost,
        source,
        is_byok: plan.is_byok,
        trace_id: crate::telemetry::current_trace_id(),
    };
    // Settled in the same statement as the record: a turn under budgets pays no round trip for it.
    usage::record_settling(transaction, &entry, &plan.budgets, &tools::audit_by(plan), plan.run_id).await?;
    let narrow = |count: u64| u32::try_from(count).unwrap_or(u32::MAX);
    Ok(EventKind::Usage {
        input_tokens: narrow(tokens.input),
        output_tokens: narrow(tokens.output),
        total_tokens: narrow(tokens.input.saturating_add(tokens.output)),
        cached_tokens: narrow(tokens.cached_input),
        reasoning_tokens: narrow(tokens.reasoning),
        cost_usd: cost,
        estimated: source == TokenSource::Estimated,
    })
}

/// Records a pause for approval in one transaction: the usage so far, the pause event, the run's state
/// (its tool steps, to resume from) and status. No message yet: the answer is not finished.
async fn record_pause(
    inner: &Inner,
    plan: &TurnPlan,
    log: &mut EventLog,
    answer: &Answer,
    calls: &[ToolCallId],
) -> Result<(), sqlx::Error> {
    let mut transaction = db::begin_tenant_patiently(&inner.db, plan.tenant_id).await?;
    if ended_elsewhere(&mut transaction, plan, log).await? {
        return Ok(());
    }
    let mut closing = Vec::new();
    match answer.reported_usage {
        Some(tokens) => closing
            .push(record_usage(&mut transaction, inner, plan, &answer.model, tokens, TokenSource::Provider).await?),
        None => plan.budgets.settle(&mut transaction, &tools::audit_by(plan), plan.run_id, None).await?,
    }
    closing.extend(tools::awaiting_events(&answer.transcript));
    closing.push(EventKind::RunAwaitingApproval { tool_call_ids: calls.to_vec() });
    let run_webhooks = crate::webhooks::of_run(plan.run_id, Some(plan.session_id), &closing);
    crate::webhooks::store::enqueue(&mut transaction, plan.tenant_id, &run_webhooks).await?;
    let closing = log.write_closing(&mut transaction, closing).await?;
    let state = serde_json::to_value(&answer.transcript).expect("a transcript serialises");
    // The steps after the approval are counted against the same buckets, from nothing: the estimate the
    // door reserved is corrected to the steps so far below.
    let after_resuming = plan
        .rate_reservation
        .as_ref()
        .map(|reservation| crate::rate_limits::TokenReservation { estimated: 0, ..reservation.clone() });
    crate::runs::store::pause(&mut transaction, plan.run_id, &state, after_resuming.as_ref(), log.last_seq_closed())
        .await?;
    transaction.commit().await?;
    log.publish_closing(closing);
    settle_rate_limits(inner, plan, answer.reported_usage.unwrap_or_default());
    Ok(())
}

/// Records the outcome in one transaction: the answer as far as it got, the usage, the closing events and
/// the run's status. Followers see the closing events only after that commit.
async fn record(
    inner: &Inner,
    plan: &TurnPlan,
    log: &mut EventLog,
    answer: &Answer,
    ending: &Ending,
) -> Result<(), sqlx::Error> {
    let (tokens, source) = usage_of(answer, ending);
    let keep_message = matches!(ending, Ending::Completed) || !answer.text.is_empty();
    let finish_reason = matches!(ending, Ending::Completed).then(|| answer.finish_reason());
    let message_id = keep_message.then(MessageId::new);
    let provider = plan.provider_name;

    // The passages the answer cites (with where), apart from those it was given and did not cite.
    let sources = retrieval::citations::attribute(&answer.text, &answer.citations);

    let mut transaction = db::begin_tenant_patiently(&inner.db, plan.tenant_id).await?;
    if ended_elsewhere(&mut transaction, plan, log).await? {
        return Ok(());
    }
    let message = match message_id {
        Some(id) => Some(keep_answer(&mut transaction, plan, answer, finish_reason, id, tokens, &sources).await?),
        None => None,
    };
    let mut closing = Vec::new();
    if keep_message && !answer.citations.is_empty() {
        closing.push(EventKind::Citations { citations: sources.cited, retrieved: sources.retrieved });
    }
    if tokens.input > 0 || tokens.output > 0 {
        closing.push(record_usage(&mut transaction, inner, plan, &answer.model, tokens, source).await?);
    } else {
        plan.budgets.settle(&mut transaction, &tools::audit_by(plan), plan.run_id, None).await?;
    }
    if plan.workspace_id.is_some()
        && let Some(submitted) = submit_changeset(&mut transaction, &tools::audit_by(plan), plan.run_id).await?
    {
        closing.push(submitted);
    }
    let (status, error) = match ending {
        Ending::Completed => {
            let message_id = message_id.expect("a completed run keeps its answer");
            closing.push(EventKind::RunCompleted { message_id, finish_reason });
            (RunStatus::Succeeded, None)
        }
        Ending::Failed { code, message } => {
            closing.push(EventKind::RunFailed { code: code.clone(), message: message.clone(), message_id });
            (RunStatus::Failed, Some((code.as_str(), message.as_str())))
        }
        Ending::Cancelled => {
            closing.push(EventKind::RunCancelled { message_id });
            (RunStatus::Cancelled, None)
        }
    };
    close_open_tool_calls(&mut transaction, plan).await?;
    let run_webhooks = crate::webhooks::of_run(plan.run_id, Some(plan.session_id), &closing);
    crate::webhooks::store::enqueue(&mut transaction, plan.tenant_id, &run_webhooks).await?;
    let closing = log.write_closing(&mut transaction, closing).await?;
    let millis = |since: Instant| i32::try_from(since.duration_since(plan.accepted_at).as_millis()).unwrap_or(i32::MAX);
    let run = crate::runs::store::finish(
        &mut transaction,
        plan.run_id,
        &RunOutcome {
            status,
            error,
            finish_reason,
            provider,
            model: &answer.model,
            first_token_ms: answer.first_token_at.map(millis),
            latency_ms: millis(Instant::now()),
            last_seq: Some(log.last_seq_closed()),
        },
    )
    .await?;
    // Kept for whoever follows the run here, which spares them a transaction after its end; the totals
    // only when someone waits for them.
    let totals = match &run {
        Some(_) if log.live().outcome_wanted() => {
            Some(crate::usage::store::run_totals(&mut transaction, plan.run_id).await?)
        }
        _ => None,
    };
    let kept = run.map(|run| super::hub::Kept { run, message, totals });
    transaction.commit().await?;
    if let Some(kept) = kept {
        log.live().keep(kept);
    }
    // Counted before the closing events go out: a client that saw the run end finds it in the metrics.
    let kind = if plan.workspace_id.is_some() { RunKind::Agent } else { RunKind::Chat };
    let since_start = |at: Instant| at.duration_since(plan.accepted_at);
    let first_token = answer.first_token_at.map(since_start);
    let total = since_start(Instant::now());
    crate::metrics::run_ended(plan.tenant_id, kind.as_str(), status.as_str(), provider, first_token, total);
    crate::metrics::turn_added(kind.as_str(), total.saturating_sub(answer.waited));
    crate::metrics::citation_markers_dropped(sources.dropped);
    log.publish_closing(closing);
    settle_rate_limits(inner, plan, tokens);
    Ok(())
}

/// The assistant's message as far as the answer got, under its question; `finish_reason` is the
/// completed answer's (none: the answer is incomplete).
async fn keep_answer(
    transaction: &mut sqlx::PgConnection,
    plan: &TurnPlan,
    answer: &Answer,
    finish_reason: Option<FinishReason>,
    id: MessageId,
    tokens: TokenUsage,
    sources: &retrieval::citations::Attributed,
) -> Result<conversations::Message, sqlx::Error> {
    let tokens_i32 = |tokens: u64| i32::try_from(tokens).unwrap_or(i32::MAX);
    let message = NewMessage {
        session_id: plan.session_id,
        run_id: Some(plan.run_id),
        role: Role::Assistant,
        content: &answer.text,
        status: if finish_reason.is_some() { MessageStatus::Complete } else { MessageStatus::Incomplete },
        finish_reason,
        input_tokens: Some(tokens_i32(tokens.input)),
        output_tokens: Some(tokens_i32(tokens.output)),
        model_used: Some(&answer.model),
        provider_used: Some(plan.provider_name),
        is_byok: Some(plan.is_byok),
        tool_calls: answer.recorded_tool_calls(),
        citations: Some(serde_json::json!(sources.cited)),
        retrieved: Some(serde_json::json!(sources.retrieved)),
    };
    conversations::store::insert_message_with_id(transaction, plan.tenant_id, id, &message, plan.question_id).await
}

/// When a run ends, no tool call of it stays open. A pass-through turn runs no tools of its own (its
/// caller's are answered to the caller), so it has none to close.
async fn close_open_tool_calls(transaction: &mut sqlx::PgConnection, plan: &TurnPlan) -> Result<(), sqlx::Error> {
    if matches!(plan.mode, TurnMode::PassThrough(_)) {
        return Ok(());
    }
    crate::tools::calls::close_open(transaction, plan.run_id).await
}

/// Queues the correction of the tokens the rate limits reserved at the door to what the run used, once
/// its followers have its end: written with the event writer's next tick, on nobody's path.
fn settle_rate_limits(inner: &Inner, plan: &TurnPlan, tokens: TokenUsage) {
    let Some(reservation) = &plan.rate_reservation else { return };
    inner.rate_corrections.queue(reservation, tokens.input.saturating_add(tokens.output));
}

/// An agent run's changeset, `draft` while the run works, awaits review once the run ends (however it
/// ends), in the transaction that ends it; returns its `changeset.pending_review` event, to go before the
/// terminal one.
pub(super) async fn submit_changeset(
    transaction: &mut sqlx::PgConnection,
    by: &crate::audit::Recorder<'_>,
    run_id: crate::ids::RunId,
) -> Result<Option<EventKind>, sqlx::Error> {
    use crate::workspaces::changesets::{Status, store};
    let Some(changeset) = store::for_run(&mut *transaction, run_id).await? else { return Ok(None) };
    let locked = store::lock(&mut *transaction, changeset.id).await?;
    let Some(changeset) = locked.filter(|changeset| changeset.status == Status::Draft) else { return Ok(None) };
    store::set_status(&mut *transaction, changeset.id, Status::PendingReview, None).await?;
    let entry = crate::audit::AuditEntry::new("changeset.submitted", "changeset", changeset.id.to_string())
        .with_details(serde_json::json!({
            "workspace_id": changeset.workspace_id, "run_id": run_id, "from": Status::Draft,
            "to": Status::PendingReview, "paths": [], "has_comment": false,
        }));
    crate::audit::store::append(&mut *transaction, by, &entry).await?;
    let transition =
        crate::runs::events::ChangesetTransition { changeset_id: changeset.id, comment: None, paths: Vec::new() };
    Ok(Some(EventKind::ChangesetPendingReview(transition)))
}
