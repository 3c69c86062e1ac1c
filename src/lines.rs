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
//! cut by a piece boundary is gathered (in a [`Bounded`] buffer), each fragment appended
//! once, so a line spanning many pieces costs O(length), not O(length²).

use crate::bounded::Bounded;
use crate::scan::find2;
use crate::update::StreamError;
use crate::utf8::{BomSniffer, BomStep};

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
    /// The start of a line cut by the end of the previous piece.
    line: Bounded,
    /// The previous piece ended in CR: an LF starting this one is the same break.
    after_cr: bool,
    bom: BomSniffer,
}

impl LineSplitter {
    pub fn new(breaks: Breaks, max_line_bytes: usize) -> LineSplitter {
        LineSplitter { breaks, line: Bounded::new("line", max_line_bytes), after_cr: false, bom: BomSniffer::default() }
    }

    pub fn reset(&mut self) {
        *self = LineSplitter::new(self.breaks, self.line.max());
    }

    /// Splits one piece, calling `on` with each complete line (without its line break) or
    /// with a `buffer_limit` error.
    pub fn feed(&mut self, mut input: &[u8], on: &mut impl FnMut(Result<&[u8], StreamError>)) {
        if !self.bom.is_decided() {
            input = match self.bom.step(input) {
                BomStep::Wait => return,
                BomStep::Bom(rest) => rest,
                BomStep::NoBom { held, rest } => {
                    // Not a BOM after all: the bytes held as a possible one are line content.
                    self.line.prepend(held);
                    rest
                }
            };
        }
        if self.after_cr && !input.is_empty() {
            self.after_cr = false;
            if input[0] == b'\n' {
                input = &input[1..];
            }
        }
        let breaks = self.breaks;
        let mut on = |line: Result<&[u8], StreamError>| on(line.map(|l| trim(breaks, l)));
        while !input.is_empty() {
            let found = match breaks {
                // An empty line (the end of each SSE event) needs no search.
                _ if input[0] == b'\n' => Some(0),
                Breaks::CrLfOrEither => find2(input, b'\n', b'\r'),
                Breaks::Lf => find2(input, b'\n', b'\n'),
            };
            let Some(end) = found else {
                self.line.keep(input, &mut on);
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
            // The bound counts the bytes before the break, for a whole line as for a cut one.
            self.line.end(&input[..end], &mut on);
            input = &input[next..];
        }
    }

    /// End of input: hands out the last line if it had no line break (callers decide
    /// whether such a line counts), and resets.
    pub fn finish(&mut self, on: &mut impl FnMut(Result<&[u8], StreamError>)) {
        if !self.bom.is_decided() {
            // A BOM's first bytes and nothing else: they are the last line.
            self.line.prepend(self.bom.end());
        }
        if let Some(line) = self.line.take_unfinished() {
            on(Ok(trim(self.breaks, &line)));
        }
        self.reset();
    }
}

fn trim(breaks: Breaks, line: &[u8]) -> &[u8] {
    match breaks {
        Breaks::Lf => line.strip_suffix(b"\r").unwrap_or(line),
        Breaks::CrLfOrEither => line,
    }
}
