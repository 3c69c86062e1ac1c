//! A small validating pull reader for JSON ([RFC 8259](https://www.rfc-editor.org/rfc/rfc8259)).
//!
//! The provider formats need a few fields out of each message and skip the rest. A pull
//! reader does exactly that without building a tree: keys and strings are borrowed from the
//! input unless they contain escapes, and skipped values are validated, not stored.
//!
//! Why not serde_json: its derive-based readers are monomorphized per struct; for the
//! thirty-odd message shapes here that was 60 KB of a 150 KB wasm budget, against a few KB
//! for this reader. serde_json stays the oracle in the tests (`tests/json.rs` checks this
//! reader accepts and rejects exactly what serde_json does, and the JSONTestSuite cases).
//!
//! Guarantees: every value that is read or skipped is checked against the JSON grammar;
//! nesting deeper than [`MAX_DEPTH`] is an error rather than a stack overflow; a lone
//! surrogate escape (`"\ud800"`) becomes U+FFFD, as a UTF-8 decoder would make of it.
//!
//! ```
//! use chunkwise::json::Reader;
//! let mut r = Reader::new(r#"{"delta": {"content": "h\u00e9"}, "n": [1, 2]}"#);
//! let mut content = None;
//! r.object(|r, key| match key {
//!     "delta" => r.object(|r, key| match key {
//!         "content" => Ok(content = r.opt_str()?),
//!         _ => r.skip(),
//!     }),
//!     _ => r.skip(),
//! }).unwrap();
//! assert_eq!(content.as_deref(), Some("hé"));
//! ```

use std::borrow::Cow;
use std::fmt;

use crate::scan::string_run_end;

/// Deeper nesting is rejected; the same limit as serde_json's (127 levels).
pub const MAX_DEPTH: u32 = 127;

/// Where and why the input is not JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonError {
    pub at: usize,
    pub what: &'static str,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.what, self.at)
    }
}

pub type Result<T> = std::result::Result<T, JsonError>;

/// A pull reader over one JSON text.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    text: &'a str,
    at: usize,
    depth: u32,
}

impl<'a> Reader<'a> {
    pub fn new(text: &'a str) -> Reader<'a> {
        Reader { text, at: 0, depth: 0 }
    }

    /// Reads a whole text: `read` consumes the one top-level value; only whitespace may follow.
    pub fn parse<T>(text: &'a str, read: impl FnOnce(&mut Reader<'a>) -> Result<T>) -> Result<T> {
        let mut r = Reader::new(text);
        let value = read(&mut r)?;
        r.skip_ws();
        if r.at < r.text.len() {
            return Err(r.error("trailing characters"));
        }
        Ok(value)
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    /// `text[from..to]` without `str` indexing's char-boundary check, whose failure path
    /// (a formatted panic message) is most of a kilobyte of the wasm module. Every caller
    /// passes offsets that are the text's end or sit at an ASCII byte the reader has just
    /// matched or stepped past (a quote, a backslash, a control character, a value's first
    /// byte, the byte after a value's last), and in UTF-8 an ASCII byte is never inside a
    /// character, so both are char boundaries.
    fn slice(&self, from: usize, to: usize) -> &'a str {
        debug_assert!(from <= to && self.text.is_char_boundary(from) && self.text.is_char_boundary(to));
        // SAFETY: `from <= to <= text.len()`, both char boundaries (see above).
        unsafe { self.text.get_unchecked(from..to) }
    }

    fn error(&self, what: &'static str) -> JsonError {
        JsonError { at: self.at, what }
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes().get(self.at) {
            self.at += 1;
        }
    }

    /// The first byte of the next value (after whitespace), not consumed.
    fn peek(&mut self) -> Result<u8> {
        self.skip_ws();
        self.bytes().get(self.at).copied().ok_or_else(|| self.error("unexpected end of input"))
    }

    fn expect(&mut self, byte: u8, what: &'static str) -> Result<()> {
        if self.peek()? != byte {
            return Err(self.error(what));
        }
        self.at += 1;
        Ok(())
    }

    fn literal(&mut self, word: &'static str) -> Result<()> {
        // `at` is the `t`, `f` or `n` that `peek` found.
        if !self.slice(self.at, self.text.len()).starts_with(word) {
            return Err(self.error("invalid literal"));
        }
        self.at += word.len();
        Ok(())
    }

