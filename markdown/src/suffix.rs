//! The suffix re-parse: the last line of the open paragraph or list item, or the open table
//! cell, from its last checkpoint, parsed alone.

use crate::fast::Fast;
use crate::heal;
use crate::nodes::{node_at, node_at_ref, Node};
use crate::parse::{parse, Parsed};
use crate::patch::{self, Patch};
use crate::renderer::{Cp, MarkdownRenderer};

impl MarkdownRenderer {
    /// Re-parses only the last line from the checkpoint on, as `a ` + the rest (the `a `
    /// keeps it a paragraph line and is dropped from the result), and splices the nodes into
    /// the open paragraph, list item or table cell (whose inline content, up to the `|`
    /// ending it, is a paragraph's). Valid while the text after the checkpoint stays on
    /// one line: nothing after a checkpoint can change what comes before it (see
    /// `Builder::checkpoint`), and mid-line text cannot change the block structure.
    pub(crate) fn suffix(&mut self) -> Option<Patch> {
        let mut cp = self.cp.take()?;
        // (an element's first text starts after whitespace, which a table cell trims)
        if cp.k == 0 {
            cp.pos = self.src.len() - crate::heal::trim_spaces_start(&self.src[cp.pos..]).len();
        }
        // A `|` ends a table cell (GFM 4.10): with only whitespace after it, the cell's
        // content is what comes before it, and the next cell, padding until now, is empty.
        // (In a paragraph or list item a `|` is text, in prose or in a code span.)
        let in_cell = matches!(node_at_ref(self.open.last()?, &cp.path), Some(Node::Element(td)) if td.name == "td");
        let (rest, pipe) = match self.src[cp.pos..].split_once('|') {
            Some((cell, after))
                if in_cell && !cell.ends_with('\\') && after.bytes().all(|b| b == b' ' || b == b'\t') =>
            {
                (cell, true)
            }
            Some(_) if in_cell => return None,
            _ => (&self.src[cp.pos..], false),
        };
        if rest.bytes().any(|b| matches!(b, b'\n' | b'\r')) {
            return None;
        }
        // `[label]: …` may become a link reference definition, which the `a ` prefix hides
        let line = &self.src[cp.line..];
        if line[heal::content_start(line)..].starts_with('[') {
            return None;
        }
        // Healing decides on the whole last line and the one before (for a table header:
        // `cp.pipe`), exactly as for a full parse, but resumes its scan of the line where the
        // last append left it (`heal::Resume`) and copies only the part from the checkpoint:
        // the cost is what was appended, not the line's length.
        let before = if cp.pipe { "|" } else { "" };
        let mut sub = String::with_capacity(rest.len() + 2);
        sub.push_str("a ");
        sub.push_str(rest);
        let off = cp.pos - cp.line;
        let mut ctx = heal::Line { abs: cp.line, resume: &mut self.resume, copy_from: off, scanned: 0 };
        let whole = heal::heal_in(line, before, Some(&mut ctx));
        self.work += ctx.scanned + sub.len();
        // (a complete cell is parsed as it is: only when healing changes nothing on the line)
        if whole.limit < off
            || matches!(whole.hidden, heal::Hidden::Line | heal::Hidden::Markers)
            || (pipe && (whole.text.len() != whole.limit - off || whole.limit <= off + rest.len()))
        {
            return None;
        }
        let healed = heal::Healed {
            text: ["a ", if pipe { rest } else { &whole.text }].concat(),
            limit: if pipe { rest.len() } else { whole.limit - off } + 2,
            fenced: false,
            hidden: whole.hidden,
            in_span: whole.in_span,
            edit_from: 0,
        };
        let Parsed { mut blocks, edge, .. } = parse(&healed.text, healed.limit, &self.opts, &self.defs);
        let [b] = &mut blocks[..] else { return None };
        let [Node::Element(p)] = &mut b.nodes[..] else {
            return None;
        };
        if p.name != "p" {
            return None;
        }
        // (taken from the parse's block, which is dropped: no copy)
        let mut kids = std::mem::take(&mut p.children);
        let shift = match kids.first_mut() {
            Some(Node::Text(t)) if t == "a" || t == "a " => {
                kids.remove(0);
                1
            }
            Some(Node::Text(t)) if t.starts_with("a ") => {
                t.drain(..2);
                0
            }
            _ => return None,
        };
        let index = self.done.len() + self.open.len().checked_sub(1)?;
        let block = self.open.last_mut()?;
        let mut next = cp.path.clone();
        *next.last_mut()? += 1;
        if pipe
            && !matches!(node_at_ref(block, &next), Some(Node::Element(td)) if td.name == "td" && td.children.is_empty())
        {
            return None;
        }
        let Some(Node::Element(e)) = node_at(block, &cp.path) else {
            return None;
        };
        if e.children.len() < cp.k || (pipe && e.name != "td") {
            return None;
        }
        // Text right before the checkpoint and text starting the suffix are one text node.
        let mut k = cp.k;
        let mut merged = false;
        if k > 0 {
            if let (Some(Node::Text(prev)), Some(Node::Text(first))) = (e.children.get(k - 1), kids.first_mut()) {
                first.insert_str(0, prev);
                k -= 1;
                merged = true;
            }
        }
        let mut out = Patch { blocks: Vec::new(), count: index + 1 };
        out.blocks.extend(patch::replace_children(index, &cp.path, e, k, kids));
        if pipe {
            self.fast = Fast::Cell { path: next.clone() };
            self.cp = Some(Cp { pos: self.src.len(), k: 0, path: next, ..cp });
            return Some(out);
        }
        self.fast = self.fast_state(&sub, &edge, &healed);
        // a later checkpoint if the suffix has one, else the same one again
        self.cp = match edge.cp {
            // (after a merge the checkpoint's node holds suffix text: parse in full next time)
            _ if merged => None,
            Some((pos, k)) if pos >= 2 && k >= shift => Some(Cp { pos: cp.pos + pos - 2, k: cp.k + k - shift, ..cp }),
            _ => Some(cp),
        };
        Some(out)
    }
}
