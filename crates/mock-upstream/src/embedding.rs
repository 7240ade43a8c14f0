//! The vectors every mocked embedding endpoint returns: deterministic, and meaningful enough for retrieval tests.
//!
//! Each lower-cased alphanumeric word of a text is hashed (FNV-1a, stable across processes and platforms, unlike
//! std's randomly keyed hasher) into one of `dims` buckets with a hashed sign, and the sum is L2-normalised. Texts
//! that share words therefore have a high cosine similarity and unrelated texts one near zero, so a test can
//! check that a search ranks the passage about its question first, and can compute the exact expected vector
//! with [`embed`]. The vector depends on the text and the dimensions only: not on the model, nor on whether the
//! text is a query or a document.

use serde::Serialize;
use serde_json::Value;

use crate::script::saturate;

/// Dimensions of every model's vectors when the request asks for none.
pub const DEFAULT_DIMENSIONS: usize = 256;

/// The most dimensions the mock accepts (the largest real models have 3072): a guard against a request making it
/// allocate without bound, not any provider's limit.
pub const MAX_DIMENSIONS: usize = 4096;

/// The mock's embedding of `text` in `dims` dimensions: unit length, or empty when `dims` is 0.
///
/// A text with no words (empty, or punctuation only) maps to the first basis vector, so it is still a unit vector.
pub fn embed(text: &str, dims: usize) -> Vec<f32> {
    let mut vector = vec![0.0_f32; dims];
    if dims == 0 {
        return vector;
    }
    let buckets = u64::try_from(dims).unwrap_or(u64::MAX);
    for word in text.split(|c: char| !c.is_alphanumeric()).filter(|word| !word.is_empty()) {
        let hash = fnv1a(word.to_lowercase().as_bytes());
        let bucket = usize::try_from(hash % buckets).unwrap_or(0);
        // The top bit is independent enough of the low bits that pick the bucket for collisions to cancel out.
        vector[bucket] += if hash >> 63 == 0 { 1.0 } else { -1.0 };
    }
    let norm = vector.iter().map(|value| value * value).sum::<f32>().sqrt();
    if norm == 0.0 {
        // No words, or every word cancelled another out in a shared bucket.
        vector[0] = 1.0;
    } else {
        for value in &mut vector {
            *value /= norm;
        }
    }
    vector
}

/// 64-bit FNV-1a.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3))
}

/// The `input` of OpenAI and Voyage: one string or a list of strings; `None` for anything else.
pub(crate) fn texts(input: &Value) -> Option<Vec<&str>> {
    match input {
        Value::String(text) => Some(vec![text.as_str()]),
        Value::Array(items) => items.iter().map(Value::as_str).collect(),
        _ => None,
    }
}

/// A requested dimension count: absent or null gives [`DEFAULT_DIMENSIONS`], otherwise an integer in
/// `1..=MAX_DIMENSIONS`; `Err` carries the offending value for the provider's error message.
pub(crate) fn dimensions(value: Option<&Value>) -> Result<usize, String> {
    match value {
        None | Some(Value::Null) => Ok(DEFAULT_DIMENSIONS),
        Some(value) => value
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| (1..=MAX_DIMENSIONS).contains(n))
            .ok_or_else(|| value.to_string()),
    }
}

/// Tokens reported for embedded texts: their whitespace-separated words, as for chat prompts.
pub fn tokens<'a>(texts: impl IntoIterator<Item = &'a str>) -> u32 {
    texts.into_iter().map(|text| saturate(text.split_whitespace().count())).fold(0, u32::saturating_add)
}

/// One vector on the wire: JSON numbers, or, when OpenAI or Voyage are asked for `encoding_format: "base64"`, the
/// base64 of its little-endian f32 bytes (a NumPy `float32` array's bytes, in Voyage's words).
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum Encoded {
    Floats(Vec<f32>),
    Base64(String),
}

impl Encoded {
    /// The embedding of `text`, encoded as asked.
    pub(crate) fn new(text: &str, dims: usize, as_base64: bool) -> Encoded {
        let vector = embed(text, dims);
        if as_base64 {
            let bytes: Vec<u8> = vector.iter().flat_map(|value| value.to_le_bytes()).collect();
            Encoded::Base64(base64(&bytes))
        } else {
            Encoded::Floats(vector)
        }
    }
}

/// Standard base64 with padding (RFC 4648 §4), which OpenAI's `encoding_format: "base64"` uses: a dozen lines do not
/// justify a dependency.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let group = chunk.iter().enumerate().fold(0_u32, |group, (i, &byte)| group | u32::from(byte) << (16 - 8 * i));
        for position in 0..4 {
            if position <= chunk.len() {
                out.push(char::from(ALPHABET[(group >> (18 - 6 * position) & 0x3f) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn vectors_are_unit_length_deterministic_and_case_insensitive() {
        let vector = embed("The cat sat on the mat.", 64);
        assert_eq!(vector.len(), 64);
        assert!((cosine(&vector, &vector) - 1.0).abs() < 1e-5);
        assert_eq!(vector, embed("the CAT sat, on the mat", 64));
        assert!(embed("anything", 0).is_empty());
    }

    #[test]
    fn no_words_is_the_first_basis_vector() {
        let mut expected = vec![0.0; 8];
        expected[0] = 1.0;
        assert_eq!(embed("", 8), expected);
        assert_eq!(embed(" ?! ", 8), expected);
    }

    #[test]
    fn shared_words_are_similar_and_unrelated_texts_are_not() {
        let query = embed("how do I reset my password", 256);
        assert!(cosine(&query, &embed("To reset your password, open settings", 256)) > 0.3);
        assert!(cosine(&query, &embed("bananas grow in tropical climates", 256)).abs() < 0.2);
    }

    #[test]
    fn fnv_matches_reference_values() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        let cases =
            [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("foobar", "Zm9vYmFy")];
        for (plain, encoded) in cases {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
        assert_eq!(base64(&[0xff, 0xfe, 0x00]), "//4A");
    }

    #[test]
    fn inputs_and_dimensions() {
        assert_eq!(texts(&serde_json::json!("a")), Some(vec!["a"]));
        assert_eq!(texts(&serde_json::json!(["a", "b"])), Some(vec!["a", "b"]));
        assert_eq!(texts(&serde_json::json!([1, 2])), None);
        assert_eq!(dimensions(None), Ok(DEFAULT_DIMENSIONS));
        assert_eq!(dimensions(Some(&Value::Null)), Ok(DEFAULT_DIMENSIONS));
        assert_eq!(dimensions(Some(&serde_json::json!(64))), Ok(64));
        assert_eq!(dimensions(Some(&serde_json::json!(0))), Err("0".to_owned()));
        assert_eq!(dimensions(Some(&serde_json::json!("64"))), Err("\"64\"".to_owned()));
        assert_eq!(tokens(["one two", "three"]), 3);
    }
}
