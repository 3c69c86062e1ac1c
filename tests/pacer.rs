//! Tests of the typewriter pacer against `unicode_segmentation` run on whole strings.
//!
//! `push` takes `&str`, so text can only be cut at char boundaries (cutting inside a UTF-8
//! sequence is the byte decoder's business, upstream): "every position" below means every
//! char boundary, which is every byte position a `&str` can be split at.

mod common;

use chunkwise::pacer::*;
use common::Rng;
use unicode_segmentation::UnicodeSegmentation;

/// Texts with every kind of multi-code-point cluster, and cluster-joining characters at the
/// edges where a split or a held-back cluster would show a bug.
const TEXTS: &[&str] = &[
    "你好，世界！这是一个流式回答。",
    "家庭 👨\u{200D}👩\u{200D}👧\u{200D}👦 和 👍🏽 还有 ❤\u{FE0F}\u{200D}🔥 与 🏳\u{FE0F}\u{200D}🌈",
    "国旗 🇨🇳🇺🇸🇯🇵 奇数个 🇦🇧🇨 结尾🇫🇷",
    "cafe\u{301} e\u{301}\u{302}\u{303} n\u{303}o Zalgo: Z\u{336}\u{335}\u{334}a\u{337}\u{338}",
    "line one\r\nline two\r\n\r\n\rlone CR\nlone LF\r\n",
    "한국어 \u{1100}\u{1161}\u{11A8} \u{1112}\u{1161}\u{11AB}\u{1100}\u{1173}\u{11AF} 끝",
    "नमस्ते क्षत्रिय अनुच्छेद",
    "\u{301}starts with a mark, \n\u{301}mark after LF, \u{200D}lone ZWJ\u{200D}",
    "👨\u{200D}👩\u{200D}👧\u{200D}👦👨\u{200D}👩\u{200D}👧\u{200D}👦🇨🇳🇨🇳e\u{301}",
    "𝄞 music, ﷽ wide, \u{0600}\u{0661} prepend, end👩\u{200D}",
    "plain ASCII, nothing special at all.",
];

/// Pieces that join with their neighbours in many ways, for random texts.
const FRAGMENTS: &[&str] = &[
    "a",
    "Z",
    " ",
    "你",
    "好",
    "。",
    "\r",
    "\n",
    "\r\n",
    "\t",
    "\u{201C}",
    "\u{2014}",
    "e\u{301}",
    "\u{301}",
    "\u{200D}",
    "👨",
    "👩",
    "👧",
    "🇨",
    "🇳",
    "🇺",
    "🇸",
    "\u{1F3FD}",
    "👍",
    "❤",
    "\u{FE0F}",
    "🔥",
    "\u{1100}",
    "\u{1161}",
    "\u{11A8}",
    "한",
    "क",
    "\u{94D}",
    "ष",
    "\u{93F}",
    "\u{0600}",
    "𝄞",
    "\u{903}",
];

/// Options that show every complete cluster at the tick after it arrives, so any cluster the
/// pacer wrongly thinks is complete comes out, and the boundary checks see it.
const EAGER: PaceOptions = PaceOptions { cps: 40.0, max_lag_ms: 0.0, drain_ms: 0.0 };

fn count(s: &str) -> usize {
    s.graphemes(true).count()
}

/// Byte offsets of the cluster boundaries of `s`, 0 and `s.len()` included.
fn boundaries(s: &str) -> Vec<usize> {
    let mut b: Vec<usize> = s.grapheme_indices(true).map(|(i, _)| i).collect();
    b.push(s.len());
    b
}

/// Drives a pacer and checks it after every call against a model built from the whole text.
struct Run {
    pacer: Pacer,
    pushed: String,
    shown: String,
    ended: bool,
    /// `shown.len()` after each tick that showed something.
    cuts: Vec<usize>,
    ticks: usize,
}

impl Run {
    fn new(options: PaceOptions) -> Run {
        Run {
            pacer: Pacer::new(options),
            pushed: String::new(),
            shown: String::new(),
            ended: false,
            cuts: Vec::new(),
            ticks: 0,
        }
    }

    fn push(&mut self, s: &str) {
        self.pacer.push(s);
        self.pushed.push_str(s);
        self.check_pending();
    }

    fn end(&mut self) {
        self.pacer.end();
        self.ended = true;
        self.check_pending();
    }

