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

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::update::{excerpt, StreamError};

/// Which stream format a decoder reads.
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

    pub fn reset(&mut self) {
        self.start_usage = None;
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// Reads one message. `event` is the SSE event type (`"message"` when there is none).
    /// A message that is not the JSON its format expects gives a `bad_event` error.
    pub fn extract<'a>(&mut self, event: &str, data: &'a str) -> Delta<'a> {
        let result = match self.format {
            Format::OpenAi => openai(data),
            Format::OpenAiResponses => responses(data),
            Format::Anthropic => self.anthropic(data),
            Format::Gemini => gemini(data),
            Format::Ollama => ollama(data),
            Format::DashScope => dashscope(event, data),
            Format::Dify => dify(data),
            Format::Text | Format::Sse | Format::Ndjson | Format::HexRecords => Ok(Delta::default()),
        };
        result.unwrap_or_else(|e| Delta {
            error: Some(StreamError::decoder(
                StreamError::BAD_EVENT,
                format!("{} message is not valid JSON ({}): \"{}\"", self.format.name(), e, excerpt(data.as_bytes())),
            )),
            ..Delta::default()
        })
    }

    fn anthropic<'a>(&mut self, data: &'a str) -> serde_json::Result<Delta<'a>> {
        #[derive(Deserialize)]
        struct Event<'a> {
            #[serde(borrow, rename = "type")]
            kind: Cow<'a, str>,
            #[serde(borrow)]
            message: Option<StartMessage<'a>>,
            #[serde(borrow)]
            content_block: Option<BlockDelta<'a>>,
            #[serde(borrow)]
            delta: Option<BlockDelta<'a>>,
            #[serde(borrow)]
            usage: Option<&'a RawValue>,
            #[serde(borrow)]
            error: Option<&'a RawValue>,
        }
        #[derive(Deserialize)]
        struct StartMessage<'a> {
            #[serde(borrow)]
            usage: Option<&'a RawValue>,
        }
        #[derive(Deserialize)]
        struct BlockDelta<'a> {
            #[serde(borrow)]
            text: Option<Cow<'a, str>>,
            #[serde(borrow)]
            thinking: Option<Cow<'a, str>>,
            #[serde(borrow)]
            stop_reason: Option<Cow<'a, str>>,
        }
        let e: Event = serde_json::from_str(data)?;
        let mut d = Delta::default();
        match e.kind.as_ref() {
            "message_start" => {
                self.start_usage = e.message.and_then(|m| m.usage).map(|u| u.get().to_owned());
            }
            "content_block_start" | "content_block_delta" => {
                if let Some(block) = e.delta.or(e.content_block) {
                    d.text = block.text.filter(|t| !t.is_empty());
                    d.reasoning = block.thinking.filter(|t| !t.is_empty());
                }
            }
            "message_delta" => {
                d.finish_reason = e.delta.and_then(|b| b.stop_reason);
                if let Some(usage) = e.usage {
                    d.usage = Some(Cow::Owned(merge_objects(self.start_usage.as_deref(), usage.get())));
                }
            }
            "message_stop" => d.done = true,
            "error" => d.error = Some(provider_error(e.error.map(RawValue::get), None)),
            _ => {} // ping, content_block_stop, and event types added later
        }
        Ok(d)
    }
}

/// An error object (`{message, type, code}`, Gemini's `{code, message, status}`) or a bare
/// string, as providers send them; `fallback` supplies the message when there is none.
fn provider_error(raw: Option<&str>, fallback: Option<&str>) -> StreamError {
    #[derive(Deserialize, Default)]
    struct ErrorObject<'a> {
        #[serde(borrow)]
        message: Option<Cow<'a, str>>,
        #[serde(borrow, rename = "type")]
        kind: Option<Cow<'a, str>>,
        #[serde(borrow)]
        status: Option<Cow<'a, str>>,
        #[serde(borrow)]
        code: Option<&'a RawValue>,
    }
    let raw = raw.unwrap_or("null");
    let (message, kind, code) = if raw.starts_with('"') {
        (serde_json::from_str::<String>(raw).ok(), None, None)
    } else {
        let o: ErrorObject = serde_json::from_str(raw).unwrap_or_default();
        let kind = o.kind.or(o.status).map(Cow::into_owned);
        (o.message.map(Cow::into_owned), kind, o.code.map(|c| c.get().to_owned()))
    };
    StreamError {
        kind: kind.unwrap_or_else(|| "provider_error".to_owned()),
        message: message
            .or_else(|| fallback.map(str::to_owned))
            .unwrap_or_else(|| "the provider reported an error".to_owned()),
        code,
    }
}

