//! The model catalog: per provider and model, its context window, its output ceiling and its prices (US
//! dollars per million tokens, exact decimals). Built in from `models/catalog.toml`; the operator extends or
//! replaces it with a file of the same shape (`SWITCHBOARD_MODEL_CATALOG`), checked at start: a bad entry
//! stops the start, naming its line and what is wrong. A tenant declares the models of its own
//! OpenAI-compatible server (`tenant.rs`); a turn finds those first.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr as _;
use std::sync::Arc;

use rust_decimal::Decimal;
use serde::Deserialize;

use crate::tokens::TokenUsage;

pub mod store;
pub mod tenant;

const BUILT_IN: &str = include_str!("../../models/catalog.toml");

/// The provider whose models a tenant may declare itself (its own server's).
pub const TENANT_PROVIDER: &str = "openai_compatible";

#[derive(Debug, thiserror::Error)]
#[error("{source_name} line {line}: {reason}")]
pub struct CatalogError {
    pub source_name: String,
    pub line: usize,
    pub reason: String,
}

/// What one million tokens of each kind cost, in US dollars.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prices {
    pub input: Decimal,
    pub output: Decimal,
    /// Prompt tokens read from the provider's cache.
    pub cached_input: Decimal,
    /// Prompt tokens written to the provider's cache.
    pub cache_write: Decimal,
}

impl Prices {
    /// The exact cost of a model call: uncached input, cache reads and writes and output, each at its
    /// price (reasoning tokens are output tokens and cost as such).
    pub fn cost(&self, usage: &TokenUsage) -> Decimal {
        let fresh_input = usage.input.saturating_sub(usage.cached_input).saturating_sub(usage.cache_write);
        let per_million = Decimal::from(fresh_input) * self.input
            + Decimal::from(usage.cached_input) * self.cached_input
            + Decimal::from(usage.cache_write) * self.cache_write
            + Decimal::from(usage.output) * self.output;
        per_million / Decimal::from(1_000_000)
    }

    /// The most a call can cost: every prompt token uncached, and the whole output ceiling written.
    pub fn worst_case(&self, prompt_tokens: u64, max_output_tokens: u64) -> Decimal {
        (Decimal::from(prompt_tokens) * self.input.max(self.cache_write)
            + Decimal::from(max_output_tokens) * self.output)
            / Decimal::from(1_000_000)
    }
}

/// One model as the catalog knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInfo {
    pub provider: String,
    pub name: String,
    pub context_window: u32,
    pub max_output_tokens: u32,
    pub prices: Prices,
}

/// What a rerank call costs: by the tokens it reads (Voyage, Jina) or by the searches it makes (Cohere:
/// one search unit is a query with up to 100 documents).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RerankPrice {
    /// US dollars per million tokens.
    PerMillionTokens(Decimal),
    /// US dollars per thousand search units.
    PerThousandSearches(Decimal),
}

impl RerankPrice {
    /// The cost of one call that read `tokens` and was billed `search_units`; `None` when the call did not
    /// report what this price counts.
    pub fn cost(self, tokens: Option<u64>, search_units: Option<u64>) -> Option<Decimal> {
        match self {
            Self::PerMillionTokens(price) => Some(Decimal::from(tokens?) * price / Decimal::from(1_000_000)),
            Self::PerThousandSearches(price) => Some(Decimal::from(search_units?) * price / Decimal::from(1_000)),
        }
    }
}

/// The catalog: models by provider and by name or alias (case-insensitive). Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    models: Arc<HashMap<(String, String), Arc<ModelInfo>>>,
    /// Embedding models' prices per million input tokens, by provider and name.
    embeddings: Arc<HashMap<(String, String), Decimal>>,
    /// Rerank models' prices, by provider and name.
    reranks: Arc<HashMap<(String, String), RerankPrice>>,
}

