//! The hosted rerankers (Cohere v2, Voyage, Jina): a question and its candidate passages in, one relevance
//! score per passage out, each provider spoken in its own wire format. The reranker is a deployment
//! setting (`SWITCHBOARD_RERANK_MODEL`), reached with the platform's key; whether it is used is the
//! tenant's (`rerank`) or the request's choice (`retriever.rs`). The passages' text leaves the deployment.
//!
//! Wire formats (each provider's documentation and SDK): all three answer `index` (into the request's
//! `documents`) and `relevance_score`, best first; Cohere and Jina take `top_n` and answer `results`,
//! Voyage takes `top_k` and answers `data`. Jina returns the documents unless `return_documents: false`.

use std::time::Duration;

use rust_decimal::Decimal;
use secrecy::ExposeSecret as _;
use serde::{Deserialize, Serialize};

use crate::catalog::{Catalog, RerankPrice};
use crate::embeddings::RemoteEndpoint;
use crate::providers::http::HttpClient;
use crate::providers::{ProviderError, ProviderErrorKind};
use crate::usage::RerankSpend;

/// How many of the best fused candidates are reranked: enough to lift a passage the fusion placed well
/// below the few a turn keeps, few enough for one call to every provider (Cohere bills up to 100
/// documents as one search) and a small share of a latency budget.
pub const RERANK_CANDIDATES: usize = 30;

/// How long a search waits for the reranker (retries included) before it keeps the fused order
/// (`SWITCHBOARD_RERANK_TIMEOUT_MS`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RerankProvider {
    Cohere,
    Voyage,
    Jina,
}

impl RerankProvider {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "cohere" => Some(Self::Cohere),
            "voyage" => Some(Self::Voyage),
            "jina" => Some(Self::Jina),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cohere => "cohere",
            Self::Voyage => "voyage",
            Self::Jina => "jina",
        }
    }

    /// The setting that holds the platform's key for this provider.
    pub fn key_variable(self) -> &'static str {
        match self {
            Self::Cohere => "COHERE_API_KEY",
            Self::Voyage => "VOYAGE_API_KEY",
            Self::Jina => "JINA_API_KEY",
        }
    }

    /// The setting that points the provider elsewhere (a proxy, or a mock in tests).
    pub fn base_url_variable(self) -> &'static str {
        match self {
            Self::Cohere => "COHERE_BASE_URL",
            Self::Voyage => "VOYAGE_BASE_URL",
            Self::Jina => "JINA_BASE_URL",
        }
    }

    /// Where the provider is reached: Cohere's base has no version (`{base}/v2/rerank`), Voyage's and
    /// Jina's do (`{base}/rerank`), as their own SDKs have them.
    pub fn default_base_url(self) -> &'static str {
        match self {
            Self::Cohere => "https://api.cohere.com",
            Self::Voyage => crate::embeddings::voyage::DEFAULT_BASE_URL,
            Self::Jina => "https://api.jina.ai/v1",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Self::Cohere => "v2/rerank",
            Self::Voyage | Self::Jina => "rerank",
        }
    }
}

/// A rerank model: `provider/name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RerankModel {
    pub provider: RerankProvider,
    pub name: String,
}

impl RerankModel {
    /// Parses `cohere/rerank-v3.5`, `voyage/rerank-2.5`, `jina/jina-reranker-v2-base-multilingual`; the
    /// error says what is wrong.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let spec = spec.trim();
        let Some((provider, name)) = spec.split_once('/') else {
            return Err(format!("expected provider/model (cohere, voyage or jina), got {spec:?}"));
        };
        let provider = RerankProvider::parse(provider)
            .ok_or_else(|| format!("unknown rerank provider {provider:?}: cohere, voyage or jina"))?;
        let name_is_valid = !name.is_empty()
            && name.len() <= 100
            && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !name_is_valid {
            return Err(format!("model name {name:?} must be letters, digits, `-`, `_` or `.`"));
        }
        Ok(Self { provider, name: name.to_owned() })
    }

    pub fn id(&self) -> String {
        format!("{}/{}", self.provider.as_str(), self.name)
    }
}

/// The deployment's reranker as configured: the model, where it is reached with which key, and how long
/// a search waits for it.
#[derive(Debug, Clone)]
pub struct RerankSettings {
    pub model: RerankModel,
    pub endpoint: RemoteEndpoint,
    pub timeout: Duration,
}

/// Why a search kept its fused order although reranking was asked for; the response says which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RerankFallback {
    /// The reranker did not answer within the timeout.
    Timeout,
    /// The reranker answered an error, or an answer that was not its format.
    ProviderError,
    /// A budget of the caller's was used up: no paid call was made.
    BudgetExhausted,
    /// The tenant's setting asks for reranking, but this deployment has no reranker (any more).
    Unavailable,
}

