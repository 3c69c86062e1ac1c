//! Healing of the open (last) block while an answer streams.
//!
//! Healing rewrites the *end* of the revealed source so that the parser shows what the
//! writer evidently means, and never shows a character that a later append would take back:
//!
//! 1. Inside an open code fence, a last line made only of fence characters (a closing fence
//!    being typed) is hidden. Nothing else is touched: an open fence already renders as a
//!    code block running to the end.
//! 2. A last line made only of block markers (`-`, `1.`, `#`, `>`, `|--`, `===`, `` ``` ``)
//!    is hidden: it cannot be told yet whether it is a list item, a setext underline, a
//!    thematic break, a table delimiter row or a fence.
//! 3. A pipe row (`| a | b |`) that could be a table header is hidden until the delimiter
//!    row below it has arrived: a table appears whole, never as text first.
//! 4. Stray markers at the reveal edge (`*`, `**`, `_`, `~~`, `` ` ``, `$`, `[`, `](`, `!`,
//!    `\`, `<`, `&`) are hidden.
//! 5. Inline constructs still open on the last line are closed by appending synthetic
//!    closers: `**`, `*`, `_`, `~~`, backticks, `$`, `]()` for link text (shown as the link's
//!    text), `)` for a link destination (cut at its first space, dropping a partial title).
//!    An image, an autolink or HTML tag in progress, an entity in progress and a task-list
//!    box in progress are hidden until complete.
//!
//! The synthetic closers live past [`Healed::limit`]; the renderer drops any text that a
//! parse takes from there, so a closer that fails to close is still never shown.
//!
//! Healing is a heuristic scan of one line, not a Markdown parser: when it guesses wrong,
//! the streaming view differs from the final one in styling only, and `finish()` renders
//! the unhealed source.

/// A healed source: `text[..limit]` is a prefix of the revealed source, `text[limit..]`
/// synthetic closers.
pub(crate) struct Healed {
    pub text: String,
    pub limit: usize,
    /// The source ends inside a fenced code block.
    pub fenced: bool,
    /// What the hidden end of the source is, when it stays hidden as long as text of a
    /// known kind is appended (the renderer then skips parsing).
    pub hidden: Hidden,
    /// The scan ended inside a code span (so stray markers appended there would show).
    pub in_span: bool,
    /// Where the line healing rewrote starts: the block structure from there on is
    /// provisional.
    pub edit_from: usize,
}

/// A hidden source end, and so which appends keep it hidden.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Hidden {
    None,
    /// A last line of block markers only: hidden while it stays so.
    Markers,
    /// A line hidden until it ends: a pipe row that may be a table header, or a fence
    /// opening line (its info string shows nothing).
    Line,
    /// A closing fence being typed (fence character, fence length): hidden while only the
    /// fence character follows and the fence is not long enough to close yet.
    Fence(u8, usize),
    /// A link destination `](…`: hidden until `)` (the link text shows already).
    Dest,
    /// An image `![…`: hidden until `]` or `)`.
    Image,
    /// An autolink or tag `<…`: hidden until `>` or a space.
    Angle,
    /// An entity `&…`: hidden while letters, digits or `#` follow.
    Entity,
    /// (from `scan` only: the text ends inside a code span; nothing is hidden)
    Span,
}

impl Hidden {
    /// Whether `src` (the whole source, already grown by `added`) still ends hidden the
    /// same way. Needs only the last line.
    pub fn stays(self, src: &str, added: &str) -> bool {
        if added.contains(['\n', '\r']) {
            return false;
        }
        let line = &src[src.rfind('\n').map_or(0, |p| p + 1)..];
        match self {
            Hidden::None => false,
            Hidden::Markers => markers_tail(line, false),
            Hidden::Line => true,
            // (a complete closing fence without its line break is hidden by rule 2 as well)
            Hidden::Fence(ch, _) => trim_blank(&line[content_start(line)..]).bytes().all(|b| b == ch),
            Hidden::Dest => !added.contains(['(', ')', '\\', '<', '>']),
            Hidden::Image => !added.contains([']', ')', '\\', '[']),
            Hidden::Angle => !added.contains(['>', '<', ' ', '\t']),
            Hidden::Entity => added.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'#'),
            Hidden::Span => false,
        }
    }
}