    fn tick(&mut self, now: f64) -> usize {
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
    fn check_pending(&self) {
        let rest = &self.pushed[self.shown.len()..];
        let held = usize::from(!self.ended && !rest.is_empty());
        assert_eq!(self.pacer.pending(), count(rest) - held, "pending() for {rest:?} (ended: {})", self.ended);
        assert_eq!(self.pacer.is_drained(), self.ended && rest.is_empty(), "is_drained()");
    }

    /// Skips the rest and checks the whole output against `full`, the complete text.
    fn finish(mut self, full: &str) {
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

fn char_cuts(s: &str) -> Vec<usize> {
    s.char_indices().map(|(i, _)| i).chain([s.len()]).collect()
}

#[test]
fn two_pieces_split_at_every_position() {
    for text in TEXTS {
        for at in char_cuts(text) {
            let mut run = Run::new(EAGER);
            run.push(&text[..at]);
            run.tick(0.0);
            run.tick(16.0);
            run.push(&text[at..]);
            run.tick(32.0);
            run.end();
            run.tick(48.0);
            assert!(run.pacer.is_drained(), "drain_ms = 0 drains at the first tick after end()");
            run.finish(text);
        }
    }
}

#[test]
fn three_pieces_split_at_every_pair_of_positions() {
    for text in &TEXTS[1..4] {
        let cuts = char_cuts(text);
        for (i, &a) in cuts.iter().enumerate() {
            for &b in &cuts[i..] {
                let mut run = Run::new(EAGER);
                let mut now = 0.0;
                for piece in [&text[..a], &text[a..b], &text[b..]] {
                    run.push(piece);
                    run.tick(now);
                    now += 16.0;
                }
                run.end();
                run.tick(now);
                run.finish(text);
            }
        }
    }
}

#[test]
fn one_char_per_push() {
    for text in TEXTS {
        for options in [EAGER, PaceOptions::default()] {
            let mut run = Run::new(options);
            let mut now = 0.0;
            for c in text.chars() {
                run.push(c.encode_utf8(&mut [0; 4]));
                run.tick(now);
                now += 16.0;
            }
            run.end();
            for _ in 0..200 {
                run.tick(now);
                now += 16.0;
            }
            assert!(run.pacer.is_drained());
            run.finish(text);
        }
    }
}

fn random_text(rng: &mut Rng) -> String {
    let mut s = String::new();
    for _ in 0..1 + rng.below(60) {
        s.push_str(FRAGMENTS[rng.below(FRAGMENTS.len())]);
    }
    s
}

/// Random times: mostly frames, sometimes stalls, backwards jumps, long gaps, NaN, ±inf.
fn next_now(rng: &mut Rng, now: &mut f64) -> f64 {
    match rng.below(40) {
        0 => f64::NAN,
        1 => f64::INFINITY,
        2 => f64::NEG_INFINITY,
        3 => {
            *now -= rng.unit() * 5000.0;
            *now
        }
        4 => {
            *now += rng.unit() * 600_000.0;
            *now
        }
        5..=8 => *now,
        _ => {
            *now += rng.unit() * 50.0;
            *now
        }
    }
}

#[test]
fn random_splits_random_ticks_random_options() {
    for seed in 0..3000u64 {
        let mut rng = Rng::new(seed);
        let text = if seed % 4 == 0 { TEXTS[rng.below(TEXTS.len())].to_string() } else { random_text(&mut rng) };
        let options = match rng.below(3) {
            0 => EAGER,
            1 => PaceOptions::default(),
            _ => PaceOptions {
                cps: 1.0 + rng.unit() * 200.0,
                max_lag_ms: rng.unit() * 500.0,
                drain_ms: rng.unit() * 500.0,
            },
        };
        let mut run = Run::new(options);
        let mut now = rng.unit() * 1.0e12;
        let cuts = char_cuts(&text);
        let mut at = 0;
        while at < text.len() {
            // Piece lengths of 0..=6 chars, empty pushes included.
            let here = cuts.binary_search(&at).unwrap();
            let to = cuts[(here + rng.below(7)).min(cuts.len() - 1)];
            run.push(&text[at..to]);
            at = to;
            for _ in 0..rng.below(4) {
                let t = next_now(&mut rng, &mut now);
                run.tick(t);
            }
        }
        let skip_early = rng.below(5) == 0;
        if !skip_early {
            run.end();
            for _ in 0..rng.below(30) {
                let t = next_now(&mut rng, &mut now);
                run.tick(t);
            }
        }
        run.finish(&text);
    }
}

/// `n` clusters of a CJK character: each is one cluster, so counts are easy to read.
fn han(n: usize) -> String {
    "字".repeat(n)
}

#[test]
fn big_backlog_is_shown_within_max_lag() {
    let options = PaceOptions::default();
    let mut run = Run::new(options);
    run.push(&han(3001)); // 3000 complete, the last held back
    let mut now = 0.0;
    let mut biggest = 0;
    let mut half_way = None;
    while run.pacer.pending() > 0 {
        assert!(now <= options.max_lag_ms + 16.0, "{} clusters still pending at {now} ms", run.pacer.pending());
        biggest = biggest.max(run.tick(now));
        if half_way.is_none() && now >= options.max_lag_ms / 2.0 {
            half_way = Some(run.pacer.pending());
        }
        now += 16.0;
    }
    // Spread evenly over the lag window, not dumped at the start or at the deadline.
    let half_way = half_way.unwrap();
    assert!((1200..=1800).contains(&half_way), "{half_way} pending half way");
    let per_tick = 3000.0 * 16.0 / options.max_lag_ms;
    assert!((biggest as f64) <= 1.5 * per_tick + 2.0, "{biggest} clusters in one tick");
    run.end();
    run.finish(&han(3001));
}

#[test]
fn small_backlog_goes_at_cps() {
    // 50 clusters take 1.25 s at 40 cps: under max_lag, so no speed-up.
    let mut run = Run::new(PaceOptions::default());
    run.push(&han(51));
    let mut shown = 0;
    for frame in 0..=30 {
        shown += run.tick(f64::from(frame) * 1000.0 / 60.0);
    }
    // One at once, then 40/s for 0.5 s.
    assert!((20..=22).contains(&shown), "{shown} clusters in 0.5 s");
}

#[test]
fn sixty_hertz_averages_exactly_cps() {
    let mut run = Run::new(PaceOptions { cps: 40.0, max_lag_ms: 1.0e9, drain_ms: 1.0e9 });
    run.push(&han(1001));
    let mut shown = 0;
    for frame in 0..=600 {
        let n = run.tick(f64::from(frame) * 1000.0 / 60.0);
        assert!(n <= 1, "{n} clusters in one frame at 40 cps");
        shown += n;
    }
    // The first at once, then exactly 400 in 10 s.
    assert!((400..=401).contains(&shown), "{shown} clusters in 10 s");
}

/// Pushes `per_push` clusters every `every_ms` for `secs` seconds with 60 Hz ticks; checks that
/// each push is shown within `max_lag_ms` (+ one frame) of the first tick after it, and
/// returns the most clusters shown in one frame after the first second.
fn stream(per_push: usize, every_ms: f64, secs: f64) -> usize {
    let options = PaceOptions::default();
    let frame = 1000.0 / 60.0;
    let mut run = Run::new(options);
    // (cluster count that must be shown, time of the first tick after the push)
    let mut waiting: Vec<(usize, Option<f64>)> = Vec::new();
    let mut shown = 0;
    let mut biggest = 0;
    let mut next_push = 0.0;
    let mut pushed = 0;
    let mut f = 0;
    loop {
        let now = f64::from(f) * frame;
        f += 1;
        if now > secs * 1000.0 + options.max_lag_ms + 2.0 * frame {
            break;
        }
        while next_push <= now && next_push < secs * 1000.0 {
            run.push(&han(per_push));
            pushed += per_push;
            // The last of them is held back until the next push.
            waiting.push((pushed - 1, None));
            next_push += every_ms;
        }
        for w in waiting.iter_mut().filter(|w| w.1.is_none()) {
            w.1 = Some(now);
        }
        let n = run.tick(now);
        shown += n;
        if now > 1000.0 {
            biggest = biggest.max(n);
        }
        for &(needed, seen) in &waiting {
            if shown < needed {
                let seen = seen.unwrap();
                assert!(
                    now < seen + options.max_lag_ms + frame,
                    "{needed} clusters not shown {} ms after seen",
                    now - seen
                );
            }
        }
        waiting.retain(|w| shown < w.0);
    }
    biggest
}

#[test]
fn fast_steady_stream_stays_within_max_lag_and_smooth() {
    // English at 50 tokens/s, ~4 characters a token: 200 clusters/s, five times cps.
    let biggest = stream(4, 20.0, 10.0);
    assert!(biggest <= 5, "{biggest} clusters in one frame for a 200/s stream");
}

#[test]
fn bursty_network_is_smoothed() {
    // 100 clusters in one chunk every second: shown about 100/1.5 s per second, not in bursts.
    let biggest = stream(100, 1000.0, 10.0);
    assert!(biggest <= 3, "{biggest} clusters in one frame");
}

#[test]
fn trickle_slower_than_cps_is_shown_as_it_comes() {
    // 20 clusters/s arriving, 40 cps pacing: nothing but the held-back cluster waits.
    let mut run = Run::new(PaceOptions::default());
    let mut now = 0.0;
    for i in 0..200 {
        if i % 3 == 0 {
            run.push("字");
        }
        run.tick(now);
        now += 1000.0 / 60.0;
        assert!(run.pacer.pending() <= 1, "backlog of {} at frame {i}", run.pacer.pending());
    }
}

#[test]
fn end_drains_within_drain_ms() {
    let options = PaceOptions::default();
    let mut run = Run::new(options);
    run.push(&han(5000));
    run.push("🇨"); // held back until end()
    run.tick(0.0);
    run.tick(16.0);
    assert!(!run.pacer.is_drained());
    run.end();
    let first = 32.0;
    let mut now = first;
    let start = run.pacer.pending();
    let mut half_way = None;
    while !run.pacer.is_drained() {
        assert!(now <= first + options.drain_ms + 16.0, "{} still pending at {now} ms", run.pacer.pending());
        run.tick(now);
        if half_way.is_none() && now >= first + options.drain_ms / 2.0 {
            half_way = Some(run.pacer.pending());
        }
        now += 16.0;
    }
    let half_way = half_way.unwrap() as f64;
    assert!(half_way > 0.3 * start as f64 && half_way < 0.7 * start as f64, "{half_way} of {start} pending half way");
    assert!(run.shown.ends_with('🇨'));
    let mut full = han(5000);
    full.push('🇨');
    run.finish(&full);
}

#[test]
fn end_drain_counts_from_the_first_tick_after_end() {
    let mut run = Run::new(PaceOptions { cps: 1.0, max_lag_ms: 1.0e9, drain_ms: 1000.0 });
    run.push(&han(100));
    run.end();
    run.tick(50_000.0); // the first tick after end(): the drain second starts here
    assert!(!run.pacer.is_drained());
    run.tick(50_500.0);
    assert!(!run.pacer.is_drained(), "drained before drain_ms");
    run.tick(51_000.0);
    assert!(run.pacer.is_drained());
}

#[test]
fn ten_minute_gap_does_not_burst() {
    let mut run = Run::new(PaceOptions::default());
    run.push(&han(201));
    run.tick(0.0);
    run.tick(16.0);
    let before = run.pacer.pending();
    // Back from the background: what was queued then may all come out now...
    let n = run.tick(600_016.0);
    assert!(n <= before, "{n} shown from a backlog of {before}");
    // ...but the long gap left no credit behind for what comes next.
    run.push(&han(1000));
    let first = run.tick(600_032.0);
    assert!(first <= 1, "{first} clusters right after the gap");
    let second = run.tick(600_048.0);
    assert!(second <= 12, "{second} clusters in the second frame");
    let mut full = han(201);
    full.push_str(&han(1000));
    run.end();
    run.finish(&full);
}

#[test]
fn text_arriving_during_a_gap_is_paced_after_it() {
    let mut run = Run::new(PaceOptions::default());
    run.push(&han(101));
    run.tick(0.0);
    run.tick(16.0);
    let old = run.pacer.pending();
    run.push(&han(1000)); // arrives while the app is in the background
    let n = run.tick(600_016.0);
    assert!(n <= old + 1, "{n} shown, only {old} were queued before the gap");
    assert!(run.pacer.pending() >= 999);
}

#[test]
fn idle_time_does_not_burst() {
    let mut run = Run::new(PaceOptions::default());
    for frame in 0..100 {
        run.tick(f64::from(frame) * 16.0);
    }
    run.push(&han(1000));
    let n = run.tick(600_000.0);
    assert!(n <= 1, "{n} clusters after a long idle spell");
}

#[test]
fn backwards_and_broken_clocks_are_harmless() {
    let mut run = Run::new(PaceOptions::default());
    run.push(&han(1001));
    for t in [0.0, 16.0, 32.0] {
        run.tick(t);
    }
    assert!(run.tick(-1.0e6) <= 1, "burst on a backwards jump");
    for t in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, f64::MAX, f64::MIN, f64::MIN_POSITIVE] {
        let n = run.tick(t);
        assert!(n <= 1000, "{n} clusters on now = {t}");
    }
    let mut run = Run::new(PaceOptions::default());
    run.push(&han(1001));
    run.tick(0.0);
    run.tick(16.0);
    assert!(run.tick(-1.0e6) <= 1, "burst on a backwards jump");
    for t in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        assert_eq!(run.tick(t), 0, "non-finite now = {t} must count as no time");
    }
    let mut stalled = 0;
    for _ in 0..100 {
        stalled += run.tick(-1.0e6);
    }
    assert!(stalled <= 1, "{stalled} clusters from a stalled clock");
    // After the jump the pacer goes on from the new time, without waiting to catch up.
    let mut now = -1.0e6;
    for _ in 0..200 {
        now += 16.0;
        run.tick(now);
    }
    assert_eq!(run.pacer.pending(), 0, "stalled after the clock went backwards");
    run.end();
    run.finish(&han(1001));
}

#[test]
fn clock_extremes_do_not_panic() {
    let mut p = Pacer::new(PaceOptions::default());
    p.push(&han(100));
    assert!(p.tick(f64::NAN).chars().count() <= 1, "the first cluster may show at once");
    for t in [f64::MIN, f64::MAX, f64::MIN, 0.0, 1.0e300, -1.0e300, 5e-324] {
        p.tick(t);
    }
    p.end();
    for t in [f64::MAX, f64::MIN, f64::MAX] {
        p.tick(t);
    }
    assert!(p.pending() <= 100);
}

#[test]
fn first_tick_shows_the_first_cluster_at_once() {
    let mut p = Pacer::new(PaceOptions::default());
    p.push("👨\u{200D}👩\u{200D}👧\u{200D}👦好");
    assert_eq!(p.tick(1234.0), "👨\u{200D}👩\u{200D}👧\u{200D}👦");
    assert_eq!(p.tick(1234.0), "", "nothing more without time passing");
    assert_eq!(p.pending(), 0, "好 is held back");
    p.end();
    assert_eq!(p.pending(), 1);
}

#[test]
fn held_back_cluster_waits_for_its_continuation() {
    let mut p = Pacer::new(EAGER);
    let mut shown = String::new();
    p.push("a🇨");
    p.tick_into(0.0, &mut shown);
    assert_eq!((shown.as_str(), p.pending()), ("a", 0));
    p.push("🇳🇺"); // completes 🇨🇳; 🇺 starts the next flag
    p.tick_into(16.0, &mut shown);
    assert_eq!((shown.as_str(), p.pending()), ("a🇨🇳", 0));
    p.push("🇸e");
    p.tick_into(32.0, &mut shown);
    assert_eq!(shown, "a🇨🇳🇺🇸");
    p.push("\u{301}");
    p.tick_into(48.0, &mut shown);
    assert_eq!(shown, "a🇨🇳🇺🇸", "e waits: a mark may follow");
    p.push("\r");
    p.tick_into(64.0, &mut shown);
    assert_eq!(shown, "a🇨🇳🇺🇸e\u{301}");
    p.push("\n");
    p.end();
    p.tick_into(80.0, &mut shown);
    assert_eq!(shown, "a🇨🇳🇺🇸e\u{301}\r\n");
    assert!(p.is_drained());
}

#[test]
fn zwj_family_pushed_piece_by_piece_comes_out_whole() {
    let family = "👨\u{200D}👩\u{200D}👧\u{200D}👦";
    let mut p = Pacer::new(EAGER);
    let mut pieces = Vec::new();
    for (i, c) in family.chars().enumerate() {
        p.push(c.encode_utf8(&mut [0; 4]));
        pieces.push(p.tick(f64::from(i as u32) * 16.0));
    }
    p.push("!");
    pieces.push(p.tick(1000.0));
    assert!(pieces[..pieces.len() - 1].iter().all(String::is_empty), "{pieces:?}");
    assert_eq!(pieces.last().unwrap(), family);
}

#[test]
fn huge_single_cluster_pushed_mark_by_mark_is_linear() {
    // 200 000 combining marks on one base: one cluster of 400 KB. Re-segmenting the held-back
    // cluster on every push would be quadratic (4e10 steps) and time out here.
    let started = std::time::Instant::now();
    let mut p = Pacer::new(PaceOptions::default());
    let mut shown = String::new();
    p.push("a");
    for i in 0..200_000u32 {
        p.push("\u{301}");
        p.tick_into(f64::from(i), &mut shown);
    }
    assert_eq!((shown.as_str(), p.pending()), ("", 0));
    p.push("b");
    assert_eq!(p.pending(), 1);
    p.tick_into(1.0e6, &mut shown);
    assert_eq!(shown.len(), 1 + 2 * 200_000);
    assert!(started.elapsed().as_secs() < 30, "took {:?}", started.elapsed());
}

#[test]
fn long_runs_of_flags_keep_their_pairs() {
    // 10 001 regional indicators, one per push: pairs from the start, the odd one last.
    let ris = ["🇦", "🇧", "🇨", "🇩"];
    let mut full = String::new();
    let mut run = Run::new(EAGER);
    for i in 0..10_001 {
        let ri = ris[i % 4];
        full.push_str(ri);
        run.push(ri);
        run.tick(i as f64);
    }
    run.end();
    run.tick(1.0e7);
    assert!(run.pacer.is_drained());
    run.finish(&full);
}

#[test]
fn skip_shows_everything_including_the_held_back_cluster() {
    let mut p = Pacer::new(PaceOptions::default());
    p.push("你好🇨");
    assert_eq!(p.tick(0.0), "你");
    assert_eq!(p.pending(), 1);
    assert_eq!(p.skip(), "好🇨");
    assert_eq!((p.pending(), p.skip(), p.tick(16.0)), (0, String::new(), String::new()));
    // The stream goes on after a skip; the pacing resumes for the new text.
    p.push("🇳世界。");
    assert_eq!(p.pending(), 3);
    let mut out = String::new();
    p.skip_into(&mut out);
    assert_eq!(out, "🇳世界。");
    assert!(!p.is_drained(), "not ended");
    p.end();
    assert!(p.is_drained());
}

#[test]
fn end_and_is_drained() {
    let mut p = Pacer::new(PaceOptions::default());
    assert!(!p.is_drained());
    p.end();
    assert!(p.is_drained(), "ended with nothing queued");
    p.end();
    assert!(p.is_drained());

    let mut p = Pacer::new(PaceOptions::default());
    p.push("e");
    assert_eq!(p.pending(), 0);
    p.end();
    assert_eq!(p.pending(), 1);
    assert!(!p.is_drained());
    assert_eq!(p.tick(0.0), "e");
    assert!(p.is_drained());
}

#[test]
fn text_pushed_after_end_is_still_shown() {
    let mut run = Run::new(PaceOptions::default());
    run.push("first 字");
    run.end();
    for t in 0..100 {
        run.tick(f64::from(t) * 16.0);
    }
    assert!(run.pacer.is_drained());
    // Late text (a host bug, or a trailing event) is shown on the passed drain deadline.
    run.push(" late 字字");
    assert!(!run.pacer.is_drained());
    run.tick(1600.0);
    assert!(run.pacer.is_drained());
    run.finish("first 字 late 字字");

    // Not yet shown when more comes: the cluster made showable by end() is continued.
    let mut p = Pacer::new(PaceOptions::default());
    p.push("ab");
    p.end();
    p.push("\u{301}c\u{301}");
    assert_eq!(p.pending(), 3);
    assert_eq!(p.skip(), "ab\u{301}c\u{301}");

    // Already shown: the late mark cannot join it any more and comes out on its own.
    let mut p = Pacer::new(PaceOptions::default());
    p.push("e");
    p.end();
    assert_eq!(p.tick(0.0), "e");
    p.push("\u{301}x");
    assert_eq!(p.pending(), 2);
    assert_eq!(p.tick(1.0e4), "\u{301}x");
}

#[test]
fn reset_returns_to_new() {
    let options = PaceOptions { cps: 10.0, max_lag_ms: 100.0, drain_ms: 50.0 };
    let mut p = Pacer::new(options);
    p.push(&han(5000));
    p.push("🇨");
    p.tick(0.0);
    p.tick(5000.0);
    p.end();
    p.reset();
    assert_eq!(p.options(), options);
    assert_eq!((p.pending(), p.is_drained()), (0, false));
    assert_eq!(p.skip(), "");
    // Same behaviour as a new pacer, the clock included (the next tick starts it).
    let mut fresh = Pacer::new(options);
    for q in [&mut p, &mut fresh] {
        q.push("🇳x字");
    }
    for t in [9000.0, 9010.0, 9100.0, 9300.0] {
        assert_eq!(p.tick(t), fresh.tick(t));
    }
}

#[test]
fn default_options() {
    let d = PaceOptions::default();
    assert_eq!(d, PaceOptions { cps: 40.0, max_lag_ms: 1500.0, drain_ms: 1000.0 });
    assert_eq!(Pacer::new(d).options(), d);
}

#[test]
fn options_are_sanitized() {
    let d = PaceOptions::default();
    for cps in [0.0, -1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0] {
        let o = Pacer::new(PaceOptions { cps, ..d }).options();
        assert_eq!(o.cps, d.cps, "cps {cps}");
    }
    assert_eq!(Pacer::new(PaceOptions { cps: 7.5, ..d }).options().cps, 7.5);
    for (given, expected_lag, expected_drain) in [
        (-5.0, 0.0, 0.0),
        (f64::NEG_INFINITY, 0.0, 0.0),
        (f64::NAN, d.max_lag_ms, d.drain_ms),
        (0.0, 0.0, 0.0),
        (250.0, 250.0, 250.0),
    ] {
        let o = Pacer::new(PaceOptions { cps: 10.0, max_lag_ms: given, drain_ms: given }).options();
        assert_eq!((o.max_lag_ms, o.drain_ms), (expected_lag, expected_drain), "time {given}");
    }
    let o = Pacer::new(PaceOptions { cps: 10.0, max_lag_ms: f64::INFINITY, drain_ms: f64::INFINITY }).options();
    assert!(o.max_lag_ms.is_finite() && o.max_lag_ms >= 1.0e12, "infinite lag means never, kept finite");
    assert!(o.drain_ms.is_finite() && o.drain_ms >= 1.0e12);
}

#[test]
fn zero_lag_shows_everything_at_once() {
    let mut p = Pacer::new(PaceOptions { cps: 1.0, max_lag_ms: -3.0, drain_ms: 0.0 });
    p.push(&han(500));
    assert_eq!(p.tick(0.0), han(499));
}

#[test]
fn infinite_limits_pace_at_cps_only() {
    let mut run = Run::new(PaceOptions { cps: 100.0, max_lag_ms: f64::INFINITY, drain_ms: f64::INFINITY });
    run.push(&han(100_000));
    run.end();
    let mut shown = 0;
    for frame in 0..=100 {
        shown += run.tick(f64::from(frame) * 10.0);
    }
    assert!((100..=102).contains(&shown), "{shown} clusters in 1 s at 100 cps");
}

/// The plain-character fast path must agree with UAX #29 exactly where plain characters meet
/// the others (combining marks after CJK, ZWJ, tone marks U+302A.., variation selectors).
#[test]
fn plain_fast_path_agrees_with_segmentation() {
    use unicode_segmentation::UnicodeSegmentation;
    let text = "中\u{302A}文a\u{301}b\u{200D}c😀\u{FE0F}d，\u{3029}\u{302B}Ａ\u{FE0F}#\u{FE0F}\u{20E3}e\r\nf한국어";
    let mut p = Pacer::new(PaceOptions::default());
    for c in text.chars() {
        p.push(c.encode_utf8(&mut [0; 4]));
    }
    p.end();
    let mut shown = Vec::new();
    let mut now = 0.0;
    while !p.is_drained() {
        let piece = p.tick(now);
        shown.extend(piece.graphemes(true).map(str::to_owned));
        now += 16.0;
    }
    let expected: Vec<String> = text.graphemes(true).map(str::to_owned).collect();
    assert_eq!(shown, expected);
}
