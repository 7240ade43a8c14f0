//! Documents, search and citations: ingestion is idempotent and atomic, tenants see their own documents
//! and the shared corpus, answers cite what they were grounded in.

use serde_json::{Value, json};
use switchboard::ids::TenantId;
use switchboard::retrieval::corpus;

use crate::helpers::{TestApp, TestTenant, assert_error, streamed_text};

async fn add_document(app: &TestApp, tenant: &TestTenant, source_path: &str, content: &str) -> reqwest::Response {
    app.post("/api/v1/documents", &tenant.admin_key, &json!({"source_path": source_path, "content": content}))
        .send()
        .await
        .unwrap()
}

/// Hybrid search, as a chat client calls it.
async fn search(app: &TestApp, key: &str, query: &str, k: u32) -> Vec<Value> {
    search_by(app, key, query, k, "hybrid").await
}

async fn search_by(app: &TestApp, key: &str, query: &str, k: u32, mode: &str) -> Vec<Value> {
    let body = json!({"query": query, "k": k, "mode": mode});
    let response = app.post("/api/v1/search", key, &body).send().await.unwrap();
    let status = response.status();
    let answer: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{answer}");
    answer["results"].as_array().unwrap().clone()
}

/// Whether any result's text contains `word`.
fn any_mentions(results: &[Value], word: &str) -> bool {
    results.iter().any(|hit| hit["content"].as_str().unwrap().contains(word))
}

async fn count(app: &TestApp, sql: &'static str, tenant: &TestTenant) -> i64 {
    sqlx::query_scalar(sql).bind(tenant.id).fetch_one(&app.owner_db).await.unwrap()
}

fn long_guide(topic: &str, sections: usize) -> String {
    let parts: Vec<String> = (0..sections)
        .map(|section| {
            let body = format!("The {topic} procedure step {section} is described here in detail. ").repeat(25);
            format!("## Part {section}\n\n{body}\n\n")
        })
        .collect();
    format!("# {topic} guide\n\n{}", parts.concat())
}

#[tokio::test]
async fn ingestion_is_idempotent_and_a_changed_document_replaces_its_chunks() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let first = add_document(&app, &tenant, "guides/rotation.md", &long_guide("rotation", 4)).await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["outcome"], "created");
    assert_eq!(first["document"]["title"], "rotation guide");
    let chunks = first["document"]["chunk_count"].as_i64().unwrap();
    assert!(chunks >= 2, "{first}");
    let stored = "SELECT count(*) FROM doc_chunks WHERE tenant_id = $1";
    assert_eq!(count(&app, stored, &tenant).await, chunks);

    let again = add_document(&app, &tenant, "guides/rotation.md", &long_guide("rotation", 4)).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.json::<Value>().await.unwrap()["outcome"], "unchanged");
    let audited = "SELECT count(*) FROM audit_events WHERE tenant_id = $1 AND action = 'document.saved'";
    assert_eq!(count(&app, audited, &tenant).await, 1, "an unchanged document changes nothing");

    let changed = add_document(&app, &tenant, "guides/rotation.md", &long_guide("renewal", 1)).await;
    let changed: Value = changed.json().await.unwrap();
    assert_eq!(changed["outcome"], "updated");
    assert_eq!(count(&app, stored, &tenant).await, changed["document"]["chunk_count"].as_i64().unwrap());
    assert!(!any_mentions(&search(&app, &tenant.admin_key, "rotation", 5).await, "rotation"), "old chunks are gone");
    assert!(any_mentions(&search(&app, &tenant.admin_key, "renewal", 5).await, "renewal"));
    // Every chunk has its vector, and only the current chunks have one.
    let vectors = "SELECT count(*) FROM chunk_embeddings WHERE tenant_id = $1";
    assert_eq!(count(&app, vectors, &tenant).await, count(&app, stored, &tenant).await);

    // BM25's statistics follow every change: they always equal a recount.
    let term_total = "SELECT coalesce(sum(chunks), 0)::bigint FROM term_stats WHERE tenant_id = $1";
    let recount =
        "SELECT count(*) FROM doc_chunks AS c, unnest(tsvector_to_array(c.search_vector)) AS l WHERE c.tenant_id = $1";
    assert_eq!(count(&app, term_total, &tenant).await, count(&app, recount, &tenant).await);

    let id = changed["document"]["id"].as_str().unwrap();
    assert_eq!(app.delete(&format!("/api/v1/documents/{id}"), &tenant.admin_key).send().await.unwrap().status(), 204);
    assert_eq!(count(&app, stored, &tenant).await, 0);
    assert_eq!(count(&app, term_total, &tenant).await, 0);
    assert_eq!(count(&app, vectors, &tenant).await, 0);
}

