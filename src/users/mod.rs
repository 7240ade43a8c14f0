//! End users: the people of a tenant that its integration calls and widget tokens act for, each known by
//! the tenant's own `external_id` and made on first sight. Their conversations belong to them. Erasing
//! one ([`erase`]) removes what they said and what was said to them, and leaves a pseudonym where the
//! accounting and the audit trail named them. An end user may belong to a policy group ([`set_group`]):
//! the profile the tenant maps to that group applies to their runs, unless their key names its own.

pub mod store;

use serde::Serialize;
use sqlx::PgPool;

use crate::audit::{self, AuditEntry};
use crate::auth::context::TenantContext;
use crate::db;
use crate::ids::UserId;

/// What erased end users' pseudonyms start with. No live end user may be called so: a pseudonym reused as
/// an id would attach new conversations to an erased person's records, where no erasure reaches them.
pub const PSEUDONYM_PREFIX: &str = "erased-";

/// Why `external_id` cannot name an end user, if it cannot: 1 to 200 characters, not a pseudonym.
pub fn refuse_external_id(external_id: &str) -> Option<&'static str> {
    if external_id.trim().is_empty() || external_id.len() > 200 {
        return Some("external_user_id must be 1 to 200 characters");
    }
    external_id
        .starts_with(PSEUDONYM_PREFIX)
        .then_some("external_user_id may not start with `erased-`: such ids name erased end users")
}

#[derive(Debug, thiserror::Error)]
pub enum EndUserError {
    #[error("{0}")]
    Invalid(String),
    #[error("no end user with this id (or they were already erased)")]
    NotFound,
    #[error(
        "a run in one of this end user's conversations has not ended: cancel it (POST /api/v1/runs/{{id}}/cancel) \
         or let it finish, then erase them"
    )]
    Busy,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// What an erasure did.
#[derive(Debug, Clone, Serialize)]
pub struct Erasure {
    /// What usage reports and the audit trail now call them: `erased-` and 32 random hex digits, the same
    /// in every row, unrelated to their id.
    pub pseudonym: String,
    pub conversations: u64,
    pub runs: u64,
    pub usage_records: u64,
    pub audit_events: u64,
}

/// Erases the end user the tenant calls `external_id`, in one transaction (all of it or nothing):
///
/// - their conversations, with every message and citation, and the idempotency keys pointing at them;
/// - their runs' text (events, tool calls with arguments and results, patches, requests, error messages);
///   the runs themselves stay, detached, because usage records point at them (`runs` count and run kind in
///   reports);
/// - their own budget rows and rate-limit buckets;
/// - their row: a pseudonymous row takes its place, with a new id, and their usage records point at it,
///   so counts and costs stay and still group by person; widget tokens minted for them name the old id,
///   which no longer exists, so they reach no conversation (tokens are not stored: nothing else to remove);
/// - their external id and old user id in the audit trail, replaced by the pseudonym and the new id
///   through the trail's one exception for this (`audit::store::pseudonymise`).
///
/// Recorded as `end_user.erased`, naming only the pseudonym. A run of theirs still going refuses the
/// erasure (`Busy`), so no turn writes text back afterwards. Erasing the same id again is `NotFound`.
pub async fn erase(pool: &PgPool, context: &TenantContext, external_id: &str) -> Result<Erasure, EndUserError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let user = store::lock_for_erasure(&mut transaction, external_id).await?.ok_or(EndUserError::NotFound)?;
    let sessions = crate::conversations::store::lock_sessions_of_user(&mut transaction, user).await?;
    if crate::runs::store::any_unfinished_in(&mut transaction, &sessions).await? {
        return Err(EndUserError::Busy);
    }
    let runs = crate::runs::store::strip_runs_of_sessions(&mut transaction, &sessions).await?;
    let conversations = crate::conversations::store::delete_sessions(&mut transaction, &sessions).await?;

    let pseudonymous = UserId::new();
    let pseudonym = format!("{PSEUDONYM_PREFIX}{}", uuid::Uuid::new_v4().simple());
    store::insert_erased(&mut transaction, context.tenant_id(), pseudonymous, &pseudonym).await?;
    let usage_records = crate::usage::store::reassign_end_user(&mut transaction, user, pseudonymous).await?;
    crate::budgets::store::delete_end_user_spend(&mut transaction, user).await?;
    crate::rate_limits::store::delete_end_user_buckets(&mut transaction, external_id).await?;
    store::delete(&mut transaction, user).await?;
    let audit_events =
        audit::store::pseudonymise(&mut transaction, user, external_id, pseudonymous, &pseudonym).await?;

    let erasure = Erasure { pseudonym, conversations, runs, usage_records, audit_events };
    let entry =
        AuditEntry::new("end_user.erased", "end_user", erasure.pseudonym.clone()).with_details(serde_json::json!({
            "conversations": erasure.conversations, "runs": erasure.runs,
            "usage_records": erasure.usage_records, "audit_events": erasure.audit_events,
        }));
    audit::record(&mut transaction, context, &entry).await?;
    transaction.commit().await?;
    Ok(erasure)
}

/// An end user's policy group, as just set.
#[derive(Debug, Clone, Serialize)]
pub struct EndUserGroup {
    pub external_user_id: String,
    pub policy_group: Option<String>,
}

/// An end user's policy group (`NotFound`: no end user of that id).
pub async fn group(pool: &PgPool, context: &TenantContext, external_id: &str) -> Result<EndUserGroup, EndUserError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let group = store::group_of(&mut transaction, external_id).await?.ok_or(EndUserError::NotFound)?;
    transaction.commit().await?;
    Ok(EndUserGroup { external_user_id: external_id.to_owned(), policy_group: group })
}

/// Puts the end user the tenant calls `external_id` in a policy group (`None`: in none), made on first
/// sight like the integration API and widget tokens make them; audited with the group before. A group the
/// tenant maps to no profile changes nothing until it does.
pub async fn set_group(
    pool: &PgPool,
    context: &TenantContext,
    external_id: &str,
    group: Option<&str>,
) -> Result<EndUserGroup, EndUserError> {
    if let Some(refused) = refuse_external_id(external_id) {
        return Err(EndUserError::Invalid(refused.to_owned()));
    }
    if let Some(group) = group {
        crate::policy::profiles::parse_group(group).map_err(|error| EndUserError::Invalid(error.to_string()))?;
    }
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let user = store::end_user(&mut transaction, context.tenant_id(), external_id).await?;
    let before = store::set_group(&mut transaction, user, group).await?;
    let entry = AuditEntry::new("end_user.policy_group_set", "end_user", user.to_string()).with_details(
        serde_json::json!({ "external_user_id": external_id, "policy_group": group, "previous_policy_group": before }),
    );
    audit::record(&mut transaction, context, &entry).await?;
    transaction.commit().await?;
    Ok(EndUserGroup { external_user_id: external_id.to_owned(), policy_group: group.map(str::to_owned) })
}