impl RerankFallback {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::ProviderError => "provider_error",
            Self::BudgetExhausted => "budget_exhausted",
            Self::Unavailable => "reranker_unavailable",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RerankError {
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error("the reranker did not answer within {} ms", .0.as_millis())]
    Timeout(Duration),
}

/// One score per document, in the request's order, and what the call cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Scores {
    /// `None` for a document the answer left out (it never should: every document is asked for).
    pub scores: Vec<Option<f64>>,
    pub spend: RerankSpend,
}

/// The deployment's reranker.
#[derive(Debug, Clone)]
pub struct Reranker {
    model: RerankModel,
    endpoint: RemoteEndpoint,
    http: HttpClient,
    timeout: Duration,
    /// From the model catalog; `None`: calls are recorded unpriced.
    price: Option<RerankPrice>,
}

impl Reranker {
    pub fn new(settings: RerankSettings, http: HttpClient, catalog: &Catalog) -> Self {
        let price = catalog.rerank_price(settings.model.provider.as_str(), &settings.model.name);
        Self { model: settings.model, endpoint: settings.endpoint, http, timeout: settings.timeout, price }
    }

    pub fn model(&self) -> &RerankModel {
        &self.model
    }

    /// What scoring `documents` for `query` should cost: the tokens counted here, or a search unit per
    /// hundred documents; `None` when the model catalog has no price.
    pub fn estimated_cost(&self, query: &str, documents: &[String]) -> Option<Decimal> {
        let search_units = u64::try_from(documents.len()).unwrap_or(u64::MAX).div_ceil(100).max(1);
        self.price?.cost(Some(estimated_tokens(query, documents)), Some(search_units))
    }

    /// Scores each document for `query`, within the timeout (retries included).
    #[tracing::instrument(name = "rerank", skip_all, fields(model = %self.model.id(), documents = documents.len()))]
    pub async fn score(&self, query: &str, documents: &[String]) -> Result<Scores, RerankError> {
        if documents.is_empty() {
            let spend = RerankSpend { tokens: 0, reported: true, search_units: None, cost_usd: Some(Decimal::ZERO) };
            return Ok(Scores { scores: Vec::new(), spend });
        }
        tokio::time::timeout(self.timeout, self.call(query, documents))
            .await
            .map_err(|_| RerankError::Timeout(self.timeout))?
    }

    async fn call(&self, query: &str, documents: &[String]) -> Result<Scores, RerankError> {
        let body = request_body(&self.model, query, documents);
        let url = format!("{}/{}", self.endpoint.base_url.trim_end_matches('/'), self.model.provider.path());
        let key = self.endpoint.api_key.expose_secret();
        let answer = crate::providers::retry::call_with_retries(&self.http.settings, || async {
            let request = self.http.client.post(&url).bearer_auth(key).json(&body);
            let response = self.http.send(request, key).await?;
            response.json::<serde_json::Value>().await.map_err(|_| bad_answer("the reranker sent malformed JSON"))
        })
        .await?;
        let (scores, reported) = scores_from(self.model.provider, &answer, documents.len())?;
        let tokens = reported.tokens.unwrap_or_else(|| estimated_tokens(query, documents));
        let spend = RerankSpend {
            tokens,
            reported: reported.tokens.is_some(),
            search_units: reported.search_units,
            cost_usd: self.price.and_then(|price| price.cost(Some(tokens), reported.search_units)),
        };
        Ok(Scores { scores, spend })
    }
}

/// Tokens a provider that reports none would have read: the query once per document, and the documents
/// (Voyage's own rule for its limits), counted with the chat tokenizer.
fn estimated_tokens(query: &str, documents: &[String]) -> u64 {
    let query = crate::tokens::count(query) as u64;
    documents.iter().map(|document| query + crate::tokens::count(document) as u64).sum()
}

fn bad_answer(message: &str) -> ProviderError {
    ProviderError::new(ProviderErrorKind::BadResponse, message)
}

// Wire formats --------------------------------------------------------------------------------------

/// `POST {base}/v2/rerank`. v2 takes plain strings and returns no documents.
#[derive(Debug, Serialize)]
struct CohereRequest<'a> {
    model: &'a str,
    query: &'a str,
    documents: &'a [String],
    top_n: usize,
}

/// `POST {base}/rerank` (Voyage): `top_k`, not `top_n`.
#[derive(Debug, Serialize)]
struct VoyageRequest<'a> {
    query: &'a str,
    documents: &'a [String],
    model: &'a str,
    top_k: usize,
    return_documents: bool,
    /// Over-long passages are cut by the provider rather than refused.
    truncation: bool,
}

