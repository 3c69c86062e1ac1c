//! One parse: pulldown-cmark's events over a (healed) source, turned into blocks by
//! [`Builder`], with the link reference definitions the source holds.

use std::collections::HashMap;

use pulldown_cmark::{BrokenLink, CowStr, Options, Parser};

use crate::builder::{self, Block, Builder, Edge};
use crate::RenderOptions;

fn parser_options() -> Options {
    Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS | Options::ENABLE_MATH
}

/// Link reference definitions: normalized label → (destination, title).
pub(crate) type Defs = HashMap<String, (String, String)>;

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
        defs.get(&normalize_label(&link.reference)).map(|(d, t)| (CowStr::from(d.clone()), CowStr::from(t.clone())))
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
