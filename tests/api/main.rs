//! API and database tests against a real PostgreSQL with pgvector.

mod helpers;
mod mcp_server;

mod agent_runs;
mod api_keys;
mod audit;
mod chat;
mod database_restart;
mod docs_corpus;
mod embedders;
mod errors;
mod everything;
mod finish_reasons;
mod generation_options;
mod health;
mod hostile_input;
mod integration;
mod mcp_auth;
mod mcp_endpoint;
mod openai_compat;
mod openai_errors;
mod openai_models;
mod outbound_urls;
mod passthrough;
mod providers;
mod reembedding;
mod retrieval;
mod row_level_security;
mod secrets;
mod service_process;
mod streaming;
mod tenants;
mod tools;
mod web;
mod widget_browser;
mod widget_tokens;
