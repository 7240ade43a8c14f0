//! OAuth 2.1 for connectors, per the MCP authorization specification, as a client: the authorization
//! server found from the MCP server's protected resource metadata (RFC 9728) and its own metadata (RFC 8414),
//! the client registered by a Client ID Metadata Document Switchboard serves, or dynamic registration
//! (RFC 7591) when that is all the server offers, the authorization code flow with PKCE (S256), the
//! resource indicator (RFC 8707) on every request, and refreshing. Only HTTP here: every URL is vetted by the
//! outbound policy and fetched by the connectors' client (its resolver, no redirects); what is stored, and
//! where, is `authorization.rs`'s.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use rand::Rng as _;
use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::crypto::{CryptoError, MasterKeys, Sealed};
use crate::outbound::OutboundPolicy;

/// Every request to an authorization server or a metadata URL ends within this.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Metadata and token responses are small; a larger answer is refused unread.
const MAX_BODY: usize = 64 * 1024;

/// What is not secret about a connector's grant (`mcp_connectors.oauth`): the scope the admin asked for,
/// and once authorized, where and as whom tokens are refreshed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The resource indicator (RFC 8707) sent with every authorization and token request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// The access token's lifetime as last issued, which sets how early it is refreshed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifetime_secs: Option<i64>,
}

/// The secrets of a grant, sealed together at rest.
#[derive(Clone)]
pub struct Tokens {
    pub access: SecretString,
    pub refresh: Option<SecretString>,
    pub client_secret: Option<SecretString>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Tokens").finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
struct TokensText {
    access: String,
    refresh: Option<String>,
    client_secret: Option<String>,
}

impl Tokens {
    pub fn seal(&self, keys: &MasterKeys, associated_data: &str) -> Sealed {
        let text = TokensText {
            access: self.access.expose_secret().to_owned(),
            refresh: self.refresh.as_ref().map(|secret| secret.expose_secret().to_owned()),
            client_secret: self.client_secret.as_ref().map(|secret| secret.expose_secret().to_owned()),
        };
        let json = serde_json::to_string(&text).expect("strings serialize");
        keys.seal(&SecretString::from(json), associated_data)
    }

    pub fn open(keys: &MasterKeys, sealed: &Sealed, associated_data: &str) -> Result<Self, CryptoError> {
        let json = keys.open(sealed, associated_data)?;
        // A credential sealed before the connector became an OAuth one is no grant.
        let text: TokensText = serde_json::from_str(json.expose_secret()).unwrap_or(TokensText {
            access: String::new(),
            refresh: None,
            client_secret: None,
        });
        Ok(Self {
            access: SecretString::from(text.access),
            refresh: text.refresh.map(SecretString::from),
            client_secret: text.client_secret.map(SecretString::from),
        })
    }

    /// Every secret, to cut out of texts that may echo one.
    pub fn secrets(&self) -> Vec<&str> {
        [Some(&self.access), self.refresh.as_ref(), self.client_secret.as_ref()]
            .into_iter()
            .flatten()
            .map(ExposeSecret::expose_secret)
            .filter(|secret| !secret.is_empty())
            .collect()
    }
}

/// Refreshed this long before the access token expires: a fifth of its lifetime, at most a minute.
pub fn refresh_margin(lifetime_secs: Option<i64>) -> chrono::Duration {
    let lifetime = lifetime_secs.unwrap_or(300).max(1);
    chrono::Duration::milliseconds((lifetime * 1000 / 5).min(60_000))
}

/// An authorization started: the URL the admin opens, and what the callback needs to finish it.
#[derive(Debug)]
pub struct Started {
    pub authorization_url: String,
    pub state: SecretString,
    pub flow: Flow,
    pub verifier: SecretString,
    pub client_secret: Option<SecretString>,
}

/// What the callback needs that is not secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Flow {
    pub issuer: String,
    pub token_endpoint: String,
    pub client_id: String,
    pub resource: String,
    pub redirect_uri: String,
    pub scope: Option<String>,
}

/// Where Switchboard's OAuth client lives: its callback and its Client ID Metadata Document.
#[derive(Debug, Clone)]
pub struct ClientUrls {
    pub redirect_uri: String,
    pub metadata_document: String,
}

/// The Client ID Metadata Document (draft-ietf-oauth-client-id-metadata-document) served at
/// `urls.metadata_document`: its URL is the client id.
pub fn client_metadata_document(urls: &ClientUrls) -> Value {
    serde_json::json!({
        "client_id": urls.metadata_document,
        "client_name": "Switchboard",
        "redirect_uris": [urls.redirect_uri],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    })
}

