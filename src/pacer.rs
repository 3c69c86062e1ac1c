//! Typewriter pacer: reveals streamed text at a steady, readable speed.
//!
//! An LLM stream arrives in bursts (a network chunk, then nothing for 300 ms, then three
//! chunks at once). Showing each chunk as it lands looks jerky; the pacer queues the text and
//! hands it back a few grapheme clusters per animation frame instead.
//!
//! # Guarantees
//!
//! - **Nothing is lost or reordered.** The concatenation of everything returned by
//!   [`Pacer::tick_into`] / [`Pacer::tick`] plus [`Pacer::skip_into`] / [`Pacer::skip`] is
//!   exactly the concatenation of everything given to [`Pacer::push`], whatever the split of
//!   the pushes and whatever the tick times.
//! - **A tick never splits a grapheme cluster** (UAX #29 extended clusters: ZWJ emoji
//!   families, flags, combining marks, Hangul jamo, CRLF, Indic conjuncts), even when a
//!   cluster's pieces arrive in different pushes. The last cluster of the queue is held back
//!   until the text after it arrives (only then is its end known) or until [`Pacer::end`].
//!   A cluster can only be cut by the caller going against the stream's end: a push that
//!   continues a cluster already flushed by [`Pacer::skip_into`] before `end()`, or already
//!   shown after `end()`. Even then the concatenation stays exact.
//! - **Latency is bounded.** A cluster is shown at most `max_lag_ms` after the first tick
//!   that could show it, and after `end()` everything is shown within `drain_ms` of the
//!   first tick after the call (each up to one tick late: the pacer only acts in ticks).
//! - **No panics, no NaN, no bursts from clock trouble.** A clock that stalls or jumps
//!   backwards shows nothing extra; a non-finite `now_ms` counts as "no time passed". The
//!   time between two ticks is only spent on what was queued at the first of them, so a long
//!   pause (app in background, host loop stopped while idle) cannot make a burst of the text
//!   that arrived during it.
//!
//! # Algorithm
//!
//! Pushed text is appended to one `String` and nothing else: a push does not look at the
//! text. Clusters are found lazily, by the tick that shows them: it walks from the end of
//! the last cluster shown only as far as it shows, so each byte a tick shows is segmented
//! once, and text shown by [`Pacer::skip_into`] is not segmented at all. The deadlines are
//! kept in bytes, which a push knows without a walk; [`Pacer::pending`] counts on demand and
//! keeps its count, so each byte is counted at most once more. A tick that shows text on
//! the deadlines' byte credit (which sets the pace of every backlog) does not even visit each
//! cluster it shows: the character boundary at the end of its credit is a cluster boundary
//! whenever the characters on both sides of it are plain, and the UTF-16 length of the text
//! before it is counted from its lead bytes, eight bytes a step; it walks cluster by cluster
//! only where that boundary is not between two plain characters.
//!
//! Each tick earns `cps × elapsed` clusters of credit and shows `floor(credit)` clusters;
//! the fraction is kept, so 60 Hz ticks at 40 cps show exactly 40 clusters a second on
//! average. The deadlines raise the pace when needed: the text first seen by a tick is due
//! `max_lag_ms` later, and after `end()` everything is due `drain_ms` after the first tick.
//! They earn a second credit, in bytes, at the lowest constant byte rate that meets every
//! deadline (so a backlog of `B` bytes is shown at about `B / max_lag_s` bytes a second); a
//! tick shows whole clusters while either credit lasts, and a tick at or past a deadline
//! shows everything due.
//!
//! # Defaults
//!
//! `cps = 40`, `max_lag_ms = 1500`, `drain_ms = 1000`, chosen to look like ChatGPT on a phone:
//!
//! - **40 clusters/s** is 2/3 of a cluster per 60 Hz frame, so each frame adds zero or one
//!   character: the smoothest motion a typewriter can have. For Chinese it is about the pace
//!   the models stream at (20–60 characters/s) and several times reading speed, so the pacer
//!   smooths without slowing the answer down; for English (~4 characters a token) the stream
//!   is faster and the lag rule sets the pace.
//! - **1.5 s of lag** absorbs the stalls of a mobile network (chunks often arrive 0.3–1 s
//!   apart) without visible stops, yet a fast stream is never more than 1.5 s behind.
//! - **1 s to drain** after the stream ends: the answer finishes promptly, so the UI that
//!   appears when it is done (copy button, follow-up chips) is not held back, while the tail
//!   of a long English answer still scrolls rather than jumping in.
//!
//! # Memory
//!
//! The queue is one `String` whose shown prefix is dropped once it is at least 4 KiB and at
//! least half the buffer (amortized O(1) per byte), so the buffer holds at most
//! `2 × unshown bytes + 4 KiB`; its allocation is the high-water mark of that. The deadline
//! bookkeeping is a fixed array of 20 entries, each kept twice. Nothing is allocated per
//! cluster or per tick (apart from the `String` that the convenience methods [`Pacer::tick`]
//! and [`Pacer::skip`] return).
//!
//! # Example
//!
//! ```
//! use chunkwise::pacer::{PaceOptions, Pacer};
//!
//! let mut pacer = Pacer::new(PaceOptions::default());
//! let mut shown = String::new();
//! pacer.push("你好，世界 🇨");
//! pacer.push("🇳"); // the flag's second half: the pacer never showed half a flag
//! pacer.end();
//! let mut now_ms = 0.0;
//! while !pacer.is_drained() {
//!     pacer.tick_into(now_ms, &mut shown); // call once per animation frame
//!     now_ms += 16.0;
//! }
//! assert_eq!(shown, "你好，世界 🇨🇳");
//! ```

use std::cell::Cell;

use unicode_segmentation::GraphemeCursor;

mod clusters;

use clusters::{
    char_start_before, fresh_cursor, last_of_two_plain, lead_len, next_boundary, plain_len_at, plain_run, utf16_len,
};

/// Pacing options. [`Pacer::new`] sanitizes them; see the [module docs](self) for why the
/// defaults are what they are.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PaceOptions {
    /// Base speed in grapheme clusters per second. Non-finite or `<= 0` means the default.
    pub cps: f64,
    /// Longest a cluster may wait once a tick could show it; the pacer speeds up to keep to
    /// it. NaN means the default; negative means 0 (show at once); capped at 1e12 (never).
    pub max_lag_ms: f64,
    /// After [`Pacer::end`], everything is shown within this long of the next tick. Same
    /// sanitizing as `max_lag_ms`.
    pub drain_ms: f64,
}

impl Default for PaceOptions {
    fn default() -> PaceOptions {
        PaceOptions { cps: 40.0, max_lag_ms: 1500.0, drain_ms: 1000.0 }
    }
}

