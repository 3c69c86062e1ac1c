//! A generation's event log: numbered events whose text shares one buffer, bounded in bytes.
//!
//! Sequence numbers start at 1 and grow by one per event. When the text outgrows its bound the
//! oldest whole events are dropped; `first_seq` says which event the log now starts at, so a
//! reader asking for a dropped event is told so instead of silently skipping it. Events a copy
//! still needs (`hold_from`) are never dropped.

use std::time::Instant;

use crate::error::ApiError;

/// What one log entry is. The payload is text stored in the log's shared buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// `delta.role = "assistant"`; empty payload. Always seq 1.
    Role,
    Reasoning,
    Content,
    /// Payload: the finish reason.
    Finish,
    /// Payload: an OpenAI usage object (JSON).
    Usage,
    /// Payload: `{"error":{...}}` (JSON).
    Error,
    /// `[DONE]`; empty payload. Always the last entry.
    Done,
}

impl Kind {
    /// One letter per kind, as the shared store writes it.
    pub fn letter(self) -> &'static str {
        match self {
            Kind::Role => "a",
            Kind::Reasoning => "r",
            Kind::Content => "c",
            Kind::Finish => "f",
            Kind::Usage => "u",
            Kind::Error => "e",
            Kind::Done => "d",
        }
    }

    pub fn from_letter(letter: &str) -> Option<Kind> {
        Some(match letter {
            "a" => Kind::Role,
            "r" => Kind::Reasoning,
            "c" => Kind::Content,
            "f" => Kind::Finish,
            "u" => Kind::Usage,
            "e" => Kind::Error,
            "d" => Kind::Done,
            _ => return None,
        })
    }
}

/// 8 bytes per event; the text lives in one `String` for the whole generation, so a
/// 200-delta answer costs a few KiB however it was split.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry {
    /// End of this entry's payload in `Log::text`.
    end: u32,
    pub(crate) kind: Kind,
}

#[derive(Debug)]
pub(crate) struct Log {
    /// Sequence number of `entries[0]`.
    pub(crate) first_seq: u64,
    pub(crate) entries: Vec<Entry>,
    pub(crate) text: String,
    /// The stream has started (the upstream accepted): later errors are events.
    pub(crate) started: bool,
    /// Failed before the stream started: the error becomes the HTTP response.
    pub(crate) early_error: Option<ApiError>,
    pub(crate) finished: bool,
    pub(crate) finished_at: Option<Instant>,
    /// Number of content/reasoning events, for usage estimates.
    pub(crate) deltas: u64,
    /// Bytes of answer text (content events) dropped from the front.
    pub(crate) dropped_content: u64,
    /// The first event a copy (the shared store's mirror) has not taken yet: it and the events
    /// after it are never dropped, however far past its bound the text goes. The upstream
    /// task waits for room instead ([`super::Generation::room`]), which bounds the overshoot.
    pub(crate) hold_from: Option<u64>,
}

impl Default for Log {
    fn default() -> Log {
        Log {
            first_seq: 1,
            entries: Vec::new(),
            text: String::new(),
            started: false,
            early_error: None,
            finished: false,
            finished_at: None,
            deltas: 0,
            dropped_content: 0,
            hold_from: None,
        }
    }
}

impl Log {
    /// Bytes of payload from entry `index` to the end.
    pub(crate) fn payload_bytes_from(&self, index: usize) -> usize {
        let start = if index == 0 { 0 } else { self.entries[index - 1].end as usize };
        self.text.len() - start
    }

    pub(crate) fn payload(&self, index: usize) -> &str {
        let start = if index == 0 { 0 } else { self.entries[index - 1].end as usize };
        &self.text[start..self.entries[index].end as usize]
    }

    /// Bytes of payload the copy has not taken yet (0 when nothing is held).
    pub(crate) fn held_bytes(&self) -> usize {
        match self.hold_from {
            Some(from) if from < self.end_seq() => {
                self.payload_bytes_from(from.saturating_sub(self.first_seq) as usize)
            }
            _ => 0,
        }
    }

    /// The sequence number the next pushed event will get.
    pub(crate) fn end_seq(&self) -> u64 {
        self.first_seq + self.entries.len() as u64
    }

    pub(crate) fn push(&mut self, kind: Kind, payload: &str, max_bytes: usize) {
        if self.text.len() + payload.len() > max_bytes && !self.entries.is_empty() {
            self.drop_oldest(payload.len(), max_bytes);
        }
        self.text.push_str(payload);
        self.entries.push(Entry { end: self.text.len() as u32, kind });
    }

    /// Drops whole events from the front until `incoming` more bytes fit in half the bound
    /// (halving keeps this rare: it moves the remaining text).
    fn drop_oldest(&mut self, incoming: usize, max_bytes: usize) {
        let target = (max_bytes / 2).saturating_sub(incoming);
        let mut cut = 0;
        while cut < self.entries.len() && self.text.len() - self.entries[cut].end as usize > target {
            cut += 1;
        }
        cut = (cut + 1).min(self.entries.len());
        if let Some(from) = self.hold_from {
            // Never past what the copy still needs.
            cut = cut.min(from.saturating_sub(self.first_seq) as usize);
            if cut == 0 {
                return;
            }
        }
        let removed = self.entries[cut - 1].end;
        let mut start = 0;
        for e in &self.entries[..cut] {
            if e.kind == Kind::Content {
                self.dropped_content += u64::from(e.end - start);
            }
            start = e.end;
        }
        self.text.drain(..removed as usize);
        self.entries.drain(..cut);
        for e in &mut self.entries {
            e.end -= removed;
        }
        self.first_seq += cut as u64;
    }
}
