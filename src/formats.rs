//! The LLM stream formats: what each provider's messages mean.
//!
//! Each format turns one message (an SSE event's data, an NDJSON line, or one JSON value)
//! into a [`Delta`]: answer text, reasoning text, finish reason, the provider's usage
//! object, an error, and whether this was the end marker. Framing (bytes to messages) is
//! not done here; see [`crate::decoder`].
//!
//! Field names follow each provider's reference:
//! - `openai`: Chat Completions chunks (`chat.completion.chunk`) and whole responses;
//!   `delta.reasoning_content` (DeepSeek, Qwen) and `delta.reasoning` (Ollama, OpenRouter).
//! - `openai-responses`: Responses API streaming events.
//! - `anthropic`: Messages API streaming events.
//! - `gemini`: `GenerateContentResponse` chunks.
//! - `ollama`: native `/api/chat` and `/api/generate` NDJSON.
//! - `dashscope`: DashScope native API (`output.text` or `output.choices[0].message`).
//! - `dify`: Dify chat-messages streaming events.

// Each field arm below stores what it read and yields `Ok(())`: `Ok(slot = value?)` keeps
// every field to one line of its table.
#![allow(clippy::unit_arg)]

use std::borrow::Cow;

use crate::json::{JsonError, Reader, Result};
use crate::update::{excerpt, StreamError};

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
    /// This message is the stream's end marker.
    pub done: bool,
}

/// The state a format keeps across messages (only Anthropic needs any: its usage arrives
/// in two parts, `message_start` and `message_delta`, and is reported merged).
#[derive(Debug, Clone, Default)]
pub struct Extractor {
    format: Format,
    start_usage: Option<String>,
}

impl Extractor {
    pub fn new(format: Format) -> Extractor {
        Extractor { format, start_usage: None }
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// Reads one message. `event` is the SSE event type (`"message"` when there is none).
    /// A message that is not the JSON its format expects gives a `bad_event` error.
    pub fn extract<'a>(&mut self, event: &str, data: &'a str) -> Delta<'a> {
        let mut d = Delta::default();
        let result = match self.format {
            Format::OpenAi => openai(data, &mut d),
            Format::OpenAiResponses => Reader::parse(data, |r| responses(r, &mut d)),
            Format::Anthropic => Reader::parse(data, |r| anthropic(r, &mut self.start_usage, &mut d)),
            Format::Gemini => Reader::parse(data, |r| gemini(r, &mut d)),
            Format::Ollama => Reader::parse(data, |r| ollama(r, &mut d)),
            Format::DashScope => Reader::parse(data, |r| dashscope(r, event, &mut d)),
            Format::Dify => Reader::parse(data, |r| dify(r, &mut d)),
            Format::Text | Format::Sse | Format::Ndjson | Format::HexRecords => Ok(()),
        };
        match result {
            Ok(()) => d,
            // Nothing of a message that is not valid JSON is used: a half-read message
            // could carry half its meaning.
            Err(e) => Delta { error: Some(bad_json(self.format, e, data)), ..Delta::default() },
        }
    }
}

