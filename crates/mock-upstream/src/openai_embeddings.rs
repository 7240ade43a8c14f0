//! OpenAI Embeddings (`POST /v1/embeddings`): one `{"object":"list","data":[…],"model","usage"}` answer, vectors as
//! JSON numbers or, with `encoding_format: "base64"`, as the base64 of their little-endian f32 bytes.
//!
//! Token-array inputs, which the real API also takes, are refused as invalid: the mock embeds words.

use axum::http::Uri;
use axum::response::Response;
use serde::Serialize;
use serde_json::Value;

use crate::embedding::{self, Encoded};
use crate::wire::json_response;

/// The most inputs one request may carry.
const MAX_INPUTS: usize = 2048;

/// OpenAI's answer to an input that is missing, empty, or holds an empty string.
const INVALID_INPUT: &str =
    "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.";

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
    index: usize,
    embedding: Encoded,
}

#[derive(Serialize)]
struct Usage {
    prompt_tokens: u32,
    total_tokens: u32,
}

/// Validates the request as OpenAI does and builds the answer; `Err` is a 400's message.
pub(crate) fn answer(_uri: &Uri, body: &Value) -> Result<Response, String> {
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .filter(|model| !model.is_empty())
        .ok_or("you must provide a model parameter")?;
    let texts = body.get("input").and_then(embedding::texts).ok_or(INVALID_INPUT)?;
    if texts.is_empty() || texts.iter().any(|text| text.is_empty()) {
        return Err(INVALID_INPUT.to_owned());
    }
    if texts.len() > MAX_INPUTS {
        return Err(format!("Too many inputs. The max number of inputs is {MAX_INPUTS}."));
    }
    let requested = body.get("dimensions").filter(|value| !value.is_null());
    // Only the third generation can shorten its vectors; ada-002 refuses the parameter outright.
    if requested.is_some() && !model.starts_with("text-embedding-3") {
        return Err("This model does not support specifying dimensions.".to_owned());
    }
    let dims = embedding::dimensions(requested).map_err(|value| format!("Invalid value for 'dimensions': {value}."))?;
    let base64 = match body.get("encoding_format") {
        None | Some(Value::Null) => false,
        Some(Value::String(format)) if format == "float" => false,
        Some(Value::String(format)) if format == "base64" => true,
        Some(other) => {
            return Err(format!(
                "Invalid value for 'encoding_format': {other}. Supported values are: 'float' and 'base64'."
            ));
        }
    };

    let data = texts
        .iter()
        .enumerate()
        .map(|(index, text)| Item { object: "embedding", index, embedding: Encoded::new(text, dims, base64) })
        .collect();
    let tokens = embedding::tokens(texts.iter().copied());
    let list = List { object: "list", data, model, usage: Usage { prompt_tokens: tokens, total_tokens: tokens } };
    Ok(json_response(&list))
}
