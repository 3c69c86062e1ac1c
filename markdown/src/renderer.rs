//! The streaming renderer: the state kept between appends, the choice of path for each
//! append, and the re-parse of the open region.

use crate::builder::Edge;
use crate::fast::{rightmost_code, rightmost_text, Fast};
use crate::heal;
use crate::nodes::Node;
use crate::parse::{parse, Defs, Parsed};
use crate::patch::{self, BlockPatch, Patch};
use crate::restart;
use crate::{render, RenderOptions};

/// The streaming renderer: feed it the revealed text, get back what changed.
#[derive(Debug)]
pub struct MarkdownRenderer {
    pub(crate) opts: RenderOptions,
    pub(crate) src: String,
    /// Final blocks (never parsed again).
    pub(crate) done: Vec<Vec<Node>>,
    /// Where the open region starts (a line start).
    pub(crate) open_start: usize,
    /// Blocks of the open region as last sent.
    pub(crate) open: Vec<Vec<Node>>,
    pub(crate) defs: Defs,
    pub(crate) any_defs: bool,
    pub(crate) fast: Fast,
    /// Checkpoint in the last paragraph or list item (see `suffix.rs`).
    pub(crate) cp: Option<Cp>,
    /// Where healing the line being typed resumes its scan (the suffix path).
    pub(crate) resume: Option<heal::Resume>,
    /// Where a parse may restart inside the last block (see `restart.rs`).
    pub(crate) restart: Vec<restart::Restart>,
    /// Set by a fast path: the open blocks end, as shown, before this offset, and the lines
    /// from there on are blank or markers; if the new last line starts a block for good,
    /// they are final without a parse.
    pub(crate) close_before: Option<usize>,
    pub(crate) work: usize,
    /// Blocks the page holds as an HTML string (see `html_whole`).
    pub(crate) html_sent: Vec<usize>,
    /// The page count `place` made last, so that placing a change near the end of a long
    /// child list does not count the list again on every append.
    pub(crate) counted: Option<Counted>,
    /// The change of the last append that took [`Step::Grown`].
    pub(crate) grown: Grown,
    /// `finish` was called: the blocks are final until `reset`.
    pub(crate) finished: bool,
}

/// How many page nodes the first `upto` children of the node at `path` in block `index`
/// are (see [`crate::nodes::page_len`]).
#[derive(Debug)]
pub(crate) struct Counted {
    index: usize,
    path: Vec<usize>,
    upto: usize,
    len: usize,
}

impl Counted {
    /// Whether `b` leaves the counted children as they were: it replaces the children of
    /// the node at `b.path` from `b.start` on, and a child's count only changes if the
    /// child itself is replaced (a change inside an element leaves it one node).
    fn survives_patch(&self, b: &BlockPatch) -> bool {
        b.index != self.index || (!b.is_whole() && self.survives(b.index, &b.path, b.start))
    }

    /// [`Counted::survives_patch`] for a change of the children from `start` on of the node
    /// at `path` in block `index` (not the whole block).
    fn survives(&self, index: usize, path: &[usize], start: usize) -> bool {
        if index != self.index || self.path.get(..path.len()).is_none_or(|p| !same_path(p, path)) {
            return true;
        }
        match self.path.get(path.len()) {
            None => start >= self.upto,
            Some(&i) => i < start,
        }
    }
}

/// What an append changed (see [`MarkdownRenderer::step`]).
pub(crate) enum Step {
    Patch(Patch),
    /// A text node the page holds grew, and the page gets its text alone: see
    /// [`MarkdownRenderer::text_change`].
    Grown,
}

/// The text node a fast path grows, where the page holds it, and the patch the last
/// [`Step::Grown`] stands for. Its place, found once by [`MarkdownRenderer::place_grown`]
/// and kept while the fast path grows that node: child-index path `node`, the page path of
/// its parent `page`, the page index of its first page node `at`, and whether its parent's
/// text is sent as segments. The change: block `index` (of `count`), the node's text from
/// `from` on sent from page node `start`, of which the page holds the first `kept` bytes.
#[derive(Debug, Default)]
pub(crate) struct Grown {
    pub(crate) node: Vec<usize>,
    page: Vec<usize>,
    at: usize,
    seg: bool,
    index: usize,
    pub(crate) count: usize,
    start: usize,
    from: usize,
    kept: usize,
}

