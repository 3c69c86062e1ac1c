//! Streaming UTF-8 decoding, exactly as the WHATWG Encoding Standard's
//! [UTF-8 decode](https://encoding.spec.whatwg.org/#utf-8-decode) specifies it.
//!
//! # Guarantees
//! For any byte sequence cut into any pieces, the concatenated output of
//! [`Utf8Decoder::decode`] over all pieces (the last one with `last = true`) equals what
//! `new TextDecoder()` gives for the whole sequence, and so equals
//! `decode(pieces[i], {stream: true})` on each piece followed by a final `decode()`:
//! - a leading byte order mark (EF BB BF) is removed once, only at the very start;
//! - every ill-formed subsequence becomes one U+FFFD, by the "maximal subpart" practice of
//!   the Unicode Standard (§3.9, table 3-8) that the Encoding Standard adopts;
//! - a sequence still incomplete when `last` is true becomes one U+FFFD.
//!
//! A character split across pieces is held (at most 3 bytes) until it completes; nothing
//! else is buffered, so memory is constant.
//!
//! # Example
//! ```
//! use chunkwise::utf8::Utf8Decoder;
//! let bytes = "流式".as_bytes(); // E6 B5 81 E5 BC 8F
//! let mut d = Utf8Decoder::new();
//! let mut out = String::new();
//! d.decode(&bytes[..4], &mut out, false); // the second character is cut after its first byte
//! assert_eq!(out, "流");
//! d.decode(&bytes[4..], &mut out, true);
//! assert_eq!(out, "流式");
//! ```

/// Where decoded text goes: a Rust `String`, or UTF-16 code units for a JS string.
pub trait TextSink {
    fn push_str(&mut self, s: &str);
    fn push_char(&mut self, c: char);
    /// Appends the longest valid UTF-8 prefix of `bytes`; returns its length.
    fn push_valid_prefix(&mut self, bytes: &[u8]) -> usize {
        let n = valid_up_to(bytes);
        // SAFETY: `valid_up_to` is the length of the longest valid prefix.
        self.push_str(unsafe { std::str::from_utf8_unchecked(&bytes[..n]) });
        n
    }
}

impl TextSink for String {
    #[inline]
    fn push_str(&mut self, s: &str) {
        String::push_str(self, s)
    }
    #[inline]
    fn push_char(&mut self, c: char) {
        self.push(c)
    }
}

impl TextSink for Vec<u16> {
    fn push_str(&mut self, s: &str) {
        push_utf16(self, s)
    }
    fn push_char(&mut self, c: char) {
        let mut buf = [0u16; 2];
        self.extend_from_slice(c.encode_utf16(&mut buf));
    }
    /// Validates and transcodes in one pass (the wasm build uses `Utf16Buffer` instead).
    fn push_valid_prefix(&mut self, bytes: &[u8]) -> usize {
        let start = self.len();
        self.resize(start + bytes.len(), 0);
        let (read, written) = transcode_valid_prefix(bytes, &mut self[start..]);
        self.truncate(start + written);
        read
    }
}

/// UTF-16 output that is reused call after call: its storage only grows and is never
/// cleared, so appending does not first zero the room it writes into (as `Vec::resize`
/// would, on every call).
#[derive(Debug, Clone, Default)]
pub struct Utf16Buffer {
    units: Vec<u16>,
    len: usize,
}

impl Utf16Buffer {
    pub const fn new() -> Utf16Buffer {
        Utf16Buffer { units: Vec::new(), len: 0 }
    }

    pub fn clear(&mut self) {
        self.len = 0;
    }

    pub fn as_slice(&self) -> &[u16] {
        &self.units[..self.len]
    }

