//! [`StreamDecoder`]: raw body bytes in, [`Update`]s out. It ties framing (UTF-8 text, SSE,
//! NDJSON, hex records, JSON values), the provider formats, the `cumulative` option and the
//! typewriter [`Pacer`] together.
//!
//! # Guarantees
//! - The merged updates of a stream are identical however its bytes are cut (the text, the
//!   reasoning, the events and the errors, in order).
//! - Stream content never makes a call fail: a bad message becomes an error in the update
//!   and decoding continues with the next one. Text already decoded is never lost.
//! - Memory is bounded by `max_buffer_bytes` per line, event, record or JSON value (plus the
//!   pacer's queue, see [`crate::pacer`]).
//!
//! # Example
//! ```
//! use chunkwise::{Format, Options, StreamDecoder};
//! let body = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"你好\"}}]}\n\ndata: [DONE]\n\n";
//! let mut decoder = StreamDecoder::new(Options { format: Format::OpenAi, ..Options::default() });
//! let mut update = decoder.push(&body.as_bytes()[..40]); // cut anywhere, even inside 你
//! update.merge(decoder.push(&body.as_bytes()[40..]));
//! assert_eq!(update.text, "你好");
//! assert!(update.done);
//! ```

use std::borrow::Cow;

use crate::formats::{Delta, Extractor, Format};
use crate::hex_records::{HexRecords, Record};
use crate::json_values::JsonValues;
use crate::lines::{Breaks, LineSplitter};
use crate::pacer::{PaceOptions, Pacer};
use crate::sse::{SseItem, SseParser};
use crate::update::{ErrorKind, Event, StreamError, Update};
use crate::utf8::{decode_lossy, BomSniffer, BomStep, Utf8Decoder, BOM};

/// The default bound of one line, event, record or JSON value: 1 MiB.
pub const DEFAULT_MAX_BUFFER_BYTES: usize = 1 << 20;

/// How a [`StreamDecoder`] reads its stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub format: Format,
    /// Every message carries the whole text so far (DashScope without
    /// `incremental_output`, backends that resend the whole answer): only the new suffix is
    /// returned.
    pub cumulative: bool,
    /// Typewriter pacing of the answer text; `None` turns it off.
    pub pace: Option<PaceOptions>,
    /// The bound of one line, event, record or JSON value.
    pub max_buffer_bytes: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options { format: Format::Text, cumulative: false, pace: None, max_buffer_bytes: DEFAULT_MAX_BUFFER_BYTES }
    }
}

/// How the body is cut into messages.
#[derive(Debug, Clone)]
enum Framing {
    Text(Utf8Decoder),
    Lines(LineSplitter),
    Sse(SseParser),
    /// The provider formats that stream SSE also accept a plain JSON body (a non-streamed
    /// response, an error body, Gemini's JSON array): the first byte that is not
    /// whitespace decides.
    SseOrJson {
        decided: Option<bool>,
        /// What came before the deciding byte.
        held: Sniffed,
        sse: SseParser,
        json: JsonValues,
    },
    HexRecords(HexRecords, Utf8Decoder),
}

/// A streaming decoder of one response body (see the module documentation).
#[derive(Debug, Clone)]
pub struct StreamDecoder {
    options: Options,
    framing: Framing,
    extractor: Extractor,
    /// With `cumulative`: the whole text and reasoning so far.
    seen_text: String,
    seen_reasoning: String,
    pacer: Option<Pacer>,
    done: bool,
}

impl StreamDecoder {
    pub fn new(options: Options) -> StreamDecoder {
        let max = options.max_buffer_bytes.max(1);
        let framing = match options.format {
            Format::Text => Framing::Text(Utf8Decoder::new()),
            Format::Ndjson | Format::Ollama => Framing::Lines(LineSplitter::new(Breaks::Lf, max)),
            Format::Sse => Framing::Sse(SseParser::new(max)),
            Format::HexRecords => Framing::HexRecords(HexRecords::new(max), Utf8Decoder::new()),
            _ => Framing::SseOrJson {
                decided: None,
                held: Sniffed::default(),
                sse: SseParser::new(max),
                json: JsonValues::new(max),
            },
        };
        StreamDecoder {
            extractor: Extractor::new(options.format),
            pacer: options.pace.map(Pacer::new),
            framing,
            options,
            seen_text: String::new(),
            seen_reasoning: String::new(),
            done: false,
        }
    }

    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Decodes the next piece of the body.
    pub fn push(&mut self, bytes: &[u8]) -> Update {
        let mut update = Update::default();
        self.push_into(bytes, &mut update);
        update
    }

