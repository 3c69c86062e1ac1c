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
enum Tok {
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
/// words the first time it is searched (scanning the string for every identifier would cost
/// the interpreted wasm of iOS a byte search per keyword).
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
        let words = self.split.get_or_init(|| self.list.split(' ').filter(|w| !w.is_empty()).collect());
        if nocase {
            words.iter().any(|k| k.eq_ignore_ascii_case(word))
        } else {
            words.contains(&word)
        }
    }
}

#[rustfmt::skip]
const C_KW: &str = "\
    auto break case const continue default do else enum extern for goto if inline register return \
    sizeof static struct switch typedef union volatile while class namespace template typename \
    public private protected virtual override new delete this try catch throw using operator \
    friend constexpr nullptr true false NULL #include #define #ifdef #ifndef #endif #if #else \
    #pragma noexcept mutable explicit co_await co_return";
#[rustfmt::skip]
const C_TY: &str = "\
    int char float double long short void bool signed unsigned size_t int8_t int16_t int32_t \
    int64_t uint8_t uint16_t uint32_t uint64_t string vector map std FILE";
#[rustfmt::skip]
const JS_KW: &str = "\
    async await break case catch class const continue debugger default delete do else export \
    extends finally for from function if import in instanceof let new of return static super \
    switch this throw try typeof var void while yield true false null undefined as interface type \
    implements enum public private protected readonly declare namespace abstract";
#[rustfmt::skip]
const JS_TY: &str = "\
    string number boolean any unknown never object symbol bigint Array Promise Map Set Object \
    String Number Date Error JSON Math console window document wx";
#[rustfmt::skip]
const PY_KW: &str = "\
    and as assert async await break class continue def del elif else except finally for from \
    global if import in is lambda nonlocal not or pass raise return try while with yield True \
    False None self match case";
#[rustfmt::skip]
const PY_TY: &str = "\
    int float str bool list dict tuple set bytes object type print len range open super isinstance \
    Exception";
#[rustfmt::skip]
const JAVA_KW: &str = "\
    abstract assert break case catch class const continue default do else enum extends final \
    finally for goto if implements import instanceof interface native new package private \
    protected public return static strictfp super switch synchronized this throw throws transient \
    try volatile while true false null var record val fun when object";
const JAVA_TY: &str = "int long short byte char float double boolean void";
#[rustfmt::skip]
const GO_KW: &str = "\
    break case chan const continue default defer else fallthrough for func go goto if import \
    interface map package range return select struct switch type var true false nil iota";
#[rustfmt::skip]
const GO_TY: &str = "\
    bool byte complex64 complex128 error float32 float64 int int8 int16 int32 int64 rune string \
    uint uint8 uint16 uint32 uint64 uintptr any make len cap append new panic";
#[rustfmt::skip]
const RS_KW: &str = "\
    as async await break const continue crate dyn else enum extern false fn for if impl in let \
    loop match mod move mut pub ref return self Self static struct super trait true type unsafe \
    use where while";
#[rustfmt::skip]
const RS_TY: &str = "i8 i16 i32 i64 i128 isize u8 u16 u32 u64 u128 usize f32 f64 bool char str";
const JSON_KW: &str = "true false null";
#[rustfmt::skip]
const SH_KW: &str = "\
    if then else elif fi for while until do done case esac in function return export local \
    readonly source alias set unset echo cd exit sudo";
#[rustfmt::skip]
const SH_TY: &str = "\
    npm npx yarn pnpm pip python python3 cargo git docker curl wget apt apt-get brew node go \
    rustup make ls cat grep mkdir rm cp mv chmod kubectl";
#[rustfmt::skip]
const SQL_KW: &str = "\
    select from where and or not insert into values update set delete create table drop alter add \
    index primary key foreign references join left right inner outer on as group by order having \
    limit offset distinct union all null is in like between case when then else end exists default \
    unique desc asc with view begin commit rollback true false";
#[rustfmt::skip]
const SQL_TY: &str = "\
    int integer bigint smallint varchar char text date datetime timestamp boolean decimal numeric \
    float real serial json count sum avg min max";
const CSS_KW: &str = "@media @import @keyframes @font-face !important @supports";

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

fn is_ident(b: u8, extra: &[u8]) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80 || extra.contains(&b)
}

/// Highlights one line (with its `\n`), appending nodes to `out`; returns the state at the
/// start of the next line. `class` is the class prefix.
pub(crate) fn highlight_line(lang: &Lang, line: &str, state: State, prefix: &str, out: &mut Vec<Node>) -> State {
    highlight_part(lang, line, state, prefix, out).0
}

/// Separators after which a line may be split: tokens before never depend on what follows.
const SEPS: &[u8] = b";,{}()=:[]";

/// Like [`highlight_line`], and also returns the last split point: the offset just after
/// a separator (`;`, `,`, `(`, `=`, …) seen as plain text in the normal state. Highlighting
/// `line[..p]` and then `line[p..]` from [`State::Normal`] gives the same tokens as the whole
/// line (adjacent plain text merged), provided `line[p]` is not `#`.
pub(crate) fn highlight_part(
    lang: &Lang,
    line: &str,
    state: State,
    prefix: &str,
    out: &mut Vec<Node>,
) -> (State, Option<usize>) {
    let mut split = None;
    let b = line.as_bytes();
    let n = b.len();
    let mut st = state;
    let mut i = 0;
    let mut plain = 0; // start of pending plain text
    let push = |out: &mut Vec<Node>, plain: &mut usize, s: usize, e: usize, t: Option<Tok>| {
        if s > *plain {
            push_text(out, &line[*plain..s]);
        }
        if e > s {
            match t {
                Some(t) => {
                    let mut el = Element::new("span", crate::nodes::class_name(prefix, t.class()));
                    el.children.push(Node::Text(line[s..e].to_string()));
                    out.push(Node::Element(el));
                }
                None => push_text(out, &line[s..e]),
            }
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
                } else if lang.quotes.contains(&c) {
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
        let rest = &line[i..];
        if let Some((open, _)) = lang.block_comment {
            if rest.starts_with(open) {
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
            .any(|lc| rest.starts_with(lc) && (*lc != "#" || i == 0 || b[i - 1].is_ascii_whitespace()))
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
        if let Some(k) = lang.multiline.iter().position(|d| rest.starts_with(d)) {
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
        if lang.quotes.contains(&c) && !lang.markup {
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
        if lang.names.starts_with("bash ") && c == b'$' {
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
            } else if line[i..].trim_start_matches([' ', '\t']).starts_with('(') && !lang.markup {
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
        if SEPS.contains(&c) {
            split = Some(i + 1);
        }
        i += c.len_utf8_hint();
    }
    if plain < n {
        push_text(out, &line[plain..]);
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
    let closed = tok.len() >= 2 * d.len() && tok.ends_with(d) && !tok[..tok.len() - d.len()].ends_with('\\');
    (!closed).then(|| vec![d.as_bytes()[0], b'\\'])
}

/// Appends `more` to `out`, merging a leading text node into a trailing one.
pub(crate) fn join(out: &mut Vec<Node>, more: Vec<Node>) {
    let mut it = more.into_iter().peekable();
    if let (Some(Node::Text(a)), Some(Node::Text(b))) = (out.last_mut(), it.peek()) {
        a.push_str(b);
        it.next();
    }
    out.extend(it);
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

fn push_text(out: &mut Vec<Node>, s: &str) {
    if let Some(Node::Text(t)) = out.last_mut() {
        t.push_str(s);
    } else {
        out.push(Node::Text(s.to_string()));
    }
}
