//! chunkwise-wasm: the wasm-bindgen surface of the decoder, a thin binding over the pure core
//! (crate `chunkwise`), built as the module `chunkwise.wasm`. It compiles to nothing but for wasm32.
//!
//! Only numbers cross the boundary. Input bytes are written by JS straight into a buffer in
//! wasm memory; output text is written as UTF-16 code units into another, which JS turns
//! into strings with `String.fromCharCode`. So the glue needs no `TextDecoder` or
//! `TextEncoder`, which mini programs do not have, and no value is serialized per call.
//! The JS classes of the public API (`js/decoder.js`) wrap these.
//!
//! After each call the decoder's results block (at `results_ptr()`, fixed for its lifetime)
//! holds the address of `out` and of `meta`, so JS reads them without another call, and, for
//! a decoder created `tick_only`, how many bytes of text the last `push`/`finish` queued for
//! the typewriter (that text itself is left out of `out`: JS gets it once, from `tick`).
//! After any call on plain text without pacing it also says whether the decoder holds
//! bytes: when it holds none, JS may decode the next chunk with the engine's builtins without
//! calling it, if they find the chunk complete and valid (`Utf8Decoder::holds_nothing`).
//!
//! `edges` is for engines whose builtins outrun interpreted wasm (JavaScriptCore without
//! JIT): for a plain-text chunk that JS keeps (no copy into wasm memory, where a copy and a
//! call cost more than the decoding of a small chunk) it sees only the chunk's length and
//! its first and last four bytes, completes the character the previous chunk left
//! incomplete, holds the one this chunk leaves incomplete, and tells JS where the range in
//! between starts and ends. JS decodes that range with the engine's own UTF-8 decoding when
//! the bytes are valid; otherwise it calls `undo_edges` and `push`, so ill-formed bytes are
//! always replaced here, as the spec says. Which bytes start or complete a character is
//! decided here only.
//!
//! Output layout after `push`/`finish` (all lengths in UTF-16 code units):
//! `out` = text, reasoning, finish reason, usage, then each error's type, message and code,
//! then each event's type, data and id; `meta` = [text, reasoning, finish reason + 1 (0 =
//! none), usage + 1, error count, event count, then 3 lengths per error, then 3 per event].
//!
//! `read_error_body` answers with numbers too: the text it found is UTF-16 in wasm memory,
//! and JS builds the `{type, message, code}` object of `readErrorBody` from the lengths.

#![cfg(target_arch = "wasm32")]

use wasm_bindgen::prelude::*;

use chunkwise::utf8::{TextSink, Utf16Buffer, Utf8Decoder};
use chunkwise::{Format, Options, PaceOptions, StreamDecoder, Update};

/// Set in a `push` result when anything but text was decoded: read `meta`.
const MORE: u32 = 1 << 31;
/// Set in a `push` result when the stream is done.
const DONE: u32 = 1 << 30;
const LEN_MASK: u32 = DONE - 1;
/// Set in an `edges` result when it decided the chunk's ends.
const EDGES: u32 = 1 << 30;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console)]
    fn error(message: &str);
}

#[wasm_bindgen(start)]
fn start() {
    // A panic would be a bug: where it happened reaches the console before the trap. (Its
    // message is left out, as in the Markdown module: formatting it, and the stack trace a
    // fuller hook asks JS for, cost the module and the glue more than the page can spare.)
    std::panic::set_hook(Box::new(|info| {
        let mut s = String::from("chunkwise: panicked at ");
        if let Some(at) = info.location() {
            s.push_str(at.file());
            s.push(':');
            let line = at.line();
            let mut digits = 1;
            while line / digits >= 10 {
                digits *= 10;
            }
            while digits > 0 {
                s.push(char::from(b'0' + (line / digits % 10) as u8));
                digits /= 10;
            }
        }
        error(&s);
    }));
}

/// The module's linear memory, for the JS side's views.
#[wasm_bindgen]
pub fn wasm_memory() -> JsValue {
    wasm_bindgen::memory()
}

