//! This process as the executor of runs: a random number, recorded on every run it executes and held as
//! a PostgreSQL advisory lock on a connection of its own for as long as the process lives. A killed
//! process's connection closes and PostgreSQL drops the lock at once, so any process can tell that its
//! runs are dead (`executor_alive` in the migrations) without waiting for their heartbeat to grow old.
//!
//! The lock belongs to a session, so its connection must reach PostgreSQL itself: through a pooler in
//! transaction mode it would be taken on whichever server connection the pooler lent, and held there for
//! other clients. `serve` names the direct connection ([`connect_directly`]).

use std::sync::OnceLock;

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection as _, PgConnection, PgPool};
use tokio::sync::Mutex;

use super::{ExecutorId, store};

/// Where the lock's connection goes, when not where the pool's do; set once at start.
static DIRECT: OnceLock<PgConnectOptions> = OnceLock::new();

/// Makes every [`Presence`] of this process hold its lock on a connection made with `options` (a direct
/// connection to PostgreSQL, as the application role) rather than with the pool's options. Called once,
/// before the engine starts; a later call is ignored.
pub fn connect_directly(options: PgConnectOptions) {
    let _ = DIRECT.set(options);
}

/// The lock that says this process is alive, and the connection holding it.
#[derive(Debug)]
pub struct Presence {
    id: ExecutorId,
    pool: PgPool,
    holder: Mutex<Option<PgConnection>>,
}

impl Presence {
    /// Takes a new executor number's lock; the process may execute runs once this returns.
    pub async fn take(pool: &PgPool) -> Result<Self, sqlx::Error> {
        let presence = Self { id: ExecutorId::random(), pool: pool.clone(), holder: Mutex::new(None) };
        presence.keep().await?;
        Ok(presence)
    }

    pub fn id(&self) -> ExecutorId {
        self.id
    }

    /// Checks that the lock is still held and takes it again on a new connection if it was lost (the
    /// database restarted). Until then other processes see this one's runs as dead: a run they close
    /// meanwhile is cancelled here by its next heartbeat.
    pub async fn keep(&self) -> Result<(), sqlx::Error> {
        let mut holder = self.holder.lock().await;
        if let Some(connection) = holder.as_mut() {
            if connection.ping().await.is_ok() {
                return Ok(());
            }
            tracing::warn!("lost the connection holding this process's executor lock; taking it again");
        }
        *holder = None;
        let options = DIRECT.get().cloned().unwrap_or_else(|| (*self.pool.connect_options()).clone());
        let mut connection = PgConnection::connect_with(&options).await?;
        store::lock_executor(&mut connection, self.id).await?;
        *holder = Some(connection);
        Ok(())
    }

    /// Lets the lock go, when the process has nothing left running.
    pub async fn release(&self) {
        if let Some(connection) = self.holder.lock().await.take() {
            let _ = connection.close().await;
        }
    }
}
