//! What a page is sent: the changes of one append, as `setData` entries or JSON, and the
//! one step that turns a changed node list into such a change (`splice`).

use chunkwise::json::write_str;

use crate::nodes::{self, Element, Node};
use crate::MarkdownRenderer;

/// The changes of one [`crate::MarkdownRenderer::append`] or [`crate::MarkdownRenderer::finish`].
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
    /// The new children from `start` on; but for a text that grew (`kept` > 0), the first
    /// is its text from a point in the old text on (see `kept`).
    pub nodes: Vec<Node>,
    /// The block's link and image URLs in order, sent once when the block becomes final
    /// (or at `finish`), if it has any. rich-text carries no `href`: a page lists these for
    /// copying, e.g. on long press of the block.
    pub links: Option<Vec<String>>,
    /// Where the page holds the change, in page nodes (a text is sent as segments, see
    /// [`nodes::SEGMENT`]); set by the renderer. `None`: path and start as they are.
    pub(crate) page: Option<PagePos>,
    /// The first node is a text that grew, and its first `kept` bytes are the last `kept`
    /// bytes of the old text (else 0): the new text is the old one's first `len - kept` bytes,
    /// then the node's. Its segments within them are what the page holds, not sent again.
    pub kept: usize,
    /// `nodes` is left empty: the new children are the renderer's, from `start` on at `path`
    /// (see [`crate::MarkdownRenderer::patch_nodes`]). A change made in the tree is written
    /// to the page from there, not copied into the patch and dropped after; `append` copies
    /// them in before it returns the patch.
    pub(crate) tree: bool,
}

/// A change's position counted in the nodes a page holds.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PagePos {
    pub path: Vec<usize>,
    pub start: usize,
    /// The changed children's text is segmented.
    pub seg: bool,
    /// Page nodes of the first changed child the page already holds.
    pub skip: usize,
}

impl BlockPatch {
    /// Whether this patch replaces the whole block.
    pub fn is_whole(&self) -> bool {
        self.path.is_empty() && self.start == 0
    }

    /// Appends the `setData` entries of this patch's nodes, `"key":value` pairs separated
    /// by commas (nothing when no node changed), for a page whose blocks live at `prefix`
    /// (e.g. `msgs[3].blocks`): `"msgs[3].blocks[7]":[…]` for a whole block, otherwise one
    /// entry per new child, `"msgs[3].blocks[7][0].children[2]":{…}`, and for a text node
    /// the page holds that grew, its text alone: `"msgs[3].blocks[7][0].children[2].text":"…"`.
    pub fn write_set_data(&self, prefix: &str, out: &mut String) {
        use std::fmt::Write as _;
        let mut key = format!("{prefix}[{}]", self.index);
        if self.is_whole() {
            write_str(out, &key);
            out.push(':');
            nodes::write_block_json(&self.nodes, out);
        } else {
            let (path, start, seg, skip) = self.position();
            for (d, i) in path.iter().enumerate() {
                let _ = write!(key, "{}[{i}]", if d == 0 { "" } else { ".children" });
            }
            let base = if path.is_empty() { key.clone() } else { [&key, ".children"].concat() };
            let grown = self.grown();
            let mut j = start;
            nodes::write_page_nodes(
                &self.nodes,
                seg,
                skip,
                |out| {
                    if j > start {
                        out.push(',');
                    }
                    let field = if grown && j == start { ".text" } else { "" };
                    write_str(out, &format!("{base}[{j}]{field}"));
                    out.push(':');
                    j += 1;
                },
                grown,
                out,
            );
        }
    }

    /// Whether the first page node this patch sends is a text node the page already holds,
    /// grown: a page sets its `text` alone (`…children[3].text`), without the node's
    /// `{"type":"text","text":…}` around it. On the fast paths that is most appends.
    pub fn grown(&self) -> bool {
        self.grown_in(&self.nodes)
    }

    /// [`BlockPatch::grown`], of the patch's nodes `nodes`.
    fn grown_in(&self, nodes: &[Node]) -> bool {
        let Some(Node::Text(t)) = nodes.first() else { return false };
        if self.kept == 0 || self.is_whole() {
            return false;
        }
        let (_, _, seg, skip) = self.position();
        // (the page holds the segment the old text ended in, unless it ended at its end)
        !seg || nodes::segments(t).nth(skip).is_some_and(|r| r.start < self.kept)
    }

