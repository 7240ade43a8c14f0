//! MCP connectors: how to reach a tenant's tool server (streamable HTTP at a URL, or a stdio server the
//! operator allows), its sealed credential, its status and the tools it last reported. The credential goes
//! in and is never shown again.

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

use super::ToolError;
use super::oauth::{GrantInfo, Tokens};
use super::settings::StdioServers;
use super::store::{self, ConnectorColumns, ConnectorRow};
use crate::crypto::{MasterKeys, Sealed};
use crate::db;
use crate::ids::{ConnectorId, TenantId};
use crate::outbound::{OutboundError, OutboundPolicy};

/// How the connector reaches its server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    StreamableHttp {
        url: String,
    },
    /// `server` names an entry of the operator's allow-list; `args` are appended to its command line.
    Stdio {
        server: String,
        args: Vec<String>,
    },
}

/// The credential sent to a streamable HTTP server.
#[derive(Debug, Clone)]
pub enum Auth {
    None,
    /// `header: secret`, e.g. `x-api-key`.
    ApiKey {
        header: String,
        secret: SecretString,
    },
    /// `Authorization: Bearer secret`.
    Bearer {
        secret: SecretString,
    },
    /// OAuth 2.1 (`oauth.rs`): an access token an admin's authorization granted, refreshed before it
    /// expires.
    OAuth(OAuthAuth),
}

/// An OAuth connector's grant as stored: `tokens` is `None` until an admin authorizes it (and again once
/// the authorization server refuses a refresh).
#[derive(Debug, Clone)]
pub struct OAuthAuth {
    /// The row's tenant (`None` while being parsed): a token is refreshed in its transaction.
    pub tenant_id: Option<TenantId>,
    pub info: GrantInfo,
    pub tokens: Option<Tokens>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// The API's description of a connector, as posted or patched.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectorInput {
    /// Required when creating: a lowercase letter, then up to 31 lowercase letters, digits or `_`.
    #[schema(pattern = "^[a-z][a-z0-9_]{0,31}$")]
    pub name: Option<String>,
    /// `streamable_http` or `stdio`; required when creating.
    pub transport: Option<String>,
    /// The server's URL (`streamable_http` only).
    pub url: Option<String>,
    /// An entry of the operator's allow-list of stdio servers (`stdio` only).
    pub command: Option<String>,
    /// Appended to the stdio server's command line (`stdio` only).
    pub args: Option<Vec<String>>,
    /// The credential sent to a `streamable_http` server; never shown again.
    pub auth: Option<AuthInput>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthInput {
    /// `none`, `api_key` (the token in `header`) or `bearer` (`Authorization: Bearer`).
    pub kind: String,
    /// For `api_key`: the header's name (default `x-api-key`).
    pub header: Option<String>,
    /// For `api_key` and `bearer`: the secret, 1 to 4000 printable characters.
    #[schema(value_type = Option<String>)]
    pub token: Option<SecretString>,
    /// For `oauth`: the scope to ask for (space-separated); by default the server's `scopes_supported`.
    pub scope: Option<String>,
}

/// A validated connector, ready to store.
#[derive(Debug, Clone)]
pub struct ConnectorSpec {
    pub name: String,
    pub transport: Transport,
    pub auth: Auth,
}

impl ConnectorSpec {
    /// The credential's text, to keep it out of error messages.
    pub fn secret(&self) -> Option<&str> {
        match &self.auth {
            Auth::None => None,
            Auth::ApiKey { secret, .. } | Auth::Bearer { secret } => Some(secret.expose_secret()),
            Auth::OAuth(oauth) => oauth.tokens.as_ref().map(|tokens| tokens.access.expose_secret()),
        }
    }
}

/// The operator's rules a connector must follow.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    pub outbound: &'a OutboundPolicy,
    pub stdio: &'a StdioServers,
}

