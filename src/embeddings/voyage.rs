//! Voyage AI embeddings (`POST {base}/embeddings`, base `https://api.voyageai.com/v1`): OpenAI's shape,
//! plus `input_type`, which Voyage uses to embed questions and passages for each other.

use serde_json::json;

use super::{Purpose, Remote, floats, vectors_from};
use crate::providers::ProviderError;

pub const DEFAULT_BASE_URL: &str = "https://api.voyageai.com/v1";

#[derive(Debug, Clone)]
pub struct VoyageEmbedder(pub Remote);

impl VoyageEmbedder {
    pub async fn embed(&self, texts: &[String], purpose: Purpose) -> Result<Vec<Vec<f32>>, ProviderError> {
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
        let mut data: Vec<&serde_json::Value> = answer["data"].as_array().into_iter().flatten().collect();
        data.sort_by_key(|item| item["index"].as_u64());
        vectors_from(data.into_iter().map(|item| floats(&item["embedding"])))
    }
}
