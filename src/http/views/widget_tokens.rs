//! A widget token just minted, for the tenant's backend to hand to the widget.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::widget::IssuedToken;
use crate::ids::UserId;

#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedTokenView {
    /// A bearer token for the widget's requests (`widget_token`).
    pub token: String,
    pub expires_at: DateTime<Utc>,
    /// The end user the token acts for, created on first use of the `external_user_id`.
    #[schema(value_type = uuid::Uuid)]
    pub user_id: UserId,
}

impl From<&IssuedToken> for IssuedTokenView {
    fn from(issued: &IssuedToken) -> Self {
        Self { token: issued.token.clone(), expires_at: issued.expires_at, user_id: issued.user_id }
    }
}
