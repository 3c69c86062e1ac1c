//! A small table-driven code highlighter.
//!
//! Each language is a row of [`LANGS`]: keywords, well-known types, comment and string
//! syntax. One tokenizer walks a line and classes each token as keyword, string, comment,
//! number, type or function (an identifier followed by `(`). It is a highlighter, not a
//! parser: it is wrong in corner cases (regex literals, nested template strings, heredocs),
//! and never fails. A syntect-size grammar engine would not fit the wasm size budget.
//!
//! Guarantee used by the renderer: highlighting is line by line, and a line's tokens depend
//! only on the line and on the [`State`] at its start (inside a block comment or a
//! multi-line string). So a streamed code block re-highlights only its last line.

use std::sync::OnceLock;

use crate::nodes::{Element, Node};

/// The token classes, as class-name suffixes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Tok {
    Keyword,
    Str,
    Comment,
    Number,
    Type,
    Function,
}

impl Tok {
    fn class(self) -> &'static str {
        match self {
            Tok::Keyword => "kw",
            Tok::Str => "str",
            Tok::Comment => "com",
            Tok::Number => "num",
            Tok::Type => "type",
            Tok::Function => "fn",
        }
    }
}

/// One language row.
#[derive(Debug)]
pub(crate) struct Lang {
    /// Names in fence info strings, the first one the language's own (words separated by
    /// spaces, see [`Words`]).
    names: &'static str,
    keywords: Words,
    types: Words,
    line_comment: &'static [&'static str],
    block_comment: Option<(&'static str, &'static str)>,
    /// Quote characters of single-line strings.
    quotes: &'static [u8],
    /// Delimiters of strings that may span lines (backticks, triple quotes).
    multiline: &'static [&'static str],
    /// Identifiers starting with an upper-case letter are types.
    capital_types: bool,
    /// Keywords are matched case-insensitively (SQL).
    nocase: bool,
    /// Markup mode (HTML/XML): tags, attributes and `<!-- -->` comments.
    markup: bool,
    /// Identifier characters beyond `[A-Za-z0-9_]`.
    ident_extra: &'static [u8],
}

/// A list of words kept as one string, words separated by spaces (an array of `&str` would
/// store a pointer and a length per word, which the module's size budget feels), split into
/// words the first time it is searched, in byte order, so that a word is found by binary search
/// (scanning the string, or the list, for every identifier cost the interpreted wasm of iOS
/// a comparison per keyword: a fifth of a streamed code block's highlighting).
#[derive(Debug)]
pub(crate) struct Words {
    list: &'static str,
    split: OnceLock<Vec<&'static str>>,
}

impl Words {
    const fn new(list: &'static str) -> Self {
        Words { list, split: OnceLock::new() }
    }

    fn contains(&self, word: &str, nocase: bool) -> bool {
        // (the lists are written in byte order: sorting here would cost the module kilobytes)
        let words = self.split.get_or_init(|| self.list.split(' ').filter(|w| !w.is_empty()).collect());
        // (the case-insensitive lists are written in lower case: the word's bytes are
        // lowered as they are compared, with no copy per identifier)
        let word = word.as_bytes();
        words
            .binary_search_by(|w| {
                // (byte by byte: an iterator `cmp` over a folding `map` cost the interpreter
                // several times the compares, for each identifier of every line highlighted)
                let w = w.as_bytes();
                for (i, &a) in w.iter().enumerate() {
                    let Some(&b) = word.get(i) else { return std::cmp::Ordering::Greater };
                    let b = if nocase { b.to_ascii_lowercase() } else { b };
                    if a != b {
                        return a.cmp(&b);
                    }
                }
                w.len().cmp(&word.len())
            })
            .is_ok()
    }
}

#[rustfmt::skip]
const C_KW: &str = "\
    #define #else #endif #if #ifdef #ifndef #include #pragma NULL auto break case catch class \
    co_await co_return const constexpr continue default delete do else enum explicit extern false \
    for friend goto if inline mutable namespace new noexcept nullptr operator override private \
    protected public register return sizeof static struct switch template this throw true try \
    typedef typename union using virtual volatile while";
