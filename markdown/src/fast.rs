//! The fast paths: appends applied to the open block without a parse.

use crate::heal;
use crate::highlight::{self, has};
use crate::nodes::{node_at, Element, Node};
use crate::patch::{self, BlockPatch, Patch};
use crate::renderer::{MarkdownRenderer, Step};

/// What an append can do without parsing.
#[derive(Debug, Clone)]
pub(crate) enum Fast {
    None,
    /// Extend the text node of a paragraph, heading, list item, table cell or code span
    /// (see [`Text`]). Boxed, as [`Fast::Code`]: the state is taken and set again on every
    /// append, and most appends are this one's.
    Text(Box<Text>),
    /// The end of the source is hidden (see `heal::Hidden`): appends that keep it so change
    /// nothing. The offset is where the hidden lines start (for `Markers`); `clean`: what
    /// shows is the source before them rendered without healing (no closer was added).
    Hidden(heal::Hidden, usize, bool),
    /// A table row's next cell was opened by `|`: the (empty) cell element is at `path` in
    /// the last block. Text appended before any shows is cell padding.
    Cell {
        path: Vec<usize>,
    },
    /// Extend the last line of an open fenced code block (see [`Code`]). Boxed: most appends
    /// in a code block take this state and put it back, which moves a pointer, not the
    /// state (the fast state is taken and set again on every append).
    Code(Box<Code>),
}

/// The text node at `path` in the last block, which appends extend; `ws` is trailing
/// whitespace not shown yet (a paragraph's trailing spaces are stripped). `span`: the text is
/// an open code span's.
#[derive(Debug, Clone)]
pub(crate) struct Text {
    pub path: Vec<usize>,
    pub ws: String,
    pub span: bool,
    /// No healing closer is in effect.
    pub clean: bool,
    /// Healing's scan sees the end inside a code span: stray markers would show.
    pub in_span: bool,
    /// The text node's last word may be a bare URL or email being typed.
    pub link: bool,
    /// Where the text's last page segment starts and how many come before it (see
    /// `nodes::segments`): an append sends the text from there, and its walks start there.
    pub seg: (usize, usize),
    /// The open region holds `](`: a `)` may close a link's destination and turn the
    /// text before it into a link, even with a line break between its `[` and the end
    /// (healing looks at the last line only, so it shows such a text as written).
    pub dest: bool,
    /// The renderer's `Grown` holds where the page holds the text node (an append has
    /// grown it).
    pub placed: bool,
}

/// The line being typed in an open fenced code block whose code element is at `path`.
/// `head` holds the spans of `line[..split]`, a split point after which the line is
/// re-highlighted alone.
#[derive(Debug, Clone)]
pub(crate) struct Code {
    pub path: Vec<usize>,
    pub line: String,
    pub state: highlight::State,
    pub node: usize,
    pub lang: Option<&'static highlight::Lang>,
    pub fence: u8,
    pub fence_len: usize,
    pub split: usize,
    pub head: Vec<highlight::Span>,
    /// The line ends in an open comment or string: text without these bytes extends it.
    pub open: Option<Vec<u8>>,
    /// The renderer's `Grown` holds where the page holds the text of the token being
    /// typed, which an append has grown: the two indices `grown_text_at` found.
    pub grown: Option<(usize, usize)>,
}

