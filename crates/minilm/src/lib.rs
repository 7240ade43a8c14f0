//! all-MiniLM-L6-v2's forward pass over packed sequences: every sequence's tokens one after another, no
//! padding, no attention mask. The dense layers (nearly all of the work) are one matrix product over every
//! token of the batch, whatever the sequences' lengths, so a batch of one long and many short texts costs
//! what its tokens cost; only attention is per sequence. candle's `BertModel` pads each batch to its
//! longest text and spent a third of its time outside the matrix products (exact GELU through libm's
//! `erff`, spinning thread barriers around small element-wise steps): here those steps are plain loops,
//! split across the cores by sequence or by row, and compiled (through `pulp`'s run-time dispatch) for the
//! widest vector instructions the CPU has.
//!
//! The arithmetic is BERT's as sentence-transformers runs it (post-norm layers, exact GELU, mean pooling
//! over every token including `[CLS]` and `[SEP]`); tests/api/embedders.rs holds it to reference values.

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use rayon::prelude::*;

const HIDDEN: usize = 384;
const HIDDEN_F32: f32 = 384.0;
/// Rows of a matrix handed to one core at a time in element-wise steps.
const ROWS: usize = 64;
const HEADS: usize = 12;
const HEAD_SIZE: usize = HIDDEN / HEADS;
const INTERMEDIATE: usize = 1536;
const LAYERS: usize = 6;
const LAYER_NORM_EPSILON: f32 = 1e-12;
/// Learned positions: no sequence may be longer.
pub const MAX_POSITIONS: usize = 512;

type Result<T> = std::result::Result<T, candle_core::Error>;

/// A linear layer: its weight transposed (inputs × outputs, so the product is a plain row-major one) and
/// its bias.
struct Dense {
    weight: Tensor,
    bias: Vec<f32>,
}

impl Dense {
    fn load(vb: &VarBuilder, names: &[&str], inputs: usize, outputs: usize) -> Result<Self> {
        // Several layers with the same input (query, key, value) are one product: their weights side by side.
        let weights: Vec<Tensor> =
            names.iter().map(|name| vb.get((outputs, inputs), &format!("{name}.weight"))).collect::<Result<_>>()?;
        let weight = Tensor::cat(&weights, 0)?.t()?.contiguous()?;
        let mut bias = Vec::with_capacity(outputs * names.len());
        for name in names {
            bias.extend(vb.get(outputs, &format!("{name}.bias"))?.to_vec1::<f32>()?);
        }
        Ok(Self { weight, bias })
    }

    /// `rows` rows of `input` through the layer.
    fn apply(&self, input: Vec<f32>, rows: usize) -> Result<Vec<f32>> {
        let input = Tensor::from_vec(input, (rows, self.weight.dim(0)?), &Device::Cpu)?;
        let mut output = input.matmul(&self.weight)?.flatten_all()?.to_vec1::<f32>()?;
        let width = self.bias.len();
        output.par_chunks_mut(width * ROWS).for_each(|block| {
            for row in block.chunks_exact_mut(width) {
                row.iter_mut().zip(&self.bias).for_each(|(value, bias)| *value += bias);
            }
        });
        Ok(output)
    }
}

struct LayerNorm {
    weight: Vec<f32>,
    bias: Vec<f32>,
}

impl LayerNorm {
    fn load(vb: &VarBuilder, name: &str) -> Result<Self> {
        Ok(Self {
            weight: vb.get(HIDDEN, &format!("{name}.weight"))?.to_vec1()?,
            bias: vb.get(HIDDEN, &format!("{name}.bias"))?.to_vec1()?,
        })
    }

