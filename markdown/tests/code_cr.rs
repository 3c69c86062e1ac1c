//! Carriage returns in fenced code, streamed in small pieces. CommonMark 2.1 ends a line at
//! LF, CR or CRLF, but inside fenced code pulldown-cmark keeps a bare CR as text while a CRLF
//! ends the line: the streamed page must agree with a one-shot render after `finish()`, no
//! append may panic (a panic kills the wasm module), and each frame must equal a fresh render
//! of the same prefix (but for the class of the word being typed, see
//! `common::open_word_unclassed`).

mod common;

use chunkwise_markdown::*;
use common::{apply, open_word_unclassed};

/// Streams `pieces`, checking each frame against a fresh render when `frames`; returns the
/// page after `finish()`.
fn stream(pieces: &[&str], frames: bool) -> Vec<Vec<Node>> {
    let opts = RenderOptions::default();
    let mut r = MarkdownRenderer::new(opts.clone());
    let mut page = Vec::new();
    let mut src = String::new();
    for p in pieces {
        src.push_str(p);
        apply(&mut page, &r.append(p));
        assert_eq!(page, r.blocks(), "page differs from renderer at {src:?}");
        if frames {
            let mut fresh = MarkdownRenderer::new(opts.clone());
            fresh.append(&src);
            assert_eq!(
                open_word_unclassed(&r.blocks()),
                open_word_unclassed(&fresh.blocks()),
                "frame differs from a fresh render at {src:?}"
            );
        }
    }
    apply(&mut page, &r.finish());
    page
}

fn one_shot(pieces: &[&str]) -> Vec<Vec<Node>> {
    render(&pieces.concat(), &RenderOptions::default())
}

#[test]
fn bare_cr_inside_a_highlighted_line_does_not_panic() {
    let pieces = ["```js", "\nx\ry", " ", "z", "\n"];
    assert_eq!(stream(&pieces, true), one_shot(&pieces));
}

#[test]
fn bare_cr_in_plain_fenced_code_stays_text() {
    let pieces = ["`", "``\n", "\r", "4\n`", "`", "`\n"];
    assert_eq!(stream(&pieces, true), one_shot(&pieces));
}

#[test]
fn crlf_in_code_streams_like_one_shot() {
    for pieces in [&["```js\r\n", "x y\r", "\nz", "\r\n```\r\n"][..], &["```\r", "\na\r", "\r\n", "b\r\n```"][..]] {
        assert_eq!(stream(pieces, true), one_shot(pieces), "{pieces:?}");
    }
}

#[test]
fn fence_characters_after_an_open_comment_hide_like_a_fresh_render() {
    // a line of fence characters heals as a closing fence being typed
    for text in ["```js\n/*\n    `", "```js\n/*\n\t`", "~~~js\n/*\n    ~", "```js\n\"a\n  ``"] {
        let pieces: Vec<&str> = text.char_indices().map(|(i, c)| &text[i..i + c.len_utf8()]).collect();
        stream(&pieces, true);
    }
}

fn next(seed: &mut u64) -> u64 {
    // xorshift64*
    *seed ^= *seed >> 12;
    *seed ^= *seed << 25;
    *seed ^= *seed >> 27;
    seed.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

const OPENS: [&str; 5] = ["```js\n", "```\n", "~~~rust\r\n", "```c\r", "````py\n"];
const BITS: [&str; 16] =
    ["x", "y z", "\r", "\n", "\r\n", "/*", "*/", "\"", "'", "// c", "1.5", "const ", "  ", "\t", "`", "~"];

/// Seeded, bounded: code blocks mixing bare CR, CRLF and LF, typed in pieces of 1–4
/// characters, finish like one shot and never panic.
#[test]
fn random_code_with_carriage_returns_finishes_like_one_shot() {
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    for case in 0..400 {
        let mut text = String::from(OPENS[(next(&mut seed) % OPENS.len() as u64) as usize]);
        let n = 2 + next(&mut seed) % 14;
        for _ in 0..n {
            text.push_str(BITS[(next(&mut seed) % BITS.len() as u64) as usize]);
        }
        if case % 2 == 0 {
            text.push_str(["\n```\n", "\r\n```", "\r```\n"][(next(&mut seed) % 3) as usize]);
        }
        let mut pieces = Vec::new();
        let mut i = 0;
        while i < text.len() {
            let j = (i + 1 + (next(&mut seed) % 4) as usize).min(text.len());
            pieces.push(&text[i..j]);
            i = j;
        }
        let got = std::panic::catch_unwind(|| stream(&pieces, false));
        let got = got.unwrap_or_else(|_| panic!("case {case}: panicked on {pieces:?}"));
        assert_eq!(got, one_shot(&pieces), "case {case}: {pieces:?}");
    }
}
