//! Turns pulldown-cmark events (with source offsets) into rich-text nodes, one node list per
//! top-level block.
//!
//! Tag mapping (every tag is on the rich-text whitelist, every element has a class so a
//! component's wxss can style it; `md-` is the default prefix):
//!
//! | Markdown | nodes |
//! | --- | --- |
//! | paragraph, heading | `p.md-p`, `h1.md-h1` … `h6.md-h6` |
//! | block quote | `div.md-blockquote` (rich-text has no `blockquote`) |
//! | code block | `pre.md-pre > code.md-pre-code[.md-lang-X]`, tokens `span.md-kw/str/com/num/type/fn`; one text node per line when not highlighted |
//! | lists, task items | `ul.md-ul`/`ol.md-ol[start]` > `li.md-li`; checkbox `span.md-task[.md-task-done]` (no `input` in rich-text) |
//! | table | `div.md-table-wrap > table.md-table > thead/tbody > tr > th/td` with `text-align` style |
//! | emphasis, strong, strikethrough, code | `em.md-em`, `strong.md-strong`, `del.md-del`, `code.md-code` |
//! | math `$…$`, `$$…$$` | `code.md-math`, `code.md-math.md-math-display` (no KaTeX in rich-text) |
//! | link, autolink | `a.md-a` (URL in [`Element::link`], listed in `BlockPatch::links`) |
//! | image | `img.md-img[src][alt]` |
//! | hard break | `span.md-br` (styled `display:block`; rich-text has no `br`) |
//! | thematic break | `hr.md-hr` |
//! | raw HTML | text (default), or raw with `RenderOptions::html` |

use pulldown_cmark::{Alignment, CodeBlockKind, Event, HeadingLevel, LinkType, Tag, TagEnd};
use std::ops::Range;

use crate::autolink::{autolink, encode_url, maybe_link};
use crate::highlight::{self, State};
use crate::nodes::{Element, Link, Node};
use crate::RenderOptions;

/// A list item or table row: (path in its block, source offset).
pub(crate) type Mark = (Vec<usize>, usize);

/// One rendered top-level block.
#[derive(Debug, Clone)]
pub(crate) struct Block {
    /// Source offset of the block's first event.
    pub start: usize,
    pub nodes: Vec<Node>,
}

/// Where the rendering ends, for the renderer's fast paths.
#[derive(Debug, Clone, Default)]
pub(crate) struct Edge {
    /// The last content event was text ending at `text_end`, inside plain inline content.
    pub text: bool,
    /// The last content event was code-block text, and the code block is fenced.
    pub code: bool,
    /// The last content event was a code span left open (closed by healing).
    pub span: bool,
    /// End offset of the last text event.
    pub text_end: usize,
    /// For `code`: the highlighter language and the state at the start of the last line.
    pub lang: Option<&'static highlight::Lang>,
    pub line_state: State,
    /// For `code`: the code block's last line (partial) and the index of its first node
    /// among the code element's children.
    pub line: String,
    pub line_node: usize,
    /// For `code`: the code block is inside a container (list item, quote).
    pub nested: bool,
    /// A checkpoint in the paragraph or list item holding the end: (source offset, child
    /// index). Nothing before the offset can change however the text goes on within the
    /// same line, so the renderer may re-parse from there alone.
    pub cp: Option<(usize, usize)>,
}

