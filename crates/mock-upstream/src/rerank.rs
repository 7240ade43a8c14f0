//! The hosted rerank endpoints: Cohere v2 (`POST /v2/rerank`), Voyage (`POST https://api.voyageai.com/v1/rerank`,
//! mounted at `/voyage/v1/rerank`) and Jina (`POST https://api.jina.ai/v1/rerank`, mounted at `/jina/v1/rerank`:
//! Voyage and Jina share the real path, so each has a prefix of its own, as Voyage's embeddings do).
//!
//! Each is validated as its provider does, field names included (`top_n` for Cohere and Jina, `top_k` for
//! Voyage; a field of the other provider is refused), and answered in its shape: `results` (Cohere, Jina) or
//! `data` (Voyage), best first, with Cohere's billed search units or Voyage's and Jina's token count. The score
//! is [`score`]: deterministic and meaningful, so a test can compute the order a request must come back in.

use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use serde_json::Value;

use crate::Api;
use crate::embedding;
use crate::wire::{json, json_response};

/// The most documents one request may carry (Voyage's and Cohere's recommended limit).
const MAX_DOCUMENTS: usize = 1000;

/// Documents one Cohere search unit covers.
const DOCUMENTS_PER_SEARCH_UNIT: usize = 100;

/// The mock's relevance of `document` to `query`: the share of the query's distinct words (lower-cased runs of
/// letters and digits) that the document contains, from 0 to 1. A passage holding every word of the question
/// scores 1 however often another passage repeats one of them.
pub fn score(query: &str, document: &str) -> f64 {
    let words = |text: &str| -> std::collections::BTreeSet<String> {
        text.split(|c: char| !c.is_alphanumeric()).filter(|word| !word.is_empty()).map(str::to_lowercase).collect()
    };
    let asked = words(query);
    if asked.is_empty() {
        return 0.0;
    }
    let present = words(document);
    let found = asked.iter().filter(|word| present.contains(*word)).count();
    #[expect(clippy::cast_precision_loss, reason = "word counts are small")]
    let share = found as f64 / asked.len() as f64;
    share
}

/// The provider's error body: Cohere `{"message"}`, Voyage and Jina `{"detail"}`.
pub(crate) fn error_body(api: Api, message: &str) -> String {
    #[derive(Serialize)]
    struct Message<'a> {
        message: &'a str,
    }
    #[derive(Serialize)]
    struct Detail<'a> {
        detail: &'a str,
    }
    match api {
        Api::Cohere => json(&Message { message }),
        _ => json(&Detail { detail: message }),
    }
}

#[derive(Serialize)]
struct Scored {
    index: usize,
    relevance_score: f64,
    /// Jina only, unless `return_documents: false`.
    #[serde(skip_serializing_if = "Option::is_none")]
    document: Option<JinaDocument>,
}

#[derive(Serialize)]
struct JinaDocument {
    text: String,
}

#[derive(Serialize)]
struct CohereAnswer {
    id: String,
    results: Vec<Scored>,
    meta: CohereMeta,
}

#[derive(Serialize)]
struct CohereMeta {
    api_version: ApiVersion,
    billed_units: BilledUnits,
}

#[derive(Serialize)]
struct ApiVersion {
    version: &'static str,
    is_experimental: bool,
}

#[derive(Serialize)]
struct BilledUnits {
    search_units: usize,
}

#[derive(Serialize)]
struct VoyageAnswer<'a> {
    object: &'static str,
    data: Vec<Scored>,
    model: &'a str,
    usage: Usage,
}

#[derive(Serialize)]
struct JinaAnswer<'a> {
    model: &'a str,
    usage: Usage,
    results: Vec<Scored>,
}

#[derive(Serialize)]
struct Usage {
    total_tokens: u32,
}

/// The fields each provider takes; anything else is refused.
fn known_fields(api: Api) -> &'static [&'static str] {
    match api {
        Api::Cohere => &["model", "query", "documents", "top_n", "max_tokens_per_doc", "priority"],
        Api::Voyage => &["model", "query", "documents", "top_k", "return_documents", "truncation"],
        _ => &["model", "query", "documents", "top_n", "return_documents"],
    }
}

