//! Authorizing OAuth connectors (`oauth.rs` speaks the protocol): an admin starts it and gets the URL to
//! open, the admin's browser comes back to the callback with a single-use, expiring `state` that names the
//! tenant, connector and PKCE verifier, and every connection then sends the grant's access token, refreshed
//! first when it is near its end. A refresh the authorization server refuses puts the connector in
//! `needs_authorization`, recorded in the audit trail: never a silent failure.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret as _, SecretString};
use sqlx::PgPool;

use super::connectors::{self, Auth, Transport};
use super::oauth::{self, ClientUrls, Flow, GrantInfo, TokenFailure, Tokens};
use super::store::{self, OAuthStateRow};
use super::{Connector, ToolError, Toolbox};
use crate::audit::{self, AuditEntry, Recorder};
use crate::auth::context::TenantContext;
use crate::crypto::{MasterKeys, Sealed};
use crate::db;
use crate::ids::{ConnectorId, TenantId};
use crate::outbound::OutboundPolicy;

/// How long the link an admin is given works.
const STATE_LIFETIME: chrono::Duration = chrono::Duration::minutes(10);

/// What `needs_authorization` says before the first authorization.
pub fn not_yet_authorized(id: ConnectorId) -> String {
    format!(
        "an admin must authorize this connector: POST /api/v1/mcp-connectors/{id}/authorize and open the URL it \
         answers"
    )
}

/// An authorization started: the URL the admin opens, until `expires_at`.
#[derive(Debug, Clone)]
pub struct Authorization {
    pub authorization_url: String,
    pub expires_at: DateTime<Utc>,
}

/// What the authorization server sent the browser back with.
#[derive(Debug, Clone, Default)]
pub struct Callback {
    pub state: Option<String>,
    pub code: Option<String>,
    pub error: Option<String>,
}

fn state_associated_data(tenant_id: TenantId, id: ConnectorId) -> String {
    format!("mcp_oauth_states/{tenant_id}/{id}")
}

/// Finds the connector's authorization server, registers Switchboard with it and records the flow.
pub async fn start(
    pool: &PgPool,
    toolbox: &Toolbox,
    context: &TenantContext,
    id: ConnectorId,
    urls: &ClientUrls,
) -> Result<Authorization, ToolError> {
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    let row = store::find_connector(&mut transaction, id).await?.ok_or(ToolError::NotFound)?;
    transaction.commit().await?;
    let spec = row.spec(&toolbox.keys)?;
    let (Transport::StreamableHttp { url }, Auth::OAuth(grant)) = (&spec.transport, &spec.auth) else {
        return Err(ToolError::Invalid("only a connector whose auth kind is oauth is authorized".to_owned()));
    };
    let http = toolbox.clients.http();
    let started = oauth::start(http, &toolbox.outbound, url, grant.info.scope.as_deref(), urls)
        .await
        .map_err(ToolError::OAuth)?;
    let secrets = serde_json::json!({
        "verifier": started.verifier.expose_secret(),
        "client_secret": started.client_secret.as_ref().map(secrecy::ExposeSecret::expose_secret),
    });
    let sealed =
        toolbox.keys.seal(&SecretString::from(secrets.to_string()), &state_associated_data(context.tenant_id(), id));
    let expires_at = Utc::now() + STATE_LIFETIME;
    let actor = context.actor();
    let state_row = OAuthStateRow {
        tenant_id: context.tenant_id(),
        connector_id: id,
        actor_type: actor.kind().to_owned(),
        actor_id: actor.id(),
        flow: sqlx::types::Json(serde_json::to_value(&started.flow).unwrap_or_default()),
        sealed_ciphertext: sealed.ciphertext,
        sealed_nonce: sealed.nonce,
        sealed_key_id: sealed.key_id,
        expires_at,
    };
    let mut transaction = db::begin_tenant(pool, context.tenant_id()).await?;
    store::insert_oauth_state(&mut transaction, &oauth::state_hash(started.state.expose_secret()), &state_row).await?;
    let details = serde_json::json!({ "issuer": started.flow.issuer, "resource": started.flow.resource });
    let entry =
        AuditEntry::new("mcp_connector.authorization_started", "mcp_connector", id.to_string()).with_details(details);
    audit::record(&mut transaction, context, &entry).await?;
    transaction.commit().await?;
    Ok(Authorization { authorization_url: started.authorization_url, expires_at })
}

