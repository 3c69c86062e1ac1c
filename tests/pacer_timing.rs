//! The typewriter pacer's timing: cps, the lag bound, the end drain, gaps and broken clocks.

mod common;

use chunkwise::pacer::*;
use common::pacer::*;

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
