//! The tool steps of a turn: the policy's decision on every call the model makes (recorded, audited,
//! streamed), running the allowed ones in parallel with their results shaped, and a person's decisions
//! on held calls applied when a paused run resumes. What is offered: `turn_tools.rs`; the steps as the
//! model sees them again: `transcript.rs`.

use std::time::Instant;

use serde_json::{Value, json};

use super::Inner;
use super::event_log::EventLog;
use super::plan::{ToolCallDraft, TurnFailure, TurnPlan};
use super::transcript::{CallResult, Step, StepCall, Transcript};
use super::turn_tools::TurnTools;
use crate::audit::{self, AuditEntry, Recorder};
use crate::db;
use crate::ids::{ToolCallId, WorkspaceId};
use crate::policy::{self, CallTarget, Verdict};
use crate::runs::events::EventKind;
use crate::tools::calls::{self, CallOutcome, CallStatus, NewToolCall};
use crate::tools::{CallFailure, Called, ToolRequest};
use crate::workspaces::tools as workspace_tools;

/// The longest result summary kept on a call's row.
const SUMMARY_CHARS: usize = 300;

pub(super) fn audit_by(plan: &TurnPlan) -> Recorder<'_> {
    Recorder {
        tenant_id: plan.tenant_id,
        actor_type: if plan.api_key_id.is_some() { "api_key" } else { "system" },
        actor_id: plan.api_key_id.map(|id| id.to_string()),
        request_id: plan.request_id.as_deref(),
        trace_id: crate::telemetry::current_trace_id(),
    }
}

/// Decides every call of a step, records and audits the decisions, and streams them. Denied calls get
/// their answer at once; allowed ones wait for [`run_allowed`]; the others for a person.
pub(super) async fn decide_step(
    inner: &Inner,
    plan: &TurnPlan,
    log: &mut EventLog,
    tools: &TurnTools,
    number: usize,
    text: String,
    drafts: Vec<ToolCallDraft>,
) -> Result<Step, TurnFailure> {
    let mut decided = Vec::new();
    let applied = tools.policy.as_ref().map(|(_, applied)| *applied);
    let mut transaction = db::begin_tenant_patiently(&inner.db, plan.tenant_id).await?;
    for (position, draft) in drafts.into_iter().enumerate() {
        let wire_name = draft.name.unwrap_or_default();
        let name = tools.names.qualified(&wire_name).map_or_else(|| wire_name.clone(), str::to_owned);
        let parsed = if draft.arguments.trim().is_empty() {
            Ok(json!({}))
        } else {
            serde_json::from_str::<Value>(&draft.arguments)
        };
        let offered = tools.offered.get(&name);
        let target = if tools.builtin.contains_key(&name) {
            CallTarget::Builtin
        } else {
            match offered.map(|offered| offered.read_only).or_else(|| tools.hidden.get(&name).copied()) {
                Some(read_only) => CallTarget::Connector { read_only },
                None => CallTarget::Unknown,
            }
        };
        let active = tools.policy.as_ref().map(|(policy, _)| policy);
        let decision = policy::decide_call(active, &name, target, parsed.as_ref().ok());
        let arguments = parsed.unwrap_or_else(|_| Value::String(draft.arguments.chars().take(2000).collect()));
        let (status, counted) = match decision.verdict {
            Verdict::Allow => (CallStatus::Running, "allow"),
            Verdict::RequireApproval => (CallStatus::AwaitingApproval, "approval"),
            Verdict::Deny => (CallStatus::Denied, "deny"),
        };
        crate::metrics::tool_decided(counted);
        if decision.verdict != Verdict::Allow {
            // A call that does not run now is still a tool span of the trace, with the decision on it.
            tracing::info_span!(
                "tool",
                otel.name = format!("execute_tool {name}"),
                gen_ai.operation.name = "execute_tool",
                gen_ai.tool.name = %name,
                switchboard.tool.connector = connector_of(tools, &name),
                switchboard.tool.decision = counted,
            )
            .in_scope(|| {});
        }
        let call = StepCall {
            id: ToolCallId::new(),
            provider_call_id: draft.id.unwrap_or_else(|| format!("call_{number}_{position}")),
            wire_name,
            name,
            arguments,
            awaiting_approval: status == CallStatus::AwaitingApproval,
            approved: false,
            reason: decision.reason.clone(),
            awaiting_input: None,
            input: None,
            result: (status == CallStatus::Denied).then(|| CallResult {
                content: json!({ "error": format!("denied by policy: {}", decision.reason) }),
                is_error: true,
            }),
        };
        calls::insert(
            &mut transaction,
            plan.tenant_id,
            &NewToolCall {
                id: call.id,
                run_id: plan.run_id,
                step: i32::try_from(number).unwrap_or(i32::MAX),
                position: i32::try_from(position).unwrap_or(i32::MAX),
                provider_call_id: &call.provider_call_id,
                connector_id: offered.map(|offered| offered.connector_id),
                name: &call.name,
                arguments: &call.arguments,
                verdict: decision.verdict,
                reason: &decision.reason,
                policy: tools.policy.as_ref().map(|(_, applied)| (applied.profile_id, applied.version, applied.source)),
                status,
            },
        )
        .await?;
        let entry = AuditEntry::new("tool_call.decided", "tool_call", call.id.to_string()).with_details(json!({
            "run_id": plan.run_id, "name": call.name, "decision": decision.verdict, "reason": decision.reason,
            "policy_profile_id": applied.map(|applied| applied.profile_id),
            "policy_version": applied.map(|applied| applied.version),
            "policy_source": applied.map(|applied| applied.source),
        }));
        audit::store::append(&mut transaction, &audit_by(plan), &entry).await?;
        decided.push(call);
    }
    transaction.commit().await?;
    // `tool_call.awaiting_approval` is sent with the pause itself (see `turn::record_pause`): nobody can
    // decide a call before its run is recorded as waiting.
    for call in &decided {
        let (tool_call_id, name, arguments) = (call.id, call.name.clone(), call.arguments.clone());
        log.emit(EventKind::ToolCallRequested { tool_call_id, name, arguments, policy: applied }).await;
        if call.result.is_some() {
            let reason = call.reason.clone();
            log.emit(EventKind::ToolCallDenied { tool_call_id, name: call.name.clone(), reason }).await;
        }
    }
    let step = Step { text, calls: decided };
    Ok(step)
}