/// Completes an authorization: the state is taken (it works once), the code exchanged for tokens, sealed
/// to the connector, and the server's tools discovered with them.
pub async fn complete(pool: &PgPool, toolbox: &Toolbox, callback: Callback) -> Result<Connector, ToolError> {
    let state = callback.state.filter(|state| !state.is_empty() && state.len() <= 200).ok_or(ToolError::OAuthState)?;
    let mut transaction = db::begin(pool).await?;
    let row = store::consume_oauth_state(&mut transaction, &oauth::state_hash(&state)).await?;
    transaction.commit().await?;
    let row = row.filter(|row| row.expires_at > Utc::now()).ok_or(ToolError::OAuthState)?;
    let (tenant_id, id) = (row.tenant_id, row.connector_id);
    let recorder = Recorder {
        tenant_id,
        actor_type: match row.actor_type.as_str() {
            "operator" => "operator",
            "user" => "user",
            "system" => "system",
            _ => "api_key",
        },
        actor_id: row.actor_id.clone(),
        request_id: None,
        trace_id: None,
    };
    let flow: Flow = serde_json::from_value(row.flow.0.clone())
        .map_err(|_| ToolError::OAuth("the stored authorization cannot be read".to_owned()))?;
    let sealed = Sealed {
        key_id: row.sealed_key_id.clone(),
        nonce: row.sealed_nonce.clone(),
        ciphertext: row.sealed_ciphertext.clone(),
    };
    let secrets = toolbox.keys.open(&sealed, &state_associated_data(tenant_id, id))?;
    let secrets: serde_json::Value = serde_json::from_str(secrets.expose_secret()).unwrap_or_default();
    let text = |name: &str| {
        secrets.get(name).and_then(serde_json::Value::as_str).map(|text| SecretString::from(text.to_owned()))
    };
    let verifier =
        text("verifier").ok_or_else(|| ToolError::OAuth("the stored authorization cannot be read".into()))?;
    let client_secret = text("client_secret");
    let outcome = match (&callback.error, &callback.code) {
        (Some(error), _) => Err(format!(
            "the authorization server did not grant access ({}): authorize the connector again",
            oauth::error_code(error)
        )),
        (None, Some(code)) if !code.is_empty() && code.len() <= 2000 => {
            oauth::exchange(toolbox.clients.http(), &toolbox.outbound, &flow, code, &verifier, client_secret.as_ref())
                .await
                .map_err(|failure| format!("the authorization code could not be exchanged for tokens: {failure}"))
        }
        (None, _) => Err("the authorization server sent no code: authorize the connector again".to_owned()),
    };
    let mut transaction = db::begin_tenant(pool, tenant_id).await?;
    let connector = store::lock_connector(&mut transaction, id).await?.ok_or(ToolError::NotFound)?;
    if connector.auth_kind != "oauth" {
        return Err(ToolError::Invalid("the connector no longer uses oauth".to_owned()));
    }
    match outcome {
        Ok((tokens, expires_in)) => {
            let info = GrantInfo {
                scope: connector.grant_info().scope,
                issuer: Some(flow.issuer.clone()),
                token_endpoint: Some(flow.token_endpoint.clone()),
                client_id: Some(flow.client_id.clone()),
                resource: Some(flow.resource.clone()),
                lifetime_secs: expires_in,
            };
            store_grant(&mut transaction, &toolbox.keys, (tenant_id, id), &info, &tokens).await?;
            let details = serde_json::json!({ "issuer": flow.issuer, "resource": flow.resource });
            let entry =
                AuditEntry::new("mcp_connector.authorized", "mcp_connector", id.to_string()).with_details(details);
            audit::store::append(&mut transaction, &recorder, &entry).await?;
            transaction.commit().await?;
            super::rediscover(pool, toolbox, &recorder, id).await
        }
        Err(reason) => {
            store::set_connector_needs_authorization(&mut transaction, id, &reason).await?;
            let entry = AuditEntry::new("mcp_connector.authorization_failed", "mcp_connector", id.to_string())
                .with_details(serde_json::json!({ "error": reason }));
            audit::store::append(&mut transaction, &recorder, &entry).await?;
            transaction.commit().await?;
            Err(ToolError::OAuth(reason))
        }
    }
}

/// Stores a grant just issued: what is not secret, the tokens sealed to the connector, and when the access
/// token expires (from the lifetime it was issued with, `info.lifetime_secs`).
async fn store_grant(
    connection: &mut sqlx::PgConnection,
    keys: &MasterKeys,
    (tenant_id, id): (TenantId, ConnectorId),
    info: &GrantInfo,
    tokens: &Tokens,
) -> Result<(), sqlx::Error> {
    let sealed = tokens.seal(keys, &connectors::associated_data(tenant_id, id));
    let info_json = serde_json::to_value(info).unwrap_or_default();
    let expires_at = oauth::expiry(info.lifetime_secs);
    store::set_connector_grant(connection, id, &info_json, &sealed, expires_at).await
}