struct Frame {
    el: Element,
    id: usize,
    /// Index in the parent's children.
    pos: usize,
    /// A paragraph or list item saw a literal Markdown punctuation character (a delimiter
    /// that may still pair with a later one): no checkpoint after it.
    pending: bool,
    /// Code block: the language and text collected so far.
    code: Option<(Option<&'static highlight::Lang>, String, bool)>,
    /// Image: alt text collected so far.
    alt: Option<String>,
}

pub(crate) struct Builder<'o> {
    opts: &'o RenderOptions,
    src: &'o str,
    next_id: usize,
    /// The paragraph or list item that received the last content, if nothing block-level
    /// came after it.
    leaf: Option<usize>,
    cp: Option<(usize, usize, usize)>,
    stack: Vec<Frame>,
    pub blocks: Vec<Block>,
    block_start: usize,
    aligns: Vec<Alignment>,
    in_head: bool,
    cell: usize,
    /// Source bytes at or past `limit` are synthetic (healing closers): their text is dropped.
    limit: usize,
    pub edge: Edge,
    /// List items and table body rows of the last block: (path in the block, source offset).
    pub marks: Vec<Mark>,
    /// Inside an image: tags nested in its description only contribute alt text.
    in_image: bool,
    skip: usize,
}

impl<'o> Builder<'o> {
    pub fn new(opts: &'o RenderOptions, src: &'o str, limit: usize) -> Self {
        Builder {
            opts,
            src,
            next_id: 0,
            leaf: None,
            cp: None,
            stack: Vec::new(),
            blocks: Vec::new(),
            block_start: 0,
            aligns: Vec::new(),
            in_head: false,
            cell: 0,
            limit,
            edge: Edge::default(),
            in_image: false,
            skip: 0,
            marks: Vec::new(),
        }
    }

    fn class(&self, name: &str) -> String {
        crate::nodes::class_name(&self.opts.class_prefix, name)
    }

    fn push(&mut self, name: &'static str, class: &str) {
        let el = Element::new(name, self.class(class));
        self.next_id += 1;
        let pos = self.stack.last().map_or(0, |p| p.el.children.len());
        self.stack.push(Frame { el, id: self.next_id, pos, pending: false, code: None, alt: None });
    }

    /// Records where the element just opened starts, with its path in the block.
    fn mark(&mut self, start: usize) {
        let path = self.stack.iter().map(|f| f.pos).collect();
        self.marks.push((path, start));
    }

    /// The innermost open paragraph, list item or table body cell.
    fn leaf_frame(&mut self) -> Option<&mut Frame> {
        self.stack.iter_mut().rev().find(|f| matches!(f.el.name, "p" | "li" | "td"))
    }

    /// Attaches a finished node to the innermost open element, or makes it a block.
    fn attach(&mut self, node: Node) {
        match self.stack.last_mut() {
            Some(f) => f.el.children.push(node),
            None => self.blocks.push(Block { start: self.block_start, nodes: vec![node] }),
        }
    }

    fn text(&mut self, t: &str) {
        if let Some(f) = self.stack.last_mut() {
            if let Some(alt) = &mut f.alt {
                alt.push_str(t);
                return;
            }
            if let Some((_, code, _)) = &mut f.code {
                code.push_str(t);
                return;
            }
            if let Some(Node::Text(last)) = f.el.children.last_mut() {
                last.push_str(t);
                return;
            }
            f.el.children.push(Node::Text(t.to_string()));
        }
    }

    fn in_link(&self) -> bool {
        self.stack.iter().any(|f| f.el.name == "a")
    }