    pub fn as_ptr(&self) -> *const u16 {
        self.units.as_ptr()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Room for `extra` more units after the current end.
    fn room(&mut self, extra: usize) -> &mut [u16] {
        let need = self.len + extra;
        if self.units.len() < need {
            self.units.resize(need.max(2 * self.units.len()), 0);
        }
        &mut self.units[self.len..need]
    }
}

impl TextSink for Utf16Buffer {
    fn push_str(&mut self, s: &str) {
        let written = transcode_valid_prefix(s.as_bytes(), self.room(s.len())).1;
        self.len += written;
    }
    fn push_char(&mut self, c: char) {
        let mut buf = [0u16; 2];
        let units = c.encode_utf16(&mut buf);
        self.room(units.len()).copy_from_slice(units);
        self.len += units.len();
    }
    #[inline(always)]
    fn push_valid_prefix(&mut self, bytes: &[u8]) -> usize {
        let (read, written) = transcode_valid_prefix(bytes, self.room(bytes.len()));
        self.len += written;
        read
    }
}

/// Transcodes UTF-8 to UTF-16 until the end of `src` or the first ill-formed or incomplete
/// sequence; returns (bytes read, code units written). `dst` must be at least as long as `src`.
///
/// The checks are the Unicode Standard's table 3-7 (well-formed byte sequences): the second
/// byte's range depends on the first (E0: A0..BF, ED: 80..9F, F0: 90..BF, F4: 80..8F).
fn transcode_valid_prefix(src: &[u8], dst: &mut [u16]) -> (usize, usize) {
    let (mut i, mut o) = (0, 0);
    let cont = |b: u8| b & 0xC0 == 0x80;
    let any_tail = |lead: u8| lead != 0xE0 && lead != 0xED;
    // The code point of a three-byte sequence whose bytes are `w`'s low three, little-endian.
    let three_byte = |w: u32| ((w & 0x0F) << 12 | (w & 0x3F00) >> 2 | (w >> 16) & 0x3F) as u16;
    while i < src.len() {
        let b = src[i];
        if b < 0x80 {
            // ASCII, eight bytes at a time. Written out so it stays fast when the crate is
            // built for size (the wasm profile), where loops are not unrolled. Tried only at
            // an ASCII byte: in CJK text each try would fail and cost a character's worth.
            if let (Some(word), Some(out)) = (src.get(i..i + 8), dst.get_mut(o..o + 8)) {
                let word: &[u8; 8] = word.try_into().expect("8 bytes");
                if u64::from_le_bytes(*word) & 0x8080_8080_8080_8080 == 0 {
                    let out: &mut [u16; 8] = out.try_into().expect("8 units");
                    out[0] = u16::from(word[0]);
                    out[1] = u16::from(word[1]);
                    out[2] = u16::from(word[2]);
                    out[3] = u16::from(word[3]);
                    out[4] = u16::from(word[4]);
                    out[5] = u16::from(word[5]);
                    out[6] = u16::from(word[6]);
                    out[7] = u16::from(word[7]);
                    i += 8;
                    o += 8;
                    continue;
                }
            }
            dst[o] = u16::from(b);
            i += 1;
            o += 1;
            continue;
        }
        // A run of three-byte characters led by E1..EC or EE..EF (nearly all of CJK): any two
        // continuation bytes complete them (table 3-7), so one mask test on a word checks two
        // characters. Where wasm is interpreted, Chinese text spends most of its time here.
        let run_start = i;
        while let (Some(out), true) = (dst.get_mut(o..o + 2), i + 8 <= src.len()) {
            let w = crate::scan::word(src, i);
            if w & 0xC0C0_F0C0_C0F0 != 0x8080_E080_80E0 || !any_tail(w as u8) || !any_tail((w >> 24) as u8) {
                break;
            }
            out[0] = three_byte(w as u32);
            out[1] = three_byte((w >> 24) as u32);
            i += 6;
            o += 2;
        }
        if i != run_start {
            continue;
        }
        let (Some(&b1), b2, b3) = (src.get(i + 1), src.get(i + 2).copied(), src.get(i + 3).copied()) else { break };
        match b {
            0xC2..=0xDF if cont(b1) => {
                dst[o] = (u16::from(b & 0x1F) << 6) | u16::from(b1 & 0x3F);
                i += 2;
                o += 1;
            }
            0xE0..=0xEF => {
                let second_ok = match b {
                    0xE0 => (0xA0..=0xBF).contains(&b1),
                    0xED => (0x80..=0x9F).contains(&b1),
                    _ => cont(b1),
                };
                let Some(b2) = b2.filter(|&b2| second_ok && cont(b2)) else { break };
                dst[o] = (u16::from(b & 0x0F) << 12) | (u16::from(b1 & 0x3F) << 6) | u16::from(b2 & 0x3F);
                i += 3;
                o += 1;
            }
            0xF0..=0xF4 => {
                let second_ok = match b {
                    0xF0 => (0x90..=0xBF).contains(&b1),
                    0xF4 => (0x80..=0x8F).contains(&b1),
                    _ => cont(b1),
                };
                let (Some(b2), Some(b3)) = (b2, b3) else { break };
                if !(second_ok && cont(b2) && cont(b3)) {
                    break;
                }
                let c = ((u32::from(b & 0x07) << 18)
                    | (u32::from(b1 & 0x3F) << 12)
                    | (u32::from(b2 & 0x3F) << 6)
                    | u32::from(b3 & 0x3F))
                    - 0x1_0000;
                dst[o] = 0xD800 | (c >> 10) as u16;
                dst[o + 1] = 0xDC00 | (c & 0x3FF) as u16;
                i += 4;
                o += 2;
            }
            _ => break,
        }
    }
    (i, o)
}

/// Appends `s` as UTF-16 code units (one pass: a `&str` is valid, so the validating
/// transcoder consumes all of it).
pub fn push_utf16(out: &mut Vec<u16>, s: &str) {
    let read = out.push_valid_prefix(s.as_bytes());
    debug_assert_eq!(read, s.len(), "a str is valid UTF-8");
}

const REPLACEMENT: char = '\u{FFFD}';
/// The UTF-8 byte order mark.
pub const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Finds a leading UTF-8 byte order mark (EF BB BF), however the stream's first bytes are
/// cut: the one BOM matcher of the crate (the UTF-8 decoder, the line splitter and the
/// SSE-or-JSON sniffing of the decoder use it).
#[derive(Debug, Clone, Copy, Default)]
pub struct BomSniffer {
    /// How many bytes of a BOM were seen (held, not yet handed back).
    seen: u8,
    decided: bool,
}

/// What [`BomSniffer::step`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BomStep<'a> {
    /// Every byte so far may still start a BOM; they are held until more input decides.
    Wait,
    /// A BOM was found and removed; `rest` follows it.
    Bom(&'a [u8]),
    /// No BOM: `held`, the first bytes of a BOM held back until now, comes in front of
    /// `rest`. Once decided, every step is this, with nothing held.
    NoBom { held: &'static [u8], rest: &'a [u8] },
}

impl BomSniffer {
    pub fn is_decided(&self) -> bool {
        self.decided
    }

