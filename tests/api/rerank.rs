//! The reranker: `POST /api/v1/search` with `rerank` (and the tenant's setting, for searches and turns)
//! reorders the best fused candidates by the hosted reranker's scores: Cohere, Voyage and Jina, each
//! served by the mock in its own wire format, which scores a passage by the share of the question's words
//! it holds. A failing, slow or unaffordable reranker keeps the fused order and says so; a deployment
//! without one refuses to be asked.

use std::time::Duration;

use mock_upstream::{Api, Fault};
use secrecy::SecretString;
use serde_json::{Value, json};
use switchboard::embeddings::RemoteEndpoint;
use switchboard::providers::http::{HttpClient, UpstreamSettings};
use switchboard::retrieval::rerank::{RerankModel, RerankSettings, Reranker};

use crate::helpers::{TestApp, TestTenant, assert_error};

const QUERY: &str = "zebra master rotation";
const TARGET: &str = "notes/target.md";

/// The service of `app` again, with a reranker for `spec` served by the mock (with `key`), giving up after
/// `timeout`.
async fn with_reranker(app: &TestApp, spec: &str, key: &str, timeout: Duration) -> TestApp {
    let model = RerankModel::parse(spec).unwrap();
    let base_url = match model.provider.as_str() {
        "cohere" => app.mock.cohere_base(),
        "voyage" => app.mock.voyage_base(),
        _ => app.mock.jina_base(),
    };
    let settings = RerankSettings {
        model,
        endpoint: RemoteEndpoint { api_key: SecretString::from(key.to_owned()), base_url },
        timeout,
    };
    // Quick retries, so a scripted failure is retried as in production without slowing the test.
    let http = HttpClient::new(UpstreamSettings {
        connect_timeout: Duration::from_secs(2),
        first_byte_timeout: Duration::from_secs(5),
        max_retries: 2,
        backoff_base: Duration::from_millis(10),
        ..UpstreamSettings::default()
    });
    let reranker = Reranker::new(settings, http, &switchboard::catalog::Catalog::built_in());
    app.with_retriever(app.retriever.clone().with_reranker(Some(reranker))).await
}

/// Passages where BM25 prefers those that repeat the question's rarest word over the one passage that holds
/// every word of it (`TARGET`): the fused order ranks it low, the reranker first.
async fn add_corpus(app: &TestApp, tenant: &TestTenant) {
    let mut documents = vec![(
        TARGET.to_owned(),
        "# Keepers\n\nThe master rotation plan names every keeper of the zebra enclosure, their shifts across the week, who \
         hands over the keys at dawn, and what each one checks before the visitors arrive in the morning."
            .to_owned(),
    )];
    for (index, word) in ["savanna", "herd", "grassland", "safari", "stripes", "foal"].into_iter().enumerate() {
        documents.push((format!("notes/zebra-{index}.md"), format!("Zebra zebra zebra zebra {word}.")));
    }
    for (index, word) in ["kitchen", "office", "garden", "library"].into_iter().enumerate() {
        documents.push((format!("notes/staff-{index}.md"), format!("Master rotation for the {word}.")));
    }
    for (source_path, content) in documents {
        let body = json!({ "source_path": source_path, "title": "Note", "content": content });
        let response = app.post("/api/v1/documents", &tenant.admin_key, &body).send().await.unwrap();
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    }
}

async fn search(app: &TestApp, tenant: &TestTenant, body: Value) -> Value {
    let response = app.post("/api/v1/search", &tenant.admin_key, &body).send().await.unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    response.json().await.unwrap()
}

