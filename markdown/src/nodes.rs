//! The rich-text node tree, and its two serializations.
//!
//! A block's nodes are exactly what `<rich-text nodes>` accepts
//! (<https://developers.weixin.qq.com/miniprogram/dev/component/rich-text.html>):
//! element nodes `{"name":"p","attrs":{"class":"md-p"},"children":[...]}` and text nodes
//! `{"type":"text","text":"hi"}`. Only tags on the rich-text whitelist are produced.
//!
//! Two things rich-text cannot carry are kept beside the JSON:
//! - a link's URL and title ([`Link`]): rich-text has no `href` and no events, so the URL
//!   reaches the page through [`crate::BlockPatch::links`], never through the nodes;
//! - raw HTML ([`Node::Html`], only with `RenderOptions::html`): a block holding some is
//!   serialized as one HTML *string* instead of an array, which rich-text also accepts and
//!   sanitizes with its own whitelist.

use chunkwise::json::write_str;

/// One rich-text node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    /// An element. `class` and `style` go to `attrs.class` / `attrs.style` in the JSON.
    Element(Element),
    /// A text node (shown literally: `&` is escaped in the JSON because rich-text decodes
    /// entities inside text nodes).
    Text(String),
    /// Raw HTML from the Markdown source (only with `RenderOptions::html`).
    Html(String),
}

/// An element node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Element {
    /// Tag name, always one rich-text allows.
    pub name: &'static str,
    /// Space-separated classes (with the configured prefix).
    pub class: String,
    /// Inline style (table cell alignment only); empty when none.
    pub style: String,
    /// Other attributes rich-text accepts: `src`/`alt` on `img`, `start` on `ol`.
    pub attrs: Vec<(&'static str, String)>,
    /// The target of a link (`a`) or the title of an image. Not part of the JSON.
    pub link: Option<Box<Link>>,
    /// Child nodes.
    pub children: Vec<Node>,
}

/// A link target, kept out of the rich-text JSON (rich-text accepts no `href`).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Link {
    /// The destination URL, as written (after entity and escape decoding).
    pub href: String,
    /// The title, empty when none.
    pub title: String,
    /// Found by the GFM autolink extension in plain text (`www.…`, `https://…`, email).
    pub autolink: bool,
}

impl Element {
    pub(crate) fn new(name: &'static str, class: String) -> Self {
        Element { name, class, style: String::new(), attrs: Vec::new(), link: None, children: Vec::new() }
    }
}

impl Node {
    /// Appends this node as rich-text JSON.
    pub fn write_json(&self, out: &mut String) {
        match self {
            Node::Text(t) | Node::Html(t) => text_node_json(t, out),
            Node::Element(e) => {
                out.push_str("{\"name\":\"");
                out.push_str(e.name);
                out.push_str("\",\"attrs\":{\"class\":");
                write_str(out, &e.class);
                if !e.style.is_empty() {
                    out.push_str(",\"style\":");
                    write_str(out, &e.style);
                }
                for (k, v) in &e.attrs {
                    out.push_str(",\"");
                    out.push_str(k);
                    out.push_str("\":");
                    write_str(out, v);
                }
                out.push('}');
                // An element that may get children has the array even while empty: a page
                // adds them with `….children[0]` keys, which need it to exist.
                if !matches!(e.name, "img" | "hr") {
                    out.push_str(",\"children\":");
                    write_children(&e.children, segmented(e.name), 0, out);
                }
                out.push('}');
            }
        }
    }

    /// The node as HTML (for tests and for blocks holding raw HTML). Links get their
    /// `href`/`title` back here.
    pub fn to_html(&self) -> String {
        let mut s = String::new();
        self.write_html(&mut s);
        s
    }

    /// Appends this node as HTML.
    pub fn write_html(&self, out: &mut String) {
        match self {
            Node::Text(t) => escape_html(t, false, out),
            Node::Html(h) => out.push_str(h),
            Node::Element(e) => {
                out.push('<');
                out.push_str(e.name);
                out.push_str(" class=\"");
                escape_html(&e.class, true, out);
                out.push('"');
                if !e.style.is_empty() {
                    out.push_str(" style=\"");
                    escape_html(&e.style, true, out);
                    out.push('"');
                }
                if let Some(l) = &e.link {
                    if e.name == "a" {
                        out.push_str(" href=\"");
                        escape_html(&l.href, true, out);
                        out.push('"');
                    }
                    if !l.title.is_empty() {
                        out.push_str(" title=\"");
                        escape_html(&l.title, true, out);
                        out.push('"');
                    }
                }
                for (k, v) in &e.attrs {
                    out.push(' ');
                    out.push_str(k);
                    out.push_str("=\"");
                    escape_html(v, true, out);
                    out.push('"');
                }
                out.push('>');
                if matches!(e.name, "img" | "hr") {
                    return;
                }
                for c in &e.children {
                    c.write_html(out);
                }
                out.push_str("</");
                out.push_str(e.name);
                out.push('>');
            }
        }
    }