impl MarkdownRenderer {
    /// Applies `text` (already pushed to the source) without parsing, when the fast state
    /// allows it.
    pub(crate) fn try_fast(&mut self, text: &str) -> Option<Step> {
        let index = self.done.len() + self.open.len().checked_sub(1)?;
        let fast = std::mem::replace(&mut self.fast, Fast::None);
        // (the code token that grows, found by its arm's guard: not looked up twice)
        let token;
        match fast {
            Fast::None => None,
            Fast::Hidden(heal::Hidden::Fence(ch, n), from, _) if has(text.as_bytes(), b'\n') => {
                // A closing fence of a top-level code block, then blank lines: the block
                // closes, which shows nothing new.
                let tail = &self.src[from..];
                let (fence, rest) = tail.split_once('\n')?;
                let top = matches!(self.open.last()?.first(), Some(Node::Element(e)) if e.name == "pre");
                let f = fence.trim_end_matches([' ', '\t', '\r']);
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
                Some(Step::Patch(patch))
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
                Some(Step::Patch(Patch { blocks: Vec::new(), count: index + 1 }))
            }
            Fast::Text(g)
                if !g.span && g.clean && !g.in_span && !g.link && has(text.as_bytes(), b'|') && !breaks(text) =>
            {
                self.next_cell(index, text, g.path).map(Step::Patch)
            }
            Fast::Cell { path } => self.cell_text(index, text, path).map(Step::Patch),
            Fast::Text(mut g) => {
                let Text { ref path, ref mut ws, span, clean, in_span, link, ref mut seg, dest, placed } = *g;
                // `](` or `]:` formed across the join (`]` itself is never appended here): a
                // link's destination, or a link reference definition, whose `[` the parse
                // that set this path saw as text
                let after_bracket = self.src.as_bytes().get(self.src.len().wrapping_sub(text.len() + 1)) == Some(&b']');
                if after_bracket && text.starts_with(':') {
                    return None;
                }
                let dest = dest || (after_bracket && text.starts_with('('));
                // (in an open code span too: healing may show a backtick in the destination
                // as one, which the `)` ends along with the link)
                if dest && has(text.as_bytes(), b')') {
                    return None;
                }
                // Text, then maybe a line break followed by blank lines and a last line of
                // block markers only: the break shows nothing yet (see `heal`).
                let (text, newline) = match text.bytes().position(|b| b == b'\n') {
                    Some(nl) if !span && heal::markers_tail(&text[nl + 1..], false) => {
                        (&text[..nl], Some(self.src.len() - text.len() + nl + 1))
                    }
                    Some(_) => return None,
                    None => (text, None),
                };
                if !span && !in_span && newline.is_none() && heal::strays_only(text) && !heal::is_blank(text) {
                    // stray markers at the edge are hidden: nothing shows yet
                    self.work += text.len();
                    return Some(Step::Patch(Patch { blocks: Vec::new(), count: index + 1 }));
                }
                let ok = if span {
                    text.bytes().all(|b| !matches!(b, b'`' | b'\r' | b'|'))
                } else {
                    text.bytes().all(inert)
                };
                if !ok {
                    return None;
                }
                // (where the page holds the text node does not change while it grows: found
                // once, kept in the fast state)
                if !placed {
                    self.place_grown(index, path, &[])?;
                }
                let block = self.open.last_mut()?;
                let node = node_at(block, path)?;
                let Node::Text(t) = node else { return None };
                // a bare URL or email being typed becomes an autolink: parse
                if span && t.starts_with(' ') {
                    return None;
                }
                // Whether the last word, with `text`, may be a bare URL or email: what the
                // word held is known (`link`), so only the bytes around the join are looked
                // at (`www.` and `://` may straddle it).
                let before = if ws.is_empty() { &t.as_bytes()[t.len().saturating_sub(3)..] } else { &[][..] };
                if !span
                    && self.opts.autolink
                    && ((link && ws.is_empty()) || crate::autolink::maybe_link_joined(before, text.as_bytes()))
                {
                    return None;
                }
                let shown = heal::trim_spaces_end(text);
                self.work += text.len();
                // (the state goes back as it came, boxed: `link` is false, the check above
                // returned otherwise)
                let step = if shown.is_empty() {
                    ws.push_str(text);
                    None
                } else {
                    let kept = t.len();
                    t.push_str(ws);
                    t.push_str(shown);
                    ws.clear();
                    ws.push_str(&text[shown.len()..]);
                    // The page holds the text's segments before the last one: the patch
                    // carries the text from the last segment on (`page.start`: the segments
                    // before it; a code span's text is one page node: whole). The next append
                    // starts from the new last segment.
                    let (from, before) = *seg;
                    if !span {
                        for (n, r) in crate::nodes::segments(&t[from..]).enumerate() {
                            *seg = (from + r.start, before + n);
                        }
                    }
                    Some(self.grown_step(index, from, kept - from, before))
                };
                (g.link, g.dest, g.placed) = (false, dest, true);
                self.fast = match newline {
                    Some(from) => Fast::Hidden(heal::Hidden::Markers, from, clean && !span),
                    None => Fast::Text(g),
                };
                Some(step.unwrap_or(Step::Patch(Patch { blocks: Vec::new(), count: index + 1 })))
            }
            Fast::Code(mut c)
                if match &c.open {
                    // the line ends in an open comment or string: text without these extends it
                    Some(stop) => {
                        !c.line.is_empty()
                            && c.line.as_bytes().last() != Some(&b'\r')
                            && !breaks(text)
                            && !text.bytes().any(|b| has(stop, b))
                            // a line that may become a closing fence (its first character
                            // but whitespace is a fence character) needs the parser or healing
                            && first_shown(&c.line).or_else(|| first_shown(text)) != Some(c.fence)
                    }
                    None => line_grows(c.lang.is_some(), &c.line, text, c.fence),
                } && {
                    token = grown_text_at(self.open.last()?, &c.path, c.node, c.lang.is_some(), c.open.is_some());
                    token.is_some()
                } =>
            {
                // The token being typed grows (a comment or string that is open by what cannot
                // end it, an identifier or number by word characters, a line without a
                // language by anything): its text node grows, without a lex, and the page gets
                // the grown text. A word's class is the one its start got until a character
                // that ends it arrives and the line goes through the highlighter (`con` is a
                // keyword or not once `const` or `console` is complete).
                self.work += text.len();
                let token = token?;
                let step = self.grow_token(index, &c, token, text)?;
                c.line.push_str(text);
                c.grown = Some(token);
                self.fast = Fast::Code(c);
                Some(step)
            }
            Fast::Code(c)
                if c.lang.is_some()
                    && !c.line.is_empty()
                    && c.line.as_bytes().last() != Some(&b'\r')
                    && !breaks(text)
                    && matches!(crate::nodes::node_at_ref(self.open.last()?, &c.path),
                        Some(Node::Element(code)) if code.children.len() == c.node + 1) =>
            {
                self.grow_code_line(index, text, c)
            }
            Fast::Code(c) => {
                let Code { path, mut line, mut state, mut node, lang, fence, fence_len, mut split, mut head, .. } = *c;
                let mut probe = line.clone();
                probe.push_str(text);
                if probe.contains('\r') {
                    // Inside fenced code the parser keeps a bare CR as text, while CRLF ends
                    // the line and shows as LF: only CRLF is rewritten here, a bare CR goes to
                    // the parser. A CR at the very end shows as it is until what follows tells.
                    let mut b = probe.into_bytes();
                    let (n, mut w) = (b.len(), 0);
                    for r in 0..n {
                        if b[r] == b'\r' && r + 1 < n {
                            if b[r + 1] != b'\n' {
                                return None;
                            }
                            continue;
                        }
                        b[w] = b[r];
                        w += 1;
                    }
                    b.truncate(w);
                    probe = String::from_utf8(b).ok()?;
                }
                // A last line of fence characters only may be a closing fence being typed:
                // healing hides it, so the code gets the lines before it only.
                let fence_only = |l: &str| {
                    let t = l.trim_start_matches(' ');
                    !t.is_empty() && t.bytes().all(|b| b == fence)
                };
                let (probe, hidden_from) = match probe.rfind('\n') {
                    Some(nl) if nl + 1 < probe.len() && fence_only(&probe[nl + 1..]) => {
                        let from = self.src.len() - (probe.len() - nl - 1);
                        (probe[..nl + 1].to_string(), Some(from))
                    }
                    // the line being typed, from its start, is fence characters only
                    None if line.is_empty() && fence_only(&probe) => {
                        let from = self.src.len() - probe.len();
                        (String::new(), Some(from))
                    }
                    _ => (probe, None),
                };
                // Any other line that could become a closing fence needs the parser.
                if probe.split('\n').any(|l| first_shown(l) == Some(fence)) {
                    return None;
                }
                let prefix = &self.opts.class_prefix;
                let block = self.open.last_mut()?;
                let Some(Node::Element(code)) = node_at(block, &path) else {
                    return None;
                };
                let start = node;
                // (the new lines are built apart, and compared with the old ones in place)
                let mut new_tail = Vec::new();
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
                        new_tail.push(Node::Text(piece.to_string()));
                        if complete {
                            node = start + new_tail.len();
                        }
                        continue;
                    };
                    if i > 0 {
                        split = 0;
                        head.clear();
                    }
                    let mut spans = head.clone();
                    let end = highlight_tail(l, piece, state, &mut split, &mut head, &mut spans, &mut work);
                    let mut el = Element::new("span", crate::nodes::class_name(prefix, "ln"));
                    highlight::span_nodes(piece, 0, &spans, prefix, &mut el.children);
                    open = if complete { None } else { open_at_end(l, &el.children, piece, state, end) };
                    new_tail.push(Node::Element(el));
                    if complete {
                        state = end;
                        node = start + new_tail.len();
                        split = 0;
                        head.clear();
                    }
                }
                self.work += work;
                line = probe.rsplit_once('\n').map_or(probe.clone(), |(_, l)| l.to_string());
                // The page gets what changed from the old lines: usually the last token of
                // the last line, not the line.
                let patch = patch::replace_children(index, &path, code, start, new_tail);
                self.fast = match hidden_from {
                    Some(from) => Fast::Hidden(heal::Hidden::Fence(fence, fence_len), from, false),
                    None => Fast::Code(Box::new(Code {
                        path,
                        line,
                        state,
                        node,
                        lang,
                        fence,
                        fence_len,
                        split,
                        head,
                        open,
                        grown: None,
                    })),
                };
                Some(Step::Patch(Patch { blocks: patch.into_iter().collect(), count: index + 1 }))
            }
        }
    }
}