    fn enter(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error("nesting too deep"));
        }
        Ok(())
    }

    /// Reads an object, calling `field` with each key; `field` must consume the value.
    pub fn object(&mut self, mut field: impl FnMut(&mut Reader<'a>, &str) -> Result<()>) -> Result<()> {
        self.expect(b'{', "expected an object")?;
        self.enter()?;
        if self.peek()? == b'}' {
            self.at += 1;
            self.depth -= 1;
            return Ok(());
        }
        loop {
            if self.peek()? != b'"' {
                return Err(self.error("expected a string key"));
            }
            let key = self.string()?;
            self.expect(b':', "expected ':'")?;
            field(self, &key)?;
            match self.peek()? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    self.depth -= 1;
                    return Ok(());
                }
                _ => return Err(self.error("expected ',' or '}'")),
            }
        }
    }

    /// Reads an array, calling `item` with each index; `item` must consume the value.
    pub fn array(&mut self, mut item: impl FnMut(&mut Reader<'a>, usize) -> Result<()>) -> Result<()> {
        self.expect(b'[', "expected an array")?;
        self.enter()?;
        if self.peek()? == b']' {
            self.at += 1;
            self.depth -= 1;
            return Ok(());
        }
        let mut index = 0;
        loop {
            item(self, index)?;
            index += 1;
            match self.peek()? {
                b',' => self.at += 1,
                b']' => {
                    self.at += 1;
                    self.depth -= 1;
                    return Ok(());
                }
                _ => return Err(self.error("expected ',' or ']'")),
            }
        }
    }

    /// Whether a `null` comes next (not consumed): for match guards, so that a `null` falls
    /// through to an arm that skips it.
    pub fn is_null(&mut self) -> Result<bool> {
        Ok(self.peek()? == b'n')
    }

    /// Consumes a `null` if one comes next.
    pub fn null(&mut self) -> Result<bool> {
        if self.peek()? == b'n' {
            self.literal("null")?;
            return Ok(true);
        }
        Ok(false)
    }

    /// A string, or `None` for `null`; any other value is an error.
    pub fn opt_str(&mut self) -> Result<Option<Cow<'a, str>>> {
        if self.null()? {
            return Ok(None);
        }
        if self.peek()? != b'"' {
            return Err(self.error("expected a string"));
        }
        self.string().map(Some)
    }

    /// `true`, `false`, or `None` for `null`.
    pub fn opt_bool(&mut self) -> Result<Option<bool>> {
        match self.peek()? {
            b't' => self.literal("true").map(|()| Some(true)),
            b'f' => self.literal("false").map(|()| Some(false)),
            b'n' => self.literal("null").map(|()| None),
            _ => Err(self.error("expected a boolean")),
        }
    }

    /// The text of the next value, validated; `None` for `null`.
    pub fn opt_raw(&mut self) -> Result<Option<&'a str>> {
        if self.null()? {
            return Ok(None);
        }
        self.raw().map(Some)
    }

    /// The text of the next value, validated.
    pub fn raw(&mut self) -> Result<&'a str> {
        self.skip_ws();
        let start = self.at;
        self.skip()?;
        // `start` is the value's first byte, which `skip` matched as ASCII; `at` follows its
        // last (`}`, `]`, `"`, a literal's letter or a digit).
        Ok(self.slice(start, self.at))
    }

    /// Validates and skips the next value.
    pub fn skip(&mut self) -> Result<()> {
        match self.peek()? {
            b'{' => self.object(|r, _| r.skip()),
            b'[' => self.array(|r, _| r.skip()),
            b'"' => self.string().map(drop),
            b't' => self.literal("true"),
            b'f' => self.literal("false"),
            b'n' => self.literal("null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => Err(self.error("expected a value")),
        }
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    fn number(&mut self) -> Result<()> {
        let b = self.bytes();
        let mut at = self.at;
        if b.get(at) == Some(&b'-') {
            at += 1;
        }
        if b.get(at) == Some(&b'0') {
            at += 1;
        } else if !digits(b, &mut at) {
            return Err(JsonError { at, what: "invalid number" });
        }
        if b.get(at) == Some(&b'.') {
            at += 1;
            if !digits(b, &mut at) {
                return Err(JsonError { at, what: "invalid number" });
            }
        }
        if let Some(b'e' | b'E') = b.get(at) {
            at += 1;
            if let Some(b'+' | b'-') = b.get(at) {
                at += 1;
            }
            if !digits(b, &mut at) {
                return Err(JsonError { at, what: "invalid number" });
            }
        }
        self.at = at;
        Ok(())
    }

    /// A string (the reader is at its opening quote): borrowed unless it has escapes.
    fn string(&mut self) -> Result<Cow<'a, str>> {
        let b = self.bytes();
        self.at += 1;
        let start = self.at;
        // The fast path: no escape before the closing quote.
        self.at = string_run_end(b, self.at);
        match b.get(self.at) {
            Some(b'"') => {
                self.at += 1;
                // `start` follows the opening quote, `at - 1` is the closing one.
                return Ok(Cow::Borrowed(self.slice(start, self.at - 1)));
            }
            Some(0..=0x1F) => return Err(self.error("control character in a string")),
            _ => {}
        }
        // `at` is where the run stopped: a backslash (the quote and control characters
        // returned above) or the text's end.
        let mut out = String::from(self.slice(start, self.at));
        loop {
            let Some(&c) = b.get(self.at) else { return Err(self.error("unterminated string")) };
            match c {
                b'"' => {
                    self.at += 1;
                    return Ok(Cow::Owned(out));
                }
                b'\\' => {
                    self.at += 1;
                    let Some(&e) = b.get(self.at) else { return Err(self.error("unterminated string")) };
                    self.at += 1;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => out.push(self.unicode_escape()?),
                        _ => return Err(self.error("invalid escape")),
                    }
                }
                0..=0x1F => return Err(self.error("control character in a string")),
                _ => {
                    // Copy the run up to the next quote, backslash or control character.
                    let end = string_run_end(b, self.at);
                    // `at` follows an escape (ASCII); `end` is a quote, backslash, control
                    // character or the end.
                    out.push_str(self.slice(self.at, end));
                    self.at = end;
                }
            }
        }
    }

    /// After `\u`: one code point, joining a surrogate pair written as two escapes.
    fn unicode_escape(&mut self) -> Result<char> {
        let high = self.hex4()?;
        if !(0xD800..0xDC00).contains(&high) {
            // A lone low surrogate cannot be a char: U+FFFD, as a UTF-8 decoder would give.
            return Ok(char::from_u32(high).unwrap_or('\u{FFFD}'));
        }
        // `at` follows four hex digits.
        if self.slice(self.at, self.text.len()).starts_with("\\u") {
            let save = self.at;
            self.at += 2;
            let low = self.hex4()?;
            if (0xDC00..0xE000).contains(&low) {
                return Ok(char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)).expect("a valid pair"));
            }
            self.at = save; // not a pair: the next escape stands alone
        }
        Ok('\u{FFFD}')
    }

    fn hex4(&mut self) -> Result<u32> {
        let digits = self.bytes().get(self.at..self.at + 4).ok_or_else(|| self.error("invalid \\u escape"))?;
        let mut value = 0;
        for &d in digits {
            let v = (d as char).to_digit(16).ok_or_else(|| self.error("invalid \\u escape"))?;
            value = value * 16 + v;
        }
        self.at += 4;
        Ok(value)
    }
}

