//! Healing at the edges of what it hides: what a stream ending in a stray `&` or a line of
//! block markers shows (nothing of them), and the same texts streamed one to three characters
//! at a time, where at every prefix the incremental render equals a fresh render of the
//! prefix, and `finish()` the one-shot render.

mod common;

use chunkwise_markdown::*;
use common::{assert_streams_like_fresh, blocks_diff, stream};

/// What a renderer given `text` at once shows while it streams.
fn shown(text: &str) -> Vec<Vec<Node>> {
    let mut r = MarkdownRenderer::new(RenderOptions::default());
    r.append(text);
    r.blocks()
}

fn shows_as(text: &str, without: &str) {
    let (a, b) = (shown(text), shown(without));
    assert!(a == b, "{text:?} shows other than {without:?}:\n{}", blocks_diff(&a, &b));
}

fn each_step(texts: &[&str]) {
    for text in texts {
        for step in 1..=3 {
            assert_streams_like_fresh(text, step);
        }
    }
}

/// A last `&` may start an entity (`&amp;`): it shows nothing until what follows says.
#[test]
fn a_trailing_ampersand_shows_nothing_yet() {
    for (text, without) in [("a & &", "a & "), ("Tom & Jerry &", "Tom & Jerry "), ("- x &amp; &", "- x &amp; ")] {
        shows_as(text, without);
    }
}

/// A last line of block markers only (`>`, `=>`, `->`, `#>`) shows nothing: it may yet
/// become a quote, a setext underline, a list item or a heading.
#[test]
fn a_last_line_of_markers_shows_nothing_yet() {
    for base in ["a\n", "- a\n", "> a\n", "a\n\n", "1. a\n", "# h\n"] {
        for markers in [">", "> >", ">>", "=>", "->", "-->", "#>", ":>", "*>"] {
            shows_as(&format!("{base}{markers}"), base);
        }
    }
}

/// A trailing `&` may start an entity (`&amp;`): hidden until it is one or is not.
#[test]
fn an_ampersand_being_typed() {
    each_step(&[
        "Tom &amp; Jerry",
        "Tom & Jerry",
        "Tom &\n\nnext",
        "a **b** &copy; c &#35; d &#x41; e",
        "**Tom** &amp; *Jerry* & co",
        "- Tom &amp;\n- x &\n",
        "> Tom &amp; Jerry\n",
        "| a &amp; | b & |\n|---|---|\n| c &amp; | d & |\n",
        "[Tom &amp; Jerry](http://u) & x",
        "&amp;&amp; &&",
        "\\&amp;|",
        "a\n\\&amp;| b",
        "`c`&amp; x",
    ]);
}

/// A last line of block quote markers only (`>`, `> >`) shows nothing until it has content.
#[test]
fn a_last_line_of_quote_markers() {
    each_step(&[
        "a\n>",
        "a\n> > b",
        "text\n\n> quote\n>\n> more",
        "- a\n  > b\n  >",
        "para\n>>\n>> x",
        "# h\n> \n> q",
        "| a | b |\n|---|---|\n>",
        "```\ncode\n```\n>",
        "a\n=> b",
        "- a\n-> b",
    ]);
}

/// A line that starts with a Unicode space then fence characters is code, not a closing
/// fence (only spaces indent one): typed in a code block, it extends the block; one indented
/// by spaces closes it.
#[test]
fn fence_characters_after_a_unicode_space_in_code() {
    for space in ["\u{3000}", "\u{A0}", "\u{85}"] {
        each_step(&[
            &format!("```\ncode\n{space}```\nmore\n```\n\nafter"),
            &format!("~~~\ncode\n{space}~~~\nmore\n~~~\n"),
            &format!("```js\nlet x = 1;\n{space}```\nlet y = 2;\n```\n"),
            &format!("- ```\n  a\n  {space}```\n  b\n  ```\n"),
            &format!("```\n{space}``` x\n```\n"),
        ]);
    }
    // (up to three spaces do indent a closing fence)
    each_step(&[
        "```\ncode\n ```\nafter\n",
        "```js\nlet a;\n   ```\n\nb",
        "~~~\nx\n  ~~~\ny",
        "- ```\n  a\n   ```\n  b",
    ]);
}

/// Healing looks at the last line only, so a link whose `[` is on an earlier line shows as
/// written until its `)` arrives: that `)` must turn it into a link (and an image), however
/// the text is split, in a paragraph, a list item and a quote.
#[test]
fn a_link_cut_by_a_line_break_becomes_a_link_at_its_closing_parenthesis() {
    for text in [
        "[\nx](u)\n\nr",
        "a [\n](u)\n\nr",
        "[a\nb](u)\n",
        "a [b\nc](u) d\n",
        "![\nx](u)\n",
        "[a](\nu)\n",
        "[a\nb](u (t))\n",
        "[a\n*b*](u)\n",
        "- [a\n  b](u)\n",
        "> [a\n> b](u)\n",
    ] {
        for step in 1..=4 {
            assert_streams_like_fresh(text, step);
        }
    }
}

/// The same for what ends a link while healing shows its destination's backtick as a code
/// span, and for a link reference definition whose label starts on an earlier line: the
/// definition disappears as it would at once, and a reference before it (which streaming
/// links only at `finish()`, see the crate's docs) is a link when the stream finishes.
#[test]
fn a_definition_or_a_destination_cut_by_a_line_break_renders_as_at_once() {
    for text in ["[a\n](u`x)\n", "[a](\nu`x)\n", "- [a\n  b](u`x)\n", "[\na]: u\n", "x\n\n[\na b]: u \"t\"\n"] {
        for step in 1..=4 {
            assert_streams_like_fresh(text, step);
        }
    }
    let opts = RenderOptions::default();
    for text in ["[a]\n\n[\na]: u\n", "[a]\n\n[\na]: u \"t\"\n", "[a b]\n\n[\na b]: u\n"] {
        for step in 1..=4 {
            let (a, one) = (stream(text, step, &opts).blocks(), render(text, &opts));
            assert!(a == one, "step {step}, finish of {text:?}:\n{}", blocks_diff(&a, &one));
        }
    }
}