    pub fn event(&mut self, ev: Event<'_>, range: Range<usize>) {
        if self.stack.is_empty() {
            self.block_start = range.start;
            self.marks.clear();
        }
        // (cells a short row is padded with are empty: not content)
        let padding = matches!(ev, Event::Start(Tag::TableCell)) && range.is_empty();
        let content = !matches!(ev, Event::End(_)) && !padding;
        if content {
            self.edge.text = false;
            self.edge.code = false;
            self.edge.span = false;
            let block = matches!(
                &ev,
                Event::Start(
                    Tag::Paragraph
                        | Tag::Heading { .. }
                        | Tag::BlockQuote(_)
                        | Tag::CodeBlock(_)
                        | Tag::HtmlBlock
                        | Tag::List(_)
                        | Tag::Item
                        | Tag::Table(_)
                ) | Event::Rule
            );
            self.leaf = if block { None } else { self.leaf_frame().map(|f| f.id) };
            match &ev {
                Event::Text(t) => self.checkpoint(Some(t), &range),
                Event::Code(_) | Event::InlineMath(_) | Event::Start(Tag::Link { .. } | Tag::Image { .. }) => {
                    self.checkpoint(None, &range)
                }
                // An emphasis opener after a space: with the `a ` prefix it flanks the same way
                // (after a letter it could also close, which changes how runs pair up).
                Event::Start(Tag::Emphasis | Tag::Strong | Tag::Strikethrough)
                    if self.src[..range.start].ends_with([' ', '\t']) =>
                {
                    self.checkpoint(None, &range)
                }
                _ => {}
            }
        }
        match ev {
            Event::Start(_) if self.in_image => self.skip += 1,
            Event::End(_) if self.in_image && self.skip > 0 => self.skip -= 1,
            Event::End(end) if self.in_image => {
                self.in_image = false;
                self.end(end)
            }
            Event::Start(tag) => self.start(tag, range),
            Event::End(end) => self.end(end),
            Event::Text(t) => {
                // Drop text that comes from synthetic healing closers.
                if range.start >= self.limit {
                    return;
                }
                let t: &str = &t;
                let t = if range.end > self.limit && t.len() == range.len() {
                    &t[..t.len() - (range.end - self.limit)]
                } else {
                    t
                };
                self.text(t);
                let plain = self.stack.last().is_some_and(|f| f.alt.is_none() && f.code.is_none());
                self.edge.text_end = range.end.min(self.limit);
                if plain {
                    self.edge.text = true;
                } else if let Some(Frame { code: Some((lang, code, fenced)), .. }) = self.stack.last() {
                    self.edge.code = *fenced;
                    self.edge.lang = *lang;
                    let _ = code;
                }
            }
            Event::Code(t) => {
                // A code span closed by healing, whose content runs to the end as written,
                // can grow without a parse.
                let ticks = self.src[range.start..].bytes().take_while(|&b| b == b'`').count();
                if range.end > self.limit
                    && range.start + ticks <= self.limit
                    && self.src.get(range.start + ticks..self.limit) == Some(&*t)
                    && self.stack.last().is_some_and(|f| f.alt.is_none())
                {
                    self.edge.span = true;
                    self.edge.text_end = self.limit;
                }
                let mut el = Element::new("code", self.class("code"));
                el.children.push(Node::Text(t.to_string()));
                self.inline(Node::Element(el));
            }
            Event::InlineMath(ref t) | Event::DisplayMath(ref t) => {
                let display = matches!(ev, Event::DisplayMath(_));
                let class = if display {
                    {
                        let p = &self.opts.class_prefix;
                        [p, "math ", p, "math-display"].concat()
                    }
                } else {
                    self.class("math")
                };
                // braces a healing closer added are not shown
                let syn = range.end.saturating_sub(self.limit).saturating_sub(if display { 2 } else { 1 });
                let mut t: &str = t;
                if syn > 0 && syn <= t.len() && t.is_char_boundary(t.len() - syn) {
                    t = &t[..t.len() - syn];
                }
                let mut el = Element::new("code", class);
                el.children.push(Node::Text(t.to_string()));
                self.inline(Node::Element(el));
            }
            Event::Html(t) | Event::InlineHtml(t) => {
                if range.start >= self.limit {
                    return;
                }
                if self.opts.raw_html() {
                    let node = Node::Html(t.to_string());
                    self.inline(node);
                } else {
                    self.text(&t);
                }
            }
            Event::SoftBreak => self.text("\n"),
            Event::HardBreak => {
                let el = Element::new("span", self.class("br"));
                self.inline(Node::Element(el));
            }
            Event::Rule => {
                let el = Element::new("hr", self.class("hr"));
                self.attach(Node::Element(el));
            }
            Event::TaskListMarker(done) => {
                let class = if done {
                    let p = &self.opts.class_prefix;
                    [p, "task ", p, "task-done"].concat()
                } else {
                    self.class("task")
                };
                let el = Element::new("span", class);
                self.inline(Node::Element(el));
            }
            Event::FootnoteReference(t) => self.text(&["[^", &t, "]"].concat()),
        }
    }

