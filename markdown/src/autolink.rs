//! Link destinations and the GFM autolink extension
//! (<https://github.github.com/gfm/#autolinks-extension->), applied to the text nodes the
//! parser gives.

use crate::nodes::{Element, Link, Node};

/// Percent-encodes a link destination the way CommonMark renderers do (commonmark.js
/// `normalizeURI`): characters outside the URL-safe set become `%XX`, existing `%XX` stay.
pub(crate) fn encode_url(url: &str) -> String {
    const SAFE: &[u8] = b"-_.!~*'();/?:@&=+$,#";
    let b = url.as_bytes();
    let mut out = String::with_capacity(url.len());
    for (i, &c) in b.iter().enumerate() {
        let pct = c == b'%' && b.len() > i + 2 && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit();
        if c.is_ascii_alphanumeric() || SAFE.contains(&c) || pct {
            out.push(c as char);
        } else {
            // (by hand: core::fmt's hexadecimal formatting costs the module bytes)
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.push('%');
            out.push(HEX[usize::from(c >> 4)] as char);
            out.push(HEX[usize::from(c & 15)] as char);
        }
    }
    out
}

/// GFM autolink extension (<https://github.github.com/gfm/#autolinks-extension->): `www.`,
/// `http(s)://`, `ftp://`, email, `mailto:` and `xmpp:` links inside text nodes.
pub(crate) fn autolink(children: &mut Vec<Node>, prefix: &str) {
    if !children.iter().any(|c| matches!(c, Node::Text(t) if maybe_link(t))) {
        return;
    }
    let old = std::mem::take(children);
    for node in old {
        let Node::Text(t) = node else {
            children.push(node);
            continue;
        };
        let mut last = 0;
        let mut i = 0;
        let b = t.as_bytes();
        while i < b.len() {
            if !t.is_char_boundary(i) {
                i += 1;
                continue;
            }
            let boundary = i == 0 || matches!(b[i - 1], b' ' | b'\t' | b'\n' | b'*' | b'_' | b'~' | b'(');
            if boundary {
                if let Some((end, href)) = scan_autolink(&t, i) {
                    if i > last {
                        children.push(Node::Text(t[last..i].to_string()));
                    }
                    let mut a = Element::new("a", crate::nodes::class_name(prefix, "a"));
                    a.link = Some(Box::new(Link { href: encode_url(&href), title: String::new(), autolink: true }));
                    a.children.push(Node::Text(t[i..end].to_string()));
                    children.push(Node::Element(a));
                    last = end;
                    i = end;
                    continue;
                }
            }
            i += 1;
        }
        if last < t.len() {
            children.push(Node::Text(t[last..].to_string()));
        }
    }
}

pub(crate) fn maybe_link(t: &str) -> bool {
    maybe_link_joined(&[], t.as_bytes())
}

/// [`maybe_link`] of the bytes `a` followed by `b`, without joining them: `www.`, `://` or
/// `@`, in one pass without a substring searcher (this runs on every append to a paragraph,
/// where setting up a searcher or a joined string costs interpreted wasm more).
pub(crate) fn maybe_link_joined(a: &[u8], b: &[u8]) -> bool {
    // (the bytes before each one are kept shifted into `last`, not looked up again: no
    // closure called per byte, which the interpreter pays as calls)
    let mut last = 0u32;
    for i in 0..a.len() + b.len() {
        let c = if i < a.len() { a[i] } else { b[i - a.len()] };
        match c {
            b'@' => return true,
            b'.' if last & 0xFF_FFFF == u32::from_be_bytes([0, b'w', b'w', b'w']) => return true,
            b'/' if last & 0xFFFF == u32::from_be_bytes([0, 0, b':', b'/']) => return true,
            _ => {}
        }
        last = (last << 8) | u32::from(c);
    }
    false
}

