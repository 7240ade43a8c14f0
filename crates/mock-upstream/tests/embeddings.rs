//! Embedding endpoints: a real HTTP client against a started mock checks each provider's request checks, answer
//! shape, vectors, errors and faults, since the service's embedding clients are tested against these bytes.

use futures::StreamExt;
use mock_upstream::embedding::{DEFAULT_DIMENSIONS, embed};
use mock_upstream::{Api, Fault, MockUpstream, Reply};
use serde_json::{Value, json};

const APIS: [Api; 3] = [Api::OpenAi, Api::Voyage, Api::Gemini];

/// A request embedding `texts` through `api`'s endpoint, with `dims` as that provider's dimensions parameter and
/// `key` as its credential.
fn request(
    mock: &MockUpstream,
    api: Api,
    texts: &[&str],
    dims: Option<usize>,
    key: Option<&str>,
) -> reqwest::RequestBuilder {
    let client = reqwest::Client::new();
    let builder = match api {
        Api::OpenAi => {
            let mut body = json!({"model": "text-embedding-3-small", "input": texts});
            if let Some(dims) = dims {
                body["dimensions"] = json!(dims);
            }
            client.post(format!("{}/embeddings", mock.openai_base())).json(&body)
        }
        Api::Voyage => {
            let body =
                json!({"input": texts, "model": "voyage-3.5", "input_type": "document", "output_dimension": dims});
            client.post(format!("{}/embeddings", mock.voyage_base())).json(&body)
        }
        Api::Gemini => {
            let requests: Vec<Value> = texts
                .iter()
                .map(|text| {
                    let mut request = json!({
                        "model": "models/gemini-embedding-001",
                        "content": {"parts": [{"text": text}]},
                        "taskType": "RETRIEVAL_DOCUMENT",
                    });
                    if let Some(dims) = dims {
                        request["outputDimensionality"] = json!(dims);
                    }
                    request
                })
                .collect();
            let url = format!("{}/v1beta/models/gemini-embedding-001:batchEmbedContents", mock.gemini_base());
            client.post(url).json(&json!({"requests": requests}))
        }
        Api::Anthropic | Api::Cohere | Api::Jina => unreachable!("no embeddings API"),
    };
    match (api, key) {
        (_, None) => builder,
        (Api::Gemini, Some(key)) => builder.header("x-goog-api-key", key),
        (_, Some(key)) => builder.bearer_auth(key),
    }
}

/// The vectors of a successful answer, in order, checking the provider's envelope on the way.
async fn vectors(api: Api, response: reqwest::Response) -> Vec<Vec<f32>> {
    assert_eq!(response.status(), 200, "{api:?}");
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: Value = response.json().await.unwrap();
    let items = match api {
        Api::OpenAi | Api::Voyage => {
            assert_eq!(body["object"], "list");
            let data = body["data"].as_array().unwrap();
            for (i, item) in data.iter().enumerate() {
                assert_eq!(item["object"], "embedding");
                assert_eq!(item["index"], i);
                assert_eq!(item.as_object().unwrap().len(), 3);
            }
            data.iter().map(|item| item["embedding"].clone()).collect::<Vec<_>>()
        }
        Api::Gemini => {
            assert_eq!(body.as_object().unwrap().len(), 1);
            let embeddings = body["embeddings"].as_array().unwrap();
            assert!(embeddings.iter().all(|item| item.as_object().unwrap().len() == 1));
            embeddings.iter().map(|item| item["values"].clone()).collect()
        }
        Api::Anthropic | Api::Cohere | Api::Jina => unreachable!(),
    };
    items.iter().map(floats).collect()
}

#[expect(clippy::cast_possible_truncation, reason = "the mock sends f32 values as JSON numbers")]
fn floats(value: &Value) -> Vec<f32> {
    value.as_array().unwrap().iter().map(|number| number.as_f64().unwrap() as f32).collect()
}

