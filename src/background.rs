//! The service's background work (turns, workers, sweepers, the embedding backfill), tracked in one
//! place so that shutdown can wait for it and stop it: nothing is spawned outside [`Background`].

use std::future::Future;

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
        self.tasks.spawn(task);
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
