//! The decision on one tool call: allowed, waiting for approval, or denied — always with the reason, which
//! the engine records on the call, audits, and (when denied) tells the model.

use serde::Serialize;
use serde_json::Value;

use super::{CustomRule, OverLimit, Policy};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Allow,
    RequireApproval,
    Deny,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub verdict: Verdict,
    pub reason: String,
}

impl Decision {
    fn new(verdict: Verdict, reason: impl Into<String>) -> Self {
        Self { verdict, reason: reason.into() }
    }
}

/// A tool call as the policy sees it.
#[derive(Debug, Clone, Copy)]
pub struct ToolCallView<'a> {
    /// `connector.tool`.
    pub name: &'a str,
    /// Whether the tool's server marks it read-only (`readOnlyHint: true`); absent counts as not.
    pub read_only: bool,
    pub arguments: &'a Value,
}

/// What a call the model asked for names, as far as the engine knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallTarget {
    /// One of the run's own built-in workspace tools, which read files and record proposals.
    Builtin,
    /// A tool of the tenant's connectors (offered, or hidden by the policy), with its read-only hint.
    Connector { read_only: bool },
    /// No tool of this tenant.
    Unknown,
}

/// The decision on any call a model makes: arguments that are not a JSON object are denied; the built-in
/// workspace tools change nothing and are allowed; a connector's tool is for the policy (none active:
/// no tools); anything else is not a tool of this tenant.
pub fn decide_call(policy: Option<&Policy>, name: &str, target: CallTarget, arguments: Option<&Value>) -> Decision {
    let Some(arguments) = arguments.filter(|arguments| arguments.is_object()) else {
        return Decision::new(Verdict::Deny, "the arguments are not a JSON object");
    };
    match (target, policy) {
        (CallTarget::Builtin, _) => Decision::new(Verdict::Allow, "a built-in workspace tool"),
        (CallTarget::Connector { read_only }, Some(policy)) => {
            policy.decide(&ToolCallView { name, read_only, arguments })
        }
        _ => Decision::new(Verdict::Deny, format!("`{name}` is not a tool of this tenant's connectors")),
    }
}

/// Whether the model is shown the tool at all: allow-listed and, in read-only mode, read-only.
pub fn visible(policy: &Policy, name: &str, read_only: bool) -> bool {
    policy.allowlist.is_match(name) && (read_only || !policy.document.read_only_mode)
}

/// The value at a dotted path (`customer.email`) of the arguments.
fn argument<'a>(arguments: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(arguments, |value, key| value.get(key))
}