/// A buffer of at least `len` bytes for JS to write the next input into (a chunk for
/// `RawDecoder::push` or `edges`, a body for `read_error_body`); its address stays valid until
/// the next call of `input`. One for the whole module, as `Shared` says.
#[wasm_bindgen]
pub fn input(len: usize) -> *mut u8 {
    SHARED.with_borrow_mut(|shared| {
        if shared.input.len() < len {
            shared.input.resize(len.next_power_of_two(), 0);
        }
        shared.input.as_mut_ptr()
    })
}

/// Reads the `len` bytes at `input()` as a provider's error body (see
/// `chunkwise::error_body`). Returns 0 when the body is not one, else the address of
/// `[text address, type length + 1 (0 = none), message length, code length + 1]`, with the
/// type, message and code (JSON text) as UTF-16 at the text address; both valid until the
/// next call. (Numbers only: no array crosses, so the glue needs no allocator calls.)
#[wasm_bindgen]
pub fn read_error_body(len: usize) -> *const u32 {
    SHARED.with_borrow_mut(|shared| {
        let Shared { input, out, meta } = shared;
        let Some(e) = chunkwise::error_body::read(input.get(..len).unwrap_or(input)) else { return std::ptr::null() };
        out.clear();
        let mut put = |s: Option<&str>| {
            s.map_or(0, |s| {
                let before = out.len();
                out.push_str(s);
                (out.len() - before) as u32 + 1
            })
        };
        let lens = [put(e.kind.as_deref()), put(Some(&e.message)) - 1, put(e.code.as_deref())];
        meta.clear();
        meta.extend([out.as_ptr() as u32, lens[0], lens[1], lens[2]]);
        meta.as_ptr()
    })
}

/// The input, output and meta buffers, one set for the whole module: JS is single-threaded
/// and reads a call's output before its next call, so every decoder can use the same ones.
/// A decoder of its own would allocate and zero them afresh for every response, which in an
/// interpreted engine costs more than decoding a 64 KiB chunk.
#[derive(Default)]
struct Shared {
    input: Vec<u8>,
    out: Utf16Buffer,
    meta: Vec<u32>,
}

thread_local! {
    static SHARED: std::cell::RefCell<Shared> = const {
        std::cell::RefCell::new(Shared { input: Vec::new(), out: Utf16Buffer::new(), meta: Vec::new() })
    };
}

#[wasm_bindgen]
pub struct RawDecoder {
    decoder: StreamDecoder,
    /// Plain text without pacing, the hot path: decoded straight to UTF-16, skipping the
    /// `String` of an `Update`.
    text_only: Option<Utf8Decoder>,
    /// Paced text stays out of `push`/`finish` results (JS reads it from `tick` only).
    tick_only: bool,
    /// Paced plain text that JS decodes with the engine's builtins and keeps: `edges` queues
    /// a chunk JS copied to `input()`, and `tick` and `skip` answer how much of JS's text to
    /// show (see `edges` and `tick`).
    js_text: bool,
    /// How many bytes the pacer had queued before the last `edges` call, for `undo_edges`.
    queued_mark: u64,
    /// `[out address, meta address, bytes queued for the typewriter by the last push or
    /// finish when `tick_only`, start and end of the UTF-8 text `tick` or `skip` left to JS,
    /// 0 when this decodes plain text and holds no byte of it (else 1)]`: `push`, `finish`
    /// and a `tick` that shows text rewrite it; `edges` and `undo_edges` only its last entry.
    results: Box<[u32; 6]>,
    update: Update,
    scratch: String,
    /// The plain-text decoder as it was before the last `edges` call, for `undo_edges`.
    before_edges: Utf8Decoder,
}

