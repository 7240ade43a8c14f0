//! Retries before the first token: a 429, a 5xx, a timeout or a refused connection is retried with
//! exponential backoff and jitter, waiting what `Retry-After` asks when it is given. Once a piece of the
//! answer exists nothing is retried, since the user may already have seen it.

use std::time::Duration;

use futures::stream::{self, StreamExt as _};
use rand::Rng as _;

use super::http::UpstreamSettings;
use super::{ChatRequest, ChunkStream, Provider, ProviderError, ProviderErrorKind as Kind};

pub async fn open_with_retries(
    provider: &Provider,
    request: &ChatRequest,
    settings: &UpstreamSettings,
) -> Result<ChunkStream, ProviderError> {
    let mut attempt = 0;
    loop {
        let error = match provider.stream(request).await {
            Ok(mut chunks) => match chunks.next().await {
                Some(Ok(first)) => return Ok(stream::once(async { Ok(first) }).chain(chunks).boxed()),
                None => return Ok(stream::empty().boxed()),
                Some(Err(error)) => error,
            },
            Err(error) => error,
        };
        let Some(delay) = retry_delay(&error, attempt, settings) else {
            return Err(error);
        };
        tracing::info!(attempt, code = error.code(), delay_ms = delay.as_millis(), "retrying the model provider");
        tokio::time::sleep(delay).await;
        attempt += 1;
    }
}

/// Runs a request that has no stream (an embedding call) with the same retry policy as a chat's opening.
pub async fn call_with_retries<T, F, Fut>(settings: &UpstreamSettings, mut call: F) -> Result<T, ProviderError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ProviderError>>,
{
    let mut attempt = 0;
    loop {
        let error = match call().await {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        let Some(delay) = retry_delay(&error, attempt, settings) else {
            return Err(error);
        };
        tracing::info!(attempt, code = error.code(), delay_ms = delay.as_millis(), "retrying the provider");
        tokio::time::sleep(delay).await;
        attempt += 1;
    }
}

/// How long to wait before the next attempt, or `None` to give up.
fn retry_delay(error: &ProviderError, attempt: u32, settings: &UpstreamSettings) -> Option<Duration> {
    if attempt >= settings.max_retries {
        return None;
    }
    match error.kind {
        Kind::RateLimited { retry_after: Some(wait) } => (wait <= settings.max_retry_after).then_some(wait),
        Kind::RateLimited { retry_after: None } | Kind::Unavailable | Kind::Timeout | Kind::Unreachable => {
            let exponential = settings.backoff_base.saturating_mul(2u32.saturating_pow(attempt));
            Some(exponential.mul_f64(rand::rng().random_range(0.5..1.5)))
        }
        Kind::AuthFailed
        | Kind::BadResponse
        | Kind::InvalidRequest
        | Kind::NotConfigured
        | Kind::Unsupported { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(kind: Kind) -> ProviderError {
        ProviderError::new(kind, "test")
    }

    #[test]
    fn only_transient_failures_are_retried_and_only_so_often() {
        let settings = UpstreamSettings { max_retries: 2, ..UpstreamSettings::default() };
        assert!(retry_delay(&error(Kind::Unavailable), 0, &settings).is_some());
        assert!(retry_delay(&error(Kind::Timeout), 1, &settings).is_some());
        assert!(retry_delay(&error(Kind::Unavailable), 2, &settings).is_none());
        assert!(retry_delay(&error(Kind::AuthFailed), 0, &settings).is_none());
        assert!(retry_delay(&error(Kind::BadResponse), 0, &settings).is_none());
        assert!(retry_delay(&error(Kind::InvalidRequest), 0, &settings).is_none());
    }

    #[test]
    fn retry_after_is_honoured_unless_too_long() {
        let settings = UpstreamSettings::default();
        let asked = error(Kind::RateLimited { retry_after: Some(Duration::from_secs(3)) });
        assert_eq!(retry_delay(&asked, 0, &settings), Some(Duration::from_secs(3)));
        let too_long = error(Kind::RateLimited { retry_after: Some(Duration::from_hours(1)) });
        assert_eq!(retry_delay(&too_long, 0, &settings), None);
    }

    #[test]
    fn backoff_grows_with_jitter() {
        let settings = UpstreamSettings { backoff_base: Duration::from_millis(100), ..UpstreamSettings::default() };
        for _ in 0..50 {
            let first = retry_delay(&error(Kind::Unavailable), 0, &settings).unwrap();
            let second = retry_delay(&error(Kind::Unavailable), 1, &settings).unwrap();
            assert!((Duration::from_millis(50)..Duration::from_millis(150)).contains(&first), "{first:?}");
            assert!((Duration::from_millis(100)..Duration::from_millis(300)).contains(&second), "{second:?}");
        }
    }
}
