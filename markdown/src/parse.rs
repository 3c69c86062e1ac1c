//! One parse: pulldown-cmark's events over a (healed) source, turned into blocks by
//! [`Builder`], with the link reference definitions the source holds.

use pulldown_cmark::{BrokenLink, CowStr, Options, Parser};

use crate::builder::{self, Block, Builder, Edge};
use crate::RenderOptions;

fn parser_options() -> Options {
    Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS | Options::ENABLE_MATH
}

/// Link reference definitions: normalized label → (destination, title), sorted by label
/// (first definition kept). A sorted list rather than a hash map: another map type would
/// cost the module about 1 KB compressed, and an answer holds a handful of definitions
/// (adding one moves the entries after it).
pub(crate) type Defs = Vec<(String, (String, String))>;

/// Adds a definition unless its label is defined already.
pub(crate) fn define(defs: &mut Defs, label: &str, dest: &str, title: &str) {
    if let Err(i) = defs.binary_search_by(|d| d.0.as_str().cmp(label)) {
        defs.insert(i, (label.to_string(), (dest.to_string(), title.to_string())));
    }
}

fn normalize_label(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ").to_ascii_lowercase()
}

/// What one parse gives.
pub(crate) struct Parsed {
    pub blocks: Vec<Block>,
    pub edge: Edge,
    /// Reference definitions found: (label, end offset, destination, title).
    pub defs: Vec<(String, usize, String, String)>,
    /// List items and table rows of the last block: (path, source offset).
    pub marks: Vec<builder::Mark>,
}

/// Parses `src` (text past `limit` is synthetic) into blocks.
pub(crate) fn parse(src: &str, limit: usize, opts: &RenderOptions, defs: &Defs) -> Parsed {
    let callback = |link: BrokenLink<'_>| {
        let l = normalize_label(&link.reference);
        let (d, t) = &defs[defs.binary_search_by(|d| d.0.cmp(&l)).ok()?].1;
        Some((CowStr::from(d.clone()), CowStr::from(t.clone())))
    };
    let parser = Parser::new_with_broken_link_callback(src, parser_options(), Some(callback));
    let found: Vec<_> = parser
        .reference_definitions()
        .iter()
        .map(|(label, d)| {
            (normalize_label(label), d.span.end, d.dest.to_string(), d.title.as_deref().unwrap_or("").to_string())
        })
        .collect();
    let mut b = Builder::new(opts, src, limit);
    for (ev, range) in parser.into_offset_iter() {
        b.event(ev, range);
    }
    let (blocks, edge, marks) = b.finish();
    Parsed { blocks, edge, defs: found, marks }
}
