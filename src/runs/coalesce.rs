//! A run's events with consecutive `message.delta`s kept as one entry: their text joined and the byte
//! length of each piece. An answer streams hundreds of deltas; kept one by one they cost a row each in
//! `run_events` and an allocation each in memory. Kept joined, every delta can still be given back on its
//! own, with its own number, from any point: replay is the live stream again, exactly.

use crate::ids::RunId;
use crate::runs::events::{EventKind, RunEvent};

/// A count of pieces as a distance between sequence numbers.
fn as_seq(count: usize) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

/// Consecutive deltas of one run, numbered `first_seq`, `first_seq + 1`, … in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deltas {
    pub run_id: RunId,
    pub first_seq: i64,
    pub text: String,
    /// Where each piece ends in `text`, in bytes: piece `i` is `text[ends[i - 1]..ends[i]]`.
    ends: Vec<u32>,
}

/// Why stored deltas cannot be read back.
#[derive(Debug, thiserror::Error)]
#[error("stored deltas of run {run_id} ending at {last_seq} do not fit their text")]
pub struct MalformedDeltas {
    run_id: RunId,
    last_seq: i64,
}

impl Deltas {
    fn new(run_id: RunId, first_seq: i64) -> Self {
        Self { run_id, first_seq, text: String::new(), ends: Vec::new() }
    }

    /// Deltas as `run_events` keeps them: one row numbered by its last piece, the pieces' byte lengths.
    pub fn from_stored(
        run_id: RunId,
        last_seq: i64,
        text: String,
        piece_lengths: &[i32],
    ) -> Result<Self, MalformedDeltas> {
        let malformed = || MalformedDeltas { run_id, last_seq };
        let mut ends = Vec::with_capacity(piece_lengths.len());
        let mut end = 0u32;
        for &length in piece_lengths {
            end = u32::try_from(length).ok().and_then(|length| end.checked_add(length)).ok_or_else(malformed)?;
            if !text.is_char_boundary(end as usize) {
                return Err(malformed());
            }
            ends.push(end);
        }
        if ends.is_empty() || end as usize != text.len() {
            return Err(malformed());
        }
        let first_seq = last_seq - (as_seq(ends.len()) - 1);
        Ok(Self { run_id, first_seq, text, ends })
    }

    pub fn last_seq(&self) -> i64 {
        self.first_seq + as_seq(self.ends.len()) - 1
    }

    /// The pieces' byte lengths, as `run_events.delta_pieces` stores them.
    pub fn piece_lengths(&self) -> Vec<i32> {
        let mut start = 0;
        self.ends
            .iter()
            .map(|&end| {
                let length = end - start;
                start = end;
                i32::try_from(length).unwrap_or(i32::MAX)
            })
            .collect()
    }

    fn push(&mut self, piece: &str) {
        self.text.push_str(piece);
        self.ends.push(u32::try_from(self.text.len()).unwrap_or(u32::MAX));
    }

    fn piece(&self, index: usize) -> &str {
        let start = if index == 0 { 0 } else { self.ends[index - 1] as usize };
        &self.text[start..self.ends[index] as usize]
    }

    /// How many pieces are numbered `after` or lower.
    fn pieces_up_to(&self, after: i64) -> usize {
        usize::try_from(after.saturating_sub(self.first_seq - 1)).unwrap_or(0).min(self.ends.len())
    }

    /// The pieces numbered after `after`, each its own event.
    pub fn events_after(&self, after: i64) -> impl Iterator<Item = RunEvent> + '_ {
        (self.pieces_up_to(after)..self.ends.len()).map(move |index| RunEvent {
            run_id: self.run_id,
            seq: self.first_seq + as_seq(index),
            kind: EventKind::MessageDelta { text: self.piece(index).to_owned() },
        })
    }

    /// The pieces numbered after `after`, still joined (`None` when there are none).
    fn after(&self, after: i64) -> Option<Self> {
        let skip = self.pieces_up_to(after);
        if skip >= self.ends.len() {
            return None;
        }
        let mut rest = Self::new(self.run_id, self.first_seq + as_seq(skip));
        for index in skip..self.ends.len() {
            rest.push(self.piece(index));
        }
        Some(rest)
    }
}

/// One stored or remembered unit: an event, or deltas joined.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    Event(RunEvent),
    Deltas(Deltas),
}

impl Entry {
    pub fn last_seq(&self) -> i64 {
        match self {
            Self::Event(event) => event.seq,
            Self::Deltas(deltas) => deltas.last_seq(),
        }
    }

    /// Its events numbered after `after`, one by one.
    pub fn events_after(&self, after: i64) -> Vec<RunEvent> {
        match self {
            Self::Event(event) if event.seq > after => vec![event.clone()],
            Self::Event(_) => Vec::new(),
            Self::Deltas(deltas) => deltas.events_after(after).collect(),
        }
    }
}

/// A run's events in order, deltas joined as they arrive.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Coalesced {
    entries: Vec<Entry>,
}

impl Coalesced {
    /// Appends `event`, numbered after every event so far.
    pub fn push(&mut self, event: RunEvent) {
        debug_assert!(event.seq > self.last_seq());
        if let EventKind::MessageDelta { text } = &event.kind {
            if let Some(Entry::Deltas(deltas)) = self.entries.last_mut()
                && deltas.last_seq() + 1 == event.seq
            {
                deltas.push(text);
                return;
            }
            let mut deltas = Deltas::new(event.run_id, event.seq);
            deltas.push(text);
            self.entries.push(Entry::Deltas(deltas));
            return;
        }
        self.entries.push(Entry::Event(event));
    }