    /// Records a checkpoint at a text event that starts a new text node directly in a
    /// paragraph or list item, when no literal delimiter came before it there; then marks the
    /// paragraph pending if this text holds one.
    fn checkpoint(&mut self, text: Option<&str>, range: &Range<usize>) {
        // (a match, not a slice's `contains`: that is a memchr call per byte, a cost that an
        // interpreter running the module pays in full)
        let special = |b: u8| {
            matches!(b, b'*' | b'_' | b'~' | b'`' | b'[' | b']' | b'<' | b'>' | b'!' | b'&' | b'$' | b'\\' | b'|')
        };
        if self.in_image || range.start >= self.limit || (text.is_some() && range.end > self.limit) {
            return;
        }
        let src = self.src.get(range.clone()).unwrap_or("");
        let Some(top) = self.stack.last() else { return };
        let ok = match text {
            // a text event must start a new text node, and be the source as written
            Some(t) => {
                !matches!(top.el.children.last(), Some(Node::Text(_)))
                    && src == t
                    && !src.bytes().next().is_some_and(special)
            }
            // a code span, math or an inline element opening, unless a bare URL runs into it
            // (an autolink may take in what follows)
            None => !matches!(top.el.children.last(), Some(Node::Text(prev))
                if maybe_link(prev.rsplit(char::is_whitespace).next().unwrap_or(""))),
        };
        if ok && matches!(top.el.name, "p" | "li" | "td") && !top.pending && top.code.is_none() {
            self.cp = Some((range.start, top.el.children.len(), top.id));
        }
        // (a `|` in a paragraph's text pairs with nothing on its line; in a cell it is escaped)
        if text.is_some() && src.bytes().any(|b| b != b'|' && special(b)) {
            if let Some(f) = self.leaf_frame() {
                f.pending = true;
            }
        }
    }

    /// An inline leaf node (code span, math, break, raw HTML).
    fn inline(&mut self, node: Node) {
        if let Some(f) = self.stack.last_mut() {
            if let Some(alt) = &mut f.alt {
                let mut s = String::new();
                node.visible_text(&mut s);
                alt.push_str(&s);
                return;
            }
        }
        self.attach(node);
    }

