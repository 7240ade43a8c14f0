//! The prompts connectors offer (MCP `prompts/list`): message templates for people to pick, listed for
//! the widget and the IDE by `connector.prompt` as the caller's policy profile allows
//! (`prompt_allowlist`), and filled in by the connector's server
//! (`prompts/get`) with the arguments the person gives. A filled prompt is text for the composer: it
//! becomes a message only when the person sends it.

use sqlx::PgPool;

use super::{DiscoveredPrompt, PromptMessage, ToolError, Toolbox, store};
use crate::auth::context::TenantContext;
use crate::db;
use crate::policy::{self, Policy};

/// The prompts of the tenant's active connectors that the caller's policy profile offers it
/// (`prompt_allowlist`; none when no profile is in force), by connector then name.
pub async fn list(pool: &PgPool, context: &TenantContext) -> Result<Vec<DiscoveredPrompt>, ToolError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let profile = policy::store::effective(&mut transaction, context.actor().api_key_id(), context.end_user()).await?;
    transaction.commit().await?;
    let Some((profile, _)) = profile else { return Ok(Vec::new()) };
    let policy = Policy::parse(profile.document).map_err(|error| ToolError::Invalid(error.0))?;
    let mut prompts: Vec<DiscoveredPrompt> = super::list(pool, context)
        .await?
        .into_iter()
        .filter(|connector| connector.status == "active")
        .flat_map(|connector| connector.prompts)
        .filter(|prompt| policy.may_use_prompt(&prompt.qualified_name))
        .collect();
    prompts.sort_by(|a, b| a.qualified_name.cmp(&b.qualified_name));
    Ok(prompts)
}

/// Fills in the prompt named `connector.prompt`. Every argument the server marks required must be
/// given, no other may be, and each is a string (MCP's prompt arguments are).
pub async fn fill(
    pool: &PgPool,
    toolbox: &Toolbox,
    context: &TenantContext,
    qualified: &str,
    arguments: serde_json::Map<String, serde_json::Value>,
) -> Result<Vec<PromptMessage>, ToolError> {
    let prompt = list(pool, context)
        .await?
        .into_iter()
        .find(|prompt| prompt.qualified_name == qualified)
        .ok_or(ToolError::PromptNotFound)?;
    check_arguments(&prompt, &arguments)?;
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let connector =
        store::find_connector(&mut transaction, prompt.connector_id).await?.ok_or(ToolError::PromptNotFound)?;
    transaction.commit().await?;
    let spec = connector.spec(&toolbox.keys)?;
    toolbox
        .clients
        .get_prompt(prompt.connector_id, connector.updated_at, &spec, &toolbox.settings, (&prompt.name, arguments))
        .await
        .map_err(ToolError::Upstream)
}

fn check_arguments(
    prompt: &DiscoveredPrompt,
    arguments: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), ToolError> {
    let known = |name: &str| prompt.arguments.iter().any(|argument| argument.name == name);
    if let Some(unknown) = arguments.keys().find(|name| !known(name)) {
        return Err(ToolError::Invalid(format!(
            "`{unknown}` is not an argument of prompt `{}`",
            prompt.qualified_name
        )));
    }
    if let Some((name, _)) = arguments.iter().find(|(_, value)| !value.is_string()) {
        return Err(ToolError::Invalid(format!("argument `{name}` must be a string")));
    }
    let missing: Vec<&str> = prompt
        .arguments
        .iter()
        .filter(|argument| argument.required && !arguments.contains_key(&argument.name))
        .map(|argument| argument.name.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(ToolError::Invalid(format!(
            "prompt `{}` needs the argument(s) {}",
            prompt.qualified_name,
            missing.join(", ")
        )));
    }
    Ok(())
}