/// Why a connection has no access token to send.
#[derive(Debug, Clone)]
pub enum NoToken {
    /// No grant, or the authorization server refused to refresh it: an admin must authorize again.
    NeedsAuthorization(String),
    /// The grant may still work; the authorization server or the database could not be reached.
    Unreachable(String),
}

/// Gives connections their OAuth access token, refreshed first when near its end: one process refreshes
/// at a time (the connector's row is locked meanwhile), and the others use what it stored.
#[derive(Clone)]
pub struct TokenKeeper {
    pub(super) db: PgPool,
    pub(super) keys: Arc<MasterKeys>,
    pub(super) http: reqwest::Client,
    pub(super) outbound: OutboundPolicy,
}

impl std::fmt::Debug for TokenKeeper {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("TokenKeeper").finish_non_exhaustive()
    }
}

impl TokenKeeper {
    /// The server refused the access token before its time: the next connection refreshes it first.
    pub async fn expire(&self, tenant_id: TenantId, id: ConnectorId) {
        let expired = async {
            let mut transaction = db::begin_tenant(&self.db, tenant_id).await?;
            store::expire_connector_token(&mut transaction, id).await?;
            transaction.commit().await
        };
        if let Err(error) = expired.await {
            tracing::warn!(connector_id = %id, %error, "a refused OAuth token could not be marked expired");
        }
    }

    pub async fn fresh(&self, tenant_id: TenantId, id: ConnectorId) -> Result<Tokens, NoToken> {
        let database = |error: sqlx::Error| {
            tracing::warn!(connector_id = %id, %error, "the connector's OAuth grant could not be read");
            NoToken::Unreachable("the connector's OAuth grant could not be read".to_owned())
        };
        let mut transaction = db::begin_tenant(&self.db, tenant_id).await.map_err(database)?;
        let row = store::lock_connector(&mut transaction, id)
            .await
            .map_err(database)?
            .ok_or_else(|| NoToken::Unreachable("the connector no longer exists".to_owned()))?;
        let grant = row.oauth_grant(&self.keys).map_err(|error| NoToken::Unreachable(error.to_string()))?;
        let Some(tokens) = grant.tokens else {
            let reason = row.last_error.clone().unwrap_or_else(|| not_yet_authorized(id));
            return Err(NoToken::NeedsAuthorization(reason));
        };
        let now = Utc::now();
        let due = grant.expires_at.map(|at| at - oauth::refresh_margin(grant.info.lifetime_secs));
        if due.is_none_or(|due| due > now) {
            return Ok(tokens);
        }
        match oauth::refresh(&self.http, &self.outbound, &grant.info, &tokens).await {
            Ok((fresh, expires_in)) => {
                let info = GrantInfo { lifetime_secs: expires_in, ..grant.info };
                store_grant(&mut transaction, &self.keys, (tenant_id, id), &info, &fresh).await.map_err(database)?;
                transaction.commit().await.map_err(database)?;
                Ok(fresh)
            }
            Err(TokenFailure::Refused(code)) => {
                let reason = format!(
                    "the authorization server refused to refresh the access token ({code}): an admin must authorize \
                     the connector again"
                );
                tracing::warn!(connector_id = %id, code = %code, "an OAuth refresh was refused; the connector needs authorization");
                store::set_connector_needs_authorization(&mut transaction, id, &reason).await.map_err(database)?;
                let recorder =
                    Recorder { tenant_id, actor_type: "system", actor_id: None, request_id: None, trace_id: None };
                let entry = AuditEntry::new("mcp_connector.needs_authorization", "mcp_connector", id.to_string())
                    .with_details(serde_json::json!({ "reason": reason }));
                audit::store::append(&mut transaction, &recorder, &entry).await.map_err(database)?;
                transaction.commit().await.map_err(database)?;
                Err(NoToken::NeedsAuthorization(reason))
            }
            // The token may outlive a passing failure: it is used until it has expired.
            Err(TokenFailure::Unreachable(_)) if grant.expires_at.is_some_and(|at| at > now) => Ok(tokens),
            Err(TokenFailure::Unreachable(reason)) => {
                Err(NoToken::Unreachable(format!("the access token could not be refreshed: {reason}")))
            }
        }
    }
}
