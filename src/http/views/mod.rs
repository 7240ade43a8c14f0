//! What the API answers: one view per object, built field by field from the domain's rows, so a column
//! added to a table reaches clients only once a view names it.

pub mod api_keys;
pub mod attachments;
pub mod audit;
pub mod changeset_checks;
pub mod changesets;
pub mod collections;
pub mod connectors;
pub mod conversations;
pub mod documents;
pub mod end_users;
pub mod feedback;
pub mod health;
pub mod integration;
pub mod policy_groups;
pub mod policy_profiles;
pub mod prompt_templates;
pub mod provider_models;
pub mod providers;
pub mod runs;
pub mod tenant_config;
pub mod tenant_profile;
pub mod tenants;
pub mod tool_calls;
pub mod turns;
pub mod usage;
pub mod webhooks;
pub mod widget_tokens;
pub mod workspaces;
