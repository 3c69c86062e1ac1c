//! Helpers shared by the markdown tests: rich-text nodes back to standard HTML, and the
//! HTML normalization used to compare with the CommonMark / GFM spec outputs.
#![allow(dead_code)]

use chunkwise_markdown::*;

/// Turns rendered nodes back into the HTML a CommonMark renderer writes, by undoing the
/// documented rich-text mapping (`div.md-blockquote` → `blockquote`, `span.md-br` → `br`,
/// `span.md-task` → checkbox, token spans unwrapped, link targets restored, …).
pub fn spec_html(blocks: &[Vec<Node>]) -> String {
    let mut out = String::new();
    for b in blocks {
        for n in b {
            node_html(n, &mut out, false);
        }
    }
    out
}

fn has(class: &str, c: &str) -> bool {
    class.split(' ').any(|x| x == c)
}

fn esc(s: &str, out: &mut String) {
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
}

fn node_html(n: &Node, out: &mut String, in_code: bool) {
    match n {
        Node::Text(t) => esc(t, out),
        Node::Html(h) => out.push_str(h),
        Node::Element(e) => {
            let c = e.class.as_str();
            let kids = |out: &mut String, code: bool| e.children.iter().for_each(|k| node_html(k, out, code));
            if in_code && e.name == "span" {
                return kids(out, true);
            }
            if has(c, "md-table-wrap") {
                return kids(out, false);
            }
            if has(c, "md-br") {
                out.push_str("<br />\n");
                return;
            }
            if has(c, "md-task") {
                out.push_str(if has(c, "md-task-done") {
                    "<input disabled=\"\" type=\"checkbox\" checked=\"\"/>\n"
                } else {
                    "<input disabled=\"\" type=\"checkbox\"/>\n"
                });
                return;
            }
            if has(c, "md-math") {
                out.push_str(if has(c, "md-math-display") {
                    "<span class=\"math math-display\">"
                } else {
                    "<span class=\"math math-inline\">"
                });
                kids(out, true);
                out.push_str("</span>");
                return;
            }
            let name = if has(c, "md-blockquote") { "blockquote" } else { e.name };
            out.push('<');
            out.push_str(name);
            if let Some(lang) = c.split(' ').find_map(|x| x.strip_prefix("md-lang-")) {
                out.push_str(" class=\"language-");
                esc(lang, out);
                out.push('"');
            }
            if let Some(a) = e.style.strip_prefix("text-align:") {
                out.push_str(" align=\"");
                out.push_str(a);
                out.push('"');
            }
            if let Some(l) = &e.link {
                if name == "a" {
                    out.push_str(" href=\"");
                    esc(&l.href, out);
                    out.push('"');
                }
                if !l.title.is_empty() {
                    out.push_str(" title=\"");
                    esc(&l.title, out);
                    out.push('"');
                }
            }
            for (k, v) in &e.attrs {
                out.push(' ');
                out.push_str(k);
                out.push_str("=\"");
                esc(v, out);
                out.push('"');
            }
            out.push('>');
            if matches!(name, "img" | "hr") {
                return;
            }
            kids(out, in_code || name == "pre");
            out.push_str("</");
            out.push_str(name);
            out.push('>');
        }
    }
}

const BLOCK: &[&str] = &[
    "p",
    "div",
    "blockquote",
    "ul",
    "ol",
    "li",
    "pre",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "hr",
    "br",
];

#[derive(Debug)]
enum Tok {
    Tag { name: String, close: bool, text: String },
    Text(String),
}