fn assert_close(got: &[f32], expected: &[f32]) {
    assert_eq!(got.len(), expected.len());
    for (g, e) in got.iter().zip(expected) {
        assert!((g - e).abs() < 1e-6, "{g} != {e}");
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Standard base64 with padding, decoded by hand as the mock encodes it.
fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let sextets: Vec<u32> = text
        .bytes()
        .filter(|&byte| byte != b'=')
        .map(|byte| u32::try_from(ALPHABET.iter().position(|&a| a == byte).expect("base64 character")).unwrap())
        .collect();
    let mut bytes = Vec::new();
    for chunk in sextets.chunks(4) {
        let group = chunk.iter().enumerate().fold(0, |group, (i, sextet)| group | sextet << (18 - 6 * i));
        bytes.extend(&group.to_be_bytes()[1..chunk.len()]);
    }
    bytes
}

fn little_endian_floats(bytes: &[u8]) -> Vec<f32> {
    bytes.chunks(4).map(|chunk| f32::from_le_bytes(chunk.try_into().unwrap())).collect()
}

#[tokio::test]
async fn each_provider_answers_one_vector_per_text_in_its_shape() {
    let mock = MockUpstream::start().await;
    let texts = ["The cat sat on the mat", "Dogs bark", "?"];
    for api in APIS {
        for dims in [Some(64), None] {
            let response = request(&mock, api, &texts, dims, Some("k")).send().await.unwrap();
            let got = vectors(api, response).await;
            assert_eq!(got.len(), 3, "{api:?}");
            for (vector, text) in got.iter().zip(texts) {
                assert_close(vector, &embed(text, dims.unwrap_or(DEFAULT_DIMENSIONS)));
            }
        }
    }
}

#[tokio::test]
async fn openai_and_voyage_echo_the_model_and_report_usage() {
    let mock = MockUpstream::start().await;
    let texts = ["one two three", "four five"];
    let openai: Value =
        request(&mock, Api::OpenAi, &texts, None, Some("k")).send().await.unwrap().json().await.unwrap();
    assert_eq!(openai["model"], "text-embedding-3-small");
    assert_eq!(openai["usage"], json!({"prompt_tokens": 5, "total_tokens": 5}));
    let keys: Vec<&String> = openai.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["data", "model", "object", "usage"]);

    let voyage: Value =
        request(&mock, Api::Voyage, &texts, None, Some("k")).send().await.unwrap().json().await.unwrap();
    assert_eq!(voyage["model"], "voyage-3.5");
    assert_eq!(voyage["usage"], json!({"total_tokens": 5}));

    // A single string is one input.
    let single: Value = reqwest::Client::new()
        .post(format!("{}/embeddings", mock.openai_base()))
        .bearer_auth("k")
        .json(&json!({"model": "text-embedding-ada-002", "input": "just one", "user": "u-1"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(single["data"].as_array().unwrap().len(), 1);
    assert_close(&floats(&single["data"][0]["embedding"]), &embed("just one", DEFAULT_DIMENSIONS));
}

#[tokio::test]
async fn gemini_embed_content_answers_one_embedding() {
    let mock = MockUpstream::start().await;
    let url = format!("{}/v1beta/models/text-embedding-004:embedContent?key=g-key", mock.gemini_base());
    let body = json!({
        "content": {"parts": [{"text": "What is the"}, {"text": "capital of France?"}]},
        "task_type": "RETRIEVAL_QUERY",
        "output_dimensionality": 16,
    });
    let response = reqwest::Client::new().post(url).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let value: Value = response.json().await.unwrap();
    assert_eq!(value.as_object().unwrap().len(), 1);
    assert_eq!(value["embedding"].as_object().unwrap().len(), 1);
    assert_close(&floats(&value["embedding"]["values"]), &embed("What is the capital of France?", 16));

    let recorded = &mock.requests()[0];
    assert_eq!(recorded.api, Api::Gemini);
    assert_eq!(recorded.path, "/v1beta/models/text-embedding-004:embedContent?key=g-key");
    assert_eq!(recorded.api_key.as_deref(), Some("g-key"));
    assert_eq!(recorded.body, body);
}

#[tokio::test]
async fn base64_vectors_are_little_endian_f32_bytes() {
    let mock = MockUpstream::start().await;
    let texts = ["alpha beta", "gamma"];
    let body =
        json!({"model": "text-embedding-3-large", "input": texts, "dimensions": 10, "encoding_format": "base64"});
    let openai: Value = reqwest::Client::new()
        .post(format!("{}/embeddings", mock.openai_base()))
        .bearer_auth("k")
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let body = json!({"model": "voyage-3.5", "input": texts, "output_dimension": 10, "encoding_format": "base64"});
    let voyage: Value = reqwest::Client::new()
        .post(format!("{}/embeddings", mock.voyage_base()))
        .bearer_auth("k")
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for answer in [openai, voyage] {
        for (item, text) in answer["data"].as_array().unwrap().iter().zip(texts) {
            let encoded = item["embedding"].as_str().unwrap();
            assert_eq!(encoded.len(), 56, "40 bytes take 14 groups of four characters");
            assert_eq!(little_endian_floats(&base64_decode(encoded)), embed(text, 10));
        }
    }
}

#[tokio::test]
async fn texts_sharing_words_are_similar_and_unrelated_texts_are_not() {
    let mock = MockUpstream::start().await;
    let texts = ["password reset steps", "Steps to reset a forgotten password", "Bananas grow in tropical climates"];
    for api in APIS {
        let got = vectors(api, request(&mock, api, &texts, None, Some("k")).send().await.unwrap()).await;
        for vector in &got {
            assert!((cosine(vector, vector) - 1.0).abs() < 1e-5, "{api:?}: unit length");
        }
        let related = cosine(&got[0], &got[1]);
        let unrelated = cosine(&got[0], &got[2]);
        assert!(related > 0.5, "{api:?}: {related}");
        assert!(unrelated.abs() < 0.2, "{api:?}: {unrelated}");
    }
}

async fn error_of(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(response.headers()["content-type"], "application/json");
    response.json().await.unwrap()
}

#[tokio::test]
async fn openai_refuses_invalid_requests_with_its_error_shape() {
    let mock = MockUpstream::start().await;
    let many: Vec<String> = (0..2049).map(|i| format!("text {i}")).collect();
    let bodies = [
        json!({"input": "no model"}),
        json!({"model": "text-embedding-3-small", "input": []}),
        json!({"model": "text-embedding-3-small", "input": ["fine", ""]}),
        json!({"model": "text-embedding-3-small", "input": [[1, 2, 3]]}),
        json!({"model": "text-embedding-3-small", "input": many}),
        json!({"model": "text-embedding-ada-002", "input": "x", "dimensions": 256}),
        json!({"model": "text-embedding-3-small", "input": "x", "dimensions": 0}),
        json!({"model": "text-embedding-3-small", "input": "x", "encoding_format": "int8"}),
    ];
    for body in bodies {
        let response = reqwest::Client::new()
            .post(format!("{}/embeddings", mock.openai_base()))
            .bearer_auth("k")
            .json(&body)
            .send()
            .await
            .unwrap();
        let error = error_of(response, 400).await;
        assert_eq!(error["error"]["type"], "invalid_request_error", "{body}");
        assert!(error["error"]["message"].is_string());
        assert!(error["error"]["param"].is_null() && error["error"]["code"].is_null());
    }
    let ada = mock.requests().into_iter().nth(5).unwrap();
    assert_eq!(ada.body["model"], "text-embedding-ada-002");
}

#[tokio::test]
async fn voyage_refuses_invalid_requests_with_a_detail() {
    let mock = MockUpstream::start().await;
    let many: Vec<String> = (0..1001).map(|i| format!("text {i}")).collect();
    let bodies = [
        json!({"input": "no model"}),
        json!({"model": "voyage-3.5", "input": []}),
        json!({"model": "voyage-3.5", "input": many}),
        json!({"model": "voyage-3.5", "input": "x", "input_type": "passage"}),
        json!({"model": "voyage-3.5", "input": "x", "output_dtype": "int8"}),
        json!({"model": "voyage-3.5", "input": "x", "output_dimension": -1}),
    ];
    for body in bodies {
        let response = reqwest::Client::new()
            .post(format!("{}/embeddings", mock.voyage_base()))
            .bearer_auth("k")
            .json(&body)
            .send()
            .await
            .unwrap();
        let error = error_of(response, 400).await;
        assert_eq!(error.as_object().unwrap().len(), 1, "{body}: {error}");
        assert!(error["detail"].is_string());
    }
    // 1000 texts and a null input_type are fine.
    let texts: Vec<String> = (0..1000).map(|i| format!("text {i}")).collect();
    let response = reqwest::Client::new()
        .post(format!("{}/embeddings", mock.voyage_base()))
        .bearer_auth("k")
        .json(&json!({"model": "voyage-3.5", "input": texts, "input_type": null, "truncation": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(vectors(Api::Voyage, response).await.len(), 1000);
}

#[tokio::test]
async fn gemini_refuses_invalid_requests_with_its_error_shape() {
    let mock = MockUpstream::start().await;
    let content = json!({"parts": [{"text": "hello"}]});
    let url = |method: &str| format!("{}/v1beta/models/gemini-embedding-001:{method}", mock.gemini_base());
    let cases = [
        ("batchEmbedContents", json!({"requests": [{"model": "models/text-embedding-004", "content": content}]})),
        ("batchEmbedContents", json!({"requests": [{"content": content}]})),
        ("batchEmbedContents", json!({"requests": []})),
        (
            "batchEmbedContents",
            json!({"requests": vec![json!({"model": "models/gemini-embedding-001", "content": content}); 101]}),
        ),
        (
            "batchEmbedContents",
            json!({"requests": [{"model": "models/gemini-embedding-001", "content": {"parts": []}}]}),
        ),
        ("embedContent", json!({"model": "models/other", "content": content})),
        ("embedContent", json!({"content": content, "taskType": "RANKING"})),
        ("embedContent", json!({"content": content, "outputDimensionality": 0})),
    ];
    for (method, body) in cases {
        let response =
            reqwest::Client::new().post(url(method)).header("x-goog-api-key", "k").json(&body).send().await.unwrap();
        let error = error_of(response, 400).await;
        assert_eq!(error["error"]["code"], 400, "{body}");
        assert_eq!(error["error"]["status"], "INVALID_ARGUMENT");
        assert!(error["error"]["message"].is_string());
    }
    let response =
        reqwest::Client::new().post(url("embedSomething")).header("x-goog-api-key", "k").json(&json!({})).send().await;
    assert_eq!(error_of(response.unwrap(), 404).await["error"]["status"], "NOT_FOUND");
}

#[tokio::test]
async fn missing_or_invalid_key_gives_401_in_each_shape() {
    let mock = MockUpstream::start().await;
    mock.fail_embeddings(Fault::Status { status: 503, retry_after: None });
    for api in APIS {
        for key in [None, Some("invalid-key")] {
            let response = request(&mock, api, &["text"], None, key).send().await.unwrap();
            let error = error_of(response, 401).await;
            match api {
                Api::OpenAi => assert_eq!(error["error"]["code"], "invalid_api_key"),
                Api::Voyage => assert!(error["detail"].is_string(), "{error}"),
                Api::Gemini => assert_eq!(error["error"]["status"], "UNAUTHENTICATED"),
                Api::Anthropic | Api::Cohere | Api::Jina => unreachable!(),
            }
        }
    }
    // Refusals leave the queued fault for the next authorised request.
    assert_eq!(request(&mock, Api::OpenAi, &["text"], None, Some("k")).send().await.unwrap().status(), 503);
}

#[tokio::test]
async fn embedding_fault_strikes_once_and_leaves_chat_replies_alone() {
    let mock = MockUpstream::start().await;
    mock.push(Reply { text: "kept for the chat".to_owned(), ..Reply::default() });
    for api in APIS {
        mock.fail_embeddings(Fault::Status { status: 429, retry_after: Some(3) });
        let response = request(&mock, api, &["some text"], None, Some("k")).send().await.unwrap();
        assert_eq!(response.headers()["retry-after"], "3", "{api:?}");
        let error = error_of(response, 429).await;
        match api {
            Api::OpenAi => assert_eq!(error["error"]["type"], "rate_limit_exceeded"),
            Api::Voyage => assert!(error["detail"].is_string(), "{error}"),
            Api::Gemini => assert_eq!(error["error"]["status"], "RESOURCE_EXHAUSTED"),
            Api::Anthropic | Api::Cohere | Api::Jina => unreachable!(),
        }
        let retried = request(&mock, api, &["some text"], None, Some("k")).send().await.unwrap();
        assert_eq!(vectors(api, retried).await.len(), 1);
    }

    // Streaming faults have nothing to cut in a JSON answer: a 500.
    mock.fail_embeddings(Fault::CutAfter(1));
    let response = request(&mock, Api::Voyage, &["x"], None, Some("k")).send().await.unwrap();
    assert_eq!(response.status(), 500);
    assert!(response.headers().get("retry-after").is_none());

    // A chat request neither takes an embedding fault nor lost its reply to the embedding calls.
    mock.fail_embeddings(Fault::Status { status: 500, retry_after: None });
    let chat = reqwest::Client::new()
        .post(format!("{}/chat/completions", mock.openai_base()))
        .bearer_auth("k")
        .json(&json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(chat.status(), 200);
    let chat: Value = chat.json().await.unwrap();
    assert_eq!(chat["choices"][0]["message"]["content"], "kept for the chat");
    let response = request(&mock, Api::Gemini, &["x"], None, Some("k")).send().await.unwrap();
    assert_eq!(response.status(), 500);
}

#[tokio::test]
async fn embedding_requests_are_recorded_with_api_path_and_key() {
    let mock = MockUpstream::start().await;
    for (api, key) in [(Api::OpenAi, "sk-openai"), (Api::Voyage, "pa-voyage"), (Api::Gemini, "g-gemini")] {
        let mut body = request(&mock, api, &["recorded"], Some(8), Some(key)).send().await.unwrap().bytes_stream();
        while body.next().await.is_some() {}
    }
    let recorded = mock.requests();
    let seen: Vec<(Api, &str, Option<&str>)> =
        recorded.iter().map(|r| (r.api, r.path.as_str(), r.api_key.as_deref())).collect();
    assert_eq!(
        seen,
        [
            (Api::OpenAi, "/v1/embeddings", Some("sk-openai")),
            (Api::Voyage, "/voyage/v1/embeddings", Some("pa-voyage")),
            (Api::Gemini, "/v1beta/models/gemini-embedding-001:batchEmbedContents", Some("g-gemini")),
        ]
    );
    assert_eq!(recorded[0].body["dimensions"], 8);
    assert_eq!(recorded[1].headers["authorization"], "Bearer pa-voyage");
    assert_eq!(recorded[1].body["input_type"], "document");
    assert_eq!(recorded[2].body["requests"][0]["outputDimensionality"], 8);
}
