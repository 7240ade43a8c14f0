//! Policy profiles: what a tenant's assistant may do with tools. A profile is parsed once into a `Policy`
//! (patterns compiled, rules checked — an unknown rule is refused when the profile is saved, never
//! ignored), then applied to every tool call (`decide`) and every tool result (`shape`). Both are pure
//! functions: the engine records and audits what they return.

mod decide;
pub mod profiles;
mod shape;
pub mod store;

pub use decide::{CallTarget, Decision, ToolCallView, Verdict, decide_call, visible};
pub use shape::{Shaped, shape};

use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};

/// A profile as the API stores and returns it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyDocument {
    /// Glob patterns over `connector.tool`; empty means no tool may run.
    #[serde(default)]
    pub tool_allowlist: Vec<String>,
    /// Only tools their server marks read-only (`readOnlyHint`) may run.
    #[serde(default)]
    pub read_only_mode: bool,
    /// Patterns whose calls wait for a person's approval.
    #[serde(default)]
    pub approval_required: Vec<String>,
    /// Keys removed from tool results at any depth, compared without regard to case.
    #[serde(default)]
    pub blocked_fields: Vec<String>,
    /// Arrays in tool results are cut to this many items, and the model is told.
    #[serde(default)]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 4_294_967_295_i64)]
    pub max_rows_per_query: Option<u32>,
    /// When not empty, a call whose arguments name a `record_type` outside this list is denied.
    #[serde(default)]
    pub allowed_record_types: Vec<String>,
    #[serde(default)]
    pub custom_rules: Vec<CustomRule>,
    /// Glob patterns over `connector:uri`: the MCP resources that may be attached to a conversation (read
    /// through `blocked_fields` and `max_rows_per_query` like a tool's result); empty means none.
    #[serde(default)]
    pub resource_allowlist: Vec<String>,
    /// Glob patterns over `connector.prompt`: the MCP prompts listed and filled for the caller (the
    /// widget, the IDE); empty means none.
    #[serde(default)]
    pub prompt_allowlist: Vec<String>,
}

/// The rule forms a profile may add. Anything else is refused at save time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum CustomRule {
    /// Deny calls of `tools` whose argument `field` (a dotted path) is a string matching one of `matches`.
    DenyArgument { tools: Vec<String>, field: String, matches: Vec<String>, reason: String },
    /// Calls of `tools` whose numeric argument `field` exceeds `max` are denied, or wait for approval.
    ArgumentLimit { tools: Vec<String>, field: String, max: f64, over: OverLimit, reason: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OverLimit {
    Deny,
    Approval,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(pub String);

/// Where the profile in force for a call came from: the most specific assignment wins, whole (a key's
/// profile over its end user's group's, a group's over the tenant's active one). Nothing is merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum PolicySource {
    /// The tenant's active profile (`tenant_config.active_policy_profile_id`).
    Tenant,
    /// The profile mapped to the end user's group (`/api/v1/policy-groups/{group}`).
    Group,
    /// The API key's own profile (`api_keys.policy_profile_id`).
    Key,
}

impl PolicySource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tenant => "tenant",
            Self::Group => "group",
            Self::Key => "key",
        }
    }
}

/// A profile ready to apply.
#[derive(Debug, Clone)]
pub struct Policy {
    document: PolicyDocument,
    allowlist: GlobSet,
    approval: GlobSet,
    resources: GlobSet,
    prompts: GlobSet,
    /// `blocked_fields` in lower and in upper case (see `shape::blocks`).
    blocked_fields: Vec<(String, String)>,
    rules: Vec<CompiledRule>,
}

#[derive(Debug, Clone)]
struct CompiledRule {
    tools: GlobSet,
    rule: CustomRule,
    /// `DenyArgument`'s value patterns.
    values: GlobSet,
}

const MAX_PATTERNS: usize = 200;

fn patterns(what: &str, patterns: &[String]) -> Result<GlobSet, PolicyError> {
    if patterns.len() > MAX_PATTERNS {
        return Err(PolicyError(format!("{what}: at most {MAX_PATTERNS} patterns")));
    }
    let mut set = GlobSetBuilder::new();
    for pattern in patterns {
        if pattern.trim().is_empty() || pattern.len() > 200 {
            return Err(PolicyError(format!("{what}: patterns must be 1 to 200 characters")));
        }
        let glob = Glob::new(pattern).map_err(|error| PolicyError(format!("{what}: {pattern:?}: {error}")))?;
        set.add(glob);
    }
    set.build().map_err(|error| PolicyError(format!("{what}: {error}")))
}