#[rustfmt::skip]
const C_TY: &str = "\
    FILE bool char double float int int16_t int32_t int64_t int8_t long map short signed size_t \
    std string uint16_t uint32_t uint64_t uint8_t unsigned vector void";
#[rustfmt::skip]
const JS_KW: &str = "\
    abstract as async await break case catch class const continue debugger declare default delete \
    do else enum export extends false finally for from function if implements import in \
    instanceof interface let namespace new null of private protected public readonly return \
    static super switch this throw true try type typeof undefined var void while yield";
#[rustfmt::skip]
const JS_TY: &str = "\
    Array Date Error JSON Map Math Number Object Promise Set String any bigint boolean console \
    document never number object string symbol unknown window wx";
#[rustfmt::skip]
const PY_KW: &str = "\
    False None True and as assert async await break case class continue def del elif else except \
    finally for from global if import in is lambda match nonlocal not or pass raise return self \
    try while with yield";
#[rustfmt::skip]
const PY_TY: &str = "\
    Exception bool bytes dict float int isinstance len list object open print range set str super \
    tuple type";
#[rustfmt::skip]
const JAVA_KW: &str = "\
    abstract assert break case catch class const continue default do else enum extends false \
    final finally for fun goto if implements import instanceof interface native new null object \
    package private protected public record return static strictfp super switch synchronized this \
    throw throws transient true try val var volatile when while";
const JAVA_TY: &str = "boolean byte char double float int long short void";
#[rustfmt::skip]
const GO_KW: &str = "\
    break case chan const continue default defer else fallthrough false for func go goto if \
    import interface iota map nil package range return select struct switch true type var";
#[rustfmt::skip]
const GO_TY: &str = "\
    any append bool byte cap complex128 complex64 error float32 float64 int int16 int32 int64 \
    int8 len make new panic rune string uint uint16 uint32 uint64 uint8 uintptr";
#[rustfmt::skip]
const RS_KW: &str = "\
    Self as async await break const continue crate dyn else enum extern false fn for if impl in \
    let loop match mod move mut pub ref return self static struct super trait true type unsafe \
    use where while";
const RS_TY: &str = "bool char f32 f64 i128 i16 i32 i64 i8 isize str u128 u16 u32 u64 u8 usize";
const JSON_KW: &str = "false null true";
#[rustfmt::skip]
const SH_KW: &str = "\
    alias case cd do done echo elif else esac exit export fi for function if in local readonly \
    return set source sudo then unset until while";
#[rustfmt::skip]
const SH_TY: &str = "\
    apt apt-get brew cargo cat chmod cp curl docker git go grep kubectl ls make mkdir mv node npm \
    npx pip pnpm python python3 rm rustup wget yarn";
#[rustfmt::skip]
const SQL_KW: &str = "\
    add all alter and as asc begin between by case commit create default delete desc distinct \
    drop else end exists false foreign from group having in index inner insert into is join key \
    left like limit not null offset on or order outer primary references right rollback select \
    set table then true union unique update values view when where with";
#[rustfmt::skip]
const SQL_TY: &str = "\
    avg bigint boolean char count date datetime decimal float int integer json max min numeric \
    real serial smallint sum text timestamp varchar";
const CSS_KW: &str = "!important @font-face @import @keyframes @media @supports";

