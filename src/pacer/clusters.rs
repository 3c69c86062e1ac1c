//! Where the pacer's grapheme clusters end: the characters between which UAX #29 always
//! breaks, read straight from UTF-8 bytes (the fast path for nearly all text), and the
//! resumable segmenter for the rest. The pacer's timing and queue (the parent module) only
//! ask for cluster ends; nothing here knows about time.

use unicode_segmentation::{GraphemeCursor, GraphemeIncomplete};

/// Characters with a cluster boundary between any two of them: those whose
/// Grapheme_Cluster_Break property is Other (or LV or LVT, the precomposed Hangul syllables,
/// which join only a following V or T jamo) and that are neither Extended_Pictographic nor
/// Indic_Conjunct_Break Consonant, so that no UAX #29 rule but GB999 (break) applies between
/// two of them: printable ASCII; the letters of Latin-1 and Latin Extended-A and -B, IPA and
/// the spacing modifiers (U+00C0–02FF, before the combining marks at U+0300); Greek and
/// Cyrillic from U+0380 to U+04FF but for the Cyrillic combining marks U+0483–0489; Latin
/// Extended Additional (Vietnamese) and Greek Extended; the dashes and quotes of General
/// Punctuation before U+2028; CJK punctuation before the combining tone marks at U+302A;
/// Hiragana and Katakana but for the combining voicing marks U+3099 and U+309A; CJK Unified
/// Ideographs; Hangul syllables; the fullwidth ASCII forms; and tab and LF, after and before
/// which GB4 and GB5 always break (CR, which GB3 joins to an LF, is not one of them).
/// (Indic_Conjunct_Break Linker and Extend characters are Extend or ZWJ for
/// Grapheme_Cluster_Break.) The properties are those of Unicode 17.0, the version of the
/// `unicode-segmentation` crate in Cargo.lock: a test asks that crate's segmenter, on every
/// character of the set, so a newer version that moved one would fail it.
/// (The definition; [`plain_len`] reads the same set from UTF-8 bytes, and a test checks that
/// they agree on every character.)
#[cfg(test)]
fn is_plain(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n'
            | ' '..='~'
            | '\u{C0}'..='\u{2FF}'
            | '\u{380}'..='\u{482}'
            | '\u{48A}'..='\u{4FF}'
            | '\u{1E00}'..='\u{1FFF}'
            | '\u{2010}'..='\u{2027}'
            | '\u{3000}'..='\u{3029}'
            | '\u{3040}'..='\u{3098}'
            | '\u{309B}'..='\u{30FF}'
            | '\u{4E00}'..='\u{9FFF}'
            | '\u{AC00}'..='\u{D7A3}'
            | '\u{FF01}'..='\u{FF5E}'
    )
}