    /// The text a reader sees (text nodes and raw HTML, concatenated); images add nothing.
    pub fn visible_text(&self, out: &mut String) {
        match self {
            Node::Text(t) | Node::Html(t) => out.push_str(t),
            Node::Element(e) => e.children.iter().for_each(|c| c.visible_text(out)),
        }
    }

    pub(crate) fn has_html(&self) -> bool {
        match self {
            Node::Html(_) => true,
            Node::Text(_) => false,
            Node::Element(e) => e.children.iter().any(Node::has_html),
        }
    }

    /// Link and image URLs in document order.
    pub(crate) fn collect_links(&self, out: &mut Vec<String>) {
        if let Node::Element(e) = self {
            if e.name == "a" {
                if let Some(l) = &e.link {
                    out.push(l.href.clone());
                }
            } else if e.name == "img" {
                if let Some((_, src)) = e.attrs.iter().find(|(k, _)| *k == "src") {
                    out.push(src.clone());
                }
            }
            e.children.iter().for_each(|c| c.collect_links(out));
        }
    }
}

/// Writes a JSON array of nodes: `[...]`.
pub fn write_json_array(nodes: &[Node], out: &mut String) {
    write_children(nodes, true, 0, out);
}

/// The longest text node a page is sent, in bytes (a little more to end on a character).
/// A growing paragraph's text is sent as segments of this size, split at fixed offsets from
/// the start of its text, so an append re-sends only the last segment: setData replaces
/// values, it cannot extend a string, and re-sending a whole paragraph per append would
/// cost its length. rich-text shows adjacent text nodes as one text. An append re-sends half
/// a segment on average and each segment adds a text node's `{"type":"text","text":""}` to
/// the page: in the demo page (`bench/setdata.js`) the setData total is least between 24
/// and 32 bytes, at 28 (ten Chinese characters) 4% below 64, for 5% more page data.
pub const SEGMENT: usize = 28;

/// Whether the text children of an element are sent as segments: everywhere but in code,
/// whose lines and spans are nodes of their own.
#[inline(always)]
pub(crate) fn segmented(parent: &str) -> bool {
    // (a byte pattern: no `memcmp` call, asked for each level of each change's path)
    !matches!(parent.as_bytes(), [b'p', b'r', b'e'] | [b'c', b'o', b'd', b'e'])
}

/// The byte ranges of a text's segments: from the start, each ends at the first character
/// boundary [`SEGMENT`] bytes or more after it begins, the last one takes the rest. So the
/// segments of a text that grows only ever change from its last one on.
pub(crate) fn segments(t: &str) -> Segments<'_> {
    Segments { t, start: 0, done: false }
}

pub(crate) struct Segments<'a> {
    t: &'a str,
    start: usize,
    done: bool,
}

impl Iterator for Segments<'_> {
    type Item = std::ops::Range<usize>;

    // (one copy of the walk for every caller: the module's size limit)
    #[inline(never)]
    fn next(&mut self) -> Option<Self::Item> {
        let (t, start) = (self.t, self.start);
        if self.done {
            return None;
        }
        if t.len() - start <= SEGMENT {
            self.done = true;
            return Some(start..t.len());
        }
        let mut end = start + SEGMENT;
        while !t.is_char_boundary(end) {
            end += 1;
        }
        self.done = end == t.len();
        self.start = end;
        Some(start..end)
    }
}

/// How many nodes some children are on the page.
pub(crate) fn page_len(nodes: &[Node], seg: bool) -> usize {
    // (a code block's lines, counted on every append to it: no walk through them)
    if !seg {
        return nodes.len();
    }
    nodes
        .iter()
        .map(|n| match n {
            Node::Text(t) => segments(t).count(),
            _ => 1,
        })
        .sum()
}

