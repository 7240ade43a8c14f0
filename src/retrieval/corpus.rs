//! The shared documentation corpus: every markdown file under a folder, ingested into the system tenant.
//! Unchanged files cost a hash lookup, changed ones are replaced, removed ones are removed.

use std::path::Path;

use sqlx::PgPool;

use super::{IngestOutcome, NewDocument, RetrievalError, ingest, store};
use crate::db;
use crate::embeddings::Embedder;
use crate::ids::TenantId;

/// What a sync did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SyncReport {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub removed: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path}: {source}")]
    Document { path: String, source: RetrievalError },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Ingests the markdown files under `folder` (paths relative to it) into `tenant`'s documents, with
/// `embedder`'s vectors, one transaction per document (each document changes atomically; a long single
/// transaction would make the BM25 statistics rows it updates again and again ever slower to update); with
/// `remove_missing`, documents without a file are removed, so the documents mirror the folder. `progress` is called after
/// each file with how many are done, of how many, and the file's path.
pub async fn sync(
    pool: &PgPool,
    tenant: TenantId,
    folder: &Path,
    embedder: Option<&Embedder>,
    remove_missing: bool,
    mut progress: impl FnMut(usize, usize, &str),
) -> Result<SyncReport, CorpusError> {
    let files = markdown_files(folder)?;
    let mut report = SyncReport::default();
    let mut seen = std::collections::HashSet::new();
    let total = files.len();
    for (done, (relative, path)) in (1..).zip(files) {
        let content = std::fs::read_to_string(&path)
            .map_err(|source| CorpusError::Io { path: path.display().to_string(), source })?;
        let document = NewDocument::parse(&relative, None, content)
            .map_err(|source| CorpusError::Document { path: relative.clone(), source })?;
        let (_, outcome) = ingest(pool, tenant, &document, embedder, None)
            .await
            .map_err(|source| CorpusError::Document { path: relative.clone(), source })?;
        match outcome {
            IngestOutcome::Created => report.created += 1,
            IngestOutcome::Updated => report.updated += 1,
            IngestOutcome::Unchanged => report.unchanged += 1,
        }
        progress(done, total, &relative);
        seen.insert(relative);
    }
    let mut transaction = db::begin_tenant(pool, tenant).await?;
    let stored = if remove_missing { store::list(&mut transaction).await? } else { Vec::new() };
    for document in stored {
        if !seen.contains(&document.source_path) && store::delete(&mut transaction, document.id).await? {
            report.removed += 1;
        }
    }
    transaction.commit().await?;
    Ok(report)
}

/// Markdown files under `folder`, as (path relative to it with `/`, full path), sorted.
fn markdown_files(folder: &Path) -> Result<Vec<(String, std::path::PathBuf)>, CorpusError> {
    let mut files = Vec::new();
    let mut pending = vec![folder.to_path_buf()];
    while let Some(directory) = pending.pop() {
        let entries = std::fs::read_dir(&directory)
            .map_err(|source| CorpusError::Io { path: directory.display().to_string(), source })?;
        for entry in entries {
            let entry = entry.map_err(|source| CorpusError::Io { path: directory.display().to_string(), source })?;
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|extension| extension == "md" || extension == "markdown") {
                let relative = path.strip_prefix(folder).unwrap_or(&path);
                let relative =
                    relative.components().map(|part| part.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
                files.push((relative, path));
            }
        }
    }
    files.sort();
    Ok(files)
}