/// Skips ASCII digits from `at`; whether there was one.
#[inline(always)]
fn digits(b: &[u8], at: &mut usize) -> bool {
    let start = *at;
    while *at < b.len() && b[*at].is_ascii_digit() {
        *at += 1;
    }
    *at > start
}

/// Appends `s` to `out` as a quoted JSON string: `"` and `\` escaped, the control characters
/// U+0000 to U+001F as `\n`, `\r`, `\t` or `\u00XX` (RFC 8259 §7), everything else as it is.
///
/// ```
/// let mut out = String::new();
/// chunkwise::json::write_str(&mut out, "say \"hi\"\n\u{1}");
/// assert_eq!(out, r#""say \"hi\"\n\u0001""#);
/// ```
pub fn write_str(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(s.len() + 2);
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        // SAFETY: only ASCII bytes are escaped, so `i` and `start` (0 or one past an escaped
        // byte) are char boundaries, and `start <= i < s.len()`. Unchecked because `str`
        // indexing's failure path (a formatted panic message) is most of a kilobyte of wasm.
        out.push_str(unsafe { s.get_unchecked(start..i) });
        if escape.is_empty() {
            out.push_str("\\u00");
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    // SAFETY: as above, `start <= s.len()` is 0 or one past an escaped ASCII byte.
    out.push_str(unsafe { s.get_unchecked(start..) });
    out.push('"');
}
