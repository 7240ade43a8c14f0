//! The orchestration engine: accepts a turn, runs it in the background, and lets any door follow, wait
//! for or cancel it. It knows nothing of HTTP; every door drives it through this API.

mod agents;
mod approvals;
mod checks;
pub mod event_log;
mod event_writer;
mod follow;
mod history;
pub mod hub;
mod notify;
mod once;
mod plan;
mod request;
mod reserving;
mod resolve;
pub mod routing;
mod sweeper;
mod tools;
mod transcript;
mod turn;
mod turn_tools;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;

pub use follow::EventStream;
pub use resolve::ProviderSetup;

use crate::auth::context::TenantContext;
use crate::background::Background;
use crate::budgets::{Payer, RunBudgets};
use crate::collections;
use crate::conversations::store::NewMessage;
use crate::conversations::{self, Message};
use crate::db;
use crate::ids::{RunId, SessionId, TenantId};
use crate::prompts::Prompts;
use crate::rate_limits::TokenReservation;
use crate::retrieval::Retriever;
use crate::runs::events::{EventKind, RunEvent};
use crate::runs::store::NewRun;
use crate::runs::{self, Run, RunKind, RunStatus};
use crate::tools::Toolbox;
use event_log::EventLog;
use hub::Hub;
use plan::TurnPlan;