    /// Reads the next piece of the stream's start.
    pub fn step<'a>(&mut self, input: &'a [u8]) -> BomStep<'a> {
        if self.decided {
            return BomStep::NoBom { held: &[], rest: input };
        }
        for (i, &b) in input.iter().enumerate() {
            if b != BOM[self.seen as usize] {
                self.decided = true;
                return BomStep::NoBom { held: &BOM[..self.seen as usize], rest: &input[i..] };
            }
            self.seen += 1;
            if self.seen as usize == BOM.len() {
                self.decided = true;
                return BomStep::Bom(&input[i + 1..]);
            }
        }
        BomStep::Wait
    }

    /// The stream ended before a decision: the bytes held are not a BOM.
    pub fn end(&mut self) -> &'static [u8] {
        self.decided = true;
        &BOM[..self.seen as usize]
    }
}

/// The shortest piece [`Utf8Decoder::edges`] decides on: its first and last four bytes do
/// not overlap.
pub const EDGES_MIN: usize = 8;

/// What [`Utf8Decoder::edges`] decided about a piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edges {
    /// Bytes at the start of the piece that went to a BOM or the held character (0 to 3).
    pub head: usize,
    /// Bytes at the end of the piece now held: the start of a cut character (0 to 3).
    pub tail: usize,
    /// The held character, completed, or U+FFFD when the piece did not continue it.
    pub completed: Option<char>,
}

