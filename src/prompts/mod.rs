//! System prompt templates: the built-in one from `prompts/`, compiled into the binary and checked at start,
//! and tenants' own (`tenant.rs`, versioned), checked at save ([`check`]) against the variables a turn
//! provides. Both render with strict undefined variables.

pub mod store;
pub mod tenant;

use std::collections::BTreeSet;

use minijinja::syntax::SyntaxConfig;
use minijinja::value::Serde;
use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

use crate::providers::Passage;

const SYSTEM: &str = "system.md.j2";
const TEMPLATES: &[(&str, &str)] = &[(SYSTEM, include_str!("../../prompts/system.md.j2"))];

/// A tenant's template holds at most this many characters.
pub const MAX_TEMPLATE_CHARS: usize = 20_000;
/// A tenant's template renders in at most this many steps of minijinja's machine: a loop over `range` in a
/// loop cannot hold a turn's task.
const FUEL: u64 = 200_000;
/// And into at most this many characters.
const MAX_RENDERED_CHARS: usize = 100_000;

/// The variables a turn gives every system prompt (`SystemPromptContext`'s fields).
pub const VARIABLES: &[&str] =
    &["tenant_name", "today", "business_context", "policy_summary", "citations", "tools", "end_user"];

/// The system prompt template built into this binary, as `name@` and the first 16 hex digits of its
/// content's SHA-256: what a run records (`runs.prompt_template`) when its prompt was the built-in one.
pub fn system_template_id() -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(include_str!("../../prompts/system.md.j2").as_bytes());
    format!("{SYSTEM}@{}", &hex::encode(digest)[..16])
}

/// What a run records as its template when it used the tenant's own (with the version beside it).
pub const TENANT_TEMPLATE: &str = "tenant";

#[derive(Debug, thiserror::Error)]
#[error("prompt template {template}: {source}")]
pub struct PromptError {
    template: &'static str,
    source: minijinja::Error,
}

/// Why a tenant's template cannot be used: minijinja's message, and the line it names when it names one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TemplateError {
    pub message: String,
    pub line: Option<usize>,
}

impl TemplateError {
    fn from_minijinja(error: &minijinja::Error) -> Self {
        let line = error.line().filter(|line| *line > 0);
        let what = match error.detail() {
            Some(detail) => format!("{}: {detail}", error.kind()),
            None => error.kind().to_string(),
        };
        let message = match line {
            Some(line) => format!("line {line}: {what}"),
            None => what,
        };
        Self { message, line }
    }

    fn plain(message: String) -> Self {
        Self { message, line: None }
    }
}

/// What the system prompt may use.
#[derive(Debug, Clone, Serialize)]
pub struct SystemPromptContext<'a> {
    pub tenant_name: String,
    pub today: String,
    pub business_context: Option<String>,
    /// A line on the tenant's active policy profile (`policy::profiles::summary`).
    pub policy_summary: String,
    /// The retrieved passages, rendered numbered from 1.
    pub citations: &'a [Passage],
    /// The tools the model is offered in this turn, by the names it sees.
    pub tools: Vec<PromptTool>,
    /// The end user the conversation is for, when there is one.
    pub end_user: Option<PromptEndUser>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PromptTool {
    pub name: String,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PromptEndUser {
    /// The tenant's own id for them (`external_user_id`).
    pub id: Option<String>,
    pub name: Option<String>,
}

#[derive(Debug)]
pub struct Prompts {
    environment: Environment<'static>,
}

/// The environment every template renders in: strict undefined variables, blocks trimmed.
fn environment() -> Environment<'static> {
    let mut environment = Environment::new();
    environment.set_undefined_behavior(UndefinedBehavior::Strict);
    environment.set_syntax(
        SyntaxConfig::builder().trim_blocks(true).lstrip_blocks(true).build().expect("the default delimiters"),
    );
    environment
}

impl Prompts {
    /// Loads every template and renders it once with example values, so a broken template stops the start.
    pub fn load() -> Result<Self, PromptError> {
        let mut environment = environment();
        for (name, source) in TEMPLATES {
            environment.add_template(name, source).map_err(|source| PromptError { template: name, source })?;
        }
        let prompts = Self { environment };
        prompts.system_prompt(&SystemPromptContext::example(&example_passages()))?;
        Ok(prompts)
    }

    pub fn system_prompt(&self, context: &SystemPromptContext) -> Result<String, PromptError> {
        let render = || self.environment.get_template(SYSTEM)?.render(Serde(context));
        render().map(|text| text.trim().to_owned()).map_err(|source| PromptError { template: SYSTEM, source })
    }
}