impl PaceOptions {
    fn sanitized(self) -> PaceOptions {
        let d = PaceOptions::default();
        let time = |v: f64, default: f64| if v.is_nan() { default } else { v.clamp(0.0, MAX_TIME_MS) };
        PaceOptions {
            cps: if self.cps.is_finite() && self.cps > 0.0 { self.cps } else { d.cps },
            max_lag_ms: time(self.max_lag_ms, d.max_lag_ms),
            drain_ms: time(self.drain_ms, d.drain_ms),
        }
    }
}

/// 1e12 ms is 31 years: "never", while keeping every sum of times finite.
const MAX_TIME_MS: f64 = 1.0e12;
/// Longer clock steps count as this long: a step this long already passes every deadline
/// that can be set, so a longer one could change nothing, and the clock stays finite even
/// when `now_ms` jumps from `f64::MIN` to `f64::MAX`.
const MAX_STEP_MS: f64 = MAX_TIME_MS;
/// The shown prefix is dropped from the buffer once it is at least this long (and at least
/// half the buffer): smaller drains would copy more often for little memory.
const COMPACT_MIN: usize = 4096;
/// How many bytes before the end of the queue `complete_end` looks for a boundary to segment
/// forward from: a bound on that look-back's cost, not a condition of the answer.
const LAST_CLUSTER_LOOKBACK: usize = 64;
/// A byte-credit walk shorter than this walks: a [`Pacer::jump`] costs a few calls.
const JUMP_MIN: usize = 16;
/// `reset` keeps at most this much buffer capacity for the next answer.
const KEEP_CAPACITY: usize = 16 * 1024;
/// Deadline slots. Arrivals within `max_lag_ms / DUE_BUCKETS` of the previous entry share
/// it, and entries are gone once their deadline passes, so at most `DUE_BUCKETS + 1` are
/// live for a lag whose bucket is non-zero (a denormal lag's is zero); when the ring is full,
/// new text shares the newest entry.
const DUE_SLOTS: usize = 20;
const DUE_BUCKETS: f64 = 16.0;

/// The text up to byte `end` of the stream (counted since `new`/`reset`) was first seen by
/// the tick at pacer time `born` (kept for the newest deadline only), so it is due at
/// `at = born + max_lag_ms` (added once, not by every tick that reads it).
#[derive(Debug, Clone, Copy, Default)]
struct Due {
    end: u64,
    at: f64,
}

/// Paces streamed text; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Pacer {
    options: PaceOptions,
    /// Queued text; `buf[..head]` is shown (kept until compaction). `head` is always a
    /// cluster boundary found with full context.
    buf: String,
    head: usize,
    /// Bytes dropped from the front of `buf` since `new`/`reset`: byte `i` of `buf` is byte
    /// `dropped + i` of the stream, the unit of the deadlines.
    dropped: u64,
    ended: bool,
    /// Last finite `now_ms` seen; `None` until the first tick.
    last_now: Option<f64>,
    /// Pacer time in ms: the sum of forward clock steps, so a clock that jumps backwards
    /// costs one tick of progress instead of stalling until it catches up again.
    clock: f64,
    /// Clusters earned at `cps` but not yet shown (fractional).
    credit: f64,
    /// Bytes earned at the deadlines' rate but not yet shown (fractional).
    byte_credit: f64,
    /// End of the queue (a stream byte) at the previous tick: time elapsed since then may
    /// only be spent on the text before it (and one cluster more).
    left_end: u64,
    /// Pacer time by which everything must be shown, fixed by the first tick after `end`.
    drain_due: Option<f64>,
    /// FIFO ring of lag deadlines, `end` increasing. Each is kept twice, at its slot and
    /// `DUE_SLOTS` after it, so the live ones are always one slice
    /// (`dues[due_first..due_first + due_len]`) that a tick reads without wrapping an index.
    dues: [Due; 2 * DUE_SLOTS],
    due_first: usize,
    due_len: usize,
    /// `born` of the newest deadline.
    last_born: f64,
    /// `pending`'s count kept between calls: the complete clusters from `head` to stream
    /// byte `counted_to` (ignored when `counted_to` is before `head`).
    counted_to: Cell<u64>,
    counted: Cell<u64>,
    /// UTF-16 code units of the clusters walked since `tick_utf16` set it to 0.
    walked: Cell<usize>,
    /// `complete_end`'s segmenter inside the held-back cluster, with the stream byte that
    /// cluster starts at.
    tail: (u64, GraphemeCursor),
    /// The stream byte the held-back cluster started at in `complete_end`'s previous answer
    /// (its next search starts there; the segmenter above is reused when it is at home there).
    resume: u64,
    /// Tests: the walks take none of the shortcuts that stop them early by the lead byte.
    #[cfg(test)]
    reference: bool,
}

/// `a.max(b)` for numbers that are never NaN: `f64::max`'s NaN rule makes it a call of `fmax`
/// in wasm32, which an interpreter pays for several times a tick.
#[inline(always)]
fn larger(a: f64, b: f64) -> f64 {
    if b > a {
        b
    } else {
        a
    }
}

/// How far a [`Pacer::walk`] may go.
#[derive(Clone, Copy)]
struct Bounds {
    /// At most this many clusters.
    max: u64,
    /// None ending past this byte of `buf`.
    end: usize,
    /// None starting at or past this byte of `buf`, but for one if `one_more` that starts
    /// before `complete`.
    start: usize,
    /// Where the held-back cluster starts: every cluster before it is complete. (`usize::MAX`
    /// for a walk with no `end` to reach, which does not need to know.)
    complete: usize,
}

/// Why a walk stopped.
#[derive(Clone, Copy, PartialEq)]
enum Stop {
    /// `max` or `end` reached: the credit is spent.
    Spent,
    /// No more text it may show.
    Starved,
}

impl Pacer {
    /// A pacer with sanitized `options`, nothing queued, clock not started.
    pub fn new(options: PaceOptions) -> Pacer {
        Pacer {
            options: options.sanitized(),
            buf: String::new(),
            head: 0,
            dropped: 0,
            ended: false,
            last_now: None,
            clock: 0.0,
            // One cluster of credit up front: the first tick shows the first cluster at once
            // instead of waiting 1/cps for the clock to earn it.
            credit: 1.0,
            byte_credit: 0.0,
            left_end: 0,
            drain_due: None,
            dues: [Due::default(); 2 * DUE_SLOTS],
            due_first: 0,
            due_len: 0,
            last_born: 0.0,
            counted_to: Cell::new(0),
            counted: Cell::new(0),
            walked: Cell::new(0),
            tail: (u64::MAX, fresh_cursor()),
            resume: u64::MAX,
            #[cfg(test)]
            reference: false,
        }
    }

    /// The options in use, after sanitizing.
    pub fn options(&self) -> PaceOptions {
        self.options
    }

    /// Queue decoded text to be revealed. O(1) but for the copy: the text is looked at by
    /// the tick that shows it.
    ///
    /// Text pushed after [`end`](Self::end) is still shown, on the same drain deadline (at
    /// once if it has passed); `end()` stays in force until [`reset`](Self::reset).
    pub fn push(&mut self, text: &str) {
        self.buf.push_str(text);
    }