impl MarkdownRenderer {
    /// `text` (holding a `|`, no line break) was appended to the text of a table body row's
    /// cell (`path`: div > table > tbody > tr > td > text, the cell's last node). GFM 4.10:
    /// an unescaped `|` ends the cell, whose content is trimmed, so what it showed stays; the
    /// next cell, padding the row to the header's width until now, starts empty. Without a
    /// parse when the `|` is the only Markdown in `text` and the next cell exists (a cell
    /// past the header's width is dropped: left to the parse).
    fn next_cell(&mut self, index: usize, text: &str, path: Vec<usize>) -> Option<Patch> {
        let (before, after) = text.split_once('|')?;
        let escaped = self.src[..self.src.len() - text.len()].ends_with('\\');
        if path.len() != 6 || escaped || !before.bytes().all(|b| b == b' ' || b == b'\t') {
            return None;
        }
        let block = self.open.last()?;
        let tr = match crate::nodes::node_at_ref(block, &path[..4]) {
            Some(Node::Element(tr)) if tr.name == "tr" => tr,
            _ => return None,
        };
        let cell = |j: usize| match tr.children.get(j) {
            Some(Node::Element(td)) if td.name == "td" => Some(td),
            _ => None,
        };
        if cell(path[4])?.children.len() != path[5] + 1 || !cell(path[4] + 1)?.children.is_empty() {
            return None;
        }
        // (the text after the `|` is counted by `cell_text`)
        self.work += before.len() + 1;
        let mut next = path;
        next.truncate(5);
        next[4] += 1;
        self.cell_text(index, after, next)
    }