fn decode(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(p) = rest.find('&') {
        out.push_str(&rest[..p]);
        let r = &rest[p..];
        let end = r.find(';').filter(|&e| e < 12);
        let rep = end.and_then(|e| {
            let name = &r[1..e];
            match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                _ if name.starts_with("#x") || name.starts_with("#X") => {
                    u32::from_str_radix(&name[2..], 16).ok().and_then(char::from_u32)
                }
                _ if name.starts_with('#') => name[1..].parse().ok().and_then(char::from_u32),
                _ => None,
            }
            .map(|c| (c, e))
        });
        match rep {
            Some((c, e)) => {
                out.push(c);
                rest = &r[e + 1..];
            }
            None => {
                out.push('&');
                rest = &r[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Normalizes HTML for comparison: entities decoded and re-escaped, attributes sorted,
/// whitespace collapsed outside `pre` and dropped next to block tags, `<br />` as `<br>`.
pub fn normalize(html: &str) -> String {
    let mut toks = Vec::new();
    let mut rest = html;
    while !rest.is_empty() {
        let lt = rest.find('<');
        let is_tag = |r: &str| {
            let b = r.as_bytes();
            b.len() > 1 && (b[1].is_ascii_alphabetic() || (b[1] == b'/' && b.len() > 2 && b[2].is_ascii_alphabetic()))
        };
        match lt {
            Some(0) if is_tag(rest) && rest.contains('>') => {
                let end = tag_end(rest);
                let raw = &rest[..end];
                rest = &rest[end..];
                let close = raw.starts_with("</");
                let inner =
                    raw.trim_start_matches('<').trim_start_matches('/').trim_end_matches('>').trim_end_matches('/');
                let name_len = inner.find(|c: char| c.is_whitespace()).unwrap_or(inner.len());
                let name = inner[..name_len].to_ascii_lowercase();
                let mut attrs = parse_attrs(&inner[name_len..]);
                attrs.sort();
                let mut text = format!("<{}{}", if close { "/" } else { "" }, name);
                for (k, v) in attrs {
                    text.push(' ');
                    text.push_str(&k);
                    if let Some(v) = v {
                        text.push_str("=\"");
                        esc(&decode(&v), &mut text);
                        text.push('"');
                    }
                }
                text.push('>');
                toks.push(Tok::Tag { name, close, text });
            }
            Some(p) => {
                let p = if p == 0 { 1 + rest[1..].find('<').unwrap_or(rest.len() - 1) } else { p };
                toks.push(Tok::Text(rest[..p].to_string()));
                rest = &rest[p..];
            }
            None => {
                toks.push(Tok::Text(rest.to_string()));
                rest = "";
            }
        }
    }
    // merge adjacent texts
    let mut merged: Vec<Tok> = Vec::new();
    for t in toks {
        if let (Tok::Text(s), Some(Tok::Text(prev))) = (&t, merged.last_mut()) {
            prev.push_str(s);
            continue;
        }
        merged.push(t);
    }
    let mut out = String::new();
    let mut pre = 0usize;
    let is_block = |t: Option<&Tok>| matches!(t, Some(Tok::Tag { name, .. }) if BLOCK.contains(&name.as_str()));
    for i in 0..merged.len() {
        match &merged[i] {
            Tok::Tag { name, close, text } => {
                if name == "pre" {
                    if *close {
                        pre = pre.saturating_sub(1);
                    } else {
                        pre += 1;
                    }
                }
                out.push_str(text);
            }
            Tok::Text(s) => {
                let mut t = decode(s);
                if pre == 0 {
                    t = t.split_whitespace().collect::<Vec<_>>().join(" ")
                        + if s.ends_with(char::is_whitespace) && !s.trim().is_empty() { " " } else { "" };
                    if s.starts_with(char::is_whitespace) && !s.trim().is_empty() {
                        t.insert(0, ' ');
                    }
                    if s.trim().is_empty() {
                        t = " ".to_string();
                    }
                    if i == 0 || is_block(merged.get(i - 1)) {
                        t = t.trim_start().to_string();
                    }
                    if is_block(merged.get(i + 1)) || i + 1 == merged.len() {
                        t = t.trim_end().to_string();
                    }
                }
                esc(&t, &mut out);
            }
        }
    }
    out
}

fn tag_end(s: &str) -> usize {
    let b = s.as_bytes();
    let mut q = 0u8;
    for (i, &c) in b.iter().enumerate() {
        if q != 0 {
            if c == q {
                q = 0;
            }
        } else if c == b'"' || c == b'\'' {
            if i > 0 && (b[i - 1] == b'=' || b[i - 1].is_ascii_whitespace()) {
                q = c;
            }
        } else if c == b'>' {
            return i + 1;
        }
    }
    s.len()
}

fn parse_attrs(s: &str) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
            i += 1;
        }
        let s0 = i;
        while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'=' && b[i] != b'/' {
            i += 1;
        }
        if s0 == i {
            break;
        }
        let name = s[s0..i].to_ascii_lowercase();
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i < b.len() && b[i] == b'=' {
            i += 1;
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            let v = if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
                let q = b[i];
                let st = i + 1;
                i += 1;
                while i < b.len() && b[i] != q {
                    i += 1;
                }
                let v = s[st..i.min(b.len())].to_string();
                i += 1;
                v
            } else {
                let st = i;
                while i < b.len() && !b[i].is_ascii_whitespace() {
                    i += 1;
                }
                s[st..i].to_string()
            };
            out.push((name, Some(v)));
        } else {
            out.push((name, None));
        }
    }
    out
}

