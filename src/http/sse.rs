//! Engine events as Server-Sent Events: `id:` is the sequence number, `event:` the event's name, `data:`
//! the event as JSON. Keep-alive comments every 15 s keep proxies from closing an idle stream. Every
//! stream holds its [`StreamSlot`] (the cap on open streams) until its body is dropped.

use std::convert::Infallible;
use std::time::Duration;

use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt as _};

use super::streams::StreamSlot;
use crate::engine::EventStream;

pub fn stream(events: EventStream, slot: StreamSlot) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let frames = events.map(|event| {
        let frame = Event::default().id(event.seq.to_string()).event(event.kind.name());
        Ok(frame.json_data(&event).unwrap_or_else(|_| Event::default().comment("unserialisable event")))
    });
    Sse::new(holding(frames, slot)).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)).text("keep-alive"))
}

/// `frames`, keeping `slot` taken for as long as they are: until the stream ends or the client leaves
/// (hyper drops the body), whichever comes first.
pub fn holding<S: Stream>(frames: S, slot: StreamSlot) -> impl Stream<Item = S::Item> {
    frames.map(move |frame| {
        let _taken = &slot;
        frame
    })
}

/// True when the client asked for an event stream.
pub fn wants_event_stream(headers: &HeaderMap) -> bool {
    super::extract::accepts(headers, "text/event-stream")
}

/// The sequence number to resume after: `Last-Event-ID`, else 0.
pub fn last_event_id(headers: &HeaderMap) -> Option<Result<i64, ()>> {
    let value = headers.get("last-event-id")?;
    // Unsigned first, so that `-0` is refused like every other signed number.
    let seq = value.to_str().ok().and_then(|value| value.trim().parse::<u64>().ok());
    Some(seq.and_then(|seq| i64::try_from(seq).ok()).ok_or(()))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;
    use proptest::prelude::*;

    use super::*;

    fn read(value: &[u8]) -> Option<Result<i64, ()>> {
        let mut headers = HeaderMap::new();
        headers.insert("last-event-id", HeaderValue::from_bytes(value).expect("a header value"));
        last_event_id(&headers)
    }

    /// A sequence number by its own reading: digits (after an optional `+`) between spaces and tabs, at
    /// most `i64::MAX`.
    fn sequence_number(bytes: &[u8]) -> Option<i64> {
        let text = bytes.trim_ascii();
        let digits = text.strip_prefix(b"+").unwrap_or(text);
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        digits.iter().try_fold(0i64, |value, digit| value.checked_mul(10)?.checked_add(i64::from(digit - b'0')))
    }

    #[test]
    fn without_the_header_there_is_nothing_to_resume_after() {
        assert_eq!(last_event_id(&HeaderMap::new()), None);
    }

    #[test]
    fn a_negative_zero_is_refused_like_any_signed_number() {
        assert_eq!(read(b"-0"), Some(Err(())));
        assert_eq!(read(b"+0"), Some(Ok(0)));
    }

    proptest! {
        #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::with_cases(512) })]

        /// Every sequence number reads back as itself, spaces around it or not; a negative one is refused.
        #[test]
        fn every_sequence_number_reads_back(seq in any::<i64>(), before in "[ \t]{0,2}", after in "[ \t]{0,2}") {
            let read = read(format!("{before}{seq}{after}").as_bytes());
            prop_assert_eq!(read, Some(if seq >= 0 { Ok(seq) } else { Err(()) }));
        }

        /// Any header value a client can send is a sequence number or refused, never read as another number.
        #[test]
        fn any_header_is_a_sequence_number_or_refused(
            bytes in prop_oneof![
                prop::collection::vec(any::<u8>(), 0..24),
                "[ +0-9-]{0,24}".prop_map(String::into_bytes),
                "[0-9]{18,20}".prop_map(String::into_bytes),
            ],
        ) {
            // Bytes no header value can hold (controls, DEL) never reach a handler.
            if HeaderValue::from_bytes(&bytes).is_err() {
                return Ok(());
            }
            prop_assert_eq!(read(&bytes), Some(sequence_number(&bytes).ok_or(())));
        }
    }
}
