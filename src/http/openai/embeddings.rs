//! `POST /v1/embeddings` in OpenAI's shape: input as a string, an array of strings, an array of token ids
//! or an array of such arrays (decoded with `cl100k_base`, the tokenizer of OpenAI's embedding models);
//! `encoding_format` float or base64 (little-endian `f32` bytes); `dimensions` where the model can shorten
//! its vectors. The model is the deployment's embedding model by its name, `local`, or another model the
//! catalog knows (`text-embedding-3-small`, `voyage/voyage-3.5`) that the deployment has a key for.

use axum::extract::State;
use axum::response::{IntoResponse as _, Response};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::errors::invalid_param;
use super::schema::{UnlistedField, constant, one_of};
use crate::auth::context::Scope;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{Json, Tenant};
use crate::http::rate_limits;
use crate::rate_limits::Demand;
use crate::retrieval::RetrievalError;
use crate::retrieval::on_request::{self, EmbeddingRequest};

/// OpenAI's own bounds: inputs per request, and tokens per input.
const MAX_INPUTS: usize = 2048;
const MAX_INPUT_TOKENS: usize = 8192;

/// `POST /v1/embeddings`, in OpenAI's shape.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(
    as = EmbeddingsRequest,
    examples(json!({ "model": "local", "input": ["bees make honey", "hives in spring"] })),
)]
pub struct EmbeddingsBody {
    /// The deployment's embedding model by its name, `local`, or another model the catalog knows
    /// (`text-embedding-3-small`, `voyage/voyage-3.5`) that the deployment has a key for.
    model: String,
    #[schema(value_type = EmbeddingsInput)]
    input: Value,
    /// `float` (the default) or `base64`: the little-endian bytes of each `f32`.
    #[schema(value_type = Option<EmbeddingsEncodingFormat>)]
    encoding_format: Option<String>,
    /// Shorter vectors, where the model can make them.
    dimensions: Option<u32>,
    /// Every other field: refused by name unless null, never silently dropped.
    #[serde(flatten)]
    #[schema(value_type = HashMap<String, UnlistedField>)]
    others: serde_json::Map<String, Value>,
}

one_of! {
    /// A text, an array of texts, an array of token ids (`cl100k_base`, decoded to their text), or an array
    /// of texts and token arrays: at most 2048 inputs, none empty nor longer than 8192 tokens.
    EmbeddingsInput = EmbeddingsText | EmbeddingsTokens | EmbeddingsInputList
}

#[derive(Deserialize, ToSchema)]
#[schema(min_length = 1)]
#[allow(dead_code)] // Schemas of what `texts_of` takes.
pub struct EmbeddingsText(String);

#[derive(Deserialize, ToSchema)]
#[schema(min_items = 1)]
#[allow(dead_code)]
pub struct EmbeddingsTokens(Vec<u32>);

#[derive(Deserialize, ToSchema)]
#[schema(min_items = 1, max_items = 2048)]
#[allow(dead_code)]
pub struct EmbeddingsInputList(Vec<EmbeddingsInputItem>);

one_of! {
    /// A text, or the token ids of one.
    EmbeddingsInputItem = EmbeddingsText | EmbeddingsTokens
}

#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum EmbeddingsEncodingFormat {
    Float,
    Base64,
}

constant!(ListObject = "list");
constant!(EmbeddingObject = "embedding");

/// The vectors, in the order of the inputs.
#[derive(ToSchema)]
#[allow(dead_code)] // A schema: the body is built with `json!`.
pub struct EmbeddingsResponse {
    #[schema(inline)]
    object: ListObject,
    data: Vec<Embedding>,
    /// As the request named it.
    model: String,
    usage: EmbeddingsUsage,
}

#[derive(ToSchema)]
#[schema(as = OpenAiEmbedding)]
#[allow(dead_code)]
#[expect(clippy::struct_field_names, reason = "the field names are OpenAI's wire format")]
pub struct Embedding {
    #[schema(inline)]
    object: EmbeddingObject,
    /// The input's position.
    index: usize,
    #[schema(value_type = EmbeddingVector)]
    embedding: Vec<f32>,
}