#[wasm_bindgen]
impl RawDecoder {
    /// `format` indexes `Format::ALL`; `cps <= 0` turns pacing off; `mode` 1 leaves paced
    /// text out of `push`/`finish` results, 2 makes a paced plain-text decoder `js_text`.
    /// Returns undefined for an unknown format (the JS side names the problem).
    pub fn create(
        format: u32,
        cumulative: bool,
        cps: f64,
        max_lag_ms: f64,
        drain_ms: f64,
        max_buffer_bytes: u32,
        mode: u32,
    ) -> Option<RawDecoder> {
        let &(_, format) = Format::ALL.get(format as usize)?;
        let pace = (cps > 0.0).then_some(PaceOptions { cps, max_lag_ms, drain_ms });
        let options = Options { format, cumulative, pace, max_buffer_bytes: max_buffer_bytes as usize };
        let text_only = (format == Format::Text && pace.is_none()).then(Utf8Decoder::new);
        Some(RawDecoder {
            decoder: StreamDecoder::new(options),
            text_only,
            tick_only: mode == 1 && pace.is_some(),
            js_text: mode == 2 && pace.is_some() && format == Format::Text,
            queued_mark: 0,
            results: Box::new([0, 0, 0, 0, 0, 1]),
            update: Update::default(),
            scratch: String::new(),
            before_edges: Utf8Decoder::new(),
        })
    }

    /// The address of the results block (see the module documentation).
    pub fn results_ptr(&self) -> *const u32 {
        self.results.as_ptr()
    }

    /// Decodes the `len` bytes written at `input()`. Returns the text length, with `MORE`
    /// when `meta` must be read and `DONE` when the stream is done.
    pub fn push(&mut self, len: usize) -> u32 {
        SHARED.with_borrow_mut(|shared| {
            let Shared { input, out, meta } = shared;
            let bytes = input.get(..len).unwrap_or(input);
            let result = match &mut self.text_only {
                Some(utf8) => {
                    out.clear();
                    utf8.decode(bytes, out, false);
                    out.len() as u32
                }
                None => {
                    self.update.clear();
                    self.decoder.push_into(bytes, &mut self.update);
                    self.leave_out_paced_text();
                    write_update(&self.update, out, meta)
                }
            };
            self.publish(shared);
            result
        })
    }

    /// Plain text without pacing, for a chunk whose bytes stay in JS (none are copied here):
    /// `first` and `last` are its first and last four bytes, little-endian. Completes the
    /// held character from the first bytes and holds the cut character the chunk ends with
    /// (`Utf8Decoder::edges`); returns `EDGES | tail << 26 | head << 24 | completed`, where
    /// `completed` is the completed character's code point + 1 (0 = none) and JS decodes
    /// the chunk's bytes `head..len - tail` itself. If they are ill-formed, JS calls
    /// `undo_edges` and then `push` with the chunk, so that they are replaced here. Returns
    /// 0, changing nothing, for a chunk shorter than 8 bytes or a decoder of another kind:
    /// JS then calls `push`.
    ///
    /// A `js_text` decoder also queues the completed character and the chunk's bytes
    /// `head..len - tail` for the typewriter, unchecked, from `input()` (JS copied the chunk
    /// there): JS calls `undo_edges` at once if its builtins reject them. It returns 0 after
    /// `finish`, where `push` says `done`.
    pub fn edges(&mut self, len: usize, first: u32, last: u32) -> u32 {
        let (utf8, pacer) = match &mut self.text_only {
            Some(utf8) => (utf8, None),
            None if self.js_text && !self.decoder.is_done() => match self.decoder.paced_text() {
                Some((utf8, pacer)) => (utf8, Some(pacer)),
                None => return 0,
            },
            None => return 0,
        };
        let before = utf8.clone();
        let Some(e) = utf8.edges(len, first.to_le_bytes(), last.to_le_bytes()) else { return 0 };
        self.before_edges = before;
        match pacer {
            None => self.results[5] = u32::from(e.tail > 0),
            Some(pacer) => SHARED.with_borrow_mut(|shared| {
                self.queued_mark = pacer.queued_bytes();
                if let Some(c) = e.completed {
                    pacer.push(c.encode_utf8(&mut [0; 4]));
                }
                // SAFETY: JS decodes these bytes with the engine's builtins, which reject
                // anything but complete, valid UTF-8 (it checks that they do once, at init),
                // and calls `undo_edges`, which takes them back, before any other call if they
                // throw.
                unsafe { pacer.push_unchecked(&shared.input[e.head..len - e.tail]) };
                self.results[2] = (pacer.queued_bytes() - self.queued_mark) as u32;
            }),
        }
        EDGES | (e.tail as u32) << 26 | (e.head as u32) << 24 | e.completed.map_or(0, |c| c as u32 + 1)
    }

