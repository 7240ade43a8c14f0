//! What the HTTP providers share: one connection-pooling client with a connect timeout, sending a
//! request with a first-byte timeout, turning an error status into a typed error (with `Retry-After`),
//! and reading a Server-Sent Events body.

use std::time::Duration;

use eventsource_stream::{Event, Eventsource as _};
use futures::{Stream, StreamExt as _};
use reqwest::{Response, StatusCode};

use super::{ProviderError, ProviderErrorKind as Kind};

/// Timeouts for talking to model providers. Tests shorten them; nothing else should need to.
#[derive(Debug, Clone)]
pub struct UpstreamSettings {
    pub connect_timeout: Duration,
    /// From sending the request to the response headers.
    pub first_byte_timeout: Duration,
    /// Between two pieces of a streamed answer.
    pub idle_timeout: Duration,
    /// Attempts after the first, on 429, 5xx, timeouts and connection failures before the first token.
    pub max_retries: u32,
    pub backoff_base: Duration,
    /// A `Retry-After` longer than this is not waited for: the turn fails as rate limited at once.
    pub max_retry_after: Duration,
}

impl Default for UpstreamSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            first_byte_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(60),
            max_retries: 2,
            backoff_base: Duration::from_millis(500),
            max_retry_after: Duration::from_secs(20),
        }
    }
}

/// The client every provider shares, so connections to an upstream are pooled across turns.
#[derive(Debug, Clone)]
pub struct HttpClient {
    pub client: reqwest::Client,
    pub settings: UpstreamSettings,
    /// For endpoints tenants name: an IP literal never reaches the resolver, so `send` judges it.
    outbound: Option<crate::outbound::OutboundPolicy>,
}

impl HttpClient {
    pub fn new(settings: UpstreamSettings) -> Self {
        Self::build(settings, None)
    }

    /// A client for endpoints tenants name (their own keys' base URLs): names resolve through the
    /// outbound policy at every connection.
    pub fn guarded(settings: UpstreamSettings, outbound: &crate::outbound::OutboundPolicy) -> Self {
        Self::build(settings, Some(outbound))
    }

    fn build(settings: UpstreamSettings, outbound: Option<&crate::outbound::OutboundPolicy>) -> Self {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(90));
        if let Some(outbound) = outbound {
            // Redirects are not followed: one could lead to an internal address, and the key with it. No
            // proxy from the environment either: a proxy would resolve the name itself, past the policy.
            builder = builder.dns_resolver(outbound.resolver()).redirect(reqwest::redirect::Policy::none()).no_proxy();
        }
        let client = builder.build().expect("the HTTP client builds with rustls");
        Self { client, settings, outbound: outbound.cloned() }
    }

    /// Sends the request and returns the response once its status is a success.
    pub async fn send(&self, request: reqwest::RequestBuilder, secret: &str) -> Result<Response, ProviderError> {
        let mut request = request.build().map_err(|error| transport_error(&error))?;
        crate::telemetry::propagate(request.headers_mut());
        if let Some(outbound) = &self.outbound {
            outbound
                .check_when_connecting(request.url())
                .map_err(|error| ProviderError::new(Kind::Unreachable, error.to_string()))?;
        }
        let response = tokio::time::timeout(self.settings.first_byte_timeout, self.client.execute(request))
            .await
            .map_err(|_| ProviderError::new(Kind::Timeout, "the provider did not answer in time"))?
            .map_err(|error| transport_error(&error))?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(status_error(response, secret).await)
    }
}

fn transport_error(error: &reqwest::Error) -> ProviderError {
    if error.is_timeout() {
        ProviderError::new(Kind::Timeout, "the provider did not answer in time")
    } else if error.is_connect() {
        ProviderError::new(Kind::Unreachable, "could not connect to the provider")
    } else {
        ProviderError::new(Kind::Unreachable, "the connection to the provider failed")
    }
}

async fn status_error(response: Response, secret: &str) -> ProviderError {
    let status = response.status();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = response.text().await.unwrap_or_default();
    let detail = upstream_message(&body, secret);
    let (kind, summary) = match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            // Providers echo part of a rejected key in their message: never pass it on.
            return ProviderError::new(Kind::AuthFailed, format!("the provider rejected the API key ({status})"));
        }
        StatusCode::TOO_MANY_REQUESTS => (Kind::RateLimited { retry_after }, "the provider is rate limiting"),
        status if status.is_server_error() => (Kind::Unavailable, "the provider failed"),
        _ => (Kind::InvalidRequest, "the provider refused the request"),
    };
    let message = match detail {
        Some(detail) => format!("{summary} ({status}): {detail}"),
        None => format!("{summary} ({status})"),
    };
    ProviderError::new(kind, message)
}

/// The human message inside a provider's JSON error body, shortened and with the key masked.
fn upstream_message(body: &str, secret: &str) -> Option<String> {
    let json: serde_json::Value = serde_json::from_str(body).ok()?;
    let error = json.get("error")?;
    let message = error.get("message").and_then(|message| message.as_str())?;
    let short: String = message.chars().take(300).collect();
    Some(redact(&short, secret))
}

/// Removes the key from text that came back from a provider.
pub fn redact(text: &str, secret: &str) -> String {
    if secret.len() < 4 { text.to_owned() } else { text.replace(secret, "[redacted]") }
}

