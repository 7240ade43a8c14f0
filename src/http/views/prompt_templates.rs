//! A tenant's system prompt templates as the API shows them: versions, what is in force, a preview.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::prompts::store::{StoredTemplate, TemplateSummary};
use crate::prompts::tenant::InForce;

/// A version of the tenant's system prompt template, whole.
#[derive(Debug, Serialize, ToSchema)]
pub struct PromptTemplateView {
    /// `system`.
    pub name: String,
    /// 1, 2, 3… per tenant; a version never changes.
    pub version: i32,
    /// The minijinja template.
    pub body: String,
    pub note: Option<String>,
    /// Whether it is the version in force.
    pub active: bool,
    pub created_at: DateTime<Utc>,
}

impl From<&StoredTemplate> for PromptTemplateView {
    fn from(template: &StoredTemplate) -> Self {
        Self {
            name: template.name.clone(),
            version: template.version,
            body: template.body.clone(),
            note: template.note.clone(),
            active: template.active,
            created_at: template.created_at,
        }
    }
}

/// A version in the list, without its body.
#[derive(Debug, Serialize, ToSchema)]
pub struct PromptTemplateSummaryView {
    pub name: String,
    pub version: i32,
    pub note: Option<String>,
    /// The body's length in characters.
    pub characters: i32,
    pub active: bool,
    pub created_at: DateTime<Utc>,
}

impl From<&TemplateSummary> for PromptTemplateSummaryView {
    fn from(template: &TemplateSummary) -> Self {
        Self {
            name: template.name.clone(),
            version: template.version,
            note: template.note.clone(),
            characters: template.characters,
            active: template.active,
            created_at: template.created_at,
        }
    }
}

/// What every new turn's system prompt is made from.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActivePromptTemplateView {
    /// `default` (the built-in template) or `tenant` (a version of the tenant's own).
    pub template: &'static str,
    /// The tenant's version in force; null for the default.
    pub version: Option<i32>,
    /// When that version was put in force; null for the default.
    pub activated_at: Option<DateTime<Utc>>,
    /// The built-in template's id (`system.md.j2@` and a hash of its text), which runs record while it
    /// is in force.
    pub default_id: String,
}

impl From<&InForce> for ActivePromptTemplateView {
    fn from(in_force: &InForce) -> Self {
        Self {
            template: if in_force.active.is_some() { "tenant" } else { "default" },
            version: in_force.active.as_ref().map(|active| active.version),
            activated_at: in_force.active.as_ref().map(|active| active.activated_at),
            default_id: in_force.default_id.clone(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PromptTemplateList {
    pub active: ActivePromptTemplateView,
    /// Newest first.
    pub versions: Vec<PromptTemplateSummaryView>,
}

impl PromptTemplateList {
    pub fn new(in_force: &InForce, versions: &[TemplateSummary]) -> Self {
        Self {
            active: ActivePromptTemplateView::from(in_force),
            versions: versions.iter().map(PromptTemplateSummaryView::from).collect(),
        }
    }
}

/// A template rendered with the tenant's name, profile and policy, and sample passages, tools and end user.
#[derive(Debug, Serialize, ToSchema)]
pub struct PromptPreviewView {
    pub rendered: String,
}
