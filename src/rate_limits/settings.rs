//! The rate limits a tenant's admin sets: the tenant's own, its end users' (each apart, the same limit
//! for all) and each API key's; validated, stored and audited. Where the tenant sets nothing, the
//! operator's defaults apply (`super::operator_limits`).

use serde::Serialize;
use serde_json::{Map, Value, json};
use sqlx::PgPool;

use super::{Limits, MAX_PER_MINUTE, RateLimitError, store};
use crate::audit::{self, AuditEntry};
use crate::auth::context::TenantContext;
use crate::db;
use crate::ids::ApiKeyId;

/// The subjects of the tenant's own limits and its end users' (an API key's is its id).
const TENANT_SUBJECT: &str = "tenant";
const END_USER_SUBJECT: &str = "end_user";

/// The limits a tenant set for itself and for each of its end users.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TenantLimits {
    pub tenant: Limits,
    pub end_user: Limits,
}

pub async fn tenant_limits(pool: &PgPool, context: &TenantContext) -> Result<TenantLimits, RateLimitError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let limits = TenantLimits {
        tenant: store::setting(&mut transaction, TENANT_SUBJECT).await?,
        end_user: store::setting(&mut transaction, END_USER_SUBJECT).await?,
    };
    transaction.commit().await?;
    Ok(limits)
}

/// Replaces the tenant's limits and its end users' with `fields` (`{"tenant": {…}, "end_user": {…}}`; a
/// missing or null object or value is no limit of the tenant's own), audited.
pub async fn set_tenant_limits(
    pool: &PgPool,
    context: &TenantContext,
    fields: &Map<String, Value>,
) -> Result<TenantLimits, RateLimitError> {
    let limits = parse_tenant_limits(fields)?;
    let tenant_id = context.tenant_id();
    let mut transaction = db::begin_tenant(pool, tenant_id).await?;
    store::put_setting(&mut transaction, tenant_id, TENANT_SUBJECT, limits.tenant).await?;
    store::put_setting(&mut transaction, tenant_id, END_USER_SUBJECT, limits.end_user).await?;
    let entry = AuditEntry::new("rate_limits.updated", "tenant", tenant_id.to_string())
        .with_details(json!({ "tenant": limits.tenant, "end_user": limits.end_user }));
    audit::record(&mut transaction, context, &entry).await?;
    transaction.commit().await?;
    Ok(limits)
}

/// The limits the tenant set for one of its keys.
pub async fn key_limits(pool: &PgPool, context: &TenantContext, key: ApiKeyId) -> Result<Limits, RateLimitError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    ensure_key(&mut transaction, key).await?;
    let limits = store::setting(&mut transaction, &key.to_string()).await?;
    transaction.commit().await?;
    Ok(limits)
}

/// Replaces one key's limits with `fields` (`requests_per_minute`, `tokens_per_minute`), audited.
pub async fn set_key_limits(
    pool: &PgPool,
    context: &TenantContext,
    key: ApiKeyId,
    fields: &Map<String, Value>,
) -> Result<Limits, RateLimitError> {
    let limits = parse_limits(fields, "")?;
    let tenant_id = context.tenant_id();
    let mut transaction = db::begin_tenant(pool, tenant_id).await?;
    ensure_key(&mut transaction, key).await?;
    store::put_setting(&mut transaction, tenant_id, &key.to_string(), limits).await?;
    let entry = AuditEntry::new("rate_limits.updated", "api_key", key.to_string()).with_details(json!(limits));
    audit::record(&mut transaction, context, &entry).await?;
    transaction.commit().await?;
    Ok(limits)
}

/// Another tenant's key, or none, is not found: row-level security shows only this tenant's.
async fn ensure_key(connection: &mut sqlx::PgConnection, key: ApiKeyId) -> Result<(), RateLimitError> {
    let keys = crate::api_keys::store::list(connection).await?;
    if keys.iter().any(|known| known.id == key) { Ok(()) } else { Err(RateLimitError::ApiKeyNotFound) }
}

/// `{"tenant": {…}, "end_user": {…}}`, each as [`parse_limits`] reads it, or null.
pub fn parse_tenant_limits(fields: &Map<String, Value>) -> Result<TenantLimits, RateLimitError> {
    let mut limits = TenantLimits::default();
    for (name, value) in fields {
        let slot = match name.as_str() {
            "tenant" => &mut limits.tenant,
            "end_user" => &mut limits.end_user,
            _ => return Err(RateLimitError::Invalid(format!("unknown field `{name}`; expected `tenant`, `end_user`"))),
        };
        *slot = match value {
            Value::Null => Limits::default(),
            Value::Object(inner) => parse_limits(inner, &format!("{name}."))?,
            _ => return Err(RateLimitError::Invalid(format!("`{name}` must be an object of limits, or null"))),
        };
    }
    Ok(limits)
}

/// `{"requests_per_minute": n, "tokens_per_minute": n}`: whole numbers from 1 to [`MAX_PER_MINUTE`]; null
/// or missing is no limit. `path` prefixes field names in messages.
pub fn parse_limits(fields: &Map<String, Value>, path: &str) -> Result<Limits, RateLimitError> {
    let mut limits = Limits::default();
    for (name, value) in fields {
        let slot = match name.as_str() {
            "requests_per_minute" => &mut limits.requests_per_minute,
            "tokens_per_minute" => &mut limits.tokens_per_minute,
            _ => {
                return Err(RateLimitError::Invalid(format!(
                    "unknown field `{path}{name}`; expected `requests_per_minute`, `tokens_per_minute`"
                )));
            }
        };
        *slot = match value {
            Value::Null => None,
            Value::Number(number) => match number.as_u64() {
                Some(limit @ 1..=MAX_PER_MINUTE) => Some(limit),
                _ => return Err(out_of_range(path, name)),
            },
            _ => return Err(out_of_range(path, name)),
        };
    }
    Ok(limits)
}

fn out_of_range(path: &str, name: &str) -> RateLimitError {
    RateLimitError::Invalid(format!(
        "`{path}{name}` must be a whole number from 1 to {MAX_PER_MINUTE}, or null for no limit"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_whole_positive_numbers_or_null_and_nothing_else() {
        let fields = |value: Value| value.as_object().unwrap().clone();
        let limits = parse_limits(&fields(json!({"requests_per_minute": 60, "tokens_per_minute": null})), "").unwrap();
        assert_eq!(limits, Limits { requests_per_minute: Some(60), tokens_per_minute: None });
        for bad in [json!(-1), json!(0), json!(1.5), json!("60"), json!(true), json!(MAX_PER_MINUTE + 1)] {
            let result = parse_limits(&fields(json!({ "requests_per_minute": bad })), "");
            assert!(matches!(result, Err(RateLimitError::Invalid(_))), "{bad}");
        }
        assert!(parse_limits(&fields(json!({"requests_per_hour": 5})), "").is_err());
        let tenant = parse_tenant_limits(&fields(json!({"end_user": {"tokens_per_minute": 500}, "tenant": null})));
        assert_eq!(tenant.unwrap().end_user.tokens_per_minute, Some(500));
        assert!(parse_tenant_limits(&fields(json!({"tenant": 5}))).is_err());
        assert!(parse_tenant_limits(&fields(json!({"api_key": {}}))).is_err());
    }
}