const MAX_MESSAGE_CHARS: usize = 100_000;
/// How long a cancel waits for another process to end the run before it asks again.
const CANCEL_ASK_AGAIN: Duration = Duration::from_secs(2);
/// How long it keeps asking a live process before it closes the run itself (that process does not hear:
/// its listener is down, or it is an older version); the executor then learns it at its next heartbeat.
/// Long enough for a process under load to record the end it was asked for: a run closed here while its
/// executor is still recording loses the answer that executor had not yet stored.
const CANCEL_PATIENCE: Duration = Duration::from_secs(30);

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
    #[error("this tool call is not waiting for a person (decided or answered already)")]
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
    Idempotency(#[from] crate::idempotency::IdempotencyError),
    #[error(transparent)]
    BudgetExhausted(#[from] crate::budgets::BudgetExhausted),
    /// The request names a model this tenant cannot use.
    #[error(transparent)]
    ModelNotFound(#[from] routing::UnknownModel),
    /// The request names a collection it may not search, or none that exists.
    #[error(transparent)]
    Collection(#[from] crate::collections::CollectionError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl From<conversations::ConversationError> for EngineError {
    fn from(error: conversations::ConversationError) -> Self {
        use conversations::ConversationError;
        match error {
            ConversationError::NotFound => Self::SessionNotFound,
            ConversationError::Collection(error) => Self::Collection(error),
            ConversationError::Database(error) => Self::Database(error),
            invalid => Self::Invalid(invalid.to_string()),
        }
    }
}

/// The number of a run's first event (`run.started`).
const FIRST_SEQ: i64 = 1;
/// The event numbers a run has reserved when it starts: its answer streams without waiting on the database.
const RESERVED_AT_START: i64 = FIRST_SEQ + event_log::RESERVE_AHEAD;

/// What [`insert_turn`] records.
struct NewTurn<'a> {
    session_id: SessionId,
    /// Where its question goes: after the active leaf, or after a message known (a new conversation's).
    after: conversations::store::After,
    run_id: RunId,
    request: &'a TurnRequest,
    resolved: &'a resolve::Resolved,
    executor: runs::ExecutorId,
}

/// The rows that start a turn, in its first transaction: the run, the question (or the message answered
/// again), the conversation touched, and the run's first event.
async fn insert_turn(
    transaction: &mut sqlx::PgConnection,
    context: &TenantContext,
    turn: NewTurn<'_>,
    collection_ids: Option<Vec<uuid::Uuid>>,
) -> Result<(Run, Message, RunEvent), EngineError> {
    let NewTurn { session_id, after, run_id, request, resolved, executor } = turn;
    let tenant_id = context.tenant_id();
    let trace_id = crate::telemetry::current_trace_id();
    let run = runs::store::insert(
        &mut *transaction,
        tenant_id,
        &NewRun {
            id: run_id,
            session_id: Some(session_id),
            kind: RunKind::Chat,
            provider: resolved.provider_name,
            model: &resolved.model,
            is_byok: resolved.is_byok,
            request_id: context.request_id(),
            trace_id: trace_id.as_deref(),
            executor,
            collection_ids,
            reserved_seq: RESERVED_AT_START,
            request: request.kept_request.as_ref(),
        },
    )
    .await?;
    let question = NewMessage::user(session_id, run_id, &request.content);
    let title = conversations::title_from_message(&request.content);
    let user_message = match request.branch {
        Branch::Continue => {
            conversations::store::insert_question(&mut *transaction, tenant_id, &question, after, &title).await?
        }
        Branch::Edit(edited) => {
            conversations::store::insert_edit(&mut *transaction, tenant_id, edited, &question, &title)
                .await?
                .ok_or_else(|| {
                    EngineError::Invalid("only a user's message of this conversation can be edited".into())
                })?
        }
        Branch::Regenerate(answered) => {
            conversations::store::answer_again(&mut *transaction, session_id, answered, run_id, &title)
                .await?
                .ok_or_else(|| {
                    EngineError::Invalid("only a user's message of this conversation can be answered again".into())
                })?
        }
    };
    let started = record_start(&mut *transaction, tenant_id, run_id, session_id, resolved).await?;
    Ok((run, user_message, started))
}

/// Writes a run's first event (in the caller's transaction, committed with the run's start). The numbers
/// of the events after it were reserved with the run's row (`NewRun::reserved_seq`), so that its answer
/// streams without waiting on the database.
async fn record_start(
    transaction: &mut sqlx::PgConnection,
    tenant_id: TenantId,
    run_id: RunId,
    session_id: SessionId,
    resolved: &resolve::Resolved,
) -> Result<RunEvent, sqlx::Error> {
    let started = RunEvent {
        run_id,
        seq: FIRST_SEQ,
        kind: EventKind::RunStarted {
            session_id: Some(session_id),
            provider: resolved.provider_name.to_owned(),
            model: resolved.model.clone(),
        },
    };
    // No notice for followers elsewhere: nobody can follow the run before this commits (its id is not
    // known until then).
    let entry = runs::coalesce::Entry::Event(started.clone());
    runs::store::insert_entries(&mut *transaction, tenant_id, std::slice::from_ref(&entry)).await?;
    Ok(started)
}

/// Gives a rate-limit reservation back whole (its turn never ran); a failure is logged: the buckets
/// refill by themselves within the minute.
async fn rate_limits_give_back(pool: &PgPool, reservation: &TokenReservation) {
    if let Err(error) = crate::rate_limits::settle_tokens(pool, reservation, 0).await {
        tracing::warn!(%error, "could not give back a rate-limit reservation");
    }
}

/// Registers the run as executed here, publishes its first event, and returns its log for the rest.
fn go_live(inner: &Inner, tenant_id: TenantId, started: RunEvent) -> EventLog {
    let run_id = started.run_id;
    let (first, reserved_through) = (started.seq, RESERVED_AT_START);
    let live = inner.hub.register(run_id, tenant_id, first, first);
    live.publish(started);
    EventLog::new(live, inner.db.clone(), first + 1, reserved_through)
}

/// A validated user message for a turn.
#[derive(Debug, Clone)]
pub struct TurnRequest {
    pub content: String,
    pub model: Option<String>,
    pub mode: TurnMode,
    /// The tokens the rate limits reserved for this turn at its door: corrected to what the turn used
    /// once it is recorded, given back whole if it never starts.
    pub rate_reservation: Option<TokenReservation>,
    /// The collections (by name) the turn may search; `None`: all its caller and conversation may.
    pub collections: Option<Vec<String>>,
    /// Where the question goes in the conversation's tree of messages.
    pub branch: Branch,
    /// The request as its door keeps it on the run (the Responses API's), written with the run's row.
    pub kept_request: Option<serde_json::Value>,
    /// Whether the door tells its client of the start before the answer is whole (see [`Receipt`]).
    pub receipt: Receipt,
}

/// Whether a door tells its client that a turn started (an id it can come back with: its message, its
/// run, its response) before the answer is whole. When it does not (`/v1/chat/completions` and
/// `/v1/messages`, whose clients get the answer or nothing), the start commits without waiting for the
/// disk: it reaches the disk with the run's record at the latest, whose commit waits for it before
/// anyone is told the answer is complete. A PostgreSQL crash in between can lose only a start nobody was
/// told of, with an answer nobody got whole; a crash of Switchboard loses nothing (the start is
/// committed, and the sweeper closes the run). The first token waits for no disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Receipt {
    /// The start is acknowledged to the client: it is on disk before anything else happens.
    #[default]
    AtStart,
    /// Only the answer is: the start reaches the disk with the run's record.
    WithTheAnswer,
}

/// Where a turn's question goes in its conversation's tree of messages (see `conversations`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Branch {
    /// A new message after the active branch's last one.
    #[default]
    Continue,
    /// A new message beside this user message (an edit): the same parent, a branch of its own.
    Edit(crate::ids::MessageId),
    /// No new message: the turn answers this user message again, its answer a sibling of the earlier ones.
    Regenerate(crate::ids::MessageId),
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
    pub options: crate::providers::options::GenerationOptions,
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
        Ok(Self {
            content,
            model,
            mode: TurnMode::Assistant,
            rate_reservation: None,
            collections: None,
            branch: Branch::Continue,
            kept_request: None,
            receipt: Receipt::AtStart,
        })
    }

    /// Places the question elsewhere than after the active branch: an edit, or an answer regenerated.
    #[must_use]
    pub fn on_branch(mut self, branch: Branch) -> Self {
        self.branch = branch;
        self
    }

    /// Limits the turn's retrieval to these collections (by name), within its caller's and its
    /// conversation's.
    #[must_use]
    pub fn in_collections(mut self, names: Option<Vec<String>>) -> Self {
        self.collections = names;
        self
    }

    #[must_use]
    pub fn with_mode(mut self, mode: TurnMode) -> Self {
        self.mode = mode;
        self
    }

    #[must_use]
    pub fn with_rate_reservation(mut self, reservation: TokenReservation) -> Self {
        self.rate_reservation = Some(reservation);
        self
    }

    /// Keeps the door's request on the run, written with it.
    #[must_use]
    pub fn keeping(mut self, request: serde_json::Value) -> Self {
        self.kept_request = Some(request);
        self
    }

    #[must_use]
    pub fn with_receipt(mut self, receipt: Receipt) -> Self {
        self.receipt = receipt;
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
    /// Its tokens and cost over all its model calls, as recorded when it ended.
    pub totals: crate::usage::RunTotals,
}

