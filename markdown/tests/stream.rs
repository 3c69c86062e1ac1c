//! Streaming over realistic LLM answers (`tests/fixtures/markdown_answers/*.md`, Chinese and English,
//! with nested lists, tables, code, quotes, emphasis, links, task lists and math).
//!
//! At every prefix (one character at a time):
//! - the incremental render equals a fresh renderer given the whole prefix at once (the fast
//!   paths and block finalization change nothing), but for the class of the word being typed
//!   at the end of a code line (see `common::open_word_unclassed`);
//! - the page's copy, built only from patches, equals the renderer's blocks;
//! - no stray marker (`*`, `~~`, `` ` ``, `[`, `](`, `$`) is visible outside code;
//! - visible text only grows: each prefix's visible text (whitespace aside) is a prefix of
//!   the next one's, so nothing shown is ever taken back.
//!
//! After `finish()` the blocks equal a one-shot render.

mod common;

use chunkwise_markdown::nodes;
use chunkwise_markdown::*;
use common::{answers, apply, first_diff, open_word_unclassed, prose_text, visible};

const STRAYS: [&str; 6] = ["*", "~~", "`", "[", "](", "$"];

fn tail(s: &str) -> &str {
    let mut i = s.len().saturating_sub(60);
    while !s.is_char_boundary(i) {
        i += 1;
    }
    &s[i..]
}

fn prose(blocks: &[Vec<Node>]) -> String {
    let mut s = String::new();
    for b in blocks {
        prose_text(b, &mut s);
    }
    s
}

#[test]
fn every_prefix_is_healed_monotone_and_consistent() {
    let opts = RenderOptions::default();
    for (name, text) in answers() {
        let final_blocks = render(&text, &opts);
        let final_prose = prose(&final_blocks);
        for s in STRAYS {
            assert!(!final_prose.contains(s), "{name}: fixture shows {s:?} in its final prose");
        }
        let mut r = MarkdownRenderer::new(opts.clone());
        let mut page = Vec::new();
        let mut shown = String::new();
        for (i, ch) in text.char_indices() {
            let end = i + ch.len_utf8();
            let patch = r.append(&text[i..end]);
            apply(&mut page, &patch);
            let blocks = r.blocks();
            assert_eq!(page, blocks, "{name}: page differs from renderer after {end} bytes");
            let mut fresh = MarkdownRenderer::new(opts.clone());
            fresh.append(&text[..end]);
            // (the word being typed on a code line may show the class its start got)
            let want = open_word_unclassed(&fresh.blocks());
            if open_word_unclassed(&blocks) != want {
                let k = (0..blocks.len().max(want.len())).find(|&k| blocks.get(k) != want.get(k)).unwrap();
                panic!(
                    "{name}: incremental differs from full healed render at {end} bytes ({:?}), block {k}: {}",
                    tail(&text[..end]),
                    first_diff(blocks.get(k).map_or(&[][..], |b| &b[..]), want.get(k).map_or(&[][..], |b| &b[..]))
                );
            }
            let p = prose(&blocks);
            for s in STRAYS {
                assert!(!p.contains(s), "{name}: stray {s:?} visible at {end} bytes: {:?}", tail(&text[..end]));
            }
            let now = visible(&blocks);
            assert!(
                now.starts_with(&shown),
                "{name}: text taken back at {end} bytes:\nbefore {shown:?}\nnow    {now:?}"
            );
            shown = now;
        }
        let patch = r.finish();
        apply(&mut page, &patch);
        assert_eq!(r.blocks(), final_blocks, "{name}: finish differs from one-shot");
        assert_eq!(page, final_blocks, "{name}: page differs after finish");
        assert!(final_blocks.len() > 5, "{name}: fixture too small");
    }
}

#[test]
fn any_split_gives_the_one_shot_render() {
    let opts = RenderOptions::default();
    for (name, text) in answers() {
        let one = render(&text, &opts);
        for step in [2, 5, 17, 64] {
            let r = common::stream(&text, step, &opts);
            assert_eq!(r.blocks(), one, "{name} step {step}");
        }
    }
}