impl ConnectorSpec {
    /// Validates a new connector, or a patch applied over `current`.
    pub async fn parse(
        input: ConnectorInput,
        current: Option<ConnectorSpec>,
        rules: Rules<'_>,
    ) -> Result<Self, ToolError> {
        let invalid = |message: &str| ToolError::Invalid(message.to_owned());
        let name = match (input.name, &current) {
            (Some(name), _) => name,
            (None, Some(current)) => current.name.clone(),
            (None, None) => return Err(invalid("name is required")),
        };
        let valid_name = name.len() <= 32
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid_name {
            return Err(invalid(
                "name must be 1 to 32 characters: a lowercase letter, then lowercase letters, digits or _",
            ));
        }
        let kind = match (input.transport.as_deref(), &current) {
            (Some(kind), _) => kind.to_owned(),
            (None, Some(ConnectorSpec { transport: Transport::StreamableHttp { .. }, .. })) => "streamable_http".into(),
            (None, Some(ConnectorSpec { transport: Transport::Stdio { .. }, .. })) => "stdio".into(),
            (None, None) => return Err(invalid("transport is required: streamable_http or stdio")),
        };
        let previous = current.as_ref().map(|current| &current.transport);
        let transport = match kind.as_str() {
            "streamable_http" => {
                if input.command.is_some() || input.args.is_some() {
                    return Err(invalid("command and args are for the stdio transport"));
                }
                let url = match (input.url, previous) {
                    (Some(url), _) => url,
                    (None, Some(Transport::StreamableHttp { url })) => url.clone(),
                    _ => return Err(invalid("a streamable_http connector needs a url")),
                };
                if url.len() > 2000 {
                    return Err(invalid("url must be at most 2000 characters"));
                }
                rules.outbound.check_before_saving(&url).await.map_err(|error| match error {
                    // The url is stored and shown as written: a secret in it would be in the clear.
                    OutboundError::Credential(found) => ToolError::Invalid(format!(
                        "url carries a credential ({found}); put the secret in auth, whose token is sealed at \
                         rest, not in the URL, which is stored and shown in the clear"
                    )),
                    error => ToolError::Invalid(format!("url: {error}")),
                })?;
                Transport::StreamableHttp { url }
            }
            "stdio" => {
                if input.url.is_some() {
                    return Err(invalid("url is for the streamable_http transport"));
                }
                // The operator's command line is the whole command line: arguments chosen by a tenant
                // could turn an allowed program into any program (`docker run … <image> sh`).
                if input.args.as_ref().is_some_and(|args| !args.is_empty()) {
                    return Err(invalid("args are set by the operator's allow-list, not by tenants"));
                }
                let server = match (input.command, previous) {
                    (Some(server), _) => server,
                    (None, Some(Transport::Stdio { server, .. })) => server.clone(),
                    _ => return Err(invalid("a stdio connector needs a command from the operator's allow-list")),
                };
                if !rules.stdio.allows(&server) {
                    return Err(ToolError::Invalid(format!(
                        "command `{}` is not in the operator's allow-list of stdio servers",
                        server.chars().take(50).collect::<String>()
                    )));
                }
                let args = Vec::new();
                Transport::Stdio { server, args }
            }
            _ => return Err(invalid("transport must be streamable_http or stdio")),
        };
        let moved = current.as_ref().is_some_and(|current| current.transport != transport);
        let auth = match (input.auth, current) {
            (Some(auth), _) => parse_auth(&auth)?,
            // A stored credential never follows the connector to another server unasked.
            (None, Some(current)) if moved && !matches!(current.auth, Auth::None) => {
                return Err(invalid("changing the server needs its auth in the same request"));
            }
            (None, Some(current)) => current.auth,
            (None, None) => Auth::None,
        };
        if matches!(transport, Transport::Stdio { .. }) && !matches!(auth, Auth::None) {
            return Err(invalid("auth is for the streamable_http transport"));
        }
        Ok(Self { name, transport, auth })
    }
}

