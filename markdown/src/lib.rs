//! Streaming Markdown to `<rich-text>` nodes, in linear time.
//!
//! Implements CommonMark 0.31.2 (<https://spec.commonmark.org/0.31.2/>) with the GFM
//! extensions tables, strikethrough, task list items and autolinks
//! (<https://github.github.com/gfm/>), plus `$…$`/`$$…$$` math shown as code. Parsing is
//! pulldown-cmark's; this module renders its events as rich-text nodes ([`nodes`], tag
//! mapping in `builder.rs`, autolinks in `autolink.rs`), keeps a streamed answer's render up
//! to date ([`MarkdownRenderer`]), heals the open block while it streams (`heal.rs`) and
//! highlights code (`highlight.rs`).
//!
//! # What it guarantees
//! - After [`MarkdownRenderer::finish`], the blocks equal [`render`] of the whole text, however
//!   the text was split into appends. Healing never applies to `finish`.
//! - While streaming, the blocks equal a fresh renderer's given the same text in one append
//!   (the incremental paths below change nothing), and healing never shows a character that
//!   a later append takes back (see `heal.rs`). `tests/stream.rs` checks both at
//!   every prefix of real answers; on random syntax soup (`tests/random.rs`) a few
//!   prefixes in ten thousand heal differently from a fresh render (a transient styling,
//!   never a different final result).
//! - Every [`Patch`] is what changed since the previous one: a page applying it with
//!   `setData` path keys ([`BlockPatch::write_set_data`]) holds exactly
//!   [`MarkdownRenderer::blocks`], and after `finish()` exactly the one-shot render (`tests/page.rs` applies every patch to
//!   page data through those keys, for every CommonMark and GFM example and real answers
//!   split every way). An append never sends a block that existed before it whole, unless
//!   Markdown changed what the block is (see below); a finished block is never sent again.
//! - Linear time: no part of the text is parsed a number of times that grows with the
//!   answer's length (`tests/linear.rs`).
//!
//! # How an append is rendered
//! The source is split into top-level blocks. A block is *final*, and never parsed again,
//! once a later top-level block has started and can no longer join it: its first line is
//! complete, or it is an ATX heading with text, or it follows a blank line and cannot
//! continue a list, or the block before is a heading, rule or code block. (A table is not
//! among those: it ends at a blank line or another block's start, GFM §4.10, so the line
//! after it may still become a row until that line is complete.) A link reference
//! definition before the first open block, which renders nothing, is final once its last
//! line and the next are complete and that next line cannot be its title. The *open
//! region* runs from the first non-final block (or definition) to the end. What Markdown
//! forces to stay open, and so may be re-parsed:
//! - the block before the last while the last one's first line is typed: `Foo\n---` may still
//!   be a setext heading, `- a\n\n` + ` -` may still be the same list;
//! - a list or block quote as long as it goes on: a blank line between two items makes every
//!   item loose (the whole list is re-rendered once then), lazy lines join the last paragraph;
//! - link reference definitions, which apply to links *before* them too: while streaming,
//!   links resolve against definitions in final blocks and in the open region; `finish()`
//!   re-renders the whole text once if the answer has any definition.
//!
//! An append takes the cheapest of these paths that is exact:
//! 1. *fast paths*, no parse: text without Markdown punctuation appended to the visible end
//!    of a paragraph, heading, list item, table cell or open code span extends its last text
//!    node; a `|` ending a table cell, and the next cell's first such text, leave the cell
//!    as shown and fill the next one, which was padding; stray markers and hidden ends (a
//!    link destination, a fence or table header line being typed, see `heal::Hidden`) that
//!    stay hidden change nothing; in an open fenced
//!    code block, text that only extends the token being typed (word characters after a
//!    word, what cannot end an open string or comment, anything on a line of a block without
//!    a language) grows that token's text node, and other text re-highlights the last line
//!    from the last split point (`fast.rs`);
//! 2. the *suffix* (`suffix.rs`): the last line of the open paragraph or list item, or the
//!    open table cell, from its last checkpoint (a point no later text on that line can
//!    change; a cell's start is one) is parsed alone;
//! 3. a *restart* at the innermost last list item or the last table row (`restart.rs`);
//! 4. the open region (`renderer.rs`), parsed as one text (`parse.rs`).
//!
//! Each path's result reaches the page through one step (`patch.rs`): the changed node list
//! is compared with the one sent, and the smallest change is sent. The fast paths that grow
//! a text node (most appends) skip that step: where the page holds the node is found once
//! and kept while it grows, and the wasm binding reads the grown text from the tree, with no
//! patch built (`renderer::Step::Grown`).
//!
//! # What an append costs
//! On the fast paths, what was appended plus what the page must be re-sent: a text node
//! grows by re-sending its text (setData replaces values, it cannot extend a string; the
//! patch is marked [`BlockPatch::grown`] and the page sets `….text` alone), and a paragraph's
//! text reaches the page as segments of [`nodes::SEGMENT`] bytes, so an append re-sends at
//! most one segment, and copies and walks the text from its last segment on only; the token being typed on a code line grows like a text node, and a
//! character that ends it re-highlights the line from its last split point and sends the
//! tokens that changed. While a word is typed its class is the one its start got (`con` may
//! become `const` or `console`): a streamed frame differs from a fresh render of the same
//! prefix in that word's class only, until a character that ends it arrives, and after
//! [`MarkdownRenderer::finish`] not at all. Markdown forces more in these places, each
//! bounded by the block it happens in:
//! - punctuation in a paragraph, list item or table cell: the suffix of the line from its
//!   last checkpoint is parsed, and the line healed, its scan resuming where the previous
//!   append's left off (`heal::Resume`), so a long line costs no more per append than a
//!   short one;
//! - a new list item or table row: that item or row is parsed (`restart.rs`), and so is a
//!   row when its last `|` arrives, or a `|` while healing shows a closer on the line;
//! - a block's first line right after another block (`Foo` + `\n---` may be a setext
//!   underline, a `|---|` line a table's delimiter row, `- a\n\n` + `- b` a list turning
//!   loose): the open region, that block and the one before, is parsed again, and a block
//!   that changes what it is (a paragraph becoming a heading or a table, a tight list becoming
//!   loose) is sent again, once;
//! - text that takes back nodes already shown (`developers.` + `w` joins the `.` to an
//!   autolink): the element holding them is sent again, since setData cannot shorten an array;
//! - link reference definitions: `finish()` renders the whole text once if there is one.
//!
//! # Links
//! rich-text has no `href` and no events, so a link is `a.md-a` styled text, and its URL goes
//! to the page in [`BlockPatch::links`]: the block's link and image URLs, sent once, when the
//! block becomes final (or at `finish`). A page can offer them for copying, e.g. on a long
//! press of the block. A link destination is hidden while it is typed: no partial URL ever
//! reaches the page.
//!
//! # Example
//! ```
//! use chunkwise_markdown::*;
//! let mut r = MarkdownRenderer::new(RenderOptions::default());
//! let p = r.append("Hello **wor");
//! assert_eq!(p.count, 1);
//! let mut json = String::new();
//! p.write_json(&mut json); // healed: "wor" is already bold
//! assert!(json.contains("md-strong"));
//! r.append("ld**\n\n- item");
//! let last = r.finish();
//! assert_eq!(last.count, 2);
//! assert_eq!(r.blocks(), render("Hello **world**\n\n- item", &RenderOptions::default()));
//! ```

