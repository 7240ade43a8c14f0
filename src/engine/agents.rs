//! Agent runs: a workspace instruction queued in PostgreSQL and executed by a worker of any Switchboard
//! process sharing the database. A worker claims the oldest queued run with `FOR UPDATE SKIP LOCKED`
//! (never two workers on one run), then runs it as an assistant turn on the workspace's conversation,
//! with the workspace tools added. A run whose worker died stops heartbeating and is closed as failed
//! by the sweeper.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};
use tokio::sync::Semaphore;

use super::plan::TurnPlan;
use super::{Engine, EngineError, Inner, TurnRequest, resolve, turn};
use crate::auth::context::TenantContext;
use crate::budgets::{Payer, RunBudgets};
use crate::conversations::store::NewMessage;
use crate::conversations::{self, NewSession, SessionType};
use crate::db;
use crate::idempotency::{self, IdempotencyKey, Once, Started};
use crate::ids::{RunId, SessionId, TenantId, WorkspaceId};
use crate::rate_limits::TokenReservation;
use crate::runs::{self, Run};

/// How often an idle worker looks for queued runs it was not told about (runs queued by other
/// processes).
const POLL_EVERY: Duration = Duration::from_secs(1);

/// Idempotency keys of the IDE door are apart from other doors' keys.
const IDEMPOTENCY_SCOPE: &str = "workspace_run";

impl Engine {
    /// Queues an agent run on a workspace; with an idempotency key, a retry returns the run the first
    /// request queued. The tokens its request reserved from the rate limits (`reservation`) are kept with
    /// the run, corrected by whichever worker executes it; a request that queued nothing gives them back.
    pub async fn start_agent_run(
        &self,
        context: &TenantContext,
        workspace_id: WorkspaceId,
        instruction: String,
        key: Option<&IdempotencyKey>,
        reservation: TokenReservation,
    ) -> Result<Run, EngineError> {
        let fingerprint = Sha256::digest(format!("{workspace_id}\n{instruction}").as_bytes()).to_vec();
        let once = Once { scope: IDEMPOTENCY_SCOPE, key, fingerprint: &fingerprint };
        let start = self.enqueue_agent_run(context, workspace_id, instruction, &reservation);
        let ids = |run: &Run| (run.session_id.expect("an agent run has its conversation"), run.id);
        let started = idempotency::start_once(&self.inner.db, context, once, start, ids).await;
        if !matches!(started, Ok(Started::New(_))) {
            super::rate_limits_give_back(&self.inner.db, &reservation).await;
        }
        match started? {
            Started::New(run) => Ok(run),
            Started::Replayed { run_id, .. } => self.run(context, run_id).await,
        }
    }

    /// Queues an agent run on the workspace; a worker (of any process) will execute it.
    async fn enqueue_agent_run(
        &self,
        context: &TenantContext,
        workspace_id: WorkspaceId,
        instruction: String,
        reservation: &TokenReservation,
    ) -> Result<Run, EngineError> {
        let request = TurnRequest::parse(instruction, None)?;
        let tenant_id = context.tenant_id();
        let mut transaction = db::begin_tenant(&self.inner.db, tenant_id).await?;
        if !crate::workspaces::store::exists(&mut transaction, workspace_id).await? {
            return Err(EngineError::WorkspaceNotFound);
        }
        let run_id = RunId::new();
        // A budget already used up refuses the run before it is queued (the run's own budget is fresh).
        let payer =
            Payer { run_id, api_key_id: context.actor().api_key_id(), end_user: context.end_user(), agent_run: true };
        RunBudgets::of(&mut transaction, payer).await?.check_open()?;
        let session = NewSession {
            session_type: SessionType::Workspace,
            workspace_id: Some(workspace_id.0),
            title: Some(conversations::title_from_message(&request.content)),
            collections: context.collections().clone(),
            collection_names: None,
        };
        let session = conversations::store::insert_session(&mut transaction, context, &session).await?;
        let trace_id = crate::telemetry::current_trace_id();
        let queued = runs::store::QueuedAgentRun {
            id: run_id,
            session_id: session.id,
            workspace_id,
            instruction: &request.content,
            request_id: context.request_id(),
            trace_id: trace_id.as_deref(),
            collection_ids: context.collections().to_stored(),
            rate_reservation: Some(reservation.clone()),
        };
        let run = runs::store::insert_queued_agent_run(&mut transaction, tenant_id, &queued).await?;
        conversations::store::insert_message(
            &mut transaction,
            tenant_id,
            &NewMessage::user(session.id, run_id, &request.content),
        )
        .await?;
        // Every process's workers hear of it at commit, not at their next look.
        runs::store::notify_queued(&mut transaction).await?;
        transaction.commit().await?;
        self.inner.work_queued.notify_one();
        Ok(run)
    }

