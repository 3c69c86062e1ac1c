//! Blank lines and block-structure whitespace are spaces and tabs only (CommonMark 0.31.2,
//! 4.9: "a line containing no characters, or a line containing only spaces (U+0020) or tabs
//! (U+0009)"). Other Unicode spaces, such as U+3000 IDEOGRAPHIC SPACE (common in Chinese
//! answers), U+00A0 NO-BREAK SPACE and U+0085 NEXT LINE, are text: a line of them is a
//! paragraph line, not a blank line, and does not indent. Streamed in any pieces, every
//! prefix renders as a fresh renderer given it at once, and `finish()` as a one-shot render.

mod common;

use chunkwise_markdown::*;
use common::{blocks_diff, open_word_unclassed};

/// Streams `text` in pieces of `step` characters; at every prefix compares with a fresh
/// render of the prefix, and after `finish()` with the one-shot render.
fn check(text: &str, step: usize) {
    let opts = RenderOptions::default();
    let mut r = MarkdownRenderer::new(opts.clone());
    let cuts: Vec<usize> = text.char_indices().map(|(i, _)| i).step_by(step).chain([text.len()]).collect();
    for w in cuts.windows(2) {
        r.append(&text[w[0]..w[1]]);
        let mut fresh = MarkdownRenderer::new(opts.clone());
        fresh.append(&text[..w[1]]);
        let (a, b) = (open_word_unclassed(&r.blocks()), open_word_unclassed(&fresh.blocks()));
        assert!(a == b, "step {step}, prefix {:?}:\n{}", &text[..w[1]], blocks_diff(&a, &b));
    }
    r.finish();
    let (a, one) = (r.blocks(), render(text, &opts));
    assert!(a == one, "step {step}, finish of {text:?}:\n{}", blocks_diff(&a, &one));
}

fn check_all_steps(text: &str) {
    for step in 1..=4 {
        check(text, step);
    }
}

#[test]
fn a_line_of_unicode_spaces_is_not_blank() {
    for space in ["\u{3000}", "\u{A0}", "\u{85}", "\u{3000}\u{3000}", " \u{3000} "] {
        check_all_steps(&format!("{space}\n| a | b |\n"));
        check_all_steps(&format!("x\n{space}\n| a | b |\n"));
        check_all_steps(&format!("x\n{space}\ny\n"));
        check_all_steps(&format!("- a\n{space}\nb\n"));
        check_all_steps(&format!("> a\n{space}\n# h\n"));
        check_all_steps(&format!("```\ncode\n{space}\n```\n"));
        check_all_steps(&format!("- ```\n  code\n{space}\n  x\n"));
        check_all_steps(&format!("```\ncode\n```{space}\n\nx\n"));
        check_all_steps(&format!("| a | b |\n|---|---|\n| c | d |{space}\n\nx\n"));
        check_all_steps(&format!("[a]: /u\n{space}\"t\"\n\nx\n"));
        check_all_steps(&format!("## {space}\nx\n"));
        check_all_steps(&format!("- {space}\n  a\n"));
    }
}

#[test]
fn the_reported_streams_finish_as_one_paragraph() {
    for text in ["\u{3000}\n| a | b |\n", "x\n\u{3000}\n| a | b |\n"] {
        let one = render(text, &RenderOptions::default());
        assert_eq!(one.len(), 1, "{text:?}: {one:?}");
        check(text, 1);
    }
}
