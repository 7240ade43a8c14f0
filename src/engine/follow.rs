//! Following a run's events from a sequence number: from memory while this process runs it, else from
//! `run_events`, read again whenever the process writing them notifies (`notify.rs`; a slow poll in case
//! a notice is lost). Every event after `after` is delivered once, in order, and the stream ends after
//! the terminal event (or the pause for an approval).

use std::sync::Arc;

use futures::stream::{self, BoxStream, StreamExt as _};
use sqlx::PgPool;

use super::hub::LiveRun;
use super::notify::Notices;
use crate::db;
use crate::ids::{RunId, TenantId};
use crate::runs;
use crate::runs::events::RunEvent;

pub type EventStream = BoxStream<'static, RunEvent>;

/// The live run's events after `after`. A run resumed in this process holds only the events since its
/// resume; the earlier ones are read from `run_events` first.
pub fn live_with_history(db: PgPool, run_id: RunId, run: Arc<LiveRun>, after: i64) -> EventStream {
    if run.first_seq <= after.saturating_add(1) {
        return live(run, after);
    }
    let (tenant_id, first_seq) = (run.tenant_id, run.first_seq);
    let earlier = stream::once(async move {
        let read = async {
            let mut transaction = db::begin_tenant(&db, tenant_id).await?;
            let events = runs::store::events_after(&mut transaction, run_id, after).await?;
            transaction.commit().await?;
            Ok::<_, sqlx::Error>(events)
        };
        let events = read.await.unwrap_or_else(|error| {
            tracing::warn!(%run_id, %error, "could not read a resumed run's earlier events");
            Vec::new()
        });
        stream::iter(events.into_iter().filter(move |event| event.seq < first_seq))
    })
    .flatten();
    earlier.chain(live(run, first_seq - 1)).boxed()
}

fn live(run: Arc<LiveRun>, after: i64) -> EventStream {
    let published = run.subscribe();
    stream::unfold(Some((run, published, after)), |state| async move {
        let (run, mut published, after) = state?;
        loop {
            // Mark the current count as seen *before* reading, so a publish in between wakes us.
            published.borrow_and_update();
            let batch = run.events_after(after);
            if let Some(last) = batch.last() {
                let next = (!last.kind.ends_stream()).then_some((Arc::clone(&run), published, last.seq));
                return Some((stream::iter(batch), next));
            }
            if published.changed().await.is_err() {
                return None;
            }
        }
    })
    .flatten()
    .boxed()
}

pub fn stored(db: PgPool, notices: &Arc<Notices>, tenant_id: TenantId, run_id: RunId, after: i64) -> EventStream {
    let watch = notices.watch(run_id);
    stream::unfold(Some((after, watch)), move |state| {
        let db = db.clone();
        async move {
            let (mut after, mut watch) = state?;
            let mut first = true;
            loop {
                if !first {
                    watch.wait().await;
                }
                first = false;
                // Seen before reading, so a notice that arrives during the read wakes the next wait.
                watch.mark_seen();
                let Ok((batch, run_ended)) = read(&db, tenant_id, run_id, after).await else {
                    continue;
                };
                let ends_here = batch.last().is_some_and(|event| event.kind.ends_stream());
                if let Some(last) = batch.last() {
                    after = last.seq;
                    let next = (!ends_here && !run_ended).then_some((after, watch));
                    return Some((stream::iter(batch), next));
                }
                if run_ended {
                    return None;
                }
            }
        }
    })
    .flatten()
    .boxed()
}

async fn read(
    db: &PgPool,
    tenant_id: TenantId,
    run_id: RunId,
    after: i64,
) -> Result<(Vec<RunEvent>, bool), sqlx::Error> {
    let mut transaction = db::begin_tenant(db, tenant_id).await?;
    // A paused run's stream ends too; following it again after the approval continues it.
    let ended = runs::store::get(&mut transaction, run_id)
        .await?
        .is_none_or(|run| run.status.is_terminal() || run.status == runs::RunStatus::AwaitingApproval);
    // Read after the status: each statement sees what was committed when it began, and a run's end is
    // committed with its closing events, so a run seen ended has them all in this read. Read before,
    // a run that ended in between would end the stream without them.
    let events = runs::store::events_after(&mut transaction, run_id, after).await?;
    transaction.commit().await?;
    Ok((events, ended))
}
