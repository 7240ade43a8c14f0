//! The embedders: the local model against reference values computed independently (by
//! tests/reference/minilm_reference.py, a pure-Python forward pass over the same weights), and the remote
//! ones against the mock, which speaks each provider's embedding wire format.

use mock_upstream::{Api, Fault};
use switchboard::embeddings::{Embedder, EmbeddingModel, Purpose};

use crate::helpers::{TestApp, platform_key, shared_local_embedder};

/// The first eight values of each sentence's vector. The first row also agrees with sentence-transformers
/// (the brief's FACTS.md) to 1e-6.
const REFERENCE: [(&str, [f32; 8]); 4] = [
    (
        "This is an example sentence",
        [0.067_656_9, 0.063_495_9, 0.048_713_1, 0.079_304_98, 0.037_448_05, 0.002_652_8, 0.039_374_95, -0.007_098_46],
    ),
    (
        "How do I rotate the master key?",
        [
            0.022_235_12,
            -0.001_576_08,
            -0.054_192_69,
            -0.036_276_51,
            -0.041_852_7,
            0.055_360_77,
            -0.017_242_74,
            0.009_093_65,
        ],
    ),
    (
        "What is the procedure for changing the encryption master key?",
        [
            0.017_347_34,
            0.036_828_58,
            -0.028_995_22,
            -0.014_784_23,
            -0.025_873_3,
            -0.003_812_62,
            -0.031_114_62,
            -0.008_730_41,
        ],
    ),
    (
        "The cat sat quietly on the warm windowsill.",
        [
            0.147_519_05,
            -0.026_459_83,
            0.013_377_26,
            0.145_244_22,
            -0.053_732_95,
            -0.040_021_85,
            0.040_249_46,
            -0.057_725_48,
        ],
    ),
];

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (norm(a) * norm(b))
}

#[tokio::test]
async fn the_local_model_matches_reference_values() {
    let embedder = Embedder::Local(shared_local_embedder());
    let texts: Vec<String> = REFERENCE.iter().map(|(sentence, _)| (*sentence).to_owned()).collect();
    // One batch: the shorter sentences are padded to the longest, which must not change their vectors.
    let vectors = embedder.embed(&texts, Purpose::Document).await.unwrap();
    for ((sentence, expected), vector) in REFERENCE.iter().zip(&vectors) {
        assert_eq!(vector.len(), 384);
        let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "{sentence}: norm {norm}");
        for (index, (got, want)) in vector.iter().zip(expected).enumerate() {
            assert!((got - want).abs() < 1e-4, "{sentence}[{index}]: {got} against {want}");
        }
    }
    let (alone, _) = embedder.embed_query(REFERENCE[0].0).await.unwrap();
    assert!(cosine(&alone, &vectors[0]) > 0.999_999, "a text's vector does not depend on its batch");
}

#[tokio::test]
async fn paraphrases_are_close_and_unrelated_sentences_far() {
    let embedder = Embedder::Local(shared_local_embedder());
    let texts: Vec<String> = REFERENCE.iter().map(|(sentence, _)| (*sentence).to_owned()).collect();
    let vectors = embedder.embed(&texts, Purpose::Query).await.unwrap();
    // The reference gives 0.601 and -0.006.
    let paraphrase = cosine(&vectors[1], &vectors[2]);
    let unrelated = cosine(&vectors[1], &vectors[3]);
    assert!(paraphrase > 0.55, "paraphrase {paraphrase}");
    assert!(unrelated.abs() < 0.1, "unrelated {unrelated}");
}

#[tokio::test]
async fn remote_embedders_speak_each_providers_wire_format() {
    let app = TestApp::spawn().await;
    let texts = vec!["rotate the master key".to_owned(), "backups run nightly".to_owned()];
    for (spec, api, provider) in [
        ("openai/text-embedding-3-small", Api::OpenAi, "openai"),
        ("voyage/voyage-3.5", Api::Voyage, "voyage"),
        ("gemini/gemini-embedding-001", Api::Gemini, "gemini"),
    ] {
        let embedder = app.embedders.build(EmbeddingModel::parse(spec, Some(256)).unwrap()).unwrap();
        let vectors = embedder.embed(&texts, Purpose::Document).await.unwrap();
        for (text, vector) in texts.iter().zip(&vectors) {
            assert_eq!(vector, &mock_upstream::embedding::embed(text, 256), "{spec}: {text}");
        }
        embedder.embed_query("when do backups run").await.unwrap();
        let requests: Vec<_> = app.mock.requests().into_iter().filter(|request| request.api == api).collect();
        let [documents, query] = &requests[..] else { panic!("{spec}: {requests:#?}") };
        assert_eq!(documents.api_key.as_deref(), Some(platform_key(provider).as_str()));
        match api {
            Api::OpenAi => {
                assert_eq!(documents.path, "/v1/embeddings");
                assert_eq!(documents.body["model"], "text-embedding-3-small");
                assert_eq!(documents.body["dimensions"], 256);
            }
            Api::Voyage => {
                assert_eq!(documents.path, "/voyage/v1/embeddings");
                assert_eq!(documents.body["input_type"], "document");
                assert_eq!(query.body["input_type"], "query");
                assert_eq!(documents.body["output_dimension"], 256);
            }
            Api::Gemini => {
                assert_eq!(documents.path, "/v1beta/models/gemini-embedding-001:batchEmbedContents");
                assert_eq!(documents.body["requests"][1]["taskType"], "RETRIEVAL_DOCUMENT");
                assert_eq!(query.body["requests"][0]["taskType"], "RETRIEVAL_QUERY");
                assert_eq!(documents.body["requests"][0]["outputDimensionality"], 256);
            }
            Api::Anthropic | Api::Cohere | Api::Jina => unreachable!(),
        }
    }
}

#[tokio::test]
async fn a_rate_limited_embedding_call_is_retried_and_a_refused_key_is_not() {
    let app = TestApp::spawn().await;
    let embedder =
        app.embedders.build(EmbeddingModel::parse("openai/text-embedding-3-small", Some(256)).unwrap()).unwrap();
    app.mock.fail_embeddings(Fault::Status { status: 429, retry_after: Some(0) });
    let (vector, spend) = embedder.embed_query("rotate the master key").await.unwrap();
    assert_eq!(vector, mock_upstream::embedding::embed("rotate the master key", 256));
    assert_eq!(app.mock.requests().len(), 2, "one refusal, one retry");
    // The provider's own count, priced by the catalog (text-embedding-3-small: $0.02 per million tokens).
    let tokens = u64::from(mock_upstream::embedding::tokens(["rotate the master key"]));
    assert!(spend.reported && spend.input_tokens == tokens, "{spend:?}");
    let price = rust_decimal::Decimal::new(2, 2);
    assert_eq!(
        spend.cost_usd,
        Some(rust_decimal::Decimal::from(tokens) * price / rust_decimal::Decimal::from(1_000_000))
    );

    app.mock.fail_embeddings(Fault::Status { status: 401, retry_after: None });
    let error = embedder.embed_query("anything").await.unwrap_err().to_string();
    assert!(error.contains("rejected the API key"), "{error}");
    assert_eq!(app.mock.requests().len(), 3, "an auth failure is not retried");
}
