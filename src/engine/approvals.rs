//! Approvals: a person's decision on a tool call the policy held back, and the resumption of the paused
//! run once no call of it waits any more, in whichever process the decision arrives.

use std::sync::Arc;
use std::time::Instant;

use super::event_log::EventLog;
use super::plan::TurnPlan;
use super::transcript::Transcript;
use super::{Engine, EngineError, resolve, turn};
use crate::audit::{self, AuditEntry};
use crate::auth::context::TenantContext;
use crate::budgets::{Payer, RunBudgets};
use crate::conversations;
use crate::db;
use crate::ids::ToolCallId;
use crate::runs::{self, Run, RunStatus};
use crate::tools::calls::{self, CallStatus, ToolCallRecord};
use crate::tools::elicitation::{InputAction, InputNeeded};

impl Engine {
    /// A person's decision on a call waiting for approval. Once no call of its run waits any more, the
    /// run resumes here (whichever process paused it, however long ago): approved calls run, denied
    /// ones are reported to the model, and the run's events continue.
    pub async fn decide_tool_call(
        &self,
        context: &TenantContext,
        id: ToolCallId,
        approve: bool,
    ) -> Result<ToolCallRecord, EngineError> {
        let by = decided_by(context);
        self.settle_waiting(context, id, CallStatus::AwaitingApproval, async |transaction, _| {
            let record = calls::decide(transaction, id, approve, &by).await?.ok_or(EngineError::ToolCallDecided)?;
            let action = if approve { "tool_call.approved" } else { "tool_call.denied" };
            let entry = AuditEntry::new(action, "tool_call", id.to_string())
                .with_details(serde_json::json!({ "run_id": record.run_id, "name": record.name }));
            Ok((record, entry))
        })
        .await
    }

    /// A person's answer to the input a call's server asked for (MCP elicitation), checked against the
    /// question's schema. Once no call of its run waits any more, the run resumes here and the call is
    /// made again with the answer.
    pub async fn answer_tool_input(
        &self,
        context: &TenantContext,
        id: ToolCallId,
        action: InputAction,
        answer: Option<serde_json::Map<String, serde_json::Value>>,
    ) -> Result<ToolCallRecord, EngineError> {
        let by = decided_by(context);
        self.settle_waiting(context, id, CallStatus::AwaitingInput, async |transaction, waiting| {
            let asked: InputNeeded = waiting
                .input_request
                .clone()
                .and_then(|asked| serde_json::from_value(asked).ok())
                .ok_or_else(|| EngineError::Internal("the call's question is unreadable".to_owned()))?;
            let given = asked.answer(action, answer).map_err(EngineError::Invalid)?;
            let response = serde_json::to_value(&given).expect("an answer serialises");
            let record =
                calls::answer_input(transaction, id, &response, &by).await?.ok_or(EngineError::ToolCallDecided)?;
            // The action only: what the person typed stays on the call, out of the trail.
            let entry = AuditEntry::new("tool_call.input_given", "tool_call", id.to_string())
                .with_details(serde_json::json!({ "run_id": record.run_id, "name": record.name, "action": action }));
            Ok((record, entry))
        })
        .await
    }

    /// Settles a call waiting for a person (`waiting_as`) with `settle`, audited, and resumes its run
    /// once no call of it waits any more.
    async fn settle_waiting(
        &self,
        context: &TenantContext,
        id: ToolCallId,
        waiting_as: CallStatus,
        settle: impl AsyncFnOnce(
            &mut sqlx::PgConnection,
            &ToolCallRecord,
        ) -> Result<(ToolCallRecord, AuditEntry), EngineError>,
    ) -> Result<ToolCallRecord, EngineError> {
        let tenant_id = context.tenant_id();
        let mut transaction = db::begin_tenant(&self.inner.db, tenant_id).await?;
        let Some(waiting) = calls::get(&mut transaction, id).await? else { return Err(EngineError::ToolCallNotFound) };
        if self.run(context, waiting.run_id).await.is_err() {
            return Err(EngineError::ToolCallNotFound);
        }
        if waiting.status != waiting_as {
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
        let (record, entry) = settle(&mut transaction, &waiting).await?;
        audit::record(&mut transaction, context, &entry).await?;
        let still_waiting = calls::for_run(&mut transaction, record.run_id)
            .await?
            .iter()
            .any(|call| matches!(call.status, CallStatus::AwaitingApproval | CallStatus::AwaitingInput));
        let state = if still_waiting {
            None
        } else {
            runs::store::claim_paused(&mut transaction, record.run_id, self.inner.presence.id()).await?
        };
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
        let transcript: Transcript = serde_json::from_value(state)
            .map_err(|error| EngineError::Internal(format!("the paused run's state is unreadable: {error}")))?;
        let session_id = run.session_id.ok_or(EngineError::SessionNotFound)?;
        let mut transaction = db::begin_tenant(&self.inner.db, tenant_id).await?;
        // The provider the run began on, by name: routing a bare model again could pick another.
        let model = match (&run.provider, &run.model) {
            (Some(provider), Some(model)) => Some(format!("{provider}/{model}")),
            (_, model) => model.clone(),
        };
        let resolved = resolve::resolve(&mut transaction, &self.inner.providers, tenant_id, model.as_deref()).await??;
        let workspace_id = runs::store::agent_work(&mut transaction, run.id).await?.map(|(id, _)| id);
        let end_user =
            conversations::store::get_session(&mut transaction, session_id).await?.and_then(|session| session.user_id);
        let payer =
            Payer { run_id: run.id, api_key_id: transcript.api_key_id, end_user, agent_run: workspace_id.is_some() };
        let budgets = RunBudgets::of(&mut transaction, payer).await?;
        let rate_reservation = runs::store::rate_reservation(&mut transaction, run.id).await?;
        transaction.commit().await?;
        let live = self.inner.hub.register(run.id, tenant_id, next_seq, next_seq - 1);
        let log = EventLog::new(live, self.inner.db.clone(), next_seq, next_seq - 1);
        // The key that started the run pays for it and acts in its audit entries, not the approver.
        let mut plan = TurnPlan::new(run, tenant_id, session_id, transcript.api_key_id, resolved, Instant::now());
        plan.workspace_id = workspace_id;
        plan.budgets = budgets;
        plan.end_user = end_user;
        plan.rate_reservation = rate_reservation;
        self.inner.background.spawn(turn::execute(Arc::clone(&self.inner), plan, log, Some(transcript)));
        Ok(())
    }
}

/// Who settled a waiting call, as its row and the trail name them.
fn decided_by(context: &TenantContext) -> String {
    context.actor().id().map_or_else(|| context.actor().kind().to_owned(), |id| format!("api_key:{id}"))
}
