//! A tenant's profile: what the assistant is told about the business it answers for (industry,
//! description, products, a glossary of the tenant's own terms, tone, languages, free notes). Set whole by
//! an admin, validated against the limits below, audited; every turn renders it into its system prompt
//! (`business_context`, see [`business_context`]).

pub mod store;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};

use crate::audit::{self, AuditEntry};
use crate::auth::context::TenantContext;
use crate::db;

/// The limits, in characters (Unicode scalar values), documented in `docs_corpus/providers.md`. They keep
/// the profile a paragraph of the system prompt, not a document: every turn pays for it in tokens.
pub const MAX_INDUSTRY: usize = 100;
pub const MAX_DESCRIPTION: usize = 2_000;
pub const MAX_PRODUCTS: usize = 30;
pub const MAX_PRODUCT: usize = 100;
pub const MAX_GLOSSARY: usize = 50;
pub const MAX_TERM: usize = 100;
pub const MAX_MEANING: usize = 500;
pub const MAX_TONE: usize = 200;
pub const MAX_LANGUAGES: usize = 10;
/// BCP 47 allows long tags; 35 characters holds every tag that names a language, script and region.
pub const MAX_LANGUAGE_TAG: usize = 35;
pub const MAX_FREE_TEXT: usize = 4_000;
/// All the profile's text together (about 2,000 tokens).
pub const MAX_TOTAL: usize = 8_000;

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("{0}")]
    Invalid(String),
    #[error("the profile holds {0} characters of text; at most {MAX_TOTAL} in all")]
    TooLarge(usize),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// One of the tenant's own words and what it means.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlossaryEntry {
    pub term: String,
    pub meaning: String,
}

/// A tenant's profile, validated. The empty profile (no row) has every field empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct Profile {
    pub industry: Option<String>,
    pub description: Option<String>,
    pub products: Vec<String>,
    pub glossary: sqlx::types::Json<Vec<GlossaryEntry>>,
    pub tone: Option<String>,
    pub languages: Vec<String>,
    pub free_text: Option<String>,
    /// When it was last set; `None` for a tenant that never set one.
    pub updated_at: Option<DateTime<Utc>>,
}

/// A profile as a client sends it, before validation: absent fields are empty.
#[derive(Debug, Clone, Default)]
pub struct ProfileInput {
    pub industry: Option<String>,
    pub description: Option<String>,
    pub products: Vec<String>,
    pub glossary: Vec<GlossaryEntry>,
    pub tone: Option<String>,
    pub languages: Vec<String>,
    pub free_text: Option<String>,
}

impl Profile {
    /// Validates a whole profile: text trimmed (blank is empty), lengths and counts within the limits,
    /// one-line fields without line breaks (they are rendered one per line), no control characters, no
    /// duplicate product, term or language, language tags shaped like BCP 47.
    pub fn parse(input: ProfileInput) -> Result<Self, ProfileError> {
        let industry = optional_text("industry", input.industry, MAX_INDUSTRY, Lines::One)?;
        let description = optional_text("description", input.description, MAX_DESCRIPTION, Lines::Many)?;
        let tone = optional_text("tone", input.tone, MAX_TONE, Lines::One)?;
        let free_text = optional_text("free_text", input.free_text, MAX_FREE_TEXT, Lines::Many)?;
        if input.products.len() > MAX_PRODUCTS {
            return Err(invalid(format!("products holds at most {MAX_PRODUCTS} items")));
        }
        let products = input
            .products
            .into_iter()
            .map(|product| required_text("each product", product, MAX_PRODUCT, Lines::One))
            .collect::<Result<Vec<_>, _>>()?;
        refuse_duplicates("products", products.iter().map(String::as_str))?;
        if input.glossary.len() > MAX_GLOSSARY {
            return Err(invalid(format!("glossary holds at most {MAX_GLOSSARY} entries")));
        }
        let glossary = input
            .glossary
            .into_iter()
            .map(|entry| {
                Ok(GlossaryEntry {
                    term: required_text("each glossary term", entry.term, MAX_TERM, Lines::One)?,
                    meaning: required_text("each glossary meaning", entry.meaning, MAX_MEANING, Lines::One)?,
                })
            })
            .collect::<Result<Vec<_>, ProfileError>>()?;
        refuse_duplicates("glossary terms", glossary.iter().map(|entry| entry.term.as_str()))?;
        if input.languages.len() > MAX_LANGUAGES {
            return Err(invalid(format!("languages holds at most {MAX_LANGUAGES} tags")));
        }
        let languages = input.languages.iter().map(|tag| language_tag(tag)).collect::<Result<Vec<_>, _>>()?;
        refuse_duplicates("languages", languages.iter().map(String::as_str))?;
        let profile = Self {
            industry,
            description,
            products,
            glossary: sqlx::types::Json(glossary),
            tone,
            languages,
            free_text,
            updated_at: None,
        };
        let total = profile.characters();
        if total > MAX_TOTAL {
            return Err(ProfileError::TooLarge(total));
        }
        Ok(profile)
    }

