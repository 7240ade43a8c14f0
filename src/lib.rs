//! Switchboard: a self-hosted, multi-tenant AI assistant and RAG orchestration service.
//!
//! See ARCHITECTURE.md for the map. Domain modules (`tenants`, `api_keys`, `audit`, …) know nothing of
//! HTTP; `http` is the only module that knows axum; `db` owns connections and tenant-bound transactions.

pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod config;
pub mod conversations;
pub mod crypto;
pub mod db;
pub mod demo;
pub mod embeddings;
pub mod engine;
pub mod http;
pub mod idempotency;
pub mod ids;
pub mod integration;
pub mod outbound;
pub mod policy;
pub mod prompts;
pub mod providers;
pub mod retrieval;
pub mod runs;
pub mod server;
pub mod telemetry;
pub mod tenants;
pub mod tokens;
pub mod tools;
pub mod usage;
pub mod wheels;
pub mod workspaces;