/// How a door delivers a turn's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The run's events, from its first, live until it ends.
    Stream,
    /// Once the run ends or pauses.
    Wait,
}

/// A new conversation a turn is the first of: the session, and the messages it begins with (the history a
/// request brings along).
#[derive(Debug)]
pub struct NewConversation {
    pub session: conversations::NewSession,
    pub history: Vec<(conversations::Role, String)>,
}

/// The conversation a turn is started in.
enum TurnSession {
    Existing(SessionId),
    New(NewConversation),
}

/// A turn's answer, as every door delivers it (each in its own wire format).
pub enum Answer {
    /// The run's events as they come, and its recorded end.
    Stream(EventStream, Ended),
    /// The run ended: completed, or cancelled (then the message may be absent).
    Finished(TurnOutcome),
    /// The run waits for a person to decide a tool call; it has no answer yet.
    AwaitingApproval(TurnOutcome),
    /// The run failed, with the code and message it recorded.
    Failed(RunFailure),
}

/// A followed run's recorded end, for a door that shows the answer whole once the run completes.
#[derive(Debug, Clone, Default)]
pub struct Ended(Option<Arc<hub::LiveRun>>);

impl Ended {
    /// The answer `message_id`: as the run's closing write kept it when the run ran here (no transaction),
    /// else read.
    pub async fn answer(
        &self,
        pool: &PgPool,
        context: &TenantContext,
        message_id: crate::ids::MessageId,
    ) -> Result<Option<Message>, conversations::ConversationError> {
        if let Some(kept) = self.0.as_ref().and_then(|live| live.answer(message_id)) {
            return Ok(Some(kept));
        }
        conversations::message(pool, context, message_id).await
    }

    /// Asks the run's closing write to keep its totals too, for [`Self::outcome`].
    fn want_outcome(&self) {
        if let Some(live) = &self.0 {
            live.want_outcome();
        }
    }

