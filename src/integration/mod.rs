//! The integration door's domain: an external system (a CRM, a help desk, a script) sends one message at
//! a time. It may name the conversation, or an `external_user_id` whose conversation is kept for it, or
//! neither (a new conversation). An `Idempotency-Key` makes a retried request attach to the run the first
//! one started, so a message is never answered twice.

pub mod responses;
pub(crate) mod store;
pub mod whole;

use sha2::{Digest as _, Sha256};
use sqlx::PgPool;

use crate::auth::context::TenantContext;
use crate::conversations::ConversationError;
use crate::db;
use crate::engine::{Engine, EngineError, TurnRequest};
use crate::idempotency::{self, IdempotencyError, IdempotencyKey, Once, Started};
use crate::ids::{RunId, SessionId};

#[derive(Debug, thiserror::Error)]
pub enum IntegrationError {
    #[error("{0}")]
    Invalid(String),
    #[error("no such integration conversation")]
    SessionNotFound,
    #[error(transparent)]
    Idempotency(#[from] IdempotencyError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl From<crate::collections::CollectionError> for IntegrationError {
    fn from(error: crate::collections::CollectionError) -> Self {
        Self::Engine(EngineError::Collection(error))
    }
}

impl From<ConversationError> for IntegrationError {
    fn from(error: ConversationError) -> Self {
        match error {
            ConversationError::NotFound => Self::SessionNotFound,
            ConversationError::Invalid(message) => Self::Invalid(message),
            // The integration door neither edits nor regenerates.
            error @ (ConversationError::MessageNotFound
            | ConversationError::NotAnAnswer
            | ConversationError::NotAUserMessage) => Self::Invalid(error.to_string()),
            ConversationError::Collection(error) => error.into(),
            ConversationError::Database(error) => Self::Database(error),
        }
    }
}

/// A validated integration request.
#[derive(Debug, Clone)]
pub struct IntegrationRequest {
    pub turn: TurnRequest,
    pub session_id: Option<SessionId>,
    pub external_user_id: Option<String>,
    pub metadata: Option<serde_json::Value>,
    pub idempotency_key: Option<IdempotencyKey>,
}

impl IntegrationRequest {
    pub fn parse(
        message: String,
        session_id: Option<SessionId>,
        external_user_id: Option<String>,
        metadata: Option<serde_json::Value>,
        idempotency_key: Option<&str>,
    ) -> Result<Self, IntegrationError> {
        let invalid = |message: &str| IntegrationError::Invalid(message.to_owned());
        if let Some(reason) = external_user_id.as_deref().and_then(crate::users::refuse_external_id) {
            return Err(invalid(reason));
        }
        if metadata.as_ref().is_some_and(|metadata| !metadata.is_object() || metadata.to_string().len() > 16_384) {
            return Err(invalid("metadata must be a JSON object of at most 16 KiB"));
        }
        let idempotency_key = idempotency_key.map(IdempotencyKey::parse).transpose()?;
        let turn = TurnRequest::parse(message, None)?;
        Ok(Self { turn, session_id, external_user_id, metadata, idempotency_key })
    }

    /// What makes two requests the same request, for idempotency.
    fn fingerprint(&self) -> Vec<u8> {
        let canonical = serde_json::json!({
            "message": self.turn.content, "session_id": self.session_id,
            "external_user_id": self.external_user_id, "metadata": self.metadata,
            "collections": self.turn.collections,
        });
        Sha256::digest(canonical.to_string().as_bytes()).to_vec()
    }
}

/// The conversation and run that answer a request: new, or (for a retried key) the first request's.
#[derive(Debug, Clone, Copy)]
pub struct Accepted {
    pub session_id: SessionId,
    pub run_id: RunId,
    pub replayed: bool,
}

/// Idempotency keys of this door are apart from other doors' keys.
const SCOPE: &str = "integration_chat";

pub async fn start(
    pool: &PgPool,
    engine: &Engine,
    context: &TenantContext,
    request: IntegrationRequest,
) -> Result<Accepted, IntegrationError> {
    let fingerprint = request.fingerprint();
    let once = Once { scope: SCOPE, key: request.idempotency_key.as_ref(), fingerprint: &fingerprint };
    let start = async {
        let session_id = conversation(pool, context, &request).await?;
        let started = engine.start_turn(context, session_id, request.turn.clone()).await?;
        Ok::<_, IntegrationError>((session_id, started))
    };
    let (session_id, started) = match idempotency::start_once(pool, context, once, start, |(session_id, started)| {
        (*session_id, started.run.id)
    })
    .await?
    {
        Started::Replayed { session_id, run_id } => return Ok(Accepted { session_id, run_id, replayed: true }),
        Started::New(started) => started,
    };
    if let Some(metadata) = &request.metadata {
        let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
        store::set_message_metadata(&mut transaction, started.user_message.id, metadata).await?;
        transaction.commit().await?;
    }
    Ok(Accepted { session_id, run_id: started.run.id, replayed: false })
}

/// The conversation a request goes to: the one it names, its external user's, or a new one.
async fn conversation(
    pool: &PgPool,
    context: &TenantContext,
    request: &IntegrationRequest,
) -> Result<SessionId, IntegrationError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let user_id = match &request.external_user_id {
        Some(external) => Some(crate::users::store::end_user(&mut transaction, context.tenant_id(), external).await?),
        None => None,
    };
    // A new conversation keeps the collections its first request names, within the key's.
    let collections = match &request.turn.collections {
        Some(names) => crate::collections::narrow(&mut transaction, context.collections(), Some(names)).await?,
        None => crate::auth::context::CollectionScope::All,
    };
    let session_id = match (request.session_id, user_id) {
        (Some(session_id), user_id) => {
            let found = store::integration_session(&mut transaction, session_id).await?;
            match found {
                Some(owner) if user_id.is_none() || owner == user_id => session_id,
                _ => return Err(IntegrationError::SessionNotFound),
            }
        }
        (None, Some(user_id)) => match store::latest_session_of(&mut transaction, user_id).await? {
            Some(session_id) => session_id,
            None => store::new_session(&mut transaction, context, Some(user_id), &collections).await?,
        },
        (None, None) => store::new_session(&mut transaction, context, None, &collections).await?,
    };
    transaction.commit().await?;
    Ok(session_id)
}