    fn start(&mut self, tag: Tag<'_>, range: Range<usize>) {
        match tag {
            Tag::Paragraph => self.push("p", "p"),
            Tag::Heading { level, .. } => {
                let (name, class) = match level {
                    HeadingLevel::H1 => ("h1", "h1"),
                    HeadingLevel::H2 => ("h2", "h2"),
                    HeadingLevel::H3 => ("h3", "h3"),
                    HeadingLevel::H4 => ("h4", "h4"),
                    HeadingLevel::H5 => ("h5", "h5"),
                    HeadingLevel::H6 => ("h6", "h6"),
                };
                self.push(name, class);
            }
            Tag::BlockQuote(_) => self.push("div", "blockquote"),
            Tag::CodeBlock(kind) => {
                let (lang, info, fenced) = match &kind {
                    CodeBlockKind::Fenced(info) => (highlight::lang_of(info), info.to_string(), true),
                    CodeBlockKind::Indented => (None, String::new(), false),
                };
                let lang = if self.opts.highlight { lang } else { None };
                self.push("pre", "pre");
                let word = info.split_whitespace().next().unwrap_or("");
                let class = if word.is_empty() {
                    self.class("pre-code")
                } else {
                    {
                        let p = &self.opts.class_prefix;
                        [p, "pre-code ", p, "lang-", word].concat()
                    }
                };
                let code = Element::new("code", class);
                self.next_id += 1;
                let pos = self.stack.last().map_or(0, |p| p.el.children.len());
                self.stack.push(Frame {
                    el: code,
                    id: self.next_id,
                    pos,
                    pending: false,
                    code: Some((lang, String::new(), fenced)),
                    alt: None,
                });
                self.edge.nested = self.stack.len() > 2;
                self.edge.code = fenced;
                self.edge.lang = lang;
                self.edge.text_end = range.start;
            }
            // Raw HTML lines are grouped in a transparent frame (name ""), unwrapped on pop;
            // without `html` they are text in a paragraph.
            Tag::HtmlBlock if self.opts.raw_html() => self.push("", ""),
            Tag::HtmlBlock => self.push("p", "p"),
            Tag::List(first) => match first {
                Some(n) => {
                    self.push("ol", "ol");
                    if n != 1 {
                        if let Some(f) = self.stack.last_mut() {
                            let mut s = String::new();
                            crate::nodes::push_number(&mut s, n as usize);
                            f.el.attrs.push(("start", s));
                        }
                    }
                }
                None => self.push("ul", "ul"),
            },
            Tag::Item => {
                self.push("li", "li");
                self.mark(range.start);
            }
            Tag::Table(aligns) => {
                self.push("div", "table-wrap");
                self.push("table", "table");
                self.aligns = aligns;
            }
            Tag::TableHead => {
                self.in_head = true;
                self.push("thead", "thead");
                self.push("tr", "tr");
                self.cell = 0;
            }
            Tag::TableRow => {
                if self.stack.last().is_some_and(|f| f.el.name == "table") {
                    self.push("tbody", "tbody");
                }
                self.push("tr", "tr");
                self.mark(range.start);
                self.cell = 0;
            }
            Tag::TableCell => {
                let (name, class) = if self.in_head { ("th", "th") } else { ("td", "td") };
                self.push(name, class);
                let style = match self.aligns.get(self.cell) {
                    Some(Alignment::Left) => "text-align:left",
                    Some(Alignment::Center) => "text-align:center",
                    Some(Alignment::Right) => "text-align:right",
                    _ => "",
                };
                if let Some(f) = self.stack.last_mut() {
                    f.el.style = style.to_string();
                }
                self.cell += 1;
            }
            Tag::Emphasis => self.push("em", "em"),
            Tag::Strong => self.push("strong", "strong"),
            Tag::Strikethrough => self.push("del", "del"),
            Tag::Superscript => self.push("sup", "sup"),
            Tag::Subscript => self.push("sub", "sub"),
            Tag::Link { link_type, dest_url, title, .. } => {
                self.push("a", "a");
                let href =
                    if link_type == LinkType::Email { ["mailto:", &dest_url].concat() } else { encode_url(&dest_url) };
                if let Some(f) = self.stack.last_mut() {
                    f.el.link = Some(Box::new(Link { href, title: title.to_string(), autolink: false }));
                }
            }
            Tag::Image { dest_url, title, .. } => {
                self.push("img", "img");
                if let Some(f) = self.stack.last_mut() {
                    f.el.attrs.push(("src", encode_url(&dest_url)));
                    f.alt = Some(String::new());
                    self.in_image = true;
                    if !title.is_empty() {
                        f.el.link =
                            Some(Box::new(Link { href: String::new(), title: title.to_string(), autolink: false }));
                    }
                }
            }
            Tag::FootnoteDefinition(_)
            | Tag::DefinitionList
            | Tag::DefinitionListTitle
            | Tag::DefinitionListDefinition
            | Tag::MetadataBlock(_) => self.push("div", "div"),
        }
    }

    fn end(&mut self, end: TagEnd) {
        match end {
            TagEnd::HtmlBlock => {
                if let Some(Frame { el, .. }) = self.stack.last_mut() {
                    if let Some(Node::Text(t)) = el.children.last_mut() {
                        let n = t.trim_end_matches('\n').len();
                        t.truncate(n);
                    }
                }
            }
            TagEnd::TableHead => {
                self.in_head = false;
                self.pop(); // tr
                self.pop(); // thead
                return;
            }
            TagEnd::Table => {
                if self.stack.last().is_some_and(|f| f.el.name == "tbody") {
                    self.pop();
                }
                self.pop(); // table
                self.pop(); // wrap
                return;
            }
            TagEnd::CodeBlock => {
                self.pop(); // code
                self.pop(); // pre
                return;
            }
            _ => {}
        }
        self.pop();
    }

