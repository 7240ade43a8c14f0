//! Documents written many to a transaction (`retrieval::writer`): concurrent writers replacing the same
//! documents never deadlock, the BM25 statistics stay exact term by term, and a batch that fails leaves
//! each of its documents to succeed or fail alone.

use std::collections::BTreeMap;

use switchboard::ids::TenantId;
use switchboard::retrieval::writer::{self, Prepared};
use switchboard::retrieval::{IngestOutcome, NewDocument, chunking};

use crate::helpers::{TestApp, TestTenant};

/// Writers at once in the deadlock test, and the documents each replaces.
const WRITERS: usize = 4;
const DOCUMENTS_EACH: usize = 2;

/// A document ready to write (no vectors: full text alone), as the service prepares one.
fn prepared(source_path: &str, content: &str) -> Prepared {
    let document = NewDocument::parse(source_path, None, content.to_owned()).unwrap();
    Prepared {
        chunks: chunking::chunk(&document.content),
        document,
        collection_ids: Vec::new(),
        vectors: None,
        budgets: None,
        saver: None,
    }
}

/// A document of `words` drawn from one shared vocabulary, different for every (`document`, `round`), in
/// several sections so that it has several chunks.
fn overlapping(document: usize, round: usize) -> String {
    let sections: Vec<String> = (0..3)
        .map(|section| {
            let words: Vec<String> = (0..300)
                .filter(|word| !(word * 7 + document * 13 + round * 5 + section).is_multiple_of(3))
                .map(|word| format!("lexicon{word}"))
                .collect();
            format!("## Part {section} of round {round}\n\n{}\n\n", words.join(" "))
        })
        .collect();
    format!("# Document {document}\n\n{}", sections.concat())
}

/// Per lexeme, a number of chunks, as `sql` (bound to the tenant) gives them.
async fn lexeme_counts(app: &TestApp, tenant: &TestTenant, sql: &'static str) -> BTreeMap<String, i64> {
    let rows: Vec<(String, i64)> = sqlx::query_as(sql).bind(tenant.id).fetch_all(&app.owner_db).await.unwrap();
    rows.into_iter().collect()
}

/// The tenant's statistics, term by term and for the corpus, equal a count of its stored chunks (a term
/// counted below zero, or left above it, shows).
async fn assert_statistics_exact(app: &TestApp, tenant: &TestTenant) {
    let kept = lexeme_counts(
        app,
        tenant,
        "SELECT lexeme, chunks::bigint FROM term_stats WHERE tenant_id = $1 AND chunks <> 0",
    )
    .await;
    let counted = lexeme_counts(
        app,
        tenant,
        "SELECT lexeme, count(*) FROM doc_chunks AS c, unnest(tsvector_to_array(c.search_vector)) AS lexeme \
         WHERE c.tenant_id = $1 GROUP BY lexeme",
    )
    .await;
    assert!(!counted.is_empty());
    assert_eq!(kept, counted, "term_stats differ from the stored chunks");
    // Full-text search skips the chunks these bounds say cannot score enough: every chunk must be within.
    let unbounded: Vec<String> = sqlx::query_scalar(
        "SELECT a.lexeme FROM ( \
             SELECT t.lexeme, max(coalesce(array_length(t.positions, 1), 1)) AS most, min(c.token_count) AS fewest \
             FROM doc_chunks AS c, unnest(c.search_vector) AS t WHERE c.tenant_id = $1 GROUP BY t.lexeme \
         ) AS a JOIN term_stats AS s ON s.tenant_id = $1 AND s.lexeme = a.lexeme \
         WHERE s.max_occurrences IS NULL OR s.min_tokens IS NULL OR s.max_occurrences < a.most \
            OR s.min_tokens > a.fewest",
    )
    .bind(tenant.id)
    .fetch_all(&app.owner_db)
    .await
    .unwrap();
    assert!(unbounded.is_empty(), "terms whose bounds miss a chunk: {unbounded:?}");
    crate::retrieval::assert_corpus_statistics_match(app, tenant).await;
}

