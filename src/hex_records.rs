//! The `hex-records` framing: a body of `<hex byte length>\r\n<payload>\r\n` records that
//! ends with `0\r\n\r\n`: the shape of HTTP/1.1 chunked coding written into the body, as
//! a PHP backend writes it with `echo dechex(strlen($msg)) . "\r\n" . $msg . "\r\n"`
//! (so that a client which only sees the decoded body can still find the messages).
//!
//! Records are found the same however the input is cut. A malformed header or a missing
//! CRLF after a payload is reported as `bad_event`, and parsing resynchronizes at the next
//! line; a payload longer than `max_record_bytes` is reported as `buffer_limit` and skipped
//! without being buffered. A bare LF is accepted wherever CRLF is expected.

use crate::update::{excerpt, ErrorKind, StreamError};

/// A size line longer than this is not a record header.
const MAX_HEADER: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the hex length line.
    Header,
    /// Reading `remaining` payload bytes.
    Payload { remaining: usize, skip: bool },
    /// Expecting the CRLF after a payload (`seen_cr`: its CR came).
    AfterPayload { seen_cr: bool },
    /// A malformed record: skipping to the next LF.
    Resync,
    /// After the `0` record: everything else is ignored.
    Ended,
}

/// What the framing reports.
#[derive(Debug, PartialEq, Eq)]
pub enum Record<'a> {
    Payload(&'a [u8]),
    /// The `0` record: the end of the body.
    End,
    Error(StreamError),
}

#[derive(Debug, Clone)]
pub struct HexRecords {
    max_record_bytes: usize,
    state: State,
    header: Vec<u8>,
    payload: Vec<u8>,
}

impl HexRecords {
    pub fn new(max_record_bytes: usize) -> HexRecords {
        HexRecords {
            max_record_bytes: max_record_bytes.max(1),
            state: State::Header,
            header: Vec::new(),
            payload: Vec::new(),
        }
    }

    pub fn reset(&mut self) {
        *self = HexRecords::new(self.max_record_bytes);
    }

    pub fn feed(&mut self, mut input: &[u8], on: &mut impl FnMut(Record<'_>)) {
        while !input.is_empty() {
            match self.state {
                State::Header => {
                    let lf = input.iter().position(|&b| b == b'\n');
                    let line = &input[..lf.unwrap_or(input.len())];
                    if self.header.len() + line.len() > MAX_HEADER {
                        // Reported alike whether the line came whole or cut.
                        self.header.extend_from_slice(&line[..line.len().min(MAX_HEADER + 1)]);
                        let message =
                            format!("a record header is too long: \"{}\"", excerpt(&self.header[..MAX_HEADER + 1]));
                        self.bad(message, on);
                        continue;
                    }
                    self.header.extend_from_slice(line);
                    let Some(lf) = lf else { return };
                    input = &input[lf + 1..];
                    self.start_record(on);
                }
                State::Payload { remaining, skip } => {
                    let n = remaining.min(input.len());
                    let (part, rest) = input.split_at(n);
                    input = rest;
                    if !skip {
                        if self.payload.is_empty() && n == remaining {
                            on(Record::Payload(part)); // the whole payload lies in this piece
                        } else {
                            self.payload.extend_from_slice(part);
                            if n == remaining {
                                on(Record::Payload(&self.payload));
                                self.payload.clear();
                            }
                        }
                    }
                    self.state = if n == remaining {
                        State::AfterPayload { seen_cr: false }
                    } else {
                        State::Payload { remaining: remaining - n, skip }
                    };
                }
                State::AfterPayload { seen_cr } => match input[0] {
                    b'\r' if !seen_cr => {
                        self.state = State::AfterPayload { seen_cr: true };
                        input = &input[1..];
                    }
                    b'\n' => {
                        self.state = State::Header;
                        input = &input[1..];
                    }
                    other => {
                        let message = format!("a record payload is not followed by CRLF (found byte 0x{other:02X})");
                        self.bad(message, on);
                    }
                },
                State::Resync => match input.iter().position(|&b| b == b'\n') {
                    Some(lf) => {
                        self.state = State::Header;
                        input = &input[lf + 1..];
                    }
                    None => return,
                },
                State::Ended => return,
            }
        }
    }

    /// End of input. A body cut before its `0` record is not an error (the caller sees
    /// no `End`); a cut inside a record is.
    pub fn finish(&mut self, on: &mut impl FnMut(Record<'_>)) {
        let cut = match self.state {
            State::Header => !self.header.iter().all(|b| b.is_ascii_whitespace()),
            State::Payload { .. } => true,
            _ => false,
        };
        if cut {
            let start = if self.header.is_empty() { self.payload.clone() } else { self.header.clone() };
            on(Record::Error(StreamError::decoder(
                ErrorKind::BadEvent,
                format!("the body ended inside a record: \"{}\"", excerpt(&start)),
            )));
        }
        self.reset();
    }

    fn start_record(&mut self, on: &mut impl FnMut(Record<'_>)) {
        let header = std::mem::take(&mut self.header);
        let text = header.strip_suffix(b"\r").unwrap_or(&header);
        // A chunk extension (";name=value") may follow the size, as in HTTP chunked coding.
        let size = text.split(|&b| b == b';').next().unwrap_or(&[]);
        let size = trim_ascii(size);
        let parsed = if size.is_empty() || size.len() > 15 || !size.iter().all(u8::is_ascii_hexdigit) {
            None
        } else {
            usize::from_str_radix(std::str::from_utf8(size).expect("hex digits are ASCII"), 16).ok()
        };
        match parsed {
            Some(0) => {
                self.state = State::Ended;
                on(Record::End);
            }
            Some(len) => {
                let skip = len > self.max_record_bytes;
                if skip {
                    on(Record::Error(StreamError::decoder(
                        ErrorKind::BufferLimit,
                        format!(
                            "a record of {len} bytes is longer than maxBufferBytes ({}) and was skipped",
                            self.max_record_bytes
                        ),
                    )));
                }
                self.state = State::Payload { remaining: len, skip };
            }
            None if size.is_empty() && text.iter().all(u8::is_ascii_whitespace) => {
                // A blank line between records: tolerated.
            }
            None => {
                on(Record::Error(StreamError::decoder(
                    ErrorKind::BadEvent,
                    format!("a record header is not a hex length: \"{}\"", excerpt(text)),
                )));
            }
        }
        self.header = header;
        self.header.clear();
    }

    /// Reports a malformed record and skips to the next line.
    fn bad(&mut self, message: String, on: &mut impl FnMut(Record<'_>)) {
        on(Record::Error(StreamError::decoder(ErrorKind::BadEvent, message)));
        self.header.clear();
        self.payload.clear();
        self.state = State::Resync;
    }
}

fn trim_ascii(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if first.is_ascii_whitespace() {
            s = rest
        } else {
            break;
        }
    }
    while let [rest @ .., last] = s {
        if last.is_ascii_whitespace() {
            s = rest
        } else {
            break;
        }
    }
    s
}