/// Writes the nodes a child list is on the page (`seg`: text children as segments),
/// skipping the first `skip`, each after `each`. `text_first`: the first one written is a
/// text node, written as its text alone (a JSON string).
pub(crate) fn write_page_nodes(
    nodes: &[Node],
    seg: bool,
    skip: usize,
    mut each: impl FnMut(&mut String),
    text_first: bool,
    out: &mut String,
) {
    let mut k = 0;
    let text = |t: &str, out: &mut String, first: bool| {
        if first && text_first {
            text_json(t, out);
        } else {
            text_node_json(t, out);
        }
    };
    for n in nodes {
        match n {
            Node::Text(t) if seg => {
                for r in segments(t) {
                    if k >= skip {
                        each(out);
                        text(&t[r], out, k == skip);
                    }
                    k += 1;
                }
            }
            Node::Text(t) => {
                if k >= skip {
                    each(out);
                    text(t, out, k == skip);
                }
                k += 1;
            }
            _ => {
                if k >= skip {
                    each(out);
                    n.write_json(out);
                }
                k += 1;
            }
        }
    }
}

/// Writes the JSON array of the nodes a child list is on the page, from page node `skip` on.
pub(crate) fn write_children(nodes: &[Node], seg: bool, skip: usize, out: &mut String) {
    out.push('[');
    let mut first = true;
    write_page_nodes(
        nodes,
        seg,
        skip,
        |out| {
            if !first {
                out.push(',');
            }
            first = false;
        },
        false,
        out,
    );
    out.push(']');
}

/// A class name: the prefix and a name (without `format!`, whose machinery costs interpreted
/// wasm more than the two copies).
pub(crate) fn class_name(prefix: &str, name: &str) -> String {
    let mut s = String::with_capacity(prefix.len() + name.len());
    s.push_str(prefix);
    s.push_str(name);
    s
}

/// Appends a number in decimal (its digits pushed one by one: no buffer to validate as UTF-8,
/// which cost an interpreter more than the digits, several numbers per patch).
pub(crate) fn push_number(out: &mut String, n: usize) {
    if n >= 10 {
        push_number(out, n / 10);
    }
    out.push(char::from(b'0' + (n % 10) as u8));
}

fn text_node_json(t: &str, out: &mut String) {
    out.push_str("{\"type\":\"text\",\"text\":");
    text_json(t, out);
    out.push('}');
}

/// Writes one block's `nodes` value: a JSON array, or, when the block holds raw HTML, a
/// JSON string of its HTML (rich-text takes either).
pub fn write_block_json(nodes: &[Node], out: &mut String) {
    if !cfg!(target_arch = "wasm32") && nodes.iter().any(Node::has_html) {
        let html = nodes_to_html(nodes);
        write_str(out, &html);
    } else {
        write_json_array(nodes, out);
    }
}

/// HTML of a node list.
pub fn nodes_to_html(nodes: &[Node]) -> String {
    let mut s = String::new();
    for n in nodes {
        n.write_html(&mut s);
    }
    s
}

/// Writes a rich-text text node's text as a JSON string: `&` as `&amp;`, since rich-text
/// decodes entities in text nodes.
fn text_json(t: &str, out: &mut String) {
    if t.contains('&') {
        write_str(out, &t.replace('&', "&amp;"));
    } else {
        write_str(out, t);
    }
}

fn escape_html(s: &str, attr: bool, out: &mut String) {
    let mut last = 0;
    for (i, b) in s.bytes().enumerate() {
        let rep = match b {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' if attr => "&quot;",
            _ => continue,
        };
        out.push_str(&s[last..i]);
        out.push_str(rep);
        last = i + 1;
    }
    out.push_str(&s[last..]);
}

/// The node at a child-index path in a block (the first index picks the block's node).
pub(crate) fn node_at<'a>(nodes: &'a mut [Node], path: &[usize]) -> Option<&'a mut Node> {
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

/// [`node_at`], shared.
/// The children of the element at `path` in `nodes` (`nodes` itself for an empty path).
pub(crate) fn children_at<'a>(mut nodes: &'a [Node], path: &[usize]) -> Option<&'a [Node]> {
    for &i in path {
        let Some(Node::Element(e)) = nodes.get(i) else { return None };
        nodes = &e.children;
    }
    Some(nodes)
}

pub(crate) fn node_at_ref<'a>(nodes: &'a [Node], path: &[usize]) -> Option<&'a Node> {
    let (first, rest) = path.split_first()?;
    let mut n = nodes.get(*first)?;
    for &i in rest {
        match n {
            Node::Element(e) => n = e.children.get(i)?,
            _ => return None,
        }
    }
    Some(n)
}
