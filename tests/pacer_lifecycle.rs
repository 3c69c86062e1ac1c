//! The typewriter pacer's life cycle and options: end, text after end, reset, defaults,
//! sanitized and extreme options.

mod common;

use chunkwise::pacer::*;
use common::pacer::*;

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