    /// Starts this process's workers: up to `concurrency` agent runs at once, until shutdown.
    pub fn start_workers(&self, concurrency: usize) {
        let engine = self.clone();
        let slots = Arc::new(Semaphore::new(concurrency.max(1)));
        let worker = format!("{}-{}", std::process::id(), uuid::Uuid::now_v7().simple());
        self.inner.background.spawn(async move {
            loop {
                let permit = tokio::select! {
                    () = engine.inner.background.stopping().cancelled() => return,
                    permit = Arc::clone(&slots).acquire_owned() => permit.expect("the semaphore is never closed"),
                };
                let claimed = async {
                    let mut transaction = db::begin(&engine.inner.db).await?;
                    let claimed =
                        runs::store::claim_queued(&mut transaction, &worker, engine.inner.presence.id()).await?;
                    transaction.commit().await?;
                    Ok::<_, sqlx::Error>(claimed)
                };
                match claimed.await {
                    Ok(Some((run_id, tenant_id))) => {
                        let inner = Arc::clone(&engine.inner);
                        engine.inner.background.spawn(async move {
                            if let Err(error) = execute_claimed(inner, run_id, tenant_id).await {
                                tracing::error!(%run_id, %error, "could not start a claimed agent run");
                            }
                            drop(permit);
                        });
                        continue;
                    }
                    Ok(None) => {}
                    Err(error) => tracing::warn!(%error, "could not claim queued agent runs"),
                }
                drop(permit);
                tokio::select! {
                    () = engine.inner.background.stopping().cancelled() => return,
                    () = engine.inner.work_queued.notified() => {}
                    () = tokio::time::sleep(POLL_EVERY) => {}
                }
            }
        });
    }
}

/// Runs a claimed agent run to its end in this task.
async fn execute_claimed(inner: Arc<Inner>, run_id: RunId, tenant_id: TenantId) -> Result<(), EngineError> {
    let accepted_at = Instant::now();
    let mut transaction = db::begin_tenant_patiently(&inner.db, tenant_id).await?;
    let run = runs::store::get(&mut transaction, run_id).await?.ok_or(EngineError::RunNotFound)?;
    let (workspace_id, _) = runs::store::agent_work(&mut transaction, run_id).await?.ok_or(EngineError::RunNotFound)?;
    let session_id: SessionId = run.session_id.ok_or(EngineError::SessionNotFound)?;
    let api_key_id = conversations::store::session_api_key(&mut transaction, session_id).await?;
    let resolved = resolve::resolve(&mut transaction, &inner.providers, tenant_id, None).await??;
    runs::store::set_model(&mut transaction, run_id, resolved.provider_name, &resolved.model, resolved.is_byok).await?;
    let end_user =
        conversations::store::get_session(&mut transaction, session_id).await?.and_then(|session| session.user_id);
    let payer = Payer { run_id, api_key_id, end_user, agent_run: true };
    let budgets = RunBudgets::of(&mut transaction, payer).await?;
    let reservation = runs::store::rate_reservation(&mut transaction, run_id).await?;
    let started = super::record_start(&mut transaction, tenant_id, run_id, session_id, &resolved).await?;
    // Queued without a reservation of event numbers: it is made now, as the run starts.
    runs::store::reserve_seq(&mut transaction, run_id, super::RESERVED_AT_START).await?;
    transaction.commit().await?;
    let log = super::go_live(&inner, tenant_id, started);
    let mut plan = TurnPlan::new(&run, tenant_id, session_id, api_key_id, resolved, accepted_at);
    plan.workspace_id = Some(workspace_id);
    plan.budgets = budgets;
    plan.end_user = end_user;
    plan.rate_reservation = reservation;
    turn::execute(inner, plan, log, None).await;
    Ok(())
}
