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

/// A token count in a provider's usage report; absent or not a count: 0.
pub fn tokens(value: &serde_json::Value) -> u64 {
    value.as_u64().unwrap_or(0)
}

/// A JSON number as u32 (an index), 0 when absent.
pub fn count(value: &serde_json::Value) -> u32 {
    value.as_u64().and_then(|number| u32::try_from(number).ok()).unwrap_or(0)
}

/// What the decoders' property tests share: a response whose body arrives in given chunks, decoded as the
/// service decodes it; SSE bodies framed in every way the format allows; bodies cut anywhere; garbage.
#[cfg(test)]
pub mod testing {
    use proptest::prelude::*;
    use proptest::sample::Index;

    use super::*;

    /// How a body is written: the line ending (one per stream, as the format allows three), a byte order
    /// mark first or not, and keep-alive comments between events or not.
    #[derive(Debug, Clone)]
    pub struct Framing {
        pub line_end: &'static str,
        pub bom: bool,
        pub comments: bool,
    }

    pub fn framing() -> impl Strategy<Value = Framing> {
        (prop::sample::select(vec!["\n", "\r\n", "\r"]), any::<bool>(), any::<bool>())
            .prop_map(|(line_end, bom, comments)| Framing { line_end, bom, comments })
    }

    /// One event: its name (`event:`), if it has one, and its data lines.
    pub type Frame = (Option<String>, Vec<String>);

    /// The events as an SSE body, followed by `trailer` (what the provider sent after its end marker).
    pub fn body(framing: &Framing, events: &[Frame], trailer: &[u8]) -> Vec<u8> {
        let end = framing.line_end;
        let mut text = String::new();
        if framing.bom {
            text.push('\u{feff}');
        }
        for (name, lines) in events {
            if framing.comments {
                text.extend([": keep-alive", end]);
            }
            if let Some(name) = name {
                text.extend(["event: ", name, end]);
            }
            for line in lines {
                text.extend(["data: ", line, end]);
            }
            text.push_str(end);
        }
        let mut bytes = text.into_bytes();
        bytes.extend_from_slice(trailer);
        bytes
    }

    /// Where to cut a body: up to 24 offsets, or (`true`) between every two bytes.
    pub fn cuts() -> impl Strategy<Value = (Vec<Index>, bool)> {
        (prop::collection::vec(any::<Index>(), 0..24), prop::bool::weighted(0.1))
    }

    /// The body in chunks cut at `cuts`.
    pub fn split(body: &[u8], (cuts, every_byte): &(Vec<Index>, bool)) -> Vec<Vec<u8>> {
        if *every_byte {
            return body.iter().map(|byte| vec![*byte]).collect();
        }
        let mut offsets: Vec<usize> = cuts.iter().map(|cut| cut.index(body.len() + 1)).collect();
        offsets.extend([0, body.len()]);
        offsets.sort_unstable();
        offsets.dedup();
        offsets.windows(2).map(|pair| body[pair[0]..pair[1]].to_vec()).collect()
    }

    /// Everything `decoder` makes of a response whose body arrives in `chunks`, through [`decode_stream`].
    pub fn decode_chunks<D: Decoder>(chunks: Vec<Vec<u8>>, decoder: D) -> Vec<Result<ChatChunk, ProviderError>> {
        let body = reqwest::Body::wrap_stream(stream::iter(chunks.into_iter().map(Ok::<_, std::io::Error>)));
        let response = Response::from(::http::Response::new(body));
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a runtime");
        runtime.block_on(decode_stream(response, decoder, Duration::from_secs(60)).collect())
    }

    /// The decoded chunks, or the error's message (errors are not comparable).
    pub fn outcome(decoded: Vec<Result<ChatChunk, ProviderError>>) -> Result<Vec<ChatChunk>, String> {
        decoded.into_iter().collect::<Result<_, _>>().map_err(|error| format!("{}: {}", error.code(), error.message))
    }