/// The language table.
#[rustfmt::skip]
pub(crate) static LANGS: [Lang; 11] = [
    Lang {
        names: "js javascript jsx mjs cjs ts typescript tsx wxs vue",
        keywords: Words::new(JS_KW),
        types: Words::new(JS_TY),
        line_comment: &["//"],
        block_comment: Some(("/*", "*/")),
        quotes: b"\"'",
        multiline: &["`"],
        capital_types: true,
        nocase: false,
        markup: false,
        ident_extra: b"$",
    },
    Lang {
        names: "python py python3",
        keywords: Words::new(PY_KW),
        types: Words::new(PY_TY),
        line_comment: &["#"],
        block_comment: None,
        quotes: b"\"'",
        multiline: &["\"\"\"", "'''"],
        capital_types: true,
        nocase: false,
        markup: false,
        ident_extra: b"",
    },
    Lang {
        names: "java kotlin kt scala csharp cs c# dart swift",
        keywords: Words::new(JAVA_KW),
        types: Words::new(JAVA_TY),
        line_comment: &["//"],
        block_comment: Some(("/*", "*/")),
        quotes: b"\"'",
        multiline: &["\"\"\""],
        capital_types: true,
        nocase: false,
        markup: false,
        ident_extra: b"",
    },
    Lang {
        names: "go golang",
        keywords: Words::new(GO_KW),
        types: Words::new(GO_TY),
        line_comment: &["//"],
        block_comment: Some(("/*", "*/")),
        quotes: b"\"'",
        multiline: &["`"],
        capital_types: false,
        nocase: false,
        markup: false,
        ident_extra: b"",
    },
    Lang {
        names: "rust rs",
        keywords: Words::new(RS_KW),
        types: Words::new(RS_TY),
        line_comment: &["//"],
        block_comment: Some(("/*", "*/")),
        quotes: b"\"",
        multiline: &[],
        capital_types: true,
        nocase: false,
        markup: false,
        ident_extra: b"!",
    },
    Lang {
        names: "c h cpp c++ cc cxx hpp objc arduino",
        keywords: Words::new(C_KW),
        types: Words::new(C_TY),
        line_comment: &["//"],
        block_comment: Some(("/*", "*/")),
        quotes: b"\"'",
        multiline: &[],
        capital_types: true,
        nocase: false,
        markup: false,
        ident_extra: b"#",
    },
    Lang {
        names: "json jsonc json5",
        keywords: Words::new(JSON_KW),
        types: Words::new(""),
        line_comment: &["//"],
        block_comment: Some(("/*", "*/")),
        quotes: b"\"",
        multiline: &[],
        capital_types: false,
        nocase: false,
        markup: false,
        ident_extra: b"",
    },
    Lang {
        names: "bash sh shell zsh console shellscript powershell ps1 bat cmd",
        keywords: Words::new(SH_KW),
        types: Words::new(SH_TY),
        line_comment: &["#"],
        block_comment: None,
        quotes: b"\"'",
        multiline: &[],
        capital_types: false,
        nocase: false,
        markup: false,
        ident_extra: b"-$",
    },
    Lang {
        names: "sql mysql postgresql postgres sqlite plsql",
        keywords: Words::new(SQL_KW),
        types: Words::new(SQL_TY),
        line_comment: &["--"],
        block_comment: Some(("/*", "*/")),
        quotes: b"'\"",
        multiline: &[],
        capital_types: false,
        nocase: true,
        markup: false,
        ident_extra: b"",
    },
    Lang {
        names: "html xml svg wxml htm xhtml vue-html",
        keywords: Words::new(""),
        types: Words::new(""),
        line_comment: &[],
        block_comment: Some(("<!--", "-->")),
        quotes: b"\"'",
        multiline: &[],
        capital_types: false,
        nocase: false,
        markup: true,
        ident_extra: b"-:",
    },
    Lang {
        names: "css scss less wxss sass",
        keywords: Words::new(CSS_KW),
        types: Words::new(""),
        line_comment: &[],
        block_comment: Some(("/*", "*/")),
        quotes: b"\"'",
        multiline: &[],
        capital_types: false,
        nocase: false,
        markup: false,
        ident_extra: b"-@!",
    },
];

/// Finds the language of a fence info string (`rust`, `js title="x"`, `language-python`).
pub(crate) fn lang_of(info: &str) -> Option<&'static Lang> {
    let word = info.split(|c: char| c.is_whitespace() || c == ',' || c == '{').next()?;
    let word = word.strip_prefix("language-").unwrap_or(word).to_ascii_lowercase();
    LANGS.iter().find(|l| l.names.split(' ').any(|n| n == word))
}

/// Tokenizer state carried from one line to the next.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub(crate) enum State {
    #[default]
    Normal,
    /// Inside a block comment.
    Comment,
    /// Inside a multi-line string with `Lang::multiline[i]` as delimiter.
    Str(u8),
    /// Inside a markup tag (`<div` seen, `>` not yet).
    Tag,
}