#[tokio::test]
async fn bad_documents_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    add_document(&app, &tenant, "kept.md", "# Kept\n\nA document that stays.").await;
    for (path, content) in [
        ("empty.md", "   \n"),
        ("binary.bin", "PK\u{3}\u{4}\u{2}\u{5}\u{1}binary"),
        ("../escape.md", "text"),
        ("/etc/passwd.md", "text"),
        ("a/../../b.md", "text"),
    ] {
        let response = add_document(&app, &tenant, path, content).await;
        assert_error(response, 422, "invalid_request").await;
    }
    // Text holding NUL characters is refused at the edge, before the document is looked at.
    let response = add_document(&app, &tenant, "nul.bin", "PK\u{3}\u{4}\0\0\u{1}binary").await;
    assert_error(response, 422, "invalid_text").await;
    let not_utf8 = app
        .client
        .post(app.url("/api/v1/documents"))
        .bearer_auth(&tenant.admin_key)
        .header("content-type", "application/json")
        .body(b"{\"source_path\": \"x.md\", \"content\": \"\xff\xfe\"}".to_vec())
        .send()
        .await
        .unwrap();
    assert!(not_utf8.status() == 400 || not_utf8.status() == 422, "{}", not_utf8.status());
    let huge = add_document(&app, &tenant, "huge.md", &"x".repeat(100 * 1024)).await;
    assert_error(huge, 413, "payload_too_large").await;
    assert_eq!(count(&app, "SELECT count(*) FROM documents WHERE tenant_id = $1", &tenant).await, 1);
}

#[tokio::test]
async fn bad_searches_are_refused_with_a_clear_error() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    for body in [
        json!({"query": "   "}),
        json!({"query": "backups", "k": 0}),
        json!({"query": "backups", "k": 101}),
        json!({"query": "backups", "mode": "fuzzy"}),
        json!({"query": "backups", "filter": "x"}),
    ] {
        let response = app.post("/api/v1/search", &tenant.admin_key, &body).send().await.unwrap();
        assert_error(response, 422, "invalid_request").await;
    }
}