    /// Normalises each row of `values` in place, after adding `residual` to it when given.
    fn apply(&self, values: &mut [f32], residual: Option<&[f32]>) {
        let normalise = |row: &mut [f32], residual: Option<&[f32]>| {
            if let Some(residual) = residual {
                row.iter_mut().zip(residual).for_each(|(value, add)| *value += add);
            }
            let mean = row.iter().sum::<f32>() / HIDDEN_F32;
            let variance = row.iter().map(|value| (value - mean) * (value - mean)).sum::<f32>() / HIDDEN_F32;
            let scale = 1.0 / (variance + LAYER_NORM_EPSILON).sqrt();
            for ((value, weight), bias) in row.iter_mut().zip(&self.weight).zip(&self.bias) {
                *value = (*value - mean) * scale * weight + bias;
            }
        };
        match residual {
            Some(residual) => values.par_chunks_mut(HIDDEN * ROWS).zip(residual.par_chunks(HIDDEN * ROWS)).for_each(
                |(block, residual)| {
                    for (row, residual) in block.chunks_exact_mut(HIDDEN).zip(residual.chunks_exact(HIDDEN)) {
                        normalise(row, Some(residual));
                    }
                },
            ),
            None => values.par_chunks_mut(HIDDEN * ROWS).for_each(|block| {
                block.chunks_exact_mut(HIDDEN).for_each(|row| normalise(row, None));
            }),
        }
    }
}

struct Layer {
    query_key_value: Dense,
    attention_output: Dense,
    attention_norm: LayerNorm,
    intermediate: Dense,
    output: Dense,
    output_norm: LayerNorm,
}

impl Layer {
    fn load(vb: &VarBuilder, index: usize) -> Result<Self> {
        let at = |name: &str| format!("encoder.layer.{index}.{name}");
        let (query, key, value) = (at("attention.self.query"), at("attention.self.key"), at("attention.self.value"));
        Ok(Self {
            query_key_value: Dense::load(vb, &[&query, &key, &value], HIDDEN, HIDDEN)?,
            attention_output: Dense::load(vb, &[&at("attention.output.dense")], HIDDEN, HIDDEN)?,
            attention_norm: LayerNorm::load(vb, &at("attention.output.LayerNorm"))?,
            intermediate: Dense::load(vb, &[&at("intermediate.dense")], HIDDEN, INTERMEDIATE)?,
            output: Dense::load(vb, &[&at("output.dense")], INTERMEDIATE, HIDDEN)?,
            output_norm: LayerNorm::load(vb, &at("output.LayerNorm"))?,
        })
    }

    fn forward(&self, hidden: &[f32], lengths: &[usize]) -> Result<Vec<f32>> {
        let rows = hidden.len() / HIDDEN;
        let query_key_value = self.query_key_value.apply(hidden.to_vec(), rows)?;
        let context = attention(&query_key_value, lengths);
        let mut attended = self.attention_output.apply(context, rows)?;
        self.attention_norm.apply(&mut attended, Some(hidden));
        let mut intermediate = self.intermediate.apply(attended.clone(), rows)?;
        let arch = pulp::Arch::new();
        intermediate.par_chunks_mut(INTERMEDIATE * ROWS).for_each(|block| {
            arch.dispatch(|| block.iter_mut().for_each(|x| *x = gelu(*x)));
        });
        let mut output = self.output.apply(intermediate, rows)?;
        self.output_norm.apply(&mut output, Some(&attended));
        Ok(output)
    }
}

pub struct MiniLm {
    word_embeddings: Vec<f32>,
    position_embeddings: Vec<f32>,
    /// Every token is of type 0: only its row is kept.
    token_type_embedding: Vec<f32>,
    embeddings_norm: LayerNorm,
    layers: Vec<Layer>,
}