/// Heals `src`, the source of the open region (it starts at a line start); `before` is the
/// source line just before it (empty if none).
pub(crate) fn heal(src: &str, before: &str) -> Healed {
    heal_in(src, before, None)
}

/// Where [`scan`] of a growing line may resume, so that healing the line an append extends
/// costs what was appended, not the line's length: the scan's state at offset `at` of the
/// line starting at source offset `line`, whose content starts at offset `cs`. Valid while
/// the source is only appended to: the scan decided nothing before `at` on a byte past `at`
/// (a marker run's next character is the one at `at` at most), and it saves a state only
/// where a byte follows.
#[derive(Clone, Debug, Default)]
pub(crate) struct Resume {
    line: usize,
    cs: usize,
    at: usize,
    st: Vec<Open>,
}

/// Healing of the line being typed, for the suffix path: `src` is that one line (no line
/// break), starting at source offset `abs`.
pub(crate) struct Line<'a> {
    pub abs: usize,
    pub resume: &'a mut Option<Resume>,
    /// `Healed::text` holds the healed text from this offset of `src` on (the rest is not
    /// copied); `limit` stays an offset in `src`.
    pub copy_from: usize,
    /// Bytes scanned (the render work).
    pub scanned: usize,
}

/// How far a saved scan state stays behind the end of the scanned text, so that the next
/// append's scans (whose end may be cut back by a few stray markers) can start from it.
const RESUME_LAG: usize = 64;

