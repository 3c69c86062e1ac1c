//! The LLM stream formats: what each provider's messages mean, one module per provider.
//!
//! Each format turns one message (an SSE event's data, an NDJSON line, or one JSON value)
//! into a [`Delta`]: answer text, reasoning text, finish reason, the provider's usage
//! object, an error, the answer's id, and whether this was the end marker. Framing (bytes
//! to messages) is not done here; see [`crate::decoder`].
//!
//! Each provider's module opens with the stream shape its reference documents and a link:
//! - [`openai`]: Chat Completions chunks (`chat.completion.chunk`) and whole responses, for
//!   every compatible API (DeepSeek, Qwen, Azure, vLLM, OpenRouter, ...).
//! - [`openai_responses`]: Responses API streaming events.
//! - [`anthropic`]: Messages API streaming events.
//! - [`gemini`]: `GenerateContentResponse` chunks.
//! - [`ollama`]: native `/api/chat` and `/api/generate` NDJSON.
//! - [`dashscope`]: DashScope's native API (`output.text` or `output.choices[0].message`).
//! - [`dify`]: Dify chat-messages streaming events.
//!
//! What is shared by them lives here: reading an error object, and a finish reason in
//! OpenAI's words ([`openai_finish_reason`]).

// Each field arm in the provider modules stores what it read and yields `Ok(())`:
// `Ok(slot = value?)` keeps every field to one line of its table.
#![allow(clippy::unit_arg)]

pub mod anthropic;
pub mod dashscope;
pub mod dify;
pub mod gemini;
pub mod ollama;
pub mod openai;
pub mod openai_responses;

use std::borrow::Cow;

use crate::json::{JsonError, Reader, Result};
use crate::scan::string_run_end;
use crate::update::{excerpt, ErrorKind, StreamError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// A plain UTF-8 body.
    #[default]
    Text,
    /// Raw server-sent events, returned in `Update::events`.
    Sse,
    /// Newline-delimited JSON, each line returned in `Update::events`.
    Ndjson,
    /// `<hex length>\r\n<payload>\r\n` records ending with `0\r\n\r\n`.
    HexRecords,
    OpenAi,
    OpenAiResponses,
    Anthropic,
    Gemini,
    Ollama,
    DashScope,
    Dify,
}

impl Format {
    /// Every format, with the name the JS API uses.
    pub const ALL: [(&'static str, Format); 11] = [
        ("text", Format::Text),
        ("sse", Format::Sse),
        ("ndjson", Format::Ndjson),
        ("hex-records", Format::HexRecords),
        ("openai", Format::OpenAi),
        ("openai-responses", Format::OpenAiResponses),
        ("anthropic", Format::Anthropic),
        ("gemini", Format::Gemini),
        ("ollama", Format::Ollama),
        ("dashscope", Format::DashScope),
        ("dify", Format::Dify),
    ];

    /// The format of a JS name (`"openai"`, `"hex-records"`, ...).
    pub fn from_name(name: &str) -> Option<Format> {
        Format::ALL.iter().find(|(n, _)| *n == name).map(|&(_, f)| f)
    }

    pub fn name(self) -> &'static str {
        Format::ALL.iter().find(|(_, f)| *f == self).map(|&(n, _)| n).expect("every format is named")
    }

    /// Whether messages of this format are provider JSON (as opposed to raw framing).
    pub fn is_provider(self) -> bool {
        !matches!(self, Format::Text | Format::Sse | Format::Ndjson | Format::HexRecords)
    }
}

/// What one provider message says.
#[derive(Debug, Default, PartialEq)]
pub struct Delta<'a> {
    pub text: Option<Cow<'a, str>>,
    pub reasoning: Option<Cow<'a, str>>,
    pub finish_reason: Option<Cow<'a, str>>,
    /// The provider's usage object as JSON text.
    pub usage: Option<Cow<'a, str>>,
    pub error: Option<StreamError>,
    /// The id of the answer, when this message names it.
    pub id: Option<Cow<'a, str>>,
    /// This message is the stream's end marker.
    pub done: bool,
}

/// The state a format keeps across messages: the answer's id, as the first message that
/// names it gives it, and Anthropic's usage, which arrives in two parts (`message_start` and
/// `message_delta`) and is reported merged.
#[derive(Debug, Clone, Default)]
pub struct Extractor {
    format: Format,
    start_usage: Option<String>,
    response_id: Option<String>,
    template: Option<Template>,
}