/// Renders a tenant's template (checked when it was saved) with a turn's variables.
pub fn render_tenant(body: &str, context: &SystemPromptContext) -> Result<String, TemplateError> {
    let mut environment = environment();
    environment.set_fuel(Some(FUEL));
    let template =
        environment.template_from_named_str("system", body).map_err(|error| TemplateError::from_minijinja(&error))?;
    let text = template.render(Serde(context)).map_err(|error| TemplateError::from_minijinja(&error))?;
    if text.chars().count() > MAX_RENDERED_CHARS {
        return Err(TemplateError::plain(format!("the template renders more than {MAX_RENDERED_CHARS} characters")));
    }
    Ok(text.trim().to_owned())
}

/// Checks a tenant's template before it is saved: 1 to [`MAX_TEMPLATE_CHARS`] characters, compiles, names
/// no variable a turn does not provide (in any branch, taken or not), and renders both with every variable
/// filled and with every optional one empty (no profile, passages, tools or end user).
pub fn check(body: &str) -> Result<(), TemplateError> {
    let characters = body.chars().count();
    if body.trim().is_empty() || characters > MAX_TEMPLATE_CHARS {
        return Err(TemplateError::plain(format!("body must be 1 to {MAX_TEMPLATE_CHARS} characters")));
    }
    let environment = environment();
    let template =
        environment.template_from_named_str("system", body).map_err(|error| TemplateError::from_minijinja(&error))?;
    let globals: BTreeSet<&str> = environment.globals().map(|(name, _)| name).collect();
    let mut unknown: Vec<String> = template
        .undeclared_variables(false)
        .into_iter()
        .filter(|name| !VARIABLES.contains(&name.as_str()) && !globals.contains(name.as_str()))
        .collect();
    unknown.sort();
    if let Some(name) = unknown.first() {
        let line = line_naming(body, name);
        let at = line.map(|line| format!("line {line}: ")).unwrap_or_default();
        return Err(TemplateError {
            message: format!(
                "{at}undefined value: `{name}` is not a variable of the system prompt (it may use {})",
                VARIABLES.join(", ")
            ),
            line,
        });
    }
    let passages = example_passages();
    render_tenant(body, &SystemPromptContext::example(&passages))?;
    render_tenant(body, &SystemPromptContext::bare())?;
    Ok(())
}

/// The first line where `name` stands as a whole word inside a tag (`{{ … }}` or `{% … %}`), as far as a
/// line-by-line look can tell.
fn line_naming(body: &str, name: &str) -> Option<usize> {
    let is_word = |character: char| character.is_alphanumeric() || character == '_';
    body.lines()
        .position(|line| {
            line.match_indices(name).any(|(at, _)| {
                let before = line[..at].chars().next_back();
                let after = line[at + name.len()..].chars().next();
                !before.is_some_and(is_word)
                    && !after.is_some_and(is_word)
                    && (line.contains("{{") || line.contains("{%"))
            })
        })
        .map(|index| index + 1)
}

fn example_passages() -> Vec<Passage> {
    vec![
        Passage {
            title: "Guide".to_owned(),
            source_path: "guide.md".to_owned(),
            heading_path: vec!["Guide".to_owned()],
            content: "Text.".to_owned(),
        },
        Passage {
            title: "Prices".to_owned(),
            source_path: "prices.md".to_owned(),
            heading_path: vec!["Prices".to_owned(), "Hives".to_owned()],
            content: "A starter hive costs 120 EUR.".to_owned(),
        },
    ]
}

impl<'a> SystemPromptContext<'a> {
    /// Every variable filled with example values (passages given by the caller, who keeps them).
    pub fn example(citations: &'a [Passage]) -> Self {
        Self {
            tenant_name: "Example".to_owned(),
            today: "2026-01-01".to_owned(),
            business_context: Some("Sells examples.".to_owned()),
            policy_summary: "Policy profile \"support\" (version 1): 2 tool patterns allowed, none waiting for \
                             approval."
                .to_owned(),
            citations,
            tools: vec![PromptTool {
                name: "crm__lookup".to_owned(),
                description: "Finds a customer by email.".to_owned(),
            }],
            end_user: Some(PromptEndUser { id: Some("customer-1".to_owned()), name: Some("Ada".to_owned()) }),
        }
    }

    /// Every optional variable empty.
    pub fn bare() -> Self {
        Self {
            tenant_name: "Example".to_owned(),
            today: "2026-01-01".to_owned(),
            business_context: None,
            policy_summary: "No policy profile is active: no tools may be used.".to_owned(),
            citations: &[],
            tools: Vec::new(),
            end_user: None,
        }
    }