/// [`heal`], with `line` when `src` is the one line being typed.
pub(crate) fn heal_in(src: &str, before: &str, mut ctx: Option<&mut Line>) -> Healed {
    let one_line = ctx.is_some();
    // (the last line's start: a line given alone has no line break to search for)
    let rfind_nl = |s: &str| if one_line { None } else { s.rfind('\n') };
    let mut keep = src.len();
    let last_start = rfind_nl(src).map_or(0, |p| p + 1);

    // 1. open fence?
    // (the fence state before the last line: a closing fence being typed stays hidden, so
    // the block stays open until the fence line is complete)
    if let Some((ch, n, _, _, _)) = open_fence_in(&src[..last_start]).filter(|f| !leaves(&src[last_start..], f.2, f.3))
    {
        let line = &src[last_start..];
        let c = &line[content_start(line)..];
        let t = trim_blank(c);
        let mut hidden = Hidden::None;
        if !t.is_empty() && t.bytes().all(|b| b == ch) {
            keep = last_start;
            hidden = Hidden::Fence(ch, n);
        }
        return Healed {
            text: src[..keep].to_string(),
            limit: keep,
            fenced: true,
            hidden,
            in_span: false,
            edit_from: keep,
        };
    }

    // 2. a last line of block markers only
    let line = &src[last_start..];
    let mut hidden = Hidden::None;
    if !line.is_empty() && markers_only(&line[content_start(line)..]) {
        keep = last_start;
        hidden = Hidden::Markers;
    } else if is_fence_line(&line[container_start(line)..]) {
        keep = last_start;
        hidden = Hidden::Line;
    }
    // 3. a possible table header without its delimiter row
    let body = src[..keep].trim_end_matches('\n');
    let ls = rfind_nl(body).map_or(0, |p| p + 1);
    let l = &body[ls..];
    if l[content_start(l)..].starts_with('|') {
        let prev = if ls == 0 { before } else { &body[..ls - 1] };
        let pl = &prev[prev.rfind('\n').map_or(0, |p| p + 1)..];
        if !pl[content_start(pl)..].starts_with('|') {
            // (only while that row is the line being typed: once complete, the next line
            // decides)
            if keep == src.len() && ls == last_start {
                hidden = Hidden::Line;
            }
            keep = ls;
        }
    }

    // 4 and 5, on the last kept line
    let base = src[..keep].trim_end_matches(['\n', '\r', ' ', '\t']);
    let ls = rfind_nl(base).map_or(0, |p| p + 1);
    let cs = ls + content_start(&base[ls..]);
    let mut end = base.len();
    // (each scan is a pass over the line: the same end is scanned once)
    let mut memo: Option<(usize, Scan)> = None;
    let mut line = ctx.as_deref_mut();
    while !in_span(base, cs, end, &mut memo, &mut line) {
        let t = &base[cs..end];
        let t2 = trim_spaces_end(t);
        if t2.len() != t.len() {
            end = cs + t2.len();
            continue;
        }
        if t.ends_with("](") {
            end -= 2;
        } else if t.bytes().last().is_some_and(stray_marker) {
            end -= 1;
        } else {
            break;
        }
    }
    // a task-list box being typed: `[`, `[ `, `[x`, `[x]`
    let t = &base[cs..end];
    if t.starts_with('[') && t.len() <= 3 && t[1..].trim_end_matches(']').trim_matches([' ', 'x', 'X']).is_empty() {
        end = cs;
    }
    let (cut, closers, why) = scan_memo(base, cs, end, &mut memo, &mut line);
    let span_at_end = in_span(base, cs, base.len(), &mut memo, &mut line);
    let why = if why == Hidden::Span { Hidden::None } else { why };
    // (a hidden end stays hidden only while the scanned line is the one being typed)
    let last_line = one_line || !src[ls..].contains('\n');
    if hidden == Hidden::None && last_line && (why == Hidden::Dest || (end == base.len() && base.len() == src.len())) {
        hidden = why;
    }
    let end = cut.unwrap_or(end);
    let mut kept = trim_spaces_end(&base[..end]);
    // A line left with openers only shows nothing: drop it, so that its closers cannot turn
    // it into block syntax (`~~` + `~~` would be a fence). So does a line that its hidden
    // end leaves with block markers only (`-|-&`: a delimiter row would make the lines
    // before a table, and end the paragraph before them, which the `&` never does).
    let closers = if kept.len() > cs
        && (kept[cs..]
            .bytes()
            .all(|b| matches!(b, b'*' | b'_' | b'~' | b'`' | b'$' | b'[' | b']' | b'!' | b'(' | b' ' | b'\t'))
            || (kept.len() < base.len() && markers_only(&kept[cs..])))
    {
        kept = trim_spaces_end(&base[..cs]);
        String::new()
    } else {
        closers
    };
    let from = ctx.map_or(0, |l| l.copy_from.min(kept.len()));
    let mut text = String::with_capacity(kept.len() - from + closers.len());
    text.push_str(&kept[from..]);
    let limit = kept.len();
    text.push_str(&closers);
    Healed { text, limit, fenced: false, hidden, in_span: span_at_end, edit_from: ls }
}

/// If the text ends inside a fenced code block, the fence character and length.
pub(crate) fn open_fence(src: &str) -> Option<(u8, usize)> {
    open_fence_in(src).map(|(b, n, _, _, _)| (b, n))
}

/// Whether the text ends inside a fenced code block whose opening fence is at column 0, so
/// that its content lines are the source lines as they are (an indented fence strips up to
/// its indentation from each, CommonMark 4.5).
pub(crate) fn open_fence_at_margin(src: &str) -> bool {
    open_fence_in(src).is_some_and(|f| f.4)
}