#[tokio::test]
async fn tenants_see_their_own_documents_and_the_shared_corpus_once_enabled_but_never_each_other() {
    let app = TestApp::spawn().await;
    let acme = app.create_tenant("acme").await;
    let globex = app.create_tenant("globex").await;
    let folder =
        tempfile_folder("shared", &[("handbook.md", "# Handbook\n\nThe quokka escalation path is shared by all.")]);
    let embedder = app.retriever.document_embedder();
    let report =
        corpus::sync(&app.app_db, TenantId::SYSTEM, &folder, embedder.as_ref(), true, |_, _, _| {}).await.unwrap();
    assert_eq!(report.created, 1);
    add_document(&app, &acme, "secret.md", "# Secret\n\nThe narwhal launch date is private to acme.").await;

    // The shared corpus is opt-in: a new tenant's searches never reach it, in any mode.
    for mode in ["hybrid", "vector", "full_text"] {
        let found = search_by(&app, &acme.admin_key, "quokka escalation", 5, mode).await;
        assert!(!any_mentions(&found, "quokka"), "not enabled yet ({mode}): {found:?}");
    }
    for tenant in [&acme, &globex] {
        let enabled = app
            .patch("/api/v1/tenant/config", &tenant.admin_key, &json!({ "shared_corpus": true }))
            .send()
            .await
            .unwrap();
        assert_eq!(enabled.status(), 200);
        assert_eq!(enabled.json::<Value>().await.unwrap()["shared_corpus"], true);
    }
    for tenant in [&acme, &globex] {
        let shared = search(&app, &tenant.admin_key, "quokka escalation", 5).await;
        assert_eq!(shared[0]["shared"], true);
        assert_eq!(shared[0]["source_path"], "handbook.md");
    }
    let found = search(&app, &acme.admin_key, "narwhal launch", 5).await;
    assert_eq!(found[0]["source_path"], "secret.md");
    assert_eq!(found.len(), 2, "acme sees its document and the shared one");
    for mode in ["hybrid", "vector", "full_text"] {
        let found = search_by(&app, &globex.admin_key, "narwhal launch", 5, mode).await;
        assert!(!any_mentions(&found, "narwhal"), "globex must not see acme's document ({mode}): {found:?}");
    }

    let acme_docs: Value = app.get_json("/api/v1/documents", &acme.admin_key).await;
    let acme_doc = acme_docs["documents"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(acme_docs["documents"].as_array().unwrap().len(), 1, "the list shows the tenant's own documents");
    let foreign = app.delete(&format!("/api/v1/documents/{acme_doc}"), &globex.admin_key).send().await.unwrap();
    assert_error(foreign, 404, "not_found").await;
    let shared_id = search(&app, &acme.admin_key, "quokka", 1).await[0]["document_id"].as_str().unwrap().to_owned();
    let shared = app.delete(&format!("/api/v1/documents/{shared_id}"), &acme.admin_key).send().await.unwrap();
    assert_error(shared, 404, "not_found").await;

    // A tenant's own document at the same path is its own copy; the shared one is untouched.
    add_document(&app, &globex, "handbook.md", "# Handbook\n\nGlobex's own handbook about wombats.").await;
    let found = search(&app, &acme.admin_key, "quokka escalation", 5).await;
    assert_eq!((&found[0]["source_path"], &found[0]["shared"]), (&json!("handbook.md"), &json!(true)));
    assert!(!any_mentions(&search(&app, &acme.admin_key, "wombats", 5).await, "wombats"));

    // Even SQL without a tenant clause cannot change the shared corpus from a tenant's transaction.
    let mut transaction = switchboard::db::begin_tenant(&app.app_db, TenantId(acme.id)).await.unwrap();
    let changed = sqlx::query("UPDATE doc_chunks SET content = 'defaced'").execute(&mut *transaction).await.unwrap();
    let shared_rows: i64 = sqlx::query_scalar("SELECT count(*) FROM doc_chunks WHERE content = 'defaced' AND tenant_id = '00000000-0000-0000-0000-000000000000'")
        .fetch_one(&mut *transaction)
        .await
        .unwrap();
    assert_eq!(shared_rows, 0, "{} rows changed, none of them shared", changed.rows_affected());
    transaction.rollback().await.unwrap();
}

#[tokio::test]
async fn a_tiny_tenant_gets_k_results_next_to_a_huge_one() {
    // With fresh statistics PostgreSQL itself reads a tiny tenant's few vectors exactly; these settings
    // make it take the shared HNSW index, as it does for a big tenant or on stale statistics, and make the
    // iterative index scan give up after 500 rows, as it would (after 20,000) next to a far bigger tenant.
    // The exact scan of the tenant's own and the shared vectors must then take over: vector mode fails
    // without it (checked by disabling it). Hybrid mode would find the tiny chunks by full text anyway.
    let app = TestApp::spawn_with_database_settings(&[
        ("hnsw.max_scan_tuples", "500"),
        ("enable_sort", "off"),
        ("enable_seqscan", "off"),
        ("enable_bitmapscan", "off"),
    ])
    .await;
    let huge = app.create_tenant("huge").await;
    let tiny = app.create_tenant("tiny").await;
    for index in 0..3 {
        let content = format!("# Tiny {index}\n\nThe alpha procedure for tiny.");
        add_document(&app, &tiny, &format!("tiny/{index}.md"), &content).await;
    }
    // The huge tenant: 3,000 chunks whose vectors are exactly the question's, so the shared HNSW index
    // ranks all of them before any of the tiny tenant's, and row-level security then hides them.
    let question = app.retriever.embed_question("alpha procedure").await.unwrap();
    let huge_document = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO documents (id, tenant_id, source_path, title, content_hash, byte_size, chunk_count) \
         VALUES ($1, $2, 'huge.md', 'Huge', 'x', 1, 3000)",
    )
    .bind(huge_document)
    .bind(huge.id)
    .execute(&app.owner_db)
    .await
    .unwrap();
    sqlx::query(
        "WITH chunks AS ( \
             INSERT INTO doc_chunks (id, tenant_id, document_id, chunk_index, content, token_count) \
             SELECT gen_random_uuid(), $1, $2, n, 'The alpha procedure, part ' || n, 6 FROM generate_series(1, 3000) AS n \
             RETURNING id \
         ) INSERT INTO chunk_embeddings (chunk_id, tenant_id, model, embedding) SELECT id, $1, $3, $4 FROM chunks",
    )
    .bind(huge.id)
    .bind(huge_document)
    .bind(&question.model.id)
    .bind(pgvector::Vector::from(question.vector.clone()))
    .execute(&app.owner_db)
    .await
    .unwrap();

    for mode in ["vector", "hybrid"] {
        let results = search_by(&app, &tiny.admin_key, "alpha procedure", 3, mode).await;
        assert_eq!(results.len(), 3, "{mode}: {results:?}");
        assert!(results.iter().all(|hit| hit["source_path"].as_str().unwrap().starts_with("tiny/")), "{mode}");
    }
    let results = search_by(&app, &huge.admin_key, "alpha procedure", 10, "vector").await;
    assert_eq!(results.len(), 10);
    assert!(results.iter().all(|hit| hit["source_path"] == "huge.md"));
}

