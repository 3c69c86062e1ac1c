//! The wasm-bindgen surface of the Markdown renderer (wasm32 only): the module
//! `chunkwise_markdown.wasm`.
//!
//! Text comes in as UTF-16 code units that JS writes into `input` (no `TextEncoder` in a
//! mini program); each patch goes out as JSON text in UTF-16, which JS reads and
//! `JSON.parse`s: one crossing per call, and the node arrays are built by the JS engine's
//! fastest path. The results block: `[out address, 0]` for JSON; for a patch that is one
//! text node's text (see `Patch::text_change`; most appends: a text node the page holds
//! grew), the text alone and `[out address, 1, index, count, start, path length, path…]`
//! (3 instead of 1 when its first page node is a new one, not grown), then at [`MORE`] how
//! many page nodes follow the first (segments after a filled one) and where each starts in
//! the text, from which JS builds the same patch without JSON; for a patch that changes
//! nothing (a marker being typed, or a parse that found the page as it was), `[0, 2, count]`
//! and no text: `{blocks: [], count}`.

use wasm_bindgen::prelude::*;

use chunkwise::utf8::{TextSink, Utf16Buffer};

use crate::renderer::Step;
use crate::{BlockPatch, MarkdownRenderer, Patch, RenderOptions, TextChange};

/// Appends the character that starts with the UTF-16 unit `u`, followed by `next`: a pair
/// of surrogates is one character (and `i` steps past `next`), a lone surrogate U+FFFD.
fn push_pair(out: &mut String, u: u16, next: Option<u16>, i: &mut usize) {
    let c = match (u, next) {
        (0xD800..=0xDBFF, Some(low @ 0xDC00..=0xDFFF)) => {
            *i += 1;
            0x10000 + ((u32::from(u) - 0xD800) << 10) + (u32::from(low) - 0xDC00)
        }
        (0xD800..=0xDFFF, _) => 0xFFFD,
        _ => u32::from(u),
    };
    out.push(char::from_u32(c).unwrap_or('\u{FFFD}'));
}

/// The deepest page path the compact form carries (deeper ones go as JSON).
const MAX_PATH: usize = 10;
/// The most page nodes after the first that the compact form carries (segments that a
/// filled segment is followed by: one, but after a long run of spaces; more go as JSON).
const MAX_MORE: usize = 7;
/// Where in the results block the count of those page nodes is, their starts after it.
/// js/markdown.js reads it at its own `MORE`; tests/js/markdown.test.js checks that the two agree.
const MORE: usize = 6 + MAX_PATH;

/// Writes a text node's change in the compact form (see the module doc): its text to `out`,
/// the rest to `results`; returns the text's length in UTF-16 units (`None`: a deeper path or
/// more page nodes than the form carries).
fn write_text(
    out: &mut Utf16Buffer,
    results: &mut [u32; MORE + 1 + MAX_MORE],
    c: TextChange,
    count: usize,
) -> Option<u32> {
    if c.path.len() > MAX_PATH {
        return None;
    }
    out.clear();
    let mut more = 0;
    if c.seg {
        // (the text starts at a segment's start: its segments are the page's)
        for r in crate::nodes::segments(c.text) {
            if r.start > 0 {
                *results.get_mut(MORE + 1 + more)? = out.len() as u32;
                more += 1;
            }
            out.push_str(&c.text[r]);
        }
    } else {
        out.push_str(c.text);
    }
    let form = if c.grown { 1 } else { 3 };
    let head = [out.as_ptr() as u32, form, c.index as u32, count as u32, c.start as u32, c.path.len() as u32];
    results[..6].copy_from_slice(&head);
    for (r, &p) in results[6..].iter_mut().zip(c.path) {
        *r = p as u32;
    }
    results[MORE] = more as u32;
    Some(out.len() as u32)
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console)]
    fn error(message: &str);
}

#[wasm_bindgen(start)]
fn start() {
    // A panic would be a bug: where it happened reaches the console before the trap. (Its
    // message is left out: formatting it would cost the module a kilobyte of brotli.)
    std::panic::set_hook(Box::new(|info| {
        let mut s = String::from("chunkwise markdown: panicked at ");
        if let Some(at) = info.location() {
            s.push_str(at.file());
            s.push(':');
            crate::nodes::push_number(&mut s, at.line() as usize);
        }
        error(&s);
    }));
}

/// The module's linear memory, for the JS side's views.
#[wasm_bindgen]
pub fn wasm_memory() -> JsValue {
    wasm_bindgen::memory()
}

#[wasm_bindgen]
pub struct RawRenderer {
    renderer: MarkdownRenderer,
    /// Every patch replaces whole blocks (the `{index, nodes}` contract), instead of the
    /// children below a path that changed.
    whole_blocks: bool,
    input: Vec<u16>,
    /// A high surrogate that ended the previous input: its pair comes with the next.
    held: Option<u16>,
    text: String,
    json: String,
    out: Utf16Buffer,
    results: Box<[u32; MORE + 1 + MAX_MORE]>,
}