#[test]
fn healing_examples() {
    let opts = RenderOptions::default();
    let html = |src: &str| {
        let mut r = MarkdownRenderer::new(opts.clone());
        r.append(src);
        r.blocks().iter().flatten().map(Node::to_html).collect::<String>()
    };
    assert_eq!(html("Hello **wor"), r#"<p class="md-p">Hello <strong class="md-strong">wor</strong></p>"#);
    assert_eq!(html("a *b"), r#"<p class="md-p">a <em class="md-em">b</em></p>"#);
    assert_eq!(html("a ~~gone"), r#"<p class="md-p">a <del class="md-del">gone</del></p>"#);
    assert_eq!(html("run `npm i"), r#"<p class="md-p">run <code class="md-code">npm i</code></p>"#);
    assert_eq!(html("see [the docs](https://exa"), r#"<p class="md-p">see <a class="md-a" href="">the docs</a></p>"#);
    assert_eq!(html("see [the do"), r#"<p class="md-p">see <a class="md-a" href="">the do</a></p>"#);
    assert_eq!(html("x [a]("), r#"<p class="md-p">x <a class="md-a" href="">a</a></p>"#);
    for edge in ["x *", "x **", "x `", "x ~~", "x [", "x ![a](ht", "x !", "x &am", "x <http"] {
        assert_eq!(html(edge), r#"<p class="md-p">x</p>"#, "{edge:?}");
    }
    assert_eq!(
        html("```js\nlet a"),
        r#"<pre class="md-pre"><code class="md-pre-code md-lang-js"><span class="md-ln"><span class="md-kw">let</span> a</span></code></pre>"#
    );
    // a table appears only with its delimiter row
    assert_eq!(html("| a | b |\n"), "");
    assert_eq!(html("| a | b |\n| --- | -"), "");
    assert!(html("| a | b |\n| --- | --- |\n").contains("<table"));
    // a line that may still become a setext underline or list item is held back
    assert_eq!(html("Title\n-"), r#"<p class="md-p">Title</p>"#);
}

#[test]
fn json_and_set_data() {
    let opts = RenderOptions::default();
    let blocks = render("hi & <b>bye</b>", &opts);
    let mut j = String::new();
    nodes::write_block_json(&blocks[0], &mut j);
    assert_eq!(
        j,
        r#"[{"name":"p","attrs":{"class":"md-p"},"children":[{"type":"text","text":"hi &amp; <b>bye</b>"}]}]"#
    );
    // with raw HTML allowed, a block holding some is one HTML string (rich-text parses it)
    let blocks = render("hi <b>bye</b>", &RenderOptions { html: true, ..RenderOptions::default() });
    let mut j = String::new();
    nodes::write_block_json(&blocks[0], &mut j);
    assert_eq!(j, r#""<p class=\"md-p\">hi <b>bye</b></p>""#);

    let mut r = MarkdownRenderer::new(opts.clone());
    let p = r.append("# Title");
    let mut j = String::new();
    p.blocks[0].write_set_data("msgs[3].blocks", &mut j);
    assert_eq!(
        j,
        r#""msgs[3].blocks[0]":[{"name":"h1","attrs":{"class":"md-h1"},"children":[{"type":"text","text":"Title"}]}]"#
    );
    let p = r.append(" 2");
    let mut j = String::new();
    p.blocks[0].write_set_data("msgs[3].blocks", &mut j);
    // a text node the page holds that grew: its text alone
    assert_eq!(j, r#""msgs[3].blocks[0][0].children[0].text":"Title 2""#);
    let mut j = String::new();
    p.write_json(&mut j);
    assert_eq!(
        j,
        r#"{"blocks":[{"index":0,"path":[0],"start":0,"nodes":[{"type":"text","text":"Title 2"}],"grown":true}],"count":1}"#
    );

    // link URLs reach the page once, when their block is final
    let p = r.append("\n\nSee [docs](</a b>) and www.example.org.");
    assert!(p.blocks.iter().all(|b| b.links.is_none()));
    // a paragraph after a blank line cannot join the one before: that one is final now
    let p = r.append("\n\nNext");
    let links: Vec<_> = p.blocks.iter().filter_map(|b| b.links.clone()).collect();
    assert_eq!(links, vec![vec!["/a%20b".to_string(), "http://www.example.org".to_string()]]);
}

/// A code line is re-highlighted from its last split point only (`highlight.rs`): lines
/// whose tokens depend on what follows a space, a `.` or a separator (an identifier before
/// `(`, a number's `.`, `#` after `;`, openers of
/// two or three characters), typed one character at a time, at every prefix equal a fresh
/// render of that prefix, and the page built from the patches equals the renderer's blocks.
#[test]
fn code_lines_typed_equal_a_fresh_render_at_every_prefix() {
    let code = [
        ("js", "const a = foo (1) . bar  (x, 1.5, .5, a.b.c(2)) // done\nlet s = 'x y' + `t ${u}` /* c */ / 2;\n"),
        ("js", "if (a) { wx . request ( { url: u } ) } else b.c .d( 3. 4 );\nx = y /z/ w\n"),
        ("python", "def f(x): return x.y (1) ;# no\nx = 1 # yes\ns = \"\"\" a\n b \"\"\" + ''' c ''' \n"),
        ("rust", "fn f<'a, T>(x: &'a str, y: T) -> &'a str { let c = 'c'; x }\nlet s = \"a b\"; // x\n"),
        ("c", "#include <stdio.h>\nint main ( void ) { printf (\"%d\\n\", 1.0e3); return 0; } /* x */\n"),
        ("sql", "SELECT a . b, COUNT (*) FROM t WHERE x = 'y z' -- c\n"),
        ("html", "<div class=\"a b\"> <!-- c d --> <span id='x'>t</span></div>\n"),
        ("bash", "echo ${HOME} $PATH && ls -la . # list\n"),
        ("go", "func (s *S) F ( a int ) error { return fmt . Errorf (\"x\") }\n"),
    ];
    let opts = RenderOptions::default();
    for (lang, body) in code {
        let text = format!("```{lang}\n{body}{body}```\n\nafter\n");
        let mut r = MarkdownRenderer::new(opts.clone());
        let mut page = Vec::new();
        for (i, ch) in text.char_indices() {
            let end = i + ch.len_utf8();
            apply(&mut page, &r.append(&text[i..end]));
            let mut fresh = MarkdownRenderer::new(opts.clone());
            fresh.append(&text[..end]);
            assert_eq!(
                open_word_unclassed(&r.blocks()),
                open_word_unclassed(&fresh.blocks()),
                "{lang}: differs from a fresh render at {:?}",
                &text[..end]
            );
            assert_eq!(page, r.blocks(), "{lang}: page differs at {:?}", &text[..end]);
        }
        apply(&mut page, &r.finish());
        assert_eq!(page, render(&text, &opts), "{lang}: page differs after finish");
    }
}

/// Table body rows typed one and two characters at a time: a `|` that ends a cell and the
/// first text of the next one take the parse-free path (`fast.rs`) when nothing else can
/// change, punctuation in a cell re-parses the cell from its checkpoint (`suffix.rs`);
/// escaped pipes, pipes in code spans, cells past the header's width, empty cells, bare
/// URLs and trailing spaces fall back to a parse. At every prefix the render equals a fresh
/// one and the page built from the patches equals the renderer's blocks.
#[test]
fn table_rows_typed_equal_a_fresh_render_at_every_prefix() {
    let table = "| name | value | note |\n| :--- | ---: | :-: |\n\
        | a | 1 | plain text here |\n\
        |b|2|x|\n\
        | c  \\| d | 3 |  spaced   |\n\
        | e | | f |\n\
        | g | 4 | 5 | beyond | width |\n\
        | `h` | **i** | www.example.com |\n\
        | 中文 | 单元格 | 第三列 |  \n\
        | k **l** _m_ `n` o | p [q](https://e.com) r\\* s | t ~~u~~ v **w |\n\
        | x *y* z\\| w | `a|b` c | d <e> f & g \\|\n\
        | 1 **2** 3 | 4 ** 5 | 6 * 7 * 8 | 9 |\n\
        | q **r** s | t _u_ v\n\
        | j\n\nafter\n";
    // (tables in a list item and a block quote: cell checkpoints at deeper paths)
    let nested = "- item\n\n  | h | i |\n  | - | - |\n  | a **b** c | d `e` f |\n  | g _h_ | i |\n\n\
        > | q | r |\n> | - | - |\n> | s **t** u | v *w* x |\n";
    let opts = RenderOptions::default();
    for (table, step) in [(table, 1), (table, 2), (nested, 1), (nested, 2)] {
        let mut r = MarkdownRenderer::new(opts.clone());
        let mut page = Vec::new();
        let cuts: Vec<usize> = table.char_indices().map(|(i, _)| i).step_by(step).chain([table.len()]).collect();
        for w in cuts.windows(2) {
            apply(&mut page, &r.append(&table[w[0]..w[1]]));
            let mut fresh = MarkdownRenderer::new(opts.clone());
            fresh.append(&table[..w[1]]);
            assert_eq!(r.blocks(), fresh.blocks(), "step {step}: differs from a fresh render at {:?}", &table[..w[1]]);
            assert_eq!(page, r.blocks(), "step {step}: page differs at {:?}", &table[..w[1]]);
        }
        apply(&mut page, &r.finish());
        assert_eq!(page, render(table, &opts), "step {step}: page differs after finish");
    }
}

/// The token being typed at the end of a code line grows without a lex (`fast.rs`) until a
/// character that can end it arrives: identifiers that become keywords, types or function
/// names at a separator, strings with escapes whose closing quote lands anywhere in an
/// append, comments to the end of the line, numbers, multi-byte characters inside strings,
/// CRLF line ends, lines inside a multi-line string or block comment, and a block without a
/// language. Typed 1, 2 and 3 characters at a time, every frame equals a fresh render of its
/// prefix but for the class of the word being typed, the page built from the patches equals
/// the renderer's blocks, and after `finish()` the page equals a one-shot render.
#[test]
fn open_code_tokens_typed_in_any_pieces() {
    let code = [
        ("js", "const console = cons; constant(x); if (a instanceof B) return typeof c\n"),
        ("js", "s = \"a\\\"b\\\\\" + 'c\\'d' + \"流式渲染\" + `多行\n模板 ${x} 串\n还有` + 1\n"),
        ("js", "x = 12.5e3 + 0x1F + 7_000 // 注释 to the end, \"quotes\" and `ticks`\n/* block\n  comment * / */ y\n"),
        ("python", "def f(self):\n    return \"\"\"doc\n  \"quoted\" line\n\"\"\" + 'x' # done\n"),
        ("rust", "let s: String = \"esc \\\" q\"; let n = 1u8; println!(\"{}\", s);\r\nlet t = 'c';\r\n"),
        ("go", "func main() { fmt.Println(\"中文\", 3.14) } // 注释\n"),
        ("text", "plain text, no language: 中文 and \"quotes\" // not a comment\n"),
    ];
    let opts = RenderOptions::default();
    for (lang, body) in code {
        let text = format!("```{lang}\n{body}{body}```\n\nafter\n");
        for step in [1, 2, 3] {
            let mut r = MarkdownRenderer::new(opts.clone());
            let mut page = Vec::new();
            let cuts: Vec<usize> = text.char_indices().map(|(i, _)| i).step_by(step).chain([text.len()]).collect();
            for w in cuts.windows(2) {
                let prefix = &text[..w[1]];
                apply(&mut page, &r.append(&text[w[0]..w[1]]));
                let mut fresh = MarkdownRenderer::new(opts.clone());
                fresh.append(prefix);
                assert_eq!(
                    open_word_unclassed(&r.blocks()),
                    open_word_unclassed(&fresh.blocks()),
                    "{lang} step {step}: differs from a fresh render at {prefix:?}"
                );
                assert_eq!(page, r.blocks(), "{lang} step {step}: page differs at {prefix:?}");
            }
            apply(&mut page, &r.finish());
            assert_eq!(page, render(&text, &opts), "{lang} step {step}: page differs after finish");
        }
    }
}

/// Streams `text` in pieces of `steps[i % len]` characters, checking that each prefix renders
/// as a fresh renderer given it at once, and returns the page built from the patches after
/// `finish()`.
fn page_after_finish(text: &str, steps: &[usize], opts: &RenderOptions) -> Vec<Vec<Node>> {
    let mut r = MarkdownRenderer::new(opts.clone());
    let mut page = Vec::new();
    let chars: Vec<usize> = text.char_indices().map(|(i, _)| i).chain([text.len()]).collect();
    let (mut i, mut k) = (0, 0);
    while i + 1 < chars.len() {
        let j = (i + steps[k % steps.len()]).min(chars.len() - 1);
        apply(&mut page, &r.append(&text[chars[i]..chars[j]]));
        let mut fresh = MarkdownRenderer::new(opts.clone());
        fresh.append(&text[..chars[j]]);
        assert!(r.blocks() == fresh.blocks(), "{steps:?}: differs from a fresh render at {:?}", &text[..chars[j]]);
        (i, k) = (j, k + 1);
    }
    apply(&mut page, &r.finish());
    page
}

/// A table stays open while the line after it may still become one of its rows (GFM 0.29
/// §4.10: a table ends at the first blank line or the start of another block): `|\` is a
/// paragraph after a table, `|\|` a row again; `|  *` is a row once its line ends; `-|-&`
/// is no delimiter row, nor is `-|-` while the `&` is hidden. Tables typed 1 to 3 characters
/// at a time (seeded, bounded) render every prefix as a fresh renderer does and end, after
/// `finish()`, as the page a one-shot render gives.
#[test]
fn tables_typed_in_pieces_finish_like_one_shot() {
    let opts = RenderOptions::default();
    for text in ["| h0 |\n|---|\n|\\|\n", "| h0 |\n|:-:|\n|  *\n", "| a | b |\n|---|---|\n|\\|\n\nx\n", "|\n||-\n-|-&"]
    {
        for step in [1, 2, 3] {
            assert_eq!(page_after_finish(text, &[step], &opts), render(text, &opts), "step {step}: {text:?}");
        }
    }
    const CELL: [&str; 14] = ["a", "中", " ", "  ", "\\", "\\|", "*", "**", "`", "_", "x y", "-", ":", "1"];
    const AFTER: [&str; 7] = ["", "\n", "\nafter\n", "# h\n", "- i\n", "> q\n", "|\n"];
    let mut seed = 0x5DEE_CE66_D1CE_4E5Bu64;
    let mut next = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    for case in 0..3000 {
        let cols = 1 + next(3);
        let mut text = String::new();
        for c in 0..cols {
            text += if c == 0 { "| h" } else { " | h" };
        }
        text += " |\n|";
        for _ in 0..cols {
            text += [":-:|", "---|", ":--|", "--:|"][next(4)];
        }
        text += "\n";
        for _ in 0..1 + next(3) {
            if next(2) == 0 {
                text += "|";
            }
            for _ in 0..next(5) {
                text += CELL[next(CELL.len())];
                if next(2) == 0 {
                    text += "|";
                }
            }
            if next(4) > 0 {
                text += "\n";
            }
        }
        text += AFTER[next(AFTER.len())];
        let steps: Vec<usize> = (0..8).map(|_| 1 + next(3)).collect();
        let one = render(&text, &opts);
        let page = page_after_finish(&text, &steps, &opts);
        assert!(page == one, "case {case} steps {steps:?}: {text:?}\n{}", common::blocks_diff(&page, &one));
    }
}