/// The shape of the last message that carried only text (or only reasoning): its bytes
/// before and after that one string. Streams repeat the same message with a different
/// string (`{"id":"chatcmpl-…",…,"delta":{"content":"…"},…}`), and a message that is the
/// same bytes around another non-empty string token reads exactly as the template did with
/// that string: the same tokens in the same places take the same branches, no format
/// branches on the value of its text, and the bytes around it were validated when the
/// template was read. So such a message costs two comparisons and one string scan instead
/// of a full read, which is most of a push where wasm runs interpreted (iOS).
#[derive(Debug, Clone, Default)]
struct Template {
    event: String,
    /// Up to the text's opening quote.
    before: String,
    /// After its closing quote.
    after: String,
    reasoning: bool,
    /// Where the message's id lies, as offsets from the start (in `before`) or from the end
    /// (in `after`) of the message: those bytes are the same in every match.
    id: Option<IdAt>,
}

#[derive(Debug, Clone, Copy)]
enum IdAt {
    FromStart(usize, usize),
    FromEnd(usize, usize),
}

impl Template {
    /// The delta of `bytes` if they are this template around one non-empty string token.
    /// Only that token is checked for UTF-8: the bytes around it are the template's, checked
    /// when it was read, and they end and start with a quote, so they cannot be part of a
    /// character of the token.
    fn read<'a>(&self, event: &str, bytes: &'a [u8]) -> Option<Delta<'a>> {
        let (before, after) = (self.before.as_bytes(), self.after.as_bytes());
        if bytes.len() < before.len() + after.len() + 2 || !same(event.as_bytes(), self.event.as_bytes()) {
            return None;
        }
        let middle = &bytes[before.len()..bytes.len() - after.len()];
        if middle[0] != b'"' || middle[middle.len() - 1] != b'"' {
            return None;
        }
        if !same(&bytes[..before.len()], before) || !same(&bytes[bytes.len() - after.len()..], after) {
            return None;
        }
        // A token with no escape and no control character is its bytes between the quotes:
        // only their UTF-8 is left to check, without a JSON reader.
        let inner = &middle[1..middle.len() - 1];
        let text = if string_run_end(inner, 0) == inner.len() {
            Cow::Borrowed(crate::utf8::valid_str(inner)?)
        } else {
            Reader::parse(std::str::from_utf8(middle).ok()?, |r| r.opt_str()).ok().flatten()?
        };
        if text.is_empty() {
            return None;
        }
        let mut d = Delta::default();
        *(if self.reasoning { &mut d.reasoning } else { &mut d.text }) = Some(text);
        if let Some(at) = self.id {
            let (start, end) = match at {
                IdAt::FromStart(start, end) => (start, end),
                IdAt::FromEnd(start, end) => (bytes.len() - start, bytes.len() - end),
            };
            // SAFETY: these bytes equal the template's at the same place (compared above),
            // where they were a `&str` of the message the template was read from, so they are
            // whole characters of valid UTF-8; checking them again costs more than the text.
            d.id = Some(Cow::Borrowed(unsafe { std::str::from_utf8_unchecked(&bytes[start..end]) }));
        }
        Some(d)
    }

    /// Remembers `data` as the template when its delta is one borrowed string and nothing else.
    fn learn(slot: &mut Option<Template>, event: &str, data: &str, d: &Delta<'_>) {
        let rest_empty = d.finish_reason.is_none() && d.usage.is_none() && d.error.is_none() && !d.done;
        let (text, reasoning) = match (&d.text, &d.reasoning) {
            (Some(Cow::Borrowed(t)), None) if rest_empty => (*t, false),
            (None, Some(Cow::Borrowed(t))) if rest_empty => (*t, true),
            _ => return *slot = None,
        };
        let start = (text.as_ptr() as usize).wrapping_sub(data.as_ptr() as usize);
        let end = start + text.len();
        // Borrowed text is the inside of one string token without escapes: `"` on each side.
        if start == 0 || end >= data.len() || data.as_bytes()[start - 1] != b'"' || data.as_bytes()[end] != b'"' {
            return *slot = None;
        }
        let offset = |s: &str| (s.as_ptr() as usize).wrapping_sub(data.as_ptr() as usize);
        let id = match &d.id {
            None => None,
            Some(Cow::Borrowed(id)) if offset(id) + id.len() < start => {
                Some(IdAt::FromStart(offset(id), offset(id) + id.len()))
            }
            Some(Cow::Borrowed(id)) if offset(id) > end && offset(id) < data.len() => {
                Some(IdAt::FromEnd(data.len() - offset(id), data.len() - offset(id) - id.len()))
            }
            Some(_) => return *slot = None,
        };
        let t = slot.get_or_insert_with(Template::default);
        t.id = id;
        t.event.clear();
        t.event.push_str(event);
        t.before.clear();
        // SAFETY: `data[start - 1]` and `data[end]` are `"` (checked above, `end < data.len()`),
        // and an ASCII byte is never inside a UTF-8 character, so `start - 1` and `end + 1` are
        // char boundaries. Unchecked because `str` indexing's failure path (a formatted panic
        // message) costs wasm bytes.
        t.before.push_str(unsafe { data.get_unchecked(..start - 1) });
        t.after.clear();
        t.after.push_str(unsafe { data.get_unchecked(end + 1..) });
        t.reasoning = reasoning;
    }
}

