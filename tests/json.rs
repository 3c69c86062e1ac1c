//! The JSON reader accepts and rejects exactly what serde_json does (the oracle), and
//! decodes strings to the same text, on hand-picked edge cases and on random texts; the JSON
//! string writer writes what serde_json (and the reader) read back as the same text.
#![allow(clippy::unit_arg)] // `Ok(slot = value?)`, as in src/formats/

mod common;

use chunkwise::json::{write_str, Reader, MAX_DEPTH};
use common::Rng;

fn reader_accepts(text: &str) -> bool {
    Reader::parse(text, |r| r.skip()).is_ok()
}

fn oracle_accepts(text: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(text).is_ok()
}

/// Lone surrogate escapes are the one documented difference: serde_json rejects them, the
/// reader gives U+FFFD (as JSON.parse keeps them and a UTF-8 decoder replaces them).
fn has_lone_surrogate_escape(text: &str) -> bool {
    text.contains("\\ud8") || text.contains("\\udc") || text.contains("\\uD8") || text.contains("\\uDC")
}

#[test]
fn edge_cases_agree_with_serde_json() {
    let cases = [
        "0",
        "-0",
        "01",
        "-",
        "1.",
        ".5",
        "1e",
        "1e+",
        "1E-7",
        "-12.5e3",
        "[1,]",
        "[,1]",
        "{}",
        "[]",
        "{\"a\":}",
        "{\"a\" 1}",
        "{a:1}",
        "{\"a\":1,}",
        "\"\\x\"",
        "\"\\u12\"",
        "\"\\u00e9\"",
        "\"\\ud83d\\ude00\"",
        "\"tab\there\"",
        "\"\u{7f}\"",
        "tru",
        "true",
        "nul",
        "null ",
        " [ true , false , null ] ",
        "{\"a\":{\"b\":[{}]}}x",
        "\"\\/\"",
        "[\"\\\"\"]",
        "1 2",
        "",
        " ",
        "\"unterminated",
        "[[[]]]",
        "{\"\":\"\"}",
        "\"\\uD834\\uDD1E\"",
    ];
    for text in cases {
        assert_eq!(reader_accepts(text), oracle_accepts(text), "{text:?}");
    }
}

#[test]
fn nesting_is_bounded_like_serde_json() {
    let ok = "[".repeat(MAX_DEPTH as usize) + &"]".repeat(MAX_DEPTH as usize);
    let deep = "[".repeat(MAX_DEPTH as usize + 1) + &"]".repeat(MAX_DEPTH as usize + 1);
    assert!(reader_accepts(&ok) && oracle_accepts(&ok));
    assert!(!reader_accepts(&deep) && !oracle_accepts(&deep));
    let very_deep = "[".repeat(100_000);
    assert!(!reader_accepts(&very_deep), "no stack overflow, an error");
}

#[test]
fn strings_decode_like_serde_json() {
    for text in ["\"plain\"", "\"a\\nb\\tc\\\\d\\\"e\\/f\\b\\f\\r\"", "\"\\u4f60\\u597d 中文\"", "\"\\ud83d\\ude00 x\""]
    {
        let ours = Reader::parse(text, |r| r.opt_str()).unwrap().unwrap();
        let theirs: String = serde_json::from_str(text).unwrap();
        assert_eq!(ours, theirs);
    }
    let lone = Reader::parse("\"a\\ud800b\"", |r| r.opt_str()).unwrap().unwrap();
    assert_eq!(lone, "a\u{FFFD}b");
}

#[test]
fn raw_values_are_exact_slices() {
    let text = r#"{"usage": {"a": [1, 2.5e3, "x"]}, "n": null}"#;
    let mut usage = None;
    let mut n = Some("unset");
    Reader::parse(text, |r| {
        r.object(|r, key| match key {
            "usage" => Ok(usage = r.opt_raw()?),
            "n" => Ok(n = r.opt_raw()?),
            _ => r.skip(),
        })
    })
    .unwrap();
    assert_eq!(usage, Some(r#"{"a": [1, 2.5e3, "x"]}"#));
    assert_eq!(n, None);
}

fn random_json(rng: &mut Rng, depth: u32, out: &mut String) {
    const ATOMS: &[&str] = &[
        "0",
        "-1",
        "3.25",
        "1e9",
        "-0.5E-3",
        "true",
        "false",
        "null",
        "\"\"",
        "\"a\"",
        "\"中\\n\"",
        "\"\\u00e9\"",
        "01",
        "1.",
        "+1",
        "tru",
        "\"\\q\"",
        "\"\t\"",
        "nan",
    ];
    const JUNK: &[&str] = &[",", ":", "]", "}", "[", "{", " ", "\"", "\\"];
    match rng.below(if depth > 3 { 2 } else { 5 }) {
        0 => out.push_str(ATOMS[rng.below(ATOMS.len())]),
        1 => out.push_str(JUNK[rng.below(JUNK.len())]),
        2 => {
            out.push('[');
            for i in 0..rng.below(4) {
                if i > 0 || rng.below(20) == 0 {
                    out.push(',');
                }
                random_json(rng, depth + 1, out);
            }
            out.push(']');
        }
        _ => {
            out.push('{');
            for i in 0..rng.below(4) {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(["\"k\"", "\"content\"", "k", "\"\\u0041\""][rng.below(4)]);
                out.push_str([":", ": ", ""][rng.below(3)]);
                random_json(rng, depth + 1, out);
            }
            out.push('}');
        }
    }
}

#[test]
fn random_texts_agree_with_serde_json() {
    let mut rng = Rng::new(2024);
    let mut accepted = 0;
    for _ in 0..20_000 {
        let mut text = String::new();
        random_json(&mut rng, 0, &mut text);
        if has_lone_surrogate_escape(&text) {
            continue;
        }
        let ours = reader_accepts(&text);
        assert_eq!(ours, oracle_accepts(&text), "{text:?}");
        accepted += ours as u32;
    }
    assert!(accepted > 2_000, "the generator must produce valid JSON too ({accepted})");
}

#[test]
fn written_strings_read_back_the_same() {
    let mut rng = Rng::new(99);
    let alphabet =
        ['a', '"', '\\', '/', '\n', '\r', '\t', '\u{0}', '\u{1f}', '\u{7f}', 'é', '中', '😀', '\u{2028}', ' '];
    let mut texts: Vec<String> = (0..0x80u8).map(|b| char::from(b).to_string()).collect();
    for _ in 0..3_000 {
        let len = rng.below(12);
        texts.push((0..len).map(|_| alphabet[rng.below(alphabet.len())]).collect());
    }
    for s in texts {
        let mut out = String::from("x");
        write_str(&mut out, &s);
        let written = &out[1..];
        assert_eq!(serde_json::from_str::<String>(written).unwrap(), s, "{written}");
        assert_eq!(Reader::parse(written, |r| r.opt_str()).unwrap().as_deref(), Some(s.as_str()));
        // Only what RFC 8259 requires is escaped: the rest stays as it is.
        assert!(written.chars().all(|c| c >= ' '), "{written:?}");
        assert_eq!(written.len(), serde_json::to_string(&s).unwrap().len() + extra_len_over_serde(&s));
    }
}

/// serde_json writes U+0008 and U+000C as `\b` and `\f`; the writer as `\u0008`, `\u000c`.
fn extra_len_over_serde(s: &str) -> usize {
    s.chars().filter(|&c| c == '\u{8}' || c == '\u{c}').count() * 4
}
