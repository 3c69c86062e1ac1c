//! Streaming Markdown to `<rich-text>` nodes, in linear time.
//!
//! Implements CommonMark 0.31.2 (<https://spec.commonmark.org/0.31.2/>) with the GFM
//! extensions tables, strikethrough, task list items and autolinks
//! (<https://github.github.com/gfm/>), plus `$…$`/`$$…$$` math shown as code. Parsing is
//! pulldown-cmark's; this module renders its events as rich-text nodes
//! ([`nodes`], tag mapping in `build.rs`), keeps a streamed answer's render up to date
//! ([`MarkdownRenderer`]), heals the open block while it streams (`heal.rs`) and highlights
//! code (`highlight.rs`).
//!
//! # What it guarantees
//! - After [`MarkdownRenderer::finish`], the blocks equal [`render`] of the whole text, however
//!   the text was split into appends. Healing never applies to `finish`.
//! - While streaming, the blocks equal a fresh renderer's given the same text in one append
//!   (the incremental paths below change nothing), and healing never shows a character that
//!   a later append takes back (see `heal.rs`). `tests/markdown_stream.rs` checks both at
//!   every prefix of real answers; on random syntax soup (`tests/markdown_random.rs`) a few
//!   prefixes in ten thousand heal differently from a fresh render (a transient styling,
//!   never a different final result).
//! - Every [`Patch`] is what changed since the previous one: a page applying it with
//!   `setData` path keys ([`BlockPatch::write_set_data`]) holds exactly [`MarkdownRenderer::blocks`].
//! - Linear time: no part of the text is parsed a number of times that grows with the
//!   answer's length (`tests/markdown_linear.rs`).
//!
//! # How an append is rendered
//! The source is split into top-level blocks. A block is *final*, and never parsed again,
//! once a later top-level block has started and can no longer join it: its first line is
//! complete, or it is an ATX heading with text, or it follows a blank line and cannot
//! continue a list, or the block before is a heading, rule, code block or table. The
//! *open region* runs from the first non-final block to the end. What Markdown forces to
//! stay open, and so may be re-parsed:
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
//!    node; stray markers and hidden ends (a link destination, a fence or table header line
//!    being typed, see `heal::Hidden`) that stay hidden change nothing; text appended to an
//!    open fenced code block re-highlights its last line from the last split point;
//! 2. the *suffix*: the last line of the open paragraph or list item from its last
//!    checkpoint (a point no later text on that line can change) is parsed alone;
//! 3. a *restart* at the innermost last list item or the last table row (`restart.rs`);
//! 4. the open region.
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
//! use chunkwise::markdown::*;
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

mod build;
mod heal;
mod highlight;
pub mod nodes;
mod restart;

use std::collections::HashMap;

use pulldown_cmark::{BrokenLink, CowStr, Options, Parser};

use build::{Block, Builder, Edge};
pub use nodes::{Element, Link, Node};

/// Rendering options.
#[derive(Clone, Debug)]
pub struct RenderOptions {
    /// Prefix of every class name (`md-` gives `md-p`, `md-kw`, …). The theme files use `md-`.
    pub class_prefix: String,
    /// Highlight fenced code blocks whose language is known. Default `true`.
    pub highlight: bool,
    /// Pass raw HTML through (a block holding some becomes an HTML string, which rich-text
    /// sanitizes). Default `false`: raw HTML is shown as text, as chat sites do.
    pub html: bool,
    /// GFM autolinks for bare `www.`, `https://` and email addresses. Default `true`.
    pub autolink: bool,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions { class_prefix: "md-".to_string(), highlight: true, html: false, autolink: true }
    }
}

fn parser_options() -> Options {
    Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS | Options::ENABLE_MATH
}

/// The changes of one [`MarkdownRenderer::append`] or [`MarkdownRenderer::finish`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Patch {
    /// Changed blocks, in index order (usually one: the last).
    pub blocks: Vec<BlockPatch>,
    /// The number of blocks now. Blocks at `count` and after no longer exist.
    pub count: usize,
}

/// A change to one top-level block: in the node array reached by `path`, the children from
/// `start` on become `nodes`.
///
/// `path` lists child indices from the block's node array down to an element (empty: the
/// block's own array). A patch never shortens an array, except the whole-block form
/// (`path` empty, `start` 0), which replaces the block outright.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockPatch {
    /// Index of the top-level block.
    pub index: usize,
    /// Child-index path to the element whose children change.
    pub path: Vec<usize>,
    /// First child replaced.
    pub start: usize,
    /// The new children from `start` on.
    pub nodes: Vec<Node>,
    /// The block's link and image URLs in order, sent once when the block becomes final
    /// (or at `finish`), if it has any. rich-text carries no `href`: a page lists these for
    /// copying, e.g. on long press of the block.
    pub links: Option<Vec<String>>,
}

impl BlockPatch {
    /// Whether this patch replaces the whole block.
    pub fn is_whole(&self) -> bool {
        self.path.is_empty() && self.start == 0
    }