/// Why a token request got no tokens.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenFailure {
    /// The authorization server answered and refused (`invalid_grant`, …): the grant is gone.
    #[error("the authorization server refused ({0})")]
    Refused(String),
    /// No answer, or not one to act on: the grant may still work later.
    #[error("{0}")]
    Unreachable(String),
}

/// Finds the authorization server of the MCP server at `resource_url`, registers Switchboard with it, and
/// makes the authorization URL (PKCE S256, state, resource indicator).
pub async fn start(
    http: &reqwest::Client,
    outbound: &OutboundPolicy,
    resource_url: &str,
    scope: Option<&str>,
    urls: &ClientUrls,
) -> Result<Started, String> {
    let resource_metadata = protected_resource_metadata(http, outbound, resource_url).await?;
    let resource = resource_metadata
        .get("resource")
        .and_then(Value::as_str)
        .ok_or("the protected resource metadata names no resource")?
        .to_owned();
    if !same_resource(&resource, resource_url) {
        return Err(format!("the protected resource metadata is for another resource ({resource})"));
    }
    let issuer = resource_metadata
        .get("authorization_servers")
        .and_then(Value::as_array)
        .and_then(|servers| servers.first())
        .and_then(Value::as_str)
        .ok_or("the protected resource metadata names no authorization server")?
        .to_owned();
    let metadata = authorization_server_metadata(http, outbound, &issuer).await?;
    let endpoint = |name: &str| -> Result<String, String> {
        metadata
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| format!("the authorization server's metadata has no {name}"))
    };
    let authorization_endpoint = endpoint("authorization_endpoint")?;
    let token_endpoint = endpoint("token_endpoint")?;
    let s256 = metadata
        .get("code_challenge_methods_supported")
        .and_then(Value::as_array)
        .is_some_and(|methods| methods.iter().any(|method| method == "S256"));
    if !s256 {
        return Err("the authorization server does not support PKCE with S256".to_owned());
    }
    let scope = scope.map(str::to_owned).or_else(|| {
        let scopes = resource_metadata.get("scopes_supported")?.as_array()?;
        let scopes: Vec<&str> = scopes.iter().filter_map(Value::as_str).collect();
        (!scopes.is_empty()).then(|| scopes.join(" "))
    });
    let metadata_documents = metadata.get("client_id_metadata_document_supported") == Some(&Value::Bool(true));
    let (client_id, client_secret) = if metadata_documents && urls.metadata_document.starts_with("https://") {
        (urls.metadata_document.clone(), None)
    } else if let Some(registration_endpoint) = metadata.get("registration_endpoint").and_then(Value::as_str) {
        register(http, outbound, registration_endpoint, urls, scope.as_deref()).await?
    } else {
        return Err("the authorization server offers neither client ID metadata documents (for an https \
                    SWITCHBOARD_PUBLIC_URL) nor dynamic client registration"
            .to_owned());
    };
    let verifier = random_text();
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let state = random_text();
    let mut url = Url::parse(&authorization_endpoint).map_err(|_| "the authorization endpoint is not a URL")?;
    outbound.check(url.as_str()).await.map_err(|error| format!("the authorization endpoint is refused: {error}"))?;
    {
        let mut query = url.query_pairs_mut();
        query.append_pair("response_type", "code");
        query.append_pair("client_id", &client_id);
        query.append_pair("redirect_uri", &urls.redirect_uri);
        query.append_pair("state", &state);
        query.append_pair("code_challenge", &challenge);
        query.append_pair("code_challenge_method", "S256");
        query.append_pair("resource", &resource);
        if let Some(scope) = &scope {
            query.append_pair("scope", scope);
        }
    }
    Ok(Started {
        authorization_url: url.to_string(),
        state: SecretString::from(state),
        flow: Flow { issuer, token_endpoint, client_id, resource, redirect_uri: urls.redirect_uri.clone(), scope },
        verifier: SecretString::from(verifier),
        client_secret,
    })
}

/// Exchanges the code the callback received for tokens.
pub async fn exchange(
    http: &reqwest::Client,
    outbound: &OutboundPolicy,
    flow: &Flow,
    code: &str,
    verifier: &SecretString,
    client_secret: Option<&SecretString>,
) -> Result<(Tokens, Option<i64>), TokenFailure> {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", flow.redirect_uri.as_str()),
        ("client_id", flow.client_id.as_str()),
        ("code_verifier", verifier.expose_secret()),
        ("resource", flow.resource.as_str()),
    ];
    if let Some(secret) = client_secret {
        form.push(("client_secret", secret.expose_secret()));
    }
    let issued = token_request(http, outbound, &flow.token_endpoint, &form).await?;
    let tokens =
        Tokens { access: issued.access_token, refresh: issued.refresh_token, client_secret: client_secret.cloned() };
    Ok((tokens, issued.expires_in))
}