fn paths(results: &Value) -> Vec<String> {
    results["results"].as_array().unwrap().iter().map(|hit| hit["source_path"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn each_provider_reorders_the_fused_candidates_by_its_scores() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    add_corpus(&app, &tenant).await;
    for (spec, api, path) in [
        ("cohere/rerank-v3.5", Api::Cohere, "/v2/rerank"),
        ("voyage/rerank-2.5", Api::Voyage, "/voyage/v1/rerank"),
        ("jina/jina-reranker-v2-base-multilingual", Api::Jina, "/jina/v1/rerank"),
    ] {
        let reranking = with_reranker(&app, spec, "test-rerank-key", Duration::from_secs(10)).await;
        let fused = search(&reranking, &tenant, json!({ "query": QUERY, "mode": "full_text", "k": 5 })).await;
        assert_eq!(fused["reranked"], false, "not asked for, and the tenant's setting is off");
        assert!(fused["results"].as_array().unwrap().iter().all(|hit| hit["rerank_score"].is_null()));
        let fused_order = paths(&fused);
        assert_ne!(
            fused_order.first().map(String::as_str),
            Some(TARGET),
            "{spec}: BM25 puts it lower: {fused_order:?}"
        );

        for mode in ["full_text", "hybrid", "vector"] {
            let body = json!({ "query": QUERY, "mode": mode, "k": 5, "rerank": true });
            let reranked = search(&reranking, &tenant, body).await;
            assert_eq!(reranked["reranked"], true, "{spec} {mode}: {reranked}");
            assert_eq!(reranked["rerank_fallback"], Value::Null);
            let order = paths(&reranked);
            assert_eq!(order.len(), 5);
            assert_eq!(order[0], TARGET, "{spec} {mode}: the passage with every word of the question first: {order:?}");
            let scores: Vec<f64> = reranked["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|hit| hit["rerank_score"].as_f64().unwrap())
                .collect();
            assert!((scores[0] - 1.0).abs() < 1e-9, "{spec} {mode}: {scores:?}");
            assert!(scores.windows(2).all(|pair| pair[0] >= pair[1]), "{spec} {mode}: best first: {scores:?}");
        }

        let sent: Vec<_> = app.mock.requests().into_iter().filter(|request| request.api == api).collect();
        let request = sent.last().unwrap_or_else(|| panic!("{spec}: no rerank request"));
        assert_eq!(request.path, path);
        assert_eq!(request.api_key.as_deref(), Some("test-rerank-key"));
        assert_eq!(request.body["query"], QUERY);
        let documents = request.body["documents"].as_array().unwrap();
        assert_eq!(documents.len(), 11, "{spec}: every candidate (all 11 passages, fewer than the 30 reranked)");
        assert!(
            documents.iter().any(|text| text.as_str().unwrap().ends_with("Keepers\n\nThe master rotation plan names every keeper of the zebra enclosure, their shifts across the week, who hands over the keys at dawn, and what each one checks before the visitors arrive in the morning.")),
            "{spec}: heading path and content, as embedded: {documents:?}"
        );
        match api {
            Api::Voyage => assert_eq!((request.body["top_k"].as_u64(), request.body.get("top_n")), (Some(11), None)),
            Api::Jina => {
                assert_eq!(request.body["top_n"], 11);
                assert_eq!(request.body["return_documents"], false);
            }
            _ => assert_eq!((request.body["top_n"].as_u64(), request.body.get("top_k")), (Some(11), None)),
        }
    }
}

#[tokio::test]
async fn the_tenants_setting_applies_to_searches_and_to_a_turns_citations() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    add_corpus(&app, &tenant).await;

    // A deployment without a reranker refuses the setting: accepted, it would do nothing.
    let refused =
        app.patch("/api/v1/tenant/config", &tenant.admin_key, &json!({ "rerank": true })).send().await.unwrap();
    assert_error(refused, 422, "reranker_unavailable").await;
    assert_eq!(app.get_json("/api/v1/tenant/config", &tenant.admin_key).await["rerank"], false);

    let reranking = with_reranker(&app, "voyage/rerank-2.5", "test-rerank-key", Duration::from_secs(10)).await;
    reranking.configure(&tenant, json!({ "rerank": true })).await;
    assert_eq!(reranking.get_json("/api/v1/tenant/config", &tenant.admin_key).await["rerank"], true);

    let results = search(&reranking, &tenant, json!({ "query": QUERY, "mode": "full_text", "k": 3 })).await;
    assert_eq!(results["reranked"], true, "the tenant's setting, the request saying nothing");
    assert_eq!(paths(&results)[0], TARGET);
    let fused =
        search(&reranking, &tenant, json!({ "query": QUERY, "mode": "full_text", "k": 3, "rerank": false })).await;
    assert_eq!(fused["reranked"], false, "a request may say no");
    assert_ne!(paths(&fused)[0], TARGET);

    let before = reranking.mock.requests().iter().filter(|request| request.api == Api::Voyage).count();
    let session = reranking.create_session(&tenant.admin_key).await;
    let events = reranking.stream_turn(&tenant.admin_key, &session, "Who is on the zebra master rotation?").await;
    let retrieval = events.iter().find(|event| event.event == "retrieval").expect("a retrieval event");
    let citations = retrieval.data["citations"].as_array().unwrap();
    assert_eq!(citations[0]["source_path"], TARGET, "{citations:?}");
    let after = reranking.mock.requests().iter().filter(|request| request.api == Api::Voyage).count();
    assert_eq!(after, before + 1, "the turn's passages were reranked");
    let run_reranks: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM usage_records WHERE operation = 'rerank' AND run_id IS NOT NULL AND tenant_id = $1",
    )
    .bind(tenant.id)
    .fetch_one(&reranking.owner_db)
    .await
    .unwrap();
    assert_eq!(run_reranks, 1, "recorded as the run's usage");
}

#[tokio::test]
async fn a_failing_slow_or_unaffordable_reranker_keeps_the_fused_order_and_says_so() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    add_corpus(&app, &tenant).await;
    let fused = paths(&search(&app, &tenant, json!({ "query": QUERY, "mode": "full_text", "k": 5 })).await);

    // A provider error (every attempt: the retries too), a refused key, and a reranker that never answers.
    let reranking = with_reranker(&app, "cohere/rerank-v3.5", "test-rerank-key", Duration::from_millis(300)).await;
    for _ in 0..3 {
        app.mock.fail_reranks(Fault::Status { status: 503, retry_after: None });
    }
    let body = json!({ "query": QUERY, "mode": "full_text", "k": 5, "rerank": true });
    let failed = search(&reranking, &tenant, body.clone()).await;
    assert_eq!((&failed["reranked"], &failed["rerank_fallback"]), (&json!(false), &json!("provider_error")));
    assert_eq!(paths(&failed), fused, "the fused order, cut to k");
    assert!(failed["results"].as_array().unwrap().iter().all(|hit| hit["rerank_score"].is_null()));

    app.mock.fail_reranks(Fault::StallAfter(0));
    let slow = search(&reranking, &tenant, body.clone()).await;
    assert_eq!((&slow["reranked"], &slow["rerank_fallback"]), (&json!(false), &json!("timeout")));
    assert_eq!(paths(&slow), fused);

    let refused_key =
        with_reranker(&app, "jina/jina-reranker-v2-base-multilingual", "invalid-key", Duration::from_secs(10)).await;
    let response = refused_key.post("/api/v1/search", &tenant.admin_key, &body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(!text.contains("invalid-key"), "no key in the answer: {text}");
    let refused: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(refused["rerank_fallback"], "provider_error");

    // A used-up budget: no paid call is made.
    let calls = app.mock.requests().iter().filter(|request| request.path.ends_with("/rerank")).count();
    reranking.configure(&tenant, json!({ "monthly_budget_usd": "0" })).await;
    let broke = search(&reranking, &tenant, body).await;
    assert_eq!((&broke["reranked"], &broke["rerank_fallback"]), (&json!(false), &json!("budget_exhausted")));
    assert_eq!(paths(&broke), fused);
    assert_eq!(app.mock.requests().iter().filter(|request| request.path.ends_with("/rerank")).count(), calls);
}

#[tokio::test]
async fn asking_a_deployment_without_a_reranker_is_refused() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    add_corpus(&app, &tenant).await;
    let body = json!({ "query": QUERY, "rerank": true });
    let response = app.post("/api/v1/search", &tenant.admin_key, &body).send().await.unwrap();
    assert_error(response, 422, "reranker_unavailable").await;
    let plain = search(&app, &tenant, json!({ "query": QUERY, "rerank": false })).await;
    assert_eq!((&plain["reranked"], &plain["rerank_fallback"]), (&json!(false), &Value::Null));
}

