//! Linear time, measured on long answers (the answer fixtures repeated) appended in
//! 2-character pieces:
//!
//! - render work: `MarkdownRenderer::work` (bytes given to pulldown-cmark, to the healing
//!   scan and to the code highlighter, plus bytes taken by the parse-free fast paths)
//!   divided by the work of one `render` of the final text (its length);
//! - patch bytes: the JSON of every patch, divided by the JSON of the final blocks.
//!
//! `ratios_stay_flat_as_answers_grow`: both ratios must not grow with the answer's length
//! (a renderer that re-parses everything, or re-sends finished blocks, grows linearly in
//! these ratios). Repeating answers keeps every block short, so
//! `open_block_append_cost_stays_flat_as_the_block_grows` grows one open block instead (a
//! paragraph, a fenced code block, one code line, a list item, a paragraph and a list item
//! with `|` in their text, a table, each 2 KB and
//! 32 KB) and checks that the render work of an append does not grow with the length of the
//! block it lands in (a renderer that re-parses or re-highlights the open block on every
//! append grows linearly in it).
//! `definitions_cost_stays_flat_as_they_grow` streams thousands of link reference
//! definitions (render work counts the entries merged to keep them searchable): the work
//! per byte must not grow with their number, nor, in
//! `an_answer_of_only_definitions_costs_flat_work_per_byte`, when the answer holds nothing
//! else (no block ever becomes final there).
//! The absolute figures (time per append in JavaScriptCore and V8) are the benchmark's,
//! `bench/markdown.js`.

mod common;

use chunkwise_markdown::*;
use common::answers;

fn long_answer(bytes: usize) -> String {
    let mut s = String::new();
    'outer: loop {
        for (_, a) in answers() {
            s.push_str(&a);
            s.push('\n');
            if s.len() >= bytes {
                break 'outer;
            }
        }
    }
    s
}

struct Run {
    bytes: usize,
    appends: usize,
    work: f64,
    patches: f64,
}

fn run(text: &str) -> Run {
    let opts = RenderOptions::default();
    let mut r = MarkdownRenderer::new(opts.clone());
    let cuts: Vec<usize> = text.char_indices().map(|(i, _)| i).step_by(2).chain([text.len()]).collect();
    let mut patch_bytes = 0;
    let mut json = String::new();
    for w in cuts.windows(2) {
        let p = r.append(&text[w[0]..w[1]]);
        json.clear();
        p.write_json(&mut json);
        patch_bytes += json.len();
    }
    let p = r.finish();
    json.clear();
    p.write_json(&mut json);
    patch_bytes += json.len();
    let blocks = r.blocks();
    assert_eq!(blocks, render(text, &opts), "streamed render differs from one-shot");
    let mut fin = String::new();
    for b in &blocks {
        nodes::write_block_json(b, &mut fin);
    }
    Run {
        bytes: text.len(),
        appends: cuts.len() - 1,
        work: r.work() as f64 / text.len() as f64,
        patches: patch_bytes as f64 / fin.len() as f64,
    }
}

fn report(r: &Run) {
    println!(
        "{:>6} bytes, {:>6} appends of 2 chars: render work {:.2}x one-shot, patch JSON {:.2}x final JSON",
        r.bytes, r.appends, r.work, r.patches
    );
}

#[test]
fn ratios_stay_flat_as_answers_grow() {
    let small = run(&long_answer(5 * 1024));
    let large = run(&long_answer(40 * 1024));
    report(&small);
    report(&large);
    assert!(large.work <= small.work * 1.3, "render work grows with length: {:.2} -> {:.2}", small.work, large.work);
    assert!(
        large.patches <= small.patches * 1.3,
        "patch bytes grow with length: {:.2} -> {:.2}",
        small.patches,
        large.patches
    );
}