/// The SSE events of a streaming response; a broken stream becomes a typed error.
pub fn events(response: Response) -> impl Stream<Item = Result<Event, ProviderError>> + Send {
    readable(response.bytes_stream()).eventsource().map(|event| {
        event.map_err(|error| {
            let message = match error {
                eventsource_stream::EventStreamError::Transport(_) => "the provider's stream broke off",
                _ => "the provider's stream was not valid Server-Sent Events",
            };
            ProviderError::new(Kind::BadResponse, message)
        })
    })
}

/// A byte order mark, which the format allows at the start of a stream, in UTF-8.
const BOM: &[u8] = "\u{feff}".as_bytes();

/// The body as eventsource-stream 0.2 reads it right. Byte order marks at the start are dropped: it skips a
/// first one by slicing one byte into the character, and panics. Line ends are written as LF: it holds a
/// CR back until the next character shows whether it began a CRLF, so an event ending a stream written
/// with CRs, or followed by bytes that are not UTF-8, would never be dispatched.
fn readable<B, E>(body: impl Stream<Item = Result<B, E>>) -> impl Stream<Item = Result<B, E>>
where
    B: AsRef<[u8]> + From<Vec<u8>>,
{
    let mut lines = LineEnds { start: Some(Vec::new()), after_cr: false };
    body.map(move |chunk| chunk.map(|chunk| B::from(lines.feed(chunk.as_ref()))))
}

/// The state of [`readable`] between chunks.
struct LineEnds {
    /// The body so far while it is only byte order marks (or the first bytes of one); `None` once past them.
    start: Option<Vec<u8>>,
    /// The last byte was a CR: an LF first in the next chunk completes its CRLF.
    after_cr: bool,
}

impl LineEnds {
    fn feed(&mut self, chunk: &[u8]) -> Vec<u8> {
        let joined;
        let mut text = chunk;
        if let Some(mut start) = self.start.take() {
            start.extend_from_slice(chunk);
            joined = start;
            text = &joined;
            while let Some(rest) = text.strip_prefix(BOM) {
                text = rest;
            }
            if BOM.starts_with(text) {
                self.start = Some(text.to_vec());
                return Vec::new();
            }
        }
        let mut out = Vec::with_capacity(text.len());
        for &byte in text {
            match byte {
                b'\n' if self.after_cr => {}
                b'\r' => out.push(b'\n'),
                _ => out.push(byte),
            }
            self.after_cr = byte == b'\r';
        }
        out
    }
}

/// Parses an event's JSON data, or reports a malformed stream.
pub fn parse_json(data: &str) -> Result<serde_json::Value, ProviderError> {
    serde_json::from_str(data).map_err(|_| ProviderError::new(Kind::BadResponse, "the provider sent malformed JSON"))
}

/// An error the provider reported inside an otherwise successful stream.
pub fn in_stream_error(error: &serde_json::Value, secret: &str) -> ProviderError {
    let kind_name = error.get("type").or_else(|| error.get("status")).and_then(|kind| kind.as_str()).unwrap_or("");
    let message = error.get("message").and_then(|message| message.as_str()).unwrap_or("the provider reported an error");
    let kind = match kind_name {
        "rate_limit_error" | "rate_limit_exceeded" | "RESOURCE_EXHAUSTED" => Kind::RateLimited { retry_after: None },
        "overloaded_error" | "api_error" | "server_error" | "INTERNAL" | "UNAVAILABLE" => Kind::Unavailable,
        "authentication_error" | "permission_error" | "UNAUTHENTICATED" | "PERMISSION_DENIED" => {
            return ProviderError::new(Kind::AuthFailed, "the provider rejected the API key");
        }
        _ => Kind::BadResponse,
    };
    let short: String = message.chars().take(300).collect();
    ProviderError::new(kind, format!("the provider reported an error mid-stream: {}", redact(&short, secret)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_messages_are_shortened_and_never_carry_the_key() {
        let body = r#"{"error": {"message": "Incorrect API key provided: sk-canary-123. See docs."}}"#;
        let message = upstream_message(body, "sk-canary-123").unwrap();
        assert!(!message.contains("sk-canary-123"), "{message}");
        assert!(upstream_message("not json", "k").is_none());
        let long = format!(r#"{{"error": {{"message": "{}"}}}}"#, "x".repeat(1000));
        assert_eq!(upstream_message(&long, "k").unwrap().chars().count(), 300);
    }

    #[test]
    fn in_stream_errors_map_to_their_kind() {
        let overloaded = serde_json::json!({"type": "overloaded_error", "message": "Overloaded"});
        assert_eq!(in_stream_error(&overloaded, "k").kind, Kind::Unavailable);
        let limited = serde_json::json!({"status": "RESOURCE_EXHAUSTED", "message": "quota"});
        assert!(matches!(in_stream_error(&limited, "k").kind, Kind::RateLimited { .. }));
        let auth = serde_json::json!({"type": "authentication_error", "message": "bad key sk-1234"});
        let error = in_stream_error(&auth, "sk-1234");
        assert_eq!(error.kind, Kind::AuthFailed);
        assert!(!error.message.contains("sk-1234"));
    }
}