    /// [`push`](Self::push) of bytes the caller has already found to be UTF-8 (decoded by a
    /// decoder it trusts to reject everything else), so they are not checked again here.
    ///
    /// # Safety
    ///
    /// `bytes` must be valid UTF-8, or be taken back by [`unpush`](Self::unpush) before any
    /// other call of this pacer.
    pub unsafe fn push_unchecked(&mut self, bytes: &[u8]) {
        // SAFETY: the caller's promise above.
        unsafe { self.buf.as_mut_vec() }.extend_from_slice(bytes);
    }

    /// How many bytes were queued since `new`/`reset`, shown or not: a mark for
    /// [`unpush`](Self::unpush).
    pub fn queued_bytes(&self) -> u64 {
        self.dropped + self.buf.len() as u64
    }

    /// Takes back what was pushed since [`queued_bytes`](Self::queued_bytes) answered `mark`,
    /// when no tick, skip or count came in between (only pushes and this).
    pub fn unpush(&mut self, mark: u64) {
        let keep = usize::try_from(mark.saturating_sub(self.dropped)).unwrap_or(usize::MAX);
        debug_assert!(keep >= self.head, "unpush to a mark before text already shown");
        if keep >= self.head {
            // SAFETY: `buf[..keep]` is what was queued by the time of the mark, a whole `str`;
            // bytes past it may be ones `push_unchecked` was given and the caller rejected.
            unsafe { self.buf.as_mut_vec() }.truncate(keep);
        }
    }

    /// The stream has ended: everything queued (including the held-back last cluster) may be
    /// shown, and it is all shown within `drain_ms` counted from the first tick after this
    /// call. Calling it again changes nothing.
    pub fn end(&mut self) {
        self.ended = true;
    }

    /// Appends to `out` the clusters to show at time `now_ms` (any monotonic clock in ms, such
    /// as `Date.now()`). Call it once per animation frame.
    ///
    /// The first tick starts the clock. It shows one cluster at once if one is ready, and so
    /// does the first tick after an idle spell, so an answer starts without waiting `1/cps`.
    pub fn tick_into(&mut self, now_ms: f64, out: &mut String) {
        self.tick_to(now_ms, Some(out));
    }

    /// [`tick_into`](Self::tick_into) for a caller that holds the queued text itself, as
    /// UTF-16 (a JS string decoded by the engine from the same bytes): returns how many
    /// UTF-16 code units the clusters to show take, from the start of what is not shown yet.
    /// The caller slices them off its string; no text is copied or transcoded here.
    pub fn tick_utf16(&mut self, now_ms: f64) -> usize {
        self.tick_to(now_ms, None)
    }

    /// [`tick_into`](Self::tick_into) with `out`, [`tick_utf16`](Self::tick_utf16) without:
    /// returns the UTF-16 length of the text to show, and appends that text to `out` if
    /// given. (One function for both, so that a binding that offers both calls it once.)
    pub fn tick_to(&mut self, now_ms: f64, out: Option<&mut String>) -> usize {
        // Counted by the walks as they find the clusters, so the text is read once.
        self.walked.set(0);
        let end = self.due_end(now_ms);
        if let Some(out) = out {
            // SAFETY: `head` and `end` are cluster boundaries found in `buf` (so character
            // boundaries) with `head <= end <= buf.len()`; indexing would check that again in
            // a call, on every tick that shows text.
            debug_assert!(self.head <= end && self.buf.is_char_boundary(end));
            out.push_str(unsafe { self.buf.get_unchecked(self.head..end) });
        }
        self.emit(end);
        self.walked.get()
    }

    /// The tick's work up to showing: moves the clock, the credits and the deadlines, and
    /// returns where in `buf` the clusters to show end (`head` if none); `emit` shows them.
    fn due_end(&mut self, now_ms: f64) -> usize {
        let step = self.advance_clock(now_ms);
        if self.ended && self.drain_due.is_none() {
            self.drain_due = Some(self.clock + self.options.drain_ms);
        }
        let complete_at = self.complete_end();
        let complete = self.dropped + complete_at as u64;
        self.note_arrivals(complete);
        let (byte_rate, forced) = self.deadlines(self.clock - step);
        if step > 0.0 {
            self.credit += self.options.cps / 1000.0 * step;
            self.byte_credit += byte_rate * step;
        }
        let start = self.head;
        let len = self.buf.len();
        // What is due now, then what the credits pay for. Time since the previous tick can
        // only have been spent on what was queued then (the pacer cannot know when in the
        // interval newer text arrived), plus the one cluster an idle spell's credit may show
        // at once: this is what keeps a long background pause or an idle stream from
        // bursting afterwards.
        let forced = usize::try_from(forced.saturating_sub(self.dropped)).unwrap_or(usize::MAX);
        let (mut at, mut n) = (start, 0);
        if forced > start {
            (at, n, _) = self.walk(
                start,
                Bounds { max: u64::MAX, end: usize::MAX, start: forced, complete: complete_at },
                false,
            );
        }
        let queued_then = usize::try_from(self.left_end.saturating_sub(self.dropped)).unwrap_or(usize::MAX).min(len);
        let mut one_more = true;
        // `as` truncates (credit is never negative) and saturates.
        let max = (self.credit as u64).saturating_sub(n);
        // A credit under one cluster (at the default 40 cps and 60 Hz, one tick in three)
        // shows nothing: no walk to learn that.
        let (end, more, mut stop) = if max == 0 {
            (at, 0, Stop::Spent)
        } else {
            self.walk(at, Bounds { max, end: usize::MAX, start: queued_then, complete: complete_at }, one_more)
        };
        if more > 0 && end > queued_then {
            one_more = false;
        }
        (at, n) = (end, n + more);
        if stop == Stop::Spent && self.byte_credit >= 1.0 {
            // `as` truncates and saturates.
            let end_at = start.saturating_add(self.byte_credit as usize);
            // A complete cluster is at least as long as its first character, which the lead
            // byte tells: when that alone is past the byte credit (a Chinese answer earns
            // about a character in two ticks), the walk would stop here, Spent, so it is not
            // called (in an interpreted engine its calls cost more than the whole check).
            if at >= queued_then
                || at >= complete_at
                || at + lead_len(self.buf.as_bytes(), at) <= end_at
                || self.no_shortcuts()
            {
                let from = self.jump(at, end_at.min(queued_then).min(complete_at));
                let (end, more, s) = self.walk(
                    from,
                    Bounds { max: u64::MAX, end: end_at, start: queued_then, complete: complete_at },
                    one_more,
                );
                // A jump passed at least one cluster, and here that is all the count is used
                // for: this walk comes after the cluster credit was spent (credit < n + 1), so
                // any cluster more leaves no credit, and the jump left the pending count
                // unused. (Counting them would be walking them.)
                (at, n, stop) = (end, n + more + u64::from(from > at), s);
            }
        }
        // Credit beyond the backlog is not kept (no bursts later), except one cluster's
        // worth, so the first cluster after an idle spell shows at once.
        self.credit = (self.credit - n as f64).clamp(0.0, 1.0);
        self.byte_credit =
            if stop == Stop::Starved { 0.0 } else { larger(self.byte_credit - (at - start) as f64, 0.0) };
        self.left_end = complete;
        let shown = self.dropped + at as u64;
        while self.due_len > 0 && self.dues[self.due_first].end <= shown {
            self.due_first = (self.due_first + 1) % DUE_SLOTS;
            self.due_len -= 1;
        }
        if n > 0 {
            let counted = self.counted.get();
            if self.counted_to.get() >= shown && counted >= n {
                self.counted.set(counted - n);
            } else {
                self.counted_to.set(0);
            }
        }
        at
    }