    /// End of the body: flushes what is held (an incomplete UTF-8 sequence becomes U+FFFD)
    /// and marks the stream done. The decoder can then be `reset` for another stream.
    pub fn finish(&mut self) -> Update {
        let mut update = Update::default();
        self.finish_into(&mut update);
        update
    }

    /// Like [`push`](Self::push), appending to `out` (so its allocations are reused).
    pub fn push_into(&mut self, bytes: &[u8], out: &mut Update) {
        let text_start = out.text.len();
        self.run(bytes, false, out);
        self.after(text_start, out);
    }

    /// Like [`finish`](Self::finish), appending to `out`.
    pub fn finish_into(&mut self, out: &mut Update) {
        let text_start = out.text.len();
        self.run(&[], true, out);
        self.done = true;
        self.after(text_start, out);
    }

    /// Back to the state of a new decoder with the same options.
    pub fn reset(&mut self) {
        *self = StreamDecoder::new(self.options.clone());
    }

    /// Whether the end marker (or `finish`) was seen.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The last SSE event ID seen, for resuming a cut stream (`""` when none).
    pub fn last_event_id(&self) -> &str {
        match &self.framing {
            Framing::Sse(sse) | Framing::SseOrJson { sse, .. } => sse.last_event_id(),
            _ => "",
        }
    }

    /// The id of the answer, once the provider's messages gave it (OpenAI's chunk `id`, the
    /// Responses API's `response.id`, Anthropic's `message.id`, Gemini's `responseId`,
    /// Dify's `message_id`). A relay's generation id arrives this way too.
    pub fn response_id(&self) -> Option<&str> {
        self.extractor.response_id()
    }

    /// Paced plain text (the `Text` format with a pace): its UTF-8 decoder and its typewriter,
    /// for a caller that decodes the text itself with a decoder it trusts, and holds the
    /// decoded text itself. It calls [`Utf8Decoder::edges`] with each chunk, queues the
    /// completed character and the complete middle with [`Pacer::push_unchecked`], and reads
    /// ticks with [`Pacer::tick_utf16`] and [`Pacer::skip_all`]: one decode of each byte,
    /// with the same clusters and timing as [`push`](Self::push) and
    /// [`tick_into`](Self::tick_into) give. `None` for any other decoder.
    #[inline]
    pub fn paced_text(&mut self) -> Option<(&mut Utf8Decoder, &mut Pacer)> {
        match (&mut self.framing, &mut self.pacer) {
            (Framing::Text(utf8), Some(pacer)) => Some((utf8, pacer)),
            _ => None,
        }
    }

    /// The next paced characters at time `now_ms` (all new text when pacing is off).
    pub fn tick_into(&mut self, now_ms: f64, out: &mut String) {
        self.tick_to(now_ms, Some(out));
    }

    /// [`Pacer::tick_to`]: the UTF-16 length of the next paced characters, appended to `out`
    /// if given (0 when pacing is off).
    pub fn tick_to(&mut self, now_ms: f64, out: Option<&mut String>) -> usize {
        self.pacer.as_mut().map_or(0, |pacer| pacer.tick_to(now_ms, out))
    }

    pub fn tick(&mut self, now_ms: f64) -> String {
        let mut out = String::new();
        self.tick_into(now_ms, &mut out);
        out
    }

    /// Grapheme clusters decoded but not yet shown by `tick`.
    pub fn pending(&self) -> usize {
        self.pacer.as_ref().map_or(0, Pacer::pending)
    }

    /// Everything not yet shown, at once.
    pub fn skip_into(&mut self, out: &mut String) {
        if let Some(pacer) = &mut self.pacer {
            pacer.skip_into(out);
        }
    }

    pub fn skip(&mut self) -> String {
        let mut out = String::new();
        self.skip_into(&mut out);
        out
    }

    fn after(&mut self, text_start: usize, out: &mut Update) {
        out.done |= self.done;
        if let Some(pacer) = &mut self.pacer {
            // SAFETY: `text_start` was `out.text.len()` before `run`, which only appends whole
            // `str`s to `out.text`, so it is a char boundary within it. Unchecked because
            // `str` indexing's failure path (a formatted panic message) costs wasm bytes.
            pacer.push(unsafe { out.text.get_unchecked(text_start..) });
            if self.done {
                pacer.end();
            }
        }
    }

