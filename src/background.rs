//! The service's background work (turns, workers, sweepers, the embedding backfill), tracked in one
//! place so that shutdown can wait for it and stop it: nothing is spawned outside [`Background`].
//!
//! Also the one bound on CPU-heavy work ([`cpu_bound`]): chunking and local inference run on the blocking
//! pool, at most one job per core at a time, so the async workers (every tenant's requests, `/healthz`)
//! always find a core, however many large documents arrive at once.

use std::future::Future;
use std::sync::{Arc, LazyLock};

use tokio::sync::Semaphore;
use tokio::task::JoinError;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[derive(Debug, Clone, Default)]
pub struct Background {
    tasks: TaskTracker,
    stopping: CancellationToken,
}

impl Background {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `task` in the background; shutdown waits for it.
    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        // In the span that started it (a turn in its request's), so its logs and trace say what it belongs to.
        self.tasks.spawn(tracing::Instrument::in_current_span(task));
    }

    /// Cancelled when shutdown begins: loops end at it, turns get a grace period.
    pub fn stopping(&self) -> &CancellationToken {
        &self.stopping
    }

    /// Tells every loop to stop and takes no new work; then [`Self::wait`].
    pub fn stop(&self) {
        self.stopping.cancel();
        self.tasks.close();
    }

    pub async fn wait(&self) {
        self.tasks.wait().await;
    }
}

/// One permit per core for CPU-heavy jobs, process-wide. The blocking pool alone would start a thread for
/// every waiting job (up to 512), and that many busy threads starve the async workers of the cores.
static CPU_PERMITS: LazyLock<Arc<Semaphore>> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    Arc::new(Semaphore::new(cores))
});

/// Runs CPU-heavy `work` (chunking a document, a batch of local inference) on the blocking pool once a
/// core is free, and waits for it; jobs start in the order they asked. An error only if `work` panicked.
///
/// The permit goes with the job, not with this future: a caller that stops waiting (a client hung up)
/// leaves its job holding its core until it ends, so abandoned jobs cannot pile up past the bound.
pub async fn cpu_bound<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, JoinError> {
    let permit = Arc::clone(&CPU_PERMITS).acquire_owned().await.expect("the CPU semaphore is never closed");
    tokio::task::spawn_blocking(move || {
        let _core = permit;
        work()
    })
    .await
}
