//! One parse: pulldown-cmark's events over a (healed) source, turned into blocks by
//! [`Builder`], with the link reference definitions the source holds.

use pulldown_cmark::{BrokenLink, CowStr, Options, Parser};

use crate::builder::{self, Block, Builder, Edge};
use crate::RenderOptions;

fn parser_options() -> Options {
    Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS | Options::ENABLE_MATH
}

/// Link reference definitions: normalized label → (destination, title), first definition
/// kept. A list rather than a hash map (another map type would cost the module about 1 KB
/// compressed), held as sorted runs whose lengths are the binary digits of its length,
/// longest first: adding a definition merges only the runs it joins (amortized O(log n)
/// entries per definition, however many an answer holds), and a lookup searches each run.
pub(crate) type Defs = Vec<(String, (String, String))>;

fn lookup<'a>(defs: &'a Defs, label: &str) -> Option<&'a (String, String)> {
    let mut start = 0;
    for k in (0..usize::BITS).rev() {
        let run = &defs[start..start + (defs.len() & 1 << k)];
        if let Ok(i) = run.binary_search_by(|d| d.0.as_str().cmp(label)) {
            return Some(&run[i].1);
        }
        start += run.len();
    }
    None
}

/// Adds a definition unless its label is defined already; returns how many entries it
/// merged (render work).
pub(crate) fn define(defs: &mut Defs, label: &str, dest: &str, title: &str) -> usize {
    if lookup(defs, label).is_some() {
        return 0;
    }
    defs.push((label.to_string(), (dest.to_string(), title.to_string())));
    // The runs of the old length's trailing one bits and the new entry carry into one run,
    // as long as the new length's lowest one bit: merged pairwise, shortest first.
    let n = defs.len();
    let mut s = 1;
    while n & s == 0 {
        let mut b = defs.split_off(n - s);
        let mut a = defs.split_off(n - 2 * s);
        let mut merged = Vec::new();
        while !a.is_empty() || !b.is_empty() {
            let from_a = b.last().is_none_or(|y| a.last().is_some_and(|x| x.0 > y.0));
            merged.push(if from_a { &mut a } else { &mut b }.pop().unwrap());
        }
        defs.extend(merged.into_iter().rev());
        s *= 2;
    }
    s
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
        let (d, t) = lookup(defs, &normalize_label(&link.reference))?;
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
