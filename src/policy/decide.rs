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

    mod properties {
        use globset::Glob;
        use proptest::prelude::*;

        use super::*;

        /// Glob patterns: mostly of the characters globs give meaning to, sometimes any text.
        fn pattern() -> impl Strategy<Value = String> {
            prop_oneof![
                6 => "[a-c]{1,2}(\\.[a-c_*?]{1,3})?",
                2 => "[a-c.*?_\\[\\]{},!-]{0,8}",
                1 => "(?s).{0,8}",
                2 => Just("*".to_owned()),
            ]
        }

        fn patterns() -> impl Strategy<Value = Vec<String>> {
            prop::collection::vec(pattern(), 0..4)
        }

        /// A profile as tenants write them, every field often valid and sometimes not.
        fn profile() -> impl Strategy<Value = Value> {
            let rule = (
                prop_oneof![8 => Just("deny_argument"), 8 => Just("argument_limit"), 1 => Just("block_everything")],
                patterns(),
                prop_oneof![8 => "[ab](\\.[ab]){0,2}", 1 => "(?s).{0,4}"],
                patterns(),
                prop_oneof![
                    8 => (-10.0..10.0f64).prop_map(Value::from),
                    1 => Just(Value::Null),
                    1 => "[0-9]{1,2}".prop_map(Value::from),
                ],
                prop_oneof![8 => Just("deny"), 8 => Just("approval"), 1 => Just("maybe")],
                prop_oneof![8 => "[a-z]{1,8}", 1 => "[a-z ]{0,2}"],
            )
                .prop_map(|(kind, tools, field, matches, max, over, reason)| {
                    let mut rule = json!({ "kind": kind, "tools": tools, "field": field, "reason": reason });
                    if kind == "deny_argument" {
                        rule["matches"] = json!(matches);
                    } else {
                        rule["max"] = max;
                        rule["over"] = json!(over);
                    }
                    rule
                });
            (
                patterns(),
                any::<bool>(),
                patterns(),
                prop::collection::vec(prop_oneof![8 => "[a-zA-Z]{1,6}", 1 => "[a-zA-Z ]{0,2}"], 0..3),
                proptest::option::of(prop_oneof![8 => 1..6i64, 1 => -2..1i64]),
                prop::collection::vec("[a-zA-Z]{1,6}", 0..3),
                prop::collection::vec(rule, 0..3),
                proptest::option::weighted(0.05, "[a-z_]{1,8}"),
            )
                .prop_map(|(allow, read_only, approval, blocked, rows, types, rules, unknown)| {
                    let mut profile = json!({
                        "tool_allowlist": allow, "read_only_mode": read_only, "approval_required": approval,
                        "blocked_fields": blocked, "max_rows_per_query": rows, "allowed_record_types": types,
                        "custom_rules": rules,
                    });
                    if let Some(field) = unknown {
                        profile[field] = json!(true);
                    }
                    profile
                })
        }

        /// Any JSON, its keys often a profile's fields.
        fn any_json() -> impl Strategy<Value = Value> {
            let fields = vec!["tool_allowlist", "blocked_fields", "max_rows_per_query", "custom_rules", "kind"];
            let key = prop_oneof![prop::sample::select(fields).prop_map(str::to_owned), "(?s).{0,6}"];
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<f64>().prop_map(Value::from),
                pattern().prop_map(Value::from),
            ];
            leaf.prop_recursive(3, 32, 4, move |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                    prop::collection::vec((key.clone(), inner), 0..4)
                        .prop_map(|fields| Value::Object(fields.into_iter().collect())),
                ]
            })
        }

        /// A call's arguments: the fields the rules read (`a`, `a.b`, `record_type`) with any value.
        fn arguments() -> impl Strategy<Value = Value> {
            let value = prop_oneof![
                "[a-c.*?_-]{0,6}".prop_map(Value::from),
                (-20.0..20.0f64).prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                Just(Value::Null),
            ];
            let record_type = prop_oneof!["[a-zA-Z]{1,6}".prop_map(Value::from), Just(Value::Null)];
            (value.clone(), value.clone(), value, record_type).prop_map(
                |(a, b, inner, record_type)| json!({ "a": a, "b": { "a": inner, "b": b }, "record_type": record_type }),
            )
        }

        fn matches_any(patterns: &[String], text: &str) -> bool {
            patterns.iter().any(|pattern| Glob::new(pattern).is_ok_and(|glob| glob.compile_matcher().is_match(text)))
        }

        /// Whether a rule of the profile forbids the call outright, or asks for approval, by its own reading.
        fn rule_applies(rule: &CustomRule, name: &str, arguments: &Value) -> Option<Verdict> {
            match rule {
                CustomRule::DenyArgument { tools, field, matches, .. } if matches_any(tools, name) => {
                    let value = argument(arguments, field).and_then(Value::as_str)?;
                    matches_any(matches, value).then_some(Verdict::Deny)
                }
                CustomRule::ArgumentLimit { tools, field, max, over, .. } if matches_any(tools, name) => {
                    let value = argument(arguments, field).and_then(Value::as_f64)?;
                    (value > *max).then_some(match over {
                        OverLimit::Deny => Verdict::Deny,
                        OverLimit::Approval => Verdict::RequireApproval,
                    })
                }
                _ => None,
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::with_cases(512) })]

            /// Any profile is a policy or an error saying what to fix; a policy decides every call with a reason,
            /// lets nothing outside its allow-list (or, in read-only mode, not read-only) run, and never lets a
            /// call through that one of its rules or record types forbids, or that needs approval.
            #[test]
            fn every_call_is_decided_as_the_profile_says(
                profile in prop_oneof![1 => any_json().boxed(), 6 => profile().boxed()],
                name in prop_oneof!["[a-c]{1,2}\\.[a-c_]{1,3}", "(?s).{0,6}"],
                read_only in any::<bool>(),
                arguments in arguments(),
            ) {
                let policy = match Policy::from_json(profile) {
                    Ok(policy) => policy,
                    Err(error) => {
                        prop_assert!(!error.0.trim().is_empty());
                        return Ok(());
                    }
                };
                let document = policy.document();
                let decision = policy.decide(&ToolCallView { name: &name, read_only, arguments: &arguments });
                prop_assert!(!decision.reason.trim().is_empty());
                let shown = matches_any(&document.tool_allowlist, &name) && (read_only || !document.read_only_mode);
                prop_assert_eq!(visible(&policy, &name, read_only), shown);
                if !shown {
                    prop_assert_eq!(decision.verdict, Verdict::Deny);
                }
                let record_type = arguments["record_type"].as_str();
                let types = &document.allowed_record_types;
                if record_type.is_some_and(|kind| !types.is_empty() && !types.iter().any(|allowed| allowed.eq_ignore_ascii_case(kind))) {
                    prop_assert_eq!(decision.verdict, Verdict::Deny);
                }
                let verdicts: Vec<Verdict> =
                    document.custom_rules.iter().filter_map(|rule| rule_applies(rule, &name, &arguments)).collect();
                if verdicts.contains(&Verdict::Deny) {
                    prop_assert_eq!(decision.verdict, Verdict::Deny);
                } else if !verdicts.is_empty() || matches_any(&document.approval_required, &name) {
                    prop_assert_ne!(decision.verdict, Verdict::Allow);
                }
            }
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
