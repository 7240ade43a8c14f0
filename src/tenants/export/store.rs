//! SQL for the tenant export: one query per kind of line, each a keyset page (`key` after the cursor, in
//! order) whose rows are built as JSON by PostgreSQL, field by field: a column added later reaches the
//! archive only once a query here names it, and no secret column is ever named (provider keys, connector
//! credentials, API key hashes, webhook secrets). Runs in the export's one read-only transaction, bound to the
//! tenant.

use sqlx::PgConnection;

/// One page of a kind: `(key, line)` rows after `after`, at most `limit`. `query` is one of the constants
/// below; `$1` is the cursor (text, `NULL` for the first page), `$2` the page size.
pub async fn page(
    connection: &mut PgConnection,
    query: &'static str,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<(String, serde_json::Value)>, sqlx::Error> {
    sqlx::query_as(query).bind(after).bind(limit).fetch_all(connection).await
}

/// The tenant itself, for the manifest.
pub const TENANT: &str = "SELECT jsonb_build_object('id', id, 'name', name, 'slug', slug, 'status', status, \
     'suspended_at', suspended_at, 'created_at', created_at) FROM tenants WHERE id = current_tenant_id()";

pub async fn tenant(connection: &mut PgConnection) -> Result<serde_json::Value, sqlx::Error> {
    sqlx::query_scalar(TENANT).fetch_one(connection).await
}

pub const SETTINGS: &str = "SELECT tenant_id::text, jsonb_build_object('type', 'settings', \
     'default_provider', default_provider, 'default_model', default_model, 'fallback_model', fallback_model, \
     'active_policy_profile_id', active_policy_profile_id, \
     'monthly_budget_usd', monthly_budget_usd::text, 'key_monthly_budget_usd', key_monthly_budget_usd::text, \
     'end_user_monthly_budget_usd', end_user_monthly_budget_usd::text, \
     'agent_run_budget_usd', agent_run_budget_usd::text, 'agent_run_max_steps', agent_run_max_steps, \
     'multi_agent_enabled', multi_agent_enabled, 'shared_corpus', shared_corpus, 'rerank', rerank, \
     'conversation_retention_days', conversation_retention_days, 'usage_retention_days', usage_retention_days, \
     'audit_retention_days', audit_retention_days, 'relevance_floor_hybrid', relevance_floor_hybrid, \
     'relevance_floor_vector', relevance_floor_vector, 'relevance_floor_full_text', relevance_floor_full_text, \
     'workspace_max_files', workspace_max_files, 'workspace_max_bytes', workspace_max_bytes, \
     'updated_at', updated_at) \
     FROM tenant_configs WHERE ($1::text IS NULL OR tenant_id::text > $1) ORDER BY tenant_id LIMIT $2";

/// The tenant's profile (`PUT /api/v1/tenant/profile`), when it set one.
pub const PROFILE: &str = "SELECT tenant_id::text, jsonb_build_object('type', 'profile', 'industry', industry, \
     'description', description, 'products', to_jsonb(products), 'glossary', glossary, 'tone', tone, \
     'languages', to_jsonb(languages), 'free_text', free_text, 'updated_at', updated_at) \
     FROM tenant_profiles WHERE ($1::text IS NULL OR tenant_id::text > $1) ORDER BY tenant_id LIMIT $2";

pub const USERS: &str = "SELECT id::text, jsonb_build_object('type', 'user', 'id', id, \
     'actor_type', actor_type, 'external_id', external_id, 'display_name', display_name, 'email', email, \
     'created_at', created_at) \
     FROM users WHERE ($1::uuid IS NULL OR id > $1::uuid) ORDER BY id LIMIT $2";

/// Never `secret_hash`.
pub const API_KEYS: &str = "SELECT id::text, jsonb_build_object('type', 'api_key', 'id', id, 'name', name, \
     'prefix', prefix, 'scopes', to_jsonb(scopes), 'user_id', user_id, \
     'monthly_budget_usd', monthly_budget_usd::text, 'created_at', created_at, 'last_used_at', last_used_at, \
     'expires_at', expires_at, 'revoked_at', revoked_at, 'collections', CASE WHEN collection_ids IS NOT NULL THEN \
         to_jsonb(ARRAY(SELECT k.name FROM collections AS k WHERE k.id = ANY(collection_ids) ORDER BY k.name)) END) \
     FROM api_keys WHERE ($1::uuid IS NULL OR id > $1::uuid) ORDER BY id LIMIT $2";