fn scan_autolink(t: &str, i: usize) -> Option<(usize, String)> {
    let rest = &t[i..];
    let lower = |p: &str| rest.len() >= p.len() && rest.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes());
    if lower("www.") {
        let end = url_end(t, i, i)?;
        return Some((end, ["http://", &t[i..end]].concat()));
    }
    for scheme in ["http://", "https://", "ftp://"] {
        if lower(scheme) {
            let end = url_end(t, i, i + scheme.len())?;
            return Some((end, t[i..end].to_string()));
        }
    }
    for scheme in ["mailto:", "xmpp:"] {
        if lower(scheme) {
            let (mut end, _) = email_end(t, i + scheme.len())?;
            if scheme == "xmpp:" && t.as_bytes().get(end) == Some(&b'/') {
                let r = t.as_bytes();
                let mut j = end + 1;
                while j < r.len() && (r[j].is_ascii_alphanumeric() || matches!(r[j], b'@' | b'.')) {
                    j += 1;
                }
                while j > end + 1 && r[j - 1] == b'.' {
                    j -= 1;
                }
                end = j;
            }
            return Some((end, t[i..end].to_string()));
        }
    }
    let (end, _) = email_end(t, i)?;
    Some((end, ["mailto:", &t[i..end]].concat()))
}

/// Email: `[A-Za-z0-9.+_-]+@domain` with a period in the domain, not ending in `-` or `_`.
fn email_end(t: &str, s: usize) -> Option<(usize, ())> {
    let b = t.as_bytes();
    let mut i = s;
    while i < b.len() && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'.' | b'+' | b'_' | b'-')) {
        i += 1;
    }
    if i == s || b.get(i) != Some(&b'@') {
        return None;
    }
    let d = i + 1;
    let mut j = d;
    while j < b.len() && (b[j].is_ascii_alphanumeric() || matches!(b[j], b'.' | b'_' | b'-')) {
        j += 1;
    }
    while j > d && b[j - 1] == b'.' {
        j -= 1;
    }
    let domain = &t[d..j];
    if !domain.contains('.') || domain.ends_with(['-', '_']) {
        return None;
    }
    Some((j, ()))
}

/// End of an extended URL autolink starting at `s` whose domain starts at `d`.
fn url_end(t: &str, s: usize, d: usize) -> Option<usize> {
    let b = t.as_bytes();
    let mut j = d;
    while j < b.len() && (b[j].is_ascii_alphanumeric() || matches!(b[j], b'.' | b'_' | b'-') || b[j] >= 0x80) {
        j += 1;
    }
    let domain = &t[d..j];
    let segs: Vec<&str> = domain.trim_end_matches('.').split('.').collect();
    if segs.iter().any(|s| s.is_empty()) || segs.iter().rev().take(2).any(|s| s.contains('_')) {
        return None;
    }
    if d == s && segs.len() < 2 {
        return None;
    }
    // the rest of the link runs to whitespace or `<`
    while j < b.len() && !matches!(b[j], b' ' | b'\t' | b'\n' | b'\r' | b'<') {
        j += 1;
    }
    // trailing punctuation is not part of the link; unbalanced `)` neither; `&name;` neither
    while let Some(&c) = b.get(j.wrapping_sub(1)) {
        if j <= d {
            break;
        }
        if matches!(c, b'?' | b'!' | b'.' | b',' | b':' | b'*' | b'_' | b'~' | b'\'' | b'"') {
            j -= 1;
        } else if c == b')' {
            let seg = &t[s..j];
            let open = seg.bytes().filter(|&x| x == b'(').count();
            let close = seg.bytes().filter(|&x| x == b')').count();
            if close > open {
                j -= 1;
            } else {
                break;
            }
        } else if c == b';' {
            let seg = &b[s..j - 1];
            let k = seg.iter().rposition(|x| !x.is_ascii_alphanumeric());
            match k {
                Some(k) if seg[k] == b'&' && k + 1 < seg.len() => j = s + k,
                _ => break,
            }
        } else {
            break;
        }
    }
    (j > d).then_some(j)
}

#[cfg(test)]
mod tests {
    use super::maybe_link_joined;

    /// However a text is split into the bytes before and the bytes appended, the check sees
    /// what the joined text holds: `www.`, `://` or `@`.
    #[test]
    fn maybe_link_joined_sees_the_joined_text() {
        let texts = [
            "www.", "xwww.a", "ww.", "w.ww", "http://", "a:/b", ":/", "//", "x@y", "a", "", "wwww.", "w w w.", "ftp:/x",
        ];
        for t in texts {
            let want = t.contains("www.") || t.contains("://") || t.contains('@');
            for at in 0..=t.len() {
                let (a, b) = t.as_bytes().split_at(at);
                assert_eq!(maybe_link_joined(a, b), want, "{t:?} split at {at}");
            }
        }
    }
}