    /// [`tick_into`](Self::tick_into) returning a new `String`.
    pub fn tick(&mut self, now_ms: f64) -> String {
        let mut out = String::new();
        self.tick_into(now_ms, &mut out);
        out
    }

    /// Number of grapheme clusters queued but not yet shown, not counting the held-back last
    /// cluster before [`end`](Self::end). Counted on demand from where the previous call
    /// stopped, so calling it once per tick costs O(1) per byte overall.
    pub fn pending(&self) -> usize {
        let shown = self.dropped + self.head as u64;
        let (mut to, mut counted) = (self.counted_to.get(), self.counted.get());
        if to < shown {
            (to, counted) = (shown, 0);
        }
        let from = usize::try_from(to - self.dropped).unwrap_or(usize::MAX);
        let (end, more, _) =
            self.walk(from, Bounds { max: u64::MAX, end: usize::MAX, start: usize::MAX, complete: usize::MAX }, false);
        self.counted_to.set(self.dropped + end as u64);
        self.counted.set(counted + more);
        usize::try_from(counted + more).unwrap_or(usize::MAX)
    }

    /// Appends everything queued to `out` at once, including the held-back cluster; the pacer
    /// is then empty. Before [`end`](Self::end) a later push may continue that cluster, which
    /// is then shown in two pieces (the concatenation is still exact).
    pub fn skip_into(&mut self, out: &mut String) {
        out.push_str(&self.buf[self.head..]);
        self.skip_all();
    }

    /// [`skip_into`](Self::skip_into) for a caller that holds the queued text itself (see
    /// [`tick_utf16`](Self::tick_utf16)): everything queued is shown, as one piece.
    pub fn skip_all(&mut self) {
        self.dropped += self.buf.len() as u64;
        self.buf.clear();
        self.head = 0;
        self.due_len = 0;
        self.left_end = self.dropped;
        self.counted_to.set(self.dropped);
        self.counted.set(0);
    }

    /// [`skip_into`](Self::skip_into) returning a new `String`.
    pub fn skip(&mut self) -> String {
        let mut out = String::new();
        self.skip_into(&mut out);
        out
    }

    /// Back to the state right after [`new`](Self::new), with the same options. Keeps up to
    /// 16 KiB of buffer for the next answer.
    pub fn reset(&mut self) {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        buf.shrink_to(KEEP_CAPACITY);
        *self = Pacer { buf, ..Pacer::new(self.options) };
    }

    /// Whether [`end`](Self::end) was called and everything has been shown.
    pub fn is_drained(&self) -> bool {
        self.ended && self.head == self.buf.len()
    }

    /// Moves the pacer clock; returns the step in ms (0 on the first tick, on a clock that
    /// stalls or goes backwards, and on a non-finite `now_ms`).
    fn advance_clock(&mut self, now_ms: f64) -> f64 {
        if !now_ms.is_finite() {
            return 0.0;
        }
        let step = match self.last_now {
            Some(last) if now_ms > last => (now_ms - last).min(MAX_STEP_MS),
            _ => 0.0,
        };
        self.last_now = Some(now_ms);
        self.clock += step;
        step
    }

    /// Stamps the clusters completed since the previous tick (up to stream byte `queued`)
    /// with this tick's time.
    fn note_arrivals(&mut self, queued: u64) {
        let recorded = if self.due_len > 0 { self.dues[self.last_due()].end } else { self.dropped + self.head as u64 };
        if queued <= recorded {
            return;
        }
        let bucket = self.options.max_lag_ms / DUE_BUCKETS;
        if self.due_len > 0 {
            let last = self.last_due();
            // Sharing the previous entry gives the new text an earlier deadline, never a later
            // one, so the lag bound still holds.
            if self.clock - self.last_born < bucket || self.due_len == DUE_SLOTS {
                self.dues[last].end = queued;
                self.dues[last + DUE_SLOTS].end = queued;
                return;
            }
        }
        let slot = (self.due_first + self.due_len) % DUE_SLOTS;
        let due = Due { end: queued, at: self.clock + self.options.max_lag_ms };
        self.last_born = self.clock;
        (self.dues[slot], self.dues[slot + DUE_SLOTS]) = (due, due);
        self.due_len += 1;
    }

    fn last_due(&self) -> usize {
        (self.due_first + self.due_len - 1) % DUE_SLOTS
    }

    /// The live deadlines, read in one pass per tick:
    /// - the byte rate, in bytes per ms over the step that began at pacer time `since`: the
    ///   lowest constant rate that, from `since` on, meets every deadline not yet passed.
    ///   Measuring from the start of the step rather than from now keeps a coarse tick from
    ///   draining early: over steps of any size, a backlog goes out evenly until its deadline;
    /// - the stream byte before which every cluster must be shown now because its deadline
    ///   has come (`u64::MAX` after the drain deadline: everything, held-back cluster too).
    fn deadlines(&self, since: f64) -> (f64, u64) {
        let shown = self.dropped + self.head as u64;
        let live = &self.dues[self.due_first..self.due_first + self.due_len];
        // The deadlines that have come are the first ones: `at` increases along the ring
        // (each is its birth on the pacer clock, which never goes back, plus the same lag),
        // and so does `end`. Passing them first leaves the rate's loop, over up to 17 live
        // deadlines a tick, without a test per deadline.
        let mut forced = 0;
        let mut future = live;
        while let [due, rest @ ..] = future {
            if due.at > self.clock {
                break;
            }
            (forced, future) = (due.end, rest);
        }
        let mut rate: f64 = 0.0;
        for due in future {
            // Every live deadline's text is unshown: a tick drops the ones it has shown.
            rate = larger(rate, (due.end - shown) as f64 / (due.at - since));
        }
        match self.drain_due {
            Some(due_at) if due_at > self.clock => {
                let queued = self.dropped + self.buf.len() as u64;
                rate = larger(rate, (queued - shown) as f64 / (due_at - since));
            }
            Some(_) => forced = u64::MAX,
            None => {}
        }
        (rate, forced)
    }