/// One open block of about `bytes` bytes, of the given kind, as an answer streams it: the
/// block is never closed before the end.
fn long_block(kind: &str, bytes: usize) -> String {
    let mut s = String::new();
    let mut i = 0;
    match kind {
        "paragraph" => {
            while s.len() < bytes {
                s.push_str(&format!(
                    "Sentence {i} has **bold words**, `code`, a [link](https://example.com/{i}) and _emphasis_; 流式渲染第{i}句，成本应与追加的文字成正比。 "
                ));
                i += 1;
            }
        }
        "code" => {
            s.push_str("```rust\n");
            while s.len() < bytes {
                s.push_str(&format!("    let value_{i} = compute(\"item {i}\", {i} * 2); // step {i}\n"));
                i += 1;
            }
        }
        "code line" => {
            // one line of words and member chains, no `;` `,` `(`: split points are the
            // spaces and dots
            s.push_str("```js\n");
            while s.len() < bytes {
                s.push_str(&format!("word{i} obj.field{i}.next   "));
                i += 1;
            }
        }
        "list item" => {
            s.push_str("1. ");
            while s.len() < bytes {
                s.push_str(&format!("Point {i} of one item, with *emphasis* and `x{i}`, 还有中文说明。 "));
                i += 1;
            }
        }
        "pipe paragraph" | "pipe list item" => {
            // `|` in code spans and in prose, outside any table
            if kind == "pipe list item" {
                s.push_str("- ");
            }
            while s.len() < bytes {
                s.push_str(&format!("the type `string | null` means it may be absent, a | b is {i}, "));
                i += 1;
            }
        }
        "table" => {
            s.push_str("| name | value | note |\n| --- | ---: | --- |\n");
            while s.len() < bytes {
                s.push_str(&format!("| row {i} | {i}.5 | **note** `{i}` 第{i}行 |\n"));
                i += 1;
            }
        }
        _ => unreachable!(),
    }
    s
}

/// Render work per appended byte over the last `tail` bytes of `text`, streamed 2
/// characters at a time: the cost of an append at that point of the block.
fn tail_work(text: &str, tail: usize) -> f64 {
    let opts = RenderOptions::default();
    let mut r = MarkdownRenderer::new(opts.clone());
    let cuts: Vec<usize> = text.char_indices().map(|(i, _)| i).step_by(2).chain([text.len()]).collect();
    let mut at_tail = None;
    for w in cuts.windows(2) {
        if at_tail.is_none() && w[0] + tail >= text.len() {
            at_tail = Some((w[0], r.work()));
        }
        r.append(&text[w[0]..w[1]]);
    }
    let (from, work_from) = at_tail.unwrap();
    let per_byte = (r.work() - work_from) as f64 / (text.len() - from) as f64;
    r.finish();
    assert_eq!(r.blocks(), render(text, &opts), "streamed render differs from one-shot");
    per_byte
}

#[test]
fn open_block_append_cost_stays_flat_as_the_block_grows() {
    for kind in ["paragraph", "code", "code line", "list item", "pipe paragraph", "pipe list item", "table"] {
        let short = tail_work(&long_block(kind, 2 * 1024), 1024);
        let long = tail_work(&long_block(kind, 32 * 1024), 1024);
        println!("{kind:>14}: render work per appended byte {short:.2} in a 2 KB block, {long:.2} in a 32 KB block");
        // Re-parsing the open block on every append would make the long case about 16×
        // the short one.
        assert!(
            long <= short * 1.5 + 1.0,
            "{kind}: an append costs more in a longer block: {short:.2} -> {long:.2} work per byte"
        );
    }
}

/// `n` link reference definitions, each label sorting before the ones already given (a
/// sorted list that inserts in place moves every entry on each one), with a reference to
/// an earlier definition after every 16th.
fn many_definitions(n: usize) -> String {
    let mut s = String::new();
    for i in 0..n {
        s.push_str(&format!("[d{:06}]: https://example.com/{i} \"t{i}\"\n", n - i));
        if i % 16 == 15 {
            s.push_str(&format!("\nSee [d{:06}].\n\n", n - i / 2));
        }
    }
    s
}

/// Render work per byte and seconds to stream `text` in `piece`-byte appends (the text
/// is ASCII).
fn stream_cost(text: &str, piece: usize) -> (f64, f64) {
    let opts = RenderOptions::default();
    let mut r = MarkdownRenderer::new(opts.clone());
    let t = std::time::Instant::now();
    for c in text.as_bytes().chunks(piece) {
        r.append(std::str::from_utf8(c).unwrap());
    }
    r.finish();
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(r.blocks(), render(text, &opts), "streamed render differs from one-shot");
    (r.work() as f64 / text.len() as f64, secs)
}

#[test]
fn definitions_cost_stays_flat_as_they_grow() {
    let (small, large) = (many_definitions(3000), many_definitions(12000));
    let (ws, ts) = stream_cost(&small, 64);
    let (wl, tl) = stream_cost(&large, 64);
    println!(
        "64-byte appends: 3000 definitions {ws:.2} work per byte ({:.0} ms), 12000 {wl:.2} ({:.0} ms)",
        ts * 1e3,
        tl * 1e3
    );
    // Keeping the definitions in one sorted list, each inserted in place, makes the large
    // case about 3× the small one here: its work per byte grows with their number.
    assert!(wl <= ws * 1.3, "definitions cost more as they grow: {ws:.2} -> {wl:.2} work per byte");
}