/// Writes to `page` the page path of the element at `path` in a block's nodes; returns its
/// children, and whether their text is sent as segments.
fn page_path<'a>(block: &'a [Node], path: &[usize], page: &mut Vec<usize>) -> Option<(&'a [Node], bool)> {
    use crate::nodes::{page_len, segmented};
    let mut children = block;
    let mut seg = true;
    for &i in path {
        let Some(Node::Element(e)) = children.get(i) else { return None };
        page.push(page_len(&children[..i], seg));
        seg = segmented(e.name);
        children = &e.children;
    }
    Some((children, seg))
}

/// A position on the last line after which the open paragraph, list item or table cell
/// may be re-parsed alone: `path` leads to that element in the last block, and its
/// children before `k` come from the source before `pos`.
#[derive(Debug, Clone)]
pub(crate) struct Cp {
    pub(crate) pos: usize,
    /// The start of the checkpoint's line.
    pub(crate) line: usize,
    pub(crate) k: usize,
    pub(crate) path: Vec<usize>,
    /// The line before starts with `|` (all that healing asks of it: see `heal`).
    pub(crate) pipe: bool,
}

impl Cp {
    /// The line before is looked at once, here, not on every append (it may be a table row
    /// as long as this one); a line that may open a fence would make this line code: none.
    pub(crate) fn new(src: &str, pos: usize, k: usize, path: Vec<usize>) -> Option<Cp> {
        let line = line_start(src, pos);
        let before = line_before(src, line);
        let pipe = before[heal::content_start(before)..].starts_with('|');
        (!before.contains("```") && !before.contains("~~~")).then_some(Cp { pos, line, k, path, pipe })
    }
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
            defs: Vec::new(),
            any_defs: false,
            fast: Fast::None,
            cp: None,
            resume: None,
            restart: Vec::new(),
            close_before: None,
            work: 0,
            html_sent: Vec::new(),
            counted: None,
            grown: Grown::default(),
            finished: false,
        }
    }

    /// Forgets the message, keeping the options.
    pub fn reset(&mut self) {
        *self = MarkdownRenderer::new(std::mem::take(&mut self.opts));
    }

    /// The revealed text grew by `text`. Returns what changed, healed (see the module doc).
    ///
    /// # Panics
    ///
    /// After [`MarkdownRenderer::finish`], until [`MarkdownRenderer::reset`]: the message is
    /// over (the JS binding throws an `Error` instead).
    pub fn append(&mut self, text: &str) -> Patch {
        match self.step(text) {
            Step::Patch(p) => self.owned(p),
            Step::Grown => self.grown_patch(),
        }
    }

    /// `p`, a patch of the last append, with the nodes it reads from the tree copied in.
    fn owned(&self, mut p: Patch) -> Patch {
        for b in &mut p.blocks {
            if b.tree {
                b.nodes = self.patch_nodes(b).to_vec();
                b.tree = false;
            }
        }
        p
    }

    /// The new nodes of `b`, a patch of the last append: its own, or if it has none of its
    /// own ([`BlockPatch::tree`]), the children from its `start` on of the element at its
    /// `path`, as the tree holds them now.
    pub(crate) fn patch_nodes<'a>(&'a self, b: &'a BlockPatch) -> &'a [Node] {
        if !b.tree {
            return &b.nodes;
        }
        let children = self.block(b.index).and_then(|block| crate::nodes::children_at(block, &b.path));
        children.and_then(|c| c.get(b.start..)).unwrap_or_default()
    }

    /// [`MarkdownRenderer::append`], where a text node the page holds that grew (most
    /// appends) is left in the tree for [`MarkdownRenderer::text_change`] to read, without a
    /// patch built, placed and dropped.
    pub(crate) fn step(&mut self, text: &str) -> Step {
        assert!(!self.finished, "MarkdownRenderer::append after finish(): reset() starts a new message");
        self.src.push_str(text);
        self.close_before = None;
        let patch = match self.try_fast(text) {
            // (a block holding raw HTML is sent whole: see `html_whole`)
            Some(Step::Grown) if self.opts.raw_html() => return Step::Patch(self.html_whole(self.grown_patch())),
            Some(Step::Grown) => return Step::Grown,
            Some(Step::Patch(p)) => p,
            None => match self.suffix() {
                Some(p) => p,
                None => match self.restart() {
                    Some(p) => p,
                    None => self.refresh(false),
                },
            },
        };
        let patch = self.html_whole(patch);
        Step::Patch(self.place(patch))
    }

    /// Finds where the page holds the text node at `path` + `more` in block `index` (see
    /// `place`), for a fast path that grows that node to keep in [`Grown`] while it grows it:
    /// its place does not change while only it changes (the fast state says it is kept).
    pub(crate) fn place_grown(&mut self, index: usize, path: &[usize], more: &[usize]) -> Option<()> {
        let g = &mut self.grown;
        let (mut node, mut page) = (std::mem::take(&mut g.node), std::mem::take(&mut g.page));
        node.clear();
        node.extend_from_slice(path);
        node.extend_from_slice(more);
        page.clear();
        let at = node.split_last().and_then(|(&last, parent)| {
            let (children, seg) = page_path(self.block(index)?, parent, &mut page)?;
            Some((crate::nodes::page_len(children.get(..last)?, seg), seg))
        });
        let g = &mut self.grown;
        (g.node, g.page) = (node, page);
        (g.at, g.seg) = at?;
        Some(())
    }

    /// The text node [`MarkdownRenderer::place_grown`] found, in the last block (`index`),
    /// grew: its text from byte `from` on is what a patch carries, of which the page holds the
    /// first `kept` bytes, at page node `cut` of it. Kept for [`MarkdownRenderer::text_change`]
    /// and [`MarkdownRenderer::grown_patch`]; what `place` would have counted stays counted
    /// unless this change reaches it (the grown node is its parent's last child, so no count
    /// covers it today: the test keeps that true if a fast path ever grows another node).
    pub(crate) fn grown_step(&mut self, index: usize, from: usize, kept: usize, cut: usize) -> Step {
        let g = &mut self.grown;
        let (&last, parent) = g.node.split_last().unwrap_or((&0, &[]));
        if self.counted.as_ref().is_some_and(|c| !c.survives(index, parent, last)) {
            self.counted = None;
        }
        g.index = index;
        g.count = index + 1;
        g.start = g.at + cut;
        g.from = from;
        g.kept = kept;
        Step::Grown
    }

    /// The text of the last [`Step::Grown`]'s node, from where its patch starts, and the page
    /// nodes of it the page holds and is not sent again (as `place` counts them).
    fn grown_tail(&self) -> Option<(&str, usize)> {
        let g = &self.grown;
        let Some(Node::Text(t)) = crate::nodes::node_at_ref(self.block(g.index)?, &g.node) else { return None };
        let t = t.get(g.from..)?;
        let skip =
            if g.seg && g.kept > 0 { crate::nodes::segments(t).take_while(|r| r.end <= g.kept).count() } else { 0 };
        Some((t, skip))
    }

    /// The last [`Step::Grown`] as [`Patch::text_change`] reads its patch.
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))] // (the wasm binding's)
    pub(crate) fn text_change(&self) -> Option<patch::TextChange<'_>> {
        let g = &self.grown;
        let (t, skip) = self.grown_tail()?;
        patch::text_change(g.index, &g.page, g.start + skip, t, g.seg, skip, g.kept)
    }

    /// The last [`Step::Grown`] as the patch `append` returns (as `place` places it).
    pub(crate) fn grown_patch(&self) -> Patch {
        let g = &self.grown;
        let (text, skip) = self.grown_tail().map_or((String::new(), 0), |(t, skip)| (t.to_string(), skip));
        let (&last, parent) = g.node.split_last().unwrap_or((&0, &[]));
        let b = BlockPatch {
            index: g.index,
            path: parent.to_vec(),
            start: last,
            nodes: vec![Node::Text(text)],
            links: None,
            page: Some(patch::PagePos { path: g.page.clone(), start: g.start, seg: g.seg, skip }),
            kept: g.kept,
            tree: false,
        };
        Patch { blocks: vec![b], count: g.count }
    }

    /// Counts each change's position in the nodes the page holds, where a text is sent as
    /// segments (see [`crate::nodes::SEGMENT`]): the siblings before a changed child are the
    /// same before and after the change, so the current blocks tell.
    fn place(&mut self, mut patch: Patch) -> Patch {
        use crate::nodes::{page_len, segments};
        // (the count is dropped once a change reaches the children it counted, or its block
        // is final and changes no more)
        let mut counted = self.counted.take().filter(|c| {
            c.index >= self.done.len() && c.index < patch.count && patch.blocks.iter().all(|b| c.survives_patch(b))
        });
        for b in &mut patch.blocks {
            if b.is_whole() {
                continue;
            }
            let mut path = Vec::with_capacity(b.path.len());
            let Some((children, seg)) = self.block(b.index).and_then(|block| page_path(block, &b.path, &mut path))
            else {
                continue;
            };
            // (the children before the change: counted on from the last append's count)
            let upto = b.start.min(children.len());
            let (from, base) = match &counted {
                Some(c) if c.index == b.index && same_path(&c.path, &b.path) && c.upto <= upto => (c.upto, c.len),
                _ => (0, 0),
            };
            let start = base + page_len(&children[from..upto], seg);
            match &mut counted {
                // (the same list as the last append's: no new path to allocate)
                Some(c) if c.index == b.index && same_path(&c.path, &b.path) => {
                    c.upto = upto;
                    c.len = start;
                }
                _ => counted = Some(Counted { index: b.index, path: b.path.clone(), upto, len: start }),
            }
            let first = if b.tree { children.get(b.start) } else { b.nodes.first() };
            let skip = match first {
                Some(Node::Text(t)) if seg && b.kept > 0 => segments(t).take_while(|r| r.end <= b.kept).count(),
                _ => 0,
            };
            // (a grown text sent from a later segment on: the page nodes before it, see `fast`)
            let cut = b.page.take().map_or(0, |p| p.start);
            b.page = Some(crate::patch::PagePos { path, start: start + cut, seg, skip });
        }
        self.counted = counted;
        patch
    }

    /// A block holding raw HTML goes to the page as one HTML string (see
    /// [`crate::nodes::write_block_json`]), which no path key can reach into: any change to such a
    /// block, or to one the page holds as a string, is sent whole.
    fn html_whole(&mut self, mut patch: Patch) -> Patch {
        if !self.opts.raw_html() {
            return patch;
        }
        for b in &mut patch.blocks {
            let Some(nodes) = self.block(b.index) else { continue };
            let now = nodes.iter().any(Node::has_html);
            if now || self.html_sent.contains(&b.index) {
                b.path.clear();
                b.start = 0;
                b.nodes = nodes.to_vec();
                b.tree = false;
            }
            self.html_sent.retain(|&i| i != b.index);
            if now {
                self.html_sent.push(b.index);
            }
        }
        self.html_sent.retain(|&i| i < patch.count);
        patch
    }

    /// The message is complete: renders the open region without healing. Afterwards the
    /// blocks equal [`render`] of the whole text. Calling it again changes nothing.
    pub fn finish(&mut self) -> Patch {
        if self.finished {
            return Patch { blocks: Vec::new(), count: self.done.len() + self.open.len() };
        }
        self.finished = true;
        self.fast = Fast::None;
        if !self.any_defs {
            let patch = self.refresh(true);
            let patch = self.html_whole(patch);
            let patch = self.place(patch);
            return self.owned(patch);
        }
        // A definition may resolve a reference in a block rendered before it: the whole text
        // is rendered once, and compared with what the page holds.
        self.work += self.src.len();
        let all = render(&self.src, &self.opts);
        let old = self.blocks();
        let mut p = Patch { blocks: Vec::new(), count: all.len() };
        for (i, nb) in all.iter().enumerate() {
            match old.get(i) {
                Some(ob) => p.blocks.extend(patch::diff(i, ob, nb)),
                None => p.blocks.push(Self::whole(i)),
            }
        }
        for (i, nb) in all.iter().enumerate() {
            Self::add_links(&mut p, i, nb);
        }
        self.done = all;
        self.open.clear();
        self.open_start = self.src.len();
        let p = self.html_whole(p);
        let p = self.place(p);
        self.owned(p)
    }

    /// Whether [`MarkdownRenderer::finish`] was called since the renderer was made or reset.
    pub fn is_finished(&self) -> bool {
        self.finished
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
    /// to the highlighter, plus those taken by the fast paths and the link reference
    /// definitions merged as they are kept (a one-shot [`render`] of a text costs its
    /// length). For benchmarks.
    pub fn work(&self) -> usize {
        self.work
    }

    /// Block `index` sent whole, as the tree holds it once the patch is written.
    pub(crate) fn whole(index: usize) -> BlockPatch {
        BlockPatch {
            index,
            path: Vec::new(),
            start: 0,
            nodes: Vec::new(),
            links: None,
            page: None,
            kept: 0,
            tree: true,
        }
    }

    /// Adds the link lists of blocks that just became final to `patch`.
    pub(crate) fn add_links(patch: &mut Patch, index: usize, nodes: &[Node]) {
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
                    BlockPatch {
                        index,
                        path: Vec::new(),
                        start: nodes.len(),
                        nodes: Vec::new(),
                        links: Some(l),
                        page: None,
                        kept: 0,
                        tree: false,
                    },
                );
            }
        }
    }

    /// Re-parses the open region (healed unless `last`), finalizes blocks, diffs.
    pub(crate) fn refresh(&mut self, last: bool) -> Patch {
        let mut patch = Patch::default();
        if let Some(from) = self.close_before.take() {
            // The shown open blocks are their final rendering (nothing was healed in them),
            // and the new last line starts a block that cannot join them: they are final.
            let region = &self.src[self.open_start..];
            let ls = line_start(region, region.len());
            let blank_between =
                ls + self.open_start >= from && crate::heal::is_blank(&self.src[from..self.open_start + ls]);
            // (not for code and HTML blocks, whose last line break healing drops, nor where a
            // link reference definition may hide)
            let plain = !self.open.iter().flatten().any(has_code)
                && !region.trim_start().starts_with('<')
                && !region[..ls].contains("]:");
            self.work += ls;
            // After a blank line nothing joins a paragraph, heading, rule or table: only a
            // list (a later item, indented content) or a quote's content might.
            let closed = ls + self.open_start > from
                && !self.open.iter().any(|b| {
                    matches!(b.first(), Some(Node::Element(e))
                    if matches!(e.name, "ul" | "ol") || e.class.ends_with("blockquote"))
                });
            if !last && blank_between && plain && !self.open.is_empty() && (closed || starts_for_good(region, ls)) {
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
                // Headings, rules and code blocks cannot take in a later line. A table can
                // (GFM §4.10: it ends at a blank line or another block's start), so it is
                // final only as the others are: once the next line is complete.
                let closed = matches!(blocks[i].nodes.first(), Some(Node::Element(e))
                    if matches!(e.name, "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "hr" | "pre"));
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
        // A run of link reference definitions before the first open block renders nothing
        // and is final once no later line can change it (CommonMark §4.7): each definition's
        // own lines end in a line break, and the complete line after it cannot be its title
        // (a title may follow the destination on the next line, and may span lines). A
        // definition starts no paragraph, so later lines cannot make it text. The open
        // region restarts after it, so an answer of definitions is not re-parsed whole.
        let open_at = blocks.get(n_final).map_or(region.len(), |b| b.start).min(healed.edit_from);
        let mut next_start = next_start;
        for (_, end, ..) in &found {
            if let Some((tail, next)) = region[(*end).min(open_at)..open_at].split_once('\n') {
                if crate::heal::is_blank(tail)
                    && next.contains('\n')
                    && !matches!(next.trim_start().bytes().next(), Some(b'"' | b'\'' | b'('))
                {
                    next_start = next_start.max(region_start + open_at - next.len());
                }
            }
        }
        if next_start > region_start {
            for (label, end, dest, title) in found.iter() {
                if region_start + end <= next_start {
                    self.work += crate::parse::define(&mut self.defs, label, dest, title);
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
                    if let Some(p) = patch::diff(index, old, &b.nodes) {
                        patch.blocks.push(p);
                    }
                }
                None => {
                    let p = Self::whole(index);
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
            (false, Some((pos, k))) => self
                .open
                .last()
                .and_then(|b| leaf_path(b))
                .and_then(|path| Cp::new(&self.src, region_start + pos, k, path)),
            _ => None,
        };
        marks.iter_mut().for_each(|m| m.1 += region_start);
        self.restart = if last { Vec::new() } else { self.plan_restart(&marks, None) };
        patch
    }

    /// Decides which fast path the next append may take.
    pub(crate) fn fast_state(&self, region: &str, edge: &Edge, healed: &heal::Healed) -> Fast {
        if healed.hidden != heal::Hidden::None {
            // clean: no closer added and nothing but the hidden lines dropped
            let from = line_start(region, region.len());
            let clean = healed.text.len() == healed.limit
                && crate::heal::trim_blank_end(&region[..healed.limit.min(from)])
                    == crate::heal::trim_blank_end(&region[..from]);
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
                let t = crate::heal::trim_blank(last_line);
                t.len() >= 3 && (t.bytes().all(|b| b == b'`') || t.bytes().all(|b| b == b'~')) && !healed.fenced
            }
            Some(Node::Element(e)) if e.name == "div" && e.class.ends_with("table-wrap") => {
                crate::heal::trim_blank_end(last_line).ends_with('|')
            }
            _ => false,
        };
        if closed && healed.limit == region.len() && !edge.text {
            return Fast::Hidden(heal::Hidden::Markers, self.src.len(), false);
        }
        // A line like `[label]: …` may be a link reference definition, which more text on
        // the same line can make valid (and invisible): no fast path there. Its label may
        // start on an earlier line (a definition opens a paragraph, so on the region's first).
        let content = &last_line[heal::content_start(last_line)..];
        let first_line = &region[..region.find('\n').unwrap_or(region.len())];
        let maybe_def = (content.starts_with('[') && content.contains("]:"))
            || (first_line[heal::content_start(first_line)..].starts_with('[') && region.contains("]:"));
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
            let link = match crate::nodes::node_at_ref(block, &path) {
                Some(Node::Text(t)) => crate::autolink::maybe_link(t.rsplit(char::is_whitespace).next().unwrap_or("")),
                _ => true,
            };
            return Fast::Text(Box::new(crate::fast::Text {
                path,
                ws: rest.to_string(),
                span: edge.span,
                clean,
                in_span: healed.in_span,
                link,
                seg: (0, 0),
                dest: region.contains("]("),
                placed: false,
            }));
        }
        let last_line = line_start(region, region.len());
        if edge.code
            && healed.fenced
            && !edge.nested
            && region[last_line..] == edge.line
            // a bare CR stays text in fenced code: the parser places it
            && !edge.line.contains('\r')
            && healed.limit == region.len()
            && heal::open_fence_at_margin(&region[..last_line])
        {
            let Some(path) = rightmost_code(block) else {
                return Fast::None;
            };
            let (fence, fence_len) = heal::open_fence(region).unwrap_or((b'`', 3));
            return Fast::Code(Box::new(crate::fast::Code {
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
                grown: None,
            }));
        }
        Fast::None
    }
}

/// Whether a top-level block whose first line is still being typed can no longer join the
/// block before it: an ATX heading with text (`## T`), or, after a blank line, a line at
/// column 0 that cannot continue a list (not a list marker, not indented).
pub(crate) fn starts_for_good(region: &str, start: usize) -> bool {
    let ls = line_start(region, start);
    let line = &region[ls..];
    let h = line.bytes().take_while(|&b| b == b'#').count();
    if (1..=6).contains(&h) && line[h..].starts_with(' ') && !crate::heal::is_blank(&line[h..]) {
        return true;
    }
    let before = &region[..ls.saturating_sub(1)];
    let blank_before = crate::heal::is_blank(&before[line_start(before, before.len())..]);
    let first = line.bytes().next();
    blank_before && ls > 0 && first.is_some_and(|b| !b.is_ascii_whitespace() && !b"-*+0123456789".contains(&b))
}

/// The line that ends just before `pos` (a line start), without its line break.
pub(crate) fn line_before(s: &str, pos: usize) -> &str {
    if pos == 0 {
        return "";
    }
    let end = pos - 1;
    &s[line_start(s, end)..end]
}

pub(crate) fn line_start(s: &str, pos: usize) -> usize {
    s[..pos.min(s.len())].rfind('\n').map_or(0, |p| p + 1)
}

/// Whether two child-index paths are equal: a loop, where a slice's `==` calls `memcmp`, which
/// the interpreter running the module pays as a call and a loop over bytes (three times per
/// append in `place`).
fn same_path(a: &[usize], b: &[usize]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Whether a node holds a code block.
fn has_code(n: &Node) -> bool {
    match n {
        Node::Element(e) => e.name == "pre" || e.children.iter().any(has_code),
        Node::Html(_) => true,
        Node::Text(_) => false,
    }
}

/// Path of the deepest paragraph, list item or table body cell on the rightmost path.
pub(crate) fn leaf_path(nodes: &[Node]) -> Option<Vec<usize>> {
    let mut path = vec![nodes.len().checked_sub(1)?];
    let mut n = nodes.last()?;
    let mut found = None;
    while let Node::Element(e) = n {
        if matches!(e.name, "p" | "li" | "td") {
            found = Some(path.clone());
        }
        let i = crate::fast::last_shown(e);
        let Some(last) = i.and_then(|i| e.children.get(i)) else { break };
        path.extend(i);
        n = last;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::{same_path, MarkdownRenderer, Step};
    use crate::RenderOptions;

    /// What the binding sends for an append that took `Step::Grown` is what the patch
    /// `append` returns for it says the page gets, in every real answer split every 1 to 3
    /// bytes; and that route is the one most appends take.
    #[test]
    fn a_grown_step_reads_as_its_patch() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../bench/corpus/");
        for f in ["answer-zh.md", "answer-en.md"] {
            let text = std::fs::read_to_string([dir, f].concat()).unwrap();
            for step in 1..=3 {
                let mut r = MarkdownRenderer::new(RenderOptions::default());
                let (mut grown, mut appends, mut at) = (0, 0, 0);
                while at < text.len() {
                    let mut end = (at + step).min(text.len());
                    while !text.is_char_boundary(end) {
                        end += 1;
                    }
                    appends += 1;
                    if let Step::Grown = r.step(&text[at..end]) {
                        grown += 1;
                        let p = r.grown_patch();
                        assert_eq!(r.text_change(), p.text_change(), "{f} at {end}");
                        assert_eq!(r.grown.count, p.count);
                    }
                    at = end;
                }
                assert!(grown * 3 > appends, "{f}: {grown} of {appends} appends grew a text node");
            }
        }
    }

    /// A code line's last token that grows past what a word being typed grows by (a space
    /// after `=`, the quote that closes a string) is re-highlighted, and when the change is that
    /// token's text alone it grows in the tree as a typed word does: no patch built.
    #[test]
    fn a_re_highlighted_token_that_only_grew_is_a_grown_step() {
        for (head, more) in [("```js\nlet x =", " "), ("```js\nlet s = 'a b", "'"), ("```js\nf(a, ", "b")] {
            let mut r = MarkdownRenderer::new(RenderOptions::default());
            for c in head.chars() {
                r.step(c.encode_utf8(&mut [0; 4]));
            }
            let mut fresh = MarkdownRenderer::new(RenderOptions::default());
            fresh.append(&[head, more].concat());
            let step = r.step(more);
            assert!(matches!(step, Step::Grown), "{head:?} + {more:?}");
            assert_eq!(r.blocks(), fresh.blocks(), "{head:?} + {more:?}");
        }
    }

    /// A patch whose nodes are the tree's (a code line re-highlighted, a suffix or a list
    /// item re-parsed: `patch::replace_children`) is written as the binding writes it, from
    /// the tree, exactly as the copy `append` returns, in every real answer split every 1 to
    /// 3 bytes.
    #[test]
    fn a_patch_read_from_the_tree_writes_as_its_copy() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../bench/corpus/");
        for f in ["answer-zh.md", "answer-en.md"] {
            let text = std::fs::read_to_string([dir, f].concat()).unwrap();
            for step in 1..=3 {
                let mut r = MarkdownRenderer::new(RenderOptions::default());
                let (mut tree, mut at) = (0, 0);
                while at < text.len() {
                    let mut end = (at + step).min(text.len());
                    while !text.is_char_boundary(end) {
                        end += 1;
                    }
                    if let Step::Patch(p) = r.step(&text[at..end]) {
                        tree += p.blocks.iter().filter(|b| b.tree && b.nodes.is_empty()).count();
                        let copy = r.owned(p.clone());
                        assert!(copy.blocks.iter().all(|b| !b.tree));
                        let (mut read, mut copied) = (String::new(), String::new());
                        p.write_json_in(Some(&r), &mut read);
                        copy.write_json(&mut copied);
                        assert_eq!(read, copied, "{f} at {end}");
                        assert_eq!(p.text_change_in(Some(&r)), copy.text_change(), "{f} at {end}");
                    }
                    at = end;
                }
                assert!(tree > 100, "{f}: {tree} patches read from the tree");
            }
        }
    }

    #[test]
    fn same_path_compares_every_index() {
        assert!(same_path(&[], &[]));
        assert!(same_path(&[0, 3, 1], &[0, 3, 1]));
        assert!(!same_path(&[0, 3, 1], &[0, 4, 1]));
        assert!(!same_path(&[0, 3, 1], &[0, 3, 2]));
        assert!(!same_path(&[1, 3, 1], &[0, 3, 1]));
        assert!(!same_path(&[0, 3], &[0, 3, 1]));
    }
}