    /// The end of the cluster that starts at `at` in `buf`, if it is complete: the text after
    /// it has arrived (a boundary needs only the character after it, so one found now is
    /// final), or the stream has ended.
    ///
    /// `at` is a boundary found with full context, so segmenting from it on its own finds
    /// the same boundaries as segmenting the whole text: no rule looks back across a
    /// boundary (the rules with long look-behind, GB11 emoji ZWJ and GB9c Indic conjuncts,
    /// match runs in which every position is a non-boundary, and GB12/13 pair regional
    /// indicators by the parity of the run, which is even at a boundary inside a run). A
    /// tick never asks about the held-back cluster (`complete_end` knows where it starts), so
    /// a huge one arriving piece by piece is not segmented once per tick.
    fn cluster_end(&self, at: usize) -> Option<usize> {
        let rest = self.buf.get(at..).filter(|rest| !rest.is_empty())?;
        // (The cursor `next_boundary` uses too, with the end known: one segmenter in the wasm.)
        let end = match GraphemeCursor::new(0, rest.len(), true).next_boundary(rest, 0) {
            Ok(Some(b)) if b > 0 => at + b,
            _ => self.buf.len(),
        };
        (end < self.buf.len() || self.ended).then_some(end)
    }

    /// Where the complete clusters of the queue end: the start of the held-back last cluster,
    /// or the end of the queue after `end()`. For a queue that ends in two plain characters
    /// (the usual case) read from its last bytes; otherwise segmented forward from the last
    /// boundary known near the end, or from the previous answer, so each byte at most once.
    fn complete_end(&mut self) -> usize {
        let b = self.buf.as_bytes();
        let len = b.len();
        if self.ended || self.head == len {
            return len;
        }
        // A queue that ends in two plain characters (the usual case) holds back the last.
        // The one before it may be the last one shown: `head` is then its end, the same
        // answer as segmenting from `head` gives.
        let last = last_of_two_plain(b);
        if last != usize::MAX {
            // Also where the next search from the end starts.
            self.resume = self.dropped + last as u64;
            return last;
        }
        // Where the plain character that ends at `end` (a character boundary) starts
        // (`usize::MAX` if there is none, which has none before it either).
        let plain_start = |end: usize| {
            let start = char_start_before(b, end);
            if plain_len_at(b, start) > 0 {
                start
            } else {
                usize::MAX
            }
        };
        // Segmented forward, from the last boundary known without segmenting (between two
        // plain characters) among the last `LAST_CLUSTER_LOOKBACK` bytes if there is one past
        // the previous answer: a tick that started at the previous answer would walk all the
        // text that arrived since, shown by it or not. Else from the previous answer, or from
        // `head` if that is gone (shown, skipped): whenever those bytes hold no two adjacent
        // plain characters, which is a long cluster (an emoji sequence, a run of flags or of
        // combining marks) but also ordinary text in scripts outside `is_plain` (Arabic,
        // Thai or Devanagari words between single spaces, Latin written with combining
        // marks, emoji runs) until a ", " or ". " comes by. Either start gives the
        // same answer; the number only bounds what the look-back costs, and each byte is
        // walked forward once.
        let resume = usize::try_from(self.resume.wrapping_sub(self.dropped)).unwrap_or(usize::MAX);
        let mut at = if (self.head..=len).contains(&resume) { resume } else { self.head };
        // Back a byte at a time: a plain character starts with an ASCII or a lead byte, so
        // a byte inside a character fails the first test.
        let mut known = len - 1;
        while known > at && known + LAST_CLUSTER_LOOKBACK > len {
            if plain_len_at(b, known) > 0 && plain_start(known) != usize::MAX {
                at = known;
                break;
            }
            known -= 1;
        }
        if self.dropped + (at as u64) != self.tail.0 {
            self.tail = (self.dropped + at as u64, fresh_cursor());
        }
        loop {
            let (end, k) = plain_run(b, at, u64::MAX, usize::MAX);
            if k > 0 {
                at = end;
            }
            match next_boundary(&self.buf, at, self.dropped, &mut self.tail) {
                (Some(end), _) => at = end,
                (None, cursor_at) => {
                    self.tail.0 = cursor_at;
                    self.resume = cursor_at;
                    return at;
                }
            }
        }
    }

    /// Walks complete clusters of `buf` from `at` within `bounds` (taking one that starts
    /// past `bounds.start` if `one_more`); returns where it stopped, how many it walked and
    /// why it stopped.
    ///
    /// Between two plain characters there is always a boundary: such a character is a
    /// cluster of its own without asking the UAX #29 machinery, which is many times slower
    /// (in an interpreted wasm engine, the difference between pacing costing a little or
    /// most).
    fn walk(&self, mut at: usize, bounds: Bounds, mut one_more: bool) -> (usize, u64, Stop) {
        let b = self.buf.as_bytes();
        let mut n = 0;
        let mut start_limit = bounds.start;
        // Whether a plain run may start here: not right after one, which would find nothing
        // (it stopped for a reason that still holds) for the price of a call.
        let mut run = true;
        loop {
            if n >= bounds.max {
                return (at, n, Stop::Spent);
            }
            if at >= start_limit {
                if !one_more || at >= bounds.complete {
                    return (at, n, Stop::Starved);
                }
                one_more = false;
                start_limit = at + 1;
                run = true;
            }
            if run {
                let (end, k) = plain_run(b, at, bounds.max - n, bounds.end.min(start_limit));
                if k > 0 {
                    // A plain character is one UTF-16 code unit (all are in the BMP).
                    self.walked.set(self.walked.get() + k as usize);
                    (at, n, run) = (end, n + k, false);
                    continue;
                }
            }
            run = true;
            // A complete cluster that starts here is at least as long as its first character,
            // which the lead byte tells: past `bounds.end` already, it ends past it anyway
            // (how a walk on byte credit usually stops; no call to learn more).
            if at + lead_len(b, at) > bounds.end && at < bounds.complete && !self.no_shortcuts() {
                return (at, n, Stop::Spent);
            }
            // A plain character followed by another, stopped by a limit: no UAX #29 lookup
            // to learn where it ends.
            let len = plain_len_at(b, at);
            // A complete cluster that starts here ends past `bounds.end` anyway: no need to
            // learn where.
            if at + len.max(1) > bounds.end && at < bounds.complete {
                return (at, n, Stop::Spent);
            }
            let plain = len > 0 && plain_len_at(b, at + len) > 0;
            let end = if plain { Some(at + len) } else { self.cluster_end(at) };
            let Some(end) = end else { return (at, n, Stop::Starved) };
            if end > bounds.end {
                return (at, n, Stop::Spent);
            }
            // A plain character is one UTF-16 code unit; in any other cluster, one per
            // character and two for a four-byte one: the bytes that start a character, and the
            // four-byte lead bytes once more.
            let units = if plain { 1 } else { utf16_len(&b[at..end]) };
            self.walked.set(self.walked.get() + units);
            (at, n) = (end, n + 1);
        }
    }

