//! The pacer tests' model: a `Run` drives a `Pacer` and checks it after every call against
//! `unicode_segmentation` run on the whole text.

use chunkwise::pacer::*;
use unicode_segmentation::UnicodeSegmentation;

/// Options that show every complete cluster at the tick after it arrives, so any cluster the
/// pacer wrongly thinks is complete comes out, and the boundary checks see it.
pub const EAGER: PaceOptions = PaceOptions { cps: 40.0, max_lag_ms: 0.0, drain_ms: 0.0 };

pub fn count(s: &str) -> usize {
    s.graphemes(true).count()
}

/// Byte offsets of the cluster boundaries of `s`, 0 and `s.len()` included.
pub fn boundaries(s: &str) -> Vec<usize> {
    let mut b: Vec<usize> = s.grapheme_indices(true).map(|(i, _)| i).collect();
    b.push(s.len());
    b
}

/// Drives a pacer and checks it after every call against a model built from the whole text.
pub struct Run {
    pub pacer: Pacer,
    pub pushed: String,
    pub shown: String,
    pub ended: bool,
    /// `shown.len()` after each tick that showed something.
    pub cuts: Vec<usize>,
    pub ticks: usize,
}

impl Run {
    pub fn new(options: PaceOptions) -> Run {
        Run {
            pacer: Pacer::new(options),
            pushed: String::new(),
            shown: String::new(),
            ended: false,
            cuts: Vec::new(),
            ticks: 0,
        }
    }

    pub fn push(&mut self, s: &str) {
        self.pacer.push(s);
        self.pushed.push_str(s);
        self.check_pending();
    }

    pub fn end(&mut self) {
        self.pacer.end();
        self.ended = true;
        self.check_pending();
    }

    pub fn tick(&mut self, now: f64) -> usize {
        let before = self.shown.len();
        // Both entry points, so both are covered.
        if self.ticks % 2 == 0 {
            self.pacer.tick_into(now, &mut self.shown);
        } else {
            let piece = self.pacer.tick(now);
            self.shown.push_str(&piece);
        }
        self.ticks += 1;
        assert!(self.pushed.starts_with(self.shown.as_str()), "shown text is not a prefix of the pushed text");
        if self.shown.len() > before {
            self.cuts.push(self.shown.len());
        }
        self.check_pending();
        count(&self.shown[before..])
    }

    /// `pending()` is the cluster count of what is pushed but not shown, minus the held-back
    /// last cluster while the stream is open.
    pub fn check_pending(&self) {
        let rest = &self.pushed[self.shown.len()..];
        let held = usize::from(!self.ended && !rest.is_empty());
        assert_eq!(self.pacer.pending(), count(rest) - held, "pending() for {rest:?} (ended: {})", self.ended);
        assert_eq!(self.pacer.is_drained(), self.ended && rest.is_empty(), "is_drained()");
    }

    /// Skips the rest and checks the whole output against `full`, the complete text.
    pub fn finish(mut self, full: &str) {
        let rest = self.pacer.skip();
        self.shown.push_str(&rest);
        assert_eq!(self.pacer.pending(), 0);
        assert_eq!(self.shown, full, "concatenated output differs from the pushed text");
        let bounds = boundaries(full);
        for &cut in &self.cuts {
            assert!(bounds.binary_search(&cut).is_ok(), "a tick ended inside a cluster at byte {cut} of {full:?}");
        }
    }
}

pub fn char_cuts(s: &str) -> Vec<usize> {
    s.char_indices().map(|(i, _)| i).chain([s.len()]).collect()
}

/// `n` clusters of a CJK character: each is one cluster, so counts are easy to read.
pub fn han(n: usize) -> String {
    "字".repeat(n)
}
