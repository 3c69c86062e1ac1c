//! WHATWG event-stream conformance: vectors from WPT `eventsource/` and from
//! rexxars/eventsource-parser's tests, stored in `tests/fixtures/sse/cases.json`
//! (see `tests/fixtures/SOURCES.md`).
//!
//! Every case runs through `Format::Sse` whole, one byte at a time, cut in two at every
//! position, cut at random, and with upstream's own feed() chunking; the merged events
//! (`event`, `data`, `id` = last event ID) must equal the expected list in every split.

mod common;

use chunkwise::{Event, Format, Options, StreamDecoder, Update};
use serde_json::Value;

const FIXTURE: &str = include_str!("fixtures/sse/cases.json");
const RANDOM_RUNS: u64 = 24;

/// Upstream tests not run here, with the reason. Counted, never silently skipped.
const NOT_APPLICABLE: &[(&str, &str)] = &[
    (
        "wpt format-mime-bogus / -trailing-semicolon / -valid-bogus",
        "Content-Type handling is the HTTP client's job, not the body decoder's",
    ),
    (
        "wpt event-data.any.js",
        "its server script resources/message2.py is not in the stored WPT copy, so the body is unknown",
    ),
    (
        "wpt format-field-id-2.any.js",
        "same server body as format-field-id (run once); the second half tests Last-Event-ID on reconnect",
    ),
    (
        "wpt format-field-retry*.any.js retry timing",
        "retry is not exposed in Update; the events of those bodies are checked",
    ),
    ("wpt reconnect halves of format-field-id / -data-before-final-empty-line", "reconnection is network behaviour"),
    ("eventsource-parser 'stream of time event name' (x2)", "event data is new Date() at run time"),
    (
        "eventsource-parser 'stream of multi-byte events'",
        "expectedMultiByteEvents is not in the stored test/multibyte.ts",
    ),
    (
        "eventsource-parser 'stream of leading bom' / 'byte-order mark (multiple places)'",
        "their fixture functions are newer than the stored test/fixtures.ts",
    ),
    ("eventsource-parser 'huge data chunks'", "a 4.8 MB event is over chunkwise's 1 MiB default bound by design"),
    (
        "eventsource-parser maxBufferSize overflow / feed-throws / reset() tests",
        "parser-specific buffer option and API",
    ),
    (
        "eventsource-parser onComment / onRetry / onError callback contents",
        "comments, retry and parser errors are not exposed in Update",
    ),
    (
        "eventsource-parser TextDecoder-then-parser string tests",
        "they feed decoded strings; the byte-level BOM cases run from WPT",
    ),
    ("eventsource-parser createParser(fn) TypeError", "JS API misuse"),
];

fn decoder() -> StreamDecoder {
    StreamDecoder::new(Options { format: Format::Sse, ..Options::default() })
}

fn run(pieces: &[&[u8]]) -> Update {
    common::decode(&Options { format: Format::Sse, ..Options::default() }, pieces)
}

fn expected_events(c: &Value) -> Vec<Event> {
    c["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| Event {
            event: e["event"].as_str().unwrap().to_owned(),
            data: e["data"].as_str().unwrap().to_owned(),
            id: e["id"].as_str().unwrap().to_owned(),
        })
        .collect()
}

fn first_difference(got: &[Event], want: &[Event]) -> String {
    for i in 0..got.len().max(want.len()) {
        match (got.get(i), want.get(i)) {
            (Some(g), Some(w)) if g == w => continue,
            (g, w) => {
                return format!("event #{i}: got {:?}, expected {:?} ({} vs {} events)", g, w, got.len(), want.len())
            }
        }
    }
    String::new()
}

fn describe(pieces: &[&[u8]]) -> String {
    if pieces.len() <= 3 {
        format!("{:?}", pieces.iter().map(|p| p.len()).collect::<Vec<_>>())
    } else {
        format!("{} pieces {:?}…", pieces.len(), pieces.iter().take(8).map(|p| p.len()).collect::<Vec<_>>())
    }
}

fn check(name: &str, how: &str, got: &Update, want: &[Event], failures: &mut Vec<String>) -> bool {
    if got.events != want {
        failures.push(format!("[{name}] split {how}: {}", first_difference(&got.events, want)));
        return false;
    }
    if !got.done || !got.text.is_empty() || !got.errors.is_empty() {
        failures.push(format!(
            "[{name}] split {how}: done={} text={:?} errors={:?} (expected done, no text, no errors)",
            got.done, got.text, got.errors
        ));
        return false;
    }
    true
}

fn cases() -> Vec<Value> {
    serde_json::from_str::<Value>(FIXTURE).unwrap().as_array().unwrap().clone()
}

#[test]
fn sse_cases_all_splits() {
    let cases = cases();
    let mut failures = Vec::new();
    let mut decodes = 0;
    for c in &cases {
        let name = c["name"].as_str().unwrap();
        let input = c["input"].as_str().unwrap().as_bytes();
        let want = expected_events(c);
        for pieces in common::all_splits(input, RANDOM_RUNS) {
            decodes += 1;
            if !check(name, &describe(&pieces), &run(&pieces), &want, &mut failures) {
                break;
            }
        }
    }
    eprintln!("sse_cases_all_splits: {} cases, {} decodes", cases.len(), decodes);
    assert!(failures.is_empty(), "{} failure(s):\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn sse_cases_upstream_chunking() {
    let cases = cases();
    let mut failures = Vec::new();
    let mut n = 0;
    for c in &cases {
        let Some(chunks) = c.get("chunks").and_then(Value::as_array) else { continue };
        n += 1;
        let pieces: Vec<&[u8]> = chunks.iter().map(|s| s.as_str().unwrap().as_bytes()).collect();
        check(c["name"].as_str().unwrap(), "upstream feed() chunks", &run(&pieces), &expected_events(c), &mut failures);
    }
    eprintln!("sse_cases_upstream_chunking: {n} cases");
    assert!(n > 0);
    assert!(failures.is_empty(), "{} failure(s):\n{}", failures.len(), failures.join("\n"));
}

/// An event is dispatched by the push that completes it (not held back until `finish`).
#[test]
fn sse_cases_dispatch_before_finish() {
    let cases = cases();
    let mut failures = Vec::new();
    for c in &cases {
        let name = c["name"].as_str().unwrap();
        let mut d = decoder();
        let pushed = d.push(c["input"].as_str().unwrap().as_bytes());
        let want = expected_events(c);
        if pushed.events != want {
            failures
                .push(format!("[{name}] whole input, before finish(): {}", first_difference(&pushed.events, &want)));
        }
        let fin = d.finish();
        if !fin.events.is_empty() {
            failures
                .push(format!("[{name}] finish() dispatched {:?}; an unfinished event must be discarded", fin.events));
        }
    }
    assert!(failures.is_empty(), "{} failure(s):\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn sse_inventory() {
    let cases = cases();
    let wpt = cases.iter().filter(|c| c["name"].as_str().unwrap().starts_with("wpt")).count();
    eprintln!("cases.json: {} cases ({} WPT, {} eventsource-parser)", cases.len(), wpt, cases.len() - wpt);
    eprintln!("not applicable ({}):", NOT_APPLICABLE.len());
    for (what, why) in NOT_APPLICABLE {
        eprintln!("  - {what}: {why}");
    }
    assert!(cases.len() >= 60);
    for c in &cases {
        assert!(!c["source"].as_str().unwrap().is_empty());
    }
}