    /// Every field's text together, in characters.
    fn characters(&self) -> usize {
        let count = |text: &Option<String>| text.as_deref().map_or(0, |text| text.chars().count());
        count(&self.industry)
            + count(&self.description)
            + count(&self.tone)
            + count(&self.free_text)
            + self.products.iter().map(|product| product.chars().count()).sum::<usize>()
            + self
                .glossary
                .iter()
                .map(|entry| entry.term.chars().count() + entry.meaning.chars().count())
                .sum::<usize>()
            + self.languages.iter().map(String::len).sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.characters() == 0
    }

    /// The profile as the system prompt's `business_context`: one labelled part per field that is set,
    /// `None` when none is.
    pub fn business_context(&self) -> Option<String> {
        let mut parts: Vec<String> = Vec::new();
        if let Some(industry) = &self.industry {
            parts.push(format!("Industry: {industry}"));
        }
        if let Some(description) = &self.description {
            parts.push(description.clone());
        }
        if !self.products.is_empty() {
            let list: Vec<String> = self.products.iter().map(|product| format!("- {product}")).collect();
            parts.push(format!("Products and services:\n{}", list.join("\n")));
        }
        if !self.glossary.is_empty() {
            let list: Vec<String> =
                self.glossary.iter().map(|entry| format!("- {}: {}", entry.term, entry.meaning)).collect();
            parts.push(format!("Terms and what they mean here:\n{}", list.join("\n")));
        }
        if let Some(tone) = &self.tone {
            parts.push(format!("Tone of the answers: {tone}"));
        }
        if let Some((first, _)) = self.languages.split_first() {
            parts.push(format!(
                "Languages: {}. Answer in the language of the question when it is one of these, else in {first}.",
                self.languages.join(", ")
            ));
        }
        if let Some(free_text) = &self.free_text {
            parts.push(free_text.clone());
        }
        (!parts.is_empty()).then(|| parts.join("\n\n"))
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Lines {
    One,
    Many,
}

fn invalid(message: String) -> ProfileError {
    ProfileError::Invalid(message)
}

/// Text trimmed, `None` when blank; refused past `limit` characters (as sent), with a line break in a one-line
/// field, or with a control character other than line breaks and tabs.
fn optional_text(name: &str, text: Option<String>, limit: usize, lines: Lines) -> Result<Option<String>, ProfileError> {
    let Some(text) = text else { return Ok(None) };
    // Counted as sent, before trimming, as the API document's `maxLength` counts.
    if text.chars().count() > limit {
        return Err(invalid(format!("{name} must be at most {limit} characters")));
    }
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if lines == Lines::One && text.contains(['\n', '\r']) {
        return Err(invalid(format!("{name} must be one line")));
    }
    if text.chars().any(|character| character.is_control() && !matches!(character, '\n' | '\r' | '\t')) {
        return Err(invalid(format!("{name} must not contain control characters")));
    }
    Ok(Some(text.to_owned()))
}

fn required_text(name: &str, text: String, limit: usize, lines: Lines) -> Result<String, ProfileError> {
    optional_text(name, Some(text), limit, lines)?
        .ok_or_else(|| invalid(format!("{name} must be 1 to {limit} characters")))
}

/// Case-insensitively: `Hive` and `hive` are one term to the model.
fn refuse_duplicates<'a>(name: &str, items: impl Iterator<Item = &'a str>) -> Result<(), ProfileError> {
    let mut seen = std::collections::HashSet::new();
    for item in items {
        if !seen.insert(item.to_lowercase()) {
            return Err(invalid(format!("{name} names `{item}` twice")));
        }
    }
    Ok(())
}

/// A BCP 47 tag's shape: a language of 2 or 3 letters (`en`, `gsw`), then subtags of 1 to 8 letters or
/// digits (`de-CH`, `zh-Hant-TW`, `es-419`). Kept as given; the registry itself is not consulted.
fn language_tag(tag: &str) -> Result<String, ProfileError> {
    let tag = tag.trim();
    let refused = || {
        invalid(format!(
            "`{tag}` is not a language tag: use BCP 47, such as en, de-CH or zh-Hant-TW (at most {MAX_LANGUAGE_TAG} \
             characters)"
        ))
    };
    if tag.len() > MAX_LANGUAGE_TAG {
        return Err(refused());
    }
    let mut subtags = tag.split('-');
    let language = subtags.next().unwrap_or_default();
    if !(2..=3).contains(&language.len()) || !language.bytes().all(|byte| byte.is_ascii_alphabetic()) {
        return Err(refused());
    }
    if !subtags.all(|subtag| (1..=8).contains(&subtag.len()) && subtag.bytes().all(|byte| byte.is_ascii_alphanumeric()))
    {
        return Err(refused());
    }
    Ok(tag.to_owned())
}

/// The tenant's profile; empty when it never set one.
pub async fn get(pool: &PgPool, context: &TenantContext) -> Result<Profile, ProfileError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let profile = store::find(&mut transaction).await?.unwrap_or_default();
    transaction.commit().await?;
    Ok(profile)
}

