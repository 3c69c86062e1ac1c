//! Where the pacer's grapheme clusters end: the characters between which UAX #29 always
//! breaks, read straight from UTF-8 bytes (the fast path for nearly all text), and the
//! resumable segmenter for the rest. The pacer's timing and queue (the parent module) only
//! ask for cluster ends; nothing here knows about time.

use unicode_segmentation::{GraphemeCursor, GraphemeIncomplete};

/// Characters with a cluster boundary between any two of them: those whose
/// Grapheme_Cluster_Break property is Other and that are not Extended_Pictographic, so that
/// no UAX #29 rule but GB999 (break) applies between two of them (printable ASCII, the
/// dashes and quotes of General Punctuation before U+2028, CJK punctuation before the
/// combining tone marks at U+302A, CJK Unified Ideographs, the fullwidth ASCII forms), and
/// tab and LF, after and before which GB4 and GB5 always break (CR, which GB3 joins to an LF,
/// is not one of them).
/// (The definition; [`plain_len`] reads the same set from UTF-8 bytes, and a test checks
/// that they agree on every character.)
#[cfg(test)]
fn is_plain(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | ' '..='~' | '\u{2010}'..='\u{2027}' | '\u{3000}'..='\u{3029}' | '\u{4E00}'..='\u{9FFF}' | '\u{FF01}'..='\u{FF5E}'
    )
}

/// The byte length of the character at `at` in UTF-8 `b` if it [`is_plain`], else 0; read
/// from the bytes without decoding (the hot loop of pacing, so it must be cheap where wasm
/// is interpreted).
#[inline(always)]
fn plain_len(b: &[u8], at: usize) -> usize {
    match b.get(at) {
        Some(b'\t' | b'\n' | b' '..=b'~') => 1,
        Some(&lead @ (0xE2..=0xE9 | 0xEF)) if at + 2 < b.len() => {
            let (b1, b2) = (b[at + 1], b[at + 2]);
            let plain = match lead {
                // U+2010..=U+2027: E2 80 90..=E2 80 A7
                0xE2 => b1 == 0x80 && (0x90..=0xA7).contains(&b2),
                // U+3000..=U+3029: E3 80 80..=E3 80 A9
                0xE3 => b1 == 0x80 && b2 <= 0xA9,
                // U+FF01..=U+FF5E: EF BC 81..=EF BD 9E
                0xEF => (b1 == 0xBC && b2 >= 0x81) || (b1 == 0xBD && b2 <= 0x9E),
                // U+4E00..=U+9FFF: E4 B8 80..=E9 BF BF
                _ => lead > 0xE4 || b1 >= 0xB8,
            };
            if plain {
                3
            } else {
                0
            }
        }
        _ => 0,
    }
}

/// [`plain_len`] not inlined, for the places off the hot loop (the wasm stays small).
#[inline(never)]
pub(super) fn plain_len_at(b: &[u8], at: usize) -> usize {
    plain_len(b, at)
}

/// From `at`, the end of the longest run of plain characters each followed by another
/// plain character (so each is a cluster of its own), at most `max` of them and none ending
/// past `limit`, and how many there are.
pub(super) fn plain_run(b: &[u8], mut at: usize, max: u64, limit: usize) -> (usize, u64) {
    let mut clusters = 0;
    let mut len = plain_len(b, at);
    while len > 0 && clusters < max && at + len <= limit {
        // One byte long, and eight printable ASCII characters after it: those eight are
        // counted in one step, the first as followed by a plain character, the others as
        // printable ASCII followed by one (most of any answer, Chinese ones too: Markdown,
        // code, numbers, spaces).
        if len == 1 && max - clusters >= 8 && at + 9 <= b.len() && at + 8 <= limit && crate::scan::printable8(b, at + 1)
        {
            at += 8;
            clusters += 8;
            continue;
        }
        let next = plain_len(b, at + len);
        if next == 0 {
            break;
        }
        at += len;
        len = next;
        clusters += 1;
    }
    (at, clusters)
}

pub(super) fn fresh_cursor() -> GraphemeCursor {
    // The length is unknown while streaming: with `usize::MAX` the cursor never sees the end
    // of text and asks for the next chunk instead of assuming a boundary at the end.
    GraphemeCursor::new(0, usize::MAX, true)
}

/// The end of the cluster at `buf[at..]` if the text after it has arrived, resuming `cursor`
/// (the stream byte its cluster starts at, and its state) when it was left inside this
/// cluster. Returns the end and the stream byte the cursor is now at home in.
pub(super) fn next_boundary(
    buf: &str,
    at: usize,
    dropped: u64,
    cursor: &mut (u64, GraphemeCursor),
) -> (Option<usize>, u64) {
    let home = dropped + at as u64;
    if cursor.0 != home {
        *cursor = (home, fresh_cursor());
    }
    let rest = &buf[at..];
    // A lone plain character ends where the next character starts, whatever that is: the
    // cursor would only ask for the next chunk, at the cost of a UAX #29 lookup.
    if rest.is_empty() || plain_len_at(buf.as_bytes(), at) == rest.len() {
        return (None, home);
    }
    // Every call passes the whole cluster from its start (offset 0), so the cursor never
    // needs context before it: it only ever asks for the next chunk.
    match cursor.1.next_boundary(rest, 0) {
        Ok(Some(b)) if b > 0 && b <= rest.len() => (Some(at + b), u64::MAX),
        Err(GraphemeIncomplete::NextChunk) => (None, home),
        // Not reachable with a chunk starting at 0; if it were, the text would stay
        // held back as one unit and still come out whole at `end` or `skip`.
        _ => {
            debug_assert!(false, "unexpected grapheme cursor state");
            (None, home)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn plain_len_reads_is_plain_from_the_bytes() {
        let mut buf = [0u8; 8];
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            let n = c.encode_utf8(&mut buf).len();
            let want = if super::is_plain(c) { n } else { 0 };
            assert_eq!(super::plain_len(&buf[..n], 0), want, "{c:?}");
        }
    }

    /// The pacer finds the plain character before a position from its length alone, trying
    /// one byte back and three.
    #[test]
    fn plain_characters_are_one_byte_long_or_three() {
        for c in (0..=0x10FFFF).filter_map(char::from_u32).filter(|&c| super::is_plain(c)) {
            assert!(matches!(c.len_utf8(), 1 | 3), "{c:?}");
        }
    }
}
