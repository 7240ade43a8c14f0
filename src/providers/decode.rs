//! Turning a provider's SSE response into [`ChatChunk`]s: each provider supplies a small decoder for its
//! events; this module applies the idle timeout and reports a stream that ends without its end marker.

use std::time::Duration;

use eventsource_stream::Event;
use futures::stream::{self, StreamExt as _};
use reqwest::Response;

use super::{ChatChunk, ChunkStream, ProviderError, ProviderErrorKind as Kind, http};

pub trait Decoder: Send + 'static {
    /// The chunks one event carries (often none).
    fn decode(&mut self, event: &Event) -> Result<Vec<ChatChunk>, ProviderError>;
    /// Whether the provider's end marker has been seen.
    fn finished(&self) -> bool;
}

pub fn decode_stream<D: Decoder>(response: Response, decoder: D, idle_timeout: Duration) -> ChunkStream {
    let events = http::events(response).boxed();
    stream::unfold(Some((events, decoder)), move |state| async move {
        let (mut events, mut decoder) = state?;
        loop {
            if decoder.finished() {
                return None;
            }
            let Ok(next) = tokio::time::timeout(idle_timeout, events.next()).await else {
                let message = format!("the provider sent nothing for {} ms", idle_timeout.as_millis());
                return Some((vec![Err(ProviderError::new(Kind::Timeout, message))], None));
            };
            let result = match next {
                None => {
                    Err(ProviderError::new(Kind::BadResponse, "the provider's stream ended before it was complete"))
                }
                Some(Err(error)) => Err(error),
                Some(Ok(event)) => decoder.decode(&event),
            };
            match result {
                Ok(chunks) if chunks.is_empty() => {}
                Ok(chunks) => return Some((chunks.into_iter().map(Ok).collect::<Vec<_>>(), Some((events, decoder)))),
                Err(error) => return Some((vec![Err(error)], None)),
            }
        }
    })
    .flat_map(stream::iter)
    .boxed()
}

/// A JSON number as u32 (token counts), 0 when absent.
pub fn count(value: &serde_json::Value) -> u32 {
    value.as_u64().and_then(|number| u32::try_from(number).ok()).unwrap_or(0)
}
