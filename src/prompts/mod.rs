//! System prompt templates from `prompts/`, compiled into the binary and checked at start with strict
//! undefined variables.

use minijinja::syntax::SyntaxConfig;
use minijinja::value::Serde;
use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

use crate::providers::Passage;

const SYSTEM: &str = "system.md.j2";
const TEMPLATES: &[(&str, &str)] = &[(SYSTEM, include_str!("../../prompts/system.md.j2"))];

/// The system prompt template built into this binary, as `name@` and the first 16 hex digits of its
/// content's SHA-256: what feedback records as the prompt an answer was made with, until tenants have
/// versioned templates of their own.
pub fn system_template_id() -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(include_str!("../../prompts/system.md.j2").as_bytes());
    format!("{SYSTEM}@{}", &hex::encode(digest)[..16])
}

#[derive(Debug, thiserror::Error)]
#[error("prompt template {template}: {source}")]
pub struct PromptError {
    template: &'static str,
    source: minijinja::Error,
}

/// What the system prompt may use.
#[derive(Debug, Clone, Serialize)]
pub struct SystemPromptContext<'a> {
    pub tenant_name: String,
    pub today: String,
    pub business_context: Option<String>,
    /// The retrieved passages, rendered numbered from 1.
    pub citations: &'a [Passage],
}

#[derive(Debug)]
pub struct Prompts {
    environment: Environment<'static>,
}

impl Prompts {
    /// Loads every template and renders it once with example values, so a broken template stops the start.
    pub fn load() -> Result<Self, PromptError> {
        let mut environment = Environment::new();
        environment.set_undefined_behavior(UndefinedBehavior::Strict);
        environment.set_syntax(
            SyntaxConfig::builder().trim_blocks(true).lstrip_blocks(true).build().expect("the default delimiters"),
        );
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

fn example_passages() -> Vec<Passage> {
    vec![Passage {
        title: "Guide".to_owned(),
        source_path: "guide.md".to_owned(),
        heading_path: vec!["Guide".to_owned()],
        content: "Text.".to_owned(),
    }]
}

impl<'a> SystemPromptContext<'a> {
    fn example(citations: &'a [Passage]) -> Self {
        Self {
            tenant_name: "Example".to_owned(),
            today: "2026-01-01".to_owned(),
            business_context: Some("Sells examples.".to_owned()),
            citations,
        }
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
}