/// Replaces the tenant's profile with `profile` (validated by [`Profile::parse`]), audited as
/// `tenant_profile.updated` with the profile as it now is (it holds no secret: it is what the model is told).
pub async fn replace(pool: &PgPool, context: &TenantContext, profile: &Profile) -> Result<Profile, ProfileError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let saved = store::upsert(&mut transaction, context.tenant_id(), profile).await?;
    let details = serde_json::json!({
        "industry": saved.industry,
        "description": saved.description,
        "products": saved.products,
        "glossary": saved.glossary.0,
        "tone": saved.tone,
        "languages": saved.languages,
        "free_text": saved.free_text,
    });
    let entry =
        AuditEntry::new("tenant_profile.updated", "tenant", context.tenant_id().to_string()).with_details(details);
    audit::record(&mut transaction, context, &entry).await?;
    transaction.commit().await?;
    Ok(saved)
}

/// What a turn's system prompt says about the tenant, read in the turn's own transaction (bound to the
/// tenant); `None` when it has no profile.
pub async fn business_context(connection: &mut PgConnection) -> Result<Option<String>, sqlx::Error> {
    Ok(store::find(connection).await?.and_then(|profile| profile.business_context()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> ProfileInput {
        ProfileInput {
            industry: Some("  Beekeeping supplies ".to_owned()),
            description: Some("We sell hives.\nAnd bees.".to_owned()),
            products: vec!["Starter hive".to_owned(), "Smoker".to_owned()],
            glossary: vec![GlossaryEntry {
                term: "Super".to_owned(),
                meaning: "the box honey is stored in".to_owned(),
            }],
            tone: Some("warm, brief".to_owned()),
            languages: vec!["en".to_owned(), "de-CH".to_owned()],
            free_text: Some("Never promise delivery dates.".to_owned()),
        }
    }

    #[test]
    fn a_profile_is_trimmed_and_rendered_part_by_part() {
        let profile = Profile::parse(input()).unwrap();
        assert_eq!(profile.industry.as_deref(), Some("Beekeeping supplies"));
        let context = profile.business_context().unwrap();
        for expected in [
            "Industry: Beekeeping supplies",
            "We sell hives.\nAnd bees.",
            "Products and services:\n- Starter hive\n- Smoker",
            "- Super: the box honey is stored in",
            "Tone of the answers: warm, brief",
            "Languages: en, de-CH. Answer in the language of the question when it is one of these, else in en.",
            "Never promise delivery dates.",
        ] {
            assert!(context.contains(expected), "{expected:?} in {context}");
        }
        let blank = ProfileInput { industry: Some("   ".to_owned()), ..ProfileInput::default() };
        let empty = Profile::parse(blank).unwrap();
        assert!(empty.is_empty());
        assert_eq!(empty.business_context(), None);
    }

    #[test]
    fn each_limit_and_rule_is_refused_with_what_to_fix() {
        let refused = |change: fn(&mut ProfileInput)| {
            let mut input = input();
            change(&mut input);
            Profile::parse(input).unwrap_err().to_string()
        };
        assert!(refused(|p| p.industry = Some("x".repeat(MAX_INDUSTRY + 1))).contains("industry"));
        assert!(refused(|p| p.tone = Some("warm\nbrief".to_owned())).contains("one line"));
        assert!(refused(|p| p.products = vec!["a".to_owned(); MAX_PRODUCTS + 1]).contains("at most 30"));
        assert!(refused(|p| p.products = vec!["Smoker".to_owned(), "smoker".to_owned()]).contains("twice"));
        assert!(refused(|p| p.products = vec![" ".to_owned()]).contains("each product"));
        assert!(refused(|p| p.glossary[0].meaning = String::new()).contains("meaning"));
        assert!(refused(|p| p.description = Some("bell\u{7}".to_owned())).contains("control"));
        for tag in ["english", "e", "en_US", "en-", "de-CH-toolongsubtag", "42"] {
            let mut bad = input();
            bad.languages = vec![tag.to_owned()];
            assert!(Profile::parse(bad).unwrap_err().to_string().contains("language tag"), "{tag}");
        }
        for tag in ["gsw", "zh-Hant-TW", "es-419", "EN"] {
            let mut good = input();
            good.languages = vec![tag.to_owned()];
            assert!(Profile::parse(good).is_ok(), "{tag}");
        }
        let mut large = input();
        large.description = Some("d".repeat(MAX_DESCRIPTION));
        large.free_text = Some("f".repeat(MAX_FREE_TEXT));
        large.glossary = (0..10)
            .map(|number| GlossaryEntry { term: format!("term {number}"), meaning: "m".repeat(MAX_MEANING) })
            .collect();
        assert!(matches!(Profile::parse(large), Err(ProfileError::TooLarge(total)) if total > MAX_TOTAL));
    }
}