// (the module's allocator: only where it is sound, see its doc; its unit tests run anywhere)
#[cfg(any(
    test,
    all(feature = "wasm-allocator", target_arch = "wasm32", target_os = "unknown", not(target_feature = "atomics"))
))]
mod allocator;
mod autolink;
mod builder;
mod fast;
mod heal;
mod highlight;
pub mod nodes;
mod parse;
mod patch;
mod renderer;
mod restart;
mod suffix;
#[cfg(target_arch = "wasm32")]
mod wasm;

pub use nodes::{Element, Link, Node};
pub use patch::{BlockPatch, Patch, TextChange};
pub use renderer::MarkdownRenderer;

/// Rendering options.
#[derive(Clone, Debug)]
pub struct RenderOptions {
    /// Prefix of every class name (`md-` gives `md-p`, `md-kw`, …). The theme files use `md-`.
    pub class_prefix: String,
    /// Highlight fenced code blocks whose language is known. Default `true`.
    pub highlight: bool,
    /// Pass raw HTML through (a block holding some becomes an HTML string, which rich-text
    /// sanitizes). Default `false`: raw HTML is shown as text, as chat sites do. Not in a
    /// wasm32 build, whose binding has no such option (the module's size limit leaves it out).
    pub html: bool,
    /// GFM autolinks for bare `www.`, `https://` and email addresses. Default `true`.
    pub autolink: bool,
}

impl RenderOptions {
    pub(crate) fn raw_html(&self) -> bool {
        self.html && !cfg!(target_arch = "wasm32")
    }
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions { class_prefix: "md-".to_string(), highlight: true, html: false, autolink: true }
    }
}

/// Renders a whole text at once: the nodes of each top-level block.
pub fn render(text: &str, options: &RenderOptions) -> Vec<Vec<Node>> {
    parse::parse(text, text.len(), options, &parse::Defs::new()).blocks.into_iter().map(|b| b.nodes).collect()
}

/// Counts the allocations a closure makes on this thread (unit tests only).
#[cfg(test)]
pub(crate) mod alloc_count {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    thread_local!(static N: Cell<usize> = const { Cell::new(0) });

    struct Counting;

    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, l: Layout) -> *mut u8 {
            let _ = N.try_with(|n| n.set(n.get() + 1));
            unsafe { System.alloc(l) }
        }
        unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
            unsafe { System.dealloc(p, l) }
        }
    }

    #[global_allocator]
    static A: Counting = Counting;

    pub(crate) fn allocations(f: impl FnOnce()) -> usize {
        let before = N.with(Cell::get);
        f();
        N.with(Cell::get) - before
    }
}
