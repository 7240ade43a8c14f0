//! OpenAI embeddings (`POST {base}/embeddings`), also spoken by most OpenAI-compatible servers.

use serde_json::json;

use super::{Remote, indexed_vectors};
use crate::providers::ProviderError;

#[derive(Debug, Clone)]
pub struct OpenAiEmbedder(pub Remote);

impl OpenAiEmbedder {
    pub async fn embed(&self, texts: &[String]) -> Result<(Vec<Vec<f32>>, Option<u64>), ProviderError> {
        let remote = &self.0;
        let mut body = json!({ "model": remote.model.name, "input": texts, "encoding_format": "float" });
        if remote.model.reduced {
            body["dimensions"] = json!(remote.model.dimensions);
        }
        let answer = remote.post(remote.url("embeddings"), &body, |request, key| request.bearer_auth(key)).await?;
        indexed_vectors(&answer)
    }
}