/// The events announcing the calls of the last step that wait for a person: for a decision, or for
/// the input their server asked for.
pub(super) fn awaiting_events(transcript: &Transcript) -> Vec<EventKind> {
    let Some(step) = transcript.steps.last() else { return Vec::new() };
    step.calls
        .iter()
        .filter_map(|call| match &call.awaiting_input {
            Some(asked) => Some(EventKind::ToolCallAwaitingInput {
                tool_call_id: call.id,
                name: call.name.clone(),
                message: asked.message.clone(),
                requested_schema: asked.requested_schema.clone(),
            }),
            None => call.awaiting_approval.then(|| EventKind::ToolCallAwaitingApproval {
                tool_call_id: call.id,
                name: call.name.clone(),
                reason: call.reason.clone(),
            }),
        })
        .collect()
}

/// Runs the last step's allowed calls that have no result yet, all at once; each result passes the
/// policy's shaping (blocked fields, row limits) before it is recorded or shown to the model. Returns the
/// time spent waiting for the calls (the service's own time excluded).
pub(super) async fn run_allowed(
    inner: &Inner,
    plan: &TurnPlan,
    log: &mut EventLog,
    tools: &TurnTools,
    step: &mut Step,
) -> Result<std::time::Duration, TurnFailure> {
    let pending: Vec<usize> = (0..step.calls.len())
        .filter(|&index| step.calls[index].result.is_none() && !step.calls[index].waits())
        .collect();
    let runs = pending.iter().map(|&index| call_tool(inner, plan, tools, &step.calls[index]));
    let waiting = Instant::now();
    let outcomes = futures::future::join_all(runs).await;
    let waited = waiting.elapsed();
    let mut transaction = db::begin_tenant_patiently(&inner.db, plan.tenant_id).await?;
    let mut events = Vec::new();
    for (&index, (outcome, duration, proposed)) in pending.iter().zip(outcomes) {
        let call = &mut step.calls[index];
        call.input = None;
        let outcome = match outcome {
            Ok(Called::NeedsInput(asked)) => {
                // Its server asked the person something: the call waits, and is announced with the pause.
                let request = serde_json::to_value(&asked).expect("a question serialises");
                calls::await_input(&mut transaction, call.id, &request).await?;
                call.awaiting_input = Some(asked);
                continue;
            }
            Ok(Called::Done(value)) => Ok(value),
            Err(failure) => Err(failure),
        };
        let settled = settle(tools, call, outcome, duration);
        crate::metrics::tool_ran(
            if settled.status == CallStatus::Completed { "completed" } else { "failed" },
            duration,
        );
        let record = CallOutcome {
            status: settled.status,
            result: settled.recorded.as_ref(),
            summary: settled.summary.as_deref(),
            error: settled.error.as_ref().map(|(code, message)| (*code, message.as_str())),
            duration_ms: Some(i32::try_from(duration.as_millis()).unwrap_or(i32::MAX)),
        };
        calls::finish(&mut transaction, call.id, &record).await?;
        // The patches a workspace edit touched, then the call's own end.
        events.extend(proposed);
        events.push(settled.event);
        call.result = Some(settled.for_model);
    }
    transaction.commit().await?;
    for event in events {
        log.emit(event).await;
    }
    Ok(waited)
}