fn bad_json(format: Format, e: JsonError, data: &str) -> StreamError {
    StreamError::decoder(
        StreamError::BAD_EVENT,
        format!("{} message is not valid JSON ({e}): \"{}\"", format.name(), excerpt(data.as_bytes())),
    )
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
fn error_value(r: &mut Reader<'_>) -> Result<Option<StreamError>> {
    if r.null()? {
        return Ok(None);
    }
    let mut e = ErrorParts::default();
    if let Some(message) = match r.raw()? {
        raw if raw.starts_with('"') => Some(Reader::parse(raw, |r| r.opt_str())?),
        raw => {
            Reader::parse(raw, |r| r.object(|r, key| e.field(r, key)))?;
            None
        }
    } {
        e.message = message.map(Cow::into_owned);
    }
    Ok(Some(e.finish()))
}

/// The fields an error object may have, gathered in any order.
#[derive(Default)]
struct ErrorParts {
    message: Option<String>,
    kind: Option<String>,
    status: Option<String>,
    code: Option<String>,
}

impl ErrorParts {
    /// Takes `key` if it is an error field; skips it otherwise.
    fn field(&mut self, r: &mut Reader<'_>, key: &str) -> Result<()> {
        match key {
            "message" => self.message = r.opt_str()?.map(Cow::into_owned),
            "type" => self.kind = r.opt_str()?.map(Cow::into_owned),
            "status" if r.clone().opt_str().is_ok() => self.status = r.opt_str()?.map(Cow::into_owned),
            "code" => self.code = r.opt_raw()?.map(str::to_owned),
            _ => r.skip()?,
        }
        Ok(())
    }

    /// The error type is the provider's `type`, else Gemini's `status`, else a string `code`.
    fn finish(self) -> StreamError {
        let code_name = self.code.as_deref().and_then(|c| Reader::parse(c, |r| r.opt_str()).ok().flatten());
        StreamError {
            kind: self
                .kind
                .or(self.status)
                .or_else(|| code_name.map(Cow::into_owned))
                .unwrap_or_else(|| "provider_error".to_owned()),
            message: self.message.unwrap_or_else(|| "the provider reported an error".to_owned()),
            code: self.code,
        }
    }
}

fn openai<'a>(data: &'a str, d: &mut Delta<'a>) -> Result<()> {
    if data.trim_ascii() == "[DONE]" {
        d.done = true;
        return Ok(());
    }
    Reader::parse(data, |r| {
        r.object(|r, key| match key {
            "choices" if !r.is_null()? => r.array(|r, _| {
                // Only the first choice is the answer (n > 1 is not a chat UI's case).
                let mut index = 0;
                let mut choice = Delta::default();
                r.object(|r, key| match key {
                    "index" => Ok(index = if r.raw()? == "0" { 0 } else { 1 }),
                    "delta" | "message" if !r.is_null()? => r.object(|r, key| match key {
                        "content" => Ok(choice.text = text(r)?),
                        "reasoning_content" | "reasoning" => Ok(append(&mut choice.reasoning, text(r)?)),
                        _ => r.skip(),
                    }),
                    "finish_reason" => Ok(choice.finish_reason = r.opt_str()?),
                    _ => r.skip(),
                })?;
                if index == 0 {
                    (d.text, d.reasoning, d.finish_reason) = (choice.text, choice.reasoning, choice.finish_reason);
                }
                Ok(())
            }),
            "usage" => Ok(d.usage = r.opt_raw()?.map(Cow::Borrowed)),
            "error" => Ok(d.error = error_value(r)?),
            _ => r.skip(),
        })
    })
}

fn responses<'a>(r: &mut Reader<'a>, d: &mut Delta<'a>) -> Result<()> {
    let mut kind = None;
    let mut delta = None;
    let mut e = ErrorParts::default();
    let mut nested_error = None;
    r.object(|r, key| match key {
        "type" => Ok(kind = r.opt_str()?),
        "delta" => Ok(delta = text(r)?),
        "error" => Ok(nested_error = error_value(r)?),
        "response" if !r.is_null()? => r.object(|r, key| match key {
            "status" => Ok(d.finish_reason = d.finish_reason.take().or(r.opt_str()?)),
            "usage" => Ok(d.usage = r.opt_raw()?.map(Cow::Borrowed)),
            "error" => Ok(d.error = error_value(r)?),
            // A more precise finish reason than the status ("max_output_tokens").
            "incomplete_details" if !r.is_null()? => r.object(|r, key| match key {
                "reason" => Ok(d.finish_reason = r.opt_str()?.or(d.finish_reason.take())),
                _ => r.skip(),
            }),
            _ => r.skip(),
        }),
        _ => e.field(r, key),
    })?;
    match kind.as_deref() {
        Some("response.output_text.delta" | "response.refusal.delta") => d.text = delta,
        Some("response.reasoning_summary_text.delta" | "response.reasoning_text.delta") => d.reasoning = delta,
        Some("response.completed" | "response.incomplete" | "response.failed") => d.done = true,
        Some("error") => {
            e.kind = e.kind.or_else(|| Some("error".to_owned()));
            d.error = nested_error.or_else(|| Some(e.finish()));
        }
        _ => {
            // Only the final events carry a response whose fields mean the end.
            d.usage = None;
            d.finish_reason = None;
            d.error = None;
        }
    }
    Ok(())
}

