//! SQL for retention: a tenant's settings. The deletions themselves are each domain's own
//! (`conversations`, `runs`, `usage`, `audit` stores); every function runs in a tenant-bound transaction.

use sqlx::PgConnection;

use super::Settings;

/// The tenant's retention settings; all `None` when it has no settings row.
pub async fn settings(connection: &mut PgConnection) -> Result<Settings, sqlx::Error> {
    let settings: Option<Settings> = sqlx::query_as(
        "SELECT conversation_retention_days AS conversations, usage_retention_days AS usage, \
                audit_retention_days AS audit \
         FROM tenant_configs",
    )
    .fetch_optional(connection)
    .await?;
    Ok(settings.unwrap_or_default())
}