    /// `text` (no `|`) was appended to the table cell at `path`, which shows nothing yet: its
    /// first inert text becomes the cell's text node (leading whitespace is trimmed, trailing
    /// whitespace waits, as in a paragraph).
    fn cell_text(&mut self, index: usize, text: &str, path: Vec<usize>) -> Option<Patch> {
        let shown = heal::trim_spaces_start(text);
        if !shown.bytes().all(inert) {
            return None;
        }
        self.work += text.len();
        let visible = heal::trim_spaces_end(shown);
        if visible.is_empty() {
            self.fast = Fast::Cell { path };
            return Some(Patch { blocks: Vec::new(), count: index + 1 });
        }
        // a bare URL or email being typed becomes an autolink: parse
        if self.opts.autolink && crate::autolink::maybe_link(visible) {
            return None;
        }
        let block = self.open.last_mut()?;
        let Some(Node::Element(td)) = node_at(block, &path) else { return None };
        if !td.children.is_empty() {
            return None;
        }
        td.children.push(Node::Text(visible.to_string()));
        // The row's checkpoint moves to this cell's start: what follows in it is re-parsed
        // from there alone (see `suffix`), not with the row.
        if let Some(cp) = self.cp.as_mut().filter(|c| c.path.len() == 5 && c.path[..4] == path[..4]) {
            cp.pos = self.src.len() - shown.len();
            cp.k = 0;
            cp.path = path.clone();
        }
        let patch = BlockPatch { path: path.clone(), ..Self::whole(index) };
        let mut text_path = path;
        text_path.push(0);
        let ws = shown[visible.len()..].to_string();
        self.fast = Fast::Text(Box::new(Text {
            path: text_path,
            ws,
            span: false,
            clean: true,
            in_span: false,
            link: false,
            seg: (0, 0),
            dest: true,
            placed: false,
        }));
        Some(Patch { blocks: vec![patch], count: index + 1 })
    }