/// [`open_fence`] with the fence's container: (fence char, length, the list item content
/// column it lives in, inside a block quote, at column 0).
fn open_fence_in(src: &str) -> Option<(u8, usize, usize, bool, bool)> {
    let mut open: Option<(u8, usize, usize, bool, bool)> = None;
    for line in src.split('\n') {
        let cs = container_start(line);
        let c = &line[cs..];
        let ch = c.as_bytes().first().copied();
        let run = c.bytes().take_while(|&b| Some(b) == ch).count();
        // a line that leaves the fence's list item or block quote ends the fence too
        if open.is_some_and(|(_, _, col, quoted, _)| leaves(line, col, quoted)) {
            open = None;
        }
        match (open, ch) {
            // (four columns of indentation make an indented code block, not a fence)
            (None, Some(b @ (b'`' | b'~')))
                if run >= 3 && (b == b'~' || !c[run..].contains('`')) && !too_indented(&line[..cs]) =>
            {
                let quoted = line[..cs].contains('>');
                let in_item = line[..cs].trim_end().ends_with(['-', '*', '+', '.', ')']) || cs >= 4;
                open = Some((b, run, if in_item && !quoted { cs } else { 0 }, quoted, cs == 0));
            }
            (Some((b, n, _, _, _)), Some(x)) if x == b && run >= n && is_blank(&c[run..]) => open = None,
            _ => {}
        }
    }
    open
}

/// Whether a line prefix of whitespace only (no container marker) is 4 columns or more.
fn too_indented(lead: &str) -> bool {
    let mut col = 0;
    for b in lead.bytes() {
        match b {
            b' ' => col += 1,
            b'\t' => col += 4 - col % 4,
            _ => return false,
        }
    }
    col >= 4
}

/// Whether `line` leaves the list item or block quote of a fence opened in it.
fn leaves(line: &str, col: usize, quoted: bool) -> bool {
    let indent = line.len() - line.trim_start_matches(' ').len();
    !is_blank(line) && (indent < col || (quoted && !trim_spaces_start(line).starts_with('>')))
}

/// Whether `s`, appended after visible text, is only stray markers and spaces that healing
/// hides (the same stripping as in [`heal`]).
pub(crate) fn strays_only(s: &str) -> bool {
    // (a backtick may open a code span, inside which nothing is stripped)
    // (bytes, not a searcher: this runs on the few bytes of most appends to a paragraph)
    if s.bytes().any(|b| b == b'`') {
        return false;
    }
    let mut t = s;
    loop {
        let u = trim_spaces_end(t);
        if let [.., b']', b'('] = u.as_bytes() {
            t = &u[..u.len() - 2];
        } else if u.bytes().last().is_some_and(stray_marker) {
            t = &u[..u.len() - 1];
        } else {
            return u.is_empty();
        }
    }
}

/// A marker that healing strips from the end of a line while nothing follows it.
fn stray_marker(b: u8) -> bool {
    matches!(b, b'*' | b'_' | b'~' | b'`' | b'$' | b'\\' | b'[' | b']' | b'!' | b'<' | b'&')
}

/// Whether `s` is blank: spaces, tabs and line endings only. CommonMark 0.31.2, 4.9: "a line
/// containing no characters, or a line containing only spaces (U+0020) or tabs (U+0009)".
/// Other Unicode spaces (U+3000 IDEOGRAPHIC SPACE, U+00A0, U+0085) are text, which `str::trim`
/// would drop.
pub(crate) fn is_blank(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
}

/// `s` without the spaces, tabs and line endings it starts and ends with (see [`is_blank`]).
pub(crate) fn trim_blank(s: &str) -> &str {
    s.trim_matches([' ', '\t', '\n', '\r'])
}

/// `s` without the spaces, tabs and line endings it ends with (see [`is_blank`]), where
/// `str::trim_end` would also drop other Unicode spaces.
pub(crate) fn trim_blank_end(s: &str) -> &str {
    s.trim_end_matches([' ', '\t', '\n', '\r'])
}

/// `s` without the spaces and tabs it ends with. (Bytes: a `[char]` pattern decodes each
/// character and searches the array for it, which an interpreter running the module pays on
/// every append.)
pub(crate) fn trim_spaces_end(s: &str) -> &str {
    &s[..s.bytes().rposition(|b| b != b' ' && b != b'\t').map_or(0, |i| i + 1)]
}

