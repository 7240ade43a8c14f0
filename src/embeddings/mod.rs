//! Embedders: texts to vectors for retrieval, behind one interface. The local MiniLM model runs in-process
//! with no network and is the default; OpenAI, Voyage and Gemini are reached over HTTP with the platform's
//! key. A closed enum dispatches to one file per embedder, as the chat providers do.
//!
//! The model is a deployment setting, not a tenant's: the shared corpus is searched by every tenant, so it
//! must be embedded by the same model as every tenant's questions.

pub mod gemini;
pub mod local;
pub mod openai;
pub mod voyage;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use rust_decimal::Decimal;
use secrecy::SecretString;

use crate::catalog::Catalog;
use crate::providers::ProviderError;
use crate::providers::http::HttpClient;

/// pgvector's HNSW indexes `halfvec`, which the vector index stores, of at most this many dimensions.
pub const MAX_DIMENSIONS: u32 = 4000;

/// Which side of a search a text is on: Voyage and Gemini embed questions and passages differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Query,
    Document,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EmbeddingProvider {
    Local,
    OpenAi,
    Voyage,
    Gemini,
}

impl EmbeddingProvider {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "local" => Some(Self::Local),
            "openai" => Some(Self::OpenAi),
            "voyage" => Some(Self::Voyage),
            "gemini" => Some(Self::Gemini),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::OpenAi => "openai",
            Self::Voyage => "voyage",
            Self::Gemini => "gemini",
        }
    }

    /// The dimensions a model produces when none are asked for.
    fn default_dimensions(self, name: &str) -> u32 {
        match (self, name) {
            (Self::Local, _) => local::DIMENSIONS,
            (Self::OpenAi, "text-embedding-3-large") => 3072,
            (Self::OpenAi, _) => 1536,
            (Self::Voyage, _) => 1024,
            (Self::Gemini, _) => 768,
        }
    }
}

/// An embedding model as chunks record it. Its id names the vector space: `provider/name`, with
/// `@dimensions` when they were chosen, since the same model cut to fewer dimensions is another space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddingModel {
    pub id: String,
    pub provider: EmbeddingProvider,
    pub name: String,
    pub dimensions: u32,
    /// Whether `dimensions` must be sent to the provider (it was chosen, not the model's own).
    pub reduced: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SWITCHBOARD_EMBEDDING_MODEL is not valid: {0}")]
pub struct ModelSpecError(String);

impl ModelSpecError {
    /// What is wrong, without the setting's name (for a request's error).
    pub fn reason(&self) -> &str {
        &self.0
    }
}

impl EmbeddingModel {
    /// Parses `provider/name` (`local`, `openai/text-embedding-3-small`, `voyage/voyage-3.5`,
    /// `gemini/gemini-embedding-001`) with optional dimensions.
    pub fn parse(spec: &str, dimensions: Option<u32>) -> Result<Self, ModelSpecError> {
        Self::parse_up_to(spec, dimensions, MAX_DIMENSIONS)
    }

    /// [`Self::parse`] for vectors that are returned, not indexed: as many dimensions as the model makes.
    pub fn parse_for_request(spec: &str, dimensions: Option<u32>) -> Result<Self, ModelSpecError> {
        Self::parse_up_to(spec, dimensions, u32::MAX)
    }

    fn parse_up_to(spec: &str, dimensions: Option<u32>, most: u32) -> Result<Self, ModelSpecError> {
        let spec = spec.trim();
        let (provider, name) = match spec.split_once('/') {
            Some((provider, name)) => (provider, name),
            None if spec == "local" => ("local", local::MODEL_NAME),
            None => return Err(ModelSpecError(format!("expected provider/model, got {spec:?}"))),
        };
        let provider = EmbeddingProvider::parse(provider)
            .ok_or_else(|| ModelSpecError(format!("unknown provider {provider:?}: local, openai, voyage or gemini")))?;
        let name_is_valid = !name.is_empty()
            && name.len() <= 100
            && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !name_is_valid {
            return Err(ModelSpecError(format!("model name {name:?} must be letters, digits, `-`, `_` or `.`")));
        }
        if provider == EmbeddingProvider::Local && name != local::MODEL_NAME {
            return Err(ModelSpecError(format!("the local embedder is {}", local::MODEL_NAME)));
        }
        let native = provider.default_dimensions(name);
        let reduced = dimensions.is_some_and(|dimensions| dimensions != native);
        if reduced && provider == EmbeddingProvider::Local {
            return Err(ModelSpecError(format!("the local model has {native} dimensions")));
        }
        let dimensions = dimensions.unwrap_or(native);
        if dimensions == 0 {
            return Err(ModelSpecError("dimensions must be at least 1".to_owned()));
        }
        if dimensions > most {
            return Err(ModelSpecError(format!(
                "{dimensions} dimensions: the vector index takes at most {MAX_DIMENSIONS}; set \
                 SWITCHBOARD_EMBEDDING_DIMENSIONS (OpenAI text-embedding-3, Voyage and Gemini can shorten vectors)"
            )));
        }
        let id = if reduced {
            format!("{}/{name}@{dimensions}", provider.as_str())
        } else {
            format!("{}/{name}", provider.as_str())
        };
        Ok(Self { id, provider, name: name.to_owned(), dimensions, reduced })
    }

