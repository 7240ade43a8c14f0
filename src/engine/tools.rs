//! The tool steps of a turn: which tools the model is offered (the tenant's active policy profile over
//! its connectors' discovered tools), the policy's decision on every call the model makes (recorded,
//! audited, streamed), running the allowed ones in parallel, and the transcript that feeds their results
//! back to the model — and that a paused run keeps until a person decides.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Inner;
use super::event_log::EventLog;
use super::events::EventKind;
use super::turn::{ToolCallDraft, TurnFailure, TurnPlan};
use crate::audit::{self, AuditEntry, Recorder};
use crate::db;
use crate::ids::{ConnectorId, PolicyProfileId, ToolCallId, WorkspaceId};
use crate::policy::{self, Policy, ToolCallView, Verdict};
use crate::providers::{ChatMessage, ToolCallMessage, ToolResultMessage, ToolSpec};
use crate::tools::CallFailure;
use crate::tools::calls::{self, CallOutcome, CallStatus, NewToolCall};
use crate::tools::connectors::{self, ConnectorSpec};
use crate::tools::names::{self, WireNames};

/// The longest result summary kept on a call's row.
const SUMMARY_CHARS: usize = 300;

/// What a turn may use: the policy and the tools it lets the model see.
#[derive(Default)]
pub(super) struct TurnTools {
    policy: Option<(Policy, PolicyProfileId, i32)>,
    names: WireNames,
    offered: HashMap<String, Offered>,
    /// Tools the connectors have but the policy hides, by qualified name, with their read-only hint: a
    /// model naming one anyway is refused with the policy's own reason.
    hidden: HashMap<String, bool>,
    /// An agent run's built-in workspace tools, by qualified name (`workspace.read_file`).
    builtin: HashMap<String, (WorkspaceId, &'static str)>,
    pub specs: Vec<ToolSpec>,
}

struct Offered {
    connector_id: ConnectorId,
    connector_version: DateTime<Utc>,
    connector: Arc<ConnectorSpec>,
    tool: String,
    read_only: bool,
}

impl TurnTools {
    /// No active policy profile means no tools: tools are something a tenant turns on.
    pub async fn load(inner: &Inner, plan: &TurnPlan) -> Result<Self, TurnFailure> {
        let mut tools = Self::default();
        if let Some(workspace_id) = plan.workspace_id {
            for (tool, spec) in crate::workspaces::tool_specs() {
                let qualified = names::qualified("workspace", tool);
                let wire = tools.names.add(&qualified);
                tools.specs.push(ToolSpec { name: wire, ..spec });
                tools.builtin.insert(qualified, (workspace_id, tool));
            }
        }
        let mut transaction = db::begin_tenant(&inner.db, plan.tenant_id).await?;
        let Some(profile) = policy::profiles::active(&mut transaction).await? else {
            transaction.commit().await?;
            return Ok(tools);
        };
        let rows = connectors::list(&mut transaction).await?;
        let discovered = connectors::discovered(&mut transaction, None).await?;
        transaction.commit().await?;
        let policy = Policy::parse(profile.document).map_err(|error| TurnFailure::Internal(Box::new(error)))?;
        for row in rows.iter().filter(|row| row.is_active()) {
            let (mine, hidden): (Vec<_>, Vec<_>) = discovered
                .iter()
                .filter(|tool| tool.connector_id == row.id)
                .partition(|tool| policy::visible(&policy, &names::qualified(&row.name, &tool.name), tool.read_only));
            for tool in hidden {
                let qualified = names::qualified(&row.name, &tool.name);
                tools.names.add(&qualified);
                tools.hidden.insert(qualified, tool.read_only);
            }
            if mine.is_empty() {
                continue;
            }
            let connector = match row.spec(&inner.tools.keys) {
                Ok(spec) => Arc::new(spec),
                Err(error) => {
                    tracing::warn!(connector_id = %row.id, %error, "a connector's credential cannot be opened; its tools are not offered");
                    continue;
                }
            };
            for tool in mine {
                let qualified = names::qualified(&row.name, &tool.name);
                let wire = tools.names.add(&qualified);
                tools.specs.push(ToolSpec {
                    name: wire,
                    description: tool.description.clone().unwrap_or_default(),
                    parameters: tool.input_schema.clone(),
                });
                let offered = Offered {
                    connector_id: row.id,
                    connector_version: row.updated_at,
                    connector: Arc::clone(&connector),
                    tool: tool.name.clone(),
                    read_only: tool.read_only,
                };
                tools.offered.insert(qualified, offered);
            }
        }
        tools.policy = Some((policy, profile.id, profile.version));
        Ok(tools)
    }
}

/// The tool steps so far, as the model must see them again; saved on the run while it is paused.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct Transcript {
    pub steps: Vec<Step>,
    /// The answer's text over all steps so far.
    pub text: String,
    /// The key that started the run: a resumed run is paid for and audited as its.
    #[serde(default)]
    pub api_key_id: Option<crate::ids::ApiKeyId>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Step {
    pub text: String,
    pub calls: Vec<StepCall>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct StepCall {
    pub id: ToolCallId,
    pub provider_call_id: String,
    pub wire_name: String,
    /// `connector.tool`.
    pub name: String,
    pub arguments: Value,
    pub awaiting_approval: bool,
    /// The policy's reason for its decision.
    #[serde(default)]
    pub reason: String,
    /// What the model is told: the shaped result, or an error.
    pub result: Option<CallResult>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct CallResult {
    pub content: Value,
    pub is_error: bool,
}

impl Transcript {
    /// Each step as an assistant message with its calls, then a user message with their results.
    pub fn messages(&self) -> Vec<ChatMessage> {
        let mut messages = Vec::new();
        for step in &self.steps {
            let mut asked = ChatMessage::assistant(step.text.clone());
            asked.tool_calls = step
                .calls
                .iter()
                .map(|call| ToolCallMessage {
                    id: call.provider_call_id.clone(),
                    name: call.wire_name.clone(),
                    arguments: if call.arguments.is_object() { call.arguments.clone() } else { json!({}) },
                })
                .collect();
            let mut answered = ChatMessage::user("");
            answered.tool_results = step
                .calls
                .iter()
                .map(|call| {
                    let result = call
                        .result
                        .clone()
                        .unwrap_or(CallResult { content: json!({ "error": "no result" }), is_error: true });
                    ToolResultMessage {
                        call_id: call.provider_call_id.clone(),
                        name: call.wire_name.clone(),
                        content: result.content,
                        is_error: result.is_error,
                    }
                })
                .collect();
            messages.push(asked);
            messages.push(answered);
        }
        messages
    }

    /// The calls of the last step still waiting for a person.
    pub fn awaiting(&self) -> Vec<ToolCallId> {
        self.steps.last().map_or_else(Vec::new, |step| {
            step.calls.iter().filter(|call| call.awaiting_approval).map(|call| call.id).collect()
        })
    }

    /// The calls as the assistant's message records them.
    pub fn summary(&self) -> Vec<Value> {
        self.steps
            .iter()
            .flat_map(|step| &step.calls)
            .map(|call| {
                json!({
                    "id": call.id, "name": call.name, "arguments": call.arguments,
                    "is_error": call.result.as_ref().is_some_and(|result| result.is_error),
                })
            })
            .collect()
    }
}

fn audit_by(plan: &TurnPlan) -> Recorder<'_> {
    Recorder {
        tenant_id: plan.tenant_id,
        actor_type: if plan.api_key_id.is_some() { "api_key" } else { "system" },
        actor_id: plan.api_key_id.map(|id| id.to_string()),
        request_id: plan.trace_id.as_deref(),
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
    let mut transaction = db::begin_tenant(&inner.db, plan.tenant_id).await?;
    for (position, draft) in drafts.into_iter().enumerate() {
        let wire_name = draft.name.unwrap_or_default();
        let name = tools.names.qualified(&wire_name).map_or_else(|| wire_name.clone(), str::to_owned);
        let parsed = if draft.arguments.trim().is_empty() {
            Ok(json!({}))
        } else {
            serde_json::from_str::<Value>(&draft.arguments)
        };
        let offered = tools.offered.get(&name);
        let object = parsed.as_ref().ok().filter(|arguments| arguments.is_object());
        let read_only = offered.map(|offered| offered.read_only).or_else(|| tools.hidden.get(&name).copied());
        let decision = match (object, read_only, &tools.policy) {
            (None, _, _) => {
                policy::Decision { verdict: Verdict::Deny, reason: "the arguments are not a JSON object".to_owned() }
            }
            // The run's own workspace tools read files and record proposals; they change nothing.
            _ if tools.builtin.contains_key(&name) => {
                policy::Decision { verdict: Verdict::Allow, reason: "a built-in workspace tool".to_owned() }
            }
            (Some(arguments), Some(read_only), Some((policy, _, _))) => {
                policy.decide(&ToolCallView { name: &name, read_only, arguments })
            }
            _ => policy::Decision {
                verdict: Verdict::Deny,
                reason: format!("`{name}` is not a tool of this tenant's connectors"),
            },
        };
        let arguments = parsed.unwrap_or_else(|_| Value::String(draft.arguments.chars().take(2000).collect()));
        let status = match decision.verdict {
            Verdict::Allow => CallStatus::Running,
            Verdict::RequireApproval => CallStatus::AwaitingApproval,
            Verdict::Deny => CallStatus::Denied,
        };
        let call = StepCall {
            id: ToolCallId::new(),
            provider_call_id: draft.id.unwrap_or_else(|| format!("call_{number}_{position}")),
            wire_name,
            name,
            arguments,
            awaiting_approval: status == CallStatus::AwaitingApproval,
            reason: decision.reason.clone(),
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
                policy: tools.policy.as_ref().map(|(_, id, version)| (*id, *version)),
                status,
            },
        )
        .await?;
        let entry = AuditEntry::new("tool_call.decided", "tool_call", call.id.to_string()).with_details(json!({
            "run_id": plan.run_id, "name": call.name, "decision": decision.verdict, "reason": decision.reason,
            "policy_profile_id": tools.policy.as_ref().map(|(_, id, _)| id),
            "policy_version": tools.policy.as_ref().map(|(_, _, version)| version),
        }));
        audit::append(&mut transaction, &audit_by(plan), &entry).await?;
        decided.push(call);
    }
    transaction.commit().await?;
    // `tool_call.awaiting_approval` is sent with the pause itself (see `turn::record_pause`): nobody can
    // decide a call before its run is recorded as waiting.
    for call in &decided {
        let (tool_call_id, name) = (call.id, call.name.clone());
        log.emit(EventKind::ToolCallRequested { tool_call_id, name, arguments: call.arguments.clone() }).await;
        if call.result.is_some() {
            let reason = call.reason.clone();
            log.emit(EventKind::ToolCallDenied { tool_call_id, name: call.name.clone(), reason }).await;
        }
    }
    let step = Step { text, calls: decided };
    Ok(step)
}

/// The events announcing the calls of the last step that wait for a person.
pub(super) fn awaiting_events(transcript: &Transcript) -> Vec<EventKind> {
    let Some(step) = transcript.steps.last() else { return Vec::new() };
    step.calls
        .iter()
        .filter(|call| call.awaiting_approval)
        .map(|call| EventKind::ToolCallAwaitingApproval {
            tool_call_id: call.id,
            name: call.name.clone(),
            reason: call.reason.clone(),
        })
        .collect()
}

/// Runs the last step's allowed calls that have no result yet, all at once; each result passes the
/// policy's shaping (blocked fields, row limits) before it is recorded or shown to the model.
pub(super) async fn run_allowed(
    inner: &Inner,
    plan: &TurnPlan,
    log: &mut EventLog,
    tools: &TurnTools,
    step: &mut Step,
) -> Result<(), TurnFailure> {
    let pending: Vec<usize> = (0..step.calls.len())
        .filter(|&index| step.calls[index].result.is_none() && !step.calls[index].awaiting_approval)
        .collect();
    let runs = pending.iter().map(|&index| call_tool(inner, plan, tools, &step.calls[index]));
    let outcomes = futures::future::join_all(runs).await;
    let mut transaction = db::begin_tenant(&inner.db, plan.tenant_id).await?;
    let mut events = Vec::new();
    for (&index, (outcome, duration)) in pending.iter().zip(outcomes) {
        let call = &mut step.calls[index];
        let settled = settle(tools, call, outcome, duration);
        let record = CallOutcome {
            status: settled.status,
            result: settled.recorded.as_ref(),
            summary: settled.summary.as_deref(),
            error: settled.error.as_ref().map(|(code, message)| (*code, message.as_str())),
            duration_ms: Some(i32::try_from(duration.as_millis()).unwrap_or(i32::MAX)),
        };
        calls::finish(&mut transaction, call.id, &record).await?;
        events.push(settled.event);
        call.result = Some(settled.for_model);
    }
    transaction.commit().await?;
    for event in events {
        log.emit(event).await;
    }
    Ok(())
}

/// A built-in workspace tool, in the run's tenant.
async fn builtin(
    inner: &Inner,
    plan: &TurnPlan,
    workspace_id: WorkspaceId,
    tool: &str,
    arguments: &Value,
) -> Result<Value, CallFailure> {
    let ran = async {
        let mut transaction = db::begin_tenant(&inner.db, plan.tenant_id).await.map_err(|error| error.to_string())?;
        let result =
            crate::workspaces::run_tool(&mut transaction, plan.tenant_id, plan.run_id, workspace_id, tool, arguments)
                .await;
        transaction.commit().await.map_err(|error| error.to_string())?;
        result
    };
    ran.await.map_err(|message| CallFailure::Tool(Value::String(message)))
}

/// One call to its server (or a built-in tool), with how long it took.
async fn call_tool(
    inner: &Inner,
    plan: &TurnPlan,
    tools: &TurnTools,
    call: &StepCall,
) -> (Result<Value, CallFailure>, std::time::Duration) {
    let toolbox = &inner.tools;
    let started = Instant::now();
    if let Some((workspace_id, tool)) = tools.builtin.get(&call.name) {
        return (builtin(inner, plan, *workspace_id, tool, &call.arguments).await, started.elapsed());
    }
    let Some(offered) = tools.offered.get(&call.name) else {
        return (Err(CallFailure::Unreachable(format!("`{}` is no longer offered", call.name))), started.elapsed());
    };
    let (id, version, tool) = (offered.connector_id, offered.connector_version, &offered.tool);
    let arguments = call.arguments.clone();
    let outcome = toolbox.clients.call(id, version, &offered.connector, &toolbox.settings, tool, arguments).await;
    (outcome, started.elapsed())
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
        Some((policy, _, _)) => {
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
/// ones are answered with the denial, so the model is told.
pub(super) async fn apply_decisions(
    inner: &Inner,
    plan: &TurnPlan,
    log: &mut EventLog,
    step: &mut Step,
) -> Result<(), TurnFailure> {
    let mut transaction = db::begin_tenant(&inner.db, plan.tenant_id).await?;
    let records = calls::for_run(&mut transaction, plan.run_id).await?;
    transaction.commit().await?;
    for call in step.calls.iter_mut().filter(|call| call.awaiting_approval) {
        let Some(record) = records.iter().find(|record| record.id == call.id) else { continue };
        match record.status {
            CallStatus::Running => call.awaiting_approval = false,
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
