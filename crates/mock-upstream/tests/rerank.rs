//! Rerank endpoints: a real HTTP client against a started mock checks each provider's path, field names, answer
//! shape, scores, error bodies and faults, since the service's reranker is tested against these bytes.

use mock_upstream::rerank::score;
use mock_upstream::{Api, Fault, MockUpstream};
use serde_json::{Value, json};

const QUERY: &str = "rotate the master key";
const DOCUMENTS: [&str; 3] = ["Backups run nightly.", "Rotate the master key yearly.", "The key is in the vault."];

/// The URL and the name of the "how many" field of each provider.
fn endpoint(mock: &MockUpstream, api: Api) -> (String, &'static str) {
    match api {
        Api::Cohere => (format!("{}/v2/rerank", mock.cohere_base()), "top_n"),
        Api::Voyage => (format!("{}/rerank", mock.voyage_base()), "top_k"),
        Api::Jina => (format!("{}/rerank", mock.jina_base()), "top_n"),
        _ => unreachable!("no rerank API"),
    }
}

async fn post(mock: &MockUpstream, api: Api, body: &Value, key: Option<&str>) -> (u16, Value) {
    let (url, _) = endpoint(mock, api);
    let mut request = reqwest::Client::new().post(url).json(body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn each_provider_answers_scores_best_first_in_its_own_shape() {
    let mock = MockUpstream::start().await;
    for api in [Api::Cohere, Api::Voyage, Api::Jina] {
        let (_, top) = endpoint(&mock, api);
        let mut body = json!({"model": "m", "query": QUERY, "documents": DOCUMENTS});
        body[top] = json!(2);
        let (status, answer) = post(&mock, api, &body, Some("k")).await;
        assert_eq!(status, 200, "{api:?}: {answer}");
        let items = if api == Api::Voyage { &answer["data"] } else { &answer["results"] };
        let items = items.as_array().unwrap();
        assert_eq!(items.len(), 2, "{api:?}: cut to {top}");
        assert_eq!(items[0]["index"], 1, "{api:?}: every word of the question first");
        assert_eq!(items[0]["relevance_score"], score(QUERY, DOCUMENTS[1]));
        assert_eq!(items[1]["index"], 2);
        match api {
            Api::Cohere => assert_eq!(answer["meta"]["billed_units"]["search_units"], 1),
            Api::Jina => {
                assert_eq!(items[0]["document"]["text"], DOCUMENTS[1], "Jina returns documents by default");
                assert!(answer["usage"]["total_tokens"].as_u64().unwrap() > 0);
            }
            _ => assert!(answer["usage"]["total_tokens"].as_u64().unwrap() > 0),
        }
        let recorded = mock.requests().pop().unwrap();
        assert_eq!((recorded.api, recorded.api_key.as_deref()), (api, Some("k")));
    }
}

#[tokio::test]
async fn bad_requests_and_keys_are_refused_in_the_providers_error_shape() {
    let mock = MockUpstream::start().await;
    for api in [Api::Cohere, Api::Voyage, Api::Jina] {
        let field = if api == Api::Cohere { "message" } else { "detail" };
        let body = json!({"model": "m", "query": QUERY, "documents": DOCUMENTS});
        let (status, error) = post(&mock, api, &body, None).await;
        assert_eq!(status, 401, "{api:?}");
        assert!(error[field].is_string(), "{api:?}: {error}");
        assert_eq!(post(&mock, api, &body, Some("invalid-key")).await.0, 401);

        // The other provider's name for the count is not this one's.
        let wrong = if api == Api::Voyage { "top_n" } else { "top_k" };
        let mut misnamed = body.clone();
        misnamed[wrong] = json!(1);
        let (status, error) = post(&mock, api, &misnamed, Some("k")).await;
        assert!(matches!(status, 400 | 422), "{api:?}: {status}");
        assert!(error[field].as_str().unwrap().contains(wrong), "{api:?}: {error}");
        let empty = json!({"model": "m", "query": QUERY, "documents": []});
        assert!(matches!(post(&mock, api, &empty, Some("k")).await.0, 400 | 422));
    }
}

#[tokio::test]
async fn scripted_faults_answer_errors_and_a_stall_never_answers() {
    let mock = MockUpstream::start().await;
    let body = json!({"model": "m", "query": QUERY, "documents": DOCUMENTS});
    mock.fail_reranks(Fault::Status { status: 503, retry_after: Some(1) });
    let (status, error) = post(&mock, Api::Voyage, &body, Some("k")).await;
    assert_eq!(status, 503);
    assert!(error["detail"].is_string());
    assert_eq!(post(&mock, Api::Voyage, &body, Some("k")).await.0, 200, "one fault, one answer");

    mock.fail_reranks(Fault::StallAfter(0));
    let (url, _) = endpoint(&mock, Api::Cohere);
    let request = reqwest::Client::new().post(url).bearer_auth("k").json(&body);
    let waited = tokio::time::timeout(std::time::Duration::from_millis(200), request.send()).await;
    assert!(waited.is_err(), "a stalled rerank never answers");
}
