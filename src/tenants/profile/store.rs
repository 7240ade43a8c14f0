//! SQL for `tenant_profiles`: one row per tenant, read and replaced in a transaction bound to it.

use sqlx::PgConnection;

use super::Profile;
use crate::ids::TenantId;

/// The tenant's profile, if it ever set one.
pub async fn find(connection: &mut PgConnection) -> Result<Option<Profile>, sqlx::Error> {
    sqlx::query_as(
        "SELECT industry, description, products, glossary, tone, languages, free_text, updated_at \
         FROM tenant_profiles WHERE tenant_id = current_tenant_id()",
    )
    .fetch_optional(connection)
    .await
}

/// Makes or replaces the tenant's profile, every field at once.
pub async fn upsert(
    connection: &mut PgConnection,
    tenant_id: TenantId,
    profile: &Profile,
) -> Result<Profile, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO tenant_profiles \
         (tenant_id, industry, description, products, glossary, tone, languages, free_text, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now()) \
         ON CONFLICT (tenant_id) DO UPDATE SET industry = EXCLUDED.industry, \
             description = EXCLUDED.description, products = EXCLUDED.products, glossary = EXCLUDED.glossary, \
             tone = EXCLUDED.tone, languages = EXCLUDED.languages, free_text = EXCLUDED.free_text, \
             updated_at = now() \
         RETURNING industry, description, products, glossary, tone, languages, free_text, updated_at",
    )
    .bind(tenant_id)
    .bind(&profile.industry)
    .bind(&profile.description)
    .bind(&profile.products)
    .bind(&profile.glossary)
    .bind(&profile.tone)
    .bind(&profile.languages)
    .bind(&profile.free_text)
    .fetch_one(connection)
    .await
}
