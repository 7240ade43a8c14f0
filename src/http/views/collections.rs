//! Collections as the API shows them.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::collections::Collection;

#[derive(Debug, Serialize, ToSchema)]
pub struct CollectionView {
    pub id: uuid::Uuid,
    pub name: String,
    pub description: String,
    /// The shared corpus (Switchboard's documentation, the operator's): listed once the tenant enables it
    /// (`shared_corpus` in `/tenant/config`), read-only.
    pub shared: bool,
    pub document_count: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&Collection> for CollectionView {
    fn from(collection: &Collection) -> Self {
        Self {
            id: collection.id.0,
            name: collection.name.clone(),
            description: collection.description.clone(),
            shared: collection.shared,
            document_count: collection.document_count,
            created_at: collection.created_at,
            updated_at: collection.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CollectionList {
    pub collections: Vec<CollectionView>,
}

impl CollectionList {
    pub fn new(collections: &[Collection]) -> Self {
        Self { collections: collections.iter().map(CollectionView::from).collect() }
    }
}