    /// Where a byte-credit walk from `at` (a cluster boundary) passes on its way to `limit`
    /// (at most its byte end, the end of what was queued at the previous tick and the end of
    /// the complete clusters), found without walking: the character boundary at or before
    /// `limit`, when the characters on both sides of it are plain, so that it is a cluster
    /// boundary whatever comes before (see [`Pacer::walk`]); every cluster before it fits
    /// the walk's bounds. Adds the UTF-16 units of the text skipped to `walked` and returns
    /// the boundary, or returns `at` (no jump) when there is none, when the way is short, or
    /// when `pending`'s kept count reaches past it (the jump does not count clusters, and a
    /// tick keeps that count only by subtracting the clusters it shows).
    ///
    /// This is what keeps a tick from visiting every character it shows: a tick that shows
    /// 200 bytes of Chinese reads two characters and counts the lead bytes eight at a time.
    fn jump(&self, at: usize, limit: usize) -> usize {
        let b = self.buf.as_bytes();
        if limit < at + JUMP_MIN || limit >= b.len() || self.no_shortcuts() {
            return at;
        }
        let mut p = limit;
        while b[p] & 0xC0 == 0x80 {
            p -= 1;
        }
        let before = char_start_before(b, p);
        if p <= at
            || plain_len_at(b, p) == 0
            || plain_len_at(b, before) == 0
            || self.counted_to.get() >= self.dropped + p as u64
        {
            return at;
        }
        self.walked.set(self.walked.get() + utf16_len(&b[at..p]));
        p
    }

    /// Whether the walks go the long way (tests compare them with the shortcuts).
    #[inline(always)]
    fn no_shortcuts(&self) -> bool {
        #[cfg(test)]
        return self.reference;
        #[cfg(not(test))]
        false
    }

    /// Marks `buf[..end]` shown (`due_end` has counted its clusters).
    #[inline(always)]
    fn emit(&mut self, end: usize) {
        if end != self.head {
            self.head = end;
            self.compact();
        }
    }

    fn compact(&mut self) {
        if self.head == self.buf.len() {
            self.dropped += self.buf.len() as u64;
            self.buf.clear();
            self.head = 0;
        } else if self.head >= COMPACT_MIN && self.head >= self.buf.len() - self.head {
            // Copies at most `head` bytes, all shown since the previous compaction:
            // amortized O(1) per byte.
            // SAFETY: `head` is a cluster boundary, so the bytes kept are a whole `str`.
            let bytes = unsafe { self.buf.as_mut_vec() };
            bytes.copy_within(self.head.., 0);
            bytes.truncate(bytes.len() - self.head);
            self.dropped += self.head as u64;
            self.head = 0;
        }
    }

