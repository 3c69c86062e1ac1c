//! Restarting the parse inside the open block: at its last list item, or its last table row.
//!
//! A long list or table is one top-level block, so re-parsing the open block on every new
//! line would be quadratic in its length. Instead the parse restarts at the line where the
//! innermost last list item (or the last table body row) starts:
//!
//! - a list item is parsed alone, each line with its parent item's content indentation
//!   removed (CommonMark 5.2: the item's content is the lines minus that indentation), and
//!   its `li` nodes replace the cached ones;
//! - a table row is parsed under a synthetic header of the same width and alignments
//!   (`|a|a|\n|:-|-:|`), and its `tr` nodes replace the cached ones.
//!
//! The result is used only when it has the shape the context implies: one list of the same
//! kind (or one table), no line escaping the parent's indentation, and a looseness the list
//! already has (a tight item joining a loose list is wrapped in paragraphs; an item making
//! a tight list loose re-renders the whole block, once). Anything else falls back to
//! re-parsing the open region.

use crate::builder::{Block, Mark};
use crate::heal;
use crate::nodes::{node_at, node_at_ref, Element, Node};
use crate::parse::{parse, Parsed};
use crate::patch::{self, Patch};
use crate::renderer::{line_before, Cp, MarkdownRenderer};

/// Where the next parse may restart.
#[derive(Debug, Clone)]
pub(crate) struct Restart {
    /// Source offset of the first restarted line.
    start: usize,
    /// Columns of container indentation removed from each line.
    strip: usize,
    /// Synthetic table header (empty for list items).
    header: String,
    /// Path, in the last block, of the element whose children are replaced.
    path: Vec<usize>,
    /// First replaced child.
    index: usize,
    /// The container's tag: `ul`, `ol` or `tbody`.
    kind: &'static str,
}

/// Columns of leading whitespace (tabs to multiples of 4).
fn indent_cols(line: &str) -> usize {
    let mut col = 0;
    for b in line.bytes() {
        match b {
            b' ' => col += 1,
            b'\t' => col += 4 - col % 4,
            _ => break,
        }
    }
    col
}

/// Bytes that make up `cols` columns of leading spaces, or `None` if a tab straddles.
fn strip_bytes(line: &str, cols: usize) -> Option<usize> {
    let mut col = 0;
    for (i, b) in line.bytes().enumerate() {
        if col >= cols {
            return Some(i);
        }
        match b {
            b' ' => col += 1,
            b'\t' => {
                col += 4 - col % 4;
                if col > cols {
                    return None;
                }
            }
            _ => return Some(i),
        }
    }
    Some(line.len())
}

/// The column where a list item's content starts, from its marker at `o`.
fn content_col(src: &str, o: usize) -> Option<usize> {
    let ls = src[..o].rfind('\n').map_or(0, |p| p + 1);
    let pre = &src[ls..o];
    if !pre.bytes().all(|b| b == b' ' || b == b'\t') {
        return None;
    }
    let m = indent_cols(pre);
    let rest = &src[o..];
    let w = match rest.bytes().next()? {
        b'-' | b'*' | b'+' => 1,
        _ => {
            let d = rest.bytes().take_while(u8::is_ascii_digit).count();
            if d == 0 || !matches!(rest.as_bytes().get(d), Some(b'.' | b')')) {
                return None;
            }
            d + 1
        }
    };
    let after = &rest[w..];
    let line = &after[..after.find('\n').unwrap_or(after.len())];
    if line.contains('\t') {
        return None;
    }
    let n = line.bytes().take_while(|&b| b == b' ').count();
    Some(if crate::heal::is_blank(line) || n >= 5 { m + w + 1 } else { m + w + n })
}

/// The restarted text: the synthetic header, then the lines from `r.start` with `r.strip`
/// columns removed; and for each line, (offset in the text, source offset).
fn restart_text(src: &str, r: &Restart) -> Option<(String, Vec<(usize, usize)>)> {
    let mut text = r.header.clone();
    let mut map = Vec::new();
    let mut orig = r.start;
    for (i, line) in src[r.start..].split_inclusive('\n').enumerate() {
        let blank = crate::heal::is_blank(line);
        if i > 0 && !blank && indent_cols(line) < r.strip {
            return None; // the line leaves the parent item
        }
        let cut = if blank { line.len() - usize::from(line.ends_with('\n')) } else { strip_bytes(line, r.strip)? };
        map.push((text.len(), orig + cut));
        text.push_str(&line[cut..]);
        orig += line.len();
    }
    Some((text, map))
}

