//! Splitting a byte stream into lines, bounded and split-proof. SSE and NDJSON share it.
//!
//! # Guarantees
//! - The lines reported are the same however the input is cut, including a CR at the end of
//!   one piece and its LF at the start of the next.
//! - A leading UTF-8 BOM (EF BB BF, possibly cut) is removed once.
//! - No line longer than `max_line_bytes` is ever buffered: it is reported once as a
//!   `buffer_limit` error, skipped to its end, and splitting goes on with the next line.
//!
//! Fast path: a line lying whole inside one piece is handed out where it lies. Only a line
//! cut by a piece boundary is gathered, each fragment appended once, so a line spanning many
//! pieces costs O(length), not O(length²).

use crate::update::{too_long, StreamError};

/// Which bytes end a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breaks {
    /// CRLF, LF or a lone CR (the event-stream rule).
    CrLfOrEither,
    /// LF, with one CR before it dropped (NDJSON, JSON Lines).
    Lf,
}

#[derive(Debug, Clone)]
pub struct LineSplitter {
    breaks: Breaks,
    max_line_bytes: usize,
    /// The start of a line cut by the end of the previous piece.
    line: Vec<u8>,
    /// The current line went over the bound: skip to its end.
    skipping: bool,
    /// The previous piece ended in CR: an LF starting this one is the same break.
    after_cr: bool,
    /// How many bytes of a leading BOM were seen (3: no longer looking).
    bom_seen: u8,
}

impl LineSplitter {
    pub fn new(breaks: Breaks, max_line_bytes: usize) -> LineSplitter {
        LineSplitter {
            breaks,
            max_line_bytes: max_line_bytes.max(1),
            line: Vec::new(),
            skipping: false,
            after_cr: false,
            bom_seen: 0,
        }
    }

    pub fn reset(&mut self) {
        *self = LineSplitter::new(self.breaks, self.max_line_bytes);
    }

    /// Splits one piece, calling `on` with each complete line (without its line break) or
    /// with a `buffer_limit` error.
    pub fn feed(&mut self, mut input: &[u8], on: &mut impl FnMut(Result<&[u8], StreamError>)) {
        if self.bom_seen < 3 {
            input = self.skip_bom(input);
        }
        if self.after_cr && !input.is_empty() {
            self.after_cr = false;
            if input[0] == b'\n' {
                input = &input[1..];
            }
        }
        while !input.is_empty() {
            let found = match self.breaks {
                Breaks::CrLfOrEither => input.iter().position(|&b| b == b'\n' || b == b'\r'),
                Breaks::Lf => input.iter().position(|&b| b == b'\n'),
            };
            let Some(end) = found else {
                self.keep(input, on);
                return;
            };
            let next = if input[end] == b'\r' {
                match input.get(end + 1) {
                    Some(b'\n') => end + 2,
                    Some(_) => end + 1,
                    None => {
                        self.after_cr = true;
                        end + 1
                    }
                }
            } else {
                end + 1
            };
            if self.line.is_empty() && !self.skipping {
                // The bound counts the bytes before the break, as `keep` does for a cut line.
                if end > self.max_line_bytes {
                    on(Err(too_long("line", &input[..end], self.max_line_bytes)));
                } else {
                    on(Ok(self.trim(&input[..end])));
                }
            } else {
                self.keep(&input[..end], on);
                if !std::mem::replace(&mut self.skipping, false) {
                    let line = std::mem::take(&mut self.line);
                    on(Ok(self.trim(&line)));
                    self.line = line;
                }
                self.line.clear();
            }
            input = &input[next..];
        }
    }

    /// End of input: hands out the last line if it had no line break (callers decide
    /// whether such a line counts), and resets.
    pub fn finish(&mut self, on: &mut impl FnMut(Result<&[u8], StreamError>)) {
        if !self.skipping && !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            on(Ok(self.trim(&line)));
        }
        self.reset();
    }

    fn trim<'a>(&self, line: &'a [u8]) -> &'a [u8] {
        match self.breaks {
            Breaks::Lf => line.strip_suffix(b"\r").unwrap_or(line),
            Breaks::CrLfOrEither => line,
        }
    }

    fn skip_bom<'a>(&mut self, input: &'a [u8]) -> &'a [u8] {
        const BOM: &[u8] = b"\xEF\xBB\xBF";
        let mut i = 0;
        while self.bom_seen < 3 && i < input.len() {
            if input[i] != BOM[self.bom_seen as usize] {
                // Not a BOM after all: the bytes held as a possible one are line content.
                self.line.extend_from_slice(&BOM[..self.bom_seen as usize]);
                self.bom_seen = 3;
                return &input[i..];
            }
            self.bom_seen += 1;
            i += 1;
        }
        &input[i..]
    }

    /// Keeps the start of a line that a piece boundary cut, within the bound.
    fn keep(&mut self, part: &[u8], on: &mut impl FnMut(Result<&[u8], StreamError>)) {
        if self.skipping {
            return;
        }
        if self.line.len() + part.len() > self.max_line_bytes {
            self.line.extend_from_slice(&part[..part.len().min(64)]);
            on(Err(too_long("line", &self.line, self.max_line_bytes)));
            self.line.clear();
            self.skipping = true;
        } else {
            self.line.extend_from_slice(part);
        }
    }
}