    /// Path, start, whether text is segmented and the page nodes to skip, as the page counts.
    fn position(&self) -> (&[usize], usize, bool, usize) {
        match &self.page {
            Some(p) => (&p.path, p.start + p.skip, p.seg, p.skip),
            None => (&self.path, self.start, false, 0),
        }
    }

    /// Appends this patch as JSON:
    /// `{"index":7,"path":[0],"start":2,"nodes":[…],"grown":true,"links":["https://…"]}`
    /// (`grown` only when [`BlockPatch::grown`]: the page may set `nodes[0].text` alone;
    /// `links` only when the block became final with links). `nodes` is an HTML string for a whole block
    /// holding raw HTML.
    pub fn write_json(&self, out: &mut String) {
        self.write_json_in(&self.nodes, out);
    }

    /// [`BlockPatch::write_json`], of the patch's nodes `nodes`.
    fn write_json_in(&self, nodes: &[Node], out: &mut String) {
        // (numbers without core::fmt, whose machinery is a measurable part of an append in
        // interpreted wasm)
        out.push_str("{\"index\":");
        nodes::push_number(out, self.index);
        out.push_str(",\"path\":[");
        let (path, start, seg, skip) = if self.is_whole() { (&[][..], 0, true, 0) } else { self.position() };
        for (i, &p) in path.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            nodes::push_number(out, p);
        }
        out.push_str("],\"start\":");
        nodes::push_number(out, start);
        out.push_str(",\"nodes\":");
        if self.is_whole() {
            nodes::write_block_json(nodes, out);
        } else {
            nodes::write_children(nodes, seg, skip, out);
        }
        if !self.is_whole() && self.grown_in(nodes) {
            out.push_str(",\"grown\":true");
        }
        if let Some(links) = &self.links {
            out.push_str(",\"links\":[");
            for (i, l) in links.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(out, l);
            }
            out.push(']');
        }
        out.push('}');
    }
}

impl Patch {
    /// Appends the patch as JSON: `{"blocks":[…],"count":12}`.
    pub fn write_json(&self, out: &mut String) {
        self.write_json_in(None, out);
    }

    /// [`Patch::write_json`], where a block patch's nodes may be the tree's of `r` (see
    /// [`BlockPatch::tree`]).
    pub(crate) fn write_json_in(&self, r: Option<&MarkdownRenderer>, out: &mut String) {
        out.push_str("{\"blocks\":[");
        for (i, b) in self.blocks.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            b.write_json_in(nodes_in(r, b), out);
        }
        out.push_str("],\"count\":");
        nodes::push_number(out, self.count);
        out.push('}');
    }

    /// When the patch is one text node's text (most appends: a text node the page holds
    /// grew), the change as a binding can pass it without JSON (the wasm binding does). Its
    /// JSON form is `{"blocks":[{"index":…,"path":…,"start":…,"nodes":[{"type":"text","text":…},…],
    /// "grown":true}],"count":…}`, without `grown` when the first node is a new one.
    pub fn text_change(&self) -> Option<TextChange<'_>> {
        self.text_change_in(None)
    }

    /// [`Patch::text_change`], where a block patch's nodes may be the tree's of `r` (see
    /// [`BlockPatch::tree`]).
    pub(crate) fn text_change_in<'a>(&'a self, r: Option<&'a MarkdownRenderer>) -> Option<TextChange<'a>> {
        let [b] = &self.blocks[..] else { return None };
        let [Node::Text(t)] = nodes_in(r, b) else { return None };
        if b.links.is_some() || b.is_whole() {
            return None;
        }
        let (path, start, seg, skip) = b.position();
        text_change(b.index, path, start, t, seg, skip, b.kept)
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }
}

/// The nodes of `b`: its own, or the tree's of `r` if it has none of its own.
fn nodes_in<'a>(r: Option<&'a MarkdownRenderer>, b: &'a BlockPatch) -> &'a [Node] {
    match r {
        Some(r) => r.patch_nodes(b),
        None => &b.nodes,
    }
}

/// A change that is one text node's text, for the page nodes from `start` on of the element
/// at page path `path` in block `index` (see [`Patch::text_change`]).
#[derive(Debug, PartialEq)]
pub struct TextChange<'a> {
    pub index: usize,
    pub path: &'a [usize],
    pub start: usize,
    /// The text of those page nodes: one, or, when `seg`, as many as its segments (see
    /// [`nodes::SEGMENT`]; the text starts at a segment's start, so they are the page's).
    pub text: &'a str,
    pub seg: bool,
    /// The first of them is a text node the page holds, grown: the page sets its `text`
    /// alone (see [`BlockPatch::grown`]). Otherwise all are new.
    pub grown: bool,
}

