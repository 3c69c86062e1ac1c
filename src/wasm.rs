//! The wasm-bindgen surface: a thin binding over the pure core, compiled only for wasm32.
//!
//! Only numbers cross the boundary. Input bytes are written by JS straight into a buffer in
//! wasm memory; output text is written as UTF-16 code units into another, which JS turns
//! into strings with `String.fromCharCode`. So the glue needs no `TextDecoder` or
//! `TextEncoder`, which mini programs do not have, and no value is serialized per call.
//! The JS classes of the public API (`js/core.js`) wrap these.
//!
//! Output layout after `push`/`finish` (all lengths in UTF-16 code units):
//! `out` = text, reasoning, finish reason, usage, then each error's type, message and code,
//! then each event's type, data and id; `meta` = [text, reasoning, finish reason + 1 (0 =
//! none), usage + 1, error count, event count, then 3 lengths per error, then 3 per event].

use wasm_bindgen::prelude::*;

use crate::utf8::push_utf16;
use crate::{Format, Options, PaceOptions, StreamDecoder, Update};

/// Set in a `push` result when anything but text was decoded: read `meta`.
const MORE: u32 = 1 << 31;
/// Set in a `push` result when the stream is done.
const DONE: u32 = 1 << 30;
const LEN_MASK: u32 = DONE - 1;

#[wasm_bindgen(start)]
fn start() {
    // A panic would be a bug; make its message reach the console before the trap.
    console_error_panic_hook::set_once();
}

/// The module's linear memory, for the JS side's views.
#[wasm_bindgen]
pub fn wasm_memory() -> JsValue {
    wasm_bindgen::memory()
}

#[wasm_bindgen]
pub struct RawDecoder {
    decoder: StreamDecoder,
    input: Vec<u8>,
    out: Vec<u16>,
    meta: Vec<u32>,
    update: Update,
    scratch: String,
}

#[wasm_bindgen]
impl RawDecoder {
    /// `format` indexes `Format::ALL`; `cps <= 0` turns pacing off. Returns undefined for an
    /// unknown format (the JS side names the problem).
    pub fn create(
        format: u32,
        cumulative: bool,
        cps: f64,
        max_lag_ms: f64,
        drain_ms: f64,
        max_buffer_bytes: u32,
    ) -> Option<RawDecoder> {
        let &(_, format) = Format::ALL.get(format as usize)?;
        let pace = (cps > 0.0).then_some(PaceOptions { cps, max_lag_ms, drain_ms });
        let options = Options { format, cumulative, pace, max_buffer_bytes: max_buffer_bytes as usize };
        Some(RawDecoder {
            decoder: StreamDecoder::new(options),
            input: Vec::new(),
            out: Vec::new(),
            meta: Vec::new(),
            update: Update::default(),
            scratch: String::new(),
        })
    }

    /// A buffer of `len` bytes for JS to write the next chunk into.
    pub fn input(&mut self, len: usize) -> *mut u8 {
        self.input.resize(len, 0);
        self.input.as_mut_ptr()
    }

    /// Decodes the `len` bytes written at `input()`. Returns the text length, with `MORE`
    /// when `meta` must be read and `DONE` when the stream is done.
    pub fn push(&mut self, len: usize) -> u32 {
        self.update.clear();
        let input = std::mem::take(&mut self.input);
        self.decoder.push_into(&input[..len.min(input.len())], &mut self.update);
        self.input = input;
        self.write_update()
    }

    /// End of input; same result as `push`.
    pub fn finish(&mut self) -> u32 {
        self.update.clear();
        self.decoder.finish_into(&mut self.update);
        self.write_update()
    }

    pub fn reset(&mut self) {
        self.decoder.reset();
        self.update.clear();
    }

    /// Paced text at `now_ms`, written to `out`; returns its length.
    pub fn tick(&mut self, now_ms: f64) -> u32 {
        self.scratch.clear();
        self.decoder.tick_into(now_ms, &mut self.scratch);
        self.write_scratch()
    }

    /// Everything not yet shown, written to `out`; returns its length.
    pub fn skip(&mut self) -> u32 {
        self.scratch.clear();
        self.decoder.skip_into(&mut self.scratch);
        self.write_scratch()
    }

    pub fn pending(&self) -> u32 {
        self.decoder.pending() as u32
    }

    pub fn out_ptr(&self) -> *const u16 {
        self.out.as_ptr()
    }

    pub fn meta_ptr(&self) -> *const u32 {
        self.meta.as_ptr()
    }

    fn write_scratch(&mut self) -> u32 {
        self.out.clear();
        push_utf16(&mut self.out, &self.scratch);
        self.out.len() as u32
    }

    fn write_update(&mut self) -> u32 {
        let u = &self.update;
        self.out.clear();
        push_utf16(&mut self.out, &u.text);
        let text_len = self.out.len() as u32;
        let done = if u.done { DONE } else { 0 };
        let simple = u.reasoning.is_empty()
            && u.finish_reason.is_none()
            && u.usage.is_none()
            && u.errors.is_empty()
            && u.events.is_empty();
        if simple && text_len <= LEN_MASK {
            return text_len | done;
        }
        let meta = &mut self.meta;
        let out = &mut self.out;
        meta.clear();
        let mut put = |s: &str| {
            let before = out.len();
            push_utf16(out, s);
            (out.len() - before) as u32
        };
        let reasoning = put(&u.reasoning);
        let finish = u.finish_reason.as_deref().map_or(0, |s| put(s) + 1);
        let usage = u.usage.as_deref().map_or(0, |s| put(s) + 1);
        meta.extend([text_len, reasoning, finish, usage, u.errors.len() as u32, u.events.len() as u32]);
        for e in &u.errors {
            let lens = [put(&e.kind), put(&e.message), e.code.as_deref().map_or(0, |s| put(s) + 1)];
            meta.extend(lens);
        }
        for e in &u.events {
            let lens = [put(&e.event), put(&e.data), put(&e.id)];
            meta.extend(lens);
        }
        MORE | done
    }
}