#[inline(always)]
fn is_ident(b: u8, extra: &[u8]) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80 || has(extra, b)
}

/// Whether a short set of bytes holds `b`: a loop where a slice's `contains` calls memchr,
/// whose set-up costs more than these few compares, per byte of every line highlighted (and
/// per append, in the few bytes appended).
#[allow(clippy::manual_contains)]
#[inline(always)]
pub(crate) fn has(set: &[u8], b: u8) -> bool {
    set.iter().any(|&x| x == b)
}

/// Highlights one line (with its `\n`), appending nodes to `out`; returns the state at the
/// start of the next line. `class` is the class prefix.
pub(crate) fn highlight_line(lang: &Lang, line: &str, state: State, prefix: &str, out: &mut Vec<Node>) -> State {
    let mut spans = Vec::new();
    let (st, _) = highlight_part(lang, line, state, &mut spans);
    span_nodes(line, 0, &spans, prefix, out);
    st
}

/// A token of a highlighted line: its class (`None`: plain text) and the offset in the line
/// where it ends; it starts where the one before ends. A line's tokens are spans until they
/// reach the page: a line being typed is lexed again on most appends, and its spans are
/// compared with the nodes the page holds without building nodes for the tokens that stayed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Span {
    pub class: Option<Tok>,
    pub end: usize,
}

/// Appends a span ending at `end`, merging plain text into plain text before it.
fn push_span(out: &mut Vec<Span>, class: Option<Tok>, end: usize) {
    match out.last_mut() {
        Some(last) if class.is_none() && last.class.is_none() => last.end = end,
        _ => out.push(Span { class, end }),
    }
}

/// Appends `more`, the spans that follow those of `out`, merging plain text across the join.
pub(crate) fn join_spans(out: &mut Vec<Span>, more: &[Span]) {
    for s in more {
        push_span(out, s.class, s.end);
    }
}

/// The node of the token `t` of class `class`: a text, or a `span` holding one.
fn span_node(t: &str, class: Option<Tok>, prefix: &str) -> Node {
    let text = Node::Text(t.to_string());
    match class {
        None => text,
        Some(c) => {
            // (`vec!`: one allocation of one node, where a push would go through `Vec`'s growth)
            let mut el = Element::new("span", crate::nodes::class_name(prefix, c.class()));
            el.children = vec![text];
            Node::Element(el)
        }
    }
}

/// Appends the nodes of `spans`, the tokens of `line` from offset `from` on.
pub(crate) fn span_nodes(line: &str, from: usize, spans: &[Span], prefix: &str, out: &mut Vec<Node>) {
    let mut s = from;
    out.reserve(spans.len());
    for sp in spans {
        out.push(span_node(&line[s..sp.end], sp.class, prefix));
        s = sp.end;
    }
}

/// Whether `node` equals the node of the token `t` of class `class`, without building it.
pub(crate) fn is_span_node(node: &Node, t: &str, class: Option<Tok>, prefix: &str) -> bool {
    span_text(node, class, prefix).is_some_and(|x| x == t)
}