/// Feeds `text` to a renderer in pieces of `step` characters, then finishes; returns the
/// renderer.
pub fn stream(text: &str, step: usize, opts: &RenderOptions) -> MarkdownRenderer {
    let mut r = MarkdownRenderer::new(opts.clone());
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut i = 0;
    while i < chars.len() {
        let s = chars[i].0;
        let e = chars.get(i + step).map_or(text.len(), |c| c.0);
        r.append(&text[s..e]);
        i += step;
    }
    r.finish();
    r
}

/// A page's copy of the blocks, updated only through patches the way `setData` path keys
/// would: a whole block is replaced, otherwise children are set index by index.
pub fn apply(page: &mut Vec<Vec<Node>>, patch: &Patch) {
    for b in &patch.blocks {
        if page.len() <= b.index {
            page.resize(b.index + 1, Vec::new());
        }
        if b.is_whole() {
            page[b.index] = b.nodes.clone();
            continue;
        }
        let mut arr: &mut Vec<Node> = &mut page[b.index];
        for &i in &b.path {
            match &mut arr[i] {
                Node::Element(e) => arr = &mut e.children,
                _ => panic!("patch path goes through a text node"),
            }
        }
        assert!(
            arr.len() <= b.start + b.nodes.len() || b.nodes.is_empty(),
            "a partial patch would have to shorten an array"
        );
        for (j, n) in b.nodes.iter().enumerate() {
            let k = b.start + j;
            if k < arr.len() {
                // a text that grew: sent from a point in the old text on
                let mut n = n.clone();
                if let (true, Node::Text(old), Node::Text(t)) = (j == 0 && b.kept > 0, &arr[k], &mut n) {
                    t.insert_str(0, &old[..old.len() - b.kept]);
                }
                arr[k] = n;
            } else {
                assert_eq!(k, arr.len(), "setData would leave a hole");
                arr.push(n.clone());
            }
        }
    }
    page.truncate(patch.count);
}

/// Visible text outside code: what a reader sees as prose.
pub fn prose_text(nodes: &[Node], out: &mut String) {
    for n in nodes {
        match n {
            Node::Text(t) | Node::Html(t) => out.push_str(t),
            Node::Element(e) if e.name == "code" || e.name == "pre" => {}
            Node::Element(e) => prose_text(&e.children, out),
        }
    }
}

/// All visible text without whitespace.
pub fn visible(blocks: &[Vec<Node>]) -> String {
    let mut s = String::new();
    for b in blocks {
        for n in b {
            n.visible_text(&mut s);
        }
    }
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

/// The answer fixtures: (name, text).
pub fn answers() -> Vec<(String, String)> {
    let dir = format!("{}/tests/fixtures/markdown_answers", env!("CARGO_MANIFEST_DIR"));
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read_to_string(&p).unwrap()))
        .collect();
    v.sort();
    v
}

/// The first differing node of two node lists, for failure messages.
pub fn first_diff(a: &[Node], b: &[Node]) -> String {
    for i in 0..a.len().max(b.len()) {
        match (a.get(i), b.get(i)) {
            (Some(Node::Element(x)), Some(Node::Element(y))) if x.name == y.name && x.class == y.class && x != y => {
                return format!("[{i}] {} > {}", x.name, first_diff(&x.children, &y.children));
            }
            (x, y) if x != y => return format!("[{i}]\n incremental {x:?}\n full        {y:?}"),
            _ => {}
        }
    }
    "attrs differ".to_string()
}