    #[cfg(test)]
    fn buffered_bytes(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The memory bound of the module docs, which the public API cannot observe.
    #[test]
    fn buffer_stays_within_twice_the_backlog() {
        // 70 cps against ~83 clusters/s pushed: the backlog grows, so the shown prefix has to
        // be cut off a buffer that never empties.
        let mut p = Pacer::new(PaceOptions { cps: 70.0, max_lag_ms: 1.0e9, drain_ms: 1.0e9 });
        let mut shown = String::new();
        let mut now = 0.0;
        let mut compactions = 0;
        for i in 0..20_000 {
            p.push(if i % 3 == 0 { "漢字" } else { "ab" });
            let head_before = p.head;
            p.tick_into(now, &mut shown);
            if p.head < head_before && p.buffered_bytes() > 0 {
                compactions += 1;
            }
            now += 16.0;
            let unshown = p.buffered_bytes() - p.head;
            assert!(p.buffered_bytes() <= 2 * unshown + COMPACT_MIN, "at push {i}");
        }
        assert!(compactions > 0);
        // Drain it all: the buffer empties and the head resets.
        p.end();
        while !p.is_drained() {
            p.tick_into(now, &mut shown);
            now += 1.0e6;
        }
        assert_eq!(p.buffered_bytes(), 0);
    }

    #[test]
    fn deadline_ring_never_overflows() {
        let mut p = Pacer::new(PaceOptions { cps: 1.0, max_lag_ms: 10_000.0, drain_ms: 0.0 });
        let mut shown = String::new();
        for i in 0..100_000 {
            p.push("x");
            p.tick_into(f64::from(i) * 0.5, &mut shown);
            assert!(p.due_len <= (DUE_BUCKETS as usize) + 1, "{} live deadlines", p.due_len);
        }
    }

    /// The start of the last cluster of the queue by UAX #29 over all of `buf` (which starts
    /// at a boundary), or the end of the queue when nothing is held back.
    fn held_back_reference(p: &Pacer) -> usize {
        use unicode_segmentation::UnicodeSegmentation;
        if p.ended || p.head == p.buf.len() {
            return p.buf.len();
        }
        // Forward, as the pacer segments (`next_back` would run the reverse rules).
        p.buf.grapheme_indices(true).fold(p.buf.len(), |_, (i, _)| i)
    }

    fn check_held_back(p: &mut Pacer, case: &str) {
        let want = held_back_reference(p);
        let (head, buf) = (p.head, p.buf.clone());
        assert_eq!(p.complete_end(), want, "{case}: head {head}, buf {buf:?}");
    }

    /// Queues where the fast path and the look-back must not take a plain character for a
    /// cluster of its own: one that ends a Prepend cluster or a CRLF, endings of other
    /// lengths, and runs with no two plain characters in a row for more than the look-back.
    #[test]
    fn held_back_cluster_starts_where_segmentation_says() {
        // Thai letters: one cluster each, but not plain (U+0E33 is a SpacingMark).
        let thai = "ก".repeat(30);
        let marks = "\u{301}".repeat(40);
        let cases = [
            "ab\u{600}c".to_owned(),
            "\u{600}c".to_owned(),
            "中\u{600}文".to_owned(),
            "ab\r\ncd\r\n".to_owned(),
            "x\r\n".to_owned(),
            "abé".to_owned(),
            "中文é".to_owned(),
            "ab😀".to_owned(),
            "ab😀\u{200D}😀".to_owned(),
            "a中\u{302A}".to_owned(),
            format!("xy{thai}"),
            format!("xy{thai}\u{600}c"),
            format!("xy{thai}\r\n"),
            format!("xya{marks}"),
            format!("xya{marks}\u{600}\u{600}c"),
            format!("x{thai}b{thai}\u{600}c"),
            "абв\u{483}".to_owned(),
            "аб\u{600}в".to_owned(),
            "γλώσσα\u{301}".to_owned(),
            "ÀÿƀɏʯˆͿ΄".to_owned(),
            "かな\u{3099}".to_owned(),
            "한글\u{11A8}".to_owned(),
            "가나\u{1161}".to_owned(),
            "가\u{D7B0}".to_owned(),
            "각\u{D7CB}".to_owned(),
            format!("xy{}\u{301}", "ж".repeat(40)),
            format!("xy{}\u{600}c", "한".repeat(30)),
        ];
        for case in &cases {
            for compacted in [false, true] {
                let mut p = Pacer::new(PaceOptions { cps: 1.0e9, ..PaceOptions::default() });
                let mut shown = String::new();
                let mut now = 0.0;
                if compacted {
                    // Shown, then dropped from the buffer: `head` is 0 and the byte before it
                    // is gone.
                    p.push(&"a".repeat(2 * COMPACT_MIN));
                    for _ in 0..2 {
                        p.tick_into(now, &mut shown);
                        now += 16.0;
                    }
                    assert_eq!((p.head, p.buf.as_str()), (0, "a"), "{case}");
                    assert!(p.dropped > 0);
                }
                // One character a push, each followed by a check; every other one also by a
                // tick, which shows all but the last cluster (a shown prefix before `head`).
                for (i, c) in case.chars().enumerate() {
                    p.push(c.encode_utf8(&mut [0; 4]));
                    check_held_back(&mut p, case);
                    if i % 2 == 1 {
                        p.tick_into(now, &mut shown);
                        now += 16.0;
                        check_held_back(&mut p, case);
                    }
                }
                // The whole case in one push, after what is there already.
                p.push(case);
                check_held_back(&mut p, case);
                p.tick_into(now, &mut shown);
                check_held_back(&mut p, case);
            }
        }
    }

    /// A queue that ends in two plain characters, of any length, has its held-back cluster
    /// read from the last bytes: the segmenter is not asked (its cursor stays unused).
    #[test]
    fn queue_ending_in_two_plain_characters_needs_no_segmenter() {
        for (text, want) in [("xab", 2), ("xаб", 3), ("x中文", 4), ("x한국", 4), ("中a", 3), ("бa", 2), ("a中", 1)]
        {
            let mut p = Pacer::new(PaceOptions::default());
            p.push(text);
            assert_eq!(p.complete_end(), want, "{text:?}");
            assert_eq!(p.tail.0, u64::MAX, "{text:?}: segmented");
            // After a `\u{301}` the segmenter is needed: the check above can fail.
            p.push("\u{301}");
            assert_eq!(p.complete_end(), want, "{text:?}");
            assert_ne!(p.tail.0, u64::MAX, "{text:?}");
        }
    }

    /// Checks the doubled ring: each live entry equals its copy, and the slice `deadlines`
    /// reads gives what a walk of the ring gives.
    fn check_ring(p: &Pacer) {
        assert!(p.due_len <= DUE_SLOTS);
        let since = p.clock - 1.0;
        let shown = p.dropped + p.head as u64;
        let (mut rate, mut forced): (f64, u64) = (0.0, 0);
        for i in 0..p.due_len {
            let s = (p.due_first + i) % DUE_SLOTS;
            let (due, copy) = (p.dues[s], p.dues[s + DUE_SLOTS]);
            assert_eq!((due.end, due.at.to_bits()), (copy.end, copy.at.to_bits()), "slot {s} of {}", p.due_len);
            if due.at > p.clock {
                rate = rate.max((due.end - shown) as f64 / (due.at - since));
            } else {
                forced = due.end;
            }
        }
        assert!(p.drain_due.is_none());
        let (got_rate, got_forced) = p.deadlines(since);
        assert_eq!((got_rate.to_bits(), got_forced), (rate.to_bits(), forced));
    }

    /// A denormal lag, which sanitizing keeps, has a zero bucket: every tick opens an entry
    /// until all `DUE_SLOTS` are live, and from then on new text shares the newest one. A
    /// clock that stands still keeps them all live.
    #[test]
    fn full_ring_shares_the_newest_entry_in_both_copies() {
        let mut p = Pacer::new(PaceOptions { cps: 40.0, max_lag_ms: 5.0e-324, drain_ms: 1000.0 });
        assert!(p.options().max_lag_ms > 0.0 && p.options().max_lag_ms / DUE_BUCKETS == 0.0);
        let mut shown = String::new();
        let mut pushed = String::new();
        let mut shared = 0;
        for _ in 0..30 {
            p.push("ab");
            pushed.push_str("ab");
            let full = p.due_len == DUE_SLOTS;
            p.tick_into(0.0, &mut shown);
            check_ring(&p);
            if full {
                // The new text went into the newest entry.
                assert_eq!(p.due_len, DUE_SLOTS);
                assert_eq!(p.dues[p.last_due()].end, (pushed.len() - 1) as u64);
                shared += 1;
            }
        }
        // The first entry was shown by the first tick (its one cluster of credit up front);
        // the ring has wrapped, so the live slice runs into the copies.
        assert_eq!((p.due_len, p.due_first, shared), (DUE_SLOTS, 1, 9));
        assert_eq!(shown, "a");
        // Every deadline has passed a moment later: everything but the held-back cluster is
        // due, the text that shared the newest entry too.
        p.tick_into(1.0, &mut shown);
        assert_eq!(shown, pushed[..pushed.len() - 1]);
        assert_eq!(p.due_len, 0);
        p.end();
        let mut now = 2.0;
        while !p.is_drained() {
            p.tick_into(now, &mut shown);
            now += 16.0;
            assert!(now < 2000.0, "not drained within drain_ms");
        }
        assert_eq!(shown, pushed);
    }

    /// The ring filled up to exactly `DUE_SLOTS` live entries (a zero bucket) and emptied
    /// again, over and over, wrapping around the end of the ring.
    #[test]
    fn doubled_ring_matches_a_ring_walk() {
        let mut p = Pacer::new(PaceOptions { cps: 0.001, max_lag_ms: 5.0e-324, drain_ms: 1000.0 });
        let mut shown = String::new();
        let mut now = 0.0;
        let mut most = 0;
        for i in 0..200 {
            p.push(if i % 3 == 0 { "中文" } else { "x" });
            p.tick_into(now, &mut shown);
            check_ring(&p);
            most = most.max(p.due_len);
            // Mostly standing still (every entry stays live), now and then a step past every
            // deadline (the ring empties and starts again further on).
            if i % 37 == 36 {
                now += 1.0;
            }
        }
        assert_eq!(most, DUE_SLOTS);
    }

    /// A small deterministic generator for the randomized tests: each call gives a number
    /// in `0..n` (xorshift64).
    fn xorshift(mut seed: u64) -> impl FnMut(usize) -> usize {
        move |n| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        }
    }

    /// The pace of a randomized round: three speeds by two lags.
    fn round_options(round: usize) -> PaceOptions {
        let cps = [5.0, 40.0, 300.0][round % 3];
        let max_lag_ms = [200.0, 1500.0][round / 3 % 2];
        PaceOptions { cps, max_lag_ms, drain_ms: 700.0 }
    }