impl MiniLm {
    /// Reads the weights of a `BertModel` checkpoint of all-MiniLM-L6-v2's shape (`vocabulary`: its
    /// config's `vocab_size`).
    pub fn load(weights: Vec<u8>, vocabulary: usize) -> Result<Self> {
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &Device::Cpu)?;
        let table = |name: &str, rows: usize| vb.get((rows, HIDDEN), name)?.flatten_all()?.to_vec1::<f32>();
        Ok(Self {
            word_embeddings: table("embeddings.word_embeddings.weight", vocabulary)?,
            position_embeddings: table("embeddings.position_embeddings.weight", MAX_POSITIONS)?,
            token_type_embedding: vb.get((2, HIDDEN), "embeddings.token_type_embeddings.weight")?.get(0)?.to_vec1()?,
            embeddings_norm: LayerNorm::load(&vb, "embeddings.LayerNorm")?,
            layers: (0..LAYERS).map(|index| Layer::load(&vb, index)).collect::<Result<_>>()?,
        })
    }

    /// One mean-pooled, L2-normalised vector per sequence. `ids` holds the sequences' token ids one after
    /// another (each with its `[CLS]` and `[SEP]`), `lengths` how many each has (at most
    /// [`MAX_POSITIONS`]).
    pub fn embed(&self, ids: &[u32], lengths: &[usize]) -> Result<Vec<Vec<f32>>> {
        if lengths.iter().any(|length| *length == 0 || *length > MAX_POSITIONS)
            || lengths.iter().sum::<usize>() != ids.len()
        {
            return Err(candle_core::Error::Msg("sequences must hold 1 to 512 tokens".to_owned()));
        }
        let vocabulary = self.word_embeddings.len() / HIDDEN;
        let mut hidden = Vec::with_capacity(ids.len() * HIDDEN);
        for (sequence, &length) in starts(lengths).zip(lengths) {
            for (position, &id) in ids[sequence..sequence + length].iter().enumerate() {
                let id = usize::try_from(id).unwrap_or(usize::MAX).min(vocabulary - 1);
                let word = &self.word_embeddings[id * HIDDEN..][..HIDDEN];
                let place = &self.position_embeddings[position * HIDDEN..][..HIDDEN];
                hidden.extend(word.iter().zip(place).zip(&self.token_type_embedding).map(|((a, b), c)| a + b + c));
            }
        }
        self.embeddings_norm.apply(&mut hidden, None);
        for layer in &self.layers {
            hidden = layer.forward(&hidden, lengths)?;
        }
        Ok(starts(lengths)
            .zip(lengths)
            .map(|(start, &length)| {
                let mut mean = vec![0f32; HIDDEN];
                for row in hidden[start * HIDDEN..(start + length) * HIDDEN].chunks_exact(HIDDEN) {
                    mean.iter_mut().zip(row).for_each(|(sum, value)| *sum += value);
                }
                let norm = mean.iter().map(|value| value * value).sum::<f32>().sqrt().max(f32::MIN_POSITIVE);
                for value in &mut mean {
                    *value /= norm;
                }
                mean
            })
            .collect())
    }
}

/// Where each sequence starts among the packed tokens.
fn starts(lengths: &[usize]) -> impl Iterator<Item = usize> + '_ {
    lengths.iter().scan(0, |next, length| {
        let start = *next;
        *next += length;
        Some(start)
    })
}

/// Scaled dot-product attention of each sequence with itself, its heads side by side: `query_key_value`
/// holds each token's query, key and value (each `HIDDEN` wide); the answer each token's context.
fn attention(query_key_value: &[f32], lengths: &[usize]) -> Vec<f32> {
    let mut context = vec![0f32; query_key_value.len() / 3];
    let mut outputs = Vec::with_capacity(lengths.len());
    let mut rest = context.as_mut_slice();
    for &length in lengths {
        let (output, after) = rest.split_at_mut(length * HIDDEN);
        outputs.push(output);
        rest = after;
    }
    let arch = pulp::Arch::new();
    outputs.into_par_iter().zip(starts(lengths).collect::<Vec<_>>()).for_each(|(output, start)| {
        let length = output.len() / HIDDEN;
        let query_key_value = &query_key_value[start * 3 * HIDDEN..(start + length) * 3 * HIDDEN];
        arch.dispatch(|| sequence_attention(query_key_value, length, output));
    });
    context
}