/// A sink that keeps only the last character written to it.
struct LastChar(Option<char>);

impl TextSink for LastChar {
    fn push_str(&mut self, s: &str) {
        self.0 = s.chars().next_back().or(self.0);
    }
    fn push_char(&mut self, c: char) {
        self.0 = Some(c);
    }
}

/// A streaming WHATWG UTF-8 decoder (see the module documentation).
#[derive(Debug, Clone, Default)]
pub struct Utf8Decoder {
    /// Bytes of a character cut at the end of the previous piece: always a valid but
    /// incomplete prefix of one UTF-8 sequence (1 to 3 bytes).
    partial: [u8; 4],
    partial_len: u8,
    /// BOM sniffing: the first three bytes of the stream, and only those.
    bom: BomSniffer,
}

impl Utf8Decoder {
    pub fn new() -> Utf8Decoder {
        Utf8Decoder::default()
    }

    /// Back to the state of a new decoder.
    pub fn reset(&mut self) {
        *self = Utf8Decoder::new();
    }

    /// Whether bytes of an incomplete character are held.
    pub fn has_partial(&self) -> bool {
        self.partial_len > 0
    }

    /// Whether nothing is held: the BOM is decided (no byte of one is held) and no character
    /// is incomplete. Then a next piece that is complete, valid UTF-8 decodes to exactly what
    /// any UTF-8 decoder gives for it alone, and leaves nothing held either, so a caller with
    /// a strict decoder of its own (one that rejects anything ill-formed or incomplete) may
    /// decode such a piece itself, without calling this one.
    pub fn holds_nothing(&self) -> bool {
        self.bom.is_decided() && self.partial_len == 0
    }

    /// Decodes `input` into `out`. With `last`, the stream ends here: a held incomplete
    /// sequence becomes U+FFFD and the decoder is ready for a new stream.
    pub fn decode<S: TextSink>(&mut self, mut input: &[u8], out: &mut S, last: bool) {
        // (Tested here: a call costs where wasm is interpreted, and the head is rarely there.)
        if !self.bom.is_decided() || self.partial_len > 0 {
            input = self.decode_head(input, out, last);
        }
        self.decode_bulk(input, out, last);
    }

    /// Decodes the ends of a piece (not the last) for a caller that turns complete UTF-8 into
    /// text by other means (a JS engine's builtins) and keeps the piece's bytes to itself,
    /// passing only its length and its first and last four bytes: removes a BOM and completes
    /// the held character from `first`, holds the
    /// incomplete sequence the piece ends with, and says how many bytes at each end that
    /// took. The bytes in between, `head..len - tail`, are for the caller to decode: a
    /// sequence can only start at a lead byte, whatever came before it, so if they are valid
    /// UTF-8 (a strict decoder accepts them), decoding the piece here would have given
    /// `completed` followed by exactly their text, and left this decoder as it now is. If
    /// they are not, the caller restores the decoder as it was before this call (a clone)
    /// and decodes the whole piece with [`decode`](Self::decode).
    ///
    /// Returns `None`, changing nothing, when the piece is shorter than [`EDGES_MIN`]: its
    /// ends would overlap.
    pub fn edges(&mut self, len: usize, first: [u8; 4], last: [u8; 4]) -> Option<Edges> {
        if len < EDGES_MIN {
            return None;
        }
        let mut completed = LastChar(None);
        // The first four bytes decide the BOM and complete (or end) the held character: a
        // BOM is three bytes, a held character needs at most three more, and the first bytes
        // of a BOM held back are two at most, the start of a three-byte character.
        let head = 4 - self.decode_head(&first, &mut completed, false).len();
        debug_assert!(head < 4, "four bytes always decide the head");
        // At least five bytes follow the head, so the last three are the piece's own.
        let tail = self.hold_tail(&last[1..]);
        Some(Edges { head, tail, completed: completed.0 })
    }

