//! WHATWG UTF-8 decoding conformance: vectors from WPT (`encoding/`), encoding_rs and CPython,
//! stored in `tests/fixtures/wpt/textdecoder.json` (see `tests/fixtures/SOURCES.md`).
//!
//! Every case runs whole, one byte at a time, cut in two at every position and cut at random,
//! through `Format::Text`; the merged text must equal the expected string in every split.
//! Cases that record upstream's own chunking run with those chunks too, and cases whose upstream
//! test asserts the output of each `decode(chunk, {stream: true})` call check each `push` alone.

mod common;

use chunkwise::{Format, Options, StreamDecoder, Update};
use serde_json::Value;

const FIXTURE: &str = include_str!("fixtures/wpt/textdecoder.json");
const RANDOM_RUNS: u64 = 24;

/// Upstream vectors that this crate cannot run, with the reason. Counted, never silently skipped.
const NOT_APPLICABLE: &[(&str, &str)] = &[
    ("textdecoder-eof.any.js: 5 Big5 assertions", "Big5 is not UTF-8; chunkwise decodes UTF-8 only"),
    ("textdecoder-streaming.any.js: utf-16le/utf-16be windows (10 tests x 4 buffer kinds)", "UTF-16 is out of scope"),
    (
        "textdecoder-fatal.any.js: fatal-mode TypeError assertions (35)",
        "chunkwise has no fatal mode; the same inputs run here in replacement mode",
    ),
    (
        "textdecoder-ignorebom.any.js / decode-ignore-bom.any.js: ignoreBOM: true",
        "chunkwise has no ignoreBOM option; the default (BOM stripped) cases run here",
    ),
    ("textdecoder-byte-order-marks.any.js: utf-16 BOM cases", "UTF-16 is out of scope"),
    ("decode-utf8.any.js: transferred/detached buffer cases", "JS ArrayBuffer semantics, not decoding"),
];

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn decoder() -> StreamDecoder {
    StreamDecoder::new(Options { format: Format::Text, ..Options::default() })
}

fn run(pieces: &[&[u8]]) -> Update {
    common::decode(&Options { format: Format::Text, ..Options::default() }, pieces)
}

fn show(s: &str) -> String {
    format!("{:?}", s)
}

fn describe_split(pieces: &[&[u8]]) -> String {
    let lens: Vec<usize> = pieces.iter().map(|p| p.len()).collect();
    format!("pieces of {:?}", lens)
}

fn cases() -> Vec<Value> {
    serde_json::from_str::<Value>(FIXTURE).expect("textdecoder.json parses").as_array().unwrap().clone()
}

fn check_update(name: &str, how: &str, got: &Update, expected: &str, failures: &mut Vec<String>) -> bool {
    let mut ok = true;
    if got.text != expected {
        failures.push(format!("[{}] split {}: text {} != expected {}", name, how, show(&got.text), show(expected)));
        ok = false;
    }
    if !got.done {
        failures.push(format!("[{}] split {}: done is false after finish()", name, how));
        ok = false;
    }
    if !got.errors.is_empty() || !got.events.is_empty() || !got.reasoning.is_empty() {
        failures.push(format!(
            "[{}] split {}: unexpected errors {:?} / events {:?} / reasoning {:?}",
            name, how, got.errors, got.events, got.reasoning
        ));
        ok = false;
    }
    ok
}

#[test]
fn wpt_textdecoder_all_splits() {
    let cases = cases();
    let mut failures = Vec::new();
    let mut splits_run = 0usize;
    for c in &cases {
        let name = c["name"].as_str().unwrap();
        let input = unhex(c["bytes_hex"].as_str().unwrap());
        let expected = c["expected"].as_str().unwrap();
        for pieces in common::all_splits(&input, RANDOM_RUNS) {
            splits_run += 1;
            let got = run(&pieces);
            if !check_update(name, &describe_split(&pieces), &got, expected, &mut failures) {
                break; // one failing split per case is enough to report
            }
        }
    }
    eprintln!("wpt_textdecoder_all_splits: {} cases, {} decodes", cases.len(), splits_run);
    assert!(failures.is_empty(), "{} failure(s):\n{}", failures.len(), failures.join("\n"));
}

