//! A tenant's own system prompt templates, versioned like policy profiles: each save is a new, immutable
//! version (1, 2, 3… per tenant), checked first ([`super::check`]); one version is in force, or none (the
//! built-in default). Every change is audited. A turn takes the version in force when its prompt is first
//! built and records it on its run ([`for_turn`]); a run resumed later keeps what it recorded.

use chrono::Utc;
use sqlx::{PgConnection, PgPool};

use super::store::{self, ActiveVersion, StoredTemplate, TemplateSummary};
use super::{
    PromptEndUser, Prompts, SystemPromptContext, TENANT_TEMPLATE, TemplateError, check, render_tenant,
    system_template_id,
};
use crate::audit::{self, AuditEntry};
use crate::auth::context::TenantContext;
use crate::db;
use crate::ids::{RunId, UserId};

/// The one kind of prompt a tenant may replace so far.
pub const SYSTEM: &str = "system";
/// A note says at most this much about a version.
pub const MAX_NOTE_CHARS: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum PromptTemplateError {
    /// The template does not compile, names a variable no turn gives, or does not render.
    #[error("{0}")]
    Invalid(TemplateError),
    #[error("{0}")]
    BadRequest(String),
    #[error("no such prompt template version")]
    NotFound,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// A version ready to save: a known name, a note within its limit, a body that passed [`check`].
#[derive(Debug, Clone)]
pub struct NewTemplate {
    pub name: String,
    pub body: String,
    pub note: Option<String>,
    /// Put it in force at once (the default).
    pub activate: bool,
}

impl NewTemplate {
    pub fn parse(
        name: Option<&str>,
        body: String,
        note: Option<String>,
        activate: Option<bool>,
    ) -> Result<Self, PromptTemplateError> {
        let name = parse_name(name)?;
        if note.as_ref().is_some_and(|note| note.chars().count() > MAX_NOTE_CHARS) {
            return Err(PromptTemplateError::BadRequest(format!("note must be at most {MAX_NOTE_CHARS} characters")));
        }
        let note = note.map(|note| note.trim().to_owned()).filter(|note| !note.is_empty());
        check(&body).map_err(PromptTemplateError::Invalid)?;
        Ok(Self { name, body, note, activate: activate.unwrap_or(true) })
    }
}

/// `system` when absent; any other name is refused.
pub fn parse_name(name: Option<&str>) -> Result<String, PromptTemplateError> {
    match name.map(str::trim) {
        None | Some(SYSTEM) => Ok(SYSTEM.to_owned()),
        Some(other) => Err(PromptTemplateError::BadRequest(format!(
            "unknown prompt template name `{other}`: only `{SYSTEM}` may be replaced"
        ))),
    }
}

/// The template in force: a version of the tenant's, or the built-in default (`None`).
#[derive(Debug, Clone)]
pub struct InForce {
    pub active: Option<ActiveVersion>,
    /// The built-in template's id (`system.md.j2@…`), what runs record while it is in force.
    pub default_id: String,
}

/// Saves a new version (and puts it in force unless told not to), audited as `prompt_template.created`
/// (and `prompt_template.activated`).
pub async fn create(
    pool: &PgPool,
    context: &TenantContext,
    template: &NewTemplate,
) -> Result<StoredTemplate, PromptTemplateError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let mut saved =
        store::insert(&mut transaction, context.tenant_id(), &template.name, &template.body, template.note.as_deref())
            .await?;
    let details = serde_json::json!({
        "name": saved.name, "version": saved.version, "note": saved.note, "body": saved.body,
        "activated": template.activate,
    });
    let entry = AuditEntry::new("prompt_template.created", "prompt_template", target(&saved.name, saved.version))
        .with_details(details);
    audit::record(&mut transaction, context, &entry).await?;
    if template.activate {
        let previous = store::active_version(&mut transaction, &saved.name).await?;
        store::activate(&mut transaction, context.tenant_id(), &saved.name, saved.version).await?;
        audit_activation(&mut transaction, context, &saved.name, previous.map(|p| p.version), Some(saved.version))
            .await?;
        saved.active = true;
    }
    transaction.commit().await?;
    Ok(saved)
}

/// Every version of `name`, newest first, and what is in force.
pub async fn list(
    pool: &PgPool,
    context: &TenantContext,
    name: &str,
) -> Result<(InForce, Vec<TemplateSummary>), PromptTemplateError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let versions = store::list(&mut transaction, name).await?;
    let active = store::active_version(&mut transaction, name).await?;
    transaction.commit().await?;
    Ok((InForce { active, default_id: system_template_id() }, versions))
}

pub async fn get(
    pool: &PgPool,
    context: &TenantContext,
    name: &str,
    version: i32,
) -> Result<StoredTemplate, PromptTemplateError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let found = store::find(&mut transaction, name, version).await?.ok_or(PromptTemplateError::NotFound)?;
    transaction.commit().await?;
    Ok(found)
}

pub async fn in_force(pool: &PgPool, context: &TenantContext, name: &str) -> Result<InForce, PromptTemplateError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let active = store::active_version(&mut transaction, name).await?;
    transaction.commit().await?;
    Ok(InForce { active, default_id: system_template_id() })
}