/// A built-in workspace tool, in the run's tenant, in one transaction: a tool error rolls it back, so a
/// refused edit records nothing. Returns the `changeset.patch` events of the patches it touched.
async fn builtin(
    inner: &Inner,
    plan: &TurnPlan,
    workspace_id: WorkspaceId,
    tool: &str,
    arguments: &Value,
) -> (Result<Value, CallFailure>, Vec<EventKind>) {
    if tool == workspace_tools::RUN_CHECKS {
        let caller = (plan.api_key_id, plan.end_user);
        let ran =
            super::checks::for_agent(inner, plan.tenant_id, &audit_by(plan), caller, plan.run_id, workspace_id).await;
        return (ran.map_err(|message| CallFailure::Tool(Value::String(message))), Vec::new());
    }
    let scope = workspace_tools::RunScope { tenant_id: plan.tenant_id, run_id: plan.run_id, workspace_id };
    let ran = async {
        let unavailable = |error: sqlx::Error| {
            tracing::error!(%error, "a workspace tool failed");
            "the workspace could not be read".to_owned()
        };
        let mut transaction = db::begin_tenant_patiently(&inner.db, plan.tenant_id).await.map_err(unavailable)?;
        let outcome = workspace_tools::run_tool(&mut transaction, scope, tool, arguments).await?;
        transaction.commit().await.map_err(unavailable)?;
        Ok::<_, String>(outcome)
    };
    match ran.await {
        Ok(outcome) => (Ok(outcome.value), outcome.events),
        Err(message) => (Err(CallFailure::Tool(Value::String(message))), Vec::new()),
    }
}

/// One call to its server (or a built-in tool), with how long it took.
#[tracing::instrument(
    name = "tool",
    skip_all,
    fields(
        otel.name = format!("execute_tool {}", call.name),
        gen_ai.operation.name = "execute_tool",
        gen_ai.tool.name = %call.name,
        gen_ai.tool.call.id = %call.id,
        switchboard.tool.connector = connector_of(tools, &call.name),
        switchboard.tool.decision = if call.approved { "approved" } else { "allow" },
    )
)]
async fn call_tool(
    inner: &Inner,
    plan: &TurnPlan,
    tools: &TurnTools,
    call: &StepCall,
) -> (Result<Called, CallFailure>, std::time::Duration, Vec<EventKind>) {
    let toolbox = &inner.tools;
    let started = Instant::now();
    if let Some((workspace_id, tool)) = tools.builtin.get(&call.name) {
        let (outcome, proposed) = builtin(inner, plan, *workspace_id, tool, &call.arguments).await;
        return (outcome.map(Called::Done), started.elapsed(), proposed);
    }
    let Some(offered) = tools.offered.get(&call.name) else {
        let gone = CallFailure::Unreachable(format!("`{}` is no longer offered", call.name));
        return (Err(gone), started.elapsed(), Vec::new());
    };
    let (id, version, tool) = (offered.connector_id, offered.connector_version, &offered.tool);
    let request = ToolRequest { tool, arguments: call.arguments.clone(), input: call.input.as_ref() };
    let outcome = toolbox.clients.call(id, version, &offered.connector, &toolbox.settings, request).await;
    (outcome, started.elapsed(), Vec::new())
}

/// The connector a call goes to, as its span names it: built-in tools are the workspace's.
fn connector_of<'a>(tools: &'a TurnTools, name: &str) -> &'a str {
    if tools.builtin.contains_key(name) {
        return "workspace";
    }
    tools.offered.get(name).map_or("unknown", |offered| offered.connector.name.as_str())
}

