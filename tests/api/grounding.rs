//! Grounded answers: passages below the relevance floor are not given to the model (a question nothing
//! answers gets none, and an answer that says so), the stored and streamed citations are the passages the
//! answer cites with the spans that cite them, the rest kept under `retrieved`, and search reports the floor.

use mock_upstream::Reply;
use serde_json::{Value, json};

use crate::helpers::{OPERATOR_TOKEN, SseEvent, TestApp, TestTenant, assert_error, streamed_text};

const BEEKEEPING: &str = "# Beekeeping\n\n## Hive inspections\n\nOpen the hive on a calm, warm day and use a smoker to \
keep the bees calm. Check the brood frames for eggs and larvae, which show that the queen is laying, and look \
for queen cells that announce a swarm.\n\n## Honey harvest\n\nHarvest honey when most cells of the super are \
capped with wax. Uncap the frames with a heated knife and spin them in an extractor.";

async fn add_document(app: &TestApp, tenant: &TestTenant, source_path: &str, content: &str) {
    let body = json!({ "source_path": source_path, "content": content });
    let response = app.post("/api/v1/documents", &tenant.admin_key, &body).send().await.unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
}

async fn search(app: &TestApp, tenant: &TestTenant, query: &str, mode: &str) -> Vec<Value> {
    let body = json!({ "query": query, "k": 5, "mode": mode });
    let response = app.post("/api/v1/search", &tenant.admin_key, &body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    answer["results"].as_array().unwrap().clone()
}

/// A span's byte offsets.
fn offsets(span: &Value) -> (usize, usize) {
    let at = |name: &str| usize::try_from(span[name].as_u64().unwrap()).unwrap();
    (at("start"), at("end"))
}

fn event<'a>(events: &'a [SseEvent], name: &str) -> Option<&'a SseEvent> {
    events.iter().find(|event| event.event == name)
}

#[tokio::test]
async fn an_unrelated_question_gets_no_passages_and_an_answer_that_says_nothing_was_found() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("apiary").await;
    add_document(&app, &tenant, "bees.md", BEEKEEPING).await;
    let session = app.create_session(&tenant.admin_key).await;

    // Shares "warm" with the notes, and nothing else: the floor keeps every passage from the model.
    let events =
        app.stream_turn(&tenant.admin_key, &session, "Can you recommend a warm jacket for cool spring evenings?").await;
    let retrieval = event(&events, "retrieval").expect("a retrieval event");
    assert_eq!(retrieval.data["citations"], json!([]), "{:?}", retrieval.data);
    assert!(event(&events, "citations").is_none(), "no passages, nothing to attribute");
    let text = streamed_text(&events);
    assert!(text.contains("Nothing relevant to this question was found in the documents"), "{text}");
    let messages = app.messages(&tenant.admin_key, &session).await;
    assert_eq!((&messages[1]["citations"], &messages[1]["retrieved"]), (&json!([]), &json!([])));

    // A question the notes answer gets them, and the offline answer cites what it quotes. (In a conversation
    // of its own: a turn searches with the previous question too.)
    let session = app.create_session(&tenant.admin_key).await;
    let events =
        app.stream_turn(&tenant.admin_key, &session, "How do I keep the bees calm during a hive inspection?").await;
    let given = event(&events, "retrieval").unwrap().data["citations"].as_array().unwrap().clone();
    assert!(!given.is_empty(), "{events:#?}");
    assert_eq!(given[0]["source_path"], "bees.md");
    let cited = &event(&events, "citations").expect("a citations event").data;
    assert_eq!(cited["citations"].as_array().unwrap().len(), given.len(), "the offline answer quotes every passage");
    let text = streamed_text(&events);
    let span = &cited["citations"][0]["spans"][0];
    let (start, end) = offsets(span);
    assert!(text[start..end].starts_with("[1] Beekeeping"), "{:?}", &text[start..end]);
    let messages = app.messages(&tenant.admin_key, &session).await;
    assert_eq!(messages[1]["citations"], cited["citations"]);
}