#[tokio::test]
async fn concurrent_writers_replacing_documents_that_share_words_never_deadlock_and_keep_the_statistics_exact() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let tenant_id = TenantId(tenant.id);
    let all: Vec<Prepared> = (0..WRITERS * DOCUMENTS_EACH)
        .map(|document| prepared(&format!("doc{document}.md"), &overlapping(document, 0)))
        .collect();
    assert!(writer::write(&app.app_db, tenant_id, all).await.iter().all(Result::is_ok));

    // Each writer replaces its own documents, all at once, with words every other writer's documents also
    // take out and put in: transactions that share no document but many statistics rows. Each batch is
    // all or nothing and nothing runs it again, so a deadlock would fail it.
    for round in 1..=8 {
        let writers = (0..WRITERS).map(|writer_index| {
            let pool = app.app_db.clone();
            let batch: Vec<Prepared> = (0..DOCUMENTS_EACH)
                .map(|offset| writer_index * DOCUMENTS_EACH + offset)
                .map(|document| prepared(&format!("doc{document}.md"), &overlapping(document, round)))
                .collect();
            async move { writer::write_all_or_none(&pool, tenant_id, &batch).await }
        });
        for saved in futures::future::join_all(writers).await {
            let saved = saved.expect("no concurrent replacement fails");
            assert!(saved.iter().all(|(_, outcome)| *outcome == IngestOutcome::Updated));
        }
    }
    assert_statistics_exact(&app, &tenant).await;
}

#[tokio::test]
async fn a_batch_that_fails_leaves_each_document_to_succeed_or_fail_alone() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let tenant_id = TenantId(tenant.id);
    writer::write(&app.app_db, tenant_id, vec![prepared("kept.md", "# Kept\n\nthe original kept words")]).await;

    // One document PostgreSQL refuses (a NUL byte in a chunk, which the API refuses before it gets this
    // far), one path twice, one replacement and one new document, in one batch.
    let mut refused = prepared("refused.md", "# Refused\n\nwords about zeppelins");
    refused.chunks[0].content.push('\0');
    let batch = vec![
        prepared("first.md", "# First\n\nwords about harbours"),
        refused,
        prepared("twice.md", "# Twice\n\nthe earlier version about lighthouses"),
        prepared("twice.md", "# Twice\n\nthe later version about lanterns"),
        prepared("kept.md", "# Kept\n\nthe replacement about windmills"),
    ];
    let saved = writer::write(&app.app_db, tenant_id, batch).await;
    let outcomes: Vec<Option<IngestOutcome>> = saved.iter().map(|saved| saved.as_ref().ok().map(|(_, o)| *o)).collect();
    assert_eq!(
        outcomes,
        [
            Some(IngestOutcome::Created),
            None,
            Some(IngestOutcome::Created),
            Some(IngestOutcome::Updated),
            Some(IngestOutcome::Updated),
        ]
    );

    let stored: Vec<(String, String)> = sqlx::query_as(
        "SELECT d.source_path, string_agg(c.content, ' ' ORDER BY c.chunk_index) FROM documents AS d \
         JOIN doc_chunks AS c ON c.document_id = d.id WHERE d.tenant_id = $1 GROUP BY d.source_path \
         ORDER BY d.source_path",
    )
    .bind(tenant.id)
    .fetch_all(&app.owner_db)
    .await
    .unwrap();
    let paths: Vec<&str> = stored.iter().map(|(path, _)| path.as_str()).collect();
    assert_eq!(paths, ["first.md", "kept.md", "twice.md"], "nothing of the refused document is stored");
    assert!(stored[1].1.contains("windmills") && !stored[1].1.contains("original"));
    assert!(stored[2].1.contains("lanterns"), "the later save of a path is the one kept");
    assert_statistics_exact(&app, &tenant).await;
}