    fn run(&mut self, bytes: &[u8], last: bool, out: &mut Update) {
        let StreamDecoder { framing, extractor, options, seen_text, seen_reasoning, done, .. } = self;
        let mut sink = Sink { extractor, cumulative: options.cumulative, seen_text, seen_reasoning, done, out };
        match framing {
            Framing::Text(utf8) => utf8.decode(bytes, &mut sink.out.text, last),
            Framing::Lines(lines) => {
                let mut on = |line: Result<&[u8], StreamError>| sink.line(line);
                lines.feed(bytes, &mut on);
                if last {
                    lines.finish(&mut on);
                }
            }
            Framing::Sse(sse) => {
                let mut on = |item: SseItem<'_>| sink.sse_raw(item);
                sse.feed(bytes, &mut on);
                if last {
                    sse.finish(false, &mut on);
                }
            }
            Framing::SseOrJson { decided, held, sse, json } => {
                let replay;
                let mut bytes = bytes;
                if decided.is_none() {
                    let (decision, rest) = held.sniff(bytes, last, options.max_buffer_bytes);
                    let Some(is_sse) = decision else { return };
                    *decided = Some(is_sse);
                    // What was held goes first: the BOM (the SSE parser strips it itself)
                    // and the whitespace of the line the deciding byte is on.
                    let mut start = held.take(is_sse);
                    start.extend_from_slice(rest);
                    replay = start;
                    bytes = &replay;
                }
                if *decided == Some(true) {
                    let mut on = |item: SseItem<'_>| sink.sse(item);
                    sse.feed(bytes, &mut on);
                    if last {
                        sse.finish(true, &mut on);
                    }
                } else {
                    let mut on = |value: Result<&[u8], StreamError>| sink.message("message", value);
                    json.feed(bytes, &mut on);
                    if last {
                        json.finish(&mut on);
                    }
                }
            }
            Framing::HexRecords(records, utf8) => {
                let mut on = |record: Record<'_>| match record {
                    Record::Payload(payload) if sink.cumulative => {
                        let text = decode_lossy(payload);
                        sink.text(Some(text), false);
                    }
                    Record::Payload(payload) => utf8.decode(payload, &mut sink.out.text, false),
                    Record::End => *sink.done = true,
                    Record::Error(e) => sink.out.errors.push(e),
                };
                records.feed(bytes, &mut on);
                if last {
                    records.finish(&mut on);
                    utf8.decode(&[], &mut sink.out.text, true);
                }
            }
        }
    }
}

/// The start of a body whose kind (SSE or JSON) is not known yet: a BOM, then whitespace.
///
/// What is kept is a function of the bytes seen, not of how they were cut, so the decision
/// and what is replayed are split-invariant: blank lines before the first event change
/// nothing in SSE and nothing in JSON, so only the whitespace after the last line break is
/// kept (it would prefix the first SSE line), bounded like any line.
#[derive(Debug, Clone, Default)]
struct Sniffed {
    bom: BomSniffer,
    /// A whole BOM was found (the SSE parser strips it itself, so it is replayed to it).
    had_bom: bool,
    /// Whitespace after the last line break (at most `max_buffer_bytes + 1` of it).
    line: Vec<u8>,
}

impl Sniffed {
    /// Reads `bytes` until one decides: `{` or `[` is JSON, anything else SSE. Returns the
    /// decision (none yet: keep waiting) and the bytes from the deciding one on.
    fn sniff<'b>(&mut self, mut bytes: &'b [u8], last: bool, max_line: usize) -> (Option<bool>, &'b [u8]) {
        if !self.bom.is_decided() {
            match self.bom.step(bytes) {
                BomStep::Wait if !last => return (None, &[]),
                // A cut-off BOM is not one: it is SSE's business (as garbage).
                BomStep::Wait => return (Some(true), &[]),
                BomStep::NoBom { held, rest } if !held.is_empty() => return (Some(true), rest),
                BomStep::NoBom { rest, .. } => bytes = rest,
                BomStep::Bom(rest) => {
                    self.had_bom = true;
                    bytes = rest;
                }
            }
        }
        for (i, &b) in bytes.iter().enumerate() {
            match b {
                b'\n' | b'\r' => self.line.clear(),
                b' ' | b'\t' => {
                    if self.line.len() <= max_line {
                        self.line.push(b);
                    }
                }
                b'{' | b'[' => return (Some(false), &bytes[i..]),
                _ => return (Some(true), &bytes[i..]),
            }
        }
        (last.then_some(true), &[])
    }

    /// The held bytes to replay in front of the rest: with SSE, the BOM (its parser strips
    /// it) or the first bytes of one that was cut off; the whitespace either way.
    fn take(&mut self, is_sse: bool) -> Vec<u8> {
        let mut out = Vec::new();
        if is_sse {
            let held = if self.had_bom { BOM } else { self.bom.end() };
            out.extend_from_slice(held);
        }
        out.append(&mut self.line);
        out
    }
}

