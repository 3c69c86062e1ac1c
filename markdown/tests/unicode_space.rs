//! Blank lines and block-structure whitespace are spaces and tabs only (CommonMark 0.31.2,
//! 4.9: "a line containing no characters, or a line containing only spaces (U+0020) or tabs
//! (U+0009)"). Other Unicode spaces, such as U+3000 IDEOGRAPHIC SPACE (common in Chinese
//! answers), U+00A0 NO-BREAK SPACE and U+0085 NEXT LINE, are text: a line of them is a
//! paragraph line, not a blank line, and does not indent. Streamed in any pieces, every
//! prefix renders as a fresh renderer given it at once, and `finish()` as a one-shot render.

mod common;

use chunkwise_markdown::*;
use common::assert_streams_like_fresh;

fn check_all_steps(text: &str) {
    for step in 1..=4 {
        assert_streams_like_fresh(text, step);
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
        assert_streams_like_fresh(text, 1);
    }
}
