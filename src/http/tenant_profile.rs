//! `/api/v1/tenant/profile` (admin): what the assistant is told about the tenant in every turn.

use axum::extract::State;
use serde::Deserialize;
use utoipa::ToSchema;

use super::AppState;
use super::error::ApiError;
use super::extract::{Json, Tenant};
use super::views::tenant_profile::TenantProfileView;
use crate::auth::context::Scope;
use crate::tenants::profile::{self, GlossaryEntry, Profile, ProfileInput};

/// A whole profile: what is absent (or null) is empty afterwards. Text is trimmed; blank text is empty.
/// All the text together holds at most 8,000 characters.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantProfileBody {
    /// What the tenant does, in a few words (one line).
    #[schema(max_length = 100)]
    industry: Option<String>,
    /// A description of the business.
    #[schema(max_length = 2000)]
    description: Option<String>,
    /// Products and services, one line of at most 100 characters each, none twice.
    #[schema(max_items = 30)]
    products: Option<Vec<String>>,
    /// The tenant's own terms and what they mean (at most 50; terms are not repeated).
    #[schema(max_items = 50)]
    glossary: Option<Vec<GlossaryEntryBody>>,
    /// How answers should sound (one line).
    #[schema(max_length = 200)]
    tone: Option<String>,
    /// BCP 47 language tags (`en`, `de-CH`, `zh-Hant-TW`), none twice: answers follow the question's
    /// language when it is one of them, else the first.
    #[schema(max_items = 10)]
    languages: Option<Vec<String>>,
    /// Anything else the assistant should know.
    #[schema(max_length = 4000)]
    free_text: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GlossaryEntryBody {
    /// One line.
    #[schema(min_length = 1, max_length = 100)]
    term: String,
    /// One line.
    #[schema(min_length = 1, max_length = 500)]
    meaning: String,
}

/// The tenant's profile; every field empty while it has never set one.
#[utoipa::path(
    get, path = "/tenant/profile", operation_id = "get_tenant_profile", tag = "tenant",
    responses((status = 200, description = "The profile.", body = TenantProfileView)),
    security(("tenant_key" = ["admin"])),
)]
pub async fn get(
    State(state): State<AppState>,
    Tenant(context): Tenant,
) -> Result<axum::Json<TenantProfileView>, ApiError> {
    context.require(Scope::Admin)?;
    Ok(axum::Json(TenantProfileView::from(&profile::get(&state.db, &context).await?)))
}

/// Replaces the tenant's profile, which every later turn's system prompt includes. Audited as
/// `tenant_profile.updated`.
#[utoipa::path(
    put, path = "/tenant/profile", operation_id = "put_tenant_profile", tag = "tenant",
    request_body = TenantProfileBody,
    responses((status = 200, description = "The profile as it now is.", body = TenantProfileView)),
    security(("tenant_key" = ["admin"])),
)]
pub async fn put(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Json(body): Json<TenantProfileBody>,
) -> Result<axum::Json<TenantProfileView>, ApiError> {
    context.require(Scope::Admin)?;
    let input = ProfileInput {
        industry: body.industry,
        description: body.description,
        products: body.products.unwrap_or_default(),
        glossary: body
            .glossary
            .unwrap_or_default()
            .into_iter()
            .map(|entry| GlossaryEntry { term: entry.term, meaning: entry.meaning })
            .collect(),
        tone: body.tone,
        languages: body.languages.unwrap_or_default(),
        free_text: body.free_text,
    };
    let saved = profile::replace(&state.db, &context, &Profile::parse(input)?).await?;
    Ok(axum::Json(TenantProfileView::from(&saved)))
}