fn anthropic<'a>(r: &mut Reader<'a>, start_usage: &mut Option<String>, d: &mut Delta<'a>) -> Result<()> {
    let mut kind = None;
    let mut usage = None;
    let mut block = Delta::default();
    let mut stop_reason = None;
    let mut error = None;
    let mut message_usage = None;
    r.object(|r, key| match key {
        "type" => Ok(kind = r.opt_str()?),
        "message" if !r.is_null()? => r.object(|r, key| match key {
            "usage" => Ok(message_usage = r.opt_raw()?),
            _ => r.skip(),
        }),
        "delta" | "content_block" if !r.is_null()? => r.object(|r, key| match key {
            "text" => Ok(block.text = text(r)?),
            "thinking" => Ok(block.reasoning = text(r)?),
            "stop_reason" => Ok(stop_reason = r.opt_str()?),
            _ => r.skip(),
        }),
        "usage" => Ok(usage = r.opt_raw()?),
        "error" => Ok(error = error_value(r)?),
        _ => r.skip(),
    })?;
    match kind.as_deref() {
        Some("message_start") => *start_usage = message_usage.map(str::to_owned),
        Some("content_block_start" | "content_block_delta") => (d.text, d.reasoning) = (block.text, block.reasoning),
        Some("message_delta") => {
            d.finish_reason = stop_reason;
            // The final usage is message_start's with message_delta's counts over it, as
            // Anthropic's SDKs report it.
            d.usage = usage.map(|u| Cow::Owned(merge_objects(start_usage.as_deref(), u)));
        }
        Some("message_stop") => d.done = true,
        Some("error") => d.error = Some(error.unwrap_or_else(|| ErrorParts::default().finish())),
        _ => {} // ping, content_block_stop, and event types added later
    }
    Ok(())
}

/// `{...start, ...delta}` for two JSON objects given as text, keeping `start`'s key order.
fn merge_objects(start: Option<&str>, delta: &str) -> String {
    let fields = |text: &str| {
        let mut out: Vec<(String, String)> = Vec::new();
        let parsed = Reader::parse(text, |r| {
            r.object(|r, key| {
                let value = r.raw()?.to_owned();
                out.push((key.to_owned(), value));
                Ok(())
            })
        });
        parsed.map(|()| out)
    };
    let (Some(start), Ok(later)) = (start, fields(delta)) else { return delta.to_owned() };
    let Ok(mut merged) = fields(start) else { return delta.to_owned() };
    for (key, value) in later {
        match merged.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => merged.push((key, value)),
        }
    }
    let mut out = String::from("{");
    for (i, (key, value)) in merged.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_json_string(&mut out, key);
        out.push(':');
        out.push_str(value);
    }
    out.push('}');
    out
}

/// Appends `s` as a JSON string literal.
pub(crate) fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn gemini<'a>(r: &mut Reader<'a>, d: &mut Delta<'a>) -> Result<()> {
    r.object(|r, key| match key {
        "candidates" if !r.is_null()? => r.array(|r, index| {
            r.object(|r, key| match key {
                "content" if index == 0 && !r.is_null()? => r.object(|r, key| match key {
                    "parts" if !r.is_null()? => r.array(|r, _| {
                        let mut part = None;
                        let mut thought = false;
                        r.object(|r, key| match key {
                            "text" => Ok(part = text(r)?),
                            "thought" => Ok(thought = r.opt_bool()? == Some(true)),
                            _ => r.skip(),
                        })?;
                        append(if thought { &mut d.reasoning } else { &mut d.text }, part);
                        Ok(())
                    }),
                    _ => r.skip(),
                }),
                // Gemini has no end marker: the chunk with a finish reason is the last one.
                "finishReason" if index == 0 => Ok(d.finish_reason = r.opt_str()?),
                _ => r.skip(),
            })
        }),
        "usageMetadata" => Ok(d.usage = r.opt_raw()?.map(Cow::Borrowed)),
        "promptFeedback" if !r.is_null()? => r.object(|r, key| match key {
            "blockReason" => Ok(d.finish_reason = r.opt_str()?.or(d.finish_reason.take())),
            _ => r.skip(),
        }),
        "error" => Ok(d.error = error_value(r)?),
        _ => r.skip(),
    })?;
    d.done = d.finish_reason.is_some();
    Ok(())
}

