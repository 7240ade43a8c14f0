//! A chat turn started at most once per `Idempotency-Key`: a client that retries a message after a
//! network failure gets the turn its first attempt started (its run and user message), never a second one.

use sha2::{Digest as _, Sha256};

use super::{Branch, Engine, EngineError, StartedTurn, TurnRequest};
use crate::auth::context::TenantContext;
use crate::conversations;
use crate::db;
use crate::idempotency::{self, IdempotencyKey, Once, Started};
use crate::ids::SessionId;
use crate::runs;

/// Keys of the chat door are apart from the other doors' keys.
const IDEMPOTENCY_SCOPE: &str = "session_message";

impl Engine {
    /// [`Engine::start_turn`], unless a request with the same key started it already.
    pub async fn start_turn_once(
        &self,
        context: &TenantContext,
        session_id: SessionId,
        request: TurnRequest,
        key: Option<&IdempotencyKey>,
    ) -> Result<StartedTurn, EngineError> {
        let mut canonical = serde_json::json!({
            "session_id": session_id, "content": request.content, "model": request.model,
        });
        // An edit or a regenerated answer is another request than the same text posted after the branch.
        match request.branch {
            Branch::Continue => {}
            Branch::Edit(id) => canonical["edits"] = serde_json::json!(id),
            Branch::Regenerate(id) => canonical["answers_again"] = serde_json::json!(id),
        }
        let fingerprint = Sha256::digest(canonical.to_string().as_bytes()).to_vec();
        let once = Once { scope: IDEMPOTENCY_SCOPE, key, fingerprint: &fingerprint };
        let start = self.start_turn(context, session_id, request);
        let ids = |started: &StartedTurn| (session_id, started.run.id);
        let run_id = match idempotency::start_once(&self.inner.db, context, once, start, ids).await? {
            Started::New(started) => return Ok(started),
            Started::Replayed { run_id, .. } => run_id,
        };
        let mut transaction = db::begin_tenant(&self.inner.db, context.tenant_id()).await?;
        let run = runs::store::get(&mut transaction, run_id).await?;
        let user_message = conversations::store::user_message_of_run(&mut transaction, run_id).await?;
        transaction.commit().await?;
        match (run, user_message) {
            (Some(run), Some(user_message)) => Ok(StartedTurn { run, user_message }),
            _ => Err(EngineError::Internal(format!("run {run_id} recorded under an idempotency key is missing"))),
        }
    }
}