/// `{...start, ...delta}` for two flat JSON objects given as text.
fn merge_objects(start: Option<&str>, delta: &str) -> String {
    fn parse(s: &str) -> BTreeMap<String, &RawValue> {
        serde_json::from_str(s).unwrap_or_default()
    }
    let Some(start) = start else { return delta.to_owned() };
    let mut merged = parse(start);
    merged.extend(parse(delta));
    let mut out = String::from("{");
    for (i, (key, value)) in merged.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&serde_json::to_string(key).expect("a string serializes"));
        out.push(':');
        out.push_str(value.get());
    }
    out.push('}');
    out
}

fn some_text(t: Option<Cow<'_, str>>) -> Option<Cow<'_, str>> {
    t.filter(|t| !t.is_empty())
}

fn openai(data: &str) -> serde_json::Result<Delta<'_>> {
    #[derive(Deserialize)]
    struct Chunk<'a> {
        #[serde(borrow)]
        choices: Option<Vec<Choice<'a>>>,
        #[serde(borrow)]
        usage: Option<&'a RawValue>,
        #[serde(borrow)]
        error: Option<&'a RawValue>,
    }
    #[derive(Deserialize)]
    struct Choice<'a> {
        #[serde(default)]
        index: u32,
        #[serde(borrow)]
        delta: Option<Message<'a>>,
        #[serde(borrow)]
        message: Option<Message<'a>>,
        #[serde(borrow)]
        finish_reason: Option<Cow<'a, str>>,
    }
    #[derive(Deserialize)]
    struct Message<'a> {
        #[serde(borrow)]
        content: Option<Cow<'a, str>>,
        #[serde(borrow)]
        reasoning_content: Option<Cow<'a, str>>,
        #[serde(borrow)]
        reasoning: Option<Cow<'a, str>>,
    }
    if data.trim_ascii() == "[DONE]" {
        return Ok(Delta { done: true, ..Delta::default() });
    }
    let chunk: Chunk = serde_json::from_str(data)?;
    let mut d = Delta::default();
    // Only the first choice is the answer (n > 1 is not a chat UI's case).
    if let Some(choice) = chunk.choices.unwrap_or_default().into_iter().find(|c| c.index == 0) {
        if let Some(m) = choice.delta.or(choice.message) {
            d.text = some_text(m.content);
            d.reasoning = some_text(m.reasoning_content.or(m.reasoning));
        }
        d.finish_reason = choice.finish_reason;
    }
    d.usage = chunk.usage.map(|u| Cow::Borrowed(u.get()));
    if let Some(error) = chunk.error {
        d.error = Some(provider_error(Some(error.get()), None));
    }
    Ok(d)
}

fn responses(data: &str) -> serde_json::Result<Delta<'_>> {
    #[derive(Deserialize)]
    struct Event<'a> {
        #[serde(borrow, rename = "type")]
        kind: Cow<'a, str>,
        #[serde(borrow)]
        delta: Option<Cow<'a, str>>,
        #[serde(borrow)]
        response: Option<Response<'a>>,
        #[serde(borrow)]
        message: Option<Cow<'a, str>>,
        #[serde(borrow)]
        code: Option<&'a RawValue>,
        #[serde(borrow)]
        error: Option<&'a RawValue>,
    }
    #[derive(Deserialize)]
    struct Response<'a> {
        #[serde(borrow)]
        status: Option<Cow<'a, str>>,
        #[serde(borrow)]
        usage: Option<&'a RawValue>,
        #[serde(borrow)]
        error: Option<&'a RawValue>,
        #[serde(borrow)]
        incomplete_details: Option<Incomplete<'a>>,
    }
    #[derive(Deserialize)]
    struct Incomplete<'a> {
        #[serde(borrow)]
        reason: Option<Cow<'a, str>>,
    }
    let e: Event = serde_json::from_str(data)?;
    let mut d = Delta::default();
    match e.kind.as_ref() {
        "response.output_text.delta" | "response.refusal.delta" => d.text = some_text(e.delta),
        "response.reasoning_summary_text.delta" | "response.reasoning_text.delta" => d.reasoning = some_text(e.delta),
        "response.completed" | "response.incomplete" | "response.failed" => {
            d.done = true;
            if let Some(r) = e.response {
                d.usage = r.usage.map(|u| Cow::Borrowed(u.get()));
                d.finish_reason = r.incomplete_details.and_then(|i| i.reason).or(r.status);
                if let Some(error) = r.error {
                    d.error = Some(provider_error(Some(error.get()), None));
                }
            }
        }
        "error" => {
            d.error = Some(match e.error {
                Some(nested) => provider_error(Some(nested.get()), None),
                None => StreamError {
                    kind: "error".to_owned(),
                    message: e
                        .message
                        .map(Cow::into_owned)
                        .unwrap_or_else(|| "the provider reported an error".to_owned()),
                    code: e.code.map(|c| c.get().to_owned()),
                },
            })
        }
        _ => {}
    }
    Ok(d)
}