/// Never the sealed key (`key_ciphertext`, `key_nonce`, `key_id`).
pub const PROVIDERS: &str = "SELECT provider, jsonb_build_object('type', 'provider', 'provider', provider, \
     'base_url', base_url, 'default_model', default_model, 'created_at', created_at, 'updated_at', updated_at) \
     FROM provider_credentials WHERE ($1::text IS NULL OR provider > $1) ORDER BY provider LIMIT $2";

/// A conversation with its messages in order (each with its parent: they form a tree), each with its
/// citations and tool calls, and the MCP resources attached to it as they were read.
pub const CONVERSATIONS: &str = "SELECT s.id::text, jsonb_build_object('type', 'conversation', 'id', s.id, \
     'session_type', s.session_type, 'workspace_id', s.workspace_id, 'title', s.title, 'archived', s.archived, \
     'api_key_id', s.api_key_id, 'user_id', s.user_id, 'created_at', s.created_at, 'updated_at', s.updated_at, \
     'active_leaf_id', s.active_leaf_id, \
     'messages', coalesce((SELECT jsonb_agg(jsonb_build_object('id', m.id, \
         'parent_message_id', m.parent_message_id, 'run_id', m.run_id, \
         'role', m.role, 'content', m.content, 'status', m.status, 'finish_reason', m.finish_reason, \
         'citations', m.citations, 'retrieved', m.retrieved, 'tool_calls', m.tool_calls, 'input_tokens', m.input_tokens, \
         'output_tokens', m.output_tokens, 'total_tokens', m.total_tokens, 'model', m.model_used, \
         'provider', m.provider_used, 'is_byok', m.is_byok, 'metadata', m.metadata, \
         'created_at', m.created_at) ORDER BY m.created_at, m.id) \
       FROM chat_messages m WHERE m.session_id = s.id), '[]'::jsonb), \
     'resources', coalesce((SELECT jsonb_agg(jsonb_build_object('id', r.id, 'connector_id', r.connector_id, \
         'uri', r.uri, 'name', r.name, 'mime_type', r.mime_type, 'content', r.content, \
         'removed_fields', r.removed_fields, 'truncated_arrays', r.truncated_arrays, \
         'policy_profile_id', r.policy_profile_id, 'policy_version', r.policy_version, \
         'policy_source', r.policy_source, 'attached_at', r.attached_at) ORDER BY r.attached_at, r.id) \
       FROM session_resources r WHERE r.session_id = s.id), '[]'::jsonb)) \
     FROM chat_sessions s WHERE ($1::uuid IS NULL OR s.id > $1::uuid) ORDER BY s.id LIMIT $2";

/// A document with its text, as the chunks it was cut into, in order.
pub const DOCUMENTS: &str = "SELECT d.id::text, jsonb_build_object('type', 'document', 'id', d.id, \
     'source_path', d.source_path, 'title', d.title, 'content_hash', d.content_hash, 'byte_size', d.byte_size, \
     'collections', to_jsonb(ARRAY(SELECT k.name FROM collections AS k WHERE k.id = ANY(d.collection_ids) \
         ORDER BY k.name)), 'original_media_type', d.original_media_type, \
     'original_byte_size', coalesce(d.original_byte_size, d.byte_size), \
     'chunk_count', d.chunk_count, 'created_at', d.created_at, 'updated_at', d.updated_at, \
     'chunks', coalesce((SELECT jsonb_agg(jsonb_build_object('index', c.chunk_index, 'content', c.content, \
         'token_count', c.token_count, 'heading_path', to_jsonb(c.heading_path)) ORDER BY c.chunk_index) \
       FROM doc_chunks c WHERE c.document_id = d.id), '[]'::jsonb)) \
     FROM documents d WHERE d.tenant_id = current_tenant_id() AND ($1::uuid IS NULL OR d.id > $1::uuid) \
     ORDER BY d.id LIMIT $2";

