//! A change of embedding model fills in the new model's vectors in the background while the complete old
//! model keeps answering; a failed embedding call never loses a document.

use mock_upstream::Fault;
use serde_json::json;
use switchboard::auth::context::CollectionScope;
use switchboard::ids::TenantId;
use switchboard::retrieval::search::SearchMode;
use switchboard::retrieval::{self, IngestOutcome, NewDocument, Retriever, backfill};

use crate::helpers::{TestApp, TestTenant};

const NEW_MODEL: &str = "openai/text-embedding-3-small";

async fn vectors_of(app: &TestApp, tenant: &TestTenant, model: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM chunk_embeddings WHERE tenant_id = $1 AND model = $2")
        .bind(tenant.id)
        .bind(model)
        .fetch_one(&app.owner_db)
        .await
        .unwrap()
}

/// The source paths a vector-only search finds, best first.
async fn vector_search(app: &TestApp, retriever: &Retriever, tenant: &TestTenant, query: &str) -> Vec<String> {
    let vector = retriever.embed_question(query).await.expect("the question embeds");
    let mut transaction = switchboard::db::begin_tenant(&app.app_db, TenantId(tenant.id)).await.unwrap();
    let hits =
        Retriever::search_in(&mut transaction, query, Some(&vector), 5, SearchMode::Vector, &CollectionScope::All)
            .await
            .unwrap();
    transaction.commit().await.unwrap();
    hits.into_iter().map(|hit| hit.source_path).collect()
}

/// Two documents through the API, embedded by the app's model.
async fn store_keys_and_backups(app: &TestApp, tenant: &TestTenant) {
    for (path, content) in [
        ("keys.md", "# Keys\n\nRotate the master key with the rotate-master-key command."),
        ("backups.md", "# Backups\n\nBackups of the cluster run nightly and are kept for a month."),
    ] {
        let body = json!({ "source_path": path, "content": content });
        assert_eq!(app.post("/api/v1/documents", &tenant.admin_key, &body).send().await.unwrap().status(), 201);
    }
}

#[tokio::test]
async fn a_new_embedding_model_fills_in_while_the_old_one_serves() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    store_keys_and_backups(&app, &tenant).await;
    assert_eq!(backfill::sweep(&app.app_db, &app.retriever).await.unwrap(), 0, "ingestion embedded every chunk");
    let local = app.retriever.document_embedder().unwrap().model().id.clone();

    // A restart with another model: questions keep using the complete local model meanwhile.
    let next = app.retriever_for(NEW_MODEL, Some(256)).await;
    let new_id = format!("{NEW_MODEL}@256");
    assert_eq!(next.document_embedder().unwrap().model().id, new_id);
    assert_eq!(next.question_embedder().unwrap().model().id, local);
    assert_eq!(vector_search(&app, &next, &tenant, "how do I rotate the master key").await[0], "keys.md");
    assert_eq!(vectors_of(&app, &tenant, &new_id).await, 0);

    let embedded = backfill::sweep(&app.app_db, &next).await.unwrap();
    assert_eq!(embedded, 2);
    // The re-embedding is the tenant's usage, at the catalog's price, paid by no key of the tenant's.
    let (tokens, cost, keyless): (i64, rust_decimal::Decimal, bool) = sqlx::query_as(
        "SELECT sum(input_tokens)::bigint, sum(cost_usd), bool_and(api_key_id IS NULL) FROM usage_records \
         WHERE tenant_id = $1 AND operation = 'embedding' AND provider = 'openai' AND model = 'text-embedding-3-small'",
    )
    .bind(tenant.id)
    .fetch_one(&app.owner_db)
    .await
    .expect("the backfill's usage is recorded");
    assert!(tokens > 0 && keyless, "{tokens} tokens");
    let price = rust_decimal::Decimal::new(2, 2);
    assert_eq!(cost, rust_decimal::Decimal::from(tokens) * price / rust_decimal::Decimal::from(1_000_000));
    assert_eq!(vectors_of(&app, &tenant, &new_id).await, 2);
    assert_eq!(vectors_of(&app, &tenant, &local).await, 2, "the old vectors stay until nobody needs them");
    assert_eq!(next.question_embedder().unwrap().model().id, new_id, "the complete new model serves");
    assert_eq!(vector_search(&app, &next, &tenant, "when do backups of the cluster run").await[0], "backups.md");

    // Started again, the new model serves at once.
    let again = app.retriever_for(NEW_MODEL, Some(256)).await;
    assert_eq!(again.question_embedder().unwrap().model().id, new_id);

    // A document stored now has no local vector: switching back, the local model is no longer complete,
    // so the new model keeps serving until the backfill has caught the local one up.
    let late = NewDocument::parse("late.md", None, "# Late\n\nStored under the new model.".to_owned()).unwrap();
    let new_embedder = again.document_embedder();
    retrieval::ingest(&app.app_db, TenantId(tenant.id), &late, new_embedder.as_ref(), None).await.unwrap();
    let back = app.retriever_for("local", None).await;
    assert_eq!(back.question_embedder().unwrap().model().id, new_id);
    assert_eq!(backfill::sweep(&app.app_db, &back).await.unwrap(), 1);
    assert_eq!(back.question_embedder().unwrap().model().id, local);
}