/// The edges path (`Utf8Decoder::edges`, what the JS glue runs for a chunk of plain text it
/// does not hand over: the decoder sees its length and first and last four bytes, a strict
/// decoder decodes the middle, and the decoder is restored and decodes the chunk itself when
/// the middle is ill-formed) gives the expected text under every split. `from_utf8` stands
/// in for the engine's builtins, which reject what it rejects.
#[test]
fn wpt_textdecoder_edges_path_all_splits() {
    use chunkwise::utf8::Utf8Decoder;
    let cases = cases();
    let mut failures = Vec::new();
    let mut middles = 0;
    for c in &cases {
        let name = c["name"].as_str().unwrap();
        let input = unhex(c["bytes_hex"].as_str().unwrap());
        let expected = c["expected"].as_str().unwrap();
        for pieces in common::all_splits(&input, RANDOM_RUNS) {
            let mut d = Utf8Decoder::new();
            let mut out = String::new();
            for piece in &pieces {
                let n = piece.len();
                let edge = |at: usize| -> [u8; 4] { std::array::from_fn(|i| piece.get(at + i).copied().unwrap_or(0)) };
                let before = d.clone();
                let middle = d.edges(n, edge(0), edge(n.saturating_sub(4))).and_then(|e| {
                    let text = std::str::from_utf8(&piece[e.head..n - e.tail]).ok()?;
                    Some((e.completed, text))
                });
                match middle {
                    Some((completed, text)) => {
                        out.extend(completed);
                        out.push_str(text);
                        middles += 1;
                    }
                    None => {
                        d = before;
                        d.decode(piece, &mut out, false);
                    }
                }
            }
            d.decode(&[], &mut out, true);
            if out != expected {
                failures.push(format!(
                    "[{name}] split {}: text {} != expected {}",
                    describe_split(&pieces),
                    show(&out),
                    show(expected)
                ));
                break;
            }
        }
    }
    assert!(failures.is_empty(), "{} failure(s):\n{}", failures.len(), failures.join("\n"));
    assert!(middles > 100, "{middles} middles decoded elsewhere");
}

#[test]
fn wpt_textdecoder_upstream_chunking() {
    let cases = cases();
    let mut failures = Vec::new();
    let mut n = 0;
    for c in &cases {
        let Some(chunks) = c.get("chunks_hex").and_then(Value::as_array) else { continue };
        n += 1;
        let name = c["name"].as_str().unwrap();
        let owned: Vec<Vec<u8>> = chunks.iter().map(|h| unhex(h.as_str().unwrap())).collect();
        let pieces: Vec<&[u8]> = owned.iter().map(|v| v.as_slice()).collect();
        let got = run(&pieces);
        check_update(
            name,
            &format!("upstream chunks {}", describe_split(&pieces)),
            &got,
            c["expected"].as_str().unwrap(),
            &mut failures,
        );
    }
    eprintln!("wpt_textdecoder_upstream_chunking: {} cases", n);
    assert!(n > 0);
    assert!(failures.is_empty(), "{} failure(s):\n{}", failures.len(), failures.join("\n"));
}

/// The output of each call, as upstream asserts it for `decode(chunk, {stream: true})`
/// (`push`), `decode(chunk)` (`final` = push + finish) and `decode()` (`finish`).
#[test]
fn wpt_textdecoder_per_call_outputs() {
    let cases = cases();
    let mut failures = Vec::new();
    let mut n = 0;
    for c in &cases {
        let Some(steps) = c.get("steps").and_then(Value::as_array) else { continue };
        n += 1;
        let name = c["name"].as_str().unwrap();
        let mut d = decoder();
        for (i, s) in steps.iter().enumerate() {
            let kind = s["kind"].as_str().unwrap();
            let want = s["out"].as_str().unwrap();
            let got = match kind {
                "push" => d.push(&unhex(s["push_hex"].as_str().unwrap())).text,
                "final" => {
                    let mut u = d.push(&unhex(s["push_hex"].as_str().unwrap()));
                    u.merge(d.finish());
                    u.text
                }
                "finish" => d.finish().text,
                other => panic!("unknown step kind {other}"),
            };
            if got != want {
                failures.push(format!(
                    "[{}] step {} ({} {}): got {} expected {}",
                    name,
                    i + 1,
                    kind,
                    s.get("push_hex").and_then(Value::as_str).unwrap_or(""),
                    show(&got),
                    show(want)
                ));
                break;
            }
        }
    }
    eprintln!("wpt_textdecoder_per_call_outputs: {} cases", n);
    assert!(n > 0);
    assert!(failures.is_empty(), "{} failure(s):\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn wpt_textdecoder_inventory() {
    let cases = cases();
    let upstream = cases.iter().filter(|c| c["expected_from"] == "upstream").count();
    let oracle = cases.iter().filter(|c| c["expected_from"] == "oracle").count();
    eprintln!("textdecoder.json: {} cases ({} upstream-asserted, {} oracle)", cases.len(), upstream, oracle);
    eprintln!("not applicable ({}):", NOT_APPLICABLE.len());
    for (what, why) in NOT_APPLICABLE {
        eprintln!("  - {what}: {why}");
    }
    assert!(cases.len() >= 300, "fixture unexpectedly small: {}", cases.len());
    for c in &cases {
        assert!(c["source"].as_str().is_some_and(|s| !s.is_empty()), "case without source: {}", c["name"]);
    }
}