/// A new access token for a grant (and a new refresh token when the server rotates them).
pub async fn refresh(
    http: &reqwest::Client,
    outbound: &OutboundPolicy,
    info: &GrantInfo,
    tokens: &Tokens,
) -> Result<(Tokens, Option<i64>), TokenFailure> {
    let (Some(token_endpoint), Some(client_id), Some(refresh_token)) =
        (&info.token_endpoint, &info.client_id, &tokens.refresh)
    else {
        return Err(TokenFailure::Refused("no refresh token".to_owned()));
    };
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token.expose_secret()),
        ("client_id", client_id.as_str()),
    ];
    if let Some(resource) = &info.resource {
        form.push(("resource", resource.as_str()));
    }
    if let Some(secret) = &tokens.client_secret {
        form.push(("client_secret", secret.expose_secret()));
    }
    let issued = token_request(http, outbound, token_endpoint, &form).await?;
    let tokens = Tokens {
        access: issued.access_token,
        refresh: issued.refresh_token.or_else(|| tokens.refresh.clone()),
        client_secret: tokens.client_secret.clone(),
    };
    Ok((tokens, issued.expires_in))
}

/// When a token issued now for `expires_in` seconds expires.
pub fn expiry(expires_in: Option<i64>) -> Option<DateTime<Utc>> {
    expires_in.map(|seconds| Utc::now() + chrono::Duration::seconds(seconds))
}

struct Issued {
    access_token: SecretString,
    refresh_token: Option<SecretString>,
    expires_in: Option<i64>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    expires_in: Option<Value>,
}

async fn token_request(
    http: &reqwest::Client,
    outbound: &OutboundPolicy,
    token_endpoint: &str,
    form: &[(&str, &str)],
) -> Result<Issued, TokenFailure> {
    let unreachable = |text: String| TokenFailure::Unreachable(text);
    outbound
        .check(token_endpoint)
        .await
        .map_err(|error| unreachable(format!("the token endpoint is refused: {error}")))?;
    let response = http
        .post(token_endpoint)
        .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(reqwest::header::ACCEPT, "application/json")
        .body(form_body(form))
        .timeout(REQUEST_TIMEOUT)
        .send()
        .await
        .map_err(|error| unreachable(format!("the token endpoint could not be reached: {}", without_url(&error))))?;
    let status = response.status();
    let body = limited_body(response).await.map_err(unreachable)?;
    if status.is_client_error() {
        // RFC 6749 §5.2: `{"error": "invalid_grant", …}`. Only the code is kept, never a description.
        let code = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|body| body.get("error").and_then(Value::as_str).map(error_code))
            .unwrap_or_else(|| format!("HTTP {}", status.as_u16()));
        return Err(TokenFailure::Refused(code));
    }
    if !status.is_success() {
        return Err(unreachable(format!("the token endpoint answered HTTP {}", status.as_u16())));
    }
    let parsed: TokenResponse = serde_json::from_slice(&body)
        .map_err(|_| unreachable("the token endpoint's answer is not a token response".to_owned()))?;
    if parsed.token_type.as_deref().is_some_and(|kind| !kind.eq_ignore_ascii_case("bearer")) {
        return Err(unreachable("the token endpoint issued a token that is not a bearer token".to_owned()));
    }
    let valid = |token: &str| !token.is_empty() && token.len() <= 8000 && !token.chars().any(char::is_control);
    if !valid(&parsed.access_token) {
        return Err(unreachable("the token endpoint issued an unusable access token".to_owned()));
    }
    let expires_in = match parsed.expires_in {
        Some(Value::Number(number)) => number.as_i64(),
        Some(Value::String(text)) => text.parse().ok(),
        _ => None,
    };
    Ok(Issued {
        access_token: SecretString::from(parsed.access_token),
        refresh_token: parsed.refresh_token.filter(|token| valid(token)).map(SecretString::from),
        expires_in,
    })
}

