//! Voyage AI Embeddings (`POST https://api.voyageai.com/v1/embeddings`, mounted here at `/voyage/v1/embeddings`
//! so it cannot clash with OpenAI's path): an OpenAI-like list without `prompt_tokens`, and `{"detail": …}` errors.
//!
//! Only `output_dtype: "float"` is served, as JSON numbers or with `encoding_format: "base64"`; the quantised types
//! (`int8`, `binary`, …) are refused with a 400 saying so, since the service under test asks for floats.

use axum::http::{StatusCode, Uri};
use axum::response::Response;
use serde::Serialize;
use serde_json::Value;

use crate::embedding::{self, Encoded};
use crate::wire::{json, json_response};

/// The most inputs one request may carry.
const MAX_INPUTS: usize = 1000;

#[derive(Serialize)]
struct ErrorBody<'a> {
    detail: &'a str,
}

/// Voyage answers every error, whatever its status, with only a `detail` message.
pub(crate) fn error_body(_status: StatusCode, message: &str) -> String {
    json(&ErrorBody { detail: message })
}

#[derive(Serialize)]
struct List<'a> {
    object: &'static str,
    data: Vec<Item>,
    model: &'a str,
    usage: Usage,
}

/// One entry of `data`.
#[derive(Serialize)]
struct Item {
    object: &'static str,
    embedding: Encoded,
    index: usize,
}

#[derive(Serialize)]
struct Usage {
    total_tokens: u32,
}

/// Whether an optional field is absent, null, or one of `allowed`.
fn one_of(value: Option<&Value>, allowed: &[&str]) -> bool {
    match value {
        None | Some(Value::Null) => true,
        Some(Value::String(text)) => allowed.contains(&text.as_str()),
        Some(_) => false,
    }
}

/// Validates the request as Voyage does and builds the answer; `Err` is a 400's message.
pub(crate) fn answer(_uri: &Uri, body: &Value) -> Result<Response, String> {
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .filter(|model| !model.is_empty())
        .ok_or("Request body is invalid: 'model' is required and must be a string.")?;
    let texts = body
        .get("input")
        .and_then(embedding::texts)
        .ok_or("Request body is invalid: 'input' must be a string or a list of strings.")?;
    if texts.is_empty() {
        return Err("Request body is invalid: 'input' must not be an empty list.".to_owned());
    }
    if texts.len() > MAX_INPUTS {
        return Err(format!("The batch size limit is {MAX_INPUTS}. Your batch size is {}.", texts.len()));
    }
    if !one_of(body.get("input_type"), &["query", "document"]) {
        return Err("Request body is invalid: 'input_type' must be null, 'query' or 'document'.".to_owned());
    }
    if !matches!(body.get("truncation"), None | Some(Value::Null | Value::Bool(_))) {
        return Err("Request body is invalid: 'truncation' must be a boolean.".to_owned());
    }
    let dims = embedding::dimensions(body.get("output_dimension"))
        .map_err(|value| format!("Request body is invalid: 'output_dimension' {value} is not supported."))?;
    if !one_of(body.get("output_dtype"), &["float"]) {
        return Err("mock-upstream serves only output_dtype \"float\" (the default).".to_owned());
    }
    if !one_of(body.get("encoding_format"), &["base64"]) {
        return Err("Request body is invalid: 'encoding_format' must be null or 'base64'.".to_owned());
    }
    let base64 = body.get("encoding_format").is_some_and(|format| format == "base64");

    let data = texts
        .iter()
        .enumerate()
        .map(|(index, text)| Item { object: "embedding", embedding: Encoded::new(text, dims, base64), index })
        .collect();
    let usage = Usage { total_tokens: embedding::tokens(texts.iter().copied()) };
    Ok(json_response(&List { object: "list", data, model, usage }))
}
