//! Identifier newtypes: a tenant's id cannot be passed where a key's id is expected. New ids are UUIDv7,
//! so they sort by creation time.

use std::fmt;

macro_rules! define_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize, sqlx::Type)]
        #[serde(transparent)]
        #[sqlx(transparent)]
        pub struct $name(pub uuid::Uuid);

        impl $name {
            pub fn new() -> Self {
                Self(uuid::Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(formatter)
            }
        }

        impl From<uuid::Uuid> for $name {
            fn from(value: uuid::Uuid) -> Self {
                Self(value)
            }
        }
    };
}

define_id!(
    /// An organisation using Switchboard; every tenant-scoped row carries one.
    TenantId
);
define_id!(ApiKeyId);
define_id!(UserId);
define_id!(AuditEventId);

impl TenantId {
    /// The tenant that owns the shared documentation corpus, readable by every tenant.
    pub const SYSTEM: Self = Self(uuid::Uuid::nil());
}
define_id!(
    /// A conversation (`chat_sessions`).
    SessionId
);
define_id!(MessageId);
define_id!(
    /// One execution of the engine: a chat turn or an agent run.
    RunId
);
define_id!(UsageRecordId);
define_id!(PolicyProfileId);
define_id!(ConnectorId);
define_id!(
    /// An MCP resource attached to a conversation.
    AttachmentId
);
define_id!(ToolCallId);
define_id!(WorkspaceId);
define_id!(
    /// A named set of a tenant's documents, which callers may be limited to.
    CollectionId
);

impl CollectionId {
    /// The shared corpus's one collection, which a tenant enables in its settings.
    pub const SHARED_CORPUS: Self = Self(uuid::Uuid::from_u128(0xc0de));
}
define_id!(
    /// Changes proposed to a workspace's files, reviewed and applied together.
    ChangesetId
);
define_id!(ArtifactId);
define_id!(
    /// Someone's rating of an answer (`message_feedback`).
    FeedbackId
);
define_id!(
    /// A tenant's webhook destination.
    WebhookId
);
define_id!(
    /// One event queued for one webhook destination; its `webhook-id` header is derived from it.
    DeliveryId
);
