//! Engine events as Server-Sent Events: `id:` is the sequence number, `event:` the event's name, `data:`
//! the event as JSON. Keep-alive comments every 15 s keep proxies from closing an idle stream.

use std::convert::Infallible;
use std::time::Duration;

use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt as _};

use crate::engine::EventStream;

pub fn stream(events: EventStream) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let frames = events.map(|event| {
        let frame = Event::default().id(event.seq.to_string()).event(event.kind.name());
        Ok(frame.json_data(&event).unwrap_or_else(|_| Event::default().comment("unserialisable event")))
    });
    Sse::new(frames).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)).text("keep-alive"))
}

/// True when the client asked for an event stream.
pub fn wants_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get_all(axum::http::header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| value.split(',').any(|part| part.trim().starts_with("text/event-stream")))
}

/// The sequence number to resume after: `Last-Event-ID`, else 0.
pub fn last_event_id(headers: &HeaderMap) -> Option<Result<i64, ()>> {
    let value = headers.get("last-event-id")?;
    Some(value.to_str().ok().and_then(|value| value.trim().parse::<i64>().ok()).filter(|seq| *seq >= 0).ok_or(()))
}
