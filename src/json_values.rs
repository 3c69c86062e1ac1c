//! Splitting a byte stream into top-level JSON values: `{…}{…}`, or the elements of one
//! top-level array `[{…},{…}]` (Gemini's `streamGenerateContent` without `alt=sse`, and a
//! plain JSON body, such as an error, where a stream was expected).
//!
//! It only finds where each value ends (tracking nesting, strings and escapes); the provider
//! formats then read each value with [`crate::json::Reader`], which checks it against the
//! grammar. Whitespace and the commas between array elements are skipped.
//! Each value is bounded by `max_value_bytes` (in a [`Bounded`] buffer): a longer one is
//! reported as a `buffer_limit` error and skipped. The values found are the same however
//! the input is cut.

use crate::bounded::Bounded;
use crate::update::{excerpt, ErrorKind, StreamError};

#[derive(Debug, Clone)]
pub struct JsonValues {
    /// The start of a value cut by the end of the previous piece.
    value: Bounded,
    /// Nesting depth inside the current value.
    depth: u32,
    in_string: bool,
    escaped: bool,
    /// The stream opened with `[`: values are its elements.
    in_array: bool,
    /// Anything but whitespace was seen.
    started: bool,
    /// Inside a run of unexpected bytes (reported once).
    in_garbage: bool,
}

impl JsonValues {
    pub fn new(max_value_bytes: usize) -> JsonValues {
        JsonValues {
            value: Bounded::new("JSON value", max_value_bytes),
            depth: 0,
            in_string: false,
            escaped: false,
            in_array: false,
            started: false,
            in_garbage: false,
        }
    }

    pub fn reset(&mut self) {
        *self = JsonValues::new(self.value.max());
    }

    /// Splits one piece, calling `on` with each complete value's bytes, or an error.
    pub fn feed(&mut self, input: &[u8], on: &mut impl FnMut(Result<&[u8], StreamError>)) {
        let mut start = 0; // where the part of the current value inside `input` begins
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            if self.depth == 0 {
                match b {
                    b'[' if !self.started => self.in_array = true,
                    b'{' | b'[' => {
                        self.depth = 1;
                        start = i;
                    }
                    // Whitespace decides nothing: whether `[` opens the stream's array must
                    // not depend on a piece boundary before it.
                    b' ' | b'\t' | b'\r' | b'\n' => {
                        self.in_garbage &= b != b'\n';
                        i += 1;
                        continue;
                    }
                    b']' | b',' => {}
                    // Anything else is not a value this splitter can end: report the run
                    // once and skip it up to the next value or line.
                    other => {
                        if !self.in_garbage {
                            self.in_garbage = true;
                            on(Err(StreamError::decoder(
                                ErrorKind::BadEvent,
                                format!("unexpected byte 0x{other:02X} where a JSON object or array was expected"),
                            )));
                        }
                        self.started = true;
                        i += 1;
                        continue;
                    }
                }
                if b != b' ' && b != b'\t' && b != b'\r' {
                    self.in_garbage = false;
                }
                self.started = true;
                i += 1;
                continue;
            }
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                }
            } else {
                match b {
                    b'"' => self.in_string = true,
                    b'{' | b'[' => self.depth += 1,
                    b'}' | b']' => {
                        self.depth -= 1;
                        if self.depth == 0 {
                            self.value.end(&input[start..=i], on);
                        }
                    }
                    _ => {}
                }
            }
            i += 1;
        }
        if self.depth > 0 {
            self.value.keep(&input[start..], on);
        }
    }

    /// End of input: an unfinished value is reported as `bad_event`.
    pub fn finish(&mut self, on: &mut impl FnMut(Result<&[u8], StreamError>)) {
        if self.depth > 0 && !self.value.is_skipping() {
            on(Err(StreamError::decoder(
                ErrorKind::BadEvent,
                format!("the stream ended inside a JSON value: \"{}\"", excerpt(self.value.held())),
            )));
        }
        self.reset();
    }
}