/// Where messages go once framed: into the update, through the format and `cumulative`.
struct Sink<'s> {
    extractor: &'s mut Extractor,
    cumulative: bool,
    seen_text: &'s mut String,
    seen_reasoning: &'s mut String,
    done: &'s mut bool,
    out: &'s mut Update,
}

impl Sink<'_> {
    /// A raw SSE event (`sse` format).
    fn sse_raw(&mut self, item: SseItem<'_>) {
        match item {
            SseItem::Event(e) => self.out.events.push(Event {
                event: e.event.to_owned(),
                data: decode_lossy(e.data).into_owned(),
                id: e.id.to_owned(),
            }),
            SseItem::Retry(_) => {}
            SseItem::Error(e) => self.out.errors.push(e),
        }
    }

    /// An SSE event of a provider format.
    fn sse(&mut self, item: SseItem<'_>) {
        match item {
            SseItem::Event(e) => self.message(e.event, Ok(e.data)),
            SseItem::Retry(_) => {}
            SseItem::Error(e) => self.out.errors.push(e),
        }
    }

    /// An NDJSON line: a raw event (`ndjson`) or a provider message (`ollama`).
    fn line(&mut self, line: Result<&[u8], StreamError>) {
        match line {
            Ok(line) if line.iter().all(u8::is_ascii_whitespace) => {}
            Ok(line) if self.extractor_is_raw() => self.out.events.push(Event {
                event: "message".to_owned(),
                data: decode_lossy(line).into_owned(),
                id: String::new(),
            }),
            other => self.message("message", other),
        }
    }

    fn extractor_is_raw(&self) -> bool {
        !self.extractor.format().is_provider()
    }

    fn message(&mut self, event: &str, data: Result<&[u8], StreamError>) {
        match data {
            // A message shaped as the last one is read on its bytes: only its text is checked
            // for UTF-8 (the rest are the bytes checked then), not the whole message first.
            Ok(data) => match self.extractor.extract_templated(event, data) {
                Some(delta) => self.apply(delta),
                None => {
                    let data = decode_lossy(data);
                    let delta = self.extractor.extract(event, &data);
                    self.apply(delta);
                }
            },
            Err(e) => self.out.errors.push(e),
        }
    }

    fn apply(&mut self, delta: Delta<'_>) {
        let Delta { text, reasoning, finish_reason, usage, error, done, .. } = delta;
        self.text(text, false);
        self.text(reasoning, true);
        if let Some(reason) = finish_reason {
            self.out.finish_reason = Some(reason.into_owned());
        }
        if let Some(usage) = usage {
            self.out.usage = Some(usage.into_owned());
        }
        if let Some(error) = error {
            self.out.errors.push(error);
        }
        *self.done |= done;
    }

    /// Appends answer or reasoning text; with `cumulative`, only what is new.
    fn text(&mut self, text: Option<Cow<'_, str>>, reasoning: bool) {
        let Some(text) = text else { return };
        let (seen, out) = if reasoning {
            (&mut *self.seen_reasoning, &mut self.out.reasoning)
        } else {
            (&mut *self.seen_text, &mut self.out.text)
        };
        if !self.cumulative {
            out.push_str(&text);
            return;
        }
        if let Some(new) = text.strip_prefix(seen.as_str()) {
            out.push_str(new);
        } else {
            // The message does not extend what came before: what was shown cannot be taken
            // back, so the differing tail is added and the mismatch reported.
            let common = common_prefix(seen, &text);
            // SAFETY: `common_prefix` returns a char boundary of `text` (see there).
            let tail = unsafe { text.get_unchecked(common..) };
            out.push_str(tail);
            self.out.errors.push(StreamError::decoder(
                ErrorKind::BadEvent,
                format!(
                    "a cumulative message does not extend the text before it (they differ after {common} bytes): \"{}\"",
                    crate::update::excerpt(tail.as_bytes())
                ),
            ));
        }
        seen.clear();
        seen.push_str(&text);
    }
}

/// The length of the longest common prefix of `a` and `b`, on a char boundary of both: it
/// is the start of the first differing char, or the shorter length, and the bytes before it
/// are the same whole chars in both.
fn common_prefix(a: &str, b: &str) -> usize {
    a.char_indices().zip(b.chars()).find(|((_, x), y)| x != y).map_or(a.len().min(b.len()), |((i, _), _)| i)
}