#[wasm_bindgen]
impl RawRenderer {
    pub fn create(highlight: bool, autolink: bool, whole_blocks: bool) -> RawRenderer {
        let options = RenderOptions { highlight, autolink, ..RenderOptions::default() };
        RawRenderer {
            renderer: MarkdownRenderer::new(options),
            whole_blocks,
            input: Vec::new(),
            held: None,
            text: String::new(),
            json: String::new(),
            out: Utf16Buffer::default(),
            results: Box::new([0; MORE + 1 + MAX_MORE]),
        }
    }

    pub fn results_ptr(&self) -> *const u32 {
        self.results.as_ptr()
    }

    /// Room for `units` UTF-16 code units of text to append.
    pub fn input(&mut self, units: usize) -> *mut u16 {
        if self.input.len() < units {
            self.input.resize(units.next_power_of_two(), 0);
        }
        self.input.as_mut_ptr()
    }

    /// Appends the `units` code units written at `input()`; returns the patch JSON's length.
    pub fn append(&mut self, units: usize) -> u32 {
        // (the JS class throws first: the message is over until `reset`, and a finished
        // renderer's `finish` is the empty patch)
        if self.renderer.is_finished() {
            let nothing = self.renderer.finish();
            return self.write(nothing);
        }
        self.text.clear();
        let mut input = &self.input[..units.min(self.input.len())];
        // (an empty input keeps a held surrogate held)
        let held = if input.is_empty() { None } else { self.held.take() };
        if let Some((&last, rest)) = input.split_last() {
            if (0xD800..0xDC00).contains(&last) {
                self.held = Some(last);
                input = rest;
            }
        }
        // A lone surrogate (JS strings may hold one) becomes U+FFFD.
        let mut i = 0;
        if let Some(high) = held {
            push_pair(&mut self.text, high, input.first().copied(), &mut i);
        }
        // (a loop over the units: the iterator chain it replaces cost the interpreter
        // several calls per character)
        while let Some(&u) = input.get(i) {
            i += 1;
            push_pair(&mut self.text, u, input.get(i).copied(), &mut i);
        }
        match self.renderer.step(&self.text) {
            Step::Patch(patch) => self.write(patch),
            // (most appends: the grown text read from the tree, no patch built)
            Step::Grown => {
                let count = self.renderer.grown.count;
                let compact = self.renderer.text_change().filter(|_| !self.whole_blocks);
                match compact.and_then(|c| write_text(&mut self.out, &mut self.results, c, count)) {
                    Some(len) => len,
                    None => {
                        let patch = self.renderer.grown_patch();
                        self.write(patch)
                    }
                }
            }
        }
    }

    /// The message is complete; returns the patch JSON's length.
    pub fn finish(&mut self) -> u32 {
        let Some(_) = self.held.take() else {
            let last = self.renderer.finish();
            return self.write(last);
        };
        // A lone high surrogate ended the text: it becomes U+FFFD, in an append of its own.
        // The two patches are sent as one, as whole blocks read after `finish`, so the final
        // (unhealed) nodes are what the page ends with whatever each patch touched.
        let mut touched = self.renderer.append("\u{FFFD}");
        let last = self.renderer.finish();
        touched.blocks.extend(last.blocks);
        touched.count = last.count;
        touched.blocks.retain(|b| b.index < touched.count);
        let whole = self.whole(touched);
        self.write_json(whole)
    }

    pub fn reset(&mut self) {
        self.renderer.reset();
        self.held = None;
    }

    fn write(&mut self, patch: Patch) -> u32 {
        if patch.is_empty() {
            self.results[..3].copy_from_slice(&[0, 2, patch.count as u32]);
            return 0;
        }
        let compact = patch.text_change_in(Some(&self.renderer)).filter(|_| !self.whole_blocks);
        if let Some(len) = compact.and_then(|c| write_text(&mut self.out, &mut self.results, c, patch.count)) {
            return len;
        }
        let patch = if self.whole_blocks { self.whole(patch) } else { patch };
        self.write_json(patch)
    }

    fn write_json(&mut self, patch: Patch) -> u32 {
        self.json.clear();
        patch.write_json_in(Some(&self.renderer), &mut self.json);
        self.out.clear();
        self.out.push_str(&self.json);
        self.results[..2].copy_from_slice(&[self.out.as_ptr() as u32, 0]);
        self.out.len() as u32
    }

    /// The same change as whole blocks: one entry per changed block, with all its nodes.
    fn whole(&self, patch: Patch) -> Patch {
        let mut blocks: Vec<BlockPatch> = Vec::new();
        for b in patch.blocks {
            match blocks.iter_mut().find(|w| w.index == b.index) {
                Some(w) => w.links = b.links.or(w.links.take()),
                None => {
                    let nodes = self.renderer.block(b.index).map(<[_]>::to_vec).unwrap_or_default();
                    blocks.push(BlockPatch {
                        index: b.index,
                        path: Vec::new(),
                        start: 0,
                        nodes,
                        links: b.links,
                        page: None,
                        kept: 0,
                        tree: false,
                    });
                }
            }
        }
        Patch { blocks, count: patch.count }
    }
}