    /// A model as `embedding_models` records it; `None` for an id this version does not know.
    pub fn from_stored(id: &str, dimensions: i32) -> Option<Self> {
        let spec = id.split_once('@').map_or(id, |(spec, _)| spec);
        Self::parse(spec, u32::try_from(dimensions).ok()).ok().filter(|model| model.id == id)
    }

    pub fn local() -> Self {
        Self::parse("local", None).expect("the local model's spec is valid")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EmbeddingError {
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error("the local embedding model failed: {0}")]
    Local(String),
    #[error("no API key for the {0} embedding model: set {1}")]
    NotConfigured(String, &'static str),
    #[error(
        "the embedding model answered {got} vectors of {dimensions} dimensions for {expected} texts, expected \
         {expected_dimensions} dimensions (SWITCHBOARD_EMBEDDING_DIMENSIONS sets them)"
    )]
    Mismatch { expected: usize, got: usize, dimensions: usize, expected_dimensions: usize },
}

/// Where a remote embedder is reached, with whose key.
#[derive(Debug, Clone)]
pub struct RemoteEndpoint {
    pub api_key: SecretString,
    pub base_url: String,
}

#[derive(Debug, Clone)]
pub enum Embedder {
    Local(Arc<local::LocalEmbedder>),
    OpenAi(openai::OpenAiEmbedder),
    Voyage(voyage::VoyageEmbedder),
    Gemini(gemini::GeminiEmbedder),
}

impl Embedder {
    pub fn model(&self) -> &EmbeddingModel {
        match self {
            Self::Local(local) => local.model(),
            Self::OpenAi(openai::OpenAiEmbedder(remote))
            | Self::Voyage(voyage::VoyageEmbedder(remote))
            | Self::Gemini(gemini::GeminiEmbedder(remote)) => &remote.model,
        }
    }

    /// One vector per text, in order, each of the model's dimensions. Large inputs go in batches.
    pub async fn embed(&self, texts: &[String], purpose: Purpose) -> Result<Vec<Vec<f32>>, EmbeddingError> {
        Ok(self.embed_counted(texts, purpose).await?.vectors)
    }

    /// What a million input tokens cost on this embedder (the local model: nothing); `None` when the
    /// model catalog does not say.
    pub fn price(&self) -> Option<Decimal> {
        match self {
            Self::Local(_) => Some(Decimal::ZERO),
            Self::OpenAi(openai::OpenAiEmbedder(remote))
            | Self::Voyage(voyage::VoyageEmbedder(remote))
            | Self::Gemini(gemini::GeminiEmbedder(remote)) => remote.price,
        }
    }