    /// Grows by `more` the text node of token `i` of code line `c.node`, `depth` below the line
    /// (2 inside a class's span, 1 bare), and gives the page the grown text: where the page
    /// holds it is found once while it grows (`c.grown` is the token the last growth found).
    #[inline]
    fn grow_token(&mut self, index: usize, c: &Code, (depth, i): (usize, usize), more: &str) -> Option<Step> {
        if c.grown != Some((depth, i)) {
            self.place_grown(index, &c.path, &[c.node, i, 0][..depth + 1])?;
        }
        let Some(Node::Text(t)) = node_at(self.open.last_mut()?, &self.grown.node) else { return None };
        let kept = t.len();
        t.push_str(more);
        Some(self.grown_step(index, 0, kept, 0))
    }

    /// The code line being typed, whose element is the code element's last child, grows by
    /// `text` (no line break): the line is re-highlighted from its last split point, and its
    /// element edited in place, the tokens before that point kept as they are. When the one
    /// change is its last token's text growing, that text node grows as a typed word's does
    /// ([`Step::Grown`]).
    fn grow_code_line(&mut self, index: usize, text: &str, mut c: Box<Code>) -> Option<Step> {
        let l = c.lang?;
        c.line.push_str(text);
        // A line that could become a closing fence needs the parser.
        if first_shown(&c.line) == Some(c.fence) {
            return None;
        }
        let prefix = &self.opts.class_prefix;
        let block = self.open.last_mut()?;
        let Some(Node::Element(code)) = node_at(block, &c.path) else {
            return None;
        };
        let Some(Node::Element(el)) = code.children.get_mut(c.node) else {
            return None;
        };
        // The element's children are the nodes of `head` joined with the tokens after the
        // split point: all but head's last (which a join may have extended) stay.
        let keep = c.head.len().saturating_sub(1);
        let mut rest = c.head.get(keep..).unwrap_or_default().to_vec();
        let end = highlight_tail(l, &c.line, c.state, &mut c.split, &mut c.head, &mut rest, &mut self.work);
        // The tokens that the element holds already stay: compared as they are, with no
        // node built for them; the page gets what changed, usually the text of the last one.
        let mut from = keep.checked_sub(1).map_or(0, |k| c.head[k].end);
        let mut same = 0;
        while let (Some(sp), Some(old)) = (rest.get(same), el.children.get(keep + same)) {
            if !highlight::is_span_node(old, &c.line[from..sp.end], sp.class, prefix) {
                break;
            }
            from = sp.end;
            same += 1;
        }
        // The one token that changed is the line's last, of the class it had, and it grew (a
        // space after `=`, a word after `.`): its text node grows, as a word being typed does
        // above, and the page gets the grown text, with no node built and no patch (the patch
        // would carry exactly that text, see `patch::splice`).
        if let ([sp], true) = (&rest[same..], el.children.len() == keep + same + 1) {
            let i = keep + same;
            let new = &c.line[from..sp.end];
            let kept = highlight::span_text(&el.children[i], sp.class, prefix)
                .filter(|old| !old.is_empty() && new.len() > old.len() && new.starts_with(old))
                .map(str::len);
            if let Some(kept) = kept {
                let token = (if sp.class.is_some() { 2 } else { 1 }, i);
                let (grow, end_at) = (sp.end, end);
                // (the tokens before it are the same: where the page holds it is where the
                // last append that grew it found it)
                let step = self.grow_token(index, &c, token, &c.line[grow - (new.len() - kept)..grow])?;
                let Some(Node::Element(el)) =
                    crate::nodes::node_at_ref(self.open.last()?, &self.grown.node[..c.path.len() + 1])
                else {
                    return None;
                };
                c.open = open_at_end(l, &el.children, &c.line, c.state, end_at);
                c.grown = Some(token);
                self.fast = Fast::Code(c);
                return Some(step);
            }
        }
        let mut nodes = Vec::new();
        highlight::span_nodes(&c.line, from, &rest[same..], prefix, &mut nodes);
        let mut at = Vec::with_capacity(c.path.len() + 1);
        at.extend_from_slice(&c.path);
        at.push(c.node);
        let patch = patch::replace_children(index, &at, el, keep + same, nodes);
        c.open = open_at_end(l, &el.children, &c.line, c.state, end);
        c.grown = None;
        self.fast = Fast::Code(c);
        Some(Step::Patch(Patch { blocks: patch.into_iter().collect(), count: index + 1 }))
    }
}

