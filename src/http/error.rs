//! The API's one error type: `{"error": {"code", "message", "request_id"}}` with a fitting status.
//! Domain errors convert into it here; 5xx causes are logged and answered with a generic message.

use std::borrow::Cow;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::request_id;
use crate::api_keys::ApiKeyError;
use crate::auth::AuthError;
use crate::auth::context::MissingScope;
use crate::collections::CollectionError;
use crate::conversations::ConversationError;
use crate::engine::{EngineError, RunFailure};
use crate::idempotency::IdempotencyError;
use crate::integration::IntegrationError;
use crate::policy::profiles::ProfileError;
use crate::providers::byok::ByokError;
use crate::rate_limits::RateLimitError;
use crate::retrieval::RetrievalError;
use crate::retrieval::formats::FormatError;
use crate::tenants::TenantError;
use crate::tools::ToolError;
use crate::webhooks::WebhookError;
use crate::workspaces::WorkspaceError;
use crate::workspaces::archive::ArchiveError;
use crate::workspaces::changesets::ChangesetError;

/// How long a client is asked to wait while the database is unavailable: an embedded server that died is
/// back within a few seconds.
const DATABASE_RETRY_AFTER_SECONDS: u64 = 2;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    /// Stable and snake_case: a literal here, or a failed run's code as the engine recorded it.
    pub code: Cow<'static, str>,
    pub message: String,
    pub retry_after_seconds: Option<u64>,
    /// More for a client to act on, as `error.details` (a changeset's conflicting paths).
    pub details: Option<serde_json::Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code: Cow::Borrowed(code), message: message.into(), retry_after_seconds: None, details: None }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", message)
    }

    /// A 422 with a code of its own, for a kind of bad input clients may want to tell apart.
    pub fn invalid_code(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// A failure the client cannot fix: logged in full, answered generically.
    pub fn internal(error: &(dyn std::error::Error + 'static)) -> Self {
        tracing::error!(error = %error, source = ?error.source(), "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "an internal error occurred")
    }

    /// A database error: 503 `database_unavailable` with a `Retry-After` when the database cannot be reached
    /// (it is restarting, the network is down, the pool is exhausted), so clients retry rather than give
    /// up; any other database error is a bug of ours and stays a 500.
    pub fn database(error: &sqlx::Error) -> Self {
        if !crate::db::is_unavailable(error) {
            return Self::internal(error);
        }
        tracing::warn!(%error, "the database is unavailable");
        Self::database_unavailable()
    }

    /// The answer while the database cannot be reached; the message says nothing of the cause.
    pub fn database_unavailable() -> Self {
        Self {
            retry_after_seconds: Some(DATABASE_RETRY_AFTER_SECONDS),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "database_unavailable",
                "the database is unavailable; try again shortly",
            )
        }
    }

    /// The error a bare status would get, for responses made outside our handlers (405, 413, panics…).
    pub fn from_status(status: StatusCode) -> Self {
        let (code, message) = match status {
            StatusCode::NOT_FOUND => ("not_found", "no such route"),
            StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", "this route does not accept that method"),
            StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "the request body is too large"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported_media_type", "expected Content-Type: application/json"),
            StatusCode::REQUEST_TIMEOUT => ("request_timeout", "the request took too long"),
            StatusCode::UNAUTHORIZED => ("unauthorized", "missing or invalid credentials"),
            StatusCode::FORBIDDEN => ("forbidden", "not allowed"),
            status if status.is_server_error() => ("internal_error", "an internal error occurred"),
            _ => ("bad_request", "the request could not be processed"),
        };
        Self::new(status, code, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({
            "error": {
                "code": self.code,
                "message": self.message,
                "request_id": request_id::current(),
            }
        });
        if let Some(details) = self.details {
            body["error"]["details"] = details;
        }
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after_seconds {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<crate::catalog::tenant::TenantModelError> for ApiError {
    fn from(error: crate::catalog::tenant::TenantModelError) -> Self {
        use crate::catalog::tenant::TenantModelError;
        match error {
            TenantModelError::Invalid(message) => Self::invalid(message),
            TenantModelError::NotFound => Self::not_found("no such model"),
            TenantModelError::Database(error) => Self::database(&error),
        }
    }
}

impl From<RunFailure> for ApiError {
    /// A run that failed, answered to a client that waited for it: upstream failures are 502 (504 for a
    /// timeout), a refused option 400, with the run's stable code; the run id tells where its events and
    /// messages are.
    fn from(failure: RunFailure) -> Self {
        let status = match failure.code.as_str() {
            "upstream_timeout" => StatusCode::GATEWAY_TIMEOUT,
            code if code.starts_with("upstream_") => StatusCode::BAD_GATEWAY,
            "provider_not_configured" => StatusCode::UNPROCESSABLE_ENTITY,
            // The caller asked for an option the chosen provider cannot honour.
            "unsupported_parameter" => StatusCode::BAD_REQUEST,
            "database_unavailable" => StatusCode::SERVICE_UNAVAILABLE,
            "budget_exhausted" => StatusCode::PAYMENT_REQUIRED,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let message = format!("run {} failed: {}", failure.run_id, failure.message);
        let retry_after_seconds = (status == StatusCode::SERVICE_UNAVAILABLE).then_some(DATABASE_RETRY_AFTER_SECONDS);
        Self { status, code: Cow::Owned(failure.code), message, retry_after_seconds, details: None }
    }
}

impl From<MissingScope> for ApiError {
    fn from(MissingScope(scope): MissingScope) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", format!("this API key lacks the `{scope}` scope"))
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::MissingToken => {
                Self::new(StatusCode::UNAUTHORIZED, "unauthorized", "an Authorization: Bearer token is required")
            }
            AuthError::InvalidToken => {
                Self::new(StatusCode::UNAUTHORIZED, "unauthorized", "the token is invalid, expired or revoked")
            }
            AuthError::MissingScope(missing) => missing.into(),
            error @ AuthError::TenantSuspended => {
                Self::new(StatusCode::FORBIDDEN, "tenant_suspended", error.to_string())
            }
            AuthError::Database(error) => Self::database(&error),
        }
    }
}

impl From<ApiKeyError> for ApiError {
    fn from(error: ApiKeyError) -> Self {
        match error {
            ApiKeyError::Invalid(message) => Self::invalid(message),
            ApiKeyError::NotFound => Self::not_found("no such API key"),
            ApiKeyError::Collection(error) => error.into(),
            error @ ApiKeyError::UnknownProfile(_) => Self::invalid_code("unknown_policy_profile", error.to_string()),
            ApiKeyError::Database(error) => Self::database(&error),
        }
    }
}

impl From<TenantError> for ApiError {
    fn from(error: TenantError) -> Self {
        match error {
            TenantError::Invalid(message) => Self::invalid(message),
            TenantError::Unsupported(message) => Self::bad_request("unsupported_setting", message),
            error @ TenantError::SlugTaken(_) => Self::conflict("slug_taken", error.to_string()),
            TenantError::NotFound => Self::not_found("no such tenant"),
            error @ TenantError::SystemTenant => Self::conflict("system_tenant", error.to_string()),
            error @ TenantError::ConfirmationRequired => Self::invalid_code("confirmation_required", error.to_string()),
            error @ TenantError::NotSuspended => Self::conflict("tenant_not_suspended", error.to_string()),
            error @ TenantError::RerankerUnavailable => Self::invalid_code("reranker_unavailable", error.to_string()),
            error @ TenantError::ExportsBusy => Self {
                retry_after_seconds: Some(30),
                ..Self::new(StatusCode::TOO_MANY_REQUESTS, "too_many_exports", error.to_string())
            },
            TenantError::Database(error) => Self::database(&error),
        }
    }
}

impl From<crate::tenants::profile::ProfileError> for ApiError {
    fn from(error: crate::tenants::profile::ProfileError) -> Self {
        use crate::tenants::profile::ProfileError;
        match error {
            ProfileError::Invalid(message) => Self::invalid_code("invalid_profile", message),
            error @ ProfileError::TooLarge(_) => Self::invalid_code("profile_too_large", error.to_string()),
            ProfileError::Database(error) => Self::database(&error),
        }
    }
}

impl From<crate::prompts::tenant::PromptTemplateError> for ApiError {
    fn from(error: crate::prompts::tenant::PromptTemplateError) -> Self {
        use crate::prompts::tenant::PromptTemplateError;
        match error {
            PromptTemplateError::Invalid(error) => Self {
                details: Some(serde_json::json!({ "line": error.line })),
                ..Self::invalid_code("invalid_template", error.message)
            },
            PromptTemplateError::BadRequest(message) => Self::invalid(message),
            PromptTemplateError::NotFound => Self::not_found("no such prompt template version"),
            PromptTemplateError::Database(error) => Self::database(&error),
        }
    }
}

impl From<crate::feedback::FeedbackError> for ApiError {
    fn from(error: crate::feedback::FeedbackError) -> Self {
        use crate::feedback::FeedbackError;
        match error {
            FeedbackError::Invalid(message) => Self::invalid_code("invalid_feedback", message),
            FeedbackError::MessageNotFound => Self::not_found("no such message"),
            error @ FeedbackError::NotAnAnswer => Self::invalid_code("not_an_answer", error.to_string()),
            FeedbackError::Database(error) => Self::database(&error),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        Self::database(&error)
    }
}

impl From<ConversationError> for ApiError {
    fn from(error: ConversationError) -> Self {
        match error {
            ConversationError::NotFound => Self::not_found("no such conversation"),
            ConversationError::MessageNotFound => Self::not_found("no such message"),
            error @ ConversationError::NotAnAnswer => Self::invalid_code("not_an_answer", error.to_string()),
            error @ ConversationError::NotAUserMessage => Self::invalid_code("not_a_user_message", error.to_string()),
            ConversationError::Invalid(message) => Self::invalid(message),
            ConversationError::Collection(error) => error.into(),
            ConversationError::Database(error) => Self::database(&error),
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> Self {
        match error {
            EngineError::SessionNotFound => Self::not_found("no such conversation"),
            EngineError::RunNotFound => Self::not_found("no such run"),
            EngineError::Idempotency(error) => error.into(),
            EngineError::BudgetExhausted(error) => {
                crate::metrics::refused("budget");
                Self::new(StatusCode::PAYMENT_REQUIRED, "budget_exhausted", error.to_string())
            }
            EngineError::ModelNotFound(unknown) => Self::new(StatusCode::NOT_FOUND, "model_not_found", unknown.reason),
            EngineError::RunEnded => Self::conflict("run_ended", "the run has already ended"),
            EngineError::ToolCallNotFound => Self::not_found("no such tool call"),
            error @ EngineError::ToolCallDecided => Self::conflict("tool_call_decided", error.to_string()),
            error @ EngineError::RunNotWaiting => Self::conflict("run_not_waiting", error.to_string()),
            EngineError::WorkspaceNotFound => Self::not_found("no such workspace"),
            EngineError::Internal(message) => Self::internal(&std::io::Error::other(message)),
            EngineError::Invalid(message) => Self::invalid(message),
            EngineError::Collection(error) => error.into(),
            EngineError::Database(error) => Self::database(&error),
        }
    }
}

impl From<ByokError> for ApiError {
    fn from(error: ByokError) -> Self {
        match error {
            error @ ByokError::UnknownProvider(_) => Self::not_found(error.to_string()),
            ByokError::Invalid(message) => Self::invalid(message),
            ByokError::NotFound => Self::not_found("no key is stored for this provider"),
            ByokError::Database(error) => Self::database(&error),
        }
    }
}

impl From<ToolError> for ApiError {
    fn from(error: ToolError) -> Self {
        match error {
            ToolError::Invalid(message) => Self::invalid(message),
            ToolError::NotFound => Self::not_found("no such connector"),
            error @ ToolError::NameTaken(_) => Self::conflict("connector_name_taken", error.to_string()),
            ToolError::SessionNotFound => Self::not_found("no such conversation"),
            ToolError::AttachmentNotFound => Self::not_found("no such attached resource"),
            ToolError::PromptNotFound => Self::not_found("no such prompt"),
            ToolError::ResourceNotAllowed(message) => Self::new(StatusCode::FORBIDDEN, "resource_not_allowed", message),
            ToolError::UnsupportedResource(message) => Self::invalid_code("unsupported_resource", message),
            error @ ToolError::ResourceTooLarge { .. } => Self::invalid_code("resource_too_large", error.to_string()),
            error @ ToolError::TooManyResources(_) => Self::conflict("too_many_resources", error.to_string()),
            // The server's failure, under its own code (`tool_unreachable`, `tool_timeout`, …).
            ToolError::Upstream(failure) => Self::new(StatusCode::BAD_GATEWAY, failure.code(), failure.to_string()),
            // The authorization server's failure, or one of its answers Switchboard cannot use.
            ToolError::OAuth(message) => Self::new(StatusCode::BAD_GATEWAY, "oauth_failed", message),
            error @ ToolError::OAuthState => {
                Self::new(StatusCode::BAD_REQUEST, "oauth_state_invalid", error.to_string())
            }
            ToolError::Crypto(error) => Self::internal(&error),
            ToolError::Database(error) => Self::database(&error),
        }
    }
}

impl From<IntegrationError> for ApiError {
    fn from(error: IntegrationError) -> Self {
        match error {
            IntegrationError::Invalid(message) => Self::invalid(message),
            IntegrationError::SessionNotFound => Self::not_found("no such integration conversation"),
            IntegrationError::Idempotency(error) => error.into(),
            IntegrationError::Engine(error) => error.into(),
            IntegrationError::Database(error) => Self::database(&error),
        }
    }
}

impl From<WorkspaceError> for ApiError {
    fn from(error: WorkspaceError) -> Self {
        match error {
            WorkspaceError::Invalid(message) => Self::invalid(message),
            WorkspaceError::NotFound => Self::not_found("no such workspace"),
            error @ WorkspaceError::NameTaken(_) => Self::conflict("workspace_name_taken", error.to_string()),
            error @ WorkspaceError::FileNotFound(_) => {
                Self::new(StatusCode::NOT_FOUND, "file_not_found", error.to_string())
            }
            error @ WorkspaceError::PreconditionFailed(_) => {
                Self::new(StatusCode::PRECONDITION_FAILED, "precondition_failed", error.to_string())
            }
            error @ WorkspaceError::FileExists(_) => Self::conflict("file_exists", error.to_string()),
            error @ WorkspaceError::QuotaExceeded { .. } => {
                Self::conflict("workspace_quota_exceeded", error.to_string())
            }
            error @ WorkspaceError::FileTooLarge => {
                Self::new(StatusCode::PAYLOAD_TOO_LARGE, "file_too_large", error.to_string())
            }
            WorkspaceError::Archive(error) => error.into(),
            WorkspaceError::Database(error) => Self::database(&error),
        }
    }
}

impl From<ChangesetError> for ApiError {
    fn from(error: ChangesetError) -> Self {
        let message = error.to_string();
        match error {
            ChangesetError::NotFound => Self::new(StatusCode::NOT_FOUND, "changeset_not_found", message),
            ChangesetError::WorkspaceNotFound => Self::not_found(message),
            ChangesetError::Invalid(_) => Self::invalid(message),
            ChangesetError::InvalidDiff(_) => Self::invalid_code("invalid_diff", message),
            ChangesetError::Refused(_) => Self::invalid_code("invalid_change", message),
            ChangesetError::InvalidTransition { .. } => Self::conflict("invalid_transition", message),
            ChangesetError::RunInProgress => Self::conflict("run_in_progress", message),
            ChangesetError::Conflict { conflicts } => Self {
                details: Some(json!({ "conflicts": conflicts })),
                ..Self::conflict("changeset_conflict", message)
            },
            ChangesetError::Workspace(error) => error.into(),
            ChangesetError::Database(error) => Self::database(&error),
        }
    }
}

impl From<ArchiveError> for ApiError {
    /// An archive refused, with a code per reason: 422 for what it holds, 413 for its size.
    fn from(error: ArchiveError) -> Self {
        let message = error.to_string();
        match error {
            ArchiveError::Invalid(_) => Self::invalid_code("invalid_archive", message),
            ArchiveError::UnsafePath(_) => Self::invalid_code("archive_unsafe_path", message),
            ArchiveError::Link(_) => Self::invalid_code("archive_link", message),
            ArchiveError::Binary(_) => Self::invalid_code("binary_file", message),
            ArchiveError::TooManyEntries => {
                Self::new(StatusCode::PAYLOAD_TOO_LARGE, "archive_too_many_entries", message)
            }
            ArchiveError::EntryTooLarge(_) => Self::new(StatusCode::PAYLOAD_TOO_LARGE, "file_too_large", message),
            ArchiveError::TooLarge => Self::new(StatusCode::PAYLOAD_TOO_LARGE, "archive_too_large", message),
        }
    }
}

impl From<IdempotencyError> for ApiError {
    fn from(error: IdempotencyError) -> Self {
        match error {
            error @ IdempotencyError::KeyReused => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused", error.to_string())
            }
            error @ IdempotencyError::InProgress => Self {
                retry_after_seconds: Some(1),
                ..Self::conflict("idempotency_key_in_progress", error.to_string())
            },
            error @ IdempotencyError::InvalidKey => Self::bad_request("invalid_request", error.to_string()),
            IdempotencyError::Database(error) => Self::database(&error),
        }
    }
}

impl From<ProfileError> for ApiError {
    fn from(error: ProfileError) -> Self {
        match error {
            ProfileError::Invalid(error) => Self::invalid(error.0),
            ProfileError::NotFound => Self::not_found("no such policy profile"),
            error @ ProfileError::NameTaken(_) => Self::conflict("policy_profile_name_taken", error.to_string()),
            error @ ProfileError::Active => Self::conflict("policy_profile_active", error.to_string()),
            ProfileError::GroupNotFound => Self::not_found("no such policy group"),
            error @ ProfileError::UnknownProfile(_) => Self::invalid_code("unknown_policy_profile", error.to_string()),
            ProfileError::InUse { ref keys, ref groups } => Self {
                details: Some(serde_json::json!({ "api_key_ids": keys, "policy_groups": groups })),
                ..Self::conflict("policy_profile_in_use", error.to_string())
            },
            ProfileError::Database(error) => Self::database(&error),
        }
    }
}

impl From<RateLimitError> for ApiError {
    /// Over a rate limit, 429 `rate_limited`; at the cap on running runs, 429 `too_many_runs`; both with
    /// `Retry-After`. The message says which limit and when to try again.
    fn from(error: RateLimitError) -> Self {
        match error {
            RateLimitError::Limited(refusal) => Self {
                retry_after_seconds: Some(refusal.retry_after_seconds()),
                ..Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", refusal.to_string())
            },
            RateLimitError::TooManyRuns(refusal) => Self {
                retry_after_seconds: Some(refusal.retry_after_seconds()),
                ..Self::new(StatusCode::TOO_MANY_REQUESTS, "too_many_runs", refusal.to_string())
            },
            RateLimitError::Invalid(message) => Self::invalid_code("invalid_rate_limit", message),
            RateLimitError::ApiKeyNotFound => Self::not_found("no such API key"),
            RateLimitError::Database(error) => Self::database(&error),
        }
    }
}

impl From<RetrievalError> for ApiError {
    fn from(error: RetrievalError) -> Self {
        match error {
            RetrievalError::Invalid(message) => Self::invalid(message),
            error @ RetrievalError::TooLarge => {
                Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", error.to_string())
            }
            RetrievalError::NotFound => Self::not_found("no such document"),
            error @ RetrievalError::EmbeddingsUnavailable => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "embeddings_unavailable", error.to_string())
            }
            RetrievalError::UnknownModel(message) => Self::new(StatusCode::NOT_FOUND, "model_not_found", message),
            error @ RetrievalError::RerankerUnavailable => {
                Self::invalid_code("reranker_unavailable", error.to_string())
            }
            RetrievalError::BudgetExhausted(error) => {
                crate::metrics::refused("budget");
                Self::new(StatusCode::PAYMENT_REQUIRED, "budget_exhausted", error.to_string())
            }
            RetrievalError::Embedding(crate::embeddings::EmbeddingError::Provider(error)) => {
                let status = if error.code() == "upstream_timeout" {
                    StatusCode::GATEWAY_TIMEOUT
                } else {
                    StatusCode::BAD_GATEWAY
                };
                Self::new(status, error.code(), error.to_string())
            }
            RetrievalError::Embedding(error) => {
                Self::new(StatusCode::BAD_GATEWAY, "upstream_bad_response", error.to_string())
            }
            RetrievalError::Collection(error) => error.into(),
            RetrievalError::Database(error) => Self::database(&error),
        }
    }
}

impl From<CollectionError> for ApiError {
    fn from(error: CollectionError) -> Self {
        match error {
            CollectionError::Invalid(message) => Self::invalid_code("invalid_collection", message),
            error @ CollectionError::Unknown(_) => Self::invalid_code("unknown_collection", error.to_string()),
            CollectionError::NotFound => Self::not_found("no such collection"),
            error @ CollectionError::NameTaken(_) => Self::conflict("collection_exists", error.to_string()),
            error @ CollectionError::NotEmpty(_) => Self::conflict("collection_not_empty", error.to_string()),
            error @ CollectionError::Shared => Self::conflict("shared_collection", error.to_string()),
            error @ CollectionError::Forbidden(_) => {
                Self::new(StatusCode::FORBIDDEN, "collection_forbidden", error.to_string())
            }
            CollectionError::Database(error) => Self::database(&error),
        }
    }
}

impl From<FormatError> for ApiError {
    /// A file the service cannot read is refused with what kind of file it is: 422 and a code per reason;
    /// 413 for one too large.
    fn from(error: FormatError) -> Self {
        match error {
            FormatError::Unsupported(message) => Self::invalid_code("unsupported_document_format", message),
            FormatError::Unreadable(message) => Self::invalid_code("unreadable_document", message),
            FormatError::Encrypted(message) => Self::invalid_code("encrypted_document", message),
            error @ (FormatError::TooLarge { .. } | FormatError::TooMuchText) => {
                Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", error.to_string())
            }
        }
    }
}

impl From<WebhookError> for ApiError {
    fn from(error: WebhookError) -> Self {
        match error {
            WebhookError::Invalid(message) => Self::invalid(message),
            error @ WebhookError::UnknownEvent(_) => Self::bad_request("unknown_webhook_event", error.to_string()),
            error @ WebhookError::TooMany => Self::conflict("too_many_webhooks", error.to_string()),
            WebhookError::NotFound => Self::not_found("no such webhook"),
            WebhookError::DeliveryNotFound => Self::not_found("no such delivery of this webhook"),
            error @ WebhookError::Disabled => Self::conflict("webhook_disabled", error.to_string()),
            WebhookError::Crypto(error) => Self::internal(&error),
            WebhookError::Database(error) => Self::database(&error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_database_is_a_503_to_retry_and_a_bad_query_a_500() {
        let unavailable = ApiError::database(&sqlx::Error::PoolTimedOut);
        assert_eq!(unavailable.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(unavailable.code, "database_unavailable");
        assert_eq!(unavailable.retry_after_seconds, Some(DATABASE_RETRY_AFTER_SECONDS));
        let response = ApiError::from(TenantError::Database(sqlx::Error::PoolClosed)).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(response.headers().contains_key(header::RETRY_AFTER));

        let bug = ApiError::database(&sqlx::Error::RowNotFound);
        assert_eq!(bug.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(bug.code, "internal_error");
    }
}