impl Policy {
    /// Denials first (allow-list, read-only mode, record types, custom rules), then approvals
    /// (custom limits, `approval_required`), else allowed.
    pub fn decide(&self, call: &ToolCallView<'_>) -> Decision {
        let name = call.name;
        if !self.allowlist.is_match(name) {
            return Decision::new(Verdict::Deny, format!("`{name}` is not in the tool allow-list"));
        }
        if self.document.read_only_mode && !call.read_only {
            return Decision::new(
                Verdict::Deny,
                format!("read-only mode: `{name}` is not marked read-only by its server"),
            );
        }
        let allowed_types = &self.document.allowed_record_types;
        if !allowed_types.is_empty()
            && let Some(record_type) = call.arguments.get("record_type").and_then(Value::as_str)
            && !allowed_types.iter().any(|allowed| allowed.eq_ignore_ascii_case(record_type))
        {
            return Decision::new(Verdict::Deny, format!("record type `{record_type}` is not allowed"));
        }
        let mut approval = None;
        for compiled in self.rules.iter().filter(|compiled| compiled.tools.is_match(name)) {
            match &compiled.rule {
                CustomRule::DenyArgument { field, reason, .. } => {
                    let value = argument(call.arguments, field).and_then(Value::as_str);
                    if value.is_some_and(|value| compiled.values.is_match(value)) {
                        return Decision::new(Verdict::Deny, reason.clone());
                    }
                }
                CustomRule::ArgumentLimit { field, max, over, reason, .. } => {
                    let value = argument(call.arguments, field).and_then(Value::as_f64);
                    if value.is_some_and(|value| value > *max) {
                        match over {
                            OverLimit::Deny => return Decision::new(Verdict::Deny, reason.clone()),
                            OverLimit::Approval => approval = approval.or_else(|| Some(reason.clone())),
                        }
                    }
                }
            }
        }
        if let Some(reason) = approval {
            return Decision::new(Verdict::RequireApproval, reason);
        }
        if self.approval.is_match(name) {
            return Decision::new(Verdict::RequireApproval, format!("`{name}` requires approval"));
        }
        Decision::new(Verdict::Allow, format!("`{name}` is allowed"))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn policy() -> Policy {
        Policy::from_json(json!({
            "tool_allowlist": ["crm.*", "files.read_file", "payments.refund"],
            "approval_required": ["crm.delete_*"],
            "allowed_record_types": ["customer", "invoice"],
            "custom_rules": [
                { "kind": "deny_argument", "tools": ["crm.*"], "field": "filter.email",
                  "matches": ["*@internal.example"], "reason": "internal addresses are off limits" },
                { "kind": "argument_limit", "tools": ["payments.refund"], "field": "amount", "max": 100,
                  "over": "approval", "reason": "refunds over 100 need a person" },
                { "kind": "argument_limit", "tools": ["payments.refund"], "field": "amount", "max": 1000,
                  "over": "deny", "reason": "refunds over 1000 are never automatic" }
            ]
        }))
        .unwrap()
    }

    #[test]
    fn decisions_follow_the_profile() {
        let policy = policy();
        let read_only = Policy::from_json(json!({ "tool_allowlist": ["*"], "read_only_mode": true })).unwrap();
        let nothing = Policy::from_json(json!({})).unwrap();
        let cases: &[(&Policy, &str, bool, Value, Verdict, &str)] = &[
            (&policy, "crm.search", false, json!({}), Verdict::Allow, "is allowed"),
            (&policy, "shell.exec", false, json!({}), Verdict::Deny, "not in the tool allow-list"),
            (&policy, "files.write_file", false, json!({}), Verdict::Deny, "not in the tool allow-list"),
            (&policy, "crm.delete_contact", false, json!({}), Verdict::RequireApproval, "requires approval"),
            (&policy, "crm.search", false, json!({ "record_type": "Invoice" }), Verdict::Allow, "is allowed"),
            (&policy, "crm.search", false, json!({ "record_type": "employee" }), Verdict::Deny, "`employee`"),
            (
                &policy,
                "crm.search",
                false,
                json!({ "filter": { "email": "ceo@internal.example" } }),
                Verdict::Deny,
                "off limits",
            ),
            (
                &policy,
                "crm.search",
                false,
                json!({ "filter": { "email": "a@b.example" } }),
                Verdict::Allow,
                "is allowed",
            ),
            (&policy, "payments.refund", false, json!({ "amount": 50 }), Verdict::Allow, "is allowed"),
            (&policy, "payments.refund", false, json!({ "amount": 500 }), Verdict::RequireApproval, "need a person"),
            (&policy, "payments.refund", false, json!({ "amount": 5000 }), Verdict::Deny, "never automatic"),
            (&read_only, "files.read_file", true, json!({}), Verdict::Allow, "is allowed"),
            (&read_only, "files.write_file", false, json!({}), Verdict::Deny, "read-only mode"),
            (&nothing, "files.read_file", true, json!({}), Verdict::Deny, "not in the tool allow-list"),
        ];
        for (policy, name, read_only, arguments, verdict, reason) in cases {
            let decision = policy.decide(&ToolCallView { name, read_only: *read_only, arguments });
            assert_eq!(decision.verdict, *verdict, "{name} {arguments}: {decision:?}");
            assert!(decision.reason.contains(reason), "{name}: {decision:?}");
        }
    }

    /// The active policy, the call's name, what it names, its arguments, the verdict, part of the reason.
    type Case<'a> = (Option<&'a Policy>, &'a str, CallTarget, Option<Value>, Verdict, &'a str);

    #[test]
    fn every_call_gets_a_decision_whatever_it_names() {
        let policy = policy();
        let connector = CallTarget::Connector { read_only: false };
        let cases: &[Case] = &[
            (Some(&policy), "crm.search", connector, Some(json!({})), Verdict::Allow, "is allowed"),
            (Some(&policy), "crm.search", connector, Some(json!([1, 2])), Verdict::Deny, "not a JSON object"),
            (Some(&policy), "crm.search", connector, Some(json!("text")), Verdict::Deny, "not a JSON object"),
            (Some(&policy), "crm.search", connector, None, Verdict::Deny, "not a JSON object"),
            (Some(&policy), "shell.exec", connector, Some(json!({})), Verdict::Deny, "not in the tool allow-list"),
            (Some(&policy), "crm.delete_x", connector, Some(json!({})), Verdict::RequireApproval, "approval"),
            // Built-in tools need no policy and pass whatever it says; their arguments must still be an object.
            (None, "workspace.read_file", CallTarget::Builtin, Some(json!({})), Verdict::Allow, "built-in"),
            (Some(&policy), "workspace.read_file", CallTarget::Builtin, Some(json!({})), Verdict::Allow, "built-in"),
            (None, "workspace.read_file", CallTarget::Builtin, Some(json!(null)), Verdict::Deny, "not a JSON object"),
            (Some(&policy), "made.up", CallTarget::Unknown, Some(json!({})), Verdict::Deny, "not a tool of this"),
            // Without an active profile no connector tool runs.
            (None, "crm.search", connector, Some(json!({})), Verdict::Deny, "not a tool of this"),
        ];
        for (policy, name, target, arguments, verdict, reason) in cases {
            let decision = decide_call(*policy, name, *target, arguments.as_ref());
            assert_eq!(decision.verdict, *verdict, "{name} {arguments:?}: {decision:?}");
            assert!(decision.reason.contains(reason), "{name}: {decision:?}");
        }
    }

    #[test]
    fn the_model_sees_only_tools_it_may_call() {
        let policy = policy();
        assert!(visible(&policy, "crm.search", false));
        assert!(!visible(&policy, "shell.exec", true));
        let read_only = Policy::from_json(json!({ "tool_allowlist": ["*"], "read_only_mode": true })).unwrap();
        assert!(visible(&read_only, "files.read_file", true));
        assert!(!visible(&read_only, "files.write_file", false));
    }
}