/// RFC 7591: registers Switchboard as a public client with the callback as its redirect URI.
async fn register(
    http: &reqwest::Client,
    outbound: &OutboundPolicy,
    registration_endpoint: &str,
    urls: &ClientUrls,
    scope: Option<&str>,
) -> Result<(String, Option<SecretString>), String> {
    outbound
        .check(registration_endpoint)
        .await
        .map_err(|error| format!("the registration endpoint is refused: {error}"))?;
    let mut metadata = client_metadata_document(urls);
    if let Value::Object(fields) = &mut metadata {
        fields.remove("client_id");
        if let Some(scope) = scope {
            fields.insert("scope".to_owned(), Value::String(scope.to_owned()));
        }
    }
    let response = http
        .post(registration_endpoint)
        .json(&metadata)
        .timeout(REQUEST_TIMEOUT)
        .send()
        .await
        .map_err(|error| format!("the registration endpoint could not be reached: {}", without_url(&error)))?;
    let status = response.status();
    let body = limited_body(response).await?;
    if !status.is_success() {
        return Err(format!("the authorization server refused to register Switchboard (HTTP {})", status.as_u16()));
    }
    let registered: Value =
        serde_json::from_slice(&body).map_err(|_| "the registration answer is not JSON".to_owned())?;
    let client_id = registered
        .get("client_id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty() && id.len() <= 500)
        .ok_or("the registration answer has no client_id")?
        .to_owned();
    let client_secret =
        registered.get("client_secret").and_then(Value::as_str).map(|secret| SecretString::from(secret.to_owned()));
    Ok((client_id, client_secret))
}

/// RFC 9728: the metadata named by the server's `WWW-Authenticate` challenge, else at the well-known
/// URIs (the resource's path inserted, then the root).
async fn protected_resource_metadata(
    http: &reqwest::Client,
    outbound: &OutboundPolicy,
    resource_url: &str,
) -> Result<Value, String> {
    let url = Url::parse(resource_url).map_err(|_| "the connector's URL is not a URL")?;
    let mut candidates = Vec::new();
    if let Some(named) = challenged_metadata_url(http, outbound, resource_url).await {
        candidates.push(named);
    }
    candidates.extend(well_known(&url, "oauth-protected-resource", false));
    for candidate in candidates {
        if let Some(metadata) = get_json(http, outbound, &candidate).await? {
            return Ok(metadata);
        }
    }
    Err("the MCP server publishes no protected resource metadata (RFC 9728)".to_owned())
}

/// The `resource_metadata` of the 401 challenge an unauthenticated request gets, if any.
async fn challenged_metadata_url(
    http: &reqwest::Client,
    outbound: &OutboundPolicy,
    resource_url: &str,
) -> Option<String> {
    outbound.check(resource_url).await.ok()?;
    let probe = serde_json::json!({"jsonrpc": "2.0", "id": 0, "method": "ping"});
    let response = http
        .post(resource_url)
        .header(reqwest::header::ACCEPT, "application/json, text/event-stream")
        .json(&probe)
        .timeout(REQUEST_TIMEOUT)
        .send()
        .await
        .ok()?;
    if response.status() != reqwest::StatusCode::UNAUTHORIZED {
        return None;
    }
    let challenge = response.headers().get(reqwest::header::WWW_AUTHENTICATE)?.to_str().ok()?;
    let start = challenge.find("resource_metadata=\"")? + "resource_metadata=\"".len();
    let end = challenge[start..].find('"')?;
    Some(challenge[start..start + end].to_owned())
}

/// RFC 8414 (and OpenID Connect Discovery): the issuer's metadata, which must name the same issuer.
async fn authorization_server_metadata(
    http: &reqwest::Client,
    outbound: &OutboundPolicy,
    issuer: &str,
) -> Result<Value, String> {
    let url = Url::parse(issuer).map_err(|_| "the authorization server's issuer is not a URL")?;
    let mut candidates = well_known(&url, "oauth-authorization-server", true);
    candidates.extend(well_known(&url, "openid-configuration", true));
    if !url.path().trim_end_matches('/').is_empty() {
        candidates.push(format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/')));
    }
    for candidate in candidates {
        if let Some(metadata) = get_json(http, outbound, &candidate).await? {
            let named = metadata.get("issuer").and_then(Value::as_str).unwrap_or_default();
            if named.trim_end_matches('/') != issuer.trim_end_matches('/') {
                return Err(format!("the authorization server's metadata names another issuer ({named})"));
            }
            return Ok(metadata);
        }
    }
    Err(format!("the authorization server {issuer} publishes no metadata (RFC 8414)"))
}

/// `origin/.well-known/{name}{path}`, and (unless `path_only`) `origin/.well-known/{name}` after it.
fn well_known(url: &Url, name: &str, path_only: bool) -> Vec<String> {
    let origin = url.origin().ascii_serialization();
    let path = url.path().trim_end_matches('/');
    let mut found = vec![format!("{origin}/.well-known/{name}{path}")];
    if !path.is_empty() && !path_only {
        found.push(format!("{origin}/.well-known/{name}"));
    }
    found
}

/// A metadata document: `None` when there is none at that URL (4xx), an error when it cannot be had.
async fn get_json(http: &reqwest::Client, outbound: &OutboundPolicy, url: &str) -> Result<Option<Value>, String> {
    outbound.check(url).await.map_err(|error| format!("{url} is refused: {error}"))?;
    let response = http
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .timeout(REQUEST_TIMEOUT)
        .send()
        .await
        .map_err(|error| format!("{url} could not be reached: {}", without_url(&error)))?;
    let status = response.status();
    if status.is_client_error() || status.is_redirection() {
        return Ok(None);
    }
    if !status.is_success() {
        return Err(format!("{url} answered HTTP {}", status.as_u16()));
    }
    let body = limited_body(response).await?;
    let value: Value = serde_json::from_slice(&body).map_err(|_| format!("{url} is not JSON"))?;
    Ok(value.is_object().then_some(value))
}

async fn limited_body(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) =
        response.chunk().await.map_err(|error| format!("the answer broke off: {}", without_url(&error)))?
    {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_BODY {
            return Err(format!("the answer is larger than {} KiB", MAX_BODY / 1024));
        }
    }
    Ok(body)
}

/// The PRM's `resource` is the connector's URL, or a prefix of it ending at a path segment.
fn same_resource(resource: &str, url: &str) -> bool {
    let (resource, url) = (resource.trim_end_matches('/'), url.trim_end_matches('/'));
    url == resource || url.strip_prefix(resource).is_some_and(|rest| rest.starts_with('/'))
}

/// 32 random bytes, base64url: a PKCE verifier (43 characters) or a state.
fn random_text() -> String {
    let mut bytes = [0_u8; 32];
    rand::rng().fill(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// An OAuth error code as it may be shown: `[a-z_]`, at most 40 characters.
pub fn error_code(code: &str) -> String {
    let code: String = code.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').take(40).collect();
    if code.is_empty() { "unknown_error".to_owned() } else { code }
}

fn without_url(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return "timed out".to_owned();
    }
    if error.is_connect() {
        return "connection failed".to_owned();
    }
    let mut error: &dyn std::error::Error = error;
    while let Some(source) = error.source() {
        error = source;
    }
    error.to_string()
}

/// `application/x-www-form-urlencoded`, as a URL's query encodes it.
fn form_body(pairs: &[(&str, &str)]) -> String {
    let mut url = Url::parse("http://form.invalid/").expect("a valid URL");
    url.query_pairs_mut().extend_pairs(pairs);
    url.query().unwrap_or_default().to_owned()
}

/// The SHA-256 of a state, which is what is stored.
pub fn state_hash(state: &str) -> Vec<u8> {
    Sha256::digest(state.as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_uris_insert_the_path() {
        let url = Url::parse("https://mcp.example.com/tenant/mcp").unwrap();
        assert_eq!(
            well_known(&url, "oauth-protected-resource", false),
            [
                "https://mcp.example.com/.well-known/oauth-protected-resource/tenant/mcp",
                "https://mcp.example.com/.well-known/oauth-protected-resource"
            ]
        );
        let root = Url::parse("https://as.example.com").unwrap();
        assert_eq!(
            well_known(&root, "oauth-authorization-server", true),
            ["https://as.example.com/.well-known/oauth-authorization-server"]
        );
    }

    #[test]
    fn a_resource_matches_its_url_or_a_parent_path() {
        assert!(same_resource("https://a.example/mcp", "https://a.example/mcp"));
        assert!(same_resource("https://a.example/", "https://a.example/mcp"));
        assert!(!same_resource("https://a.example/m", "https://a.example/mcp"));
        assert!(!same_resource("https://b.example/mcp", "https://a.example/mcp"));
    }

    #[test]
    fn tokens_are_refreshed_a_fifth_of_their_life_early_at_most_a_minute() {
        assert_eq!(refresh_margin(Some(5)), chrono::Duration::seconds(1));
        assert_eq!(refresh_margin(Some(3600)), chrono::Duration::seconds(60));
        assert_eq!(error_code("invalid grant<script>"), "invalidgrantscript");
    }

    #[test]
    fn forms_are_url_encoded() {
        assert_eq!(form_body(&[("a", "b c"), ("d", "&=")]), "a=b+c&d=%26%3D");
    }
}