/// Whether two byte strings are equal, a word at a time (see `crate::scan::same`).
fn same(a: &[u8], b: &[u8]) -> bool {
    crate::scan::same(a, b)
}

impl Extractor {
    /// Reads a message, not yet decoded, that has the shape of the last text-only message
    /// (see `Template`); `None` for any other, which [`Extractor::extract`] reads once decoded.
    pub fn extract_templated<'a>(&self, event: &str, data: &'a [u8]) -> Option<Delta<'a>> {
        self.template.as_ref().and_then(|t| t.read(event, data))
    }

    pub fn new(format: Format) -> Extractor {
        Extractor { format, start_usage: None, response_id: None, template: None }
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// The id of the answer (OpenAI's chunk `id`, the Responses API's `response.id`,
    /// Anthropic's `message.id`, Gemini's `responseId`, Dify's `message_id`), once a
    /// message gave it. The first one given stays.
    pub fn response_id(&self) -> Option<&str> {
        self.response_id.as_deref()
    }

    /// Reads one message. `event` is the SSE event type (`"message"` when there is none).
    /// A message that is not the JSON its format expects gives a `bad_event` error.
    pub fn extract<'a>(&mut self, event: &str, data: &'a str) -> Delta<'a> {
        if let Some(d) = self.extract_templated(event, data.as_bytes()) {
            return d;
        }
        let mut d = Delta::default();
        let result = match self.format {
            Format::OpenAi => openai::read(data, &mut d),
            Format::OpenAiResponses => Reader::parse(data, |r| openai_responses::read(r, &mut d)),
            Format::Anthropic => Reader::parse(data, |r| anthropic::read(r, &mut self.start_usage, &mut d)),
            Format::Gemini => Reader::parse(data, |r| gemini::read(r, &mut d)),
            Format::Ollama => Reader::parse(data, |r| ollama::read(r, &mut d)),
            Format::DashScope => Reader::parse(data, |r| dashscope::read(r, event, &mut d)),
            Format::Dify => Reader::parse(data, |r| dify::read(r, &mut d)),
            Format::Text | Format::Sse | Format::Ndjson | Format::HexRecords => Ok(()),
        };
        match result {
            Ok(()) => {
                if self.response_id.is_none() {
                    self.response_id = d.id.as_deref().filter(|id| !id.is_empty()).map(str::to_owned);
                }
                Template::learn(&mut self.template, event, data, &d);
                d
            }
            // Nothing of a message that is not valid JSON is used: a half-read message
            // could carry half its meaning.
            Err(e) => Delta { error: Some(bad_json(self.format, e, data)), ..Delta::default() },
        }
    }
}

fn bad_json(format: Format, e: JsonError, data: &str) -> StreamError {
    StreamError::decoder(
        ErrorKind::BadEvent,
        format!("{} message is not valid JSON ({e}): \"{}\"", format.name(), excerpt(data.as_bytes())),
    )
}

