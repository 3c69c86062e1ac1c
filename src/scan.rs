//! Finding and comparing bytes a word at a time (SWAR: SIMD within a register).
//!
//! The wasm module runs interpreted on iOS (WeChat's JavaScriptCore has no JIT): there every
//! wasm instruction costs, and a byte-at-a-time loop with a closure costs a call per byte.
//! These loops read eight bytes per 64-bit load and find a match with a few arithmetic
//! operations; the long runs (SSE lines, template comparisons) take several words per step,
//! so the loop's own counting and branching is paid once per 16 or 32 bytes; a run's last
//! bytes are one more word that overlaps the ones already read, not a byte loop.

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte that is zero in `x` (exact for the lowest such byte; bytes
/// above it may be flagged wrongly, which never matters here: only the lowest is used).
#[inline(always)]
fn zero_bytes(x: u64) -> u64 {
    x.wrapping_sub(LO) & !x & HI
}

/// The eight bytes at `at` (callers check `at + 8 <= bytes.len()`), little-endian, in one
/// unaligned load: the safe slice-to-array conversion stays a call at `opt-level = "z"`.
#[inline(always)]
pub(crate) fn word(bytes: &[u8], at: usize) -> u64 {
    assert!(at + 8 <= bytes.len());
    // SAFETY: the eight bytes at `at` are inside `bytes` (asserted above); any bit pattern is
    // a valid u64 and `read_unaligned` has no alignment requirement.
    u64::from_le(unsafe { std::ptr::read_unaligned(bytes.as_ptr().add(at).cast::<u64>()) })
}

/// The four bytes at `at` (callers check `at + 4 <= bytes.len()`), as `word` reads eight.
#[inline(always)]
pub(crate) fn word4(bytes: &[u8], at: usize) -> u32 {
    assert!(at + 4 <= bytes.len());
    // SAFETY: as in `word`, for four bytes.
    u32::from_le(unsafe { std::ptr::read_unaligned(bytes.as_ptr().add(at).cast::<u32>()) })
}

/// The index of the first byte of `bytes` equal to `a` or `b`.
pub(crate) fn find2(bytes: &[u8], a: u8, b: u8) -> Option<usize> {
    let mut at = 0;
    if a.max(b) < 0x20 {
        // Line breaks: one test for "a byte below the larger of the two" instead of two
        // equality tests per word; a control byte that is neither (a tab) is checked and
        // skipped. Lines of text and JSON rarely hold one.
        let below = LO * u64::from(a.max(b) + 1);
        let below_in = |x: u64| x.wrapping_sub(below) & !x;
        // Thirty-two bytes per step over the run without a break, then a word at a time.
        while at + 32 <= bytes.len()
            && (below_in(word(bytes, at))
                | below_in(word(bytes, at + 8))
                | below_in(word(bytes, at + 16))
                | below_in(word(bytes, at + 24)))
                & HI
                == 0
        {
            at += 32;
        }
        while at + 8 <= bytes.len() {
            let x = word(bytes, at);
            let hits = x.wrapping_sub(below) & !x & HI;
            if hits == 0 {
                at += 8;
                continue;
            }
            let i = at + (hits.trailing_zeros() / 8) as usize;
            if bytes[i] == a || bytes[i] == b {
                return Some(i);
            }
            at = i + 1;
        }
        return tail(bytes, at, a, b, below_in);
    }
    let (wa, wb) = (LO * u64::from(a), LO * u64::from(b));
    while at + 8 <= bytes.len() {
        let x = word(bytes, at);
        let hits = zero_bytes(x ^ wa) | zero_bytes(x ^ wb);
        if hits != 0 {
            return Some(at + (hits.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    tail(bytes, at, a, b, |x| zero_bytes(x ^ wa) | zero_bytes(x ^ wb))
}

/// The rest of `find2` from `at`, fewer than eight bytes before the end: the last word of
/// `bytes` (overlapping bytes already searched, which are masked off) instead of a byte loop.
/// `flags(x)` has the high bit set at least in the lowest byte of `x` that matches; it may
/// flag bytes above it too, so each flagged byte is checked.
#[inline(always)]
fn tail(bytes: &[u8], at: usize, a: u8, b: u8, flags: impl Fn(u64) -> u64) -> Option<usize> {
    if bytes.len() < 8 || at >= bytes.len() {
        return bytes[at.min(bytes.len())..].iter().position(|&c| c == a || c == b).map(|i| at + i);
    }
    let last = bytes.len() - 8;
    let mut hits = flags(word(bytes, last)) & HI & (!0u64 << ((at - last) * 8));
    while hits != 0 {
        let i = last + (hits.trailing_zeros() / 8) as usize;
        if bytes[i] == a || bytes[i] == b {
            return Some(i);
        }
        hits &= hits - 1;
    }
    None
}

/// Whether the eight bytes at `at` (callers check `at + 8 <= bytes.len()`) are all printable
/// ASCII (`' '..='~'`).
pub(crate) fn printable8(bytes: &[u8], at: usize) -> bool {
    let x = word(bytes, at);
    // Below 0x20: x - 0x20 borrows into the byte's clear high bit; 0x7F and above: x + 1
    // sets it (or it was set). Neither borrows nor carries unless some byte is outside.
    (x.wrapping_sub(LO * 0x20) & !x | x.wrapping_add(LO) | x) & HI == 0
}

/// Whether `a` and `b` are equal: sixteen bytes per step, and no byte loop for the tail
/// (a call of `memcmp`, which compares a byte per step in wasm).
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n < 8 {
        if n < 4 {
            return a.iter().zip(b).all(|(x, y)| x == y);
        }
        // Four to seven bytes (an event type such as `message`): the first and last four.
        return word4(a, 0) == word4(b, 0) && word4(a, n - 4) == word4(b, n - 4);
    }
    let mut at = 0;
    while at + 16 <= n {
        if (word(a, at) ^ word(b, at)) | (word(a, at + 8) ^ word(b, at + 8)) != 0 {
            return false;
        }
        at += 16;
    }
    // Up to 15 bytes are left: the word at `at` and the last word (they may overlap).
    let last = word(a, n - 8) ^ word(b, n - 8);
    (if at + 8 <= n { word(a, at) ^ word(b, at) } else { 0 }) | last == 0
}

/// From `from`, the index of the first `"`, `\` or control character (what ends the plain
/// run of a JSON string), or `bytes.len()`.
pub(crate) fn string_run_end(bytes: &[u8], from: usize) -> usize {
    const QUOTE: u64 = LO * b'"' as u64;
    const BACKSLASH: u64 = LO * b'\\' as u64;
    let mut at = from;
    while at + 8 <= bytes.len() {
        let x = word(bytes, at);
        // A byte below 0x20: x - 0x20 borrows into its high bit while its own high bit is clear.
        let hits = zero_bytes(x ^ QUOTE) | zero_bytes(x ^ BACKSLASH) | (x.wrapping_sub(LO * 0x20) & !x & HI);
        if hits != 0 {
            return at + (hits.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    while at < bytes.len() && !matches!(bytes[at], b'"' | b'\\' | 0..=0x1F) {
        at += 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::{find2, printable8, same, string_run_end};

    #[test]
    fn agree_with_a_byte_loop_at_every_offset() {
        let mut bytes: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
        bytes.extend(b"plain text with \"quotes\" and \\ and \n lines\r\n".repeat(3));
        for start in 0..bytes.len() {
            let s = &bytes[start..];
            for (a, b) in [(b'\n', b'\r'), (b'\n', b'\n'), (b'\t', 0), (b'"', b'"'), (0x80, 0xFF), (0, 0x7F)] {
                assert_eq!(find2(s, a, b), s.iter().position(|&c| c == a || c == b), "{start} {a} {b}");
            }
            if s.len() >= 8 {
                assert_eq!(printable8(s, 0), s[..8].iter().all(|c| (b' '..=b'~').contains(c)), "{start}");
            }
            let slow = s.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20).unwrap_or(s.len());
            assert_eq!(string_run_end(s, 0), slow, "{start}");
            let mut other = s.to_vec();
            assert!(same(s, &other));
            if let Some(last) = other.last_mut() {
                *last ^= 1;
                assert!(!same(s, &other), "{start}");
            }
        }
    }

    /// A difference anywhere is seen, not only in the last word (which always overlaps).
    #[test]
    fn same_sees_a_difference_at_every_position() {
        for n in 0..=40 {
            let a: Vec<u8> = (0..n as u8).map(|i| i.wrapping_mul(37)).collect();
            assert!(same(&a, &a.clone()));
            for i in 0..n {
                let mut b = a.clone();
                b[i] ^= 0x80;
                assert!(!same(&a, &b), "{n} {i}");
            }
        }
    }

    /// The last word may flag a byte that is not searched for (a tab below the threshold)
    /// before the byte that is.
    #[test]
    fn find2_looks_past_a_flagged_byte_in_the_last_word() {
        assert_eq!(find2(b"abcdefgh\t\n", b'\n', b'\r'), Some(9));
        assert_eq!(find2(b"abcdefgh\t\x01\r", b'\n', b'\r'), Some(10));
    }
}