/// An answer made only of link reference definitions renders no block, so no block ever
/// becomes final: the definitions themselves must leave the open region once no later line
/// can change them, or every append re-parses them all.
#[test]
fn an_answer_of_only_definitions_costs_flat_work_per_byte() {
    let defs = |n: usize| -> String {
        (0..n).map(|i| format!("[d{i}]: https://example.com/{i}\n  \"title {i}\"\n\n[e{i}]:\n  /e{i} 'x'\n")).collect()
    };
    let (small, large) = (defs(100), defs(800));
    let (ws, _) = stream_cost(&small, 2);
    let (wl, _) = stream_cost(&large, 2);
    println!("2-byte appends, definitions only: 200 {ws:.2} work per byte, 1600 {wl:.2}");
    // Re-parsing the open region whole makes the large case about 8× the small one.
    assert!(wl <= ws * 1.3, "definitions alone cost more as they grow: {ws:.2} -> {wl:.2} work per byte");
}

/// A code block whose last line ends in one token of about `bytes` bytes, being typed.
fn long_token(kind: &str, bytes: usize) -> String {
    let (mut s, unit) = match kind {
        "identifier" => ("```js\nconst x = a".to_string(), "bc_de1"),
        "number" => ("```go\nx := 1".to_string(), "234567890"),
        "string" => ("```python\ns = \"a".to_string(), " 流式 b,c; "),
        "line comment" => ("```rust\nlet a = 1; // a".to_string(), " note: x(y) \"z\" "),
        "block comment" => ("```c\nint a; /* a".to_string(), " more; text 文字 "),
        "plain line" => ("```text\nlog: a".to_string(), " key=value, 中文 "),
        _ => unreachable!(),
    };
    while s.len() < bytes {
        s.push_str(unit);
    }
    s
}

/// Render work and patch JSON bytes per appended byte over the last `tail` bytes of
/// `text`, streamed 2 characters at a time.
fn tail_cost(text: &str, tail: usize) -> (f64, f64) {
    let opts = RenderOptions::default();
    let mut r = MarkdownRenderer::new(opts.clone());
    let cuts: Vec<usize> = text.char_indices().map(|(i, _)| i).step_by(2).chain([text.len()]).collect();
    let mut at_tail = None;
    let (mut json, mut bytes) = (String::new(), 0);
    for w in cuts.windows(2) {
        if at_tail.is_none() && w[0] + tail >= text.len() {
            at_tail = Some((w[0], r.work()));
            bytes = 0;
        }
        json.clear();
        r.append(&text[w[0]..w[1]]).write_json(&mut json);
        bytes += json.len();
    }
    let (from, work_from) = at_tail.unwrap();
    let n = (text.len() - from) as f64;
    let per_byte = ((r.work() - work_from) as f64 / n, bytes as f64 / n);
    r.finish();
    assert_eq!(r.blocks(), render(text, &opts), "streamed render differs from one-shot");
    per_byte
}

/// The token being typed at the end of a code line (an identifier, a number, a string, a
/// comment, a line in a block without a language) grows by what was appended: the work of
/// an append and the patch it sends (but for a line without a language, see below) do not
/// grow with the token, nor with the line (a
/// renderer that re-lexes the open token, or re-sends its text, on every append grows
/// linearly in it: about 16× from a 2 KB token to a 32 KB one).
#[test]
fn an_open_code_token_grows_by_what_was_appended() {
    for kind in ["identifier", "number", "string", "line comment", "block comment", "plain line"] {
        let (work_s, json_s) = tail_cost(&long_token(kind, 2 * 1024), 1024);
        let (work_l, json_l) = tail_cost(&long_token(kind, 32 * 1024), 1024);
        println!(
            "{kind:>13}: per appended byte, render work {work_s:.2} / {work_l:.2}, patch JSON {json_s:.1} / {json_l:.1} B (2 KB / 32 KB token)"
        );
        // each appended byte is taken once, by the fast path
        assert!(work_l <= 1.5, "{kind}: an append re-lexes the open token: {work_s:.2} -> {work_l:.2} work per byte");
        // a patch carries the token's last segment (64 bytes or fewer), not the token; a
        // line of a block without a language is one text node of the code element, whose
        // text is not segmented: it is sent whole, bounded by the line
        if kind == "plain line" {
            continue;
        }
        assert!(
            json_l <= json_s * 1.3 && json_l < 100.0,
            "{kind}: an append re-sends the open token: {json_s:.1} -> {json_l:.1} patch bytes per byte"
        );
    }
}