fn parse_auth(input: &AuthInput) -> Result<Auth, ToolError> {
    let invalid = |message: &str| ToolError::Invalid(message.to_owned());
    let token = || -> Result<SecretString, ToolError> {
        let token = input.token.clone().ok_or_else(|| invalid("auth.token is required"))?;
        let text = token.expose_secret();
        if text.is_empty() || text.len() > 4000 || text.chars().any(char::is_control) {
            return Err(invalid("auth.token must be 1 to 4000 printable characters"));
        }
        Ok(token)
    };
    if input.kind != "oauth" && input.scope.is_some() {
        return Err(invalid("auth.scope is for the oauth kind"));
    }
    match input.kind.as_str() {
        "none" => Ok(Auth::None),
        "oauth" => {
            if input.token.is_some() || input.header.is_some() {
                return Err(invalid("an oauth connector takes no token or header: an admin authorizes it"));
            }
            let scope = input.scope.clone().filter(|scope| !scope.trim().is_empty());
            if scope.as_ref().is_some_and(|scope| {
                scope.len() > 1000
                    || !scope.chars().all(|c| c == ' ' || (c.is_ascii_graphic() && c != '"' && c != '\\'))
            }) {
                return Err(invalid("auth.scope must be space-separated scope names (at most 1000 characters)"));
            }
            let info = GrantInfo { scope, ..GrantInfo::default() };
            Ok(Auth::OAuth(OAuthAuth { tenant_id: None, info, tokens: None, expires_at: None }))
        }
        "bearer" => Ok(Auth::Bearer { secret: token()? }),
        "api_key" => {
            let header = input.header.clone().unwrap_or_else(|| "x-api-key".to_owned()).to_ascii_lowercase();
            let valid = !header.is_empty()
                && header.len() <= 100
                && header.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !matches!(header.as_str(), "host" | "content-length" | "content-type" | "mcp-session-id")
                // The 2026-07-28 revision's own headers, which rmcp sets per request.
                && !matches!(header.as_str(), "mcp-protocol-version" | "mcp-method" | "mcp-name")
                && !header.starts_with("mcp-param-");
            if !valid {
                return Err(invalid("auth.header must be an HTTP header name"));
            }
            Ok(Auth::ApiKey { header, secret: token()? })
        }
        _ => Err(invalid("auth.kind must be none, api_key, bearer or oauth")),
    }
}

/// What the API shows of a connector: never its credential.
#[derive(Debug, Clone, Serialize)]
pub struct Connector {
    pub id: ConnectorId,
    pub name: String,
    pub transport: &'static str,
    pub url: Option<String>,
    pub command: Option<String>,
    pub args: Vec<String>,
    pub auth: AuthView,
    pub status: String,
    pub last_error: Option<String>,
    pub refreshed_at: Option<DateTime<Utc>>,
    /// The MCP revision its server negotiated in the last discovery.
    pub protocol_version: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub tools: Vec<super::DiscoveredTool>,
    pub resources: Vec<super::DiscoveredResource>,
    pub prompts: Vec<super::DiscoveredPrompt>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuthView {
    pub kind: &'static str,
    pub header: Option<String>,
    pub token_configured: bool,
    /// For `oauth`: the scope asked for, and when the access token expires (it is refreshed before).
    pub scope: Option<String>,
    pub token_expires_at: Option<DateTime<Utc>>,
}

/// Binds a sealed connector credential to its row.
pub(super) fn associated_data(tenant_id: TenantId, id: ConnectorId) -> String {
    format!("mcp_connectors/{tenant_id}/{id}")
}

impl ConnectorRow {
    /// Discovery succeeded last time: its tools may be offered.
    pub(crate) fn is_active(&self) -> bool {
        self.status == "active"
    }

    pub(crate) fn view(&self, offerings: super::Offerings) -> Connector {
        Connector {
            id: self.id,
            name: self.name.clone(),
            transport: if self.transport == "stdio" { "stdio" } else { "streamable_http" },
            url: self.url.clone(),
            command: self.command.clone(),
            args: self.args.0.clone(),
            auth: AuthView {
                kind: match self.auth_kind.as_str() {
                    "api_key" => "api_key",
                    "bearer" => "bearer",
                    "oauth" => "oauth",
                    _ => "none",
                },
                header: self.auth_header.clone(),
                token_configured: self.secret_ciphertext.is_some(),
                scope: self.grant_info().scope,
                token_expires_at: self.token_expires_at,
            },
            status: self.status.clone(),
            last_error: self.last_error.clone(),
            refreshed_at: self.refreshed_at,
            protocol_version: self.protocol_version.clone(),
            created_at: self.created_at,
            updated_at: self.updated_at,
            tools: offerings.tools,
            resources: offerings.resources,
            prompts: offerings.prompts,
        }
    }

    /// The stored connector with its credential opened, for connecting or patching.
    pub(crate) fn spec(&self, keys: &MasterKeys) -> Result<ConnectorSpec, ToolError> {
        let transport = match (&self.url, &self.command) {
            (Some(url), _) => Transport::StreamableHttp { url: url.clone() },
            (None, Some(server)) => Transport::Stdio { server: server.clone(), args: self.args.0.clone() },
            (None, None) => return Err(ToolError::Invalid("the connector has neither url nor command".to_owned())),
        };
        if self.auth_kind == "oauth" {
            let name = self.name.clone();
            return Ok(ConnectorSpec { name, transport, auth: Auth::OAuth(self.oauth_grant(keys)?) });
        }
        let secret = self
            .sealed_secret()
            .map(|sealed| keys.open(&sealed, &associated_data(self.tenant_id, self.id)))
            .transpose()?;
        let auth = match (self.auth_kind.as_str(), secret) {
            ("api_key", Some(secret)) => {
                Auth::ApiKey { header: self.auth_header.clone().unwrap_or_else(|| "x-api-key".into()), secret }
            }
            ("bearer", Some(secret)) => Auth::Bearer { secret },
            _ => Auth::None,
        };
        Ok(ConnectorSpec { name: self.name.clone(), transport, auth })
    }

