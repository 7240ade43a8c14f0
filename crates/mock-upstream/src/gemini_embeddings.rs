//! Gemini embeddings (`POST /v1beta/models/{model}:embedContent` and `:batchEmbedContents`): `{"embedding":
//! {"values":[…]}}` for one request, `{"embeddings":[…]}` for a batch, with Gemini's error shape.
//!
//! Field names are read in camelCase, as clients send them, or in snake_case, which Google's JSON parser also takes.

use axum::http::Uri;
use axum::response::Response;
use serde::Serialize;
use serde_json::Value;

use crate::embedding::{self, embed};
use crate::gemini;
use crate::wire::json_response;

/// The most requests one batch may carry.
const MAX_BATCH: usize = 100;

const TASK_TYPES: [&str; 9] = [
    "TASK_TYPE_UNSPECIFIED",
    "RETRIEVAL_QUERY",
    "RETRIEVAL_DOCUMENT",
    "SEMANTIC_SIMILARITY",
    "CLASSIFICATION",
    "CLUSTERING",
    "QUESTION_ANSWERING",
    "FACT_VERIFICATION",
    "CODE_RETRIEVAL_QUERY",
];

#[derive(Serialize)]
struct Values {
    values: Vec<f32>,
}

#[derive(Serialize)]
struct Single {
    embedding: Values,
}

#[derive(Serialize)]
struct Batch {
    embeddings: Vec<Values>,
}

/// Whether the path names an embedding method rather than a content-generation one.
pub(crate) fn is_embedding(uri: &Uri) -> bool {
    gemini::target(uri).is_some_and(|(_, method)| method == "embedContent" || method == "batchEmbedContents")
}

/// Validates the request as Google does and builds the answer; `Err` is a 400's message.
pub(crate) fn answer(uri: &Uri, body: &Value) -> Result<Response, String> {
    // Only paths that `is_embedding` accepted come here, so the target is always there.
    let (model, method) = gemini::target(uri).unwrap_or_default();
    let expected_model = format!("models/{model}");
    if method != "batchEmbedContents" {
        let embedding = values(body, &expected_model, "EmbedContentRequest", false)?;
        return Ok(json_response(&Single { embedding }));
    }
    let requests = body
        .get("requests")
        .and_then(Value::as_array)
        .filter(|requests| !requests.is_empty())
        .ok_or("* BatchEmbedContentsRequest.requests: requests is not specified")?;
    if requests.len() > MAX_BATCH {
        return Err(format!("* BatchEmbedContentsRequest.requests: at most {MAX_BATCH} requests can be in one batch"));
    }
    let embeddings = requests
        .iter()
        .enumerate()
        .map(|(i, request)| values(request, &expected_model, &format!("BatchEmbedContentsRequest.requests[{i}]"), true))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(json_response(&Batch { embeddings }))
}

/// A field in camelCase or snake_case.
fn field<'a>(request: &'a Value, camel: &str, snake: &str) -> Option<&'a Value> {
    request.get(camel).or_else(|| request.get(snake)).filter(|value| !value.is_null())
}

/// The vector for one `EmbedContentRequest`; `context` names it in messages as Google does. A batch's requests
/// must each name the path's model; a single request may leave it to the path.
fn values(request: &Value, expected_model: &str, context: &str, model_required: bool) -> Result<Values, String> {
    if !request.is_object() {
        return Err(format!("* {context}: must be an object"));
    }
    match request.get("model") {
        None | Some(Value::Null) if !model_required => {}
        Some(Value::String(model)) if model == expected_model => {}
        None | Some(Value::Null) => return Err(format!("* {context}.model: model is not specified")),
        Some(other) => {
            return Err(format!(
                "* {context}.model: {other} does not match the model of the request, {expected_model}"
            ));
        }
    }
    let parts = request
        .pointer("/content/parts")
        .and_then(Value::as_array)
        .filter(|parts| !parts.is_empty())
        .ok_or_else(|| format!("* {context}.content: content is not specified"))?;
    let text = parts.iter().filter_map(|part| part.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join(" ");
    if let Some(task_type) = field(request, "taskType", "task_type")
        && !task_type.as_str().is_some_and(|name| TASK_TYPES.contains(&name))
    {
        return Err(format!("* {context}.task_type: invalid value {task_type}"));
    }
    let dims = embedding::dimensions(field(request, "outputDimensionality", "output_dimensionality"))
        .map_err(|value| format!("* {context}.output_dimensionality: invalid value {value}"))?;
    Ok(Values { values: embed(&text, dims) })
}