/// A provider's finish reason in OpenAI's words (`stop`, `length`, `content_filter`,
/// `tool_calls`); one OpenAI has no word for is returned as it is.
///
/// ```
/// use chunkwise::formats::openai_finish_reason;
/// assert_eq!(openai_finish_reason("end_turn"), "stop"); // Anthropic
/// assert_eq!(openai_finish_reason("MAX_TOKENS"), "length"); // Gemini
/// assert_eq!(openai_finish_reason("SAFETY"), "content_filter");
/// assert_eq!(openai_finish_reason("length"), "length");
/// ```
pub fn openai_finish_reason(raw: &str) -> &str {
    match raw {
        // Anthropic `stop_reason`; Gemini `finishReason`; Responses `status`; Ollama
        // `done_reason` and DashScope already say `stop` / `length`.
        "end_turn" | "stop_sequence" | "pause_turn" | "STOP" | "FINISH_REASON_UNSPECIFIED" | "completed" => "stop",
        "max_tokens" | "MAX_TOKENS" | "max_output_tokens" | "model_context_window_exceeded" => "length",
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" | "refusal"
        | "content_filter" => "content_filter",
        "tool_use" | "MALFORMED_FUNCTION_CALL" => "tool_calls",
        other => other,
    }
}

/// Non-empty text, or nothing.
fn text<'a>(r: &mut Reader<'a>) -> Result<Option<Cow<'a, str>>> {
    Ok(r.opt_str()?.filter(|t| !t.is_empty()))
}

/// Several pieces of one message (Gemini parts) join into one piece of text.
fn append<'a>(slot: &mut Option<Cow<'a, str>>, more: Option<Cow<'a, str>>) {
    match (slot.as_mut(), more) {
        (_, None) => {}
        (None, more) => *slot = more,
        (Some(existing), Some(more)) => existing.to_mut().push_str(&more),
    }
}

/// An error as providers send it: an object (`{message, type, code}`, Gemini's
/// `{code, message, status}`, Dify's and DashScope's flat `{code, message}`) or a bare string.
pub(crate) fn error_value(r: &mut Reader<'_>) -> Result<Option<StreamError>> {
    Ok(error_parts(r)?.map(ErrorParts::finish))
}

/// The parts of an error value (see [`error_value`]); `None` for `null`.
pub(crate) fn error_parts(r: &mut Reader<'_>) -> Result<Option<ErrorParts>> {
    if r.null()? {
        return Ok(None);
    }
    let mut e = ErrorParts::default();
    match r.raw()? {
        raw if raw.starts_with('"') => e.message = Reader::parse(raw, |r| r.opt_str())?.map(Cow::into_owned),
        raw => Reader::parse(raw, |r| r.object(|r, key| e.field(r, key)))?,
    }
    Ok(Some(e))
}

/// The fields an error object may have, gathered in any order.
#[derive(Debug, Default)]
pub(crate) struct ErrorParts {
    pub(crate) message: Option<String>,
    pub(crate) kind: Option<String>,
    pub(crate) status: Option<String>,
    /// As JSON text.
    pub(crate) code: Option<String>,
}

impl ErrorParts {
    /// Takes `key` if it is an error field; skips it otherwise.
    pub(crate) fn field(&mut self, r: &mut Reader<'_>, key: &str) -> Result<()> {
        match key {
            "message" => self.message = r.opt_str()?.map(Cow::into_owned),
            "type" => self.kind = r.opt_str()?.map(Cow::into_owned),
            "status" if r.clone().opt_str().is_ok() => self.status = r.opt_str()?.map(Cow::into_owned),
            "code" => self.code = r.opt_raw()?.map(str::to_owned),
            _ => r.skip()?,
        }
        Ok(())
    }

    /// The error type: the provider's `type`, else Gemini's `status`, else a string `code`.
    pub(crate) fn kind_name(&mut self) -> Option<String> {
        let code_name = self.code.as_deref().and_then(|c| Reader::parse(c, |r| r.opt_str()).ok().flatten());
        self.kind.take().or(self.status.take()).or_else(|| code_name.map(Cow::into_owned))
    }