    /// Sample passages, for previews.
    pub fn example_passages() -> Vec<Passage> {
        example_passages()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_prompt_renders_with_and_without_optional_parts() {
        let prompts = Prompts::load().unwrap();
        let passages = example_passages();
        let full = prompts.system_prompt(&SystemPromptContext::example(&passages)).unwrap();
        assert!(full.contains("assistant of Example"));
        assert!(full.contains("Sells examples."));
        assert!(full.contains("[1] Guide (guide.md)"));
        let bare = prompts
            .system_prompt(&SystemPromptContext {
                business_context: None,
                citations: &[],
                ..SystemPromptContext::example(&passages)
            })
            .unwrap();
        assert!(!bare.contains("About Example") && !bare.contains("[1]"));
        assert!(bare.contains("could not find it in the documents"), "{bare}");
        assert!(!full.contains("could not find it in the documents"));
    }

    #[test]
    fn a_template_naming_an_unknown_variable_fails() {
        let mut environment = Environment::new();
        environment.set_undefined_behavior(UndefinedBehavior::Strict);
        environment.add_template("t", "{{ no_such_variable }}").unwrap();
        assert!(
            environment
                .get_template("t")
                .unwrap()
                .render(Serde(SystemPromptContext::example(&example_passages())))
                .is_err()
        );
    }

    #[test]
    fn the_built_in_template_passes_the_tenant_check() {
        check(TEMPLATES[0].1).unwrap();
    }

    #[test]
    fn a_tenant_template_may_use_every_variable() {
        let body = "You help {{ tenant_name }} ({{ today }}).\n{{ business_context or '' }}\n{{ policy_summary }}\n\
                    {% for c in citations %}[{{ loop.index }}] {{ c.title }}: {{ c.content }}\n{% endfor %}\
                    {% for t in tools %}- {{ t.name }}: {{ t.description }}\n{% endfor %}\
                    {% if end_user %}User: {{ end_user.name or end_user.id }}{% endif %}\
                    {{ range(3) | join(',') }}";
        check(body).unwrap();
        let passages = example_passages();
        let rendered = render_tenant(body, &SystemPromptContext::example(&passages)).unwrap();
        assert!(rendered.contains("You help Example (2026-01-01)."), "{rendered}");
        assert!(rendered.contains("[2] Prices: A starter hive costs 120 EUR."), "{rendered}");
        assert!(rendered.contains("- crm__lookup: Finds a customer by email."), "{rendered}");
        assert!(rendered.contains("User: Ada"), "{rendered}");
    }

    #[test]
    fn unknown_variables_and_syntax_errors_are_refused_with_their_line() {
        let cases = [
            // An unknown variable, in a branch the samples take and in one they never take.
            ("Hello {{ tenant_name }}.\n{{ customer_name }}", 2, "customer_name"),
            ("Hello.\n\n{% if false %}{{ secret_sauce }}{% endif %}", 3, "secret_sauce"),
            // Syntax.
            ("Hello.\n{% if tenant_name %}\nno end", 3, "unexpected end of input"),
            ("Hello {{ tenant_name }\n", 1, "syntax error"),
            // Strict undefined on an attribute that does not exist.
            ("One.\nTwo {{ end_user.email.upper() }}", 2, "undefined"),
            // Used as something it is not.
            ("{% for t in today %}{{ t.name.x.y }}{% endfor %}", 1, "undefined"),
        ];
        for (body, line, says) in cases {
            let error = check(body).unwrap_err();
            assert_eq!(error.line, Some(line), "{body:?}: {error:?}");
            assert!(error.message.contains(says), "{body:?}: {error:?}");
            assert!(error.message.starts_with(&format!("line {line}: ")), "{body:?}: {error:?}");
        }
    }

    #[test]
    fn size_and_work_are_bounded() {
        assert!(check("").is_err() && check("  \n ").is_err());
        assert!(check(&"x".repeat(MAX_TEMPLATE_CHARS)).is_ok());
        assert!(check(&"x".repeat(MAX_TEMPLATE_CHARS + 1)).unwrap_err().message.contains("20000"));
        let endless = "{% for a in range(10000) %}{% for b in range(10000) %}{{ b }}{% endfor %}{% endfor %}";
        assert!(check(endless).is_err());
        let huge = "{% for a in range(20000) %}{{ tenant_name * 10 }}{% endfor %}";
        assert!(check(huge).is_err());
    }
}