    /// Appends the `setData` entries of this patch's nodes, `"key":value` pairs separated
    /// by commas (nothing when no node changed), for a page whose blocks live at `prefix`
    /// (e.g. `msgs[3].blocks`): `"msgs[3].blocks[7]":[…]` for a whole block, otherwise one
    /// entry per new child, `"msgs[3].blocks[7][0].children[2]":{…}`.
    pub fn write_set_data(&self, prefix: &str, out: &mut String) {
        use std::fmt::Write as _;
        let mut key = format!("{prefix}[{}]", self.index);
        if self.is_whole() {
            nodes::json_string(&key, false, out);
            out.push(':');
            nodes::write_block_json(&self.nodes, out);
        } else {
            for (d, i) in self.path.iter().enumerate() {
                let _ = write!(key, "{}[{i}]", if d == 0 { "" } else { ".children" });
            }
            let base = if self.path.is_empty() { key.clone() } else { format!("{key}.children") };
            for (j, n) in self.nodes.iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                nodes::json_string(&format!("{base}[{}]", self.start + j), false, out);
                out.push(':');
                n.write_json(out);
            }
        }
    }

    /// Appends this patch as JSON:
    /// `{"index":7,"path":[0],"start":2,"nodes":[…],"links":["https://…"]}`
    /// (`links` only when the block became final with links). `nodes` is an HTML string for a whole block
    /// holding raw HTML.
    pub fn write_json(&self, out: &mut String) {
        use std::fmt::Write as _;
        let _ = write!(out, "{{\"index\":{},\"path\":[", self.index);
        for (i, p) in self.path.iter().enumerate() {
            let _ = write!(out, "{}{p}", if i > 0 { "," } else { "" });
        }
        let _ = write!(out, "],\"start\":{},\"nodes\":", self.start);
        if self.is_whole() {
            nodes::write_block_json(&self.nodes, out);
        } else {
            nodes::write_json_array(&self.nodes, out);
        }
        if let Some(links) = &self.links {
            out.push_str(",\"links\":[");
            for (i, l) in links.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                nodes::json_string(l, false, out);
            }
            out.push(']');
        }
        out.push('}');
    }
}

impl Patch {
    /// Appends the patch as JSON: `{"blocks":[…],"count":12}`.
    pub fn write_json(&self, out: &mut String) {
        out.push_str("{\"blocks\":[");
        for (i, b) in self.blocks.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            b.write_json(out);
        }
        out.push_str("],\"count\":");
        out.push_str(&self.count.to_string());
        out.push('}');
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }
}

/// Renders a whole text at once: the nodes of each top-level block.
pub fn render(text: &str, options: &RenderOptions) -> Vec<Vec<Node>> {
    parse(text, text.len(), options, &HashMap::new()).blocks.into_iter().map(|b| b.nodes).collect()
}

/// Link reference definitions: normalized label → (destination, title).
type Defs = HashMap<String, (String, String)>;

fn normalize_label(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ").to_ascii_lowercase()
}

/// What one parse gives.
struct Parsed {
    blocks: Vec<Block>,
    edge: Edge,
    /// Reference definitions found: (label, end offset, destination, title).
    defs: Vec<(String, usize, String, String)>,
    /// List items and table rows of the last block: (path, source offset).
    marks: Vec<build::Mark>,
}

/// Parses `src` (text past `limit` is synthetic) into blocks.
fn parse(src: &str, limit: usize, opts: &RenderOptions, defs: &Defs) -> Parsed {
    let callback = |link: BrokenLink<'_>| {
        defs.get(&normalize_label(&link.reference)).map(|(d, t)| (CowStr::from(d.clone()), CowStr::from(t.clone())))
    };
    let parser = Parser::new_with_broken_link_callback(src, parser_options(), Some(callback));
    let found: Vec<_> = parser
        .reference_definitions()
        .iter()
        .map(|(label, d)| {
            (normalize_label(label), d.span.end, d.dest.to_string(), d.title.as_deref().unwrap_or("").to_string())
        })
        .collect();
    let mut b = Builder::new(opts, src, limit);
    for (ev, range) in parser.into_offset_iter() {
        b.event(ev, range);
    }
    let (blocks, edge, marks) = b.finish();
    Parsed { blocks, edge, defs: found, marks }
}

/// What an append can do without parsing.
#[derive(Debug, Clone)]
enum Fast {
    None,
    /// Extend the text node at `path` in the last block; `ws` is trailing whitespace not
    /// shown yet (a paragraph's trailing spaces are stripped). `span`: the text is an open
    /// code span's.
    Text {
        path: Vec<usize>,
        ws: String,
        span: bool,
        /// No healing closer is in effect.
        clean: bool,
        /// Healing's scan sees the end inside a code span: stray markers would show.
        in_span: bool,
    },
    /// The end of the source is hidden (see `heal::Hidden`): appends that keep it so change
    /// nothing. The offset is where the hidden lines start (for `Markers`); `clean`: what
    /// shows is the source before them rendered without healing (no closer was added).
    Hidden(heal::Hidden, usize, bool),
    /// Extend the last line of the open fenced code block whose code element is at `path`.
    /// `head` holds the nodes of `line[..split]`, a split point after which the line is
    /// re-highlighted alone.
    Code {
        path: Vec<usize>,
        line: String,
        state: highlight::State,
        node: usize,
        lang: Option<&'static highlight::Lang>,
        fence: u8,
        fence_len: usize,
        split: usize,
        head: Vec<Node>,
        /// The line ends in an open comment or string: text without these bytes extends it.
        open: Option<Vec<u8>>,
    },
}

