//! Writing chunked and embedded documents: many in one transaction (a batch), each still atomic, and the
//! saves that reach one tenant at once gathered into batches (group commit).
//!
//! A batch is one transaction: its documents' rows, their chunks in as few statements as fit, their
//! vectors in one statement per model, and one net change to the tenant's BM25 statistics, taken in
//! lexeme order just before the commit. When a batch fails, each of its documents is written again alone,
//! so that one document's failure (a path another writer created meanwhile, a budget) is its own.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::chunking::Chunk;
use super::{Document, IngestOutcome, NewDocument, RetrievalError, audit_saved, store, vectors};
use crate::auth::context::TenantContext;
use crate::background::Background;
use crate::budgets::{CallReservation, RunBudgets};
use crate::db;
use crate::embeddings::{Embedded, EmbeddingModel};
use crate::ids::{CollectionId, TenantId};
use crate::usage::{self, EmbeddingPayer};

/// A document ready to be written: chunked, embedded (or not, when the embedder failed: the backfill
/// embeds it later), its collections resolved and its saver's budgets read.
#[derive(Debug)]
pub struct Prepared {
    pub document: NewDocument,
    pub collection_ids: Vec<CollectionId>,
    pub chunks: Vec<Chunk>,
    pub vectors: Option<(EmbeddingModel, Embedded)>,
    /// The saver's budgets and what was reserved on them for the embedding, when it is priced: settled
    /// with its cost when the document is written, given back when it cannot be.
    pub budgets: Option<(RunBudgets, CallReservation)>,
    /// Who saves it, audited; none for the shared corpus and `switchboard ingest`.
    pub saver: Option<TenantContext>,
}

pub type Saved = Result<(Document, IngestOutcome), RetrievalError>;

/// Documents a batch holds at most, and chunks: a batch's transaction holds its statistics rows for the
/// time it takes to write them, and other writers of the tenant queue on them.
const MAX_BATCH_DOCUMENTS: usize = 64;
const MAX_BATCH_CHUNKS: usize = 4_000;
/// Batches written at once for one tenant by one process: two keep both cores of a small machine busy
/// (the vector index's inserts are most of a batch's time), more only queue on the statistics rows.
const WRITERS_PER_TENANT: usize = 2;

/// Writes `batch` into `tenant_id`'s documents, in one transaction when it can; the results in the
/// batch's order.
pub async fn write(pool: &sqlx::PgPool, tenant_id: TenantId, batch: Vec<Prepared>) -> Vec<Saved> {
    if batch.len() > 1 {
        match write_all_or_none(pool, tenant_id, &batch).await {
            Ok(saved) => return saved.into_iter().map(Ok).collect(),
            Err(error) => tracing::debug!(%error, documents = batch.len(), "a batch failed; its documents go alone"),
        }
    }
    let mut saved = Vec::with_capacity(batch.len());
    for prepared in &batch {
        let one = write_all_or_none(pool, tenant_id, std::slice::from_ref(prepared)).await;
        if let (Err(_), Some((budgets, call))) = (&one, &prepared.budgets) {
            budgets.release_call(pool, tenant_id, *call).await;
        }
        saved.push(one.map(|mut one| one.remove(0)));
    }
    saved
}