/// Validates the request as the provider does and builds the answer; `Err` is a 400's message (422 for Jina's
/// and Cohere's validation, as they answer).
pub(crate) fn answer(api: Api, body: &Value) -> Result<Response, (StatusCode, String)> {
    let invalid = |message: String| {
        let status = if api == Api::Voyage { StatusCode::BAD_REQUEST } else { StatusCode::UNPROCESSABLE_ENTITY };
        (status, message)
    };
    let object = body.as_object().ok_or_else(|| invalid("the body must be a JSON object".to_owned()))?;
    if let Some(unknown) = object.keys().find(|name| !known_fields(api).contains(&name.as_str())) {
        return Err(invalid(format!("invalid request: unknown field `{unknown}`")));
    }
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .filter(|model| !model.is_empty())
        .ok_or_else(|| invalid("invalid request: 'model' is required and must be a string".to_owned()))?;
    let query = body
        .get("query")
        .and_then(Value::as_str)
        .filter(|query| !query.trim().is_empty())
        .ok_or_else(|| invalid("invalid request: query must not be empty or be only whitespace".to_owned()))?;
    let documents: Vec<&str> = body
        .get("documents")
        .and_then(Value::as_array)
        .and_then(|items| items.iter().map(Value::as_str).collect::<Option<Vec<_>>>())
        .ok_or_else(|| invalid("invalid request: documents must be a list of strings".to_owned()))?;
    if documents.is_empty() {
        return Err(invalid("invalid request: list of documents must not be empty".to_owned()));
    }
    if documents.len() > MAX_DOCUMENTS {
        return Err(invalid(format!("invalid request: at most {MAX_DOCUMENTS} documents, got {}", documents.len())));
    }
    let top_field = if api == Api::Voyage { "top_k" } else { "top_n" };
    let top = match body.get(top_field) {
        None | Some(Value::Null) => documents.len(),
        Some(value) => value
            .as_u64()
            .and_then(|top| usize::try_from(top).ok())
            .filter(|top| *top >= 1)
            .ok_or_else(|| invalid(format!("invalid request: {top_field} must be a positive integer")))?,
    };
    let return_documents = match body.get("return_documents") {
        // Jina returns the documents unless told not to; Voyage only when told to.
        None | Some(Value::Null) => api == Api::Jina,
        Some(Value::Bool(returned)) => *returned,
        Some(_) => return Err(invalid("invalid request: return_documents must be a boolean".to_owned())),
    };

    let mut results: Vec<Scored> = documents
        .iter()
        .enumerate()
        .map(|(index, document)| Scored {
            index,
            relevance_score: score(query, document),
            document: (api == Api::Jina && return_documents).then(|| JinaDocument { text: (*document).to_owned() }),
        })
        .collect();
    results.sort_by(|a, b| b.relevance_score.total_cmp(&a.relevance_score).then(a.index.cmp(&b.index)));
    results.truncate(top);
    let tokens = || {
        let query_tokens = embedding::tokens([query]);
        let per_document = u32::try_from(documents.len()).unwrap_or(u32::MAX).saturating_mul(query_tokens);
        per_document.saturating_add(embedding::tokens(documents.iter().copied()))
    };
    Ok(match api {
        Api::Cohere => json_response(&CohereAnswer {
            id: format!("mock-rerank-{}", documents.len()),
            results,
            meta: CohereMeta {
                api_version: ApiVersion { version: "2", is_experimental: false },
                billed_units: BilledUnits { search_units: documents.len().div_ceil(DOCUMENTS_PER_SEARCH_UNIT) },
            },
        }),
        Api::Voyage => json_response(&VoyageAnswer {
            object: "list",
            data: results,
            model,
            usage: Usage { total_tokens: tokens() },
        }),
        _ => json_response(&JinaAnswer { model, usage: Usage { total_tokens: tokens() }, results }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_score_is_the_share_of_the_querys_words_found() {
        assert!((score("rotate the master key", "To rotate the MASTER key, run…") - 1.0).abs() < f64::EPSILON);
        assert!((score("rotate the master key", "key key key key") - 0.25).abs() < f64::EPSILON);
        assert!(score("rotate", "backups").abs() < f64::EPSILON);
        assert!(score("", "anything").abs() < f64::EPSILON);
    }
}