/// The streaming renderer: feed it the revealed text, get back what changed.
#[derive(Debug)]
pub struct MarkdownRenderer {
    opts: RenderOptions,
    src: String,
    /// Final blocks (never parsed again).
    done: Vec<Vec<Node>>,
    /// Where the open region starts (a line start).
    open_start: usize,
    /// Blocks of the open region as last sent.
    open: Vec<Vec<Node>>,
    defs: Defs,
    any_defs: bool,
    fast: Fast,
    /// Checkpoint in the last paragraph or list item (see `suffix`).
    cp: Option<Cp>,
    /// Where a parse may restart inside the last block (see `restart.rs`).
    restart: Vec<restart::Restart>,
    /// Set by a fast path: the open blocks end, as shown, before this offset, and the lines
    /// from there on are blank or markers; if the new last line starts a block for good,
    /// they are final without a parse.
    close_before: Option<usize>,
    work: usize,
}

/// A position on the last line after which the open paragraph or list item may be
/// re-parsed alone: `path` leads to that element in the last block, and its children
/// before `k` come from the source before `pos`.
#[derive(Debug, Clone)]
struct Cp {
    pos: usize,
    k: usize,
    path: Vec<usize>,
}

impl MarkdownRenderer {
    /// A renderer for one message.
    pub fn new(options: RenderOptions) -> Self {
        MarkdownRenderer {
            opts: options,
            src: String::new(),
            done: Vec::new(),
            open_start: 0,
            open: Vec::new(),
            defs: HashMap::new(),
            any_defs: false,
            fast: Fast::None,
            cp: None,
            restart: Vec::new(),
            close_before: None,
            work: 0,
        }
    }

    /// Forgets the message, keeping the options.
    pub fn reset(&mut self) {
        *self = MarkdownRenderer::new(std::mem::take(&mut self.opts));
    }

    /// The revealed text grew by `text`. Returns what changed, healed (see the module doc).
    pub fn append(&mut self, text: &str) -> Patch {
        self.src.push_str(text);
        self.close_before = None;
        if let Some(p) = self.try_fast(text) {
            return p;
        }
        if let Some(p) = self.suffix() {
            return p;
        }
        if let Some(p) = self.restart() {
            return p;
        }
        self.refresh(false)
    }

    /// The message is complete: renders the open region without healing. Afterwards the
    /// blocks equal [`render`] of the whole text.
    pub fn finish(&mut self) -> Patch {
        self.fast = Fast::None;
        let mut patch = self.refresh(true);
        if self.any_defs {
            // A definition may resolve a reference in a block rendered before it.
            self.work += self.src.len();
            let all = render(&self.src, &self.opts);
            let old = self.blocks();
            let mut blocks = Vec::new();
            for (i, nb) in all.iter().enumerate() {
                if old.get(i) != Some(nb) {
                    blocks.push(self.whole(i, nb.clone()));
                }
            }
            let mut p = Patch { blocks, count: all.len() };
            for (i, nb) in all.iter().enumerate() {
                Self::add_links(&mut p, i, nb);
            }
            self.done = all;
            self.open.clear();
            self.open_start = self.src.len();
            patch = p;
        }
        patch
    }

    /// The nodes of block `index` now, if it exists.
    pub fn block(&self, index: usize) -> Option<&[Node]> {
        match index.checked_sub(self.done.len()) {
            None => self.done.get(index).map(Vec::as_slice),
            Some(open) => self.open.get(open).map(Vec::as_slice),
        }
    }

    /// The current blocks (final and open).
    pub fn blocks(&self) -> Vec<Vec<Node>> {
        self.done.iter().chain(self.open.iter()).cloned().collect()
    }

    /// The revealed text so far.
    pub fn text(&self) -> &str {
        &self.src
    }

    /// Render work so far, in bytes: those given to pulldown-cmark, to the healing scan and
    /// to the highlighter, plus those taken by the fast paths (a one-shot [`render`] of a
    /// text costs its length). For benchmarks.
    pub fn work(&self) -> usize {
        self.work
    }

    fn whole(&mut self, index: usize, nodes: Vec<Node>) -> BlockPatch {
        BlockPatch { index, path: Vec::new(), start: 0, nodes, links: None }
    }

    /// Adds the link lists of blocks that just became final to `patch`.
    fn add_links(patch: &mut Patch, index: usize, nodes: &[Node]) {
        let mut l = Vec::new();
        nodes.iter().for_each(|n| n.collect_links(&mut l));
        if l.is_empty() {
            return;
        }
        match patch.blocks.iter_mut().find(|b| b.index == index) {
            Some(b) => b.links = Some(l),
            None => {
                let at = patch.blocks.partition_point(|b| b.index < index);
                patch.blocks.insert(
                    at,
                    BlockPatch { index, path: Vec::new(), start: nodes.len(), nodes: Vec::new(), links: Some(l) },
                );
            }
        }
    }

