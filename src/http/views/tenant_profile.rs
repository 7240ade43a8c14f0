//! A tenant's profile as the API shows it: every field, empty ones as `null` or `[]`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::tenants::profile::Profile;

#[derive(Debug, Serialize, ToSchema)]
pub struct TenantProfileView {
    pub industry: Option<String>,
    pub description: Option<String>,
    pub products: Vec<String>,
    pub glossary: Vec<GlossaryEntryView>,
    pub tone: Option<String>,
    /// BCP 47 tags, as given; the first is the language of answers to a question in any other.
    pub languages: Vec<String>,
    pub free_text: Option<String>,
    /// When it was last set; null while the tenant has never set one.
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GlossaryEntryView {
    pub term: String,
    pub meaning: String,
}

impl From<&Profile> for TenantProfileView {
    fn from(profile: &Profile) -> Self {
        Self {
            industry: profile.industry.clone(),
            description: profile.description.clone(),
            products: profile.products.clone(),
            glossary: profile
                .glossary
                .iter()
                .map(|entry| GlossaryEntryView { term: entry.term.clone(), meaning: entry.meaning.clone() })
                .collect(),
            tone: profile.tone.clone(),
            languages: profile.languages.clone(),
            free_text: profile.free_text.clone(),
            updated_at: profile.updated_at,
        }
    }
}