    /// Back to the state before the last `edges` call.
    pub fn undo_edges(&mut self) {
        if let Some((utf8, pacer)) = self.decoder.paced_text().filter(|_| self.js_text) {
            *utf8 = self.before_edges.clone();
            pacer.unpush(self.queued_mark);
        }
        if let Some(utf8) = &mut self.text_only {
            *utf8 = self.before_edges.clone();
            self.results[5] = u32::from(!utf8.holds_nothing());
        }
    }

    /// End of input; same result as `push`.
    pub fn finish(&mut self) -> u32 {
        SHARED.with_borrow_mut(|shared| {
            let result = match &mut self.text_only {
                Some(utf8) => {
                    shared.out.clear();
                    utf8.decode(&[], &mut shared.out, true);
                    shared.out.len() as u32 | DONE
                }
                None => {
                    self.update.clear();
                    self.decoder.finish_into(&mut self.update);
                    self.leave_out_paced_text();
                    write_update(&self.update, &mut shared.out, &mut shared.meta)
                }
            };
            self.publish(shared);
            result
        })
    }

    pub fn reset(&mut self) {
        self.decoder.reset();
        if let Some(utf8) = &mut self.text_only {
            utf8.reset();
        }
        self.update.clear();
        self.results[5] = 1;
    }

    /// Paced text at `now_ms` (see `shown` for the result). Text of at least `utf8_min`
    /// bytes is left as UTF-8 (see `text_or_utf8`).
    ///
    /// A `js_text` decoder returns how many UTF-16 code units of JS's text to show.
    pub fn tick(&mut self, now_ms: f64, utf8_min: u32) -> f64 {
        self.scratch.clear();
        // One call site for both kinds, so that the tick is inlined here.
        let js_text = self.js_text;
        let units = self.decoder.tick_to(now_ms, (!js_text).then_some(&mut self.scratch));
        if js_text {
            return units as f64;
        }
        self.shown(utf8_min)
    }

    /// Everything not yet shown, as `tick` gives it.
    ///
    /// A `js_text` decoder returns 0: JS shows all of its text.
    pub fn skip(&mut self, utf8_min: u32) -> f64 {
        if let Some((_, pacer)) = self.decoder.paced_text().filter(|_| self.js_text) {
            pacer.skip_all();
            return 0.0;
        }
        self.scratch.clear();
        self.decoder.skip_into(&mut self.scratch);
        self.shown(utf8_min)
    }

    pub fn pending(&self) -> u32 {
        self.decoder.pending() as u32
    }

    /// The last SSE event ID, written to `out`; returns its length.
    pub fn last_event_id(&mut self) -> u32 {
        self.scratch.clear();
        self.scratch.push_str(self.decoder.last_event_id());
        self.write_scratch()
    }

    /// The answer's id written to `out`; returns its length + 1 (0 = not known yet).
    pub fn response_id(&mut self) -> u32 {
        self.scratch.clear();
        let Some(id) = self.decoder.response_id() else { return 0 };
        self.scratch.push_str(id);
        self.write_scratch() + 1
    }

    /// Writes the addresses of the output, and whether plain text is held, to the results
    /// block.
    fn publish(&mut self, shared: &Shared) {
        self.results[0] = shared.out.as_ptr() as u32;
        self.results[1] = shared.meta.as_ptr() as u32;
        self.results[5] = u32::from(!self.text_only.as_ref().is_some_and(Utf8Decoder::holds_nothing));
    }