/// `s` without the spaces and tabs it starts with (see [`trim_spaces_end`]).
pub(crate) fn trim_spaces_start(s: &str) -> &str {
    &s[s.bytes().position(|b| b != b' ' && b != b'\t').unwrap_or(s.len())..]
}

/// Whether hidden lines (the source from the first hidden line on) still show nothing:
/// every complete line is blank, and the last one is block markers only.
/// `mid_line`: the tail starts inside a line that already shows (it may only get blanks).
pub(crate) fn markers_tail(tail: &str, mid_line: bool) -> bool {
    let mut lines = tail.split('\n');
    let last = lines.next_back().unwrap_or("");
    let has_break = tail.contains('\n');
    lines.all(is_blank)
        && if mid_line && !has_break { is_blank(last) } else { markers_only(&last[content_start(last)..]) }
}

/// A fence opening line: three or more backticks or tildes.
fn is_fence_line(c: &str) -> bool {
    let t = c.trim_start_matches(' ');
    t.starts_with("```") || t.starts_with("~~~")
}

/// Where a line's content starts, after indentation, block quote markers, list markers and
/// an ATX heading marker.
pub(crate) fn content_start(line: &str) -> usize {
    prefix_end(line, true)
}

/// Where a line's content starts after its container markers only (no heading marker).
fn container_start(line: &str) -> usize {
    prefix_end(line, false)
}

fn prefix_end(line: &str, heading: bool) -> usize {
    let b = line.as_bytes();
    let mut i = 0;
    loop {
        while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
            i += 1;
        }
        if i < b.len() && b[i] == b'>' {
            i += 1;
            continue;
        }
        if i + 1 < b.len() && matches!(b[i], b'-' | b'*' | b'+') && (b[i + 1] == b' ' || b[i + 1] == b'\t') {
            i += 2;
            continue;
        }
        let d = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if (1..=9).contains(&d) && i + d + 1 < b.len() && matches!(b[i + d], b'.' | b')') && b[i + d + 1] == b' ' {
            i += d + 2;
            continue;
        }
        let h = b[i..].iter().take_while(|&&c| c == b'#').count();
        if heading && (1..=6).contains(&h) && i + h < b.len() && b[i + h] == b' ' {
            i += h + 1;
            continue;
        }
        return i;
    }
}

/// A line that is only block markers so far (or empty after its container prefix).
pub(crate) fn markers_only(c: &str) -> bool {
    let t = trim_blank(c);
    if t.bytes()
        .all(|b| matches!(b, b'#' | b'*' | b'+' | b'-' | b'=' | b'_' | b'|' | b':' | b'~' | b'`' | b' ' | b'\t' | b'>'))
    {
        return true;
    }
    let d = t.bytes().take_while(u8::is_ascii_digit).count();
    (1..=9).contains(&d) && (d == t.len() || (d + 1 == t.len() && matches!(t.as_bytes()[d], b'.' | b')')))
}

#[derive(Clone, Debug)]
enum Open {
    Code(usize),
    /// Math: the `$` count and the open `{` depth (pulldown-cmark's math needs balanced braces).
    Math(usize, usize),
    Delim(u8, usize),
    Bracket {
        image: bool,
        pos: usize,
    },
    /// Inside `](…`: the position of `(`.
    Dest(usize),
}

fn is_ws(c: Option<char>) -> bool {
    c.is_none_or(char::is_whitespace)
}
fn is_punct(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_ascii_punctuation() || (!c.is_alphanumeric() && !c.is_whitespace()))
}

/// Scans `t[cs..]` for inline constructs left open; returns a cut position (something in
/// progress that must stay hidden) and the closers to append.
/// What [`scan`] finds: a cut position, the closers to append, and what is hidden.
type Scan = (Option<usize>, String, Hidden);