#[expect(clippy::inline_always, reason = "inlined into pulp's dispatch, its loops use the CPU's widest vectors")]
#[inline(always)]
fn sequence_attention(query_key_value: &[f32], length: usize, output: &mut [f32]) {
    // 1/√HEAD_SIZE.
    let scale = 0.176_776_7_f32;
    // One head's keys transposed (a row per dimension, a column per token), so that a query's scores
    // against every key are a sum of contiguous rows, which the compiler turns into vector instructions.
    let mut keys = vec![0f32; HEAD_SIZE * length];
    let mut scores = vec![0f32; length];
    for head in 0..HEADS {
        let (query_at, key_at, value_at) = (head * HEAD_SIZE, HIDDEN + head * HEAD_SIZE, 2 * HIDDEN + head * HEAD_SIZE);
        for token in 0..length {
            let key = &query_key_value[token * 3 * HIDDEN + key_at..][..HEAD_SIZE];
            for (dimension, value) in key.iter().enumerate() {
                keys[dimension * length + token] = *value;
            }
        }
        for token in 0..length {
            let query = &query_key_value[token * 3 * HIDDEN + query_at..][..HEAD_SIZE];
            scores.fill(0.0);
            for (dimension, q) in query.iter().enumerate() {
                let q = q * scale;
                scores.iter_mut().zip(&keys[dimension * length..][..length]).for_each(|(score, k)| *score += q * k);
            }
            let highest = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut total = 0.0;
            for score in &mut scores {
                *score = (*score - highest).exp();
                total += *score;
            }
            let out = &mut output[token * HIDDEN + query_at..][..HEAD_SIZE];
            out.fill(0.0);
            for (other, weight) in scores.iter().enumerate() {
                let value = &query_key_value[other * 3 * HIDDEN + value_at..][..HEAD_SIZE];
                let weight = weight / total;
                out.iter_mut().zip(value).for_each(|(out, value)| *out += weight * value);
            }
        }
    }
}

/// BERT's exact GELU, `x·Φ(x)`, with an erf good to f32 precision and free of branches and calls (so
/// the compiler vectorises it; libm's `erff` was a tenth of the time).
#[expect(clippy::inline_always, reason = "inlined into pulp's dispatch, it uses the CPU's widest vectors")]
#[inline(always)]
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// The rational approximation of erf that Eigen and XLA use for f32: odd polynomial over even one on
/// [-4, 4], where erf reaches ±1 in f32; within a few ulp of the true value.
#[expect(clippy::inline_always, reason = "inlined into pulp's dispatch, it uses the CPU's widest vectors")]
#[inline(always)]
fn erf(x: f32) -> f32 {
    // Plain products and sums: `mul_add` without the FMA instruction in the baseline target is a libm call.
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = x2 * -2.726_142e-10 + 2.770_681_4e-8;
    p = x2 * p + -2.101_024e-6;
    p = x2 * p + -5.692_506_4e-5;
    p = x2 * p + -7.349_906_3e-4;
    p = x2 * p + -2.954_6e-3;
    p = x2 * p + -1.609_603_3e-2;
    let mut q = x2 * -1.456_607_2e-5 + -2.133_740_6e-4;
    q = x2 * q + -1.682_827e-3;
    q = x2 * q + -7.373_329_2e-3;
    q = x2 * q + -1.426_473_9e-2;
    x * p / q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_agrees_with_an_independent_implementation() {
        let mut worst = 0f64;
        for step in -60_000..=60_000 {
            let x = f64::from(step) / 10_000.0;
            #[expect(clippy::cast_possible_truncation, reason = "the f32 under test")]
            let ours = f64::from(erf(x as f32));
            worst = worst.max((ours - candle_core::cpu::erf::erf_f64(x)).abs());
        }
        assert!(worst < 1e-6, "largest difference {worst}");
    }

    #[test]
    fn packed_sequences_start_one_after_another() {
        assert_eq!(starts(&[3, 1, 4]).collect::<Vec<_>>(), [0, 3, 4]);
    }
}
