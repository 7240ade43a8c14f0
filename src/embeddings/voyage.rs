//! Voyage AI embeddings (`POST {base}/embeddings`, base `https://api.voyageai.com/v1`): OpenAI's shape,
//! plus `input_type`, which Voyage uses to embed questions and passages for each other.

use serde_json::json;

use super::{Purpose, Remote, indexed_vectors};
use crate::providers::ProviderError;

pub const DEFAULT_BASE_URL: &str = "https://api.voyageai.com/v1";

#[derive(Debug, Clone)]
pub struct VoyageEmbedder(pub Remote);

impl VoyageEmbedder {
    pub async fn embed(
        &self,
        texts: &[String],
        purpose: Purpose,
    ) -> Result<(Vec<Vec<f32>>, Option<u64>), ProviderError> {
        let remote = &self.0;
        let input_type = match purpose {
            Purpose::Query => "query",
            Purpose::Document => "document",
        };
        let mut body = json!({ "model": remote.model.name, "input": texts, "input_type": input_type });
        if remote.model.reduced {
            body["output_dimension"] = json!(remote.model.dimensions);
        }
        let answer = remote.post(remote.url("embeddings"), &body, |request, key| request.bearer_auth(key)).await?;
        indexed_vectors(&answer)
    }
}