    /// Re-parses the open region (healed unless `last`), finalizes blocks, diffs.
    fn refresh(&mut self, last: bool) -> Patch {
        let mut patch = Patch::default();
        if let Some(from) = self.close_before.take() {
            // The shown open blocks are their final rendering (nothing was healed in them),
            // and the new last line starts a block that cannot join them: they are final.
            let region = &self.src[self.open_start..];
            let ls = line_start(region, region.len());
            let blank_between = ls + self.open_start >= from && self.src[from..self.open_start + ls].trim().is_empty();
            // (not for code and HTML blocks, whose last line break healing drops, nor where a
            // link reference definition may hide)
            let plain = !self.open.iter().flatten().any(has_code)
                && !region.trim_start().starts_with('<')
                && !region[..ls].contains("]:");
            self.work += ls;
            if !last && blank_between && plain && !self.open.is_empty() && starts_for_good(region, ls) {
                for b in std::mem::take(&mut self.open) {
                    Self::add_links(&mut patch, self.done.len(), &b);
                    self.done.push(b);
                }
                self.open_start += ls;
                self.cp = None;
                self.restart.clear();
            }
        }
        let region = &self.src[self.open_start..];
        let healed = if last {
            heal::Healed {
                text: region.to_string(),
                limit: region.len(),
                fenced: false,
                hidden: heal::Hidden::None,
                in_span: false,
                edit_from: region.len(),
            }
        } else {
            self.work += region.len();
            heal::heal(region, line_before(&self.src, self.open_start))
        };
        self.work += healed.text.len();
        let Parsed { blocks, edge, defs: found, mut marks } = parse(&healed.text, healed.limit, &self.opts, &self.defs);
        if !found.is_empty() {
            self.any_defs = true;
        }

        // Blocks before the last are final once the next block's first line is complete.
        let mut n_final = 0;
        if last {
            n_final = blocks.len();
        } else {
            for i in 0..blocks.len().saturating_sub(1) {
                let next = blocks[i + 1].start.min(region.len());
                // headings, rules, code blocks and tables cannot take in a later line
                let closed = matches!(blocks[i].nodes.first(), Some(Node::Element(e))
                    if matches!(e.name, "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "hr" | "pre")
                        || (e.name == "div" && e.class.ends_with("table-wrap")));
                // (a line healing rewrote may parse as another block than it will be)
                let complete = region[next..].contains('\n') && next < healed.edit_from;
                if closed || complete || starts_for_good(region, next) {
                    n_final = i + 1;
                } else {
                    break;
                }
            }
        }
        // Where the open region will start after finalizing, and the definitions before it.
        let region_start = self.open_start;
        let next_start = if n_final == 0 {
            region_start
        } else if n_final < blocks.len() {
            region_start + line_start(region, blocks[n_final].start)
        } else {
            self.src.len()
        };
        if n_final > 0 {
            for (label, end, dest, title) in found.iter() {
                if region_start + end <= next_start {
                    self.defs.entry(label.clone()).or_insert((dest.clone(), title.clone()));
                }
            }
        }
        let base = self.done.len();
        let old_open = std::mem::take(&mut self.open);
        let mut new_open = Vec::new();
        for (i, b) in blocks.into_iter().enumerate() {
            let index = base + i;
            match old_open.get(i) {
                Some(old) => {
                    if let Some(p) = self.diff(index, old, &b.nodes) {
                        patch.blocks.push(p);
                    }
                }
                None => {
                    let p = self.whole(index, b.nodes.clone());
                    patch.blocks.push(p);
                }
            }
            new_open.push(b);
        }
        for b in new_open.drain(..n_final) {
            Self::add_links(&mut patch, self.done.len(), &b.nodes);
            self.done.push(b.nodes);
        }
        self.open_start = next_start;
        self.open = new_open.into_iter().map(|b| b.nodes).collect();
        patch.count = self.done.len() + self.open.len();
        let region = &self.src[region_start..];
        self.fast = if last { Fast::None } else { self.fast_state(region, &edge, &healed) };
        self.cp = match (last, edge.cp) {
            (false, Some((pos, k))) => {
                self.open.last().and_then(|b| leaf_path(b)).map(|path| Cp { pos: region_start + pos, k, path })
            }
            _ => None,
        };
        marks.iter_mut().for_each(|m| m.1 += region_start);
        self.restart = if last { Vec::new() } else { self.plan_restart(&marks, None) };
        patch
    }

    /// Decides which fast path the next append may take.
    fn fast_state(&self, region: &str, edge: &Edge, healed: &heal::Healed) -> Fast {
        if healed.hidden != heal::Hidden::None {
            // clean: no closer added and nothing but the hidden lines dropped
            let from = line_start(region, region.len());
            let clean = healed.text.len() == healed.limit
                && region[..healed.limit.min(from)].trim_end() == region[..from].trim_end();
            return Fast::Hidden(healed.hidden, self.src.rfind('\n').map_or(0, |p| p + 1), clean);
        }
        let Some(block) = self.open.last() else {
            return Fast::None;
        };
        // A block that ends with a complete last line (a closing fence, a table row ending
        // in `|`): blank lines and block markers after it show nothing yet.
        let last_line = &region[line_start(region, region.len())..];
        let closed = match block.first() {
            Some(Node::Element(e)) if e.name == "pre" => {
                let t = last_line.trim();
                t.len() >= 3 && (t.bytes().all(|b| b == b'`') || t.bytes().all(|b| b == b'~')) && !healed.fenced
            }
            Some(Node::Element(e)) if e.name == "div" && e.class.ends_with("table-wrap") => {
                last_line.trim_end().ends_with('|')
            }
            _ => false,
        };
        if closed && healed.limit == region.len() && !edge.text {
            return Fast::Hidden(heal::Hidden::Markers, self.src.len(), false);
        }
        // A line like `[label]: …` may be a link reference definition, which more text on
        // the same line can make valid (and invisible): no fast path there.
        let content = &last_line[heal::content_start(last_line)..];
        let maybe_def = content.starts_with('[') && content.contains("]:");
        if (edge.text || edge.span) && !maybe_def {
            // The visible text must end where the source ends, but for trailing whitespace.
            let rest = &region[healed.limit.min(region.len())..];
            if edge.text_end != healed.limit || !rest.bytes().all(|b| b == b' ' || b == b'\t') {
                return Fast::None;
            }
            let Some(path) = rightmost_text(block, edge.span) else {
                return Fast::None;
            };
            let clean = healed.text.len() == healed.limit;
            return Fast::Text { path, ws: rest.to_string(), span: edge.span, clean, in_span: healed.in_span };
        }
        let last_line = line_start(region, region.len());
        if edge.code
            && healed.fenced
            && !edge.nested
            && region[last_line..] == edge.line
            && healed.limit == region.len()
            && heal::open_fence(&region[..last_line]).is_some()
        {
            let Some(path) = rightmost_code(block) else {
                return Fast::None;
            };
            let (fence, fence_len) = heal::open_fence(region).unwrap_or((b'`', 3));
            return Fast::Code {
                path,
                line: edge.line.clone(),
                state: edge.line_state,
                node: edge.line_node,
                lang: edge.lang,
                fence,
                fence_len,
                split: 0,
                head: Vec::new(),
                open: None,
            };
        }
        Fast::None
    }

    /// Re-parses only the last line from the checkpoint on, as `a ` + the rest (the `a `
    /// keeps it a paragraph line and is dropped from the result), and splices the nodes into
    /// the open paragraph or list item. Valid while the text after the checkpoint stays on
    /// one line: nothing after a checkpoint can change what comes before it (see
    /// `Builder::checkpoint`), and mid-line text cannot change the block structure.
    fn suffix(&mut self) -> Option<Patch> {
        let cp = self.cp.take()?;
        let rest = &self.src[cp.pos..];
        if rest.contains(['\n', '\r']) {
            return None;
        }
        // `[label]: …` may become a link reference definition, which the `a ` prefix hides
        let line = &self.src[line_start(&self.src, cp.pos)..];
        if line[heal::content_start(line)..].starts_with('[') {
            return None;
        }
        let mut sub = String::with_capacity(rest.len() + 2);
        sub.push_str("a ");
        sub.push_str(rest);
        // Healing decides on the whole last line (and the one before, for a table header),
        // exactly as for a full parse; only the part from the checkpoint is parsed.
        let ls = line_start(&self.src, cp.pos);
        let from = if ls == 0 { 0 } else { line_start(&self.src, ls - 1) };
        let whole = heal::heal(&self.src[from..], line_before(&self.src, from));
        let off = cp.pos - from;
        self.work += self.src.len() - from + sub.len();
        if whole.limit < off || whole.hidden == heal::Hidden::Line {
            return None;
        }
        let healed = heal::Healed {
            text: format!("a {}", &whole.text[off..]),
            limit: whole.limit - off + 2,
            fenced: false,
            hidden: whole.hidden,
            in_span: whole.in_span,
            edit_from: 0,
        };
        let Parsed { blocks, edge, .. } = parse(&healed.text, healed.limit, &self.opts, &self.defs);
        let [b] = &blocks[..] else { return None };
        let [Node::Element(p)] = &b.nodes[..] else {
            return None;
        };
        if p.name != "p" {
            return None;
        }
        let mut kids = p.children.clone();
        let shift = match kids.first_mut() {
            Some(Node::Text(t)) if t == "a" || t == "a " => {
                kids.remove(0);
                1
            }
            Some(Node::Text(t)) if t.starts_with("a ") => {
                t.drain(..2);
                0
            }
            _ => return None,
        };
        let index = self.done.len() + self.open.len().checked_sub(1)?;
        let block = self.open.last_mut()?;
        let Some(Node::Element(e)) = node_at(block, &cp.path) else {
            return None;
        };
        if e.children.len() < cp.k {
            return None;
        }
        // Text right before the checkpoint and text starting the suffix are one text node.
        let mut k = cp.k;
        let mut merged = false;
        if k > 0 {
            if let (Some(Node::Text(prev)), Some(Node::Text(first))) = (e.children.get(k - 1), kids.first_mut()) {
                first.insert_str(0, prev);
                k -= 1;
                merged = true;
            }
        }
        let old_tail = e.children.split_off(k);
        e.children.extend(kids);
        let mut sub_path = Vec::new();
        let spliced = splice(&old_tail, &e.children[k..], &mut sub_path);
        let patch = match spliced {
            Splice::Same => None,
            Splice::At(start, nodes) => {
                let mut path = cp.path.clone();
                let start = if sub_path.is_empty() {
                    start + k
                } else {
                    sub_path[0] += k;
                    path.extend(sub_path);
                    start
                };
                Some((path, start, nodes))
            }
            Splice::Shrinks => {
                let (parent, last) = cp.path.split_at(cp.path.len() - 1);
                Some((parent.to_vec(), last[0], vec![Node::Element(e.clone())]))
            }
        };
        let mut out = Patch { blocks: Vec::new(), count: index + 1 };
        if let Some((path, start, nodes)) = patch {
            out.blocks.push(BlockPatch { index, path, start, nodes, links: None });
        }
        self.fast = self.fast_state(&sub, &edge, &healed);
        // a later checkpoint if the suffix has one, else the same one again
        self.cp = match edge.cp {
            // (after a merge the checkpoint's node holds suffix text: parse in full next time)
            _ if merged => None,
            Some((pos, k)) if pos >= 2 && k >= shift => {
                Some(Cp { pos: cp.pos + pos - 2, k: cp.k + k - shift, path: cp.path })
            }
            _ => Some(cp),
        };
        Some(out)
    }

    /// Applies `text` (already pushed to the source) without parsing, when the fast state
    /// allows it.
    fn try_fast(&mut self, text: &str) -> Option<Patch> {
        let index = self.done.len() + self.open.len().checked_sub(1)?;
        let fast = std::mem::replace(&mut self.fast, Fast::None);
        match fast {
            Fast::None => None,
            Fast::Hidden(heal::Hidden::Fence(ch, n), from, _) if text.contains('\n') => {
                // A closing fence of a top-level code block, then blank lines: the block
                // closes, which shows nothing new.
                let tail = &self.src[from..];
                let (fence, rest) = tail.split_once('\n')?;
                let top = matches!(self.open.last()?.first(), Some(Node::Element(e)) if e.name == "pre");
                let f = fence.trim_end();
                let indent = f.len() - f.trim_start_matches(' ').len();
                let f = f.trim_start_matches(' ');
                self.work += tail.len();
                if !(top
                    && indent <= 3
                    && f.len() >= n
                    && f.bytes().all(|b| b == ch)
                    && heal::markers_tail(rest, false))
                {
                    return None;
                }
                // The block is closed for good: it is final now, without a parse.
                let next = from + fence.len() + 1;
                let mut patch = Patch { blocks: Vec::new(), count: index + 1 };
                if self.open.len() == 1 {
                    let b = self.open.pop()?;
                    Self::add_links(&mut patch, self.done.len(), &b);
                    self.done.push(b);
                    self.open_start = next;
                    self.cp = None;
                    self.restart.clear();
                }
                self.fast = Fast::Hidden(heal::Hidden::Markers, next, false);
                Some(patch)
            }
            Fast::Hidden(h, from, clean) => {
                let stays = if h == heal::Hidden::Markers {
                    self.work += self.src.len() - from;
                    let mid_line = from > 0 && self.src.as_bytes()[from - 1] != b'\n';
                    heal::markers_tail(&self.src[from..], mid_line)
                } else {
                    self.work += text.len();
                    h.stays(&self.src, text)
                };
                if !stays {
                    if h == heal::Hidden::Markers && clean {
                        self.close_before = Some(from);
                    }
                    return None;
                }
                self.fast = Fast::Hidden(h, from, clean);
                Some(Patch { blocks: Vec::new(), count: index + 1 })
            }
            Fast::Text { path, mut ws, span, clean, in_span } => {
                // Text, then maybe a line break followed by blank lines and a last line of
                // block markers only: the break shows nothing yet (see `heal`).
                let (text, newline) = match text.find('\n') {
                    Some(nl) if !span && heal::markers_tail(&text[nl + 1..], false) => {
                        (&text[..nl], Some(self.src.len() - text.len() + nl + 1))
                    }
                    Some(_) => return None,
                    None => (text, None),
                };
                if !span && !in_span && newline.is_none() && !text.trim().is_empty() && heal::strays_only(text) {
                    // stray markers at the edge are hidden: nothing shows yet
                    self.work += text.len();
                    return Some(Patch { blocks: Vec::new(), count: index + 1 });
                }
                let ok = if span {
                    text.bytes().all(|b| !matches!(b, b'`' | b'\r' | b'|'))
                } else {
                    text.bytes().all(inert)
                };
                if !ok {
                    return None;
                }
                let block = self.open.last_mut()?;
                let node = node_at(block, &path)?;
                let Node::Text(t) = node else { return None };
                // a bare URL or email being typed becomes an autolink: parse
                if span && t.starts_with(' ') {
                    return None;
                }
                let word_start = t
                    .rfind(|c: char| c.is_whitespace())
                    .map_or(0, |p| p + t[p..].chars().next().map_or(1, char::len_utf8));
                let mut word = if ws.is_empty() { t[word_start..].to_string() } else { String::new() };
                word.push_str(text);
                if !span && self.opts.autolink && build::maybe_link(&word) {
                    return None;
                }
                let shown = text.trim_end_matches([' ', '\t']);
                self.work += text.len();
                let next = |ws: String| match newline {
                    Some(from) => Fast::Hidden(heal::Hidden::Markers, from, clean && !span),
                    None => Fast::Text { path: path.clone(), ws, span, clean, in_span },
                };
                if shown.is_empty() {
                    ws.push_str(text);
                    self.fast = next(ws);
                    return Some(Patch { blocks: Vec::new(), count: index + 1 });
                }
                t.push_str(&ws);
                t.push_str(shown);
                ws.clear();
                ws.push_str(&text[shown.len()..]);
                let node = node.clone();
                let (parent, last) = path.split_at(path.len() - 1);
                let patch = BlockPatch { index, path: parent.to_vec(), start: last[0], nodes: vec![node], links: None };
                self.fast = next(ws);
                Some(Patch { blocks: vec![patch], count: index + 1 })
            }
            Fast::Code { path, mut line, state, node, lang, fence, fence_len, split, head, open: Some(stop) }
                if !text.contains(['\n', '\r']) && !text.bytes().any(|b| stop.contains(&b)) && !line.is_empty() =>
            {
                // the line ends in an open comment or string: it grows by `text`
                self.work += text.len();
                let block = self.open.last_mut()?;
                let Some(Node::Element(code)) = node_at(block, &path) else {
                    return None;
                };
                let Some(Node::Element(ln)) = code.children.get_mut(node) else {
                    return None;
                };
                let Some(Node::Element(tok)) = ln.children.last_mut() else {
                    return None;
                };
                let Some(Node::Text(t)) = tok.children.last_mut() else {
                    return None;
                };
                t.push_str(text);
                line.push_str(text);
                let nodes = vec![Node::Element(ln.clone())];
                let patch = BlockPatch { index, path: path.clone(), start: node, nodes, links: None };
                self.fast =
                    Fast::Code { path, line, state, node, lang, fence, fence_len, split, head, open: Some(stop) };
                Some(Patch { blocks: vec![patch], count: index + 1 })
            }
            Fast::Code { path, mut line, mut state, mut node, lang, fence, fence_len, mut split, mut head, .. } => {
                let mut probe = line.clone();
                probe.push_str(text);
                // A last line of fence characters only may be a closing fence being typed:
                // healing hides it, so the code gets the lines before it only.
                let (probe, hidden_from) = match probe.rfind('\n') {
                    Some(nl)
                        if nl + 1 < probe.len() && {
                            let t = probe[nl + 1..].trim_start_matches(' ');
                            !t.is_empty() && t.bytes().all(|b| b == fence)
                        } =>
                    {
                        let from = self.src.len() - (probe.len() - nl - 1);
                        (probe[..nl + 1].to_string(), Some(from))
                    }
                    _ => (probe, None),
                };
                // Any other line that could become a closing fence needs the parser.
                if probe.split('\n').any(|l| l.trim_start().as_bytes().first() == Some(&fence)) {
                    return None;
                }
                let prefix = self.opts.class_prefix.clone();
                let block = self.open.last_mut()?;
                let Some(Node::Element(code)) = node_at(block, &path) else {
                    return None;
                };
                code.children.truncate(node);
                let start = node;
                let mut work = 0;
                let mut open = None;
                for (i, piece) in probe.split_inclusive('\n').enumerate() {
                    // the parser drops a last line of fewer than 4 spaces (a closing fence's
                    // indentation, maybe)
                    let complete = piece.ends_with('\n');
                    if !complete && piece.bytes().all(|b| b == b' ') && piece.len() < 4 {
                        continue;
                    }
                    let Some(l) = lang else {
                        work += piece.len();
                        code.children.push(Node::Text(piece.to_string()));
                        if complete {
                            node = code.children.len();
                        }
                        continue;
                    };
                    if i > 0 {
                        split = 0;
                        head.clear();
                    }
                    // Re-highlight from the last split point of the line only.
                    let from = if split == 0 { state } else { highlight::State::Normal };
                    let mut tail = Vec::new();
                    let (end, sep) = highlight::highlight_part(l, &piece[split..], from, &prefix, &mut tail);
                    work += piece.len() - split;
                    if let Some(q) = sep.filter(|&q| split + q < piece.len() && piece.as_bytes()[split + q] != b'#') {
                        let mut h = Vec::new();
                        highlight::highlight_line(l, &piece[split..split + q], from, &prefix, &mut h);
                        highlight::join(&mut head, h);
                        tail.clear();
                        highlight::highlight_line(l, &piece[split + q..], highlight::State::Normal, &prefix, &mut tail);
                        work += piece.len() - split;
                        split += q;
                    }
                    let mut el = Element::new("span", format!("{prefix}ln"));
                    el.children = head.clone();
                    highlight::join(&mut el.children, tail);
                    open = None;
                    if !complete {
                        if let Some(Node::Element(tok)) = el.children.last() {
                            if let [Node::Text(t)] = &tok.children[..] {
                                let com = tok.class.ends_with("com");
                                if (com || tok.class.ends_with("str")) && piece.ends_with(t.as_str()) && !t.is_empty() {
                                    open = highlight::open_token(l, com, t);
                                }
                            }
                        }
                    }
                    code.children.push(Node::Element(el));
                    if complete {
                        state = end;
                        node = code.children.len();
                        split = 0;
                        head.clear();
                    }
                }
                self.work += work;
                line = probe.rsplit_once('\n').map_or(probe.clone(), |(_, l)| l.to_string());
                let nodes = code.children[start..].to_vec();
                let patch = BlockPatch { index, path: path.clone(), start, nodes, links: None };
                self.fast = match hidden_from {
                    Some(from) => Fast::Hidden(heal::Hidden::Fence(fence, fence_len), from, false),
                    None => Fast::Code { path, line, state, node, lang, fence, fence_len, split, head, open },
                };
                Some(Patch { blocks: vec![patch], count: index + 1 })
            }
        }
    }

    /// The smallest patch turning `old` into `new` for block `index`.
    fn diff(&mut self, index: usize, old: &[Node], new: &[Node]) -> Option<BlockPatch> {
        let mut path = Vec::new();
        match splice(old, new, &mut path) {
            Splice::Same => None,
            Splice::At(start, nodes) => Some(BlockPatch { index, path, start, nodes, links: None }),
            Splice::Shrinks => Some(BlockPatch { index, path: Vec::new(), start: 0, nodes: new.to_vec(), links: None }),
        }
    }
}

enum Splice {
    Same,
    /// Replace children from this index on.
    At(usize, Vec<Node>),
    /// Cannot be done at this level without shortening the array.
    Shrinks,
}

fn splice(old: &[Node], new: &[Node], path: &mut Vec<usize>) -> Splice {
    let k = old.iter().zip(new).take_while(|(a, b)| a == b).count();
    if k == old.len() && k == new.len() {
        return Splice::Same;
    }
    if new.len() < old.len() {
        return Splice::Shrinks;
    }
    if k + 1 == old.len() && k + 1 == new.len() {
        if let (Node::Element(a), Node::Element(b)) = (&old[k], &new[k]) {
            if a.name == b.name && a.class == b.class && a.style == b.style && a.attrs == b.attrs && a.link == b.link {
                path.push(k);
                match splice(&a.children, &b.children, path) {
                    Splice::Shrinks => {
                        path.pop();
                    }
                    s => return s,
                }
            }
        }
    }
    Splice::At(k, new[k..].to_vec())
}

/// Characters that cannot change the structure of a paragraph when appended after plain
/// text: anything but Markdown punctuation and line breaks.
fn inert(b: u8) -> bool {
    !matches!(
        b,
        b'\n' | b'\r' | b'*' | b'_' | b'~' | b'`' | b'[' | b']' | b'!' | b'<' | b'&' | b'\\' | b'$' | b'|' | b'#'
    )
}

/// Whether a top-level block whose first line is still being typed can no longer join the
/// block before it: an ATX heading with text (`## T`), or, after a blank line, a line at
/// column 0 that cannot continue a list (not a list marker, not indented).
fn starts_for_good(region: &str, start: usize) -> bool {
    let ls = line_start(region, start);
    let line = &region[ls..];
    let h = line.bytes().take_while(|&b| b == b'#').count();
    if (1..=6).contains(&h) && line[h..].starts_with(' ') && !line[h..].trim().is_empty() {
        return true;
    }
    let before = &region[..ls.saturating_sub(1)];
    let blank_before = before[line_start(before, before.len())..].trim().is_empty();
    let first = line.bytes().next();
    blank_before && ls > 0 && first.is_some_and(|b| !b.is_ascii_whitespace() && !b"-*+0123456789".contains(&b))
}

/// The line that ends just before `pos` (a line start), without its line break.
fn line_before(s: &str, pos: usize) -> &str {
    if pos == 0 {
        return "";
    }
    let end = pos - 1;
    &s[line_start(s, end)..end]
}

fn line_start(s: &str, pos: usize) -> usize {
    s[..pos.min(s.len())].rfind('\n').map_or(0, |p| p + 1)
}

fn node_at<'a>(nodes: &'a mut [Node], path: &[usize]) -> Option<&'a mut Node> {
    let (first, rest) = path.split_first()?;
    let mut n = nodes.get_mut(*first)?;
    for &i in rest {
        match n {
            Node::Element(e) => n = e.children.get_mut(i)?,
            _ => return None,
        }
    }
    Some(n)
}

