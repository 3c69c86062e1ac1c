//! Server-sent events, parsed as the WHATWG HTML Standard's
//! [event stream interpretation](https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation)
//! specifies, on bytes as they arrive.
//!
//! # Guarantees
//! - The events dispatched for a stream are the same however its bytes are cut
//!   (lines come from [`crate::lines::LineSplitter`]).
//! - The stream is decoded as UTF-8 with the BOM stripped once. Lines are found on bytes:
//!   CR and LF never occur inside a multi-byte UTF-8 sequence, so decoding each field value
//!   alone gives the same text as decoding the whole stream first. An event's data is handed
//!   over as those bytes (joined with LF), for the consumer to decode with
//!   [`decode_lossy`](crate::utf8::decode_lossy): one that reads only part of it (a provider
//!   message matching the last one's shape) then checks only that part.
//! - Bounded: a line longer than `max_buffer_bytes`, or an event whose data grows longer,
//!   is reported as a `buffer_limit` error and skipped; parsing goes on after it.

use crate::lines::{Breaks, LineSplitter};
use crate::update::{excerpt, ErrorKind, StreamError};
use crate::utf8::decode_lossy;

/// One event as the parser dispatches it, borrowing the parser's buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRef<'a> {
    /// The event type; `"message"` when the stream gave none.
    pub event: &'a str,
    /// The data lines joined with LF, as the stream's bytes (see the module documentation).
    pub data: &'a [u8],
    /// The last event ID string.
    pub id: &'a str,
}

/// What the parser reports, in stream order.
#[derive(Debug, PartialEq, Eq)]
pub enum SseItem<'a> {
    Event(EventRef<'a>),
    /// A valid `retry:` field: the reconnection time in milliseconds.
    Retry(u64),
    Error(StreamError),
}

/// A streaming event-stream parser (see the module documentation).
#[derive(Debug, Clone)]
pub struct SseParser {
    lines: LineSplitter,
    fields: Fields,
}

/// The buffers of the event being built.
#[derive(Debug, Clone, Default)]
struct Fields {
    max_data_bytes: usize,
    data: Vec<u8>,
    /// A `data` field was seen in this event (its value may be empty).
    has_data: bool,
    event_type: String,
    /// This event's data went over the bound: it is dropped at dispatch.
    skipping_event: bool,
    /// The last event ID buffer; it becomes the last event ID string at each dispatch.
    id_buffer: String,
    last_event_id: String,
}

impl SseParser {
    pub fn new(max_buffer_bytes: usize) -> SseParser {
        SseParser {
            lines: LineSplitter::new(Breaks::CrLfOrEither, max_buffer_bytes),
            fields: Fields { max_data_bytes: max_buffer_bytes.max(1), ..Fields::default() },
        }
    }

    /// Back to the state of a new parser (the last event ID is forgotten too).
    pub fn reset(&mut self) {
        self.lines.reset();
        self.fields = Fields { max_data_bytes: self.fields.max_data_bytes, ..Fields::default() };
    }

    /// The last event ID string, for resuming with `Last-Event-ID`.
    pub fn last_event_id(&self) -> &str {
        &self.fields.last_event_id
    }