/// [`scan`] of `base[..end]`, remembered for the last `end` asked.
fn scan_memo(
    base: &str,
    cs: usize,
    end: usize,
    memo: &mut Option<(usize, Scan)>,
    line: &mut Option<&mut Line>,
) -> Scan {
    match memo {
        Some((e, r)) if *e == end => r.clone(),
        _ => {
            let r = scan(&base[..end], cs, line.as_deref_mut());
            *memo = Some((end, r.clone()));
            r
        }
    }
}

/// Whether `base[..end]` ends inside an open code span, where everything is content, not
/// a stray marker.
fn in_span(base: &str, cs: usize, end: usize, memo: &mut Option<(usize, Scan)>, line: &mut Option<&mut Line>) -> bool {
    !base[..end].ends_with('`') && matches!(scan_memo(base, cs, end, memo, line).2, Hidden::Span)
}

fn scan(t: &str, cs: usize, mut line: Option<&mut Line>) -> Scan {
    let mut why = Hidden::None;
    let b = t.as_bytes();
    let mut st: Vec<Open> = Vec::new();
    let mut i = cs;
    let mut cut = None;
    // Resume from the state saved by an earlier scan of this line, if it lies before the
    // end (the byte at `at` must be there: see `Resume`).
    let mut save_at = usize::MAX;
    if let Some(l) = line.as_deref_mut() {
        if let Some(r) = l.resume.as_ref().filter(|r| r.line == l.abs && r.cs == cs && r.at < b.len()) {
            i = r.at;
            st = r.st.clone();
        }
        l.scanned += b.len() - i;
        save_at = b.len().saturating_sub(RESUME_LAG).max(i);
    }
    while i < b.len() {
        if i >= save_at {
            save_at = usize::MAX;
            if let Some(l) = line.as_deref_mut() {
                *l.resume = Some(Resume { line: l.abs, cs, at: i, st: st.clone() });
            }
        }
        let c = b[i];
        match st.last() {
            Some(Open::Code(n)) => {
                let n = *n;
                if c == b'`' {
                    let r = b[i..].iter().take_while(|&&x| x == b'`').count();
                    if r == n {
                        st.pop();
                    }
                    i += r;
                } else {
                    i += 1;
                }
                continue;
            }
            Some(Open::Math(n, _)) => {
                let n = *n;
                if c == b'$' && (n == 2 || !b[i - 1].is_ascii_whitespace()) {
                    let r = b[i..].iter().take_while(|&&x| x == b'$').count();
                    if r >= n {
                        st.pop();
                    }
                    i += r;
                } else {
                    if let Some(Open::Math(_, d)) = st.last_mut() {
                        match c {
                            b'{' => *d += 1,
                            b'}' => *d = d.saturating_sub(1),
                            b'\\' => i += 1,
                            _ => {}
                        }
                    }
                    i += 1;
                }
                continue;
            }
            Some(Open::Dest(_)) => {
                if c == b')' {
                    st.pop();
                    if let Some(Open::Bracket { .. }) = st.last() {
                        st.pop();
                    }
                } else if c == b'\\' {
                    i += 1;
                }
                i += 1;
                continue;
            }
            _ => {}
        }
        match c {
            b'\\' => i += 2,
            b'`' => {
                let r = b[i..].iter().take_while(|&&x| x == b'`').count();
                st.push(Open::Code(r));
                i += r;
            }
            b'$' => {
                let r = b[i..].iter().take_while(|&&x| x == b'$').count();
                let next = t[i + r..].chars().next();
                // `$5` is a price far more often than math: only a letter or `\` opens.
                if r >= 2 || next.is_some_and(|n| n.is_alphabetic() || n == '\\') {
                    st.push(Open::Math(r.min(2), 0));
                }
                i += r;
            }
            b'*' | b'_' | b'~' => {
                let r = b[i..].iter().take_while(|&&x| x == c).count();
                let prev = t[..i].chars().next_back();
                let next = t[i + r..].chars().next();
                let left = !is_ws(next) && (!is_punct(next) || is_ws(prev) || is_punct(prev));
                let right = !is_ws(prev) && (!is_punct(prev) || is_ws(next) || is_punct(next));
                let (open, close) = if c == b'_' {
                    (left && (!right || is_punct(prev)), right && (!left || is_punct(next)))
                } else {
                    (left, right)
                };
                let mut rem = r;
                if close {
                    while rem > 0 {
                        let Some(k) = st.iter().rposition(|o| matches!(o, Open::Delim(ch, _) if *ch == c)) else {
                            break;
                        };
                        if st[k + 1..].iter().any(|o| matches!(o, Open::Bracket { .. })) {
                            break;
                        }
                        st.truncate(k + 1);
                        let Some(Open::Delim(_, n)) = st.last_mut() else {
                            break;
                        };
                        if *n > rem {
                            *n -= rem;
                            rem = 0;
                        } else {
                            rem -= *n;
                            st.pop();
                        }
                    }
                }
                if open && rem > 0 {
                    st.push(Open::Delim(c, rem));
                }
                i += r;
            }
            b'[' => {
                let image = i > 0 && b[i - 1] == b'!';
                st.push(Open::Bracket { image, pos: if image { i - 1 } else { i } });
                i += 1;
            }
            b']' => {
                if let Some(k) = st.iter().rposition(|o| matches!(o, Open::Bracket { .. })) {
                    st.truncate(k + 1);
                    if b.get(i + 1) == Some(&b'(') {
                        st.push(Open::Dest(i + 1));
                        i += 2;
                        continue;
                    }
                    st.pop();
                }
                i += 1;
            }
            b'<' => {
                let next = b.get(i + 1).copied().unwrap_or(b' ');
                if (next.is_ascii_alphabetic() || next == b'/' || next == b'!') && !t[i..].contains('>') {
                    cut = Some(i);
                    why = if t[i..].contains([' ', '\t']) { Hidden::None } else { Hidden::Angle };
                    break;
                }
                i += 1;
            }
            b'&' => {
                if t[i + 1..].bytes().all(|x| x.is_ascii_alphanumeric() || x == b'#') {
                    cut = Some(i);
                    why = Hidden::Entity;
                    break;
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    // An image (or its destination) still open is hidden whole.
    let mut closers = String::new();
    let mut end = cut.unwrap_or(t.len());
    for (k, o) in st.iter().enumerate() {
        if let Open::Bracket { image: true, pos } = o {
            if *pos < end {
                end = *pos;
                st.truncate(k);
                cut = Some(end);
                why = Hidden::Image;
                break;
            }
        }
    }
    // A link destination is hidden until its `)`: the link shows its text meanwhile, and no
    // partial URL ever reaches the page.
    if let Some(Open::Dest(p)) = st.last() {
        let p = *p;
        if p < end {
            end = p + 1;
            cut = Some(end);
            why = Hidden::Dest;
        }
    }
    if why == Hidden::None && cut.is_none() && matches!(st.last(), Some(Open::Code(_))) {
        why = Hidden::Span;
    }
    for (k, o) in st.iter().enumerate().rev() {
        match o {
            // the bracket under a destination is closed by the destination's `)`
            Open::Bracket { .. } if matches!(st.get(k + 1), Some(Open::Dest(_))) => {}
            Open::Code(n) => closers.extend(std::iter::repeat_n('`', *n)),
            Open::Math(n, d) => {
                closers.extend(std::iter::repeat_n('}', *d));
                closers.extend(std::iter::repeat_n('$', *n));
            }
            Open::Delim(c, n) => closers.extend(std::iter::repeat_n(*c as char, *n)),
            Open::Bracket { .. } => closers.push_str("]()"),
            Open::Dest(_) => closers.push(')'),
        }
    }
    (cut, closers, why)
}