fn to_source(map: &[(usize, usize)], pos: usize) -> usize {
    let i = map.partition_point(|&(t, _)| t <= pos).saturating_sub(1);
    let (t, o) = map[i];
    o + pos.saturating_sub(t)
}

/// Looseness evidence of list items: `Some(true)` if an item holds a paragraph,
/// `Some(false)` if one holds inline content directly, `None` if neither.
fn looseness(items: &[Node]) -> Option<bool> {
    let mut tight = false;
    for it in items {
        if let Node::Element(li) = it {
            for c in &li.children {
                match c {
                    Node::Element(e) if e.name == "p" => return Some(true),
                    // blocks, and a task box (which a loose item may hold outside a paragraph),
                    // tell nothing
                    Node::Element(e) if is_block(e) || e.class.ends_with("task") || e.class.ends_with("task-done") => {}
                    _ => tight = true,
                }
            }
        }
    }
    tight.then_some(false)
}

fn is_block(e: &Element) -> bool {
    matches!(e.name, "p" | "ul" | "ol" | "pre" | "div" | "table" | "hr" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6")
}

/// Wraps the inline runs of tight items in paragraphs, as a loose list shows them.
fn loosen(items: &mut [Node], p_class: &str) {
    for it in items {
        if let Node::Element(li) = it {
            let old = std::mem::take(&mut li.children);
            let mut run: Vec<Node> = Vec::new();
            for c in old {
                let block = matches!(&c, Node::Element(e) if is_block(e));
                if block {
                    if !run.is_empty() {
                        let mut p = Element::new("p", p_class.to_string());
                        p.children = std::mem::take(&mut run);
                        li.children.push(Node::Element(p));
                    }
                    li.children.push(c);
                } else {
                    run.push(c);
                }
            }
            if !run.is_empty() {
                let mut p = Element::new("p", p_class.to_string());
                p.children = run;
                li.children.push(Node::Element(p));
            }
        }
    }
}

impl MarkdownRenderer {
    /// Chooses the deepest restart point on the last block's rightmost path. `marks` are the
    /// last block's list items and table rows: (path in the block, source offset).
    /// `known`: a list whose items' strip is already known (the one just restarted in).
    /// All restart points on the rightmost path, outermost first.
    pub(crate) fn plan_restart(&self, marks: &[Mark], known: Option<(&[usize], usize)>) -> Vec<Restart> {
        let mut best = Vec::new();
        let Some(block) = self.open.last() else {
            return best;
        };
        let Some(mut node) = block.last() else {
            return best;
        };
        let mut path = vec![block.len() - 1];
        while let Node::Element(e) = node {
            if let Some(r) = self.restart_at(block, &path, e, marks, known) {
                best.push(r);
            }
            let Some(last) = e.children.last() else { break };
            path.push(e.children.len() - 1);
            node = last;
        }
        best
    }

    fn restart_at(
        &self,
        block: &[Node],
        path: &[usize],
        e: &Element,
        marks: &[Mark],
        known: Option<(&[usize], usize)>,
    ) -> Option<Restart> {
        let mark = |p: &[usize]| marks.iter().find(|(mp, _)| mp == p).map(|m| m.1);
        let (&index, parent_path) = path.split_last()?;
        let start = mark(path)?;
        let line = self.src[..start].rfind('\n').map_or(0, |p| p + 1);
        if e.name == "li" {
            let Some(Node::Element(list)) = node_at_ref(block, parent_path) else {
                return None;
            };
            // the list's parent: the block itself (strip nothing) or a list item
            let strip = if parent_path.len() == 1 {
                0
            } else if let Some((_, ks)) = known.filter(|(kp, _)| *kp == parent_path) {
                ks
            } else {
                let gp = &parent_path[..parent_path.len() - 1];
                match node_at_ref(block, gp) {
                    Some(Node::Element(li)) if li.name == "li" => content_col(&self.src, mark(gp)?)?,
                    _ => return None,
                }
            };
            if indent_cols(&self.src[line..start]) < strip {
                return None;
            }
            return Some(Restart {
                start: line,
                strip,
                header: String::new(),
                path: parent_path.to_vec(),
                index,
                kind: list.name,
            });
        }
        if e.name == "tr" && path.len() == 4 {
            // a top-level table: div > table > tbody > tr
            let Some(Node::Element(table)) = node_at_ref(block, &path[..2]) else {
                return None;
            };
            let Some(Node::Element(thead)) = table.children.first() else {
                return None;
            };
            let Some(Node::Element(head_row)) = thead.children.first() else {
                return None;
            };
            let mut header = String::from("|");
            let mut delim = String::from("|");
            for c in &head_row.children {
                let Node::Element(th) = c else { return None };
                header.push_str("a|");
                delim.push_str(match th.style.as_str() {
                    "text-align:left" => ":-|",
                    "text-align:center" => ":-:|",
                    "text-align:right" => "-:|",
                    _ => "-|",
                });
            }
            header.push('\n');
            header.push_str(&delim);
            header.push('\n');
            return Some(Restart { start: line, strip: 0, header, path: parent_path.to_vec(), index, kind: "tbody" });
        }
        None
    }

    /// Re-parses from the innermost restart point whose result fits the context, trying
    /// outer ones when it does not.
    pub(crate) fn restart(&mut self) -> Option<Patch> {
        while let Some(r) = self.restart.pop() {
            if let Some(p) = self.restart_from(r) {
                return Some(p);
            }
        }
        None
    }

    fn restart_from(&mut self, r: Restart) -> Option<Patch> {
        let (text, map) = restart_text(&self.src, &r)?;
        self.work += 2 * text.len();
        let before = if r.header.is_empty() { line_before(&self.src, r.start) } else { "|" };
        let healed = heal::heal(&text, before);
        let Parsed { mut blocks, edge, marks, .. } = parse(&healed.text, healed.limit, &self.opts, &self.defs);
        let [Block { nodes, .. }] = &mut blocks[..] else {
            return None;
        };
        let [Node::Element(root)] = &mut nodes[..] else {
            return None;
        };
        // (the parse's path prefix of the replaced children, the new children: taken from the
        // parse's block, which is dropped, with no copy)
        let (prefix, mut kids): (Vec<usize>, Vec<Node>) = if r.kind == "tbody" {
            let Some(Node::Element(table)) = root.children.first_mut() else {
                return None;
            };
            match table.children.get_mut(1) {
                Some(Node::Element(tbody)) => (vec![0, 0, 1], std::mem::take(&mut tbody.children)),
                _ => (vec![0, 0, 1], Vec::new()),
            }
        } else {
            if root.name != r.kind || root.children.is_empty() {
                return None;
            }
            (vec![0], std::mem::take(&mut root.children))
        };
        let index = self.done.len() + self.open.len().checked_sub(1)?;
        let p_class = crate::nodes::class_name(&self.opts.class_prefix, "p");
        let block = self.open.last_mut()?;
        let Some(Node::Element(container)) = node_at(block, &r.path) else {
            return None;
        };
        if container.name != r.kind || container.children.len() < r.index {
            return None;
        }
        if r.kind != "tbody" {
            let before = looseness(&container.children[..r.index]);
            match (before, looseness(&kids)) {
                (_, None) => {}
                (Some(a), Some(b)) if a == b => {}
                (Some(true), Some(false)) => loosen(&mut kids, &p_class),
                (None, Some(_)) if r.index == 0 => {}
                _ => return None,
            }
        }
        let n_new = kids.len();
        let mut out = Patch { blocks: Vec::new(), count: index + 1 };
        out.blocks.extend(patch::replace_children(index, &r.path, container, r.index, kids));
        // Marks of the restarted part, moved to block paths and source offsets.
        let marks: Vec<Mark> = marks
            .into_iter()
            .filter(|(p, _)| p.len() > prefix.len() && p[..prefix.len()] == prefix[..] && p[prefix.len()] < n_new)
            .map(|(p, o)| {
                let mut bp = r.path.clone();
                bp.push(r.index + p[prefix.len()]);
                bp.extend_from_slice(&p[prefix.len() + 1..]);
                (bp, to_source(&map, o))
            })
            .collect();
        let header = r.header.len();
        self.fast = self.fast_state(&text, &edge, &healed);
        self.cp = match edge.cp {
            Some((pos, k)) if pos >= header => crate::renderer::leaf_path(self.open.last()?)
                .and_then(|path| Cp::new(&self.src, to_source(&map, pos), k, path)),
            _ => None,
        };
        let deeper = self.plan_restart(&marks, Some((&r.path, r.strip)));
        self.restart.extend(deeper);
        Some(out)
    }
}