impl Catalog {
    /// The catalog built into the binary (`models/catalog.toml`).
    pub fn built_in() -> Self {
        let mut models = HashMap::new();
        let mut embeddings = HashMap::new();
        let mut reranks = HashMap::new();
        add(&mut models, &mut embeddings, &mut reranks, BUILT_IN, "models/catalog.toml")
            .expect("the built-in catalog is valid (a test checks it)");
        Self { models: Arc::new(models), embeddings: Arc::new(embeddings), reranks: Arc::new(reranks) }
    }

    /// The built-in catalog extended by the operator's file; a file saying `replace = true` replaces it.
    /// An operator's entry for a model the built-in catalog has takes its place.
    pub fn with_operator_file(path: &Path) -> Result<Self, CatalogError> {
        let source_name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|error| CatalogError {
            source_name: source_name.clone(),
            line: 0,
            reason: error.to_string(),
        })?;
        let mut operator = HashMap::new();
        let mut operator_embeddings = HashMap::new();
        let mut operator_reranks = HashMap::new();
        let replace = add(&mut operator, &mut operator_embeddings, &mut operator_reranks, &text, &source_name)?;
        let built_in = Self::built_in();
        let mut models = if replace { HashMap::new() } else { (*built_in.models).clone() };
        let mut embeddings = if replace { HashMap::new() } else { (*built_in.embeddings).clone() };
        embeddings.extend(operator_embeddings);
        let mut reranks = if replace { HashMap::new() } else { (*built_in.reranks).clone() };
        reranks.extend(operator_reranks);
        // Whatever the operator names (by name or alias) is theirs: drop the built-in entries it overlaps.
        models.retain(|_, known: &mut Arc<ModelInfo>| {
            !operator.values().any(|mine: &Arc<ModelInfo>| mine.provider == known.provider && mine.name == known.name)
        });
        // A name or alias both use is the operator's.
        models.extend(operator);
        Ok(Self { models: Arc::new(models), embeddings: Arc::new(embeddings), reranks: Arc::new(reranks) })
    }

    /// What a rerank model's calls cost; `None` when the catalog does not say.
    pub fn rerank_price(&self, provider: &str, model: &str) -> Option<RerankPrice> {
        self.reranks.get(&(provider.to_ascii_lowercase(), model.to_ascii_lowercase())).copied()
    }

    /// What a million input tokens of an embedding model cost; `None` when the catalog does not say.
    pub fn embedding_price(&self, provider: &str, model: &str) -> Option<Decimal> {
        self.embeddings.get(&(provider.to_ascii_lowercase(), model.to_ascii_lowercase())).copied()
    }

    /// The model by provider and name or alias.
    pub fn find(&self, provider: &str, model: &str) -> Option<Arc<ModelInfo>> {
        self.models.get(&(provider.to_ascii_lowercase(), model.to_ascii_lowercase())).cloned()
    }

    /// Every model once (not once per alias), sorted by provider and name.
    pub fn models(&self) -> Vec<Arc<ModelInfo>> {
        let mut models: Vec<Arc<ModelInfo>> = Vec::new();
        for model in self.models.values() {
            if !models.iter().any(|known| Arc::ptr_eq(known, model)) {
                models.push(Arc::clone(model));
            }
        }
        models.sort_by(|a, b| (&a.provider, &a.name).cmp(&(&b.provider, &b.name)));
        models
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    #[serde(default)]
    replace: bool,
    #[serde(default)]
    model: Vec<toml::Spanned<Entry>>,
    #[serde(default)]
    embedding: Vec<toml::Spanned<EmbeddingEntry>>,
    #[serde(default)]
    rerank: Vec<toml::Spanned<RerankEntry>>,
}

/// A rerank model: priced per million tokens or per thousand searches, one of the two.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RerankEntry {
    provider: String,
    name: String,
    per_million_tokens: Option<toml::Value>,
    per_thousand_searches: Option<toml::Value>,
}