/// How a call ended, as recorded, streamed and told to the model.
struct Settled {
    status: CallStatus,
    recorded: Option<Value>,
    summary: Option<String>,
    error: Option<(&'static str, String)>,
    event: EventKind,
    for_model: CallResult,
}

fn settle(
    tools: &TurnTools,
    call: &StepCall,
    outcome: Result<Value, CallFailure>,
    duration: std::time::Duration,
) -> Settled {
    let (tool_call_id, name) = (call.id, call.name.clone());
    match outcome {
        Ok(value) => {
            let (content, note) = shaped(tools, value);
            let duration_ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
            Settled {
                status: CallStatus::Completed,
                summary: Some(content.to_string().chars().take(SUMMARY_CHARS).collect()),
                recorded: Some(content.clone()),
                error: None,
                event: EventKind::ToolCallCompleted { tool_call_id, name, duration_ms, note },
                for_model: CallResult { content, is_error: false },
            }
        }
        Err(failure) => {
            let code = failure.code();
            // What a failing tool says is a result like any other: shaped before anyone sees it.
            let (said, message) = match failure {
                CallFailure::Tool(said) => (Some(shaped(tools, said).0), "the tool reported an error".to_owned()),
                other => (None, other.to_string()),
            };
            let for_model = json!({ "error": said.clone().unwrap_or_else(|| json!(message)) });
            Settled {
                status: CallStatus::Failed,
                recorded: said,
                summary: None,
                error: Some((code, message.clone())),
                event: EventKind::ToolCallFailed { tool_call_id, name, code: code.to_owned(), message },
                for_model: CallResult { content: for_model, is_error: true },
            }
        }
    }
}

/// The largest result the model is given, as JSON text.
const MAX_RESULT_CHARS: usize = 32_768;

/// A result as the model may see it: blocked fields removed and lists cut (with the policy's note), and
/// anything too long cut with a note of its own.
fn shaped(tools: &TurnTools, value: Value) -> (Value, Option<String>) {
    let (value, mut note) = match &tools.policy {
        Some((policy, _)) => {
            let shaped = policy::shape(policy, value);
            let note = shaped.note(policy);
            (shaped.value, note)
        }
        None => (value, None),
    };
    let text = value.to_string();
    let value = if text.chars().count() > MAX_RESULT_CHARS {
        let cut = format!("the result was cut to its first {MAX_RESULT_CHARS} characters");
        note = Some(note.map_or_else(|| cut.clone(), |note| format!("{note}; {cut}")));
        Value::String(text.chars().take(MAX_RESULT_CHARS).collect())
    } else {
        value
    };
    let content = match &note {
        Some(note) => json!({ "result": value, "note": note }),
        None => value,
    };
    (content, note)
}

/// After a person decided the waiting calls of the last step: approved ones become runnable, denied
/// ones are answered with the denial, so the model is told; those that waited for input are made again
/// with the answer.
pub(super) async fn apply_decisions(
    inner: &Inner,
    plan: &TurnPlan,
    log: &mut EventLog,
    step: &mut Step,
) -> Result<(), TurnFailure> {
    let mut transaction = db::begin_tenant_patiently(&inner.db, plan.tenant_id).await?;
    let records = calls::for_run(&mut transaction, plan.run_id).await?;
    transaction.commit().await?;
    for call in step.calls.iter_mut().filter(|call| call.waits()) {
        let Some(record) = records.iter().find(|record| record.id == call.id) else { continue };
        if call.awaiting_input.is_some() {
            if record.status == CallStatus::Running {
                call.awaiting_input = None;
                call.input = record.input_response.clone().and_then(|given| serde_json::from_value(given).ok());
            }
            continue;
        }
        match record.status {
            CallStatus::Running => {
                call.awaiting_approval = false;
                call.approved = true;
            }
            CallStatus::Denied => {
                call.awaiting_approval = false;
                let by = record.decided_by.clone().unwrap_or_default();
                call.result = Some(CallResult {
                    content: json!({ "error": format!("a person ({by}) denied this call") }),
                    is_error: true,
                });
                log.emit(EventKind::ToolCallDenied {
                    tool_call_id: call.id,
                    name: call.name.clone(),
                    reason: record.reason.clone(),
                })
                .await;
            }
            _ => {}
        }
    }
    Ok(())
}
