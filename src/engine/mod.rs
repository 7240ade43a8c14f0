//! The orchestration engine: accepts a turn, runs it in the background, and lets any door follow, wait
//! for or cancel it. It knows nothing of HTTP; every door drives it through this API.

mod agents;
pub mod event_log;
pub mod events;
mod follow;
mod history;
pub mod hub;
mod request;
mod resolve;
mod tools;
mod turn;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use follow::EventStream;
pub use resolve::ProviderSetup;

use crate::auth::TenantContext;
use crate::conversations::store::NewMessage;
use crate::conversations::{self, Message};
use crate::db;
use crate::ids::{RunId, SessionId, TenantId, ToolCallId};
use crate::prompts::Prompts;
use crate::retrieval::Retriever;
use crate::runs::store::{NewRun, RunOutcome};
use crate::runs::{self, Run, RunKind, RunStatus};
use crate::tools::Toolbox;
use crate::tools::calls::{self, ToolCallRecord};
use event_log::EventLog;
use events::{EventKind, RunEvent};
use hub::Hub;

const MAX_MESSAGE_CHARS: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("no such conversation")]
    SessionNotFound,
    #[error("no such run")]
    RunNotFound,
    #[error("the run has already ended")]
    RunEnded,
    #[error("no such tool call")]
    ToolCallNotFound,
    #[error("this tool call is not waiting for a decision")]
    ToolCallDecided,
    #[error("the run is not waiting for an approval")]
    RunNotWaiting,
    #[error("no such workspace")]
    WorkspaceNotFound,
    /// Stored state that cannot be read: a bug or a damaged row, never the caller's fault.
    #[error("{0}")]
    Internal(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Writes a run's first event (in the caller's transaction, committed with the run's start).
async fn record_start(
    transaction: &mut sqlx::PgConnection,
    tenant_id: TenantId,
    run_id: RunId,
    session_id: SessionId,
    resolved: &resolve::Resolved,
) -> Result<RunEvent, sqlx::Error> {
    let started = RunEvent {
        run_id,
        seq: 1,
        kind: EventKind::RunStarted {
            session_id: Some(session_id),
            provider: resolved.provider_name.to_owned(),
            model: resolved.model.clone(),
        },
    };
    runs::store::insert_events(transaction, tenant_id, std::slice::from_ref(&started)).await?;
    Ok(started)
}

/// Registers the run as executed here, publishes its first event, and returns its log for the rest.
fn go_live(inner: &Inner, tenant_id: TenantId, started: RunEvent) -> EventLog {
    let run_id = started.run_id;
    let live = inner.hub.register(run_id, tenant_id, started.seq);
    live.publish(started);
    EventLog::new(run_id, tenant_id, live, inner.db.clone(), 2)
}

/// A validated user message for a turn.
#[derive(Debug, Clone)]
pub struct TurnRequest {
    pub content: String,
    pub model: Option<String>,
    pub mode: TurnMode,
}

/// What a turn is asked to do.
#[derive(Debug, Clone, Default)]
pub enum TurnMode {
    /// Switchboard's assistant: the conversation's history, retrieval, the system prompt, and the
    /// tenant's tools under its policy.
    #[default]
    Assistant,
    /// The caller's own conversation (the OpenAI-compatible door): its system prompt, messages and tools
    /// go to the model as given; tool calls are returned to the caller, not run.
    PassThrough(Arc<GivenConversation>),
}

#[derive(Debug, Clone, Default)]
pub struct GivenConversation {
    pub system: String,
    /// Oldest first, ending with the message this turn answers.
    pub messages: Vec<crate::providers::ChatMessage>,
    pub tools: Vec<crate::providers::ToolSpec>,
    pub max_output_tokens: Option<u32>,
}

impl TurnRequest {
    pub fn parse(content: String, model: Option<String>) -> Result<Self, EngineError> {
        if content.trim().is_empty() {
            return Err(EngineError::Invalid("content must not be empty".to_owned()));
        }
        if content.chars().count() > MAX_MESSAGE_CHARS {
            return Err(EngineError::Invalid(format!("content must be at most {MAX_MESSAGE_CHARS} characters")));
        }
        if model.as_deref().is_some_and(|model| model.trim().is_empty() || model.len() > 200) {
            return Err(EngineError::Invalid("model must be 1 to 200 characters".to_owned()));
        }
        Ok(Self { content, model, mode: TurnMode::Assistant })
    }

    #[must_use]
    pub fn with_mode(mut self, mode: TurnMode) -> Self {
        self.mode = mode;
        self
    }
}

/// A turn that was accepted: its user message is recorded and its run is under way.
#[derive(Debug, Clone)]
pub struct StartedTurn {
    pub run: Run,
    pub user_message: Message,
}

/// A finished turn: the run and the assistant's message (absent when nothing was produced).
#[derive(Debug, Clone)]
pub struct TurnOutcome {
    pub run: Run,
    pub message: Option<Message>,
}

#[derive(Debug)]
struct Inner {
    db: PgPool,
    hub: Hub,
    tasks: TaskTracker,
    prompts: Prompts,
    providers: ProviderSetup,
    retriever: Retriever,
    tools: Toolbox,
    /// Cancelled at shutdown, to stop background loops.
    stopping: CancellationToken,
    /// Wakes this process's workers when it queues an agent run.
    work_queued: tokio::sync::Notify,
}

#[derive(Debug, Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl Engine {
    pub fn new(db: PgPool, prompts: Prompts, providers: ProviderSetup, retriever: Retriever, tools: Toolbox) -> Self {
        let inner = Inner {
            db,
            retriever,
            tools,
            hub: Hub::default(),
            tasks: TaskTracker::new(),
            prompts,
            providers,
            stopping: CancellationToken::new(),
            work_queued: tokio::sync::Notify::new(),
        };
        Self { inner: Arc::new(inner) }
    }

    /// Records the user's message and a new run, then runs the turn in the background. The message is
    /// committed before any model is called, so no failure can lose it.
    pub async fn start_turn(
        &self,
        context: &TenantContext,
        session_id: SessionId,
        request: TurnRequest,
    ) -> Result<StartedTurn, EngineError> {
        let tenant_id = context.tenant_id();
        let run_id = RunId::new();
        let accepted_at = Instant::now();

        let mut transaction = db::begin_tenant(&self.inner.db, tenant_id).await?;
        conversations::visible_session(&mut transaction, context, session_id)
            .await?
            .ok_or(EngineError::SessionNotFound)?;
        let resolved =
            resolve::resolve(&mut transaction, &self.inner.providers, tenant_id, request.model.as_deref()).await?;
        let run = runs::store::insert(
            &mut transaction,
            tenant_id,
            &NewRun {
                id: run_id,
                session_id: Some(session_id),
                kind: RunKind::Chat,
                provider: resolved.provider_name,
                model: &resolved.model,
                is_byok: resolved.is_byok,
                trace_id: context.request_id(),
            },
        )
        .await?;
        let user_message = conversations::store::insert_message(
            &mut transaction,
            tenant_id,
            &NewMessage::user(session_id, run_id, &request.content),
        )
        .await?;
        conversations::store::touch_session(
            &mut transaction,
            session_id,
            &conversations::title_from_message(&request.content),
        )
        .await?;
        let started = record_start(&mut transaction, tenant_id, run_id, session_id, &resolved).await?;
        transaction.commit().await?;
        let log = go_live(&self.inner, tenant_id, started);
        let plan = turn::TurnPlan {
            run_id,
            tenant_id,
            session_id,
            api_key_id: context.actor().api_key_id(),
            provider: resolved.provider,
            provider_name: resolved.provider_name,
            is_byok: resolved.is_byok,
            model: resolved.model,
            fallback_model: resolved.fallback_model,
            accepted_at,
            trace_id: context.request_id().map(str::to_owned),
            mode: request.mode,
            workspace_id: None,
        };
        self.inner.tasks.spawn(turn::execute(Arc::clone(&self.inner), plan, log, None));
        Ok(StartedTurn { run, user_message })
    }

    /// The run's events after `after`, then its live events until it ends.
    pub async fn follow(&self, context: &TenantContext, run_id: RunId, after: i64) -> Result<EventStream, EngineError> {
        let tenant_id = context.tenant_id();
        // The hub answers for the tenant; only a widget user's reach needs the database.
        if context.end_user().is_some() {
            self.run(context, run_id).await?;
        }
        if let Some(live) = self.inner.hub.get(run_id, tenant_id) {
            return Ok(follow::live_with_history(self.inner.db.clone(), run_id, live, after));
        }
        self.run(context, run_id).await?;
        Ok(follow::stored(self.inner.db.clone(), tenant_id, run_id, after))
    }

    /// Waits for the run to end and returns it with its answer.
    pub async fn wait(&self, context: &TenantContext, run_id: RunId) -> Result<TurnOutcome, EngineError> {
        let mut events = self.follow(context, run_id, 0).await?;
        let mut message_id = None;
        while let Some(event) = events.next().await {
            match event.kind {
                EventKind::RunCompleted { message_id: id } => message_id = Some(id),
                EventKind::RunFailed { message_id: id, .. } | EventKind::RunCancelled { message_id: id } => {
                    message_id = id;
                }
                _ => {}
            }
        }
        let mut transaction = db::begin_tenant(&self.inner.db, context.tenant_id()).await?;
        let run = runs::store::get(&mut transaction, run_id).await?.ok_or(EngineError::RunNotFound)?;
        let message = match message_id {
            Some(id) => conversations::store::get_message(&mut transaction, id).await?,
            None => None,
        };
        transaction.commit().await?;
        Ok(TurnOutcome { run, message })
    }

    /// The run, if this context may see it (a widget user: only runs of their own conversations).
    pub async fn run(&self, context: &TenantContext, run_id: RunId) -> Result<Run, EngineError> {
        let mut transaction = db::begin_tenant(&self.inner.db, context.tenant_id()).await?;
        let run = runs::store::get(&mut transaction, run_id).await?.ok_or(EngineError::RunNotFound)?;
        if context.end_user().is_some() {
            let session = match run.session_id {
                Some(session_id) => conversations::visible_session(&mut transaction, context, session_id).await?,
                None => None,
            };
            session.ok_or(EngineError::RunNotFound)?;
        }
        transaction.commit().await?;
        Ok(run)
    }

    /// Stops a run and waits until its cancellation is recorded. A run this process is not executing
    /// (its process died) is closed as cancelled directly.
    pub async fn cancel(&self, context: &TenantContext, run_id: RunId) -> Result<TurnOutcome, EngineError> {
        self.run(context, run_id).await?;
        if let Some(live) = self.inner.hub.get(run_id, context.tenant_id()) {
            live.cancel.cancel();
            return self.wait(context, run_id).await;
        }
        let run = self.run(context, run_id).await?;
        if run.status.is_terminal() {
            return Err(EngineError::RunEnded);
        }
        self.close_abandoned(context.tenant_id(), &run, EventKind::RunCancelled { message_id: None }).await?;
        self.wait(context, run_id).await
    }

    /// Closes a run nobody executes any more, with `closing` as its last event.
    async fn close_abandoned(&self, tenant_id: TenantId, run: &Run, closing: EventKind) -> Result<(), EngineError> {
        let (status, error) = match &closing {
            EventKind::RunFailed { code, message, .. } => (RunStatus::Failed, Some((code.as_str(), message.as_str()))),
            _ => (RunStatus::Cancelled, None),
        };
        let mut transaction = db::begin_tenant(&self.inner.db, tenant_id).await?;
        // Locked: a decision resuming the run and this closing it are ordered, never both.
        let Some(run) = runs::store::get_for_update(&mut transaction, run.id).await? else { return Ok(()) };
        let run = &run;
        let seq = runs::store::last_seq(&mut transaction, run.id).await? + 1;
        calls::close_open(&mut transaction, run.id).await?;
        let outcome = RunOutcome {
            status,
            error,
            provider: run.provider.as_deref().unwrap_or_default(),
            model: run.model.as_deref().unwrap_or_default(),
            first_token_ms: run.first_token_ms,
            latency_ms: run.latency_ms.unwrap_or_default(),
        };
        if runs::store::finish(&mut transaction, run.id, &outcome).await? {
            let event = RunEvent { run_id: run.id, seq, kind: closing };
            runs::store::insert_events(&mut transaction, tenant_id, &[event]).await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    /// Closes, as failed with `interrupted`, the runs whose executor stopped proving it is alive (its
    /// process died); returns how many. Safe to run from every process sharing the database.
    pub async fn sweep_stale_runs(&self, stale_after: Duration) -> Result<usize, EngineError> {
        let mut transaction = self.inner.db.begin().await?;
        let stale = runs::store::stale(&mut transaction, stale_after).await?;
        transaction.commit().await?;
        let mut closed = 0;
        for (run_id, tenant_id) in stale {
            if self.inner.hub.get(run_id, tenant_id).is_some() {
                continue;
            }
            let mut transaction = db::begin_tenant(&self.inner.db, tenant_id).await?;
            let run = runs::store::get(&mut transaction, run_id).await?;
            transaction.commit().await?;
            let Some(run) = run.filter(|run| !run.status.is_terminal()) else { continue };
            let closing = EventKind::RunFailed {
                code: "interrupted".to_owned(),
                message: "the process running this turn stopped before it finished".to_owned(),
                message_id: None,
            };
            self.close_abandoned(tenant_id, &run, closing).await?;
            tracing::warn!(%run_id, %tenant_id, "closed a run whose process stopped");
            closed += 1;
        }
        Ok(closed)
    }

    /// Sweeps stale runs now and then every `every`, until shutdown.
    pub fn start_sweeper(&self, every: Duration, stale_after: Duration) {
        let engine = self.clone();
        self.inner.tasks.spawn(async move {
            loop {
                if let Err(error) = engine.sweep_stale_runs(stale_after).await {
                    tracing::warn!(%error, "could not sweep stale runs");
                }
                tokio::select! {
                    () = engine.inner.stopping.cancelled() => return,
                    () = tokio::time::sleep(every) => {}
                }
            }
        });
    }

    /// A person's decision on a call waiting for approval. Once no call of its run waits any more, the
    /// run resumes here (whichever process paused it, however long ago): approved calls run, denied
    /// ones are reported to the model, and the run's events continue.
    pub async fn decide_tool_call(
        &self,
        context: &TenantContext,
        id: ToolCallId,
        approve: bool,
    ) -> Result<ToolCallRecord, EngineError> {
        let tenant_id = context.tenant_id();
        let decided_by =
            context.actor().id().map_or_else(|| context.actor().kind().to_owned(), |id| format!("api_key:{id}"));
        let mut transaction = db::begin_tenant(&self.inner.db, tenant_id).await?;
        let Some(waiting) = calls::get(&mut transaction, id).await? else { return Err(EngineError::ToolCallNotFound) };
        if self.run(context, waiting.run_id).await.is_err() {
            return Err(EngineError::ToolCallNotFound);
        }
        if waiting.status != calls::CallStatus::AwaitingApproval {
            return Err(EngineError::ToolCallDecided);
        }
        // The run's row is the lock that orders decisions on its calls (two people deciding its last
        // two calls at once: exactly one of them resumes it).
        let run =
            runs::store::get_for_update(&mut transaction, waiting.run_id).await?.ok_or(EngineError::RunNotFound)?;
        if run.status.is_terminal() {
            return Err(EngineError::RunEnded);
        }
        // Until the pause is recorded the run is not waiting for anyone (its calls are only announced
        // with the pause); the row lock orders this check against the pause.
        if run.status != RunStatus::AwaitingApproval {
            return Err(EngineError::RunNotWaiting);
        }
        let Some(record) = calls::decide(&mut transaction, id, approve, &decided_by).await? else {
            return Err(EngineError::ToolCallDecided);
        };
        let action = if approve { "tool_call.approved" } else { "tool_call.denied" };
        let entry = crate::audit::AuditEntry::new(action, "tool_call", id.to_string())
            .with_details(serde_json::json!({ "run_id": record.run_id, "name": record.name }));
        crate::audit::record(&mut transaction, context, &entry).await?;
        let still_waiting = calls::for_run(&mut transaction, record.run_id)
            .await?
            .iter()
            .any(|call| call.status == calls::CallStatus::AwaitingApproval);
        let state =
            if still_waiting { None } else { runs::store::claim_paused(&mut transaction, record.run_id).await? };
        let run = runs::store::get(&mut transaction, record.run_id).await?.ok_or(EngineError::RunNotFound)?;
        let next_seq = runs::store::last_seq(&mut transaction, record.run_id).await? + 1;
        transaction.commit().await?;
        if let Some(state) = state {
            self.resume(context, &run, state, next_seq).await?;
        }
        Ok(record)
    }

    async fn resume(
        &self,
        context: &TenantContext,
        run: &Run,
        state: serde_json::Value,
        next_seq: i64,
    ) -> Result<(), EngineError> {
        let tenant_id = context.tenant_id();
        let transcript: tools::Transcript = serde_json::from_value(state)
            .map_err(|error| EngineError::Internal(format!("the paused run's state is unreadable: {error}")))?;
        let session_id = run.session_id.ok_or(EngineError::SessionNotFound)?;
        let mut transaction = db::begin_tenant(&self.inner.db, tenant_id).await?;
        let resolved =
            resolve::resolve(&mut transaction, &self.inner.providers, tenant_id, run.model.as_deref()).await?;
        let workspace_id = runs::store::agent_work(&mut transaction, run.id).await?.map(|(id, _)| id);
        transaction.commit().await?;
        let live = self.inner.hub.register(run.id, tenant_id, next_seq);
        let log = EventLog::new(run.id, tenant_id, live, self.inner.db.clone(), next_seq);
        let plan = turn::TurnPlan {
            run_id: run.id,
            tenant_id,
            session_id,
            // The key that started the run pays for it and acts in its audit entries, not the approver.
            api_key_id: transcript.api_key_id,
            provider: resolved.provider,
            provider_name: resolved.provider_name,
            is_byok: resolved.is_byok,
            model: resolved.model,
            fallback_model: resolved.fallback_model,
            accepted_at: Instant::now(),
            trace_id: run.trace_id.clone(),
            mode: TurnMode::Assistant,
            workspace_id,
        };
        self.inner.tasks.spawn(turn::execute(Arc::clone(&self.inner), plan, log, Some(transcript)));
        Ok(())
    }

    /// Lets running turns finish for up to `grace`, then cancels the rest and waits for them to record it.
    /// True when every turn ended by itself within the grace period.
    pub async fn shutdown(&self, grace: Duration) -> bool {
        self.inner.stopping.cancel();
        self.inner.tasks.close();
        if tokio::time::timeout(grace, self.inner.tasks.wait()).await.is_err() {
            tracing::warn!("cancelling the turns still running at shutdown");
            self.inner.hub.cancel_all();
            self.inner.tasks.wait().await;
            return false;
        }
        true
    }
}
