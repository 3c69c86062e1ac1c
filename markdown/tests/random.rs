//! Random Markdown-like texts built from syntax fragments, streamed in pieces of 1, 2 and 3
//! characters. At every prefix the incremental render must equal a fresh renderer given the
//! whole prefix at once, and after `finish()` the one-shot render. This is what keeps the
//! renderer's shortcuts (fast paths, suffix and restart parses, early finalization) honest.
//! (Link reference definitions are left out: a definition reaches across blocks, which the
//! streaming view documents as approximate until `finish()`; the spec test covers them.)

mod common;

use chunkwise_markdown::*;

const FRAGMENTS: &[&str] = &[
    "**",
    "*",
    "_",
    "`",
    "```",
    "```js\n",
    "~~~",
    "\n",
    "\n",
    "\n\n",
    "- ",
    "  - ",
    "1. ",
    "2) ",
    "# ",
    "## ",
    "> ",
    "| a | b |\n",
    "|---|:-:|\n",
    "| c |",
    "[x](http://u)",
    "[",
    "](",
    ")",
    "![i](p.png)",
    "text",
    " word",
    "中文",
    "，",
    " ",
    "    ",
    "\t",
    "$x^2$",
    "$",
    "~~",
    "<b>",
    "</b>",
    "&amp;",
    "&",
    "www.a.com",
    "a@b.cn",
    "\\",
    "---",
    "===",
    "[foo]",
    "- [ ] ",
    "- [x] ",
    "!",
    "<http://x.y>",
    "let x = 1;",
    "// c",
    "\"s\"",
    "}",
    // Unicode spaces are text, not blank lines or indentation (CommonMark 4.9)
    "\u{3000}",
    "\u{A0}",
    "\u{3000}\n",
    "\u{85}",
];

fn next(seed: &mut u64) -> u64 {
    // xorshift64*
    *seed ^= *seed >> 12;
    *seed ^= *seed << 25;
    *seed ^= *seed >> 27;
    seed.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

fn texts(seed: u64, cases: usize, max: usize) -> Vec<(usize, String, RenderOptions)> {
    let mut seed = seed;
    (0..cases)
        .map(|case| {
            let n = 4 + (next(&mut seed) % max as u64) as usize;
            let text: String = (0..n).map(|_| FRAGMENTS[(next(&mut seed) % FRAGMENTS.len() as u64) as usize]).collect();
            let opts = if case % 5 == 0 {
                RenderOptions { html: true, ..RenderOptions::default() }
            } else {
                RenderOptions::default()
            };
            (case, text, opts)
        })
        .collect()
}

fn stream(
    text: &str,
    step: usize,
    opts: &RenderOptions,
    mut each: impl FnMut(&MarkdownRenderer, &str),
) -> MarkdownRenderer {
    let mut r = MarkdownRenderer::new(opts.clone());
    let cuts: Vec<usize> = text.char_indices().map(|(i, _)| i).step_by(step).chain([text.len()]).collect();
    for w in cuts.windows(2) {
        r.append(&text[w[0]..w[1]]);
        each(&r, &text[..w[1]]);
    }
    r.finish();
    r
}

/// The hard guarantee: however the text is split, `finish()` gives the one-shot render.
#[test]
fn random_texts_finish_like_one_shot() {
    for (case, text, opts) in texts(0x1234_5678_9ABC_DEF1, 3000, 40) {
        let one = render(&text, &opts);
        for step in [1usize, 2, 3, 5] {
            let r = stream(&text, step, &opts, |_, _| {});
            let a = r.blocks();
            assert!(
                a == one,
                "case {case} step {step}: finish differs for {text:?}\n{}",
                common::blocks_diff(&a, &one)
            );
        }
    }
}

/// While streaming, the incremental render equals a fresh renderer given the prefix at
/// once, at every prefix. Counted over syntax soup; the report lists how many prefixes
/// differ (healing is a heuristic, and a fresh renderer heals a longer stretch at once, so
/// exotic mixes can show a different transient styling), and the test bounds that share.
#[test]
fn random_texts_stream_like_fresh_renders() {
    let (mut prefixes, mut differ) = (0usize, 0usize);
    let mut first = None;
    for (case, text, opts) in texts(0x9E37_79B9_7F4A_7C15, 400, 28) {
        for step in [1usize, 2, 3] {
            stream(&text, step, &opts, |r, prefix| {
                let mut fresh = MarkdownRenderer::new(opts.clone());
                fresh.append(prefix);
                // (the word being typed on a code line may show the class its start got)
                let (a, b) = (common::open_word_unclassed(&r.blocks()), common::open_word_unclassed(&fresh.blocks()));
                prefixes += 1;
                if a != b {
                    differ += 1;
                    first.get_or_insert_with(|| {
                        format!("case {case} step {step}: {prefix:?}\n{}", common::blocks_diff(&a, &b))
                    });
                }
            });
        }
    }
    println!("{differ} of {prefixes} streamed prefixes differ from a fresh render");
    if let Some(f) = &first {
        println!("first: {f}");
    }
    assert!(differ * 200 <= prefixes, "{differ} of {prefixes} prefixes differ; first: {first:?}");
}