    /// Holds the incomplete sequence that `end`, the last three bytes of a piece (none of
    /// them taken by the held character), ends with: from its last lead byte, if what
    /// follows that lead is a valid start of a sequence. Returns how many bytes are held.
    fn hold_tail(&mut self, end: &[u8]) -> usize {
        for (k, &b) in end.iter().rev().enumerate() {
            if b & 0xC0 != 0x80 {
                let held = &end[end.len() - 1 - k..];
                if b >= 0xC0 && std::str::from_utf8(held).is_err_and(|e| e.error_len().is_none()) {
                    for (i, &h) in held.iter().enumerate() {
                        self.partial[i & 3] = h;
                    }
                    self.partial_len = held.len() as u8;
                    return held.len();
                }
                break;
            }
        }
        0
    }

    /// The BOM and the character held from the previous piece; returns the input after them.
    fn decode_head<'a, S: TextSink>(&mut self, mut input: &'a [u8], out: &mut S, last: bool) -> &'a [u8] {
        if !self.bom.is_decided() {
            let (held, rest) = match self.bom.step(input) {
                BomStep::Wait if !last => return &[],
                BomStep::Wait => (self.bom.end(), &[][..]),
                BomStep::Bom(rest) => (&[][..], rest),
                BomStep::NoBom { held, rest } => (held, rest),
            };
            // A BOM's first bytes that were not one are a valid UTF-8 prefix: they are the
            // held part of the first character.
            self.partial[..held.len()].copy_from_slice(held);
            self.partial_len = held.len() as u8;
            input = rest;
        }
        if self.partial_len > 0 {
            input = self.complete_partial(input, out, last);
        }
        input
    }

    /// Finishes the character held from the previous piece; returns the unused input.
    fn complete_partial<'a, S: TextSink>(&mut self, input: &'a [u8], out: &mut S, last: bool) -> &'a [u8] {
        let have = self.partial_len as usize;
        let take = (4 - have).min(input.len());
        let mut buf = [0u8; 4];
        buf[..have].copy_from_slice(&self.partial[..have]);
        buf[have..have + take].copy_from_slice(&input[..take]);
        match std::str::from_utf8(&buf[..have + take]) {
            Ok(s) => {
                // Only one character can start in the held bytes; it completed.
                let c = s.chars().next().expect("non-empty");
                let used = c.len_utf8() - have;
                self.partial_len = 0;
                out.push_char(c);
                &input[used..]
            }
            Err(e) if e.valid_up_to() > 0 => {
                let c = std::str::from_utf8(&buf[..e.valid_up_to()])
                    .expect("valid prefix")
                    .chars()
                    .next()
                    .expect("non-empty");
                let used = c.len_utf8() - have;
                self.partial_len = 0;
                out.push_char(c);
                &input[used..]
            }
            Err(e) => match e.error_len() {
                // The held bytes are a valid prefix, so the offending byte is a new one and
                // is not consumed: it starts the next sequence.
                Some(n) => {
                    self.partial_len = 0;
                    out.push_char(REPLACEMENT);
                    &input[n - have..]
                }
                None => {
                    // Still incomplete: everything fit in the held buffer.
                    self.partial[have..have + take].copy_from_slice(&input[..take]);
                    self.partial_len += take as u8;
                    if last {
                        self.partial_len = 0;
                        out.push_char(REPLACEMENT);
                    }
                    &[]
                }
            },
        }
    }

    fn decode_bulk<S: TextSink>(&mut self, mut input: &[u8], out: &mut S, last: bool) {
        loop {
            input = &input[out.push_valid_prefix(input)..];
            if input.is_empty() {
                break;
            }
            // Not valid from here: an ill-formed sequence, or one the piece cut.
            let Err(e) = std::str::from_utf8(input) else { unreachable!("the valid prefix was consumed") };
            match e.error_len() {
                // `error_len` is the length of the maximal subpart: one U+FFFD for it.
                Some(n) => {
                    out.push_char(REPLACEMENT);
                    input = &input[n..];
                }
                None if last => {
                    out.push_char(REPLACEMENT);
                    break;
                }
                None => {
                    self.partial[..input.len()].copy_from_slice(input);
                    self.partial_len = input.len() as u8;
                    break;
                }
            }
        }
        if last {
            *self = Utf8Decoder::new();
        }
    }
}