    /// What embedding `texts` should cost, counted here with the chat tokenizer (the provider's own count
    /// settles it); `None` when the model catalog has no price.
    pub fn estimated_cost<'a>(&self, texts: impl IntoIterator<Item = &'a str>) -> Option<Decimal> {
        let price = self.price()?;
        if price.is_zero() {
            return Some(Decimal::ZERO);
        }
        let tokens: u64 = texts.into_iter().map(|text| crate::tokens::count(text) as u64).sum();
        Some(Decimal::from(tokens) * price / Decimal::from(1_000_000))
    }

    /// [`Self::embed`], with the input tokens the provider reported (or counted here when it reports
    /// none: Gemini, the local model) and their cost.
    #[tracing::instrument(name = "embedding", skip_all, fields(gen_ai.operation.name = "embeddings", texts = texts.len(), purpose = ?purpose))]
    pub async fn embed_counted(&self, texts: &[String], purpose: Purpose) -> Result<Embedded, EmbeddingError> {
        let batch_size = match self {
            // The local embedder batches by length itself.
            Self::Local(_) => usize::MAX,
            Self::OpenAi(_) => 256,
            Self::Voyage(_) => 128,
            Self::Gemini(_) => 100,
        };
        let started = std::time::Instant::now();
        let mut vectors = Vec::with_capacity(texts.len());
        let mut input_tokens = 0u64;
        let mut reported = true;
        for batch in texts.chunks(batch_size) {
            let (embedded, tokens) = match self {
                Self::Local(local) => (local.embed(batch).await?, None),
                Self::OpenAi(openai) => openai.embed(batch).await?,
                Self::Voyage(voyage) => voyage.embed(batch, purpose).await?,
                Self::Gemini(gemini) => (gemini.embed(batch, purpose).await?, None),
            };
            reported &= tokens.is_some();
            input_tokens += tokens.unwrap_or_else(|| batch.iter().map(|text| crate::tokens::count(text) as u64).sum());
            let dimensions = self.model().dimensions as usize;
            if embedded.len() != batch.len() || embedded.iter().any(|vector| vector.len() != dimensions) {
                return Err(EmbeddingError::Mismatch {
                    expected: batch.len(),
                    got: embedded.len(),
                    dimensions: embedded.first().map_or(0, Vec::len),
                    expected_dimensions: dimensions,
                });
            }
            vectors.extend(embedded);
        }
        let cost = self.price().map(|price| Decimal::from(input_tokens) * price / Decimal::from(1_000_000));
        let purpose_label = match purpose {
            Purpose::Query => "query",
            Purpose::Document => "document",
        };
        crate::metrics::embedding(purpose_label, started.elapsed());
        Ok(Embedded { vectors, spend: EmbeddingSpend { input_tokens, reported, cost_usd: cost } })
    }

    pub async fn embed_query(&self, text: &str) -> Result<(Vec<f32>, EmbeddingSpend), EmbeddingError> {
        let mut embedded = self.embed_counted(&[text.to_owned()], Purpose::Query).await?;
        Ok((embedded.vectors.pop().expect("one vector for one text"), embedded.spend))
    }
}

/// Vectors with what making them used and cost.
#[derive(Debug, Clone)]
pub struct Embedded {
    pub vectors: Vec<Vec<f32>>,
    pub spend: EmbeddingSpend,
}

/// What embedding some texts used and cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmbeddingSpend {
    pub input_tokens: u64,
    /// False when the tokens were counted here (with the chat tokenizer: an estimate).
    pub reported: bool,
    /// `None`: the model catalog has no price for the model.
    pub cost_usd: Option<Decimal>,
}

impl EmbeddingSpend {
    /// Nothing embedded yet: the start of a sum.
    pub const NOTHING: Self = Self { input_tokens: 0, reported: true, cost_usd: Some(Decimal::ZERO) };

    /// Both spends together: priced only when both are.
    #[must_use]
    pub fn plus(self, other: Self) -> Self {
        Self {
            input_tokens: self.input_tokens + other.input_tokens,
            reported: self.reported && other.reported,
            cost_usd: self.cost_usd.zip(other.cost_usd).map(|(one, two)| one + two),
        }
    }
}

/// Builds embedders from the deployment's settings: remote endpoints by provider, the HTTP client, and
/// the one local model of the process (loaded on first use, shared by every embedder that uses it).
#[derive(Debug, Clone)]
pub struct EmbedderFactory {
    pub endpoints: HashMap<EmbeddingProvider, RemoteEndpoint>,
    pub http: HttpClient,
    pub local: Arc<local::LocalEmbedder>,
    /// Where remote embedders find their price.
    pub catalog: Catalog,
}

impl EmbedderFactory {
    pub fn new(
        endpoints: HashMap<EmbeddingProvider, RemoteEndpoint>,
        http: HttpClient,
        data_dir: &Path,
        catalog: Catalog,
    ) -> Self {
        Self { endpoints, http, local: Arc::new(local::LocalEmbedder::new(data_dir)), catalog }
    }

    pub fn build(&self, model: EmbeddingModel) -> Result<Embedder, EmbeddingError> {
        let (key_variable, embedder): (&str, fn(Remote) -> Embedder) = match model.provider {
            EmbeddingProvider::Local => return Ok(Embedder::Local(Arc::clone(&self.local))),
            EmbeddingProvider::OpenAi => ("OPENAI_API_KEY", |remote| Embedder::OpenAi(openai::OpenAiEmbedder(remote))),
            EmbeddingProvider::Voyage => ("VOYAGE_API_KEY", |remote| Embedder::Voyage(voyage::VoyageEmbedder(remote))),
            EmbeddingProvider::Gemini => ("GEMINI_API_KEY", |remote| Embedder::Gemini(gemini::GeminiEmbedder(remote))),
        };
        let endpoint = self
            .endpoints
            .get(&model.provider)
            .cloned()
            .ok_or_else(|| EmbeddingError::NotConfigured(model.id.clone(), key_variable))?;
        let price = self.catalog.embedding_price(model.provider.as_str(), &model.name);
        Ok(embedder(Remote { model, endpoint, http: self.http.clone(), price }))
    }
}