one_of! {
    /// The vector: numbers, or with `encoding_format` `base64`, its little-endian `f32` bytes in base64.
    EmbeddingVector = Vec<f32> | String
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct EmbeddingsUsage {
    prompt_tokens: u64,
    total_tokens: u64,
}

/// Embeds texts with the model named. Rate limited like the other calls of `/v1`, by the inputs' tokens.
#[utoipa::path(
    post, path = "/embeddings", tag = "openai", operation_id = "create_embeddings",
    request_body = EmbeddingsBody,
    responses((status = 200, description = "One vector per input.", body = EmbeddingsResponse)),
    security(("tenant_key" = ["chat"])),
)]
pub async fn embeddings(
    State(state): State<AppState>,
    Tenant(context): Tenant,
    Json(body): Json<EmbeddingsBody>,
) -> Result<Response, ApiError> {
    context.require(Scope::Chat)?;
    if let Some((name, _)) = body.others.iter().find(|(_, value)| !value.is_null()) {
        let message = format!("`{name}` is not supported on /v1/embeddings");
        return Ok(invalid_param(name, &message));
    }
    let base64 = match body.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            let message = format!("encoding_format must be `float` or `base64`, not `{other}`");
            return Ok(invalid_param("encoding_format", &message));
        }
    };
    let texts = match texts_of(&body.input) {
        Ok(texts) => texts,
        Err(message) => return Ok(invalid_param("input", &message)),
    };
    let prompt: Vec<&str> = texts.iter().map(String::as_str).collect();
    let demand = Demand { prompt: &prompt, max_output_tokens: Some(0), end_user: None };
    let admission = match rate_limits::admit_openai(&state, &context, &demand).await {
        Ok(admission) => admission,
        Err(refused) => return Ok(refused),
    };
    let request = EmbeddingRequest { model: body.model.clone(), texts, dimensions: body.dimensions };
    let answered = on_request::embed(&state.db, &state.retriever, &context, &request).await;
    let used = answered.as_ref().map_or(0, |answer| answer.embedded.spend.input_tokens);
    if let Err(error) = crate::rate_limits::settle_tokens(&state.db, &admission.reservation, used).await {
        tracing::warn!(%error, "settling the rate limits' tokens of an embedding request failed");
    }
    let answer = match answered {
        Ok(answer) => answer,
        // Only the model's spec is checked here: its name, or the dimensions asked of it.
        Err(RetrievalError::Invalid(message)) => {
            let param = if body.dimensions.is_some() { "dimensions" } else { "model" };
            return Ok(invalid_param(param, &message));
        }
        Err(error) => return Err(error.into()),
    };
    let data: Vec<Value> = answer
        .embedded
        .vectors
        .iter()
        .enumerate()
        .map(|(index, vector)| {
            let embedding = if base64 { Value::from(encoded(vector)) } else { json!(vector) };
            json!({ "object": "embedding", "index": index, "embedding": embedding })
        })
        .collect();
    let tokens = answer.embedded.spend.input_tokens;
    let reply = json!({
        "object": "list",
        "data": data,
        "model": body.model,
        "usage": { "prompt_tokens": tokens, "total_tokens": tokens },
    });
    let mut response = axum::Json(reply).into_response();
    response.headers_mut().extend(rate_limits::openai_headers(&admission.standings));
    Ok(response)
}

/// The texts to embed, or why the input is not one OpenAI accepts.
fn texts_of(input: &Value) -> Result<Vec<String>, String> {
    let texts = match input {
        Value::String(text) => vec![text.clone()],
        Value::Array(items) if items.is_empty() => return Err("input must not be empty".to_owned()),
        Value::Array(items) if items.iter().all(Value::is_number) => vec![decoded(items)?],
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(text) => Ok(text.clone()),
                Value::Array(tokens) if !tokens.is_empty() => decoded(tokens),
                _ => Err("input must be a string, an array of strings, or token arrays".to_owned()),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err("input must be a string, an array of strings, or token arrays".to_owned()),
    };
    if texts.len() > MAX_INPUTS {
        return Err(format!("input may hold at most {MAX_INPUTS} items, not {}", texts.len()));
    }
    if let Some(index) = texts.iter().position(String::is_empty) {
        return Err(format!("input[{index}] is empty"));
    }
    if let Some(index) = texts.iter().position(|text| crate::tokens::count(text) > MAX_INPUT_TOKENS) {
        return Err(format!("input[{index}] is longer than {MAX_INPUT_TOKENS} tokens"));
    }
    Ok(texts)
}

/// The text of token ids in `cl100k_base`.
fn decoded(tokens: &[Value]) -> Result<String, String> {
    let ids: Vec<u32> = tokens
        .iter()
        .map(|token| token.as_u64().and_then(|id| u32::try_from(id).ok()))
        .collect::<Option<_>>()
        .ok_or("token ids must be whole numbers")?;
    crate::tokens::encoder().decode(&ids).map_err(|_| "the token ids are not all cl100k_base tokens".to_owned())
}

fn encoded(vector: &[f32]) -> String {
    let bytes: Vec<u8> = vector.iter().flat_map(|value| value.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_input_shape_openai_takes_becomes_texts_and_the_rest_is_refused() {
        let hello: Vec<u32> = crate::tokens::encoder().encode_ordinary("hello world");
        assert_eq!(texts_of(&json!("a")), Ok(vec!["a".to_owned()]));
        assert_eq!(texts_of(&json!(["a", "b"])), Ok(vec!["a".to_owned(), "b".to_owned()]));
        assert_eq!(texts_of(&json!(hello)), Ok(vec!["hello world".to_owned()]));
        assert_eq!(texts_of(&json!([hello, hello])), Ok(vec!["hello world".to_owned(), "hello world".to_owned()]));
        for bad in
            [json!([]), json!(""), json!([""]), json!(5), json!([1.5]), json!([[]]), json!([{"a": 1}]), json!([-1])]
        {
            assert!(texts_of(&bad).is_err(), "{bad}");
        }
        assert!(texts_of(&json!(vec!["x"; MAX_INPUTS + 1])).is_err());
    }

    #[test]
    fn base64_is_the_little_endian_bytes_of_each_float() {
        let encoded = encoded(&[1.0, -2.5]);
        let bytes = base64::engine::general_purpose::STANDARD.decode(encoded).unwrap();
        assert_eq!(bytes, [1.0f32.to_le_bytes(), (-2.5f32).to_le_bytes()].concat());
    }
}
