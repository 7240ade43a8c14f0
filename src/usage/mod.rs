//! Usage records: the tokens each run consumed, from the provider's report or counted here, and whose key
//! paid. Written in one place, by the engine.

pub mod store;

use sqlx::PgPool;

use crate::auth::context::TenantContext;
use crate::db;
use crate::ids::{ApiKeyId, RunId};

/// Where a token count comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    Provider,
    Estimated,
}

impl TokenSource {
    fn as_str(self) -> &'static str {
        match self {
            Self::Provider => "provider",
            Self::Estimated => "estimated",
        }
    }
}

#[derive(Debug, Clone)]
pub struct UsageEntry<'a> {
    pub run_id: RunId,
    pub api_key_id: Option<ApiKeyId>,
    pub provider: &'a str,
    pub model: &'a str,
    pub input_tokens: u32,
    pub output_tokens: u32,
    pub source: TokenSource,
    pub is_byok: bool,
}

/// A run's tokens over all its model calls: (input, output).
pub async fn of_run(pool: &PgPool, context: &TenantContext, run_id: RunId) -> Result<(i64, i64), sqlx::Error> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let totals = store::token_totals(&mut transaction, run_id).await?;
    transaction.commit().await?;
    Ok(totals)
}