impl Policy {
    /// Checks and compiles a profile; the error says what to fix.
    pub fn parse(document: PolicyDocument) -> Result<Self, PolicyError> {
        if document.max_rows_per_query == Some(0) {
            return Err(PolicyError("max_rows_per_query must be at least 1".to_owned()));
        }
        if document.blocked_fields.iter().any(|field| field.trim().is_empty()) {
            return Err(PolicyError("blocked_fields must not contain empty names".to_owned()));
        }
        let rules = document
            .custom_rules
            .iter()
            .enumerate()
            .map(|(index, rule)| {
                let what = format!("custom_rules[{index}]");
                let (tools, field, values, reason) = match rule {
                    CustomRule::DenyArgument { tools, field, matches, reason } => {
                        (tools, field, matches.as_slice(), reason)
                    }
                    CustomRule::ArgumentLimit { tools, field, max, reason, .. } => {
                        if !max.is_finite() {
                            return Err(PolicyError(format!("{what}: max must be a number")));
                        }
                        (tools, field, [].as_slice(), reason)
                    }
                };
                if tools.is_empty() || field.trim().is_empty() || reason.trim().is_empty() {
                    return Err(PolicyError(format!("{what}: tools, field and reason are required")));
                }
                Ok(CompiledRule {
                    tools: patterns(&format!("{what}.tools"), tools)?,
                    values: patterns(&format!("{what}.matches"), values)?,
                    rule: rule.clone(),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            allowlist: patterns("tool_allowlist", &document.tool_allowlist)?,
            approval: patterns("approval_required", &document.approval_required)?,
            resources: patterns("resource_allowlist", &document.resource_allowlist)?,
            prompts: patterns("prompt_allowlist", &document.prompt_allowlist)?,
            blocked_fields: document
                .blocked_fields
                .iter()
                .map(|field| (field.to_lowercase(), field.to_uppercase()))
                .collect(),
            rules,
            document,
        })
    }

    /// Parses a profile from its JSON, refusing unknown fields and rules.
    pub fn from_json(value: serde_json::Value) -> Result<Self, PolicyError> {
        let document: PolicyDocument =
            serde_json::from_value(value).map_err(|error| PolicyError(format!("invalid policy profile: {error}")))?;
        Self::parse(document)
    }

    pub fn document(&self) -> &PolicyDocument {
        &self.document
    }

    /// Whether a connector's resource may be read into a conversation (`connector:uri`, see
    /// [`resource_name`]).
    pub fn may_read_resource(&self, name: &str) -> bool {
        self.resources.is_match(name)
    }

    /// Whether a connector's prompt (`connector.prompt`) is offered to the caller.
    pub fn may_use_prompt(&self, name: &str) -> bool {
        self.prompts.is_match(name)
    }
}

/// The name `resource_allowlist` patterns match: `connector:uri`.
pub fn resource_name(connector: &str, uri: &str) -> String {
    format!("{connector}:{uri}")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn unknown_fields_and_rules_are_refused_at_save_time() {
        assert!(Policy::from_json(json!({ "tool_allowlist": ["crm.*"] })).is_ok());
        for bad in [
            json!({ "tool_allow_list": ["crm.*"] }),
            json!({ "custom_rules": [{ "kind": "block_everything" }] }),
            json!({ "custom_rules": [{ "kind": "deny_argument", "tools": ["a.*"], "field": "x", "matches": ["y"] }] }),
            json!({ "custom_rules": [{ "kind": "argument_limit", "tools": [], "field": "x", "max": 1, "over": "deny", "reason": "r" }] }),
            json!({ "custom_rules": [{ "kind": "argument_limit", "tools": ["a"], "field": "x", "max": 1, "over": "maybe", "reason": "r" }] }),
            json!({ "tool_allowlist": ["crm.[unclosed"] }),
            json!({ "max_rows_per_query": 0 }),
            json!({ "blocked_fields": [" "] }),
        ] {
            assert!(Policy::from_json(bad.clone()).is_err(), "{bad}");
        }
    }
}