    /// The byte-credit walk a tick leaves out, when the next character alone is longer than
    /// the credit, would have shown nothing, and a walk stopped by a lead byte would have
    /// stopped there anyway: with and without these shortcuts, every tick shows the same
    /// text, over random text of one- to four-byte characters, clusters of several, line
    /// breaks, random pushes and frame times, speeds and lags.
    #[test]
    fn byte_walk_left_out_would_have_shown_nothing() {
        let pieces = ["a", "b ", "中", "文字", "é", "ж", "😀", "e\u{301}", "\n", "한", "👍🏽", "。", "\r\n"];
        same_as_reference(0x2545_F491_4F6C_DD1D, &pieces, 400, 300, 4);
    }

    /// A byte-credit walk that jumps over the text before a boundary between two plain
    /// characters shows, counts and leaves behind what walking every cluster does: every
    /// tick's text, UTF-16 length and `pending`, with and without the jump (and the other
    /// shortcuts), over random text with long plain runs in several scripts between short
    /// clusters of every kind, random pushes, frame times, speeds and lags, `pending` asked
    /// now and then and `skip` once in a while.
    #[test]
    fn jumps_show_and_count_what_walks_do() {
        let pieces = [
            "流式输出把模型的回答逐字送到页面上，",
            "The quick brown fox jumps over the lazy dog. ",
            "한국어 문장과 ひらがな、Привет мир ",
            "a",
            "中",
            "é",
            "😀",
            "e\u{301}",
            "\n",
            "👍🏽",
            "🇨🇳",
            "\r\n",
            "क्ष",
            "\u{200D}",
        ];
        same_as_reference(0xD1B5_4A32_D192_ED03, &pieces, 300, 250, 5);
    }

    /// Runs a pacer with every shortcut beside one without (`reference`) over 300 rounds of
    /// random pushes of `pieces`, ticks at random frame times, `pending` asked now and then and
    /// `skip` once in a while, the text ended at step `end_at`: every tick must show the same
    /// text and report its UTF-16 length, and `pending` must agree.
    fn same_as_reference(seed: u64, pieces: &[&str], steps: usize, end_at: usize, most_pushes: usize) {
        let mut next = xorshift(seed);
        for round in 0..300 {
            let options = round_options(round);
            let (mut fast, mut reference) = (Pacer::new(options), Pacer::new(options));
            reference.reference = true;
            let (mut shown, mut want) = (String::new(), String::new());
            let mut now = 0.0;
            for step in 0..steps {
                for _ in 0..next(most_pushes) {
                    let piece = pieces[next(pieces.len())];
                    fast.push(piece);
                    reference.push(piece);
                }
                if step == end_at {
                    fast.end();
                    reference.end();
                }
                if next(8) == 0 {
                    assert_eq!(fast.pending(), reference.pending(), "round {round}, pending at {step}");
                }
                if next(100) == 0 {
                    fast.skip_into(&mut shown);
                    reference.skip_into(&mut want);
                }
                now += [4.0, 16.0, 16.0, 17.0, 33.0, 250.0][next(6)];
                let before = shown.len();
                let units = fast.tick_to(now, Some(&mut shown));
                assert_eq!(units, reference.tick_to(now, Some(&mut want)), "round {round}, tick {step}");
                assert_eq!(shown, want, "round {round}, tick {step}");
                assert_eq!(units, shown[before..].encode_utf16().count(), "round {round}, tick {step}");
            }
            assert!(fast.is_drained() && shown.len() == want.len());
        }
    }

    /// A caller that holds the text itself is told, by every tick, the UTF-16 length of the
    /// text a tick of the same pacer shows, and the same state follows: over random text of
    /// one- to four-byte characters, clusters of several, line breaks, random pushes and
    /// frame times, speeds and lags, with `pending` asked now and then (its walks must not
    /// count), and `skip_all` where `skip_into` is used.
    #[test]
    fn utf16_ticks_count_what_string_ticks_show() {
        let pieces = ["a", "b ", "中", "文字", "é", "ж", "😀", "e\u{301}", "\n", "한", "👍🏽", "。", "\r\n", "🇨🇳"];
        let mut next = xorshift(0x9E37_79B9_7F4A_7C15);
        for round in 0..200 {
            let options = round_options(round);
            let (mut text, mut units) = (Pacer::new(options), Pacer::new(options));
            let (mut shown, mut now) = (String::new(), 0.0);
            let mut queued: Vec<u16> = Vec::new();
            for step in 0..300 {
                for _ in 0..next(4) {
                    let piece = pieces[next(pieces.len())];
                    text.push(piece);
                    // SAFETY: a `str`.
                    unsafe { units.push_unchecked(piece.as_bytes()) };
                    queued.extend(piece.encode_utf16());
                }
                if step == 250 {
                    text.end();
                    units.end();
                }
                if next(10) == 0 {
                    assert_eq!(text.pending(), units.pending(), "round {round}, tick {step}");
                }
                if next(50) == 0 {
                    shown.clear();
                    text.skip_into(&mut shown);
                    units.skip_all();
                    assert_eq!(shown.encode_utf16().collect::<Vec<_>>(), queued, "round {round}, skip at {step}");
                    queued.clear();
                    continue;
                }
                now += [4.0, 16.0, 16.0, 17.0, 33.0, 250.0][next(6)];
                shown.clear();
                text.tick_into(now, &mut shown);
                let n = units.tick_utf16(now);
                assert_eq!(shown.encode_utf16().collect::<Vec<_>>(), queued[..n], "round {round}, tick {step}");
                queued.drain(..n);
            }
            assert!(text.is_drained() && units.is_drained() && queued.is_empty());
        }
    }

    /// `unpush` takes back what was pushed after its mark, and the pacer goes on as if it had
    /// never been pushed.
    #[test]
    fn unpush_takes_back_what_came_after_the_mark() {
        let mut p = Pacer::new(PaceOptions::default());
        let mut q = Pacer::new(PaceOptions::default());
        let mut shown = String::new();
        let mut want = String::new();
        for (i, piece) in ["你好", "ab", "😀", "x\u{301}"].iter().enumerate() {
            p.push(piece);
            q.push(piece);
            let mark = p.queued_bytes();
            // SAFETY: taken back at once, before any other call.
            unsafe { p.push_unchecked(&[0xE4, 0xBD]) };
            p.unpush(mark);
            p.tick_into(16.0 * i as f64, &mut shown);
            q.tick_into(16.0 * i as f64, &mut want);
            assert_eq!((p.queued_bytes(), &shown), (q.queued_bytes(), &want));
        }
    }

    /// A walk from the start of the held-back cluster with a byte limit inside it: the
    /// cluster's end is unknown, so the walk is starved rather than out of credit.
    #[test]
    fn walk_from_the_held_back_cluster_is_starved() {
        let mut p = Pacer::new(PaceOptions::default());
        p.push("ab\u{301}");
        let complete = p.complete_end();
        assert_eq!(complete, 1);
        let bounds = Bounds { max: u64::MAX, end: complete + 1, start: usize::MAX, complete };
        assert!(p.walk(complete, bounds, false) == (complete, 0, Stop::Starved));
        assert!(p.walk(complete, Bounds { end: complete, ..bounds }, true) == (complete, 0, Stop::Starved));
    }
}