/// The text of `node` when it is the node of a token of class `class` (whatever its text).
pub(crate) fn span_text<'a>(node: &'a Node, class: Option<Tok>, prefix: &str) -> Option<&'a str> {
    match (node, class) {
        (Node::Text(x), None) => Some(x),
        (Node::Element(e), Some(c)) => {
            let name = c.class();
            let shape = e.name == "span"
                && e.class.len() == prefix.len() + name.len()
                && e.class.starts_with(prefix)
                && e.class.ends_with(name)
                && e.style.is_empty()
                && e.attrs.is_empty()
                && e.link.is_none();
            match &e.children[..] {
                [Node::Text(x)] if shape => Some(x),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Separators after which a line may be split: tokens before never depend on what follows.
/// A space or tab is one when a character other than a space or tab follows it (that
/// character decides an identifier before the spaces: a function if it is `(`).
const SEPS: &[u8] = b";,{}()=:[] \t.";

/// A point where a line may be split (see [`highlight_part`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Split {
    /// The offset in the line.
    pub at: usize,
    /// How many spans of `out` hold the text before it; the last one, plain text ending at
    /// `at` then, may have taken plain text after the point since.
    pub spans: usize,
}

/// Highlights one line (with its `\n`, or the start of one) into `out`, which is empty, as
/// spans; returns the state at its end and the last split point: the offset just after a
/// separator (`;`, `,`, `(`, `=`, a space, …) seen as plain text in the normal state, with
/// a character after it that is not `#`. The spans before the point never change whatever
/// is appended to the line, and highlighting `line[p..]` from [`State::Normal`] gives the
/// spans after it (adjacent plain text merged): a line being typed is re-highlighted from
/// its last split point only.
pub(crate) fn highlight_part(lang: &Lang, line: &str, state: State, out: &mut Vec<Span>) -> (State, Option<Split>) {
    let mut split = None;
    let b = line.as_bytes();
    let n = b.len();
    let mut st = state;
    let mut i = 0;
    let mut plain = 0; // start of pending plain text
    let push = |out: &mut Vec<Span>, plain: &mut usize, s: usize, e: usize, t: Option<Tok>| {
        if s > *plain {
            push_span(out, None, s);
        }
        if e > s {
            push_span(out, t, e);
        }
        *plain = e;
    };
    while i < n {
        match st {
            State::Comment => {
                let (_, end) = lang.block_comment.unwrap_or(("", "\n"));
                let (e, closed) = match line[i..].find(end) {
                    Some(p) => (i + p + end.len(), true),
                    None => (n - usize::from(b[n - 1] == b'\n'), false),
                };
                push(out, &mut plain, i, e, Some(Tok::Comment));
                i = e;
                st = if closed { State::Normal } else { State::Comment };
                if !closed {
                    break;
                }
                continue;
            }
            State::Str(k) => {
                let d = lang.multiline[k as usize];
                let (e, closed) = close_string(b, i, d);
                let e = if closed { e } else { e - usize::from(e > i && b[e - 1] == b'\n') };
                push(out, &mut plain, i, e, Some(Tok::Str));
                i = e;
                st = if closed { State::Normal } else { st };
                if !closed {
                    break;
                }
                continue;
            }
            State::Tag => {
                // Inside `<tag ...`: attribute names are types, values strings, `>` ends.
                let c = b[i];
                if c == b'>' || (c == b'/' && b.get(i + 1) == Some(&b'>')) {
                    st = State::Normal;
                    i += 1;
                } else if has(lang.quotes, c) {
                    let e = line[i + 1..].find(c as char).map_or(n, |p| i + 2 + p);
                    push(out, &mut plain, i, e, Some(Tok::Str));
                    i = e;
                } else if is_ident(c, lang.ident_extra) {
                    let s = i;
                    while i < n && is_ident(b[i], lang.ident_extra) {
                        i += 1;
                    }
                    push(out, &mut plain, s, i, Some(Tok::Type));
                } else {
                    i += 1;
                }
                continue;
            }
            State::Normal => {}
        }
        let c = b[i];
        // (bytes: slicing the str would check a char boundary, in a call, at every byte)
        let rest = &b[i..];
        if let Some((open, _)) = lang.block_comment {
            if opens(rest, open) {
                push(out, &mut plain, i, i, None);
                st = State::Comment;
                // the opener itself is part of the comment token
                let (_, end) = lang.block_comment.unwrap_or(("", ""));
                let e = match line[i + open.len()..].find(end) {
                    Some(p) => i + open.len() + p + end.len(),
                    None => n - usize::from(b[n - 1] == b'\n'),
                };
                let closed = line[i + open.len()..].contains(end);
                push(out, &mut plain, i, e, Some(Tok::Comment));
                i = e;
                if closed {
                    st = State::Normal;
                }
                continue;
            }
        }
        if lang
            .line_comment
            .iter()
            .any(|lc| opens(rest, lc) && (*lc != "#" || i == 0 || b[i - 1].is_ascii_whitespace()))
        {
            let e = n - usize::from(b[n - 1] == b'\n');
            push(out, &mut plain, i, e, Some(Tok::Comment));
            i = e;
            continue;
        }
        if lang.markup && c == b'<' {
            let s = i + 1 + usize::from(b.get(i + 1) == Some(&b'/'));
            let mut e = s;
            while e < n && is_ident(b[e], lang.ident_extra) {
                e += 1;
            }
            if e > s {
                push(out, &mut plain, s, e, Some(Tok::Keyword));
                st = State::Tag;
                i = e;
                continue;
            }
        }
        if let Some(k) = lang.multiline.iter().position(|d| opens(rest, d)) {
            let d = lang.multiline[k];
            let s = i;
            let (e, closed) = close_string(b, i + d.len(), d);
            let e = if closed { e } else { e - usize::from(b[e - 1] == b'\n') };
            push(out, &mut plain, s, e, Some(Tok::Str));
            i = e;
            if !closed {
                st = State::Str(k as u8);
                break;
            }
            continue;
        }
        if has(lang.quotes, c) && !lang.markup {
            // Rust lifetimes ('a) look like char literals; accept only short closed ones.
            let mut j = i + 1;
            while j < n && b[j] != c && b[j] != b'\n' {
                j += if b[j] == b'\\' { 1 + b.get(j + 1).map_or(1, |c| c.len_utf8_hint()) } else { 1 };
            }
            let closed = j < n && b[j] == c;
            if c == b'\'' && !closed && lang.names.starts_with("rust ") {
                i += 1;
                continue;
            }
            let e = if closed { j + 1 } else { j.min(n) };
            push(out, &mut plain, i, e, Some(Tok::Str));
            i = e;
            continue;
        }
        if c.is_ascii_digit() && (i == 0 || !is_ident(b[i - 1], lang.ident_extra)) {
            let s = i;
            while i < n
                && (b[i].is_ascii_alphanumeric()
                    || b[i] == b'_'
                    || (b[i] == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit)))
            {
                i += 1;
            }
            push(out, &mut plain, s, i, Some(Tok::Number));
            continue;
        }
        if c == b'$' && lang.names.starts_with("bash ") {
            let s = i;
            i += 1;
            if i < n && b[i] == b'{' {
                while i < n && b[i] != b'}' {
                    i += 1;
                }
                i = (i + 1).min(n);
            } else {
                while i < n && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
            }
            push(out, &mut plain, s, i, Some(Tok::Type));
            continue;
        }
        if is_ident(c, lang.ident_extra) && !c.is_ascii_digit() {
            let s = i;
            while i < n && is_ident(b[i], lang.ident_extra) {
                i += 1;
            }
            let word = &line[s..i];
            let tok = if lang.keywords.contains(word, lang.nocase) {
                Some(Tok::Keyword)
            } else if lang.types.contains(word, lang.nocase) {
                Some(Tok::Type)
            } else if crate::heal::trim_spaces_start(&line[i..]).starts_with('(') && !lang.markup {
                Some(Tok::Function)
            } else if lang.capital_types && word.as_bytes()[0].is_ascii_uppercase() {
                Some(Tok::Type)
            } else {
                None
            };
            if tok.is_some() {
                push(out, &mut plain, s, i, tok);
            }
            continue;
        }
        let space = |c: u8| c == b' ' || c == b'\t';
        if has(SEPS, c) && i + 1 < n && b[i + 1] != b'#' && !(space(c) && space(b[i + 1])) {
            // (the plain text before the point goes out now, so the point is a node boundary)
            push(out, &mut plain, i + 1, i + 1, None);
            split = Some(Split { at: i + 1, spans: out.len() });
        }
        i += c.len_utf8_hint();
    }
    if plain < n {
        push_span(out, None, n);
    }
    (st, split)
}

/// If a line's last token (class `com` or `str`, text `tok`) is still open at the end of the
/// line, the characters that could end or change it; text without them just extends it.
pub(crate) fn open_token(lang: &Lang, comment: bool, tok: &str) -> Option<Vec<u8>> {
    if comment {
        if lang.line_comment.iter().any(|c| tok.starts_with(c)) {
            return Some(Vec::new());
        }
        let (open, close) = lang.block_comment?;
        return (tok.starts_with(open) && (tok.len() < open.len() + close.len() || !tok.ends_with(close)))
            .then(|| close.bytes().collect());
    }
    let d = lang
        .multiline
        .iter()
        .copied()
        .find(|d| tok.starts_with(d))
        .or_else(|| lang.quotes.iter().find(|&&q| tok.as_bytes()[0] == q).map(|_| &tok[..1]))?;
    // (closed as the tokenizer closes it: `"a\\"` is, its backslash escaped)
    let (end, closed) = close_string(tok.as_bytes(), d.len(), d);
    (!(closed && end == tok.len())).then(|| vec![d.as_bytes()[0], b'\\'])
}

/// The characters that could end the token open at the end of a line whose state there is
/// `st`, a block comment or a multi-line string that goes on to the next line (a line inside
/// one is a single such token): text without them extends that token.
pub(crate) fn open_in_state(lang: &Lang, st: State) -> Option<Vec<u8>> {
    match st {
        State::Comment => lang.block_comment.map(|(_, close)| close.bytes().collect()),
        State::Str(k) => lang.multiline.get(k as usize).map(|d| vec![d.as_bytes()[0], b'\\']),
        _ => None,
    }
}

/// Whether `rest` starts with the delimiter `d` (not empty). Asked at every byte of a line
/// being highlighted, for each comment and string delimiter of its language: the first bytes
/// are compared before a `starts_with`, which the interpreter running the module pays as a
/// call to `memcmp`.
#[inline(always)]
fn opens(rest: &[u8], d: &str) -> bool {
    rest.first() == d.as_bytes().first() && rest.starts_with(d.as_bytes())
}

/// From `from`, the end of a string literal closed by `delim` (backslash escapes skipped):
/// just after the delimiter and `true`, or the end of `b` and `false` when it is not closed.
fn close_string(b: &[u8], from: usize, delim: &str) -> (usize, bool) {
    let mut j = from;
    while j < b.len() {
        if b[j] == b'\\' {
            j += 1 + b.get(j + 1).map_or(1, |c| c.len_utf8_hint());
            continue;
        }
        if b[j..].starts_with(delim.as_bytes()) {
            return (j + delim.len(), true);
        }
        j += 1;
    }
    (j.min(b.len()), false)
}

trait Utf8Len {
    fn len_utf8_hint(self) -> usize;
}
impl Utf8Len for u8 {
    /// Bytes to skip to stay on a char boundary (only ASCII starts a token).
    fn len_utf8_hint(self) -> usize {
        match self {
            0xF0..=0xFF => 4,
            0xE0..=0xEF => 3,
            0xC0..=0xDF => 2,
            _ => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Words are found by binary search: every list must be in byte order, and a
    /// case-insensitive one in lower case.
    #[test]
    fn word_lists_are_sorted() {
        for l in &LANGS {
            for w in [&l.keywords, &l.types] {
                let words: Vec<&str> = w.list.split(' ').filter(|w| !w.is_empty()).collect();
                assert!(words.windows(2).all(|p| p[0] < p[1]), "{}: {:?} is not sorted", l.names, w.list);
                assert!(!l.nocase || w.list == w.list.to_ascii_lowercase(), "{}", l.names);
                assert!(words.iter().all(|k| w.contains(k, l.nocase)));
            }
        }
    }

    /// SQL keywords match in any case, with no allocation per identifier.
    #[test]
    fn case_insensitive_lookup_allocates_nothing() {
        let sql = lang_of("sql").unwrap();
        assert!(sql.keywords.contains("select", true));
        let n = crate::alloc_count::allocations(|| {
            assert!(sql.keywords.contains("SELECT", true) && sql.keywords.contains("Where", true));
            assert!(!sql.keywords.contains("SELECTS", true) && !sql.keywords.contains("sel", true));
        });
        assert_eq!(n, 0);
        assert!(!lang_of("js").unwrap().keywords.contains("CONST", false));
    }
    fn sp(class: Option<Tok>, end: usize) -> Span {
        Span { class, end }
    }

    /// Plain text merges with plain text across the join, and nothing else merges: two
    /// tokens of one class next to each other stay two nodes.
    #[test]
    fn join_spans_merges_plain_text_only() {
        let (kw, st) = (Some(Tok::Keyword), Some(Tok::Str));
        let mut out = Vec::new();
        join_spans(&mut out, &[]);
        assert_eq!(out, []);
        join_spans(&mut out, &[sp(None, 3)]);
        assert_eq!(out, [sp(None, 3)]);
        join_spans(&mut out, &[]);
        assert_eq!(out, [sp(None, 3)]);
        // Plain after plain: one span, ending where the later one ends.
        join_spans(&mut out, &[sp(None, 5), sp(kw, 7)]);
        assert_eq!(out, [sp(None, 5), sp(kw, 7)]);
        // A class after the same class: two spans; plain after a class: its own span.
        join_spans(&mut out, &[sp(kw, 9), sp(None, 10), sp(st, 12), sp(st, 15)]);
        assert_eq!(out, [sp(None, 5), sp(kw, 7), sp(kw, 9), sp(None, 10), sp(st, 12), sp(st, 15)]);
        // A class after plain text: its own span; two plain spans inside `more` merge too.
        let mut out = vec![sp(None, 2)];
        join_spans(&mut out, &[sp(None, 4), sp(None, 6), sp(st, 8), sp(None, 9)]);
        assert_eq!(out, [sp(None, 6), sp(st, 8), sp(None, 9)]);
        // Joining a line's spans cut anywhere gives the line's spans.
        let rust = lang_of("rust").unwrap();
        let line = "let s = \"é\"; // 注释\n";
        let mut whole = Vec::new();
        highlight_part(rust, line, State::Normal, &mut whole);
        for cut in 0..=whole.len() {
            let mut out = whole[..cut].to_vec();
            join_spans(&mut out, &whole[cut..]);
            assert_eq!(out, whole, "cut after {cut} spans");
        }
    }

    /// `is_span_node` answers as comparing with the node `span_node` builds would, for text
    /// and spans of each class, with multi-byte text at either end.
    #[test]
    fn is_span_node_is_equality_with_the_built_node() {
        let classes = [
            None,
            Some(Tok::Keyword),
            Some(Tok::Str),
            Some(Tok::Comment),
            Some(Tok::Number),
            Some(Tok::Type),
            Some(Tok::Function),
        ];
        let texts = ["", "x", "fn", "é", "\"注释\"", "a世", "世a"];
        for prefix in ["", "md-", "md-s"] {
            for &c in &classes {
                for t in texts {
                    let node = span_node(t, c, prefix);
                    for &c2 in &classes {
                        for t2 in texts {
                            for p2 in ["", "md-", "md-s"] {
                                let same = node == span_node(t2, c2, p2);
                                assert_eq!(is_span_node(&node, t2, c2, p2), same, "{node:?} vs {t2:?} {c2:?} {p2:?}");
                            }
                        }
                    }
                }
            }
        }
        // Not the shape of a token: another tag, a style, an attribute, a link, two children,
        // a class that is the prefix and the class name split differently.
        let base = || match span_node("x", Some(Tok::Str), "md-") {
            Node::Element(e) => e,
            n => panic!("{n:?}"),
        };
        let mut others = vec![base(), base(), base(), base(), base(), base()];
        others[0].name = "code";
        others[1].style = "color:red".into();
        others[2].attrs.push(("alt", "x".into()));
        others[3].link = Some(Box::default());
        others[4].children.push(Node::Text(String::new()));
        others[5].class = "m-dstr".into();
        for e in others {
            assert!(!is_span_node(&Node::Element(e.clone()), "x", Some(Tok::Str), "md-"), "{e:?}");
        }
        assert!(is_span_node(&Node::Element(base()), "x", Some(Tok::Str), "md-"));
        // A span is not its text, nor its text a span.
        assert!(!is_span_node(&Node::Text("x".into()), "x", Some(Tok::Str), "md-"));
        assert!(!is_span_node(&Node::Element(base()), "x", None, "md-"));
    }
}