/// The byte length of the character at `at` in UTF-8 `b` if it [`is_plain`], else 0; read
/// from the bytes without decoding (the hot loop of pacing, so it must be cheap where wasm
/// is interpreted). `b` is valid UTF-8 (a `str`), so a lead byte is followed by the
/// continuation bytes it announces.
#[inline(always)]
fn plain_len(b: &[u8], at: usize) -> usize {
    // The lead byte decides the length; ASCII first, then the lead bytes that are plain
    // whatever follows them (most of Chinese and Korean), so the common cases are decided
    // in a few instructions.
    let Some(&lead) = b.get(at) else { return 0 };
    if lead < 0x80 {
        return usize::from(matches!(lead, b'\t' | b'\n' | b' '..=b'~'));
    }
    if lead >= 0xE0 {
        // U+5000..=U+9FFF and U+B000..=U+CFFF: every character these lead bytes start.
        if matches!(lead, 0xE5..=0xE9 | 0xEB | 0xEC) {
            return 3;
        }
        // (Four-byte characters, led by F0..=F4, are not plain: they fall through to 0.)
        let Some(&[b1, b2]) = b.get(at + 1..at + 3) else { return 0 };
        let plain = match lead {
            // U+1E00..=U+1FFF: E1 B8 80..=E1 BF BF
            0xE1 => b1 >= 0xB8,
            // U+2010..=U+2027: E2 80 90..=E2 80 A7
            0xE2 => b1 == 0x80 && (0x90..=0xA7).contains(&b2),
            // U+3000..=U+3029: E3 80 80..=E3 80 A9; U+3040..=U+30FF: E3 81 80..=E3 83 BF
            // but for E3 82 99 and E3 82 9A
            0xE3 => match b1 {
                0x80 => b2 <= 0xA9,
                0x81 | 0x83 => true,
                0x82 => !matches!(b2, 0x99 | 0x9A),
                _ => false,
            },
            // U+4E00..=U+4FFF: E4 B8 80..=E4 BF BF
            0xE4 => b1 >= 0xB8,
            // U+AC00..=U+AFFF: EA B0 80..=EA BF BF
            0xEA => b1 >= 0xB0,
            // U+D000..=U+D7A3: ED 80 80..=ED 9E A3
            0xED => b1 < 0x9E || (b1 == 0x9E && b2 <= 0xA3),
            // U+FF01..=U+FF5E: EF BC 81..=EF BD 9E
            0xEF => (b1 == 0xBC && b2 >= 0x81) || (b1 == 0xBD && b2 <= 0x9E),
            _ => false,
        };
        return if plain { 3 } else { 0 };
    }
    // U+00C0..=U+02FF, U+0380..=U+047F and U+04C0..=U+04FF: every character these lead
    // bytes start; U+0480..=U+04BF but for U+0483..=U+0489 (D2 83..=D2 89).
    let plain = match lead {
        0xC3..=0xCB | 0xCE..=0xD1 | 0xD3 => true,
        0xD2 => !matches!(b.get(at + 1), Some(0x83..=0x89)),
        _ => false,
    };
    if plain {
        2
    } else {
        0
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
    // The length of the plain character at `at` once it is known (0 before the first read):
    // one read of the bytes a character, so the reading code is inlined here once.
    let mut len = 0;
    loop {
        let next = plain_len(b, at + len);
        if next == 0 {
            break;
        }
        if len > 0 {
            at += len;
            clusters += 1;
        }
        len = next;
        if clusters >= max || at + len > limit {
            break;
        }
        // One byte long, and eight printable ASCII characters after it: those eight are
        // counted in one step, the first as followed by a plain character, the others as
        // printable ASCII followed by one (most of any answer, Chinese ones too: Markdown,
        // code, numbers, spaces). Only with room for one more after them, which the next
        // step takes without checking the bounds first.
        if len == 1 && max - clusters > 8 && at + 9 <= limit.min(b.len()) && crate::scan::printable8(b, at + 1) {
            at += 8;
            clusters += 8;
        }
    }
    (at, clusters)
}

/// Where the last character of `b` starts if it and the one before it are plain (so the
/// last is a cluster of its own, held back until the text after it arrives), else
/// `usize::MAX`. Inlined into its one caller: in an interpreted wasm engine a call costs
/// as much as dozens of instructions, and this runs on every tick.
#[inline(always)]
pub(super) fn last_of_two_plain(b: &[u8]) -> usize {
    let (mut end, mut last) = (b.len(), usize::MAX);
    for _ in 0..2 {
        let start = char_start_before(b, end);
        // Printable ASCII and the lead bytes of most CJK ideographs and Hangul syllables are
        // decided here, without the call.
        let lead = b.get(start).copied().unwrap_or(0);
        if !(matches!(lead, b' '..=b'~' | 0xE5..=0xE9 | 0xEB | 0xEC) || plain_len_at(b, start) > 0) {
            return usize::MAX;
        }
        if last == usize::MAX {
            last = start;
        }
        end = start;
    }
    last
}

/// Where the character that ends at `end` (a character boundary) starts: the last byte
/// before it that is not a continuation byte, at most three back (`usize::MAX` for `end`
/// 0, where no byte is).
#[inline(always)]
pub(super) fn char_start_before(b: &[u8], end: usize) -> usize {
    let mut start = end.wrapping_sub(1);
    while b.get(start).is_some_and(|&x| x & 0xC0 == 0x80) {
        start -= 1;
    }
    start
}

/// How long the character at `at` is, as its lead byte tells (1 past the end): what a
/// cluster that starts there is at least.
#[inline(always)]
pub(super) fn lead_len(b: &[u8], at: usize) -> usize {
    b.get(at).map_or(1, |&x| (x.leading_ones() as usize).max(1))
}

/// How many UTF-16 code units the UTF-8 `b` (whole characters) takes: one per character and
/// two for a four-byte one, so its bytes that are not continuation bytes and its four-byte
/// lead bytes once more; counted eight bytes a step.
pub(super) fn utf16_len(b: &[u8]) -> usize {
    const HI: u64 = 0x8080_8080_8080_8080;
    let words = b.chunks_exact(8);
    let tail = words.remainder();
    let mut n = 0;
    for w in words {
        let x = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        // Each byte's high bit, set for 10xxxxxx (a continuation) or for 1111xxxx (a
        // four-byte lead; UTF-8 has no byte above 0xF4).
        let continuation = x & !(x << 1) & HI;
        let four = x & (x << 1) & (x << 2) & (x << 3) & HI;
        n += 8 - continuation.count_ones() as usize + four.count_ones() as usize;
    }
    n + tail.iter().map(|&x| usize::from(x & 0xC0 != 0x80) + usize::from(x >= 0xF0)).sum::<usize>()
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

    /// The segmenter itself, on every plain character `c`, breaks
    /// - between `c` and each of a set of plain characters, before and after it, and between
    ///   `c` and itself: no rule joins two of them (GB6–GB8 Hangul syllables and jamo, GB9
    ///   Extend and ZWJ, GB9a SpacingMark, GB9b Prepend, GB12–GB13 regional indicators);
    /// - between a ZWJ after `c` and a pictograph: `c` is not Extended_Pictographic (GB11);
    /// - between a virama after `c` and a consonant: `c` is not an Indic_Conjunct_Break
    ///   Consonant (GB9c).
    #[test]
    fn the_segmenter_breaks_between_plain_characters() {
        use unicode_segmentation::UnicodeSegmentation;
        let plain: Vec<char> = (0..=0x10FFFF).filter_map(char::from_u32).filter(|&c| super::is_plain(c)).collect();
        // Each range's first and last character and one between; U+AC00 is an LV syllable,
        // U+AC01 an LVT one.
        let others: Vec<char> = plain
            .iter()
            .enumerate()
            .filter(|&(i, &c)| {
                let prev = i.checked_sub(1).map(|i| plain[i] as u32 + 1);
                let next = plain.get(i + 1).map(|&n| n as u32 - 1);
                prev != Some(c as u32) || next != Some(c as u32) || i % 997 == 0
            })
            .map(|(_, &c)| c)
            .chain(['\u{AC00}', '\u{AC01}', '\u{D788}'])
            .collect();
        assert!(others.len() > 30, "{}", others.len());
        let mut s = String::new();
        for &c in &plain {
            for &o in others.iter().chain([&c]) {
                for (x, y) in [(c, o), (o, c)] {
                    s.clear();
                    s.extend([x, y]);
                    assert_eq!(s.graphemes(true).count(), 2, "{x:?} {y:?}");
                }
            }
            s.clear();
            s.extend([c, '\u{200D}', '\u{1F600}']);
            // (Forward, as the pacer segments: `next_back` would run the reverse rules.)
            let last = |s: &str| s.graphemes(true).fold("", |_, g| g).to_owned();
            assert_eq!(last(&s), "\u{1F600}", "{c:?} ZWJ pictograph");
            s.clear();
            s.extend([c, '\u{94D}', '\u{915}']);
            assert_eq!(last(&s), "\u{915}", "{c:?} virama consonant");
        }
    }

    /// [`super::plain_run`] against a character loop, from every character boundary, with
    /// every small `max` and `limit` (the eight-at-a-time step at every position in a run).
    #[test]
    fn plain_run_agrees_with_a_character_loop() {
        fn reference(s: &str, mut at: usize, max: u64, limit: usize) -> (usize, u64) {
            let mut n = 0;
            while let Some(c) = s[at..].chars().next().filter(|&c| super::is_plain(c)) {
                let end = at + c.len_utf8();
                if n >= max || end > limit || !s[end..].chars().next().is_some_and(super::is_plain) {
                    break;
                }
                (at, n) = (end, n + 1);
            }
            (at, n)
        }
        let texts = [
            "The quick brown fox jumps over the lazy dog, twice: 0123456789 abcdefghij.",
            "Привет, мир! 中文和 English 混排，한국어 문장과 ひらがな。e\u{301}x\u{600}yz",
            "流式输出把模型的回答逐字送到页面上，一个汉字一个汉字地出现。한국어도 마찬가지입니다 ok",
        ];
        for s in texts {
            for at in (0..=s.len()).filter(|&i| s.is_char_boundary(i)) {
                for max in (0..=20).chain([u64::MAX]) {
                    for limit in (at..=(at + 24).min(s.len())).chain([usize::MAX]) {
                        let got = super::plain_run(s.as_bytes(), at, max, limit);
                        assert_eq!(got, reference(s, at, max, limit), "{s:?} at {at}, max {max}, limit {limit}");
                    }
                }
            }
        }
    }

    /// The pacer finds the plain character before a position from its length alone, trying
    /// one byte back, two and three: no plain character is four bytes long. (So each is in
    /// the BMP, one UTF-16 code unit, which is how `Pacer::tick_utf16` counts a plain run.)
    #[test]
    fn plain_characters_are_at_most_three_bytes_long() {
        for c in (0..=0x10FFFF).filter_map(char::from_u32).filter(|&c| super::is_plain(c)) {
            assert!(c.len_utf8() <= 3, "{c:?}");
        }
    }
}
