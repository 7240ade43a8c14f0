//! Switchboard: a self-hosted, multi-tenant AI assistant and RAG orchestration service.
//!
//! See ARCHITECTURE.md for the map. The modules below are in reading order: from the doors, through the
//! engine, down to the leaves every domain shares. Only `http` knows the web framework; domain modules
//! take a [`auth::context::TenantContext`] and run their SQL in their `store.rs`.

// Starting and serving.
/// The command line: `serve`, `migrate`, `rotate-master-key`, `ingest`, `backup`, `restore`.
pub mod cli;
/// Opens the database, wires the service together, serves until a signal, shuts down in order.
pub mod server;
/// Settings read once from the environment.
pub mod config;
/// `backup` and `restore`: a pg_dump with a manifest (the master key's fingerprint), restored into a new data directory.
pub mod backup;

// The doors.
/// The HTTP doors: the one route table, thin handlers, wire formats, the one API error type.
pub mod http;
/// The demo page's visitor tokens for the demo tenant.
pub mod demo;

// The engine and what it runs.
/// Turns and agent runs: start once, run in the background, follow, wait, answer, cancel, approve.
pub mod engine;
/// Runs, their status and their event vocabulary, stored in order.
pub mod runs;
/// Conversations and their messages.
pub mod conversations;
/// Feedback on answers (thumbs up or down, comment, tags), kept with what made the answer; exported as JSONL.
pub mod feedback;
/// The integration door's domain: conversations per external user, conversations sent whole.
pub mod integration;
/// Workspaces of the IDE door, their files and the agent runs' built-in tools.
pub mod workspaces;
/// Idempotency keys: one path for every door that starts runs.
pub mod idempotency;
/// Rate limits per API key, tenant and end user, and the cap on running runs: checked before a run starts.
pub mod rate_limits;
/// Documents, chunks, hybrid search (BM25 + vectors) and citations.
pub mod retrieval;
/// Collections of a tenant's documents, and the scopes that limit who searches which.
pub mod collections;
/// Embedding models: local MiniLM, OpenAI, Voyage, Gemini.
pub mod embeddings;
/// The model catalog: context windows, output ceilings and prices, built in and the operator's.
pub mod catalog;
/// Model providers: the offline answerer, OpenAI and compatible, Anthropic, Gemini; tenants' own keys.
pub mod providers;
/// MCP connectors, tool discovery and calls.
pub mod tools;
/// Policy profiles: the pure decision on every tool call and the shaping of every result.
pub mod policy;
/// System prompt templates, loaded and checked at start.
pub mod prompts;
/// Token and usage records, written only by the engine.
pub mod usage;
/// Budgets per tenant, API key, end user and agent run: reserved before each model call, settled after.
pub mod budgets;

// Tenants and who acts for them.
/// Tenants and their settings.
pub mod tenants;
/// Tenant API keys.
pub mod api_keys;
/// End users, known by the tenant's own ids; erasing one.
pub mod users;
/// Retention: deleting conversations, usage and audit past each tenant's settings, in every process.
pub mod retention;
/// Authentication: API keys, widget tokens, the operator; the tenant context every domain takes.
pub mod auth;
/// The append-only audit trail.
pub mod audit;
/// Webhooks: tenants' destinations, deliveries queued with each fact, signed, retried and logged by every process.
pub mod webhooks;

// Leaves.
/// Connections, tenant-bound transactions, migrations, the embedded PostgreSQL.
pub mod db;
/// The service's tracked background work.
pub mod background;
/// Sealing secrets under versioned master keys.
pub mod crypto;
/// Refusing tenant-supplied URLs that reach internal addresses.
pub mod outbound;
/// UUIDv7 id newtypes.
pub mod ids;
/// Token counting (tiktoken, built once).
pub mod tokens;
/// Log output.
pub mod telemetry;
/// Prometheus metrics: what is counted and timed, with bounded labels.
pub mod metrics;
/// Pinned PyPI wheels: PostgreSQL with pgvector, the local embedding model.
pub mod wheels;
