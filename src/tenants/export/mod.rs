//! A tenant's data as one archive a script can read: newline-delimited JSON, a manifest first, then one
//! object per line, each with its `type`, then an `end` line with the count of each type (an archive
//! without it was cut short). Read from one read-only snapshot, a page at a time as the client takes
//! it, never held whole in memory. Secrets are never in it (`store.rs` names every field it takes).
//! The format is documented in `docs_corpus/operations.md` ("Tenants over their life").

pub mod store;

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::{Stream, StreamExt as _};
use sqlx::{PgPool, Postgres, Transaction};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::TenantError;
use crate::audit::{self, AuditEntry};
use crate::auth::context::TenantContext;

/// The archive's format name and version, in its manifest; the version changes only when a field changes
/// meaning or goes away (new fields and types may appear in any version).
pub const FORMAT: &str = "switchboard.tenant-export";
pub const VERSION: u32 = 1;

/// Rows per query.
const PAGE: i64 = 200;

/// Exports read at once, in this process. Each holds a database connection and a snapshot for as long as
/// its client takes to read it, so a few slow or stalled downloads must not drain the pool every tenant
/// shares.
pub const AT_ONCE: usize = 2;

/// The places for exports being read in one service: [`AT_ONCE`] of them.
#[derive(Debug, Clone)]
pub struct Exports(Arc<Semaphore>);

impl Default for Exports {
    fn default() -> Self {
        Self(Arc::new(Semaphore::new(AT_ONCE)))
    }
}

/// The kinds of line, in the order they come, and the query each is read with.
const KINDS: &[(&str, &str)] = &[
    ("settings", store::SETTINGS),
    ("profile", store::PROFILE),
    ("user", store::USERS),
    ("api_key", store::API_KEYS),
    ("provider", store::PROVIDERS),
    ("policy_profile", store::POLICY_PROFILES),
    ("prompt_template", store::PROMPT_TEMPLATES),
    ("connector", store::CONNECTORS),
    ("webhook", store::WEBHOOKS),
    ("document", store::DOCUMENTS),
    ("workspace", store::WORKSPACES),
    ("workspace_file", store::WORKSPACE_FILES),
    ("changeset", store::CHANGESETS),
    ("conversation", store::CONVERSATIONS),
    ("feedback", store::FEEDBACK),
    ("usage", store::USAGE),
    ("audit_event", store::AUDIT_EVENTS),
];

/// An export opened: its snapshot taken and its manifest written, ready to be read.
pub struct Export {
    transaction: Transaction<'static, Postgres>,
    /// Its place among the [`AT_ONCE`] exports, given back when the archive is dropped.
    slot: OwnedSemaphorePermit,
    manifest: String,
    pub slug: String,
}

impl std::fmt::Debug for Export {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Export").field("slug", &self.slug).finish_non_exhaustive()
    }
}

/// Records the export in the tenant's audit trail, then opens the snapshot it is read from; refused while
/// [`AT_ONCE`] exports are being read.
pub async fn open(pool: &PgPool, exports: &Exports, context: &TenantContext) -> Result<Export, TenantError> {
    let slot = Arc::clone(&exports.0).try_acquire_owned().map_err(|_| TenantError::ExportsBusy)?;
    let mut transaction = crate::db::begin_tenant(pool, context.tenant_id()).await?;
    let entry = AuditEntry::new("tenant.exported", "tenant", context.tenant_id().to_string())
        .with_details(serde_json::json!({ "format": FORMAT, "version": VERSION }));
    audit::record(&mut transaction, context, &entry).await?;
    transaction.commit().await?;

    let mut transaction = pool.begin().await?;
    store::snapshot(&mut transaction).await?;
    crate::db::set_tenant(&mut transaction, context.tenant_id()).await?;
    let tenant = store::tenant(&mut transaction).await?;
    let slug = tenant["slug"].as_str().unwrap_or_default().to_owned();
    let manifest = serde_json::json!({
        "type": "manifest",
        "format": FORMAT,
        "version": VERSION,
        "tenant": tenant,
        "exported_at": chrono::Utc::now(),
        "types": KINDS.iter().map(|(kind, _)| *kind).collect::<Vec<_>>(),
    });
    Ok(Export { transaction, slot, manifest: line(&manifest), slug })
}

impl Export {
    /// The archive, a chunk of lines at a time: the manifest, a page of each kind in turn, the `end`
    /// line. A database error ends the stream with that error (and without the `end` line).
    pub fn lines(self) -> impl Stream<Item = Result<String, sqlx::Error>> + Send + 'static {
        let reading =
            Reading { transaction: self.transaction, _slot: self.slot, kind: 0, after: None, counts: BTreeMap::new() };
        let first = futures::stream::once(std::future::ready(Ok(self.manifest)));
        let rest = futures::stream::unfold(Some(reading), |reading| async move {
            let mut reading = reading?;
            loop {
                let Some((kind, query)) = KINDS.get(reading.kind) else {
                    let end = line(&serde_json::json!({ "type": "end", "counts": reading.counts }));
                    return match reading.transaction.commit().await {
                        Ok(()) => Some((Ok(end), None)),
                        Err(error) => Some((Err(error), None)),
                    };
                };
                let rows = match store::page(&mut reading.transaction, query, reading.after.as_deref(), PAGE).await {
                    Ok(rows) => rows,
                    Err(error) => return Some((Err(error), None)),
                };
                if i64::try_from(rows.len()).is_ok_and(|count| count < PAGE) {
                    reading.kind += 1;
                    reading.after = None;
                } else {
                    reading.after = rows.last().map(|(key, _)| key.clone());
                }
                *reading.counts.entry(*kind).or_insert(0) += rows.len();
                if rows.is_empty() {
                    continue;
                }
                let chunk: String = rows.iter().map(|(_, value)| line(value)).collect();
                return Some((Ok(chunk), Some(reading)));
            }
        });
        first.chain(rest)
    }
}

struct Reading {
    transaction: Transaction<'static, Postgres>,
    _slot: OwnedSemaphorePermit,
    kind: usize,
    after: Option<String>,
    counts: BTreeMap<&'static str, usize>,
}

fn line(value: &serde_json::Value) -> String {
    let mut line = value.to_string();
    line.push('\n');
    line
}