#[tokio::test]
async fn a_document_is_kept_when_embedding_fails_and_embedded_later() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let remote = app.retriever_for(NEW_MODEL, Some(256)).await;
    for _ in 0..3 {
        // The first call and both retries.
        app.mock.fail_embeddings(Fault::Status { status: 503, retry_after: None });
    }
    let document = NewDocument::parse("ops/backups.md", None, "# Backups\n\nBackups run nightly.".to_owned()).unwrap();
    let embedder = remote.document_embedder();
    let (stored, outcome) =
        retrieval::ingest(&app.app_db, TenantId(tenant.id), &document, embedder.as_ref(), None).await.unwrap();
    assert_eq!(outcome, IngestOutcome::Created);
    let new_id = format!("{NEW_MODEL}@256");
    assert_eq!(vectors_of(&app, &tenant, &new_id).await, 0);
    let found = app.post("/api/v1/search", &tenant.admin_key, &json!({ "query": "backups", "mode": "full_text" }));
    let found: serde_json::Value = found.send().await.unwrap().json().await.unwrap();
    assert_eq!(found["results"][0]["source_path"], "ops/backups.md", "full text finds it at once");

    assert_eq!(backfill::sweep(&app.app_db, &remote).await.unwrap(), usize::try_from(stored.chunk_count).unwrap());
    assert_eq!(vectors_of(&app, &tenant, &new_id).await, i64::from(stored.chunk_count));
}

/// A sweep that ran while a document's embedding failed may mark the model complete without having seen
/// that document; the document is owed its vectors all the same, and the next sweep, reading only the
/// documents owed vectors (never every chunk), embeds it.
#[tokio::test]
async fn a_complete_model_sweeps_only_the_documents_owed_vectors() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let remote = app.retriever_for(NEW_MODEL, Some(256)).await;
    let new_id = format!("{NEW_MODEL}@256");
    let embedder = remote.document_embedder();
    let settled = NewDocument::parse("keys.md", None, "# Keys\n\nRotate the master key.".to_owned()).unwrap();
    retrieval::ingest(&app.app_db, TenantId(tenant.id), &settled, embedder.as_ref(), None).await.unwrap();
    assert_eq!(backfill::sweep(&app.app_db, &remote).await.unwrap(), 0);
    for _ in 0..3 {
        app.mock.fail_embeddings(Fault::Status { status: 503, retry_after: None });
    }
    let failed = NewDocument::parse("ops/backups.md", None, "# Backups\n\nBackups run nightly.".to_owned()).unwrap();
    let (stored, _) =
        retrieval::ingest(&app.app_db, TenantId(tenant.id), &failed, embedder.as_ref(), None).await.unwrap();
    let owed = || {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM documents_owed_vectors WHERE tenant_id = $1")
            .bind(tenant.id)
            .fetch_one(&app.owner_db)
    };
    assert_eq!(owed().await.unwrap(), 1);
    // As the concurrent sweep's end would have: complete.
    sqlx::query("UPDATE embedding_models SET complete_at = now() WHERE id = $1")
        .bind(&new_id)
        .execute(&app.owner_db)
        .await
        .unwrap();
    // A chunk that lacks a vector but that no writer listed (put there behind the service's back) is not
    // looked for: a complete model is trusted.
    let keys_chunk: uuid::Uuid = sqlx::query_scalar(
        "DELETE FROM chunk_embeddings WHERE tenant_id = $1 AND chunk_id = \
         (SELECT c.id FROM doc_chunks c JOIN documents d ON d.id = c.document_id WHERE d.source_path = 'keys.md' LIMIT 1) \
         RETURNING chunk_id",
    )
    .bind(tenant.id)
    .fetch_one(&app.owner_db)
    .await
    .unwrap();

    let swept = backfill::sweep(&app.app_db, &remote).await.unwrap();
    assert_eq!(swept, usize::try_from(stored.chunk_count).unwrap(), "the owed document, and nothing else");
    assert_eq!(owed().await.unwrap(), 0, "settled once embedded");
    let has_vector: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM chunk_embeddings WHERE chunk_id = $1)")
        .bind(keys_chunk)
        .fetch_one(&app.owner_db)
        .await
        .unwrap();
    assert!(!has_vector);
    assert_eq!(backfill::sweep(&app.app_db, &remote).await.unwrap(), 0, "nothing is owed any more");
}

