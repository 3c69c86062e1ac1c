//! The typewriter pacer never splits or reorders a grapheme cluster, however its text is
//! pushed: checked against `unicode_segmentation` run on whole strings.
//!
//! `push` takes `&str`, so text can only be cut at char boundaries (cutting inside a UTF-8
//! sequence is the byte decoder's business, upstream): "every position" below means every
//! char boundary, which is every byte position a `&str` can be split at.

mod common;

use chunkwise::pacer::*;
use common::pacer::*;
use common::Rng;

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
    "Привет, мир! Ёжик и ѣ, д\u{483}а\u{489}, ґанок; Ελληνικά ά\u{301}; café, naïve, Łódź",
    "ひらがな か\u{3099}き\u{309A}、カタカナ ー・゛ テ\u{3099}ータ",
    "가\u{11A8}각\u{11A8}\u{11A8}\u{1100}가 한\u{1161}힣\u{11A8}힣 \u{D7B0}\u{D7CB} 가\u{D7B0}각\u{D7CB}",
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
    "я",
    "ё",
    "\u{483}",
    "α",
    "é",
    "ß",
    "か",
    "カ",
    "ー",
    "\u{3099}",
    "가",
    "각",
    "힣",
    "\u{D7B0}",
    "\u{D7CB}",
];

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

/// The plain-character fast path must agree with UAX #29 exactly where plain characters meet
/// the others (combining marks after CJK, ZWJ, tone marks U+302A.., variation selectors).
#[test]
fn plain_fast_path_agrees_with_segmentation() {
    use unicode_segmentation::UnicodeSegmentation;
    let text = "中\u{302A}文a\u{301}b\u{200D}c😀\u{FE0F}d，\u{3029}\u{302B}Ａ\u{FE0F}#\u{FE0F}\u{20E3}e\r\nf한국어\
                ф\u{483}я\u{488}ω\u{301}ü\u{308}ß\u{200D}か\u{3099}ゟ\u{309A}가\u{1161}각\u{11A8}힣\u{D7CB}";
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

/// The benchmark answers (Chinese, English, Korean, Russian), pushed in pieces of 1 to 200
/// bytes and paced: the fast path covers nearly all of their text, and every tick still ends
/// where UAX #29 puts a boundary.
#[test]
fn real_answers_in_four_scripts_keep_their_clusters() {
    for name in ["answer-zh.md", "answer-en.md", "answer-ko.md", "answer-ru.md"] {
        let path = format!("{}/bench/corpus/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        for (options, piece) in [(EAGER, 7), (PaceOptions::default(), 200)] {
            let mut run = Run::new(options);
            let mut rng = Rng::new(piece as u64);
            let (mut at, mut now) = (0, 0.0);
            while at < text.len() {
                let mut to = (at + 1 + rng.below(piece)).min(text.len());
                while !text.is_char_boundary(to) {
                    to += 1;
                }
                run.push(&text[at..to]);
                run.tick(now);
                (at, now) = (to, now + 16.0);
            }
            run.end();
            while !run.pacer.is_drained() {
                run.tick(now);
                now += 16.0;
            }
            assert!(run.cuts.len() > 100, "{name}: {} ticks showed text", run.cuts.len());
            run.finish(&text);
        }
    }
}