    /// Bytes a broken or hostile upstream might send: arbitrary bytes, or pieces of SSE and JSON in any
    /// order (field names, line endings, brackets, a byte order mark, bytes that are not UTF-8).
    pub fn garbage() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            prop::collection::vec(any::<u8>(), 0..16),
            "[^\r\n]{0,12}".prop_map(String::into_bytes),
            prop::sample::select(vec![
                "data: ",
                "data:",
                "event: ",
                "id: ",
                "retry: ",
                ":",
                "\n",
                "\r",
                "\r\n",
                "{",
                "}",
                "[",
                "]",
                "\"",
                "{\"choices\":[",
                "{\"type\":\"",
                "[DONE]",
                "message_stop",
                "\u{feff}",
                "\u{0}",
                "\u{1F600}",
            ])
            .prop_map(|piece| piece.as_bytes().to_vec()),
            prop::sample::select(vec![vec![0xff], vec![0xef, 0xbb], vec![0xc3], vec![0xe2, 0x82]]),
        ];
        prop::collection::vec(piece, 0..48).prop_map(|pieces| pieces.concat())
    }

    /// Any JSON value, its object keys often `keys` (the fields a decoder reads), its strings any text.
    pub fn json(keys: &'static [&'static str]) -> impl Strategy<Value = serde_json::Value> {
        use serde_json::Value;
        let text = move || prop_oneof!["(?s).{0,12}", prop::sample::select(keys).prop_map(str::to_owned)];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            text().prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 64, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((text(), inner), 0..6)
                    .prop_map(|fields| Value::Object(fields.into_iter().collect())),
            ]
        })
    }

    /// What decoding garbage must give: chunks, then one clear error at the end (`BadResponse` or an error the
    /// provider reported), unless the provider's end marker came through; never a panic, never an error in
    /// the middle.
    pub fn assert_ends_clearly(decoded: &[Result<ChatChunk, ProviderError>], body: &[u8], end_marker: &str) {
        let errors = decoded.iter().filter(|item| item.is_err()).count();
        assert!(errors <= 1, "{errors} errors: {decoded:?}");
        match decoded.last() {
            Some(Err(error)) => {
                assert!(error.code().starts_with("upstream_"), "{error:?}");
                assert!(!error.message.trim().is_empty(), "{error:?}");
            }
            _ => assert!(
                body.windows(end_marker.len()).any(|window| window == end_marker.as_bytes()),
                "a stream without its end marker ended without an error: {decoded:?}"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::testing::{self, Frame};
    use super::*;

    /// Each event as a text chunk `name|data`, until an event whose data is `[END]`.
    struct Echo {
        done: bool,
    }

    impl Decoder for Echo {
        fn decode(&mut self, event: &Event) -> Result<Vec<ChatChunk>, ProviderError> {
            if event.data == "[END]" {
                self.done = true;
                return Ok(Vec::new());
            }
            Ok(vec![ChatChunk::Text(format!("{}|{}", event.event, event.data))])
        }

        fn finished(&self) -> bool {
            self.done
        }
    }

    /// Events with any name and data lines of any text (a line is anything without CR or LF).
    fn frames() -> impl Strategy<Value = Vec<Frame>> {
        let name = prop::option::of("[a-z_]{1,12}");
        let lines = prop::collection::vec("[^\r\n]{0,24}", 1..4);
        prop::collection::vec((name, lines), 0..12)
    }

    /// What the SSE format makes of `frames`, as [`Echo`] reports it.
    fn expected(frames: &[Frame]) -> Vec<ChatChunk> {
        frames
            .iter()
            .map(|(name, lines)| (name.as_deref().unwrap_or("message"), lines.join("\n")))
            .take_while(|(_, data)| data != "[END]")
            .map(|(name, data)| ChatChunk::Text(format!("{name}|{data}")))
            .collect()
    }

    fn end() -> Frame {
        (None, vec!["[END]".to_owned()])
    }

    fn decode_body(body: &[u8]) -> Result<Vec<ChatChunk>, String> {
        testing::outcome(testing::decode_chunks(vec![body.to_vec()], Echo { done: false }))
    }

    #[test]
    fn a_stream_may_open_with_byte_order_marks() {
        // eventsource-stream sliced the mark one byte in, and panicked.
        let want = Ok(vec![ChatChunk::Text("message|x".into())]);
        assert_eq!(decode_body("\u{feff}data: x\n\ndata: [END]\n\n".as_bytes()), want);
        assert_eq!(decode_body("\u{feff}\u{feff}data: x\n\ndata: [END]\n\n".as_bytes()), want);
        let split = vec![vec![0xef], vec![0xbb], b"\xbfdata: x\n\ndata: [END]\n\n".to_vec()];
        assert_eq!(testing::outcome(testing::decode_chunks(split, Echo { done: false })), want);
        assert_eq!(decode_body("\u{feff}".as_bytes()).unwrap_err(), decode_body(b"").unwrap_err());
    }

    #[test]
    fn an_event_ended_by_carriage_returns_is_dispatched_at_once() {
        // eventsource-stream held a final CR back, waiting to see whether an LF followed.
        assert_eq!(decode_body(b"data: x\r\rdata: [END]\r\r"), Ok(vec![ChatChunk::Text("message|x".into())]));
        assert_eq!(decode_body(b"data: [END]\r\r\xff"), Ok(Vec::new()));
        let split = vec![b"data: x\r".to_vec(), b"\n\r".to_vec(), b"\ndata: [END]\r\n\r\n".to_vec()];
        let want = Ok(vec![ChatChunk::Text("message|x".into())]);
        assert_eq!(testing::outcome(testing::decode_chunks(split, Echo { done: false })), want);
    }

    proptest! {
        #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::with_cases(256) })]

        /// However a valid stream is cut into chunks (inside a line ending, inside a character), it decodes to
        /// the events it holds, and nothing after its end marker is read.
        #[test]
        fn a_valid_stream_decodes_the_same_however_it_is_cut(
            framing in testing::framing(),
            mut frames in frames(),
            trailer in testing::garbage(),
            cuts in testing::cuts(),
        ) {
            let want = expected(&frames);
            frames.push(end());
            let body = testing::body(&framing, &frames, &trailer);
            let whole = testing::outcome(testing::decode_chunks(vec![body.clone()], Echo { done: false }));
            prop_assert_eq!(&whole, &Ok(want));
            let cut = testing::outcome(testing::decode_chunks(testing::split(&body, &cuts), Echo { done: false }));
            prop_assert_eq!(cut, whole);
        }

        /// Garbage ends in one clear error (the stream ended without its end marker, or was not SSE), the same
        /// however it is cut.
        #[test]
        fn garbage_ends_in_one_clear_error_however_it_is_cut(body in testing::garbage(), cuts in testing::cuts()) {
            let decoded = testing::decode_chunks(vec![body.clone()], Echo { done: false });
            testing::assert_ends_clearly(&decoded, &body, "[END]");
            let cut = testing::decode_chunks(testing::split(&body, &cuts), Echo { done: false });
            prop_assert_eq!(testing::outcome(cut), testing::outcome(decoded));
        }
    }
}