/// `POST {base}/rerank` (Jina): documents come back unless asked not to.
#[derive(Debug, Serialize)]
struct JinaRequest<'a> {
    model: &'a str,
    query: &'a str,
    documents: &'a [String],
    top_n: usize,
    return_documents: bool,
}

/// One scored document of any of the three answers.
#[derive(Debug, Deserialize)]
struct Scored {
    index: usize,
    relevance_score: f64,
}

#[derive(Debug, Deserialize)]
struct CohereAnswer {
    results: Vec<Scored>,
    #[serde(default)]
    meta: Option<CohereMeta>,
}

#[derive(Debug, Deserialize)]
struct CohereMeta {
    #[serde(default)]
    billed_units: Option<CohereBilledUnits>,
}

/// Cohere's SDK types these as floats.
#[derive(Debug, Deserialize)]
struct CohereBilledUnits {
    #[serde(default)]
    search_units: Option<f64>,
}

#[derive(Debug, Deserialize)]
struct VoyageAnswer {
    data: Vec<Scored>,
    #[serde(default)]
    usage: Option<TokenCount>,
}

#[derive(Debug, Deserialize)]
struct JinaAnswer {
    results: Vec<Scored>,
    #[serde(default)]
    usage: Option<TokenCount>,
}

#[derive(Debug, Deserialize)]
struct TokenCount {
    #[serde(default)]
    total_tokens: Option<u64>,
}

/// The request body in the provider's format, asking for every document's score.
fn request_body(model: &RerankModel, query: &str, documents: &[String]) -> serde_json::Value {
    let all = documents.len();
    let body = match model.provider {
        RerankProvider::Cohere => {
            serde_json::to_value(CohereRequest { model: &model.name, query, documents, top_n: all })
        }
        RerankProvider::Voyage => serde_json::to_value(VoyageRequest {
            query,
            documents,
            model: &model.name,
            top_k: all,
            return_documents: false,
            truncation: true,
        }),
        RerankProvider::Jina => serde_json::to_value(JinaRequest {
            model: &model.name,
            query,
            documents,
            top_n: all,
            return_documents: false,
        }),
    };
    body.expect("a rerank request serialises")
}

/// What the provider reported it billed.
#[derive(Debug, Default)]
struct Reported {
    tokens: Option<u64>,
    search_units: Option<u64>,
}

/// The scores of an answer, by the request's document order, and what it says it billed.
fn scores_from(
    provider: RerankProvider,
    answer: &serde_json::Value,
    documents: usize,
) -> Result<(Vec<Option<f64>>, Reported), ProviderError> {
    let malformed = |_| bad_answer("the reranker's answer is not in its documented format");
    let (scored, reported) = match provider {
        RerankProvider::Cohere => {
            let answer = CohereAnswer::deserialize(answer).map_err(malformed)?;
            let units = answer.meta.and_then(|meta| meta.billed_units).and_then(|units| units.search_units);
            #[expect(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "a small whole count")]
            let search_units =
                units.filter(|units| units.is_finite() && *units >= 0.0).map(|units| units.ceil() as u64);
            (answer.results, Reported { tokens: None, search_units })
        }
        RerankProvider::Voyage => {
            let answer = VoyageAnswer::deserialize(answer).map_err(malformed)?;
            let tokens = answer.usage.and_then(|usage| usage.total_tokens);
            (answer.data, Reported { tokens, search_units: None })
        }
        RerankProvider::Jina => {
            let answer = JinaAnswer::deserialize(answer).map_err(malformed)?;
            let tokens = answer.usage.and_then(|usage| usage.total_tokens);
            (answer.results, Reported { tokens, search_units: None })
        }
    };
    let mut by_document = vec![None; documents];
    for item in scored {
        let slot = by_document
            .get_mut(item.index)
            .ok_or_else(|| bad_answer("the reranker's answer names a document that was not sent"))?;
        if !item.relevance_score.is_finite() {
            return Err(bad_answer("the reranker's answer has a score that is not a number"));
        }
        *slot = Some(item.relevance_score);
    }
    Ok((by_document, reported))
}