/// The model's HNSW indexes on `chunk_embeddings`: name and definition.
async fn vector_indexes(app: &TestApp) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT indexname::text, indexdef FROM pg_indexes WHERE tablename = 'chunk_embeddings' \
         AND indexname LIKE 'chunk_embeddings_hnsw_%' ORDER BY indexname",
    )
    .fetch_all(&app.owner_db)
    .await
    .unwrap()
}

#[tokio::test]
async fn an_index_of_an_earlier_layout_is_replaced_at_start_and_search_goes_on() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let body = json!({ "source_path": "keys.md", "content": "# Keys\n\nRotate the master key with the rotate-master-key command." });
    assert_eq!(app.post("/api/v1/documents", &tenant.admin_key, &body).send().await.unwrap().status(), 201);
    let indexes = vector_indexes(&app).await;
    assert_eq!(indexes.len(), 1, "{indexes:?}");
    let (current, definition) = &indexes[0];
    assert!(definition.contains("halfvec_cosine_ops") && definition.contains("m='16'"), "{definition}");

    // As a deployment of the full-precision layout left it: that index alone, under the old name.
    let digest = &current[current.len() - 16..];
    let local = app.retriever.document_embedder().unwrap().model().id.clone();
    for statement in [
        format!("DROP INDEX {current}"),
        format!(
            "CREATE INDEX chunk_embeddings_hnsw_{digest} ON chunk_embeddings \
             USING hnsw ((embedding::vector(384)) vector_cosine_ops) WHERE model = '{local}'"
        ),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(statement)).execute(&app.owner_db).await.unwrap();
    }

    let restarted = app.retriever_for("local", None).await;
    let indexes = vector_indexes(&app).await;
    assert_eq!(indexes.len(), 1, "the old index is dropped once the new one is built: {indexes:?}");
    assert_eq!(&indexes[0].0, current);
    assert_eq!(vector_search(&app, &restarted, &tenant, "how do I rotate the master key").await, ["keys.md"]);
}

/// Past the 2,000 dimensions pgvector indexes at full precision (the mock answers the dimensions asked).
#[tokio::test]
async fn vectors_of_more_than_2000_dimensions_are_indexed_and_searched() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    store_keys_and_backups(&app, &tenant).await;
    let large = app.retriever_for("openai/text-embedding-3-large", Some(3000)).await;
    assert_eq!(large.document_embedder().expect("the model is usable").model().dimensions, 3000);
    assert_eq!(backfill::sweep(&app.app_db, &large).await.unwrap(), 2);
    assert_eq!(vectors_of(&app, &tenant, "openai/text-embedding-3-large@3000").await, 2);
    let indexes = vector_indexes(&app).await;
    assert!(indexes.iter().any(|(_, definition)| definition.contains("halfvec(3000)")), "{indexes:?}");
    let found = vector_search(&app, &large, &tenant, "when do backups of the cluster run").await;
    assert_eq!(found[0], "backups.md");
}
