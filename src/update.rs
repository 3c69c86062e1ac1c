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
    pub kind: ErrorKind,
    /// A human-readable message; decoder errors quote a short excerpt of the input.
    pub message: String,
    /// The provider's error code as JSON text (`"\"rate_limit\""`, `"429"`), if it sent one.
    pub code: Option<String>,
}

impl StreamError {
    pub(crate) fn decoder(kind: ErrorKind, message: String) -> Self {
        StreamError { kind, message, code: None }
    }
}

/// What kind of error a [`StreamError`] is. JS sees it as the string [`as_str`](Self::as_str)
/// gives (the `type` of an update's error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// `"buffer_limit"`: a line, event, record or JSON value was longer than
    /// `max_buffer_bytes`; it was skipped.
    BufferLimit,
    /// `"bad_event"`: a message was not what its format expects (not JSON, a cumulative
    /// message that does not extend the text before it, garbage between JSON values).
    BadEvent,
    /// `"message_replace"`: the provider replaced the answer (Dify's output moderation);
    /// the message is the replacement text.
    MessageReplace,
    /// The provider's own error type (`"invalid_request_error"`, `"overloaded_error"`,
    /// Gemini's `"RESOURCE_EXHAUSTED"`, ...; `"provider_error"` when it named none).
    Provider(String),
}

impl ErrorKind {
    pub fn as_str(&self) -> &str {
        match self {
            ErrorKind::BufferLimit => "buffer_limit",
            ErrorKind::BadEvent => "bad_event",
            ErrorKind::MessageReplace => "message_replace",
            ErrorKind::Provider(kind) => kind,
        }
    }

    /// Whether the decoder found this error in the bytes (as opposed to the provider
    /// reporting one).
    pub fn is_decoder(&self) -> bool {
        matches!(self, ErrorKind::BufferLimit | ErrorKind::BadEvent)
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for ErrorKind {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for ErrorKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
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