/// Puts `version` in force (a rollback is activating an older one), or the built-in default (`None`).
/// Audited as `prompt_template.activated`, with the version before and after (`null`: the default).
pub async fn activate(
    pool: &PgPool,
    context: &TenantContext,
    name: &str,
    version: Option<i32>,
) -> Result<InForce, PromptTemplateError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let previous = store::active_version(&mut transaction, name).await?.map(|active| active.version);
    let active = match version {
        Some(version) => {
            store::find(&mut transaction, name, version).await?.ok_or(PromptTemplateError::NotFound)?;
            Some(store::activate(&mut transaction, context.tenant_id(), name, version).await?)
        }
        None => {
            store::deactivate(&mut transaction, name).await?;
            None
        }
    };
    audit_activation(&mut transaction, context, name, previous, version).await?;
    transaction.commit().await?;
    Ok(InForce { active, default_id: system_template_id() })
}

/// What a preview renders.
#[derive(Debug, Clone)]
pub enum PreviewOf {
    /// A body not saved (checked first, as a save would).
    Body(String),
    Version(i32),
    /// The version in force, or the built-in default.
    InForce,
}

/// Renders a template with the tenant's own name, profile and policy, and sample passages, tools and end
/// user: what a turn's system prompt would be.
pub async fn preview(pool: &PgPool, context: &TenantContext, of: PreviewOf) -> Result<String, PromptTemplateError> {
    if let PreviewOf::Body(body) = &of {
        check(body).map_err(PromptTemplateError::Invalid)?;
    }
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let tenant_name = crate::tenants::store::name(&mut transaction, context.tenant_id()).await?;
    let business_context = crate::tenants::profile::business_context(&mut transaction).await?;
    let policy = crate::policy::store::active(&mut transaction).await?;
    let body = match of {
        PreviewOf::Body(body) => Some(body),
        PreviewOf::Version(version) => {
            Some(store::find(&mut transaction, SYSTEM, version).await?.ok_or(PromptTemplateError::NotFound)?.body)
        }
        PreviewOf::InForce => store::active(&mut transaction, SYSTEM).await?.map(|template| template.body),
    };
    transaction.commit().await?;
    let passages = SystemPromptContext::example_passages();
    let sample = SystemPromptContext::example(&passages);
    let variables = SystemPromptContext {
        tenant_name,
        today: Utc::now().format("%Y-%m-%d").to_string(),
        business_context,
        policy_summary: crate::policy::profiles::summary(policy.as_ref()),
        ..sample
    };
    match body {
        Some(body) => render_tenant(&body, &variables).map_err(PromptTemplateError::Invalid),
        None => {
            let built_in = Prompts::load().map_err(|error| {
                PromptTemplateError::Invalid(TemplateError { message: error.to_string(), line: None })
            })?;
            built_in
                .system_prompt(&variables)
                .map_err(|error| PromptTemplateError::Invalid(TemplateError { message: error.to_string(), line: None }))
        }
    }
}

/// The template a turn's system prompt is built with, and what else the tenant's side of it says.
#[derive(Debug, Clone)]
pub struct ForTurn {
    /// The tenant's version and its body; `None`: the built-in template.
    pub template: Option<(i32, String)>,
    pub end_user: Option<PromptEndUser>,
}

/// In the turn's transaction: the template its run recorded (a run resumed after an approval keeps its
/// prompt), else the one in force now, recorded on the run; the end user.
pub async fn for_turn(
    connection: &mut PgConnection,
    run_id: RunId,
    end_user: Option<UserId>,
) -> Result<ForTurn, sqlx::Error> {
    let recorded = crate::runs::store::get(&mut *connection, run_id).await?;
    let recorded = recorded.map(|run| (run.prompt_template, run.prompt_version));
    let template = match recorded {
        Some((Some(template), Some(version))) if template == TENANT_TEMPLATE => {
            store::find(&mut *connection, SYSTEM, version).await?.map(|found| (found.version, found.body))
        }
        Some((Some(_), _)) => None,
        _ => {
            let active = store::active(&mut *connection, SYSTEM).await?.map(|found| (found.version, found.body));
            let (name, version) = match &active {
                Some((version, _)) => (TENANT_TEMPLATE.to_owned(), Some(*version)),
                None => (system_template_id(), None),
            };
            crate::runs::store::set_prompt(&mut *connection, run_id, &name, version).await?;
            active
        }
    };
    let end_user = match end_user {
        Some(id) => {
            crate::users::store::identity(&mut *connection, id).await?.map(|(id, name)| PromptEndUser { id, name })
        }
        None => None,
    };
    Ok(ForTurn { template, end_user })
}

fn target(name: &str, version: i32) -> String {
    format!("{name}@{version}")
}

async fn audit_activation(
    connection: &mut PgConnection,
    context: &TenantContext,
    name: &str,
    from: Option<i32>,
    to: Option<i32>,
) -> Result<(), sqlx::Error> {
    let target_id = match to {
        Some(version) => target(name, version),
        None => format!("{name}@default"),
    };
    let entry = AuditEntry::new("prompt_template.activated", "prompt_template", target_id)
        .with_details(serde_json::json!({ "name": name, "from_version": from, "to_version": to }));
    audit::record(connection, context, &entry).await
}