    /// Parses one piece of the stream.
    pub fn feed(&mut self, input: &[u8], on: &mut impl FnMut(SseItem<'_>)) {
        let fields = &mut self.fields;
        self.lines.feed(input, &mut |line| match line {
            Ok(line) => fields.process_line(line, on),
            Err(error) => on(SseItem::Error(error)),
        });
    }

    /// End of the stream. The spec discards an event the stream ended in the middle of
    /// ("If the file ends in the middle of an event, before the final empty line, the
    /// incomplete event is not dispatched"); that is `lenient = false`. With `lenient`, as
    /// the provider formats use it, a last line without its break is still parsed and a
    /// pending event is dispatched, so a server that forgets the final blank line loses
    /// nothing. The last event ID survives, for resuming.
    pub fn finish(&mut self, lenient: bool, on: &mut impl FnMut(SseItem<'_>)) {
        let fields = &mut self.fields;
        if lenient {
            self.lines.finish(&mut |line| match line {
                Ok(line) => fields.process_line(line, on),
                Err(error) => on(SseItem::Error(error)),
            });
            fields.dispatch(on);
        } else {
            self.lines.finish(&mut |_| {});
        }
        let last_event_id = std::mem::take(&mut self.fields.last_event_id);
        self.reset();
        self.fields.last_event_id = last_event_id;
    }
}

impl Fields {
    fn process_line(&mut self, line: &[u8], on: &mut impl FnMut(SseItem<'_>)) {
        // "If the line is empty (a blank line): Dispatch the event."
        if line.is_empty() {
            return self.dispatch(on);
        }
        // "If the line starts with a U+003A COLON character (:): Ignore the line."
        if line[0] == b':' {
            return;
        }
        // "If the line contains a U+003A COLON character: the field name is the characters
        // before the first colon, the value the characters after it; if value starts with a
        // U+0020 SPACE character, remove it." Otherwise the whole line is the name and the
        // value is the empty string.
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], if value.first() == Some(&b' ') { &value[1..] } else { value })
            }
            None => (line, &b""[..]),
        };
        match name {
            // "Append the field value to the data buffer, then append a single U+000A LINE
            // FEED (LF) character." The LF is added between values instead, which is the
            // same once dispatch removes the last one.
            b"data" => {
                if self.skipping_event {
                    return;
                }
                if self.data.len() + value.len() + 1 > self.max_data_bytes {
                    on(SseItem::Error(StreamError::decoder(
                        ErrorKind::BufferLimit,
                        format!(
                            "event data is longer than maxBufferBytes ({} bytes); the event was skipped: \"{}\"",
                            self.max_data_bytes,
                            excerpt(&self.data)
                        ),
                    )));
                    self.skipping_event = true;
                    self.data.clear();
                    return;
                }
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.has_data = true;
                self.data.extend_from_slice(value);
            }
            // "Set the event type buffer to the field value."
            b"event" => {
                self.event_type.clear();
                self.event_type.push_str(&decode_lossy(value));
            }
            // "If the field value does not contain U+0000 NULL, then set the last event ID
            // buffer to the field value. Otherwise, ignore the field."
            b"id" if !value.contains(&0) => {
                self.id_buffer.clear();
                self.id_buffer.push_str(&decode_lossy(value));
            }
            // "If the field value consists of only ASCII digits, then interpret the field
            // value as an integer in base ten. Otherwise, ignore the field."
            b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                let ms = value.iter().fold(0u64, |n, &d| n.saturating_mul(10).saturating_add(u64::from(d - b'0')));
                on(SseItem::Retry(ms));
            }
            // "Otherwise: The field is ignored." (So is an `id` with NULL, a `retry` that is
            // not all digits.)
            _ => {}
        }
    }

    fn dispatch(&mut self, on: &mut impl FnMut(SseItem<'_>)) {
        // "1. Set the last event ID string of the event source to the value of the last
        // event ID buffer." This happens even when no event follows.
        if self.last_event_id != self.id_buffer {
            self.last_event_id.clone_from(&self.id_buffer);
        }
        // "2. If the data buffer is an empty string, set the data buffer and the event type
        // buffer to the empty string and return." An event whose data went over the bound
        // was reported already and is dropped here.
        let skipped = std::mem::take(&mut self.skipping_event);
        if self.has_data && !skipped {
            // "5. ... event type buffer ... if it is not the empty string; otherwise message."
            let event = if self.event_type.is_empty() { "message" } else { &self.event_type };
            on(SseItem::Event(EventRef { event, data: &self.data, id: &self.last_event_id }));
        }
        self.data.clear();
        self.has_data = false;
        self.event_type.clear();
    }
}