fn gemini(data: &str) -> serde_json::Result<Delta<'_>> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Chunk<'a> {
        #[serde(borrow)]
        candidates: Option<Vec<Candidate<'a>>>,
        #[serde(borrow)]
        usage_metadata: Option<&'a RawValue>,
        #[serde(borrow)]
        error: Option<&'a RawValue>,
        #[serde(borrow)]
        prompt_feedback: Option<Feedback<'a>>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Candidate<'a> {
        #[serde(borrow)]
        content: Option<Content<'a>>,
        #[serde(borrow)]
        finish_reason: Option<Cow<'a, str>>,
    }
    #[derive(Deserialize)]
    struct Content<'a> {
        #[serde(borrow)]
        parts: Option<Vec<Part<'a>>>,
    }
    #[derive(Deserialize)]
    struct Part<'a> {
        #[serde(borrow)]
        text: Option<Cow<'a, str>>,
        #[serde(default)]
        thought: bool,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Feedback<'a> {
        #[serde(borrow)]
        block_reason: Option<Cow<'a, str>>,
    }
    let chunk: Chunk = serde_json::from_str(data)?;
    let mut d = Delta::default();
    if let Some(c) = chunk.candidates.unwrap_or_default().into_iter().next() {
        for part in c.content.and_then(|c| c.parts).unwrap_or_default() {
            let Some(text) = part.text.filter(|t| !t.is_empty()) else { continue };
            let slot = if part.thought { &mut d.reasoning } else { &mut d.text };
            append(slot, text);
        }
        // Gemini has no end marker: the chunk with a finish reason is the last one.
        d.done = c.finish_reason.is_some();
        d.finish_reason = c.finish_reason;
    }
    if let Some(reason) = chunk.prompt_feedback.and_then(|f| f.block_reason) {
        d.finish_reason = Some(reason);
        d.done = true;
    }
    d.usage = chunk.usage_metadata.map(|u| Cow::Borrowed(u.get()));
    if let Some(error) = chunk.error {
        d.error = Some(provider_error(Some(error.get()), None));
    }
    Ok(d)
}

/// Several parts of one message (Gemini) join into one piece of text.
fn append<'a>(slot: &mut Option<Cow<'a, str>>, text: Cow<'a, str>) {
    match slot {
        None => *slot = Some(text),
        Some(existing) => existing.to_mut().push_str(&text),
    }
}

fn ollama(data: &str) -> serde_json::Result<Delta<'_>> {
    #[derive(Deserialize)]
    struct Line<'a> {
        #[serde(borrow)]
        message: Option<Message<'a>>,
        /// `/api/generate` puts the text here.
        #[serde(borrow)]
        response: Option<Cow<'a, str>>,
        #[serde(borrow)]
        thinking: Option<Cow<'a, str>>,
        #[serde(default)]
        done: bool,
        #[serde(borrow)]
        done_reason: Option<Cow<'a, str>>,
        #[serde(borrow)]
        error: Option<&'a RawValue>,
        #[serde(borrow)]
        total_duration: Option<&'a RawValue>,
        #[serde(borrow)]
        load_duration: Option<&'a RawValue>,
        #[serde(borrow)]
        prompt_eval_count: Option<&'a RawValue>,
        #[serde(borrow)]
        prompt_eval_duration: Option<&'a RawValue>,
        #[serde(borrow)]
        eval_count: Option<&'a RawValue>,
        #[serde(borrow)]
        eval_duration: Option<&'a RawValue>,
    }
    #[derive(Deserialize)]
    struct Message<'a> {
        #[serde(borrow)]
        content: Option<Cow<'a, str>>,
        #[serde(borrow)]
        thinking: Option<Cow<'a, str>>,
    }
    let line: Line = serde_json::from_str(data)?;
    let mut d = Delta::default();
    let (content, thinking) = match line.message {
        Some(m) => (m.content, m.thinking),
        None => (line.response, line.thinking),
    };
    d.text = some_text(content);
    d.reasoning = some_text(thinking);
    d.done = line.done;
    d.finish_reason = line.done_reason;
    if line.done {
        // Ollama has no usage object: its counters and timings sit on the final line.
        let counters = [
            ("total_duration", line.total_duration),
            ("load_duration", line.load_duration),
            ("prompt_eval_count", line.prompt_eval_count),
            ("prompt_eval_duration", line.prompt_eval_duration),
            ("eval_count", line.eval_count),
            ("eval_duration", line.eval_duration),
        ];
        let mut usage = String::from("{");
        for (key, value) in counters.iter().filter_map(|(k, v)| Some((k, (*v)?))) {
            if usage.len() > 1 {
                usage.push(',');
            }
            usage.push_str(&format!("\"{key}\":{}", value.get()));
        }
        usage.push('}');
        d.usage = (usage.len() > 2).then_some(Cow::Owned(usage));
    }
    if let Some(error) = line.error {
        d.error = Some(provider_error(Some(error.get()), None));
    }
    Ok(d)
}