/// A policy profile with every version it had.
pub const POLICY_PROFILES: &str = "SELECT p.id::text, jsonb_build_object('type', 'policy_profile', 'id', p.id, \
     'name', p.name, 'version', p.version, 'document', p.document, 'created_at', p.created_at, \
     'updated_at', p.updated_at, \
     'versions', coalesce((SELECT jsonb_agg(jsonb_build_object('version', v.version, 'document', v.document, \
         'created_at', v.created_at) ORDER BY v.version) \
       FROM policy_profile_versions v WHERE v.profile_id = p.id), '[]'::jsonb)) \
     FROM policy_profiles p WHERE ($1::uuid IS NULL OR p.id > $1::uuid) ORDER BY p.id LIMIT $2";

/// A connector and the tools it offered; whether it has a credential, never the credential.
/// A version of the tenant's own system prompt template, and whether it is the one in force.
pub const PROMPT_TEMPLATES: &str = "SELECT t.name || '@' || lpad(t.version::text, 10, '0'), \
     jsonb_build_object('type', 'prompt_template', 'name', t.name, 'version', t.version, 'body', t.body, \
     'note', t.note, 'created_at', t.created_at, 'active', a.version IS NOT NULL) \
     FROM prompt_templates t LEFT JOIN active_prompt_templates a \
         ON a.tenant_id = t.tenant_id AND a.name = t.name AND a.version = t.version \
     WHERE ($1::text IS NULL OR t.name || '@' || lpad(t.version::text, 10, '0') > $1) \
     ORDER BY t.name || '@' || lpad(t.version::text, 10, '0') LIMIT $2";

pub const CONNECTORS: &str = "SELECT c.id::text, jsonb_build_object('type', 'connector', 'id', c.id, \
     'name', c.name, 'transport', c.transport, 'url', c.url, 'command', c.command, 'args', c.args, \
     'auth_kind', c.auth_kind, 'auth_header', c.auth_header, 'has_secret', c.secret_ciphertext IS NOT NULL, \
     'status', c.status, 'last_error', c.last_error, 'refreshed_at', c.refreshed_at, \
     'created_at', c.created_at, 'updated_at', c.updated_at, \
     'tools', coalesce((SELECT jsonb_agg(jsonb_build_object('name', t.name, 'description', t.description, \
         'read_only', t.read_only) ORDER BY t.name) \
       FROM discovered_tools t WHERE t.connector_id = c.id), '[]'::jsonb)) \
     FROM mcp_connectors c WHERE ($1::uuid IS NULL OR c.id > $1::uuid) ORDER BY c.id LIMIT $2";

/// A webhook destination: never its secret (`secret_ciphertext`, `secret_nonce`, `secret_key_id`), nor its
/// deliveries (a log that retention sweeps).
pub const WEBHOOKS: &str = "SELECT id::text, jsonb_build_object('type', 'webhook', 'id', id, 'url', url, \
     'events', to_jsonb(events), 'description', description, 'enabled', enabled, \
     'disabled_reason', disabled_reason, 'created_at', created_at, 'updated_at', updated_at) \
     FROM webhook_endpoints WHERE ($1::uuid IS NULL OR id > $1::uuid) ORDER BY id LIMIT $2";

/// A workspace; its files follow as lines of their own (`workspace_file`).
pub const WORKSPACES: &str = "SELECT id::text, jsonb_build_object('type', 'workspace', 'id', id, 'name', name, \
     'checks', checks, 'created_at', created_at) \
     FROM workspaces WHERE ($1::uuid IS NULL OR id > $1::uuid) ORDER BY id LIMIT $2";

/// One file of a workspace; the cursor is `workspace_id/path`.
pub const WORKSPACE_FILES: &str = "SELECT workspace_id::text || '/' || path, jsonb_build_object( \
     'type', 'workspace_file', 'workspace_id', workspace_id, 'path', path, 'content', content, \
     'content_hash', content_hash, 'updated_at', updated_at) \
     FROM workspace_files WHERE ($1::text IS NULL OR (workspace_id::text || '/' || path) > $1) \
     ORDER BY workspace_id::text || '/' || path LIMIT $2";

