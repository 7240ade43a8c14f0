//! The shared documentation corpus: every document file under a folder (Markdown, and the other formats
//! `formats` reads: PDF, DOCX, HTML, CSV, plain text), ingested into the system tenant.
//! Unchanged files cost a hash lookup, changed ones are replaced, removed ones are removed.

use std::path::Path;

use sqlx::PgPool;

use super::formats::{self, Format, FormatError, Hints};
use super::{IngestOutcome, NewDocument, Original, Preparation, RetrievalError, prepare, store, writer};
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
    /// A file that could not be made Markdown (encrypted, damaged, too large).
    #[error("{path}: {source}")]
    Format { path: String, source: FormatError },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Files prepared (read, converted, chunked, embedded) at once, and written in one transaction.
const BATCH_FILES: usize = 32;
const PREPARED_AT_ONCE: usize = 4;

/// Ingests the document files under `folder` (paths relative to it) into `tenant`'s documents, with
/// `embedder`'s vectors, [`BATCH_FILES`] at a time in one transaction (`writer`: each document still
/// changes atomically, and the BM25 statistics take one net change per batch); with `remove_missing`,
/// documents without a file are removed, so the documents mirror the folder. `progress` is called after
/// each file with how many are done, of how many, and the file's path.
pub async fn sync(
    pool: &PgPool,
    tenant: TenantId,
    folder: &Path,
    embedder: Option<&Embedder>,
    remove_missing: bool,
    mut progress: impl FnMut(usize, usize, &str),
) -> Result<SyncReport, CorpusError> {
    use futures::StreamExt as _;
    let files = document_files(folder)?;
    let mut report = SyncReport::default();
    let mut seen = std::collections::HashSet::new();
    let total = files.len();
    let mut done = 0;
    for group in files.chunks(BATCH_FILES) {
        let prepared: Vec<(String, Preparation)> = futures::stream::iter(group)
            .map(|(relative, path)| async move {
                let preparation = prepare_file(pool, tenant, relative, path, embedder).await?;
                Ok::<_, CorpusError>((relative.clone(), preparation))
            })
            .buffered(PREPARED_AT_ONCE)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_, _>>()?;
        let mut outcomes = Vec::new();
        let mut to_write = Vec::new();
        let mut written_paths = Vec::new();
        for (relative, preparation) in prepared {
            match preparation {
                Preparation::Done((_, outcome)) => outcomes.push((relative, Ok(outcome))),
                Preparation::Write(document) => {
                    written_paths.push(relative);
                    to_write.push(*document);
                }
            }
        }
        let written = writer::write(pool, tenant, to_write).await;
        outcomes.extend(
            written_paths.into_iter().zip(written).map(|(path, saved)| (path, saved.map(|(_, outcome)| outcome))),
        );
        for (relative, outcome) in outcomes {
            match outcome.map_err(|source| CorpusError::Document { path: relative.clone(), source })? {
                IngestOutcome::Created => report.created += 1,
                IngestOutcome::Updated => report.updated += 1,
                IngestOutcome::Unchanged => report.unchanged += 1,
            }
            done += 1;
            progress(done, total, &relative);
            seen.insert(relative);
        }
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

/// One file read, converted and prepared for writing.
async fn prepare_file(
    pool: &PgPool,
    tenant: TenantId,
    relative: &str,
    path: &Path,
    embedder: Option<&Embedder>,
) -> Result<Preparation, CorpusError> {
    let (content, original) = read_file(path, relative).await?;
    let document = NewDocument::parse(relative, None, content)
        .map(|document| document.with_original(original))
        .and_then(|document| {
            // The shared corpus has one collection, which tenants enable.
            if tenant == TenantId::SYSTEM {
                document.in_collections(&[crate::collections::SHARED_CORPUS.to_owned()])
            } else {
                Ok(document)
            }
        })
        .map_err(|source| CorpusError::Document { path: relative.to_owned(), source })?;
    prepare(pool, tenant, &document, embedder, None)
        .await
        .map_err(|source| CorpusError::Document { path: relative.to_owned(), source })
}

/// A file as Markdown (as an upload would be converted, off the async workers), and what it was.
async fn read_file(path: &Path, relative: &str) -> Result<(String, Original), CorpusError> {
    use std::io::Read as _;
    let io_error = |source| CorpusError::Io { path: path.display().to_string(), source };
    // One byte past the largest file of any format is enough to refuse it: a huge file is not read whole.
    let mut bytes = Vec::new();
    let file = std::fs::File::open(path).map_err(io_error)?;
    file.take(formats::MAX_FILE_BYTES as u64 + 1).read_to_end(&mut bytes).map_err(io_error)?;
    let byte_size = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
    let hints = Hints { file_name: Some(relative.to_owned()), media_type: None };
    let converted = formats::convert_in_background(bytes, hints)
        .await
        .map_err(|source| CorpusError::Format { path: relative.to_owned(), source })?;
    Ok((converted.markdown, Original { media_type: converted.format.media_type().to_owned(), byte_size }))
}

/// The files under `folder` of a format we read (by extension), as (path relative to it with `/`, full
/// path), sorted.
fn document_files(folder: &Path) -> Result<Vec<(String, std::path::PathBuf)>, CorpusError> {
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
            } else if path.file_name().is_some_and(|name| Format::is_known_file_name(&name.to_string_lossy())) {
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