/// The candidates reordered by score, best first; candidates without a score follow in the order they
/// came (the fused order), and so do equal scores.
pub fn reorder<T>(candidates: Vec<T>, scores: &[Option<f64>]) -> Vec<(T, Option<f64>)> {
    let mut paired: Vec<(usize, T, Option<f64>)> = candidates
        .into_iter()
        .enumerate()
        .map(|(position, candidate)| (position, candidate, scores.get(position).copied().flatten()))
        .collect();
    paired.sort_by(|(a_position, _, a), (b_position, _, b)| match (a, b) {
        (Some(a), Some(b)) => b.total_cmp(a).then(a_position.cmp(b_position)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a_position.cmp(b_position),
    });
    paired.into_iter().map(|(_, candidate, score)| (candidate, score)).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn model(spec: &str) -> RerankModel {
        RerankModel::parse(spec).unwrap()
    }

    #[test]
    fn model_specs() {
        assert_eq!(model("cohere/rerank-v3.5").provider, RerankProvider::Cohere);
        assert_eq!(model(" voyage/rerank-2.5 ").name, "rerank-2.5");
        assert_eq!(model("jina/jina-reranker-v2-base-multilingual").id(), "jina/jina-reranker-v2-base-multilingual");
        for bad in ["", "cohere", "cohere/", "openai/rerank", "cohere/a b", "voyage/a'b"] {
            assert!(RerankModel::parse(bad).is_err(), "{bad:?}");
        }
    }

    fn documents() -> Vec<String> {
        vec!["Backups run nightly.".to_owned(), "Rotate the master key.".to_owned()]
    }

    #[test]
    fn each_provider_gets_its_own_request() {
        let documents = documents();
        assert_eq!(
            request_body(&model("cohere/rerank-v3.5"), "rotate keys", &documents),
            json!({
                "model": "rerank-v3.5",
                "query": "rotate keys",
                "documents": ["Backups run nightly.", "Rotate the master key."],
                "top_n": 2,
            })
        );
        assert_eq!(
            request_body(&model("voyage/rerank-2.5"), "rotate keys", &documents),
            json!({
                "query": "rotate keys",
                "documents": ["Backups run nightly.", "Rotate the master key."],
                "model": "rerank-2.5",
                "top_k": 2,
                "return_documents": false,
                "truncation": true,
            })
        );
        assert_eq!(
            request_body(&model("jina/jina-reranker-v2-base-multilingual"), "rotate keys", &documents),
            json!({
                "model": "jina-reranker-v2-base-multilingual",
                "query": "rotate keys",
                "documents": ["Backups run nightly.", "Rotate the master key."],
                "top_n": 2,
                "return_documents": false,
            })
        );
    }

    #[test]
    fn each_providers_answer_is_read_by_index() {
        let cohere = json!({
            "id": "07734bd2",
            "results": [{"index": 1, "relevance_score": 0.99}, {"index": 0, "relevance_score": 0.32}],
            "meta": {"api_version": {"version": "2"}, "billed_units": {"search_units": 1}},
        });
        let (scores, reported) = scores_from(RerankProvider::Cohere, &cohere, 2).unwrap();
        assert_eq!(scores, vec![Some(0.32), Some(0.99)]);
        assert_eq!((reported.tokens, reported.search_units), (None, Some(1)));

        let voyage = json!({
            "object": "list",
            "data": [{"index": 1, "relevance_score": 0.91}, {"index": 0, "relevance_score": 0.4}],
            "model": "rerank-2.5",
            "usage": {"total_tokens": 26},
        });
        let (scores, reported) = scores_from(RerankProvider::Voyage, &voyage, 2).unwrap();
        assert_eq!(scores, vec![Some(0.4), Some(0.91)]);
        assert_eq!((reported.tokens, reported.search_units), (Some(26), None));
        assert!(scores_from(RerankProvider::Voyage, &cohere, 2).is_err(), "Voyage answers `data`, not `results`");

        let jina = json!({
            "model": "jina-reranker-v2-base-multilingual",
            "usage": {"total_tokens": 815},
            "results": [{"index": 0, "relevance_score": 0.87}],
        });
        let (scores, reported) = scores_from(RerankProvider::Jina, &jina, 2).unwrap();
        assert_eq!(scores, vec![Some(0.87), None]);
        assert_eq!(reported.tokens, Some(815));

        let beyond = json!({"results": [{"index": 2, "relevance_score": 0.5}]});
        assert!(scores_from(RerankProvider::Jina, &beyond, 2).is_err(), "an index past the documents sent");
    }

    #[test]
    fn reordering_puts_the_best_score_first_and_keeps_the_fused_order_otherwise() {
        let reordered = reorder(vec!["a", "b", "c", "d"], &[Some(0.1), None, Some(0.9), Some(0.1)]);
        let order: Vec<&str> = reordered.iter().map(|(candidate, _)| *candidate).collect();
        assert_eq!(order, ["c", "a", "d", "b"]);
        assert_eq!(reordered[0].1, Some(0.9));
        assert_eq!(reordered[3].1, None);
    }
}
