//! The demo behind `GET /` in development: each visitor of the page chats, through the widget, as their
//! own end user of one demo tenant. The tenant is made on first use; it answers from the shared corpus
//! with the tenant's default provider (the offline answerer unless configured otherwise).

use chrono::Duration;
use sqlx::PgPool;

use crate::auth::context::{CollectionScope, TenantContext};
use crate::auth::widget::{self, IssuedToken};
use crate::crypto::MasterKeys;
use crate::ids::TenantId;
use crate::tenants::{self, NewTenant, TenantError};

/// How long a visitor's token lasts: a working day, so an open tab keeps working.
const VISITOR_TOKEN_TTL_HOURS: i64 = 12;

/// Whether `GET /` embeds a live widget, and for which tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DemoMode {
    Off,
    On {
        /// The demo tenant's slug.
        tenant_slug: String,
        /// Only for a browser on the server's own machine (`auto`), or for anyone who opens the page (`on`).
        local_only: bool,
    },
}

/// A widget token for the visitor `visitor_id` (any opaque string the page keeps in a cookie) of the demo
/// tenant `slug`, creating the tenant when it does not exist yet.
pub async fn visitor_token(
    pool: &PgPool,
    keys: &MasterKeys,
    slug: &str,
    visitor_id: &str,
) -> Result<IssuedToken, TenantError> {
    let tenant_id = demo_tenant(pool, slug).await?;
    let external_user_id = format!("demo-visitor-{visitor_id}");
    let ttl = Duration::hours(VISITOR_TOKEN_TTL_HOURS);
    Ok(widget::issue(pool, keys, tenant_id, &external_user_id, ttl, &CollectionScope::All).await?)
}

async fn demo_tenant(pool: &PgPool, slug: &str) -> Result<TenantId, TenantError> {
    if let Some(id) = tenants::store::find_by_slug(pool, slug).await? {
        return Ok(id);
    }
    match tenants::create(pool, &NewTenant::parse("Demo", slug)?, None).await {
        // The first admin key is not shown to anyone: the demo needs none, and an operator who wants to
        // configure the tenant makes a key for it like for any other.
        Ok((tenant, _first_key)) => {
            // The demo answers from Switchboard's own documentation: the one tenant made to show it.
            let operator = TenantContext::operator(tenant.id, None);
            let enable = serde_json::json!({ "shared_corpus": true });
            tenants::update_config(pool, &operator, enable.as_object().expect("an object")).await?;
            Ok(tenant.id)
        }
        // Two first visits at once: the other one made it.
        Err(TenantError::SlugTaken(_)) => {
            tenants::store::find_by_slug(pool, slug).await?.ok_or_else(|| TenantError::SlugTaken(slug.to_owned()))
        }
        Err(error) => Err(error),
    }
}