/// The length of the longest valid UTF-8 prefix of `bytes`: what `std::str::from_utf8`
/// reports as `valid_up_to` (all of them when valid), in fewer wasm instructions per byte for
/// the common text, which matters where wasm is interpreted (iOS). A three-byte character
/// led by E1..EC or EE..EF (nearly all of CJK) is well-formed with any two continuation
/// bytes after it (the Unicode Standard's table 3-7), so one mask test on a word checks it,
/// two at a time where eight bytes remain; ASCII goes eight bytes per step. Anything else
/// is decided one character at a time by std's check.
pub(crate) fn valid_up_to(bytes: &[u8]) -> usize {
    // The lead bytes whose three-byte sequences take any continuation bytes.
    let any_tail = |lead: u8| lead != 0xE0 && lead != 0xED;
    let n = bytes.len();
    let mut i = 0;
    while i < n {
        if i + 8 <= n {
            let w = crate::scan::word(bytes, i);
            if w & 0x8080_8080_8080_8080 == 0 {
                i += 8;
                continue;
            }
            if w & 0xC0C0_F0C0_C0F0 == 0x8080_E080_80E0 && any_tail(w as u8) && any_tail((w >> 24) as u8) {
                i += 6;
                continue;
            }
        }
        // The next four bytes; the last ones followed by zeros (which no continuation byte
        // matches) when fewer are left: the last word, shifted.
        let w = if i + 4 <= n {
            crate::scan::word4(bytes, i)
        } else if n >= 4 {
            crate::scan::word4(bytes, n - 4) >> (8 * (4 - (n - i)))
        } else {
            bytes[i..].iter().rev().fold(0, |w, &b| w << 8 | u32::from(b))
        };
        if w & 0x8080_8080 == 0 {
            // Four ASCII bytes, or the last ones (the zeros after them are past the end).
            i += 4;
            continue;
        }
        let lead = w as u8;
        if w & 0xC0_C0F0 == 0x80_80E0 && any_tail(lead) {
            i += 3;
            continue;
        }
        if lead < 0x80 {
            i += 1;
            continue;
        }
        // The first character of the window is valid if std finds any valid prefix at all.
        let window = &bytes[i..n.min(i + 4)];
        if std::str::from_utf8(window).map_or_else(|e| e.valid_up_to(), |s| s.len()) == 0 {
            return i;
        }
        i += match lead {
            0x80..=0xDF => 2,
            0xE0..=0xEF => 3,
            _ => 4,
        };
    }
    n
}