    fn pop(&mut self) {
        let Some(mut f) = self.stack.pop() else {
            return;
        };
        if let Some(alt) = f.alt.take() {
            f.el.attrs.insert(0, ("alt", alt));
        }
        if let Some((lang, code, _)) = f.code.take() {
            let (nodes, state, last_line, line_node) = code_nodes(&code, lang, &self.opts.class_prefix);
            f.el.children = nodes;
            self.edge.line_state = state;
            self.edge.line = code[last_line..].to_string();
            self.edge.line_node = line_node;
        } else if f.el.name != "a" && self.opts.autolink && !self.in_link() {
            match &mut self.cp {
                // keep the checkpoint's child index right: link each side of it apart
                Some((_, k, id)) if *id == f.id && *k <= f.el.children.len() => {
                    let mut tail = f.el.children.split_off(*k);
                    autolink(&mut f.el.children, &self.opts.class_prefix);
                    autolink(&mut tail, &self.opts.class_prefix);
                    *k = f.el.children.len();
                    f.el.children.extend(tail);
                }
                _ => autolink(&mut f.el.children, &self.opts.class_prefix),
            }
        }
        if f.el.name.is_empty() {
            let kids = std::mem::take(&mut f.el.children);
            match self.stack.last_mut() {
                Some(p) => p.el.children.extend(kids),
                None => self.blocks.push(Block { start: self.block_start, nodes: kids }),
            }
            return;
        }
        self.attach(Node::Element(f.el));
    }

    pub fn finish(mut self) -> (Vec<Block>, Edge, Vec<Mark>) {
        if let (Some((pos, k, id)), Some(leaf)) = (self.cp, self.leaf) {
            if id == leaf {
                self.edge.cp = Some((pos, k));
            }
        }
        while !self.stack.is_empty() {
            self.pop();
        }
        (self.blocks, self.edge, self.marks)
    }
}

/// Code block nodes: one group of nodes per line (a line never shares a text node with the
/// next), so a streamed block re-renders only its last line. Returns the nodes, the
/// highlighter state at the start of the last line, and the byte offset of the last line.
pub(crate) fn code_nodes(
    code: &str,
    lang: Option<&'static highlight::Lang>,
    prefix: &str,
) -> (Vec<Node>, State, usize, usize) {
    let mut out = Vec::new();
    let mut state = State::Normal;
    let mut last_state = State::Normal;
    let mut last_line = 0;
    let mut line_node = 0;
    let mut pos = 0;
    for line in code.split_inclusive('\n') {
        last_state = state;
        last_line = pos;
        line_node = out.len();
        pos += line.len();
        match lang {
            Some(l) => {
                let (node, s) = highlight_line_node(l, line, state, prefix);
                state = s;
                out.push(node);
            }
            None => out.push(Node::Text(line.to_string())),
        }
    }
    if code.ends_with('\n') || code.is_empty() {
        last_state = state;
        last_line = code.len();
        line_node = out.len();
    }
    (out, last_state, last_line, line_node)
}

/// One highlighted line as a `span.md-ln` holding its tokens: a line is one node, so a
/// streamed line is replaced as a whole and the code element's child list only grows.
pub(crate) fn highlight_line_node(
    lang: &'static highlight::Lang,
    line: &str,
    state: State,
    prefix: &str,
) -> (Node, State) {
    let mut el = Element::new("span", crate::nodes::class_name(prefix, "ln"));
    let s = highlight::highlight_line(lang, line, state, prefix, &mut el.children);
    (Node::Element(el), s)
}