/// The documents of `batch` in one transaction, or none of them; the results in the batch's order.
pub async fn write_all_or_none(
    pool: &sqlx::PgPool,
    tenant_id: TenantId,
    batch: &[Prepared],
) -> Result<Vec<(Document, IngestOutcome)>, RetrievalError> {
    let mut transaction = db::begin_tenant(pool, tenant_id).await?;
    // Every writer takes documents' rows in path order, then the statistics' rows in lexeme order.
    let mut order: Vec<usize> = (0..batch.len()).collect();
    order.sort_by(|a, b| batch[*a].document.source_path.cmp(&batch[*b].document.source_path));
    let paths: Vec<&str> = order.iter().map(|index| batch[*index].document.source_path.as_str()).collect();
    // Looked up again, locked: another writer may have stored the same path since it was prepared.
    let existing: HashMap<String, Document> = store::lock_by_paths(&mut transaction, &paths)
        .await?
        .into_iter()
        .map(|document| (document.source_path.clone(), document))
        .collect();
    let replaced: Vec<uuid::Uuid> = batch
        .iter()
        .filter_map(|prepared| {
            let document = existing.get(&prepared.document.source_path)?;
            (document.content_hash != prepared.document.content_hash).then_some(document.id)
        })
        .collect();
    let removed = store::remove_chunks(&mut transaction, &replaced).await?;

    let mut saved: Vec<Option<(Document, IngestOutcome)>> = batch.iter().map(|_| None).collect();
    let mut written = Vec::new();
    for index in order {
        let prepared = &batch[index];
        let row = (&prepared.document, prepared.collection_ids.as_slice());
        let outcome = match existing.get(&prepared.document.source_path) {
            Some(document) if document.content_hash == prepared.document.content_hash => {
                (document.clone(), IngestOutcome::Unchanged)
            }
            Some(document) => {
                let updated = store::replace(&mut transaction, document.id, row, &prepared.chunks).await?;
                written.push(index);
                (updated, IngestOutcome::Updated)
            }
            None => {
                let created = store::insert(&mut transaction, tenant_id, row, &prepared.chunks).await?;
                written.push(index);
                (created, IngestOutcome::Created)
            }
        };
        saved[index] = Some(outcome);
    }
    let saved: Vec<(Document, IngestOutcome)> = saved.into_iter().map(|one| one.expect("every document")).collect();
    if written.is_empty() {
        // Every document was stored already, as it is.
        transaction.commit().await?;
        return Ok(saved);
    }

    let documents: Vec<(uuid::Uuid, &[Chunk])> =
        written.iter().map(|index| (saved[*index].0.id, batch[*index].chunks.as_slice())).collect();
    let chunk_ids = store::insert_chunks(&mut transaction, tenant_id, &documents).await?;
    store_vectors(&mut transaction, tenant_id, batch, &written, &chunk_ids).await?;
    let without_vectors: Vec<uuid::Uuid> =
        written.iter().filter(|index| batch[**index].vectors.is_none()).map(|index| saved[*index].0.id).collect();
    if !without_vectors.is_empty() {
        vectors::owe_vectors(&mut transaction, tenant_id, &without_vectors).await?;
    }
    for index in &written {
        if let Some(saver) = &batch[*index].saver {
            let (document, outcome) = &saved[*index];
            audit_saved(&mut transaction, saver, document, *outcome).await?;
        }
    }
    let written_ids: Vec<uuid::Uuid> = written.iter().map(|index| saved[*index].0.id).collect();
    store::apply_statistics(&mut transaction, tenant_id, &written_ids, &removed).await?;
    let events: Vec<crate::webhooks::events::Event> = written
        .iter()
        .map(|index| {
            let (document, outcome) = &saved[*index];
            crate::webhooks::events::Event::document_ingested(&crate::webhooks::events::IngestedDocument {
                id: document.id,
                source_path: &document.source_path,
                title: &document.title,
                outcome: if *outcome == IngestOutcome::Created { "created" } else { "updated" },
                chunk_count: document.chunk_count,
                collection_ids: &document.collection_ids,
            })
        })
        .collect();
    crate::webhooks::store::enqueue(&mut transaction, tenant_id, &events).await?;
    transaction.commit().await?;
    Ok(saved)
}

/// The written documents' vectors (one statement per model), their usage records and their savers'
/// spend; and the other models marked incomplete, since these chunks have none of their vectors.
async fn store_vectors(
    connection: &mut sqlx::PgConnection,
    tenant_id: TenantId,
    batch: &[Prepared],
    written: &[usize],
    chunk_ids: &[Vec<uuid::Uuid>],
) -> Result<(), RetrievalError> {
    // The one model every written document was embedded by, if there is one: every other model (and that
    // one too, when a document has no vectors) now lacks vectors for some chunks.
    let mut models = written.iter().map(|index| batch[*index].vectors.as_ref().map(|(model, _)| model));
    let first = models.next().flatten();
    let common = if models.all(|model| model == first) { first } else { None };
    vectors::mark_others_incomplete(&mut *connection, common).await?;

    let mut per_model: HashMap<&str, ModelVectors<'_>> = HashMap::new();
    for (index, ids) in written.iter().zip(chunk_ids) {
        let prepared = &batch[*index];
        let Some((model, embedded)) = &prepared.vectors else { continue };
        // Whoever saved the document pays for embedding it; the shared corpus is the platform's.
        let payer = EmbeddingPayer {
            api_key_id: prepared.saver.as_ref().and_then(|context| context.actor().api_key_id()),
            ..EmbeddingPayer::default()
        };
        usage::record_embedding(&mut *connection, tenant_id, payer, model, embedded.spend).await?;
        if let (Some((budgets, call)), Some(saver)) = (&prepared.budgets, &prepared.saver) {
            let by = crate::audit::Recorder::of(saver);
            budgets.settle_call(&mut *connection, &by, *call, embedded.spend.cost_usd).await?;
        }
        let entry = per_model.entry(model.id.as_str()).or_insert_with(|| (model, Vec::new(), Vec::new()));
        entry.1.extend_from_slice(ids);
        entry.2.extend(embedded.vectors.iter().cloned());
    }
    for (model, ids, embeddings) in per_model.into_values() {
        vectors::store(&mut *connection, tenant_id, model, &ids, embeddings).await?;
    }
    Ok(())
}

/// One model's vectors in a batch: the model, its chunks' ids and their vectors, in the same order.
type ModelVectors<'a> = (&'a EmbeddingModel, Vec<uuid::Uuid>, Vec<Vec<f32>>);

/// Gathers the documents saved into one tenant at once into batches: a save waits while up to
/// [`WRITERS_PER_TENANT`] batches of its tenant are being written, then goes in the next one.
#[derive(Debug, Default)]
pub struct DocumentWriter {
    queues: Mutex<HashMap<TenantId, Queue>>,
}

