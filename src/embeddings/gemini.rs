//! Gemini embeddings (`POST {base}/v1beta/models/{model}:batchEmbedContents`), with the task type that
//! tells questions from passages.

use serde_json::json;

use super::{Purpose, Remote, floats, vectors_from};
use crate::providers::ProviderError;

#[derive(Debug, Clone)]
pub struct GeminiEmbedder(pub Remote);

impl GeminiEmbedder {
    pub async fn embed(&self, texts: &[String], purpose: Purpose) -> Result<Vec<Vec<f32>>, ProviderError> {
        let remote = &self.0;
        let task_type = match purpose {
            Purpose::Query => "RETRIEVAL_QUERY",
            Purpose::Document => "RETRIEVAL_DOCUMENT",
        };
        let model = format!("models/{}", remote.model.name);
        let requests: Vec<serde_json::Value> = texts
            .iter()
            .map(|text| {
                // Always sent: gemini-embedding-001 answers 3072 dimensions unless told, more than the index takes.
                json!({
                    "model": model,
                    "content": { "parts": [{ "text": text }] },
                    "taskType": task_type,
                    "outputDimensionality": remote.model.dimensions,
                })
            })
            .collect();
        let url = remote.url(&format!("v1beta/{model}:batchEmbedContents"));
        let answer = remote
            .post(url, &json!({ "requests": requests }), |request, key| request.header("x-goog-api-key", key))
            .await?;
        let embeddings = answer["embeddings"].as_array().into_iter().flatten();
        vectors_from(embeddings.map(|embedding| floats(&embedding["values"])))
    }
}