/// A rerank usage record: provider, model, input tokens, search units, cost, priced, token source, key.
type RerankRecord = (String, String, i32, Option<i32>, Option<rust_decimal::Decimal>, bool, String, Option<uuid::Uuid>);

#[tokio::test]
async fn each_rerank_call_is_recorded_as_usage_with_its_cost() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    add_corpus(&app, &tenant).await;
    let (key_id, key) = app.create_key(&tenant, &["chat"]).await;
    let body = json!({ "query": QUERY, "mode": "full_text", "rerank": true });
    for spec in ["cohere/rerank-v3.5", "voyage/rerank-2.5", "jina/unpriced-reranker"] {
        let reranking = with_reranker(&app, spec, "test-rerank-key", Duration::from_secs(10)).await;
        let response = reranking.post("/api/v1/search", &key, &body).send().await.unwrap();
        assert_eq!(response.status(), 200);
    }
    let records: Vec<RerankRecord> = sqlx::query_as(
        "SELECT provider, model, input_tokens, search_units, cost_usd, priced, token_source, api_key_id \
             FROM usage_records WHERE operation = 'rerank' AND tenant_id = $1 ORDER BY created_at, id",
    )
    .bind(tenant.id)
    .fetch_all(&app.owner_db)
    .await
    .unwrap();
    let [cohere, voyage, jina] = &records[..] else { panic!("{records:?}") };
    let key_id: uuid::Uuid = key_id.parse().unwrap();
    for record in &records {
        assert_eq!(record.7, Some(key_id), "paid by the key that searched");
    }
    // Cohere bills searches: one for up to 100 documents, at $2 per thousand.
    assert_eq!((cohere.0.as_str(), cohere.1.as_str(), cohere.3), ("cohere", "rerank-v3.5", Some(1)));
    assert_eq!(cohere.4, Some("0.002".parse().unwrap()));
    // Voyage reports its tokens; $0.05 per million.
    assert_eq!((voyage.0.as_str(), voyage.6.as_str(), voyage.3), ("voyage", "provider", None));
    assert!(voyage.2 > 0);
    assert_eq!(
        voyage.4,
        Some(
            rust_decimal::Decimal::from(voyage.2) * "0.05".parse::<rust_decimal::Decimal>().unwrap()
                / rust_decimal::Decimal::from(1_000_000)
        )
    );
    // A model the catalog does not price is recorded as such, never as free.
    assert_eq!((jina.1.as_str(), jina.4, jina.5), ("unpriced-reranker", None, false));
    assert!(jina.2 > 0);
}
