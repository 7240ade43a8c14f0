//! Switchboard's own MCP server: `search_docs` over the calling tenant's retrieval (its documents and the
//! shared corpus), so other agents can use what Switchboard knows. The door (`http::mcp`) verifies the
//! tenant API key and hands the tenant's context to the tool in the request's extensions.

use rmcp::handler::server::tool::Extension;
use rmcp::handler::server::wrapper::{Json, Parameters};
use rmcp::{ErrorData, schemars, tool, tool_handler, tool_router};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use crate::auth::context::TenantContext;
use crate::retrieval::Retriever;
use crate::retrieval::search::SearchMode;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct SearchDocs {
    /// What to look for, in words.
    pub query: String,
    /// How many passages to return (1 to 20, default 5).
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Passages {
    pub results: Vec<Passage>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Passage {
    pub source_path: String,
    pub title: String,
    pub heading_path: Vec<String>,
    pub content: String,
    pub score: f64,
}

#[derive(Clone)]
pub struct KnowledgeServer {
    db: PgPool,
    retriever: Retriever,
}

impl std::fmt::Debug for KnowledgeServer {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("KnowledgeServer").finish_non_exhaustive()
    }
}

impl KnowledgeServer {
    pub fn new(db: PgPool, retriever: Retriever) -> Self {
        Self { db, retriever }
    }
}

#[tool_router]
impl KnowledgeServer {
    #[tool(
        description = "Search the organisation's documents (those this key may read) for passages relevant to a question. Returns the best passages that pass the relevance floor, with their source; none when nothing relevant is found.",
        annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    async fn search_docs(
        &self,
        Extension(parts): Extension<axum::http::request::Parts>,
        Parameters(request): Parameters<SearchDocs>,
    ) -> Result<Json<Passages>, ErrorData> {
        let context = parts
            .extensions
            .get::<TenantContext>()
            .ok_or_else(|| ErrorData::invalid_request("not authenticated", None))?;
        let limit = i64::from(request.limit.unwrap_or(5).clamp(1, 20));
        let hits = self
            .retriever
            // The tenant's reranker setting applies, as in its turns.
            .search(&self.db, context, &request.query, limit, SearchMode::Hybrid, context.collections(), None)
            .await
            .map(|searched| searched.hits)
            .map_err(|error| match error {
                crate::retrieval::RetrievalError::Invalid(message) => ErrorData::invalid_params(message, None),
                other => {
                    tracing::error!(error = %other, "search_docs failed");
                    ErrorData::internal_error("the search failed", None)
                }
            })?;
        // As a turn is: a passage below the tenant's relevance floor is not an answer.
        let results = hits
            .into_iter()
            .filter(crate::retrieval::relevance::passes)
            .map(|hit| Passage {
                source_path: hit.source_path,
                title: hit.title,
                heading_path: hit.heading_path,
                content: hit.content,
                score: hit.score,
            })
            .collect();
        Ok(Json(Passages { results }))
    }
}

#[tool_handler(name = "switchboard", version = "0.1.0")]
impl rmcp::ServerHandler for KnowledgeServer {}