const RERANK_PROVIDERS: [&str; 3] = ["cohere", "voyage", "jina"];

/// An embedding model: only its input is priced.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmbeddingEntry {
    provider: String,
    name: String,
    input: toml::Value,
}

const EMBEDDING_PROVIDERS: [&str; 4] = ["local", "openai", "voyage", "gemini"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    provider: String,
    name: String,
    #[serde(default)]
    aliases: Vec<String>,
    context_window: u32,
    max_output_tokens: u32,
    input: toml::Value,
    output: toml::Value,
    cached_input: Option<toml::Value>,
    cache_write: Option<toml::Value>,
}

const PROVIDERS: [&str; 5] = ["openai", "anthropic", "gemini", "openai_compatible", "local"];

/// Parses and checks one catalog file into `models`; returns its `replace` flag.
fn add(
    models: &mut HashMap<(String, String), Arc<ModelInfo>>,
    embeddings: &mut HashMap<(String, String), Decimal>,
    reranks: &mut HashMap<(String, String), RerankPrice>,
    text: &str,
    source_name: &str,
) -> Result<bool, CatalogError> {
    let error_at = |line: usize, reason: String| CatalogError { source_name: source_name.to_owned(), line, reason };
    let file: CatalogFile = toml::from_str(text).map_err(|error| {
        let line = error.span().map_or(0, |span| line_of(text, span.start));
        error_at(line, error.message().to_owned())
    })?;
    for spanned in file.model {
        let line = line_of(text, spanned.span().start);
        let entry = spanned.into_inner();
        let info = model_info(&entry).map_err(|reason| error_at(line, reason))?;
        let info = Arc::new(info);
        for name in std::iter::once(&entry.name).chain(&entry.aliases) {
            let key = (entry.provider.to_ascii_lowercase(), name.to_ascii_lowercase());
            if models.insert(key, Arc::clone(&info)).is_some() {
                return Err(error_at(line, format!("{}/{name} is in the catalog twice", entry.provider)));
            }
        }
    }
    for spanned in file.embedding {
        let line = line_of(text, spanned.span().start);
        let entry = spanned.into_inner();
        if !EMBEDDING_PROVIDERS.contains(&entry.provider.as_str()) {
            let reason = format!(
                "unknown embedding provider `{}` (expected one of {})",
                entry.provider,
                EMBEDDING_PROVIDERS.join(", ")
            );
            return Err(error_at(line, reason));
        }
        let input = price("input", &entry.input).map_err(|reason| error_at(line, reason))?;
        let key = (entry.provider.to_ascii_lowercase(), entry.name.to_ascii_lowercase());
        if embeddings.insert(key, input).is_some() {
            return Err(error_at(line, format!("embedding {}/{} is in the catalog twice", entry.provider, entry.name)));
        }
    }
    for spanned in file.rerank {
        let line = line_of(text, spanned.span().start);
        let entry = spanned.into_inner();
        let rerank_price = rerank_price(&entry).map_err(|reason| error_at(line, reason))?;
        let key = (entry.provider.to_ascii_lowercase(), entry.name.to_ascii_lowercase());
        if reranks.insert(key, rerank_price).is_some() {
            return Err(error_at(line, format!("rerank {}/{} is in the catalog twice", entry.provider, entry.name)));
        }
    }
    Ok(file.replace)
}

fn rerank_price(entry: &RerankEntry) -> Result<RerankPrice, String> {
    if !RERANK_PROVIDERS.contains(&entry.provider.as_str()) {
        let expected = RERANK_PROVIDERS.join(", ");
        return Err(format!("unknown rerank provider `{}` (expected one of {expected})", entry.provider));
    }
    match (&entry.per_million_tokens, &entry.per_thousand_searches) {
        (Some(tokens), None) => Ok(RerankPrice::PerMillionTokens(price("per_million_tokens", tokens)?)),
        (None, Some(searches)) => Ok(RerankPrice::PerThousandSearches(price("per_thousand_searches", searches)?)),
        _ => Err("a rerank model has one price: per_million_tokens or per_thousand_searches".to_owned()),
    }
}

