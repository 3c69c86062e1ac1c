//! Splitting a byte stream into top-level JSON values: `{…}{…}`, or the elements of one
//! top-level array `[{…},{…}]` (Gemini's `streamGenerateContent` without `alt=sse`, and a
//! plain JSON body, such as an error, where a stream was expected).
//!
//! It only finds where each value ends (tracking nesting, strings and escapes); `serde_json`
//! parses the values. Whitespace and the commas between array elements are skipped.
//! Each value is bounded by `max_value_bytes`: a longer one is reported as a `buffer_limit`
//! error and skipped. The values found are the same however the input is cut.

use crate::update::{excerpt, too_long, StreamError};

#[derive(Debug, Clone)]
pub struct JsonValues {
    max_value_bytes: usize,
    value: Vec<u8>,
    /// Nesting depth inside the current value.
    depth: u32,
    in_string: bool,
    escaped: bool,
    /// The stream opened with `[`: values are its elements.
    in_array: bool,
    /// Anything but whitespace was seen.
    started: bool,
    /// The current value went over the bound: skip to its end.
    skipping: bool,
    /// Inside a run of unexpected bytes (reported once).
    in_garbage: bool,
}

impl JsonValues {
    pub fn new(max_value_bytes: usize) -> JsonValues {
        JsonValues {
            max_value_bytes: max_value_bytes.max(1),
            value: Vec::new(),
            depth: 0,
            in_string: false,
            escaped: false,
            in_array: false,
            started: false,
            skipping: false,
            in_garbage: false,
        }
    }

    pub fn reset(&mut self) {
        *self = JsonValues::new(self.max_value_bytes);
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
                                StreamError::BAD_EVENT,
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
                            self.end_value(&input[start..=i], on);
                        }
                    }
                    _ => {}
                }
            }
            i += 1;
        }
        if self.depth > 0 {
            self.keep(&input[start..], on);
        }
    }

    /// End of input: an unfinished value is reported as `bad_event`.
    pub fn finish(&mut self, on: &mut impl FnMut(Result<&[u8], StreamError>)) {
        if self.depth > 0 && !self.skipping {
            on(Err(StreamError::decoder(
                StreamError::BAD_EVENT,
                format!("the stream ended inside a JSON value: \"{}\"", excerpt(&self.value)),
            )));
        }
        self.reset();
    }

    fn keep(&mut self, part: &[u8], on: &mut impl FnMut(Result<&[u8], StreamError>)) {
        if self.skipping {
            return;
        }
        if self.value.len() + part.len() > self.max_value_bytes {
            self.value.extend_from_slice(&part[..part.len().min(64)]);
            on(Err(too_long("JSON value", &self.value, self.max_value_bytes)));
            self.value.clear();
            self.skipping = true;
        } else {
            self.value.extend_from_slice(part);
        }
    }

    fn end_value(&mut self, last: &[u8], on: &mut impl FnMut(Result<&[u8], StreamError>)) {
        if self.value.is_empty() && !self.skipping {
            if last.len() > self.max_value_bytes {
                on(Err(too_long("JSON value", last, self.max_value_bytes)));
            } else {
                on(Ok(last));
            }
        } else {
            self.keep(last, on);
            if !self.skipping {
                let value = std::mem::take(&mut self.value);
                on(Ok(&value));
                self.value = value;
            }
        }
        self.value.clear();
        self.skipping = false;
    }
}