    pub(crate) fn finish(mut self) -> StreamError {
        StreamError {
            kind: ErrorKind::Provider(self.kind_name().unwrap_or_else(|| "provider_error".to_owned())),
            message: self.message.unwrap_or_else(|| "the provider reported an error".to_owned()),
            code: self.code,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Extractor, Format};

    /// Every message reads the same after any other (through the template fast path) as it
    /// does in a fresh extractor (which has no template).
    #[test]
    fn a_message_reads_the_same_with_or_without_a_template() {
        let openai = |content: &str, rest: &str| {
            format!(r#"{{"id":"c1","choices":[{{"index":0,"delta":{{"content":{content}}}{rest}}}],"usage":null}}"#)
        };
        let messages: Vec<(Format, &str, String)> = vec![
            (Format::OpenAi, "message", openai(r#""Hi""#, "")),
            (Format::OpenAi, "message", openai(r#""there""#, "")),
            (Format::OpenAi, "message", openai(r#""""#, "")),
            (Format::OpenAi, "message", openai(r#""a\"b\u00e9\ud83d\ude00""#, "")),
            (Format::OpenAi, "message", openai(r#""x" "#, "")),
            (Format::OpenAi, "message", openai(r#""x","content":"y""#, "")),
            (Format::OpenAi, "message", openai(r#"null"#, "")),
            (Format::OpenAi, "message", openai(r#"7"#, "")),
            (Format::OpenAi, "message", openai(r#""unterminated"#, "")),
            (Format::OpenAi, "message", openai(r#""ok""#, r#","finish_reason":"stop""#)),
            (Format::OpenAi, "other", openai(r#""other event""#, "")),
            (Format::OpenAi, "message", "[DONE]".to_owned()),
            (Format::OpenAi, "message", r#"{"choices":[{"delta":{"content":"a"}}],"id":"end"}"#.to_owned()),
            (Format::OpenAi, "message", r#"{"choices":[{"delta":{"content":"bc"}}],"id":"end"}"#.to_owned()),
            (Format::OpenAi, "message", r#"{"choices":[{"delta":{"content":"bc"}}],"id":"\u0065nd"}"#.to_owned()),
            (Format::OpenAi, "message", openai(r#""Hi""#, "").replace("c1", "c2")),
            (
                Format::Anthropic,
                "content_block_delta",
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel"}}"#.to_owned(),
            ),
            (
                Format::Anthropic,
                "content_block_delta",
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"lo"}}"#.to_owned(),
            ),
            (
                Format::Anthropic,
                "content_block_delta",
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hm"}}"#
                    .to_owned(),
            ),
            (
                Format::Anthropic,
                "content_block_delta",
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":""}}"#
                    .to_owned(),
            ),
            (Format::DashScope, "result", r#"{"output":{"text":"a"},"code":"E1"}"#.to_owned()),
            (Format::DashScope, "result", r#"{"output":{"text":""},"code":"E1"}"#.to_owned()),
            (Format::Dify, "message", r#"{"event":"message","answer":"a"}"#.to_owned()),
            (Format::Dify, "message", r#"{"event":"message_replace","answer":"a"}"#.to_owned()),
        ];
        for (i, (format, event, first)) in messages.iter().enumerate() {
            for (other_format, other_event, second) in &messages[i..] {
                if other_format != format {
                    continue;
                }
                let mut warm = Extractor::new(*format);
                warm.extract(event, first);
                let fresh = Extractor::new(*format).extract(other_event, second);
                assert_eq!(warm.extract(other_event, second), fresh, "{first} then {second}");
            }
        }
    }

    /// The template takes a text without escapes between its quotes unread, so its own UTF-8
    /// check is all that stands between ill-formed bytes and a `&str`: a message of the
    /// template's shape whose text is not UTF-8, or whose event only starts like the template's,
    /// is left to the full reader.
    #[test]
    fn the_template_refuses_ill_formed_text_and_other_events() {
        let mut ex = Extractor::new(Format::OpenAi);
        ex.extract("message", r#"{"id":"c1","choices":[{"delta":{"content":"Hi"}}]}"#);
        for bad in [&b"\xFF"[..], b"\xED\xA0\x80", b"a\xE6\x96", b"\xC0\xAF", b"\xF4\x90\x80\x80"] {
            let mut m = br#"{"id":"c1","choices":[{"delta":{"content":""#.to_vec();
            m.extend_from_slice(bad);
            m.extend_from_slice(br#""}}]}"#);
            assert!(ex.extract_templated("message", &m).is_none(), "{bad:02X?}");
        }
        let ok = "{\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\"文\"}}]}";
        assert!(ex.extract_templated("message", ok.as_bytes()).is_some());
        assert!(ex.extract_templated("messag", ok.as_bytes()).is_none());
        assert!(ex.extract_templated("messages", ok.as_bytes()).is_none());
    }
}