fn model_info(entry: &Entry) -> Result<ModelInfo, String> {
    if !PROVIDERS.contains(&entry.provider.as_str()) {
        return Err(format!("unknown provider `{}` (expected one of {})", entry.provider, PROVIDERS.join(", ")));
    }
    if entry.name.trim().is_empty() || entry.aliases.iter().any(|alias| alias.trim().is_empty()) {
        return Err("a model's name and aliases must not be empty".to_owned());
    }
    if entry.context_window == 0 || entry.max_output_tokens == 0 {
        return Err("context_window and max_output_tokens must be positive".to_owned());
    }
    let input = price("input", &entry.input)?;
    let prices = Prices {
        input,
        output: price("output", &entry.output)?,
        cached_input: entry
            .cached_input
            .as_ref()
            .map(|value| price("cached_input", value))
            .transpose()?
            .unwrap_or(input),
        cache_write: entry.cache_write.as_ref().map(|value| price("cache_write", value)).transpose()?.unwrap_or(input),
    };
    Ok(ModelInfo {
        provider: entry.provider.clone(),
        name: entry.name.clone(),
        context_window: entry.context_window,
        max_output_tokens: entry.max_output_tokens,
        prices,
    })
}

/// A price: a decimal string, not negative. Numbers are refused: TOML reads `0.1` as a float, which is
/// not the price written.
fn price(field: &str, value: &toml::Value) -> Result<Decimal, String> {
    let toml::Value::String(text) = value else {
        return Err(format!("{field} must be a string such as \"0.15\" (prices stay exact that way)"));
    };
    let price = Decimal::from_str(text.trim()).map_err(|_| format!("{field} `{text}` is not a decimal number"))?;
    if price.is_sign_negative() {
        return Err(format!("{field} must not be negative"));
    }
    Ok(price)
}