    /// What is not secret about the connector's OAuth grant.
    pub(super) fn grant_info(&self) -> GrantInfo {
        self.oauth.as_ref().and_then(|json| serde_json::from_value(json.0.clone()).ok()).unwrap_or_default()
    }

    /// The connector's OAuth grant, its tokens opened.
    pub(super) fn oauth_grant(&self, keys: &MasterKeys) -> Result<OAuthAuth, ToolError> {
        let tokens = self
            .sealed_secret()
            .map(|sealed| Tokens::open(keys, &sealed, &associated_data(self.tenant_id, self.id)))
            .transpose()?
            .filter(|tokens| !tokens.access.expose_secret().is_empty());
        Ok(OAuthAuth {
            tenant_id: Some(self.tenant_id),
            info: self.grant_info(),
            tokens,
            expires_at: self.token_expires_at,
        })
    }

    /// The stored credential, when the connector has one.
    fn sealed_secret(&self) -> Option<Sealed> {
        match (&self.secret_ciphertext, &self.secret_nonce, &self.secret_key_id) {
            (Some(ciphertext), Some(nonce), Some(key_id)) => {
                Some(Sealed { key_id: key_id.clone(), nonce: nonce.clone(), ciphertext: ciphertext.clone() })
            }
            _ => None,
        }
    }
}

/// Inserts a connector, or replaces one (`id` exists), its credential sealed to the row; `None` when the
/// name is taken.
pub(crate) async fn save(
    connection: &mut PgConnection,
    keys: &MasterKeys,
    tenant_id: TenantId,
    id: ConnectorId,
    spec: &ConnectorSpec,
) -> Result<Option<ConnectorRow>, sqlx::Error> {
    let (transport, url, command, args) = match &spec.transport {
        Transport::StreamableHttp { url } => ("streamable_http", Some(url.as_str()), None, Vec::new()),
        Transport::Stdio { server, args } => ("stdio", None, Some(server.as_str()), args.clone()),
    };
    let associated_data = associated_data(tenant_id, id);
    let (auth_kind, auth_header, sealed) = match &spec.auth {
        Auth::None => ("none", None, None),
        Auth::ApiKey { header, secret } => {
            ("api_key", Some(header.as_str()), Some(keys.seal(secret, &associated_data)))
        }
        Auth::Bearer { secret } => ("bearer", None, Some(keys.seal(secret, &associated_data))),
        Auth::OAuth(oauth) => ("oauth", None, oauth.tokens.as_ref().map(|tokens| tokens.seal(keys, &associated_data))),
    };
    let (oauth, token_expires_at) = match &spec.auth {
        Auth::OAuth(oauth) => (Some(serde_json::to_value(&oauth.info).unwrap_or_default()), oauth.expires_at),
        _ => (None, None),
    };
    let columns = ConnectorColumns {
        id,
        tenant_id,
        name: &spec.name,
        transport,
        url,
        command,
        args,
        auth_kind,
        auth_header,
        sealed: sealed.as_ref(),
        oauth: oauth.as_ref(),
        token_expires_at,
    };
    db::none_if_unique_violation(store::upsert_connector(connection, &columns).await)
}

/// Re-seals every connector credential under the current master key; returns how many rows changed.
pub async fn reseal(connection: &mut PgConnection, keys: &MasterKeys, tenant_id: TenantId) -> Result<usize, ToolError> {
    let mut resealed_rows = 0;
    for row in store::connectors_to_reseal(connection, keys.current_id()).await? {
        let Some(sealed) = row.sealed_secret() else { continue };
        let Some(resealed) = keys.reseal(&sealed, &associated_data(tenant_id, row.id))? else { continue };
        store::set_connector_secret(connection, row.id, &resealed).await?;
        resealed_rows += 1;
    }
    Ok(resealed_rows)
}