fn ollama<'a>(r: &mut Reader<'a>, d: &mut Delta<'a>) -> Result<()> {
    // Ollama has no usage object: its counters and timings sit on the final line.
    let mut usage = String::new();
    r.object(|r, key| match key {
        "message" if !r.is_null()? => r.object(|r, key| match key {
            "content" => Ok(d.text = text(r)?),
            "thinking" => Ok(d.reasoning = text(r)?),
            _ => r.skip(),
        }),
        // `/api/generate` puts the text at the top level.
        "response" => Ok(d.text = text(r)?.or(d.text.take())),
        "thinking" => Ok(d.reasoning = text(r)?.or(d.reasoning.take())),
        "done" => Ok(d.done = r.opt_bool()? == Some(true)),
        "done_reason" => Ok(d.finish_reason = r.opt_str()?),
        "error" => Ok(d.error = error_value(r)?),
        k if k.ends_with("_count") || k.ends_with("_duration") => {
            usage.push(if usage.is_empty() { '{' } else { ',' });
            write_json_string(&mut usage, k);
            usage.push(':');
            usage.push_str(r.raw()?);
            Ok(())
        }
        _ => r.skip(),
    })?;
    if d.done && !usage.is_empty() {
        usage.push('}');
        d.usage = Some(Cow::Owned(usage));
    }
    Ok(())
}

fn dashscope<'a>(r: &mut Reader<'a>, event: &str, d: &mut Delta<'a>) -> Result<()> {
    let mut e = ErrorParts::default();
    let mut output_text = None;
    let mut finish = None;
    r.object(|r, key| match key {
        "output" if !r.is_null()? => r.object(|r, key| match key {
            "text" => Ok(output_text = text(r)?),
            "finish_reason" => Ok(finish = r.opt_str()?.or(finish.take())),
            "choices" if !r.is_null()? => r.array(|r, index| {
                r.object(|r, key| match key {
                    "message" if index == 0 && !r.is_null()? => r.object(|r, key| match key {
                        "content" => Ok(d.text = text(r)?),
                        "reasoning_content" => Ok(d.reasoning = text(r)?),
                        _ => r.skip(),
                    }),
                    "finish_reason" if index == 0 => Ok(finish = r.opt_str()?),
                    _ => r.skip(),
                })
            }),
            _ => r.skip(),
        }),
        "usage" => Ok(d.usage = r.opt_raw()?.map(Cow::Borrowed)),
        _ => e.field(r, key),
    })?;
    if d.text.is_none() {
        d.text = output_text;
    }
    // DashScope writes the string "null" while the answer is still going.
    d.finish_reason = finish.filter(|f| f != "null");
    d.done = d.finish_reason.is_some();
    let has_code = e.code.as_deref().is_some_and(|c| c != "\"\"");
    if event == "error" || (has_code && d.text.is_none() && d.reasoning.is_none()) {
        d.error = Some(e.finish());
    }
    Ok(())
}

fn dify<'a>(r: &mut Reader<'a>, d: &mut Delta<'a>) -> Result<()> {
    let mut event = None;
    let mut answer = None;
    let mut e = ErrorParts::default();
    r.object(|r, key| match key {
        "event" => Ok(event = r.opt_str()?),
        "answer" => Ok(answer = r.opt_str()?),
        "metadata" if !r.is_null()? => r.object(|r, key| match key {
            "usage" => Ok(d.usage = r.opt_raw()?.map(Cow::Borrowed)),
            _ => r.skip(),
        }),
        _ => e.field(r, key),
    })?;
    match event.as_deref() {
        Some("message" | "agent_message") => d.text = answer.filter(|a| !a.is_empty()),
        Some("message_end") => d.done = true,
        Some("error") => {
            d.done = true;
            d.error = Some(e.finish());
        }
        // Output moderation replaced the answer. Text already shown cannot be taken back,
        // so the replacement is reported for the page to show instead.
        Some("message_replace") => {
            d.error = Some(StreamError {
                kind: "message_replace".to_owned(),
                message: answer.map(Cow::into_owned).unwrap_or_default(),
                code: None,
            })
        }
        _ => {} // ping, workflow and node events, agent_thought
    }
    if event.as_deref() != Some("message_end") {
        d.usage = None;
    }
    Ok(())
}