/// Of a text node's text `t` from where its patch starts, the page nodes the page gets when
/// that is all that changed: from page node `skip` of it on (all of `t` when its parent's
/// text is not segmented), of which the page held the first `kept` bytes, when none holds a
/// `&` (escaped in the JSON form, see `nodes::text_json`). [`Patch::text_change`] and the
/// renderer's own, which reads it from the tree without a patch.
pub(crate) fn text_change<'a>(
    index: usize,
    path: &'a [usize],
    start: usize,
    t: &'a str,
    seg: bool,
    skip: usize,
    kept: usize,
) -> Option<TextChange<'a>> {
    let r = if seg { nodes::segments(t).nth(skip)? } else { 0..t.len() };
    // (as `BlockPatch::grown` says)
    let grown = kept > 0 && (!seg || r.start < kept);
    let text = &t[r.start..];
    (!crate::highlight::has(text.as_bytes(), b'&')).then_some(TextChange { index, path, start, text, seg, grown })
}

pub(crate) enum Splice {
    Same,
    /// Replace children from this index on (of the new nodes, at the path `splice` leaves);
    /// the first one is a text that grew from one of this many bytes (else 0).
    At(usize, usize),
    /// Cannot be done at this level without shortening the array.
    Shrinks,
}

/// `seg`: the text children are sent as segments (see [`nodes::segmented`]).
pub(crate) fn splice(old: &[Node], new: &[Node], path: &mut Vec<usize>, seg: bool) -> Splice {
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
                match splice(&a.children, &b.children, path, nodes::segmented(a.name)) {
                    Splice::Shrinks => {
                        path.pop();
                    }
                    s => return s,
                }
            }
        }
    }
    // (a text that shrinks may be fewer segments: the page's array would keep the rest)
    if seg && nodes::page_len(&new[k..], seg) < nodes::page_len(&old[k..], seg) {
        return Splice::Shrinks;
    }
    let kept = match (old.get(k), &new[k]) {
        // (only a text that grew: its segments before the old end are what the page holds)
        (Some(Node::Text(a)), Node::Text(b)) if b.starts_with(a.as_str()) => a.len(),
        _ => 0,
    };
    Splice::At(k, kept)
}

/// The smallest patch turning block `index`'s nodes `old` into `new`, which the tree holds
/// at `index` once the patch is written: its nodes are the tree's (see [`BlockPatch::tree`]).
pub(crate) fn diff(index: usize, old: &[Node], new: &[Node]) -> Option<BlockPatch> {
    let mut path = Vec::new();
    let (start, kept) = match splice(old, new, &mut path, true) {
        Splice::Same => return None,
        Splice::At(start, kept) => (start, kept),
        // (the block replaced whole)
        Splice::Shrinks => {
            path.clear();
            (0, 0)
        }
    };
    Some(BlockPatch { index, path, start, nodes: Vec::new(), links: None, page: None, kept, tree: true })
}

/// Replaces the children of `e` from `k` on with `kids`, and returns the patch that makes
/// the same change on the page, where `path` leads to `e` in block `index` (`None`: nothing
/// changed): its nodes are the tree's (see [`BlockPatch::tree`]). A patch never shortens an
/// array: when the new children are fewer, `e` is sent whole.
pub(crate) fn replace_children(
    index: usize,
    path: &[usize],
    e: &mut Element,
    k: usize,
    kids: Vec<Node>,
) -> Option<BlockPatch> {
    // (compared before the children are replaced: no copy of the old ones)
    let mut sub_path = Vec::new();
    let change = splice(&e.children[k..], &kids, &mut sub_path, nodes::segmented(e.name));
    e.children.truncate(k);
    e.children.extend(kids);
    match change {
        Splice::Same => None,
        Splice::At(start, kept) => {
            let mut full = path.to_vec();
            let start = if sub_path.is_empty() {
                start + k
            } else {
                sub_path[0] += k;
                full.extend(sub_path);
                start
            };
            Some(BlockPatch { index, path: full, start, nodes: Vec::new(), links: None, page: None, kept, tree: true })
        }
        Splice::Shrinks => {
            let (&last, parent) = path.split_last()?;
            Some(BlockPatch {
                index,
                path: parent.to_vec(),
                start: last,
                nodes: vec![Node::Element(e.clone())],
                links: None,
                page: None,
                kept: 0,
                tree: false,
            })
        }
    }
}