    /// The number of the last event (0 before any).
    pub fn last_seq(&self) -> i64 {
        self.entries.last().map_or(0, Entry::last_seq)
    }

    /// The entries holding events numbered after `after`, events up to it left out. Entries are in
    /// increasing number, so finding the first is a binary search: followers ask on every wake-up.
    fn start_after(&self, after: i64) -> usize {
        self.entries.partition_point(|entry| entry.last_seq() <= after)
    }

    /// Every event numbered after `after`, one by one, as they were published.
    pub fn events_after(&self, after: i64) -> Vec<RunEvent> {
        self.entries[self.start_after(after)..].iter().flat_map(|entry| entry.events_after(after)).collect()
    }

    /// The entries numbered after `after`, deltas still joined: what a write stores.
    pub fn entries_after(&self, after: i64) -> Vec<Entry> {
        self.entries[self.start_after(after)..]
            .iter()
            .filter_map(|entry| match entry {
                Entry::Event(event) => (event.seq > after).then(|| entry.clone()),
                Entry::Deltas(deltas) => deltas.after(after).map(Entry::Deltas),
            })
            .collect()
    }
}

/// Rows read back in order of their numbers, as events one by one. Rows may overlap: a write whose commit
/// was acknowledged nowhere is written again with what came since, so an event already given is skipped.
pub fn expand(entries: impl IntoIterator<Item = Entry>, after: i64) -> Vec<RunEvent> {
    let mut given = after;
    let mut events = Vec::new();
    for entry in entries {
        let fresh = entry.events_after(given);
        given = given.max(entry.last_seq());
        events.extend(fresh);
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delta(run_id: RunId, seq: i64, text: &str) -> RunEvent {
        RunEvent { run_id, seq, kind: EventKind::MessageDelta { text: text.to_owned() } }
    }

    fn started(run_id: RunId) -> RunEvent {
        RunEvent {
            run_id,
            seq: 1,
            kind: EventKind::RunStarted { session_id: None, provider: "local".to_owned(), model: "m".to_owned() },
        }
    }

    fn sample() -> (RunId, Vec<RunEvent>) {
        let run_id = RunId::new();
        let mut events = vec![started(run_id)];
        for (index, text) in ["Hé", "llo", "", " wörld", "🦀"].iter().enumerate() {
            events.push(delta(run_id, as_seq(index) + 2, text));
        }
        events.push(RunEvent { run_id, seq: 7, kind: EventKind::RunCancelled { message_id: None } });
        (run_id, events)
    }

    fn coalesced(events: &[RunEvent]) -> Coalesced {
        let mut log = Coalesced::default();
        for event in events {
            log.push(event.clone());
        }
        log
    }

    #[test]
    fn deltas_are_kept_joined_and_given_back_one_by_one_from_any_point() {
        let (_, events) = sample();
        let log = coalesced(&events);
        assert_eq!(log.entries.len(), 3, "the five deltas are one entry");
        for after in 0..=8 {
            let expected: Vec<RunEvent> = events.iter().filter(|event| event.seq > after).cloned().collect();
            assert_eq!(log.events_after(after), expected, "after {after}");
        }
        assert_eq!(log.last_seq(), 7);
    }

    #[test]
    fn stored_entries_read_back_to_the_same_events_from_any_point() {
        let (run_id, events) = sample();
        let log = coalesced(&events);
        for written_from in 0..=7 {
            let stored: Vec<Entry> = log
                .entries_after(written_from)
                .into_iter()
                .map(|entry| match entry {
                    Entry::Deltas(deltas) => Entry::Deltas(
                        Deltas::from_stored(run_id, deltas.last_seq(), deltas.text.clone(), &deltas.piece_lengths())
                            .unwrap(),
                    ),
                    event @ Entry::Event(_) => event,
                })
                .collect();
            for after in written_from..=7 {
                let expected: Vec<RunEvent> = events.iter().filter(|event| event.seq > after).cloned().collect();
                assert_eq!(expand(stored.clone(), after), expected, "written from {written_from}, after {after}");
            }
        }
    }

    #[test]
    fn overlapping_rows_give_each_event_once() {
        let (_, events) = sample();
        let first_write = coalesced(&events[..4]).entries_after(0);
        let again_with_more = coalesced(&events).entries_after(0);
        let mut rows: Vec<Entry> = first_write.into_iter().chain(again_with_more).collect();
        rows.sort_by_key(Entry::last_seq);
        assert_eq!(expand(rows, 0), events);
    }

    #[test]
    fn stored_lengths_that_do_not_fit_the_text_are_refused() {
        let run_id = RunId::new();
        assert!(Deltas::from_stored(run_id, 5, "abc".to_owned(), &[1, 1]).is_err(), "too short");
        assert!(Deltas::from_stored(run_id, 5, "abc".to_owned(), &[2, 2]).is_err(), "too long");
        assert!(Deltas::from_stored(run_id, 5, "é".to_owned(), &[1, 1]).is_err(), "inside a character");
        assert!(Deltas::from_stored(run_id, 5, "abc".to_owned(), &[-1, 4]).is_err(), "negative");
        assert!(Deltas::from_stored(run_id, 5, String::new(), &[]).is_err(), "no pieces");
        let deltas = Deltas::from_stored(run_id, 5, "é!".to_owned(), &[2, 0, 1]).unwrap();
        assert_eq!(deltas.first_seq, 3);
        let texts: Vec<RunEvent> = deltas.events_after(0).collect();
        assert_eq!(texts, vec![delta(run_id, 3, "é"), delta(run_id, 4, ""), delta(run_id, 5, "!")]);
    }
}