/// Re-highlights `line` (starting in `state`) from its last split point `split`, after
/// which it is highlighted alone: joins the spans after the split point to `out` (offsets in
/// `line`) and returns the state at its end. When those hold a new split point, the spans
/// before it join `head` (the spans of `line[..split]`) and `split` moves there.
fn highlight_tail(
    l: &highlight::Lang,
    line: &str,
    state: highlight::State,
    split: &mut usize,
    head: &mut Vec<highlight::Span>,
    out: &mut Vec<highlight::Span>,
    work: &mut usize,
) -> highlight::State {
    let at = *split;
    let from = if at == 0 { state } else { highlight::State::Normal };
    // (room for the few tokens of a line's end: no growth step per token)
    let mut tail = Vec::with_capacity(8);
    let (end, sep) = highlight::highlight_part(l, &line[at..], from, &mut tail);
    *work += line.len() - at;
    for s in &mut tail {
        s.end += at;
    }
    if let Some(sp) = sep {
        // The spans before the new split point join `head`; the last of them is plain text
        // that ended there, and may have taken plain text after it since.
        let cut = at + sp.at;
        let last = tail[sp.spans - 1];
        highlight::join_spans(head, &tail[..sp.spans - 1]);
        highlight::join_spans(head, &[highlight::Span { end: cut, ..last }]);
        *split = cut;
    }
    highlight::join_spans(out, &tail);
    end
}

/// If the last token of a line being typed (`line`, tokens `toks`) is an open comment or
/// string, the characters that could end it (see [`highlight::open_token`] and
/// [`highlight::open_in_state`]; `end` is the state at the line's end). `start`: the state
/// at the line's start; a line that is one token and started inside a multi-line string or
/// comment, ending outside it, ends in its closing delimiter.
fn open_at_end(
    l: &highlight::Lang,
    toks: &[Node],
    line: &str,
    start: highlight::State,
    end: highlight::State,
) -> Option<Vec<u8>> {
    let open = highlight::open_in_state(l, end);
    if open.is_some() || (toks.len() == 1 && matches!(start, highlight::State::Comment | highlight::State::Str(_))) {
        return open;
    }
    let Some(Node::Element(tok)) = toks.last() else { return None };
    let [Node::Text(t)] = &tok.children[..] else { return None };
    let com = tok.class.ends_with("com");
    if (com || tok.class.ends_with("str")) && line.ends_with(t.as_str()) && !t.is_empty() {
        highlight::open_token(l, com, t)
    } else {
        None
    }
}

/// Where the text that the code line being typed (code element at `path`, the line at
/// child `node`, its last) ends in: how many of `node` and the line's last index extend
/// `path` to the element holding it, and its index there. In a highlighted line, when
/// `open`, the text of the comment or string it ends in; else a plain text or a word's token
/// (a closed comment or string does not end in a word character); without a language, the
/// line's own text node. (No path is built: a match guard asks first, on every append.)
fn grown_text_at(block: &[Node], path: &[usize], node: usize, highlighted: bool, open: bool) -> Option<(usize, usize)> {
    let Some(Node::Element(code)) = crate::nodes::node_at_ref(block, path) else { return None };
    if code.children.len() != node + 1 {
        return None;
    }
    let last = code.children.last();
    if !highlighted {
        return matches!(last, Some(Node::Text(_))).then_some((0, node));
    }
    let Some(Node::Element(ln)) = last else { return None };
    let i = ln.children.len().checked_sub(1)?;
    match ln.children.last()? {
        Node::Text(_) if !open => Some((1, i)),
        Node::Element(tok) if open == (tok.class.ends_with("com") || tok.class.ends_with("str")) => {
            matches!(tok.children[..], [Node::Text(_)]).then_some((2, i))
        }
        _ => None,
    }
}

/// Whether `text`, appended to the code line being typed, `line`, only extends the line's
/// last token: in a highlighted block, word characters after a word character (an identifier
/// or a number grows; the highlighter's identifiers also take bytes past ASCII and a
/// language's extra characters, left to it); without a language, anything but a line break.
/// A line that starts with the fence character may become a closing fence: the parser's.
fn line_grows(highlighted: bool, line: &str, text: &str, fence: u8) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let first = first_shown(line);
    !text.is_empty()
        && first.is_some_and(|b| b != fence)
        && if highlighted {
            line.bytes().last().is_some_and(word) && text.bytes().all(word)
        } else {
            !breaks(text) && line.as_bytes().last() != Some(&b'\r')
        }
}