#[tokio::test]
async fn stored_citations_are_the_cited_passages_with_their_spans_and_the_rest_are_retrieved() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("zebra").await;
    app.configure(&tenant, json!({ "default_provider": "openai", "default_model": "gpt-4o-mini" })).await;
    add_document(&app, &tenant, "ops/backups.md", "# Backups\n\nBackups of the zebra cluster run nightly at 02:00.")
        .await;
    add_document(
        &app,
        &tenant,
        "ops/restores.md",
        "# Restores\n\nA zebra cluster backup is restored with one command.",
    )
    .await;
    add_document(&app, &tenant, "ops/retention.md", "# Retention\n\nZebra cluster backups are kept for 35 days.").await;
    let answer = "Zebra backups run every night [2]. Old ones are deleted after a month [9].";
    app.mock.push(Reply { text: answer.into(), ..Reply::default() });
    let session = app.create_session(&tenant.admin_key).await;
    let before = dropped_markers(&app).await;

    let events =
        app.stream_turn(&tenant.admin_key, &session, "How are zebra cluster backups made, restored and kept?").await;
    let given = event(&events, "retrieval").unwrap().data["citations"].as_array().unwrap().clone();
    assert!(given.len() >= 2, "{given:?}");
    assert_eq!(streamed_text(&events), answer);
    let sources = &event(&events, "citations").expect("a citations event").data;
    let cited = sources["citations"].as_array().unwrap();
    assert_eq!(cited.len(), 1, "{sources}");
    assert_eq!(cited[0]["number"], 2);
    assert_eq!(cited[0]["chunk_id"], given[1]["chunk_id"]);
    let span = &cited[0]["spans"][0];
    let (start, end) = offsets(span);
    assert_eq!(&answer[start..end], "Zebra backups run every night [2]");
    let retrieved: Vec<&Value> =
        sources["retrieved"].as_array().unwrap().iter().map(|passage| &passage["number"]).collect();
    let expected: Vec<Value> = (1..=given.len()).filter(|number| *number != 2).map(|number| json!(number)).collect();
    assert_eq!(retrieved, expected.iter().collect::<Vec<_>>());
    let order: Vec<&str> = events.iter().map(|event| event.event.as_str()).collect();
    assert_eq!(&order[order.len() - 3..], ["citations", "usage", "run.completed"]);

    // Stored as streamed; the bogus marker stays in the text, links nothing, and is counted.
    let messages = app.messages(&tenant.admin_key, &session).await;
    assert_eq!(messages[1]["content"], answer);
    assert_eq!(messages[1]["citations"], sources["citations"]);
    assert_eq!(messages[1]["retrieved"], sources["retrieved"]);
    assert!(dropped_markers(&app).await >= before + 1.0);
}

/// `switchboard_citation_markers_dropped_total`, shared by every test of this binary (so only ever compared
/// as at least).
async fn dropped_markers(app: &TestApp) -> f64 {
    let text = app.get("/metrics", OPERATOR_TOKEN).send().await.unwrap().text().await.unwrap();
    text.lines()
        .find(|line| line.starts_with("switchboard_citation_markers_dropped_total"))
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn search_reports_the_floor_and_a_tenant_may_set_its_own() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("apiary").await;
    add_document(&app, &tenant, "bees.md", BEEKEEPING).await;

    let related = search(&app, &tenant, "When should I harvest the honey?", "hybrid").await;
    assert_eq!(related[0]["passes_floor"], true, "{related:?}");
    assert_eq!(related[0]["relevance_measure"], "similarity");
    assert!(related[0]["relevance"].as_f64().unwrap() >= related[0]["floor"].as_f64().unwrap());
    for mode in ["hybrid", "vector", "full_text"] {
        let unrelated = search(&app, &tenant, "Can you recommend a warm jacket for cool spring evenings?", mode).await;
        assert!(!unrelated.is_empty(), "search still shows its best passages ({mode})");
        assert!(unrelated.iter().all(|hit| hit["passes_floor"] == false), "{mode}: {unrelated:?}");
    }
    let full_text = search(&app, &tenant, "honey harvest extractor", "full_text").await;
    assert_eq!(full_text[0]["relevance_measure"], "term_coverage");
    assert_eq!(full_text[0]["passes_floor"], true, "{full_text:?}");

    // The tenant's own floor: the default elsewhere, validated, and applied to search and turns alike.
    let config = app.get_json("/api/v1/tenant/config", &tenant.admin_key).await;
    assert_eq!(config["relevance_floor"]["hybrid"], config["relevance_floor"]["defaults"]["hybrid"]);
    app.configure(&tenant, json!({ "relevance_floor": { "hybrid": 1.0 } })).await;
    let config = app.get_json("/api/v1/tenant/config", &tenant.admin_key).await;
    assert_eq!(config["relevance_floor"]["hybrid"], 1.0);
    assert_eq!(config["relevance_floor"]["vector"], config["relevance_floor"]["defaults"]["vector"]);
    let strict = search(&app, &tenant, "When should I harvest the honey?", "hybrid").await;
    assert!(strict.iter().all(|hit| hit["passes_floor"] == false && hit["floor"] == 1.0), "{strict:?}");
    let session = app.create_session(&tenant.admin_key).await;
    let events = app.stream_turn(&tenant.admin_key, &session, "When should I harvest the honey?").await;
    assert_eq!(event(&events, "retrieval").unwrap().data["citations"], json!([]));
    assert!(streamed_text(&events).contains("Nothing relevant"));

    for bad in [
        json!({ "relevance_floor": { "hybrid": 1.5 } }),
        json!({ "relevance_floor": { "hybrid": -0.1 } }),
        json!({ "relevance_floor": { "fuzzy": 0.2 } }),
        json!({ "relevance_floor": { "vector": "high" } }),
        json!({ "relevance_floor": 0.3 }),
    ] {
        let response = app.client.patch(app.url("/api/v1/tenant/config")).bearer_auth(&tenant.admin_key).json(&bad);
        assert_error(response.send().await.unwrap(), 422, "invalid_request").await;
    }
    app.configure(&tenant, json!({ "relevance_floor": null })).await;
    let config = app.get_json("/api/v1/tenant/config", &tenant.admin_key).await;
    assert_eq!(config["relevance_floor"]["hybrid"], config["relevance_floor"]["defaults"]["hybrid"]);
    let by_default = search(&app, &tenant, "When should I harvest the honey?", "hybrid").await;
    assert_eq!(by_default[0]["passes_floor"], true);
}