/// A `|` that ends a table cell, and the next cell's first text, are taken by the parse-free
/// path (`fast.rs`), each byte once: an append's render work is its length.
#[test]
fn a_table_cell_typed_costs_its_bytes() {
    let mut r = MarkdownRenderer::new(RenderOptions::default());
    r.append("| a | b | c | d | e | f | g |\n|---|---|---|---|---|---|---|\n| x");
    for piece in [" | yy", " |zz", "| w", " | 中文"] {
        let before = r.work();
        let patch = r.append(piece);
        assert!(!patch.blocks.is_empty(), "{piece:?} shows nothing");
        assert_eq!(r.work() - before, piece.len(), "{piece:?}");
    }
}

/// Text bytes a patch carries (its nodes' texts, at any depth): what an append copies out
/// of the tree for the page.
fn carried(p: &Patch) -> usize {
    fn text(n: &[Node]) -> usize {
        n.iter()
            .map(|n| match n {
                Node::Text(t) | Node::Html(t) => t.len(),
                Node::Element(e) => text(&e.children),
            })
            .sum()
    }
    p.blocks.iter().map(|b| text(&b.nodes)).sum()
}

/// Text bytes carried per appended byte over the last `tail` bytes of `text`, streamed 2
/// characters at a time and applied as a page applies patches.
fn tail_carried(text: &str, tail: usize) -> f64 {
    let opts = RenderOptions::default();
    let mut r = MarkdownRenderer::new(opts.clone());
    let mut page = Vec::new();
    let cuts: Vec<usize> = text.char_indices().map(|(i, _)| i).step_by(2).chain([text.len()]).collect();
    let (mut from, mut bytes) = (None, 0);
    for w in cuts.windows(2) {
        if from.is_none() && w[0] + tail >= text.len() {
            from = Some(w[0]);
        }
        let p = r.append(&text[w[0]..w[1]]);
        if from.is_some() {
            bytes += carried(&p);
        }
        common::apply(&mut page, &p);
    }
    common::apply(&mut page, &r.finish());
    assert_eq!(page, render(text, &opts), "streamed render applied as a page differs from one-shot");
    bytes as f64 / (text.len() - from.unwrap()) as f64
}

/// A paragraph that is one long text (prose without Markdown punctuation) grows by what was
/// appended: an append copies the text's last page segment (see `nodes::SEGMENT`) and what
/// was appended, not the text, and walks the segments from the last one (a renderer that
/// copies the open text node per append carries about 16× more in a 32 KB paragraph than
/// in a 2 KB one).
#[test]
fn a_long_text_run_grows_by_what_was_appended() {
    let para = |bytes: usize| {
        let mut s = String::new();
        let mut i = 0;
        while s.len() < bytes {
            s.push_str(&format!("sentence {i} goes on, 流式渲染第{i}句的成本与追加的文字成正比。 "));
            i += 1;
        }
        s
    };
    let short = tail_carried(&para(2 * 1024), 1024);
    let long = tail_carried(&para(32 * 1024), 1024);
    println!("one text run: text bytes carried per appended byte {short:.1} in 2 KB, {long:.1} in 32 KB");
    assert!(
        long <= short * 1.3 && long < 40.0,
        "an append copies the open text: {short:.1} -> {long:.1} bytes per byte"
    );
}

/// One table body row of about `bytes` bytes being typed (under a header as wide), each
/// cell holding Markdown punctuation (the parse-free path cannot take it), every other one
/// ending in an inline element.
fn wide_row(bytes: usize) -> String {
    let cells = bytes / 24;
    let mut s = "|".to_string() + &" h |".repeat(cells) + "\n|" + &" --- |".repeat(cells) + "\n|";
    for i in 0..cells {
        s.push_str(&if i % 2 == 0 { format!(" c{i} **b** `x` _y_ z |") } else { format!(" c{i} `x` _y_ **b** |") });
    }
    // (the row's last `|` ends it: the row is parsed once, as a whole, then)
    s.truncate(s.len() - 2);
    s
}

/// An append to a table row re-parses at most the open cell from its last checkpoint,
/// not the row: the render work of an append does not grow with the row (a renderer that
/// re-parses the row on each append grows linearly in it: about 16× from a 2 KB row to a
/// 32 KB one; here the row's first 1 KB against its last).
#[test]
fn a_wide_table_row_append_costs_flat_work() {
    let row = wide_row(32 * 1024);
    let first = &row[..row.rfind('\n').unwrap() + 1024];
    let short = tail_work(first, 1024);
    let long = tail_work(&row, 1024);
    println!("table row: render work per appended byte {short:.2} in its first 1 KB, {long:.2} in its last (of 32 KB)");
    assert!(long <= short * 1.5 + 1.0, "an append costs more in a wider row: {short:.2} -> {long:.2} work per byte");
}