    /// With `tick_only`, the text of an update is already queued in the pacer: only its
    /// length goes to JS (so it knows text arrived), not a second copy of the text.
    /// A `js_text` decoder keeps it in `out` (JS keeps it too), and says how long it is.
    /// (Inlined: a call on every push costs an interpreter more than the test.)
    #[inline(always)]
    fn leave_out_paced_text(&mut self) {
        if self.tick_only || self.js_text {
            self.results[2] = u32::try_from(self.update.text.len()).unwrap_or(u32::MAX);
        }
        if self.tick_only {
            self.update.text.clear();
        }
    }

    /// `tick`'s and `skip`'s result. Text of up to three UTF-16 code units travels in the
    /// number itself, `((u2 << 16 | u1) << 16 | u0) << 2 | count` (below 2^50, so exact in
    /// an f64), and JS reads nothing from memory: most ticks show one to three characters,
    /// and in an interpreter a read from memory costs several calls. Longer text: the
    /// negative of `text_or_utf8`'s result. 0: no text.
    fn shown(&mut self, utf8_min: u32) -> f64 {
        // Three code units are at most nine bytes of UTF-8: longer text is not looked at.
        if self.scratch.len() <= 9 {
            let (mut packed, mut count) = (0u64, 0);
            for unit in self.scratch.encode_utf16() {
                if count < 3 {
                    packed |= u64::from(unit) << (16 * count);
                }
                count += 1;
            }
            if count <= 3 {
                return (packed << 2 | count) as f64;
            }
        }
        -f64::from(self.text_or_utf8(utf8_min))
    }

    /// Text of at least `utf8_min` bytes stays UTF-8, for the engine's builtins to decode
    /// (it is a Rust string, so valid): its range is at `results[3..5]` as addresses and the
    /// result is `MORE`. Shorter text is written to `out` as UTF-16; the result is its length.
    fn text_or_utf8(&mut self, utf8_min: u32) -> u32 {
        if self.scratch.is_empty() {
            // Most ticks: nothing to write, nothing for JS to read.
            return 0;
        }
        if self.scratch.len() < utf8_min as usize {
            return self.write_scratch();
        }
        let at = self.scratch.as_ptr() as u32;
        self.results[3] = at;
        self.results[4] = at + self.scratch.len() as u32;
        MORE
    }

    fn write_scratch(&mut self) -> u32 {
        SHARED.with_borrow_mut(|shared| {
            shared.out.clear();
            shared.out.push_str(&self.scratch);
            self.publish(shared);
            shared.out.len() as u32
        })
    }
}

/// Writes an update to `out` and `meta` (see the module documentation); returns the result
/// of `push`.
fn write_update(u: &Update, out: &mut Utf16Buffer, meta: &mut Vec<u32>) -> u32 {
    out.clear();
    out.push_str(&u.text);
    let text_len = out.len() as u32;
    let done = if u.done { DONE } else { 0 };
    let simple = u.reasoning.is_empty()
        && u.finish_reason.is_none()
        && u.usage.is_none()
        && u.errors.is_empty()
        && u.events.is_empty();
    if simple && text_len <= LEN_MASK {
        return text_len | done;
    }
    meta.clear();
    let mut put = |s: &str| {
        let before = out.len();
        out.push_str(s);
        (out.len() - before) as u32
    };
    let reasoning = put(&u.reasoning);
    let finish = u.finish_reason.as_deref().map_or(0, |s| put(s) + 1);
    let usage = u.usage.as_deref().map_or(0, |s| put(s) + 1);
    meta.extend([text_len, reasoning, finish, usage, u.errors.len() as u32, u.events.len() as u32]);
    for e in &u.errors {
        let lens = [put(e.kind.as_str()), put(&e.message), e.code.as_deref().map_or(0, |s| put(s) + 1)];
        meta.extend(lens);
    }
    for e in &u.events {
        let lens = [put(&e.event), put(&e.data), put(&e.id)];
        meta.extend(lens);
    }
    MORE | done
}