/// Decodes a complete byte string (BOM not stripped), borrowing when it is valid UTF-8.
/// Used for SSE field values and JSON payloads, whose bytes are always delimited by ASCII,
/// so decoding them one by one equals decoding the whole stream.
pub fn decode_lossy(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    // Valid text is the rule: the strict check (with its ASCII fast path) is much faster than
    // the lossy iterator, which is only needed when there is something to replace. std's
    // lossy decoding substitutes maximal subparts, as WHATWG does.
    match valid_str(bytes) {
        Some(text) => std::borrow::Cow::Borrowed(text),
        None => String::from_utf8_lossy(bytes),
    }
}

/// `bytes` as a `&str` when all of it is valid UTF-8: `std::str::from_utf8(bytes).ok()`,
/// checked by [`valid_up_to`].
#[inline(always)]
pub(crate) fn valid_str(bytes: &[u8]) -> Option<&str> {
    if valid_up_to(bytes) != bytes.len() {
        return None;
    }
    // SAFETY: all of `bytes` is valid UTF-8 (checked just above).
    Some(unsafe { std::str::from_utf8_unchecked(bytes) })
}

#[cfg(test)]
mod tests {
    use super::{transcode_valid_prefix, valid_up_to};

    /// Agrees with std (its `valid_up_to`, then `encode_utf16` of that prefix) on every
    /// sequence of up to five pieces: three-byte characters at both ends of each lead's
    /// range (E0 and ED take only part of the continuation range), the ill-formed E0 80 80
    /// and ED A0 80, a cut three-byte character, and ASCII, two-byte, four-byte and stray
    /// bytes between them, so that runs of three-byte characters start, end and break at
    /// every position the pair step can meet.
    #[test]
    fn transcode_agrees_with_std() {
        let pieces: [&[u8]; 10] = [
            b"a",
            "\u{4E2D}".as_bytes(),
            "\u{0800}".as_bytes(),
            "\u{D7FF}".as_bytes(),
            "\u{E000}".as_bytes(),
            "\u{1000}".as_bytes(),
            &[0xE0, 0x80, 0x80],
            &[0xED, 0xA0, 0x80],
            &[0xE4, 0xB8],
            "\u{E9}\u{1F600}".as_bytes(),
        ];
        let mut bytes = Vec::new();
        let mut dst = [0u16; 32];
        for mut k in 0..pieces.len().pow(5) {
            bytes.clear();
            for _ in 0..5 {
                bytes.extend_from_slice(pieces[k % pieces.len()]);
                k /= pieces.len();
            }
            let valid = std::str::from_utf8(&bytes).map_or_else(|e| e.valid_up_to(), |s| s.len());
            let want: Vec<u16> = std::str::from_utf8(&bytes[..valid]).expect("valid prefix").encode_utf16().collect();
            let (read, written) = transcode_valid_prefix(&bytes, &mut dst[..bytes.len()]);
            assert_eq!((read, &dst[..written]), (valid, &want[..]), "{bytes:02X?}");
        }
    }

    /// Agrees with std's `valid_up_to` on every first byte followed by bytes from each range
    /// of table 3-7, at each length, behind ASCII and CJK and before more text.
    #[test]
    fn valid_up_to_agrees_with_std() {
        let edges = [0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC2, 0xE0, 0xED, 0xF0, 0xF4, 0xFF];
        let mut bytes = Vec::new();
        for prefix in [&b""[..], b"abcdefghi", "文".as_bytes()] {
            for b0 in 0..=255u8 {
                for &b1 in &edges {
                    for &b2 in &edges {
                        for &b3 in &edges {
                            for suffix in [&b""[..], "文".as_bytes()] {
                                bytes.clear();
                                bytes.extend_from_slice(prefix);
                                bytes.extend_from_slice(&[b0, b1, b2, b3]);
                                bytes.extend_from_slice(suffix);
                                for end in prefix.len()..=bytes.len() {
                                    let b = &bytes[..end];
                                    let std = std::str::from_utf8(b).map_or_else(|e| e.valid_up_to(), |s| s.len());
                                    assert_eq!(valid_up_to(b), std, "{b:02X?}");
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