/// The first differing block and node of two renders, for failure messages.
pub fn blocks_diff(a: &[Vec<Node>], b: &[Vec<Node>]) -> String {
    match (0..a.len().max(b.len())).find(|&k| a.get(k) != b.get(k)) {
        Some(k) => format!(
            "block {k}: {}",
            first_diff(a.get(k).map_or(&[][..], |x| &x[..]), b.get(k).map_or(&[][..], |x| &x[..]))
        ),
        None => "same".to_string(),
    }
}

/// `blocks` with the class taken off the word being typed at the end of a code block's open
/// line (the trailing run of `[A-Za-z0-9_]`, and of the characters some languages take in
/// identifiers, `$#-@!:`, of the last block's last code line): a streamed
/// render shows that token with the class its start got until a character that ends it
/// arrives, so a streamed frame and a fresh render of the same prefix may differ there, and
/// only there. Everything else, including where the text of each token begins and ends
/// outside that word, must match.
pub fn open_word_unclassed(blocks: &[Vec<Node>]) -> Vec<Vec<Node>> {
    let mut out = blocks.to_vec();
    let Some(last) = out.last_mut() else { return out };
    let mut kids = last;
    // down the rightmost path to a `code` element
    loop {
        let Some(Node::Element(e)) = kids.last_mut() else { return out };
        if e.name == "code" {
            kids = &mut e.children;
            break;
        }
        kids = &mut e.children;
    }
    let Some(Node::Element(line)) = kids.last_mut() else { return out };
    let mut chars: Vec<(char, Option<String>)> = Vec::new();
    for n in &line.children {
        match n {
            Node::Text(t) => chars.extend(t.chars().map(|c| (c, None))),
            Node::Element(tok) => {
                let mut t = String::new();
                for c in &tok.children {
                    c.visible_text(&mut t);
                }
                chars.extend(t.chars().map(|c| (c, Some(tok.class.clone()))));
            }
            Node::Html(_) => return out,
        }
    }
    for (c, class) in chars.iter_mut().rev() {
        if !(c.is_ascii_alphanumeric() || "_$#-@!:".contains(*c)) {
            break;
        }
        *class = None;
    }
    let mut rebuilt: Vec<Node> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let class = chars[i].1.clone();
        let mut s = String::new();
        while i < chars.len() && chars[i].1 == class {
            s.push(chars[i].0);
            i += 1;
        }
        rebuilt.push(match class {
            None => Node::Text(s),
            Some(class) => Node::Element(Element {
                name: "span",
                class,
                style: String::new(),
                attrs: Vec::new(),
                link: None,
                children: vec![Node::Text(s)],
            }),
        });
    }
    line.children = rebuilt;
    out
}

/// Streams `text` in pieces of `step` characters; at every prefix the blocks must equal a
/// fresh renderer's given the prefix at once (but for the class of the word being typed on a
/// code line), and after `finish()` a one-shot render.
pub fn assert_streams_like_fresh(text: &str, step: usize) {
    let opts = RenderOptions::default();
    let mut r = MarkdownRenderer::new(opts.clone());
    let cuts: Vec<usize> = text.char_indices().map(|(i, _)| i).step_by(step).chain([text.len()]).collect();
    for w in cuts.windows(2) {
        r.append(&text[w[0]..w[1]]);
        let mut fresh = MarkdownRenderer::new(opts.clone());
        fresh.append(&text[..w[1]]);
        let (a, b) = (open_word_unclassed(&r.blocks()), open_word_unclassed(&fresh.blocks()));
        assert!(a == b, "step {step}, prefix {:?}:\n{}", &text[..w[1]], blocks_diff(&a, &b));
    }
    r.finish();
    let (a, one) = (r.blocks(), render(text, &opts));
    assert!(a == one, "step {step}, finish of {text:?}:\n{}", blocks_diff(&a, &one));
}