fn dashscope<'a>(event: &str, data: &'a str) -> serde_json::Result<Delta<'a>> {
    #[derive(Deserialize)]
    struct Chunk<'a> {
        #[serde(borrow)]
        output: Option<Output<'a>>,
        #[serde(borrow)]
        usage: Option<&'a RawValue>,
        #[serde(borrow)]
        code: Option<&'a RawValue>,
        #[serde(borrow)]
        message: Option<Cow<'a, str>>,
    }
    #[derive(Deserialize)]
    struct Output<'a> {
        #[serde(borrow)]
        text: Option<Cow<'a, str>>,
        #[serde(borrow)]
        finish_reason: Option<Cow<'a, str>>,
        #[serde(borrow)]
        choices: Option<Vec<Choice<'a>>>,
    }
    #[derive(Deserialize)]
    struct Choice<'a> {
        #[serde(borrow)]
        message: Option<Message<'a>>,
        #[serde(borrow)]
        finish_reason: Option<Cow<'a, str>>,
    }
    #[derive(Deserialize)]
    struct Message<'a> {
        #[serde(borrow)]
        content: Option<Cow<'a, str>>,
        #[serde(borrow)]
        reasoning_content: Option<Cow<'a, str>>,
    }
    let chunk: Chunk = serde_json::from_str(data)?;
    let mut d = Delta::default();
    if let Some(out) = chunk.output {
        let mut finish = out.finish_reason;
        d.text = some_text(out.text);
        if let Some(choice) = out.choices.unwrap_or_default().into_iter().next() {
            if let Some(m) = choice.message {
                d.text = some_text(m.content).or(d.text);
                d.reasoning = some_text(m.reasoning_content);
            }
            finish = choice.finish_reason.or(finish);
        }
        // DashScope writes the string "null" while the answer is still going.
        d.finish_reason = finish.filter(|f| f != "null");
        d.done = d.finish_reason.is_some();
    }
    d.usage = chunk.usage.map(|u| Cow::Borrowed(u.get()));
    let failed = event == "error"
        || (d.text.is_none() && d.reasoning.is_none() && chunk.code.is_some_and(|c| c.get() != "\"\""));
    if failed {
        d.error = Some(StreamError {
            kind: chunk
                .code
                .and_then(|c| serde_json::from_str::<String>(c.get()).ok())
                .unwrap_or_else(|| "provider_error".to_owned()),
            message: chunk.message.map(Cow::into_owned).unwrap_or_else(|| "the provider reported an error".to_owned()),
            code: chunk.code.map(|c| c.get().to_owned()),
        });
    }
    Ok(d)
}

fn dify(data: &str) -> serde_json::Result<Delta<'_>> {
    #[derive(Deserialize)]
    struct Event<'a> {
        #[serde(borrow)]
        event: Cow<'a, str>,
        #[serde(borrow)]
        answer: Option<Cow<'a, str>>,
        #[serde(borrow)]
        metadata: Option<Metadata<'a>>,
        #[serde(borrow)]
        code: Option<&'a RawValue>,
        #[serde(borrow)]
        message: Option<Cow<'a, str>>,
    }
    #[derive(Deserialize)]
    struct Metadata<'a> {
        #[serde(borrow)]
        usage: Option<&'a RawValue>,
    }
    let e: Event = serde_json::from_str(data)?;
    let mut d = Delta::default();
    match e.event.as_ref() {
        "message" | "agent_message" => d.text = some_text(e.answer),
        "message_end" => {
            d.done = true;
            d.usage = e.metadata.and_then(|m| m.usage).map(|u| Cow::Borrowed(u.get()));
        }
        "error" => {
            d.done = true;
            d.error = Some(StreamError {
                kind: e
                    .code
                    .and_then(|c| serde_json::from_str::<String>(c.get()).ok())
                    .unwrap_or_else(|| "provider_error".to_owned()),
                message: e.message.map(Cow::into_owned).unwrap_or_else(|| "the provider reported an error".to_owned()),
                code: e.code.map(|c| c.get().to_owned()),
            });
        }
        // Output moderation replaced the answer; text already shown cannot be taken back,
        // so the replacement is reported for the page to show instead.
        "message_replace" => {
            d.error = Some(StreamError {
                kind: "message_replace".to_owned(),
                message: e.answer.map(Cow::into_owned).unwrap_or_default(),
                code: None,
            })
        }
        _ => {} // ping, workflow and node events, agent_thought
    }
    Ok(d)
}