/// What the HTTP embedders share.
#[derive(Debug, Clone)]
pub struct Remote {
    pub model: EmbeddingModel,
    pub endpoint: RemoteEndpoint,
    pub http: HttpClient,
    /// US dollars per million input tokens, from the model catalog.
    pub price: Option<Decimal>,
}

impl Remote {
    /// POSTs `body` to `url` with the retry policy of the chat providers, and returns the JSON answer.
    async fn post(
        &self,
        url: String,
        body: &serde_json::Value,
        authorize: fn(reqwest::RequestBuilder, &str) -> reqwest::RequestBuilder,
    ) -> Result<serde_json::Value, ProviderError> {
        use secrecy::ExposeSecret as _;
        let key = self.endpoint.api_key.expose_secret();
        crate::providers::retry::call_with_retries(&self.http.settings, || async {
            let request = authorize(self.http.client.post(&url), key).json(body);
            let response = self.http.send(request, key).await?;
            response.json::<serde_json::Value>().await.map_err(|_| {
                ProviderError::new(
                    crate::providers::ProviderErrorKind::BadResponse,
                    "the embedding provider sent malformed JSON",
                )
            })
        })
        .await
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.endpoint.base_url.trim_end_matches('/'))
    }
}

/// Reads `[[f32]]` out of a provider's answer, or says it is malformed.
fn vectors_from(values: impl Iterator<Item = Option<Vec<f32>>>) -> Result<Vec<Vec<f32>>, ProviderError> {
    values.collect::<Option<Vec<_>>>().ok_or_else(|| {
        ProviderError::new(
            crate::providers::ProviderErrorKind::BadResponse,
            "the embedding provider's answer has no vectors where expected",
        )
    })
}

/// The vectors of an answer in OpenAI's shape (Voyage's too): `data[i].embedding`, put back in `index`
/// order, which the answer does not promise to keep; and the input tokens it reports (`usage.prompt_tokens`
/// for OpenAI, `usage.total_tokens` for Voyage, which has no output either).
fn indexed_vectors(answer: &serde_json::Value) -> Result<(Vec<Vec<f32>>, Option<u64>), ProviderError> {
    let mut data: Vec<&serde_json::Value> = answer["data"].as_array().into_iter().flatten().collect();
    data.sort_by_key(|item| item["index"].as_u64());
    let vectors = vectors_from(data.into_iter().map(|item| floats(&item["embedding"])))?;
    let usage = &answer["usage"];
    Ok((vectors, usage["prompt_tokens"].as_u64().or_else(|| usage["total_tokens"].as_u64())))
}

fn floats(value: &serde_json::Value) -> Option<Vec<f32>> {
    #[expect(clippy::cast_possible_truncation, reason = "embeddings are f32; providers send them as JSON numbers")]
    value.as_array()?.iter().map(|number| number.as_f64().map(|number| number as f32)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_specs() {
        let local = EmbeddingModel::parse("local", None).unwrap();
        assert_eq!((local.id.as_str(), local.dimensions), ("local/all-minilm-l6-v2", 384));
        let small = EmbeddingModel::parse("openai/text-embedding-3-small", None).unwrap();
        assert_eq!(
            (small.id.as_str(), small.dimensions, small.reduced),
            ("openai/text-embedding-3-small", 1536, false)
        );
        let cut = EmbeddingModel::parse("openai/text-embedding-3-large", Some(1024)).unwrap();
        assert_eq!((cut.id.as_str(), cut.reduced), ("openai/text-embedding-3-large@1024", true));
        let large = EmbeddingModel::parse("openai/text-embedding-3-large", None).unwrap();
        assert_eq!(large.dimensions, 3072, "indexed in half precision, up to 4,000 dimensions");
        assert!(EmbeddingModel::parse("openai/text-embedding-3-large", Some(4001)).is_err(), "4001 > HNSW limit");
        assert!(EmbeddingModel::parse("cohere/embed", None).is_err());
        assert!(EmbeddingModel::parse("openai/a'b", None).is_err());
        assert!(EmbeddingModel::parse("local/other", None).is_err());
        assert!(EmbeddingModel::parse("local", Some(128)).is_err());
    }
}
