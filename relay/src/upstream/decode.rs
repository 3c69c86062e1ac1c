//! The seam between the relay and the chunkwise core: upstream bytes in, normalized deltas
//! out. The relay never parses SSE or provider JSON itself; this file is the only place that
//! knows the core's API.

use chunkwise::{ErrorKind, Format, Options, StreamDecoder};

use crate::config::Provider;

/// What one piece of upstream body decoded to.
#[derive(Debug, Default)]
pub struct Decoded {
    pub text: String,
    pub reasoning: String,
    /// The upstream sent its end marker (`[DONE]`, `message_stop`).
    pub done: bool,
    pub finish_reason: Option<String>,
    /// The provider's usage object as JSON text.
    pub usage: Option<String>,
    /// The provider's in-stream errors.
    pub errors: Vec<ProviderError>,
    /// Events the decoder could not read: counted, not relayed.
    pub malformed: usize,
    /// Events dropped for being longer than the decoder's bound: the answer has a hole.
    pub too_large: usize,
}

#[derive(Debug, Clone)]
pub struct ProviderError {
    /// What the provider (or the decoder) called it: never `BufferLimit` or `BadEvent`, which
    /// are counted in `Decoded` instead.
    pub kind: ErrorKind,
    pub message: String,
    /// The provider's code as a plain string (a JSON string unquoted, a number as digits).
    pub code: Option<String>,
}

pub struct UpstreamDecoder {
    inner: StreamDecoder,
}

impl UpstreamDecoder {
    pub fn new(provider: Provider) -> UpstreamDecoder {
        let format = match provider {
            Provider::Anthropic => Format::Anthropic,
            Provider::Gemini => Format::Gemini,
            Provider::OpenAi | Provider::Demo => Format::OpenAi,
        };
        UpstreamDecoder { inner: StreamDecoder::new(Options { format, ..Options::default() }) }
    }

    pub fn push(&mut self, bytes: &[u8]) -> Decoded {
        convert(self.inner.push(bytes))
    }

    /// The longest line or event the decoder keeps.
    pub fn max_event_bytes(&self) -> usize {
        chunkwise::DEFAULT_MAX_BUFFER_BYTES
    }

    pub fn finish(&mut self) -> Decoded {
        convert(self.inner.finish())
    }
}

/// A provider's code as plain text: a JSON string unquoted, a number as its digits.
pub fn plain_code(raw: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(raw) {
        Ok(serde_json::Value::String(s)) => s,
        _ => raw.to_string(),
    }
}

fn convert(u: chunkwise::Update) -> Decoded {
    let mut out = Decoded {
        text: u.text,
        reasoning: u.reasoning,
        done: u.done,
        finish_reason: u.finish_reason,
        usage: u.usage,
        ..Decoded::default()
    };
    for e in u.errors {
        let kind = match e.kind {
            ErrorKind::BufferLimit => {
                out.too_large += 1;
                continue;
            }
            ErrorKind::BadEvent => {
                out.malformed += 1;
                continue;
            }
            other => other,
        };
        out.errors.push(ProviderError { kind, message: e.message, code: e.code.as_deref().map(plain_code) });
    }
    out
}
