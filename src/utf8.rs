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
}

/// Appends `s` as UTF-16 code units, widening ASCII runs without per-char decoding.
pub fn push_utf16(out: &mut Vec<u16>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        // ASCII dominates code, Markdown and English prose: widen it byte by byte.
        let ascii = bytes[i..].iter().take_while(|b| b.is_ascii()).count();
        out.extend(bytes[i..i + ascii].iter().map(|&b| b as u16));
        i += ascii;
        if i == bytes.len() {
            break;
        }
        let rest = &s[i..];
        let non_ascii = rest.bytes().position(|b| b.is_ascii()).unwrap_or(rest.len());
        out.extend(rest[..non_ascii].encode_utf16());
        i += non_ascii;
    }
}

const REPLACEMENT: char = '\u{FFFD}';
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// A streaming WHATWG UTF-8 decoder (see the module documentation).
#[derive(Debug, Clone, Default)]
pub struct Utf8Decoder {
    /// Bytes of a character cut at the end of the previous piece: always a valid but
    /// incomplete prefix of one UTF-8 sequence (1 to 3 bytes).
    partial: [u8; 4],
    partial_len: u8,
    /// Nothing has been decoded yet, so a BOM would still be stripped.
    at_start: bool,
}

impl Utf8Decoder {
    pub fn new() -> Utf8Decoder {
        Utf8Decoder { partial: [0; 4], partial_len: 0, at_start: true }
    }

    /// Back to the state of a new decoder.
    pub fn reset(&mut self) {
        *self = Utf8Decoder::new();
    }

    /// Whether bytes of an incomplete character are held.
    pub fn has_partial(&self) -> bool {
        self.partial_len > 0
    }

    /// Decodes `input` into `out`. With `last`, the stream ends here: a held incomplete
    /// sequence becomes U+FFFD and the decoder is ready for a new stream.
    pub fn decode<S: TextSink>(&mut self, mut input: &[u8], out: &mut S, last: bool) {
        if self.at_start {
            // BOM sniffing: the first three bytes of the stream, and only those.
            let have = self.partial_len as usize;
            let want = (BOM.len() - have).min(input.len());
            if self.partial[..have] == BOM[..have] && input[..want] == BOM[have..have + want] {
                if have + want == BOM.len() {
                    self.partial_len = 0;
                    self.at_start = false;
                    input = &input[want..];
                } else if !last {
                    // Still a possible BOM: hold it (it is also a valid UTF-8 prefix).
                    self.partial[have..have + want].copy_from_slice(&input[..want]);
                    self.partial_len += want as u8;
                    return;
                }
            }
            if !input.is_empty() || last {
                self.at_start = false;
            }
        }
        if self.partial_len > 0 {
            input = self.complete_partial(input, out, last);
        }
        self.decode_bulk(input, out, last);
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
            match std::str::from_utf8(input) {
                Ok(s) => {
                    out.push_str(s);
                    break;
                }
                Err(e) => {
                    let (valid, rest) = input.split_at(e.valid_up_to());
                    // SAFETY-free: from_utf8 just validated this prefix.
                    out.push_str(std::str::from_utf8(valid).expect("validated prefix"));
                    match e.error_len() {
                        // `error_len` is the length of the maximal subpart: one U+FFFD for it.
                        Some(n) => {
                            out.push_char(REPLACEMENT);
                            input = &rest[n..];
                        }
                        None if last => {
                            out.push_char(REPLACEMENT);
                            break;
                        }
                        None => {
                            self.partial[..rest.len()].copy_from_slice(rest);
                            self.partial_len = rest.len() as u8;
                            break;
                        }
                    }
                }
            }
        }
        if last {
            self.partial_len = 0;
            self.at_start = true;
        }
    }
}

/// Decodes a complete byte string (BOM not stripped), borrowing when it is valid UTF-8.
/// Used for SSE field values and JSON payloads, whose bytes are always delimited by ASCII,
/// so decoding them one by one equals decoding the whole stream.
pub fn decode_lossy(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    // std's lossy decoding also substitutes maximal subparts, as WHATWG does.
    String::from_utf8_lossy(bytes)
}