#[tokio::test]
async fn answers_cite_their_passages_in_the_stream_and_on_the_stored_message() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    add_document(
        &app,
        &tenant,
        "ops/backups.md",
        "# Operations\n\n## Backups\n\nBackups of the zebra cluster run nightly at 02:00 and are kept for 35 days.",
    )
    .await;
    let session = app.create_session(&tenant.admin_key).await;
    let events = app.stream_turn(&tenant.admin_key, &session, "When do zebra cluster backups run?").await;
    let retrieval = events.iter().find(|event| event.event == "retrieval").expect("a retrieval event");
    assert_eq!(retrieval.id, "2", "retrieval comes right after run.started");
    let citations = retrieval.data["citations"].as_array().unwrap();
    assert_eq!(citations[0]["number"], 1);
    assert_eq!(citations[0]["source_path"], "ops/backups.md");
    assert_eq!(citations[0]["heading_path"], json!(["Operations", "Backups"]));
    let text = streamed_text(&events);
    assert!(
        text.contains("[1] Operations › Backups (ops/backups.md): Backups of the zebra cluster run nightly"),
        "{text}"
    );

    // The offline answer quotes (and so cites) every passage: stored with the spans that cite them.
    let messages = app.messages(&tenant.admin_key, &session).await;
    let stored = messages[1]["citations"].as_array().unwrap();
    assert_eq!(stored.len(), citations.len());
    assert_eq!(stored[0]["chunk_id"], citations[0]["chunk_id"]);
    assert!(stored[0]["spans"].as_array().is_some_and(|spans| !spans.is_empty()), "{stored:?}");
    assert_eq!(messages[1]["retrieved"], json!([]));
}

/// A folder under the test binary's temp dir holding `files`.
fn tempfile_folder(name: &str, files: &[(&str, &str)]) -> std::path::PathBuf {
    let folder = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&folder).unwrap();
    for (path, content) in files {
        std::fs::write(folder.join(path), content).unwrap();
    }
    folder
}

#[tokio::test]
async fn documents_sharing_words_can_be_added_at_the_same_time() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    // Each document takes a different subset of one vocabulary, so their statistics rows overlap: the
    // shape that deadlocked under the ingestion benchmark before the rows were taken in order (here the
    // local embedder staggers the transactions, so this checks the counts more than the deadlock).
    let vocabulary: Vec<String> = (0..400).map(|i| format!("lexicon{i}")).collect();
    let documents: Vec<String> = (0..8usize)
        .map(|d| {
            let words: Vec<&str> = vocabulary
                .iter()
                .enumerate()
                .filter(|(i, _)| (i * 7 + d * 13) % 3 != 0)
                .map(|(_, w)| w.as_str())
                .collect();
            format!("# Document {d}\n\nshared {}\n", words.join(" "))
        })
        .collect();
    let paths: Vec<String> = (0..documents.len()).map(|d| format!("doc{d}.md")).collect();
    let responses = futures::future::join_all(
        paths.iter().zip(&documents).map(|(path, content)| add_document(&app, &tenant, path, content)),
    )
    .await;
    for response in responses {
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    }
    // The BM25 statistics count every chunk's every term once.
    let counted: Option<i64> = sqlx::query_scalar("SELECT sum(chunks)::bigint FROM term_stats WHERE tenant_id = $1")
        .bind(tenant.id)
        .fetch_one(&app.owner_db)
        .await
        .unwrap();
    let actual: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM doc_chunks AS c, unnest(tsvector_to_array(c.search_vector)) WHERE c.tenant_id = $1",
    )
    .bind(tenant.id)
    .fetch_one(&app.owner_db)
    .await
    .unwrap();
    assert_eq!(counted, Some(actual));
    assert_corpus_statistics_match(&app, &tenant).await;

    // Removing and replacing documents keeps them in step.
    let listed = app.get_json("/api/v1/documents", &tenant.admin_key).await;
    let first = listed["documents"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        app.delete(&format!("/api/v1/documents/{first}"), &tenant.admin_key).send().await.unwrap().status(),
        204
    );
    assert_eq!(add_document(&app, &tenant, "doc1.md", "# Shorter\n\nnow only a few words").await.status(), 200);
    assert_corpus_statistics_match(&app, &tenant).await;
}

/// The tenant's corpus size and length, as BM25 reads them, equal its chunks' count and total tokens.
pub(crate) async fn assert_corpus_statistics_match(app: &TestApp, tenant: &TestTenant) {
    let kept: (i64, i64) = sqlx::query_as("SELECT chunks, tokens FROM corpus_stats WHERE tenant_id = $1")
        .bind(tenant.id)
        .fetch_one(&app.owner_db)
        .await
        .unwrap();
    let actual: (i64, i64) =
        sqlx::query_as("SELECT count(*), coalesce(sum(token_count), 0)::bigint FROM doc_chunks WHERE tenant_id = $1")
            .bind(tenant.id)
            .fetch_one(&app.owner_db)
            .await
            .unwrap();
    assert_eq!(kept, actual);
}