/// The 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<HashMap<(String, String), Arc<ModelInfo>>, CatalogError> {
        let mut models = HashMap::new();
        add(&mut models, &mut HashMap::new(), &mut HashMap::new(), text, "test.toml").map(|_| models)
    }

    const ONE: &str = "[[model]]\nprovider = \"openai\"\nname = \"m\"\ncontext_window = 1000\n\
                       max_output_tokens = 100\ninput = \"1.5\"\noutput = \"6\"\n";

    #[test]
    fn the_built_in_catalog_is_valid_and_knows_every_default_model() {
        let catalog = Catalog::built_in();
        for (provider, model) in [
            ("openai", "gpt-4o-mini"),
            ("anthropic", "claude-sonnet-4-5"),
            ("gemini", "gemini-2.5-flash"),
            ("local", "switchboard-extractive"),
        ] {
            assert!(catalog.find(provider, model).is_some(), "{provider}/{model}");
        }
        assert_eq!(catalog.embedding_price("local", "all-minilm-l6-v2"), Some(Decimal::ZERO));
        assert!(catalog.embedding_price("openai", "text-embedding-3-small").is_some());
        let two = Decimal::from(2);
        assert_eq!(catalog.rerank_price("cohere", "rerank-v3.5"), Some(RerankPrice::PerThousandSearches(two)));
        assert!(matches!(catalog.rerank_price("voyage", "rerank-2.5"), Some(RerankPrice::PerMillionTokens(_))));
        assert!(catalog.rerank_price("jina", "jina-reranker-v2-base-multilingual").is_some());
        let snapshot = catalog.find("anthropic", "Claude-Sonnet-4-5-20250929").expect("an alias, any case");
        assert_eq!(snapshot.name, "claude-sonnet-4-5");
    }

    #[test]
    fn a_cost_is_exact_and_each_kind_of_token_has_its_price() {
        let prices = Prices {
            input: Decimal::from_str("3").unwrap(),
            output: Decimal::from_str("15").unwrap(),
            cached_input: Decimal::from_str("0.30").unwrap(),
            cache_write: Decimal::from_str("3.75").unwrap(),
        };
        let usage = TokenUsage { input: 1_000, cached_input: 400, cache_write: 100, output: 200, reasoning: 50 };
        // 500 fresh × 3 + 400 × 0.30 + 100 × 3.75 + 200 × 15 = 1500 + 120 + 375 + 3000 = 4995 per million.
        assert_eq!(prices.cost(&usage), Decimal::from_str("0.004995").unwrap());
        let tenth = Prices { input: Decimal::from_str("0.1").unwrap(), ..prices.clone() };
        let three = TokenUsage { input: 3, ..TokenUsage::default() };
        assert_eq!(tenth.cost(&three) * Decimal::from(1_000_000), Decimal::from_str("0.3").unwrap(), "no float drift");
    }

    #[test]
    fn a_rerank_call_costs_by_what_its_price_counts() {
        let per_search = RerankPrice::PerThousandSearches(Decimal::from(2));
        assert_eq!(per_search.cost(Some(900), Some(1)), Some(Decimal::from_str("0.002").unwrap()));
        assert_eq!(per_search.cost(Some(900), None), None, "not billed in searches: unknown, never free");
        let per_token = RerankPrice::PerMillionTokens(Decimal::from_str("0.05").unwrap());
        assert_eq!(per_token.cost(Some(1_000), None), Some(Decimal::from_str("0.00005").unwrap()));
        let mut reranks = HashMap::new();
        let both = "[[rerank]]\nprovider = \"jina\"\nname = \"r\"\nper_million_tokens = \"1\"\n\
                    per_thousand_searches = \"1\"\n";
        let error = add(&mut HashMap::new(), &mut HashMap::new(), &mut reranks, both, "t.toml").unwrap_err();
        assert!(error.reason.contains("one price"), "{error}");
    }

    #[test]
    fn bad_entries_are_refused_with_their_line() {
        let twice = format!("{ONE}\n{ONE}");
        let error = parse(&twice).unwrap_err();
        assert_eq!((error.line, error.reason.as_str()), (9, "openai/m is in the catalog twice"));
        let negative = ONE.replace("\"1.5\"", "\"-1\"");
        assert_eq!(parse(&negative).unwrap_err().reason, "input must not be negative");
        let float = ONE.replace("\"1.5\"", "1.5");
        assert!(parse(&float).unwrap_err().reason.contains("must be a string"));
        let unknown = ONE.replace("provider = \"openai\"", "provider = \"acme\"");
        assert!(parse(&unknown).unwrap_err().reason.starts_with("unknown provider `acme`"));
        let typo = ONE.replace("output =", "outptu =");
        let error = parse(&typo).unwrap_err();
        assert!(error.reason.contains("outptu"), "{error}");
        assert_eq!(error.line, 7);
    }

    #[test]
    fn an_operator_file_extends_or_replaces_the_built_in_catalog() {
        let dir = std::env::temp_dir().join(format!("catalog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("models.toml");
        let mine = ONE.replace("name = \"m\"", "name = \"gpt-4o-mini\"");
        std::fs::write(&path, &mine).unwrap();
        let extended = Catalog::with_operator_file(&path).unwrap();
        assert_eq!(extended.find("openai", "gpt-4o-mini").unwrap().context_window, 1000, "the operator's entry wins");
        assert!(extended.find("openai", "gpt-4o-mini-2024-07-18").is_none(), "with its aliases");
        assert!(extended.find("anthropic", "claude-sonnet-4-5").is_some());
        std::fs::write(&path, format!("replace = true\n{mine}")).unwrap();
        let replaced = Catalog::with_operator_file(&path).unwrap();
        assert_eq!(replaced.models().len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
