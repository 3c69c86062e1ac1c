//! The one buffer that gathers a unit (a line, a JSON value) cut by piece boundaries, with
//! a bound. [`crate::lines`] and [`crate::json_values`] share it.
//!
//! # Guarantees
//! - Nothing longer than `max` bytes is ever buffered: a unit that grows past it is
//!   reported once as a `buffer_limit` error and the rest of it is dropped, up to its end.
//! - The error and what is handed out are the same whether the unit came whole or cut into
//!   pieces (the error's quote never reaches past the first `max + 1` bytes).
//!
//! Fast path: a unit that lies whole inside one piece is handed out where it lies
//! ([`Bounded::whole`]); only a cut unit is copied, each fragment appended once, so a unit
//! spanning many pieces costs O(length), not O(length²).

use crate::update::{excerpt, ErrorKind, StreamError};

#[derive(Debug, Clone)]
pub(crate) struct Bounded {
    /// What a unit is called in the error ("line", "JSON value").
    what: &'static str,
    max: usize,
    /// The start of a unit cut by the end of the previous piece.
    bytes: Vec<u8>,
    /// The current unit went over the bound: drop it up to its end.
    skipping: bool,
}

impl Bounded {
    pub(crate) fn new(what: &'static str, max: usize) -> Bounded {
        Bounded { what, max: max.max(1), bytes: Vec::new(), skipping: false }
    }

    pub(crate) fn max(&self) -> usize {
        self.max
    }

    /// No cut unit is pending: the next unit starts fresh in the current piece.
    pub(crate) fn is_idle(&self) -> bool {
        self.bytes.is_empty() && !self.skipping
    }

    /// Bytes held as the start of a unit that did not come from the input itself (a
    /// possible BOM that was not one).
    pub(crate) fn prepend(&mut self, held: &[u8]) {
        self.bytes.extend_from_slice(held);
    }

    /// A unit that lies whole in one piece: itself, or the bound's error.
    pub(crate) fn whole<'a>(&self, unit: &'a [u8]) -> Result<&'a [u8], StreamError> {
        if unit.len() > self.max {
            Err(self.too_long(unit))
        } else {
            Ok(unit)
        }
    }

    /// Keeps `part`, the start (or more) of a unit that continues in the next piece.
    pub(crate) fn keep(&mut self, part: &[u8], on: &mut impl FnMut(Result<&[u8], StreamError>)) {
        if self.skipping {
            return;
        }
        if self.bytes.len() + part.len() > self.max {
            self.bytes.extend_from_slice(&part[..part.len().min(64)]);
            on(Err(self.too_long(&self.bytes)));
            self.bytes.clear();
            self.skipping = true;
        } else {
            self.bytes.extend_from_slice(part);
        }
    }

    /// The unit ends with `last`: hands it out (from where it lies when it was not cut),
    /// unless it went over the bound, and gets ready for the next one.
    pub(crate) fn end(&mut self, last: &[u8], on: &mut impl FnMut(Result<&[u8], StreamError>)) {
        if self.is_idle() {
            on(self.whole(last));
            return;
        }
        self.keep(last, on);
        if !self.skipping {
            let unit = std::mem::take(&mut self.bytes);
            on(Ok(&unit));
            self.bytes = unit;
        }
        self.clear();
    }

    /// End of input: the unit held so far, if any and not over the bound.
    pub(crate) fn take_unfinished(&mut self) -> Option<Vec<u8>> {
        let unit = (!self.skipping && !self.bytes.is_empty()).then(|| std::mem::take(&mut self.bytes));
        self.clear();
        unit
    }

    /// The start of the unit held, for an error message.
    pub(crate) fn held(&self) -> &[u8] {
        &self.bytes
    }

    pub(crate) fn is_skipping(&self) -> bool {
        self.skipping
    }

    pub(crate) fn clear(&mut self) {
        self.bytes.clear();
        self.skipping = false;
    }

    /// The `buffer_limit` error, quoting the unit's start (never past the first `max + 1`
    /// bytes, all that a cut unit is sure to have kept).
    fn too_long(&self, start: &[u8]) -> StreamError {
        StreamError::decoder(
            ErrorKind::BufferLimit,
            format!(
                "a {} is longer than maxBufferBytes ({} bytes) and was skipped: \"{}\"",
                self.what,
                self.max,
                excerpt(&start[..start.len().min(self.max + 1).min(64)])
            ),
        )
    }
}