    /// The whole outcome as the run's closing write kept it, when it ran here and was asked in time.
    fn outcome(&self) -> Option<TurnOutcome> {
        self.0.as_ref()?.outcome()
    }
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Stream(..) => formatter.write_str("Stream(..)"),
            Self::Finished(outcome) => formatter.debug_tuple("Finished").field(outcome).finish(),
            Self::AwaitingApproval(outcome) => formatter.debug_tuple("AwaitingApproval").field(outcome).finish(),
            Self::Failed(failure) => formatter.debug_tuple("Failed").field(failure).finish(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct RunFailure {
    pub run_id: RunId,
    pub code: String,
    pub message: String,
}

#[derive(Debug)]
struct Inner {
    db: PgPool,
    hub: Hub,
    background: Background,
    prompts: Prompts,
    providers: ProviderSetup,
    retriever: Retriever,
    tools: Toolbox,
    /// Wakes this process's workers when it queues an agent run.
    work_queued: tokio::sync::Notify,
    /// This process as the executor of its runs, alive to every other process while it holds its lock.
    presence: runs::executor::Presence,
    /// Wakes followers here of runs other processes execute (`notify.rs`).
    notices: Arc<notify::Notices>,
    /// The rate limits' token corrections of runs ended here, written by the event writer's tick.
    rate_corrections: crate::rate_limits::corrections::Corrections,
}

#[derive(Debug, Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl Engine {
    /// The engine of this process, registered as a live executor of runs before it may start any.
    pub async fn new(
        db: PgPool,
        prompts: Prompts,
        providers: ProviderSetup,
        retriever: Retriever,
        tools: Toolbox,
    ) -> Result<Self, EngineError> {
        let presence = runs::executor::Presence::take(&db).await?;
        let inner = Inner {
            presence,
            db,
            retriever,
            tools,
            hub: Hub::default(),
            background: Background::new(),
            prompts,
            providers,
            work_queued: tokio::sync::Notify::new(),
            notices: Arc::default(),
            rate_corrections: crate::rate_limits::corrections::Corrections::default(),
        };
        let engine = Self { inner: Arc::new(inner) };
        engine.keep_presence();
        engine.inner.background.spawn(event_writer::run(Arc::clone(&engine.inner)));
        Ok(engine)
    }

    /// Records the user's message and a new run, then runs the turn in the background. The message is
    /// committed before any model is called, so no failure can lose it.
    pub async fn start_turn(
        &self,
        context: &TenantContext,
        session_id: SessionId,
        request: TurnRequest,
    ) -> Result<StartedTurn, EngineError> {
        self.start(context, TurnSession::Existing(session_id), request).await
    }

    /// [`Self::start_turn`] in a conversation of its own, recorded with the turn (one transaction: a turn
    /// that is refused, for a model it cannot use say, leaves no empty conversation behind).
    pub async fn start_in_new_session(
        &self,
        context: &TenantContext,
        session: NewConversation,
        request: TurnRequest,
    ) -> Result<StartedTurn, EngineError> {
        self.start(context, TurnSession::New(session), request).await
    }

    async fn start(
        &self,
        context: &TenantContext,
        session: TurnSession,
        request: TurnRequest,
    ) -> Result<StartedTurn, EngineError> {
        let reservation = request.rate_reservation.clone();
        // Boxed: the recording's future is large, and every door awaits this one.
        let started = Box::pin(self.record_turn(context, session, request)).await;
        if started.is_err()
            && let Some(reservation) = &reservation
        {
            // Nothing started: the tokens the door reserved go back whole.
            rate_limits_give_back(&self.inner.db, reservation).await;
        }
        started
    }

    async fn record_turn(
        &self,
        context: &TenantContext,
        session: TurnSession,
        request: TurnRequest,
    ) -> Result<StartedTurn, EngineError> {
        let tenant_id = context.tenant_id();
        let run_id = RunId::new();
        let accepted_at = Instant::now();

        let mut transaction = match request.receipt {
            Receipt::AtStart => db::begin_tenant(&self.inner.db, tenant_id).await?,
            Receipt::WithTheAnswer => db::begin_tenant_without_waiting_for_disk(&self.inner.db, tenant_id).await?,
        };
        let (session, after) = match session {
            TurnSession::Existing(id) => {
                let held = conversations::hold_visible_session(&mut transaction, context, id).await?;
                (held.ok_or(EngineError::SessionNotFound)?, conversations::store::After::ActiveLeaf)
            }
            TurnSession::New(new) => {
                let opened = conversations::insert_new(&mut transaction, context, &new.session, &new.history).await?;
                (opened.session, conversations::store::After::Known(opened.leaf))
            }
        };
        let session_id = session.id;
        let resolved =
            resolve::resolve(&mut transaction, &self.inner.providers, tenant_id, request.model.as_deref()).await??;
        let reach = context.collections().within(&session.collections());
        let collections = collections::narrow(&mut transaction, &reach, request.collections.as_deref()).await?;
        // A budget already used up refuses the turn before anything is recorded.
        let payer =
            Payer { run_id, api_key_id: context.actor().api_key_id(), end_user: session.user_id, agent_run: false };
        let budgets = RunBudgets::of(&mut transaction, payer).await?;
        budgets.check_open()?;
        let reserving = reserving::ahead(&self.inner, &budgets, &resolved, &request.mode, tenant_id, run_id);
        let recording = insert_turn(
            &mut transaction,
            context,
            NewTurn {
                session_id,
                after,
                run_id,
                request: &request,
                resolved: &resolved,
                executor: self.inner.presence.id(),
            },
            collections.to_stored(),
        );
        // Side by side, on two connections: the turn waits for the slower, not for both.
        let (recorded, reserved_ahead) = tokio::join!(recording, reserving);
        let committed = match recorded {
            Ok(recorded) => transaction.commit().await.map(|()| recorded).map_err(EngineError::from),
            Err(error) => Err(error),
        };
        let (run, user_message, started) = match committed {
            Ok(committed) => committed,
            Err(error) => {
                if reserved_ahead.is_some() {
                    budgets.release(&self.inner.db, tenant_id, run_id).await;
                }
                return Err(error);
            }
        };
        let log = go_live(&self.inner, tenant_id, started);
        let mut plan = TurnPlan::new(&run, tenant_id, session_id, context.actor().api_key_id(), resolved, accepted_at);
        plan.mode = request.mode;
        plan.budgets = budgets;
        plan.reserved_ahead = reserved_ahead;
        plan.rate_reservation = request.rate_reservation;
        plan.end_user = session.user_id;
        plan.question_id = Some(user_message.id);
        self.inner.background.spawn(turn::execute(Arc::clone(&self.inner), plan, log, None));
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
        Ok(follow::stored(self.inner.db.clone(), &self.inner.notices, tenant_id, run_id, after))
    }

    /// The run's recorded end, for a door following it: kept in memory when the run executes here.
    pub fn ended(&self, context: &TenantContext, run_id: RunId) -> Ended {
        Ended(self.inner.hub.get(run_id, context.tenant_id()))
    }

    /// The answer to a started turn, delivered as the door asks.
    pub async fn answer(
        &self,
        context: &TenantContext,
        run_id: RunId,
        delivery: Delivery,
    ) -> Result<Answer, EngineError> {
        if delivery == Delivery::Stream {
            let ended = self.ended(context, run_id);
            return Ok(Answer::Stream(self.follow(context, run_id, 0).await?, ended));
        }
        let outcome = self.wait(context, run_id).await?;
        if let Some(code) = &outcome.run.error_code {
            let message = outcome.run.error_message.clone().unwrap_or_default();
            return Ok(Answer::Failed(RunFailure { run_id, code: code.clone(), message }));
        }
        if outcome.run.status == RunStatus::AwaitingApproval {
            return Ok(Answer::AwaitingApproval(outcome));
        }
        Ok(Answer::Finished(outcome))
    }

    /// Waits for the run to end and returns it with its answer.
    pub async fn wait(&self, context: &TenantContext, run_id: RunId) -> Result<TurnOutcome, EngineError> {
        let mut events = self.follow(context, run_id, 0).await?;
        // Executed here: its closing write keeps the outcome, and no transaction is needed after it.
        let ended = self.ended(context, run_id);
        ended.want_outcome();
        let mut message_id = None;
        while let Some(event) = events.next().await {
            match event.kind {
                EventKind::RunCompleted { message_id: id, .. } => message_id = Some(id),
                EventKind::RunFailed { message_id: id, .. } | EventKind::RunCancelled { message_id: id } => {
                    message_id = id;
                }
                _ => {}
            }
        }
        if let Some(outcome) = ended.outcome() {
            return Ok(outcome);
        }
        let mut transaction = db::begin_tenant(&self.inner.db, context.tenant_id()).await?;
        let run = runs::store::get(&mut transaction, run_id).await?.ok_or(EngineError::RunNotFound)?;
        let message = match message_id {
            Some(id) => conversations::store::get_message(&mut transaction, id).await?,
            None => None,
        };
        let totals = crate::usage::store::run_totals(&mut transaction, run_id).await?;
        transaction.commit().await?;
        Ok(TurnOutcome { run, message, totals })
    }

    /// The run, if this context may see it (a widget user: only runs of their own conversations).
    /// Every model this tenant can name in a request (see [`routing`]).
    pub async fn models(&self, context: &TenantContext) -> Result<Vec<routing::UsableModel>, EngineError> {
        let mut transaction = db::begin_tenant(&self.inner.db, context.tenant_id()).await?;
        let models = resolve::usable_models(&mut transaction, &self.inner.providers).await?;
        transaction.commit().await?;
        Ok(models)
    }

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

    /// Stops a run and waits until its cancellation is recorded. A run another live process executes is
    /// cancelled there (asked by a notice, a few times); a run nobody executes any more (its process
    /// died), or whose executor does not answer, is closed as cancelled directly.
    pub async fn cancel(&self, context: &TenantContext, run_id: RunId) -> Result<TurnOutcome, EngineError> {
        let tenant_id = context.tenant_id();
        let mut asked = false;
        let started = tokio::time::Instant::now();
        loop {
            self.run(context, run_id).await?;
            if let Some(live) = self.inner.hub.get(run_id, tenant_id) {
                live.cancel.cancel();
                return self.wait(context, run_id).await;
            }
            let (run, executor) = self.run_and_executor(context, run_id).await?;
            if run.status.is_terminal() {
                // Ended since it was asked (cancelled there, or it finished first): its outcome stands.
                return if asked { self.wait(context, run_id).await } else { Err(EngineError::RunEnded) };
            }
            let elsewhere = run.status == RunStatus::Running
                && executor.is_some_and(|(executor, alive)| alive && executor != self.inner.presence.id());
            if !elsewhere || (asked && started.elapsed() >= CANCEL_PATIENCE) {
                self.close_abandoned(tenant_id, run.id, EventKind::RunCancelled { message_id: None }).await?;
                return self.wait(context, run_id).await;
            }
            // The notice may arrive before that process registered the run (it has just started or
            // resumed it), or be lost with a connection: asked again.
            let mut transaction = db::begin_tenant(&self.inner.db, tenant_id).await?;
            runs::store::notify(&mut transaction, runs::store::CANCEL_CHANNEL, run_id).await?;
            transaction.commit().await?;
            asked = true;
            if let Ok(outcome) = tokio::time::timeout(CANCEL_ASK_AGAIN, self.wait(context, run_id)).await {
                return outcome;
            }
        }
    }

    async fn run_and_executor(
        &self,
        context: &TenantContext,
        run_id: RunId,
    ) -> Result<(Run, Option<(runs::ExecutorId, bool)>), EngineError> {
        let mut transaction = db::begin_tenant(&self.inner.db, context.tenant_id()).await?;
        let run = runs::store::get(&mut transaction, run_id).await?.ok_or(EngineError::RunNotFound)?;
        let executor = runs::store::executor(&mut transaction, run_id).await?;
        transaction.commit().await?;
        Ok((run, executor))
    }

    /// Listens for other processes' notices (`options`: a direct connection to the database, not through
    /// a pooler) until shutdown: their runs' new events, cancels of runs executing here, queued agent runs.
    pub async fn listen_to_other_processes(&self, options: PgConnectOptions) -> Result<(), EngineError> {
        let listener = notify::connect(options).await?;
        self.inner.background.spawn(notify::listen(Arc::clone(&self.inner), listener));
        Ok(())
    }

    /// The service's tracked background work, for loops outside the engine (the embedding backfill).
    pub fn background(&self) -> &Background {
        &self.inner.background
    }

    /// Lets running turns finish for up to `grace`, then stops the rest and waits for them to record it:
    /// each ends as failed with `shutting_down`, its partial answer kept. True when every turn ended by
    /// itself within the grace period. Paused runs stay paused and queued agent runs queued, for the next
    /// process to take up.
    pub async fn shutdown(&self, grace: Duration) -> bool {
        self.inner.background.stop();
        let finished = tokio::time::timeout(grace, self.inner.background.wait()).await.is_ok();
        if !finished {
            tracing::warn!("stopping the turns still running at shutdown");
            self.inner.hub.stop_all_for_shutdown();
            self.inner.background.wait().await;
        }
        self.inner.presence.release().await;
        finished
    }
}