/// A changeset with its patches (diffs and contents) and its checks' artifacts.
pub const CHANGESETS: &str = "SELECT c.id::text, jsonb_build_object('type', 'changeset', 'id', c.id, \
     'workspace_id', c.workspace_id, 'run_id', c.run_id, 'title', c.title, 'status', c.status, \
     'created_by', c.created_by, 'reviewed_by', c.reviewed_by, 'review_comment', c.review_comment, \
     'created_at', c.created_at, 'updated_at', c.updated_at, 'applied_at', c.applied_at, \
     'patches', coalesce((SELECT jsonb_agg(jsonb_build_object('path', p.path, 'operation', p.operation, \
         'new_path', p.new_path, 'base_hash', p.base_hash, 'base_content', p.base_content, 'content', p.content, \
         'diff', p.diff, 'summary', p.summary, 'review', p.review, 'review_comment', p.review_comment, \
         'created_at', p.created_at, 'updated_at', p.updated_at) ORDER BY p.position) \
       FROM changeset_patches p WHERE p.changeset_id = c.id), '[]'::jsonb), \
     'artifacts', coalesce((SELECT jsonb_agg(jsonb_build_object('id', a.id, 'run_id', a.run_id, \
         'check_name', a.check_name, 'status', a.status, 'stdout', a.stdout, 'stderr', a.stderr, \
         'report', a.report, 'content_type', a.content_type, 'truncated', a.truncated, \
         'created_at', a.created_at) ORDER BY a.created_at, a.id) \
       FROM changeset_artifacts a WHERE a.changeset_id = c.id), '[]'::jsonb)) \
     FROM changesets c WHERE ($1::uuid IS NULL OR c.id > $1::uuid) ORDER BY c.id LIMIT $2";

/// Feedback on answers, with what made each answer; its message is in its `conversation` line.
pub const FEEDBACK: &str = "SELECT f.id::text, jsonb_build_object('type', 'feedback', 'id', f.id, \
     'message_id', f.message_id, 'conversation_id', m.session_id, 'run_id', f.run_id, \
     'giver_type', f.giver_type, 'giver_id', f.giver_id, 'rating', f.rating, 'comment', f.comment, \
     'tags', to_jsonb(f.tags), 'model', f.model, 'provider', f.provider, 'prompt_template', f.prompt_template, \
     'prompt_version', f.prompt_version, 'cited_chunk_ids', to_jsonb(f.cited_chunk_ids), \
     'created_at', f.created_at, 'updated_at', f.updated_at) \
     FROM message_feedback f JOIN chat_messages m ON m.id = f.message_id \
     WHERE ($1::uuid IS NULL OR f.id > $1::uuid) ORDER BY f.id LIMIT $2";

/// Usage records; the cost an exact decimal string (`null` when the model had no price).
pub const USAGE: &str = "SELECT id::text, jsonb_build_object('type', 'usage', 'id', id, 'operation', operation, \
     'run_id', run_id, 'api_key_id', api_key_id, 'user_id', user_id, 'provider', provider, 'model', model, \
     'input_tokens', input_tokens, 'output_tokens', output_tokens, 'cached_input_tokens', cached_input_tokens, \
     'cache_write_tokens', cache_write_tokens, 'reasoning_tokens', reasoning_tokens, \
     'token_source', token_source, 'is_byok', is_byok, 'priced', priced, 'cost_usd', cost_usd::text, \
     'created_at', created_at) \
     FROM usage_records WHERE ($1::uuid IS NULL OR id > $1::uuid) ORDER BY id LIMIT $2";

/// The audit trail, oldest first.
pub const AUDIT_EVENTS: &str = "SELECT id::text, jsonb_build_object('type', 'audit_event', 'id', id, \
     'actor_type', actor_type, 'actor_id', actor_id, 'action', action, 'target_type', target_type, \
     'target_id', target_id, 'details', details, 'request_id', request_id, 'trace_id', trace_id, \
     'created_at', created_at) \
     FROM audit_events WHERE ($1::uuid IS NULL OR id > $1::uuid) ORDER BY id LIMIT $2";

/// Makes the open transaction a read-only snapshot: every page sees the tenant as it was at the start.
pub async fn snapshot(connection: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(connection).await?;
    Ok(())
}