/// Path of the rightmost leaf if it is a text node outside autolinks and code (inside an
/// inline code span when `span`).
fn rightmost_text(nodes: &[Node], span: bool) -> Option<Vec<usize>> {
    let mut path = vec![nodes.len().checked_sub(1)?];
    let mut n = nodes.last()?;
    let mut siblings = nodes;
    loop {
        match n {
            Node::Text(t) => {
                // text right after an autolink may still extend the link (`…com` + `.cn`)
                let after_link = siblings.len() >= 2
                    && matches!(&siblings[siblings.len() - 2], Node::Element(e) if e.link.as_ref().is_some_and(|l| l.autolink));
                if after_link && !t.contains(char::is_whitespace) {
                    return None;
                }
                return Some(path);
            }
            Node::Html(_) => return None,
            Node::Element(e) => {
                let code_span = span && e.name == "code" && e.children.len() == 1;
                if e.link.as_ref().is_some_and(|l| l.autolink)
                    || (matches!(e.name, "code" | "pre" | "img") && !code_span)
                {
                    return None;
                }
                // a table row is padded with empty cells up to the header's width
                let i = if e.name == "tr" {
                    e.children.iter().rposition(|c| matches!(c, Node::Element(td) if !td.children.is_empty()))?
                } else {
                    e.children.len().checked_sub(1)?
                };
                path.push(i);
                siblings = &e.children[..=i];
                n = &e.children[i];
            }
        }
    }
}

/// Whether a node holds a code block.
fn has_code(n: &Node) -> bool {
    match n {
        Node::Element(e) => e.name == "pre" || e.children.iter().any(has_code),
        Node::Html(_) => true,
        Node::Text(_) => false,
    }
}

/// Path of the deepest paragraph or list item on the rightmost path.
fn leaf_path(nodes: &[Node]) -> Option<Vec<usize>> {
    let mut path = vec![nodes.len().checked_sub(1)?];
    let mut n = nodes.last()?;
    let mut found = None;
    while let Node::Element(e) = n {
        if matches!(e.name, "p" | "li") {
            found = Some(path.clone());
        }
        let Some(last) = e.children.last() else { break };
        path.push(e.children.len() - 1);
        n = last;
    }
    found
}

/// Path of the `code` element of a code block that is the rightmost node.
fn rightmost_code(nodes: &[Node]) -> Option<Vec<usize>> {
    let mut path = vec![nodes.len().checked_sub(1)?];
    let mut n = nodes.last()?;
    loop {
        match n {
            Node::Element(e) if e.name == "code" => return Some(path),
            Node::Element(e) => {
                path.push(e.children.len().checked_sub(1)?);
                n = e.children.last()?;
            }
            _ => return None,
        }
    }
}
