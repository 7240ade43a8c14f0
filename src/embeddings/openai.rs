//! OpenAI embeddings (`POST {base}/embeddings`), also spoken by most OpenAI-compatible servers.

use serde_json::json;

use super::{Remote, floats, vectors_from};
use crate::providers::ProviderError;

#[derive(Debug, Clone)]
pub struct OpenAiEmbedder(pub Remote);

impl OpenAiEmbedder {
    pub async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, ProviderError> {
        let remote = &self.0;
        let mut body = json!({ "model": remote.model.name, "input": texts, "encoding_format": "float" });
        if remote.model.reduced {
            body["dimensions"] = json!(remote.model.dimensions);
        }
        let answer = remote.post(remote.url("embeddings"), &body, |request, key| request.bearer_auth(key)).await?;
        let mut data: Vec<&serde_json::Value> = answer["data"].as_array().into_iter().flatten().collect();
        // The answer carries each vector's index; the order of `data` is not promised.
        data.sort_by_key(|item| item["index"].as_u64());
        vectors_from(data.into_iter().map(|item| floats(&item["embedding"])))
    }
}