#[derive(Debug, Default)]
struct Queue {
    waiting: VecDeque<Job>,
    writers: usize,
    /// The paths of the batches being written: a later save of one waits for its batch to end.
    in_flight: HashSet<String>,
}

#[derive(Debug)]
struct Job {
    prepared: Prepared,
    done: oneshot::Sender<Saved>,
}

impl DocumentWriter {
    /// Writes `prepared`, in a batch with the other documents its tenant is saving now; a batch is written
    /// by a task of `background`, which shutdown waits for.
    pub async fn save(
        self: &Arc<Self>,
        background: &Background,
        pool: &sqlx::PgPool,
        tenant_id: TenantId,
        prepared: Prepared,
    ) -> Saved {
        let (done, saved) = oneshot::channel();
        let start_writer = {
            let mut queues = self.queues.lock().expect("the writer's queues are never poisoned");
            let queue = queues.entry(tenant_id).or_default();
            queue.waiting.push_back(Job { prepared, done });
            let start = queue.writers < WRITERS_PER_TENANT;
            if start {
                queue.writers += 1;
            }
            start
        };
        if start_writer {
            // Its own task: a batch holds other callers' documents, so it must not end with this caller
            // (a client that hangs up).
            let writer = Arc::clone(self);
            let pool = pool.clone();
            background.spawn(async move { writer.drain(&pool, tenant_id).await });
        }
        saved.await.expect("the document writer writes every document it takes")
    }

    /// Writes the tenant's waiting documents, a batch at a time, until none wait.
    async fn drain(&self, pool: &sqlx::PgPool, tenant_id: TenantId) {
        let mut leaving = Leaving { writer: self, tenant_id, left: false, paths: Vec::new() };
        loop {
            let Some(jobs) = self.next_batch(tenant_id) else {
                leaving.left = true;
                return;
            };
            leaving.paths = jobs.iter().map(|job| job.prepared.document.source_path.clone()).collect();
            let (batch, done): (Vec<Prepared>, Vec<oneshot::Sender<Saved>>) =
                jobs.into_iter().map(|job| (job.prepared, job.done)).unzip();
            let saved = write(pool, tenant_id, batch).await;
            self.written(tenant_id, &std::mem::take(&mut leaving.paths));
            for (saved, done) in saved.into_iter().zip(done) {
                // A caller that has gone no longer needs its answer; its document is written all the same.
                let _ = done.send(saved);
            }
        }
    }

    /// The next batch: waiting documents in the order they came, up to the batch's limits, never one path
    /// twice nor a path another batch is writing (a later save of a path is written after the earlier
    /// one). None when none can go, and the writer has left: under the same lock, so that a save arriving
    /// after it starts another (one waiting on a path is taken by the writer of that path, which goes on
    /// until the queue is empty).
    fn next_batch(&self, tenant_id: TenantId) -> Option<Vec<Job>> {
        let mut queues = self.queues.lock().expect("the writer's queues are never poisoned");
        let queue = queues.get_mut(&tenant_id).expect("a writer's tenant has a queue");
        let mut jobs: Vec<Job> = Vec::new();
        let mut chunks = 0;
        while let Some(job) = queue.waiting.front() {
            let path = &job.prepared.document.source_path;
            let full = !jobs.is_empty()
                && (jobs.len() >= MAX_BATCH_DOCUMENTS || chunks + job.prepared.chunks.len() > MAX_BATCH_CHUNKS);
            let again = jobs.iter().any(|taken| &taken.prepared.document.source_path == path);
            if full || again || queue.in_flight.contains(path) {
                break;
            }
            chunks += job.prepared.chunks.len();
            jobs.extend(queue.waiting.pop_front());
        }
        queue.in_flight.extend(jobs.iter().map(|job| job.prepared.document.source_path.clone()));
        if jobs.is_empty() {
            leave(&mut queues, tenant_id);
            return None;
        }
        Some(jobs)
    }
}

impl DocumentWriter {
    /// A batch's paths are written: later saves of them may go.
    fn written(&self, tenant_id: TenantId, paths: &[String]) {
        let mut queues = self.queues.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(queue) = queues.get_mut(&tenant_id) {
            for path in paths {
                queue.in_flight.remove(path);
            }
        }
    }
}

fn leave(queues: &mut HashMap<TenantId, Queue>, tenant_id: TenantId) {
    if let Some(queue) = queues.get_mut(&tenant_id) {
        queue.writers -= 1;
        if queue.writers == 0 && queue.waiting.is_empty() {
            queues.remove(&tenant_id);
        }
    }
}

/// A writer's leaving, counted even when its task panics, so that the tenant's next save starts another.
struct Leaving<'a> {
    writer: &'a DocumentWriter,
    tenant_id: TenantId,
    /// Left in [`DocumentWriter::next_batch`], which found nothing to write.
    left: bool,
    /// The paths of the batch being written.
    paths: Vec<String>,
}

impl Drop for Leaving<'_> {
    fn drop(&mut self) {
        if !self.left {
            self.writer.written(self.tenant_id, &self.paths);
            leave(&mut self.writer.queues.lock().unwrap_or_else(std::sync::PoisonError::into_inner), self.tenant_id);
        }
    }
}