/// The first byte of `line` after the ASCII whitespace it starts with: whether the line may
/// be a closing fence. Only spaces indent a fence (CommonMark 4.5; pulldown-cmark also skips
/// tabs, VT and FF there); a Unicode space such as U+3000 is text, so a line starting with
/// one is code. (Bytes: no character is decoded, which the interpreter running the module
/// would pay for each code line on every append.)
fn first_shown(line: &str) -> Option<u8> {
    line.bytes().find(|&b| !matches!(b, b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r'))
}

/// Whether an appended text holds a line ending (bytes: no `char` pattern to decode, and no
/// memchr to set up, for the two or three bytes of an append).
fn breaks(text: &str) -> bool {
    text.bytes().any(|b| b == b'\n' || b == b'\r')
}

/// Characters that cannot change the structure of a paragraph when appended after plain
/// text: anything but Markdown punctuation and line breaks.
fn inert(b: u8) -> bool {
    !matches!(
        b,
        b'\n' | b'\r' | b'*' | b'_' | b'~' | b'`' | b'[' | b']' | b'!' | b'<' | b'&' | b'\\' | b'$' | b'|' | b'#'
    )
}

/// Path of the rightmost leaf if it is a text node outside autolinks and code (inside an
/// inline code span when `span`).
pub(crate) fn rightmost_text(nodes: &[Node], span: bool) -> Option<Vec<usize>> {
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
                let i = last_shown(e)?;
                path.push(i);
                siblings = &e.children[..=i];
                n = &e.children[i];
            }
        }
    }
}

/// Path of the `code` element of a code block that is the rightmost node.
pub(crate) fn rightmost_code(nodes: &[Node]) -> Option<Vec<usize>> {
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

/// The index of an element's last child, but in a table row, which is padded with empty
/// cells up to the header's width, of its last cell that shows something.
pub(crate) fn last_shown(e: &Element) -> Option<usize> {
    if e.name == "tr" {
        e.children.iter().rposition(|c| matches!(c, Node::Element(td) if !td.children.is_empty()))
    } else {
        e.children.len().checked_sub(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use highlight::{highlight_part, lang_of, Span, State};

    /// The spans of `line` highlighted whole, from `state`.
    fn whole(l: &highlight::Lang, line: &str, state: State) -> (Vec<Span>, State) {
        let mut spans = Vec::new();
        let (end, _) = highlight_part(l, line, state, &mut spans);
        (spans, end)
    }

    /// A line typed a character at a time, re-highlighted from its last split point on each
    /// append (as the fast path does): the head joined with the tail is the line highlighted
    /// whole, with the same end state; the head is always the spans of the line up to the
    /// split point, ending there; and only the text from the split point is lexed again.
    #[test]
    fn highlight_tail_gives_the_whole_line_s_spans_at_every_prefix() {
        let cases = [
            ("rust", "let s = \"é\"; // 注释 é\n", State::Normal),
            ("rust", "函数(参数, \"世界\")é;\n", State::Normal),
            ("rust", "still a comment */ let x = 1;\n", State::Comment),
            ("js", "const a = [1, 2]; f(a)  .map(x => x)\n", State::Normal),
            ("python", "def f(x): return 'ü' # é\n", State::Normal),
            ("rust", "", State::Normal),
        ];
        for (lang, line, state) in cases {
            let l = lang_of(lang).unwrap();
            let (mut split, mut head, mut work) = (0, Vec::new(), 0);
            let ends = line.char_indices().map(|(i, _)| i).skip(1).chain([line.len()]);
            for end in ends {
                let typed = &line[..end];
                let before = (split, work);
                let mut spans = head.clone();
                let st = highlight_tail(l, typed, state, &mut split, &mut head, &mut spans, &mut work);
                assert_eq!((spans, st), whole(l, typed, state), "{typed:?}");
                assert_eq!(work - before.1, typed.len() - before.0, "{typed:?}: lexed from the split point");
                assert!(split >= before.0 && typed.is_char_boundary(split), "{typed:?}: split {split}");
                if split == 0 {
                    assert_eq!(head, [], "{typed:?}");
                } else {
                    assert_eq!(head, whole(l, &typed[..split], state).0, "{typed:?}: head");
                    assert_eq!(head.last().map(|s| (s.class, s.end)), Some((None, split)), "{typed:?}");
                }
            }
        }
    }
}
