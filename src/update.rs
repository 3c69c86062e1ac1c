//! What one call of [`crate::StreamDecoder`] gives back.

/// The content decoded by one `push` or `finish` call.
///
/// Every field describes only what this call decoded: concatenating the `text` of all
/// updates gives the whole answer, however the input bytes were split.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Update {
    /// Answer text decoded by this call (`""` when none).
    pub text: String,
    /// Reasoning ("thinking") text decoded by this call.
    pub reasoning: String,
    /// True once the stream delivered its end marker, and always after `finish()`.
    pub done: bool,
    /// The provider's finish reason (`"stop"`, `"length"`, `"end_turn"`, ...), when this call saw it.
    pub finish_reason: Option<String>,
    /// The provider's own usage object, as JSON text, when this call saw it.
    pub usage: Option<String>,
    /// Errors seen by this call, in stream order: the provider's in-stream errors and the
    /// decoder's own (`buffer_limit`, `bad_event`). Decoding always continues after one.
    pub errors: Vec<StreamError>,
    /// Raw events (`sse` and `ndjson` formats only).
    pub events: Vec<Event>,
}

impl Update {
    /// Empties every field, keeping the allocations, so one `Update` can be reused.
    pub fn clear(&mut self) {
        self.text.clear();
        self.reasoning.clear();
        self.done = false;
        self.finish_reason = None;
        self.usage = None;
        self.errors.clear();
        self.events.clear();
    }

    /// Whether this update carries nothing at all.
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
            && self.reasoning.is_empty()
            && !self.done
            && self.finish_reason.is_none()
            && self.usage.is_none()
            && self.errors.is_empty()
            && self.events.is_empty()
    }

    /// Appends `later` to `self`, as if both calls had been one.
    pub fn merge(&mut self, later: Update) {
        self.text.push_str(&later.text);
        self.reasoning.push_str(&later.reasoning);
        self.done |= later.done;
        if later.finish_reason.is_some() {
            self.finish_reason = later.finish_reason;
        }
        if later.usage.is_some() {
            self.usage = later.usage;
        }
        self.errors.extend(later.errors);
        self.events.extend(later.events);
    }
}

/// One dispatched server-sent event (or one NDJSON line, as `data`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Event {
    /// The event type; `"message"` when the stream named none.
    pub event: String,
    /// The data lines joined with `\n`.
    pub data: String,
    /// The last event ID string (it persists across events, per the spec).
    pub id: String,
}

/// An error reported inside an [`Update`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamError {
    /// `"buffer_limit"` and `"bad_event"` come from the decoder; anything else is the
    /// provider's own error type (`"invalid_request_error"`, `"overloaded_error"`, ...).
    pub kind: String,
    /// A human-readable message; decoder errors quote a short excerpt of the input.
    pub message: String,
    /// The provider's error code as JSON text (`"\"rate_limit\""`, `"429"`), if it sent one.
    pub code: Option<String>,
}

impl StreamError {
    pub const BUFFER_LIMIT: &'static str = "buffer_limit";
    pub const BAD_EVENT: &'static str = "bad_event";

    pub(crate) fn decoder(kind: &str, message: String) -> Self {
        StreamError { kind: kind.to_owned(), message, code: None }
    }
}

/// The `buffer_limit` error for a `what` ("line", "JSON value") over the bound `max`, quoting
/// its start. The quote is the same whether the unit came whole or cut into pieces: it never
/// reaches past the first `max + 1` bytes, all that a cut unit is sure to have kept.
pub(crate) fn too_long(what: &str, start: &[u8], max: usize) -> StreamError {
    StreamError::decoder(
        StreamError::BUFFER_LIMIT,
        format!(
            "a {what} is longer than maxBufferBytes ({max} bytes) and was skipped: \"{}\"",
            excerpt(&start[..start.len().min(max + 1).min(64)])
        ),
    )
}

/// A short, char-boundary-safe excerpt of raw input for error messages.
pub(crate) fn excerpt(bytes: &[u8]) -> String {
    const MAX: usize = 60;
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX + 4)]);
    let mut out: String = text.chars().take(MAX).collect();
    if bytes.len() > out.len() {
        out.push('…');
    }
    out
}
