//! Captured and documented provider streams (openai-python's recorded bodies, vercel/ai's
//! provider fixtures, the Ollama and Dify API docs), stored byte-exact as
//! `tests/fixtures/providers/<provider>/<name>.txt` with `<name>.expected.json` written by the
//! independent oracle `tests/fixtures/providers/make_expected.py` (see `tests/fixtures/SOURCES.md`).
//!
//! Each body runs whole, one byte at a time, cut in two at every position (every `stride`-th
//! position for bodies over 4 KiB) and cut at random; the merged update must match the
//! expectation in every split. Fields an expectation lists in `not_asserted` are reported,
//! with the reason, and not compared.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use chunkwise::usage::Usage;
use chunkwise::{Format, Options, StreamDecoder, Update};
use serde_json::Value;

const RANDOM_RUNS: u64 = 32;
const FULL_CUT_LIMIT: usize = 4096;
/// The `*.expected.json` files under tests/fixtures/providers.
const MIN_FIXTURES: usize = 19;

fn format_of(name: &str) -> Format {
    match name {
        "openai" => Format::OpenAi,
        "openai-responses" => Format::OpenAiResponses,
        "anthropic" => Format::Anthropic,
        "gemini" => Format::Gemini,
        "ollama" => Format::Ollama,
        "dashscope" => Format::DashScope,
        "dify" => Format::Dify,
        other => panic!("unknown format {other:?} in a fixture"),
    }
}

struct Fixture {
    name: String,
    body: Vec<u8>,
    expected: Value,
}

fn fixtures() -> Vec<Fixture> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/providers");
    let mut out = Vec::new();
    let mut dirs: Vec<PathBuf> =
        fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
    dirs.sort();
    for dir in dirs {
        if dir.file_name().unwrap() == "upstream" {
            continue;
        }
        let mut files: Vec<PathBuf> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        for f in files {
            let fname = f.file_name().unwrap().to_str().unwrap().to_owned();
            let Some(stem) = fname.strip_suffix(".expected.json") else { continue };
            let body_path = dir.join(format!("{stem}.txt"));
            let body = fs::read(&body_path).unwrap_or_else(|e| panic!("{}: {e}", body_path.display()));
            let expected: Value = serde_json::from_str(&fs::read_to_string(&f).unwrap()).unwrap();
            out.push(Fixture {
                name: format!("{}/{}", dir.file_name().unwrap().to_str().unwrap(), stem),
                body,
                expected,
            });
        }
    }
    // A missing or emptied fixture directory must fail, not pass with nothing checked.
    assert!(out.len() >= MIN_FIXTURES, "expected at least {MIN_FIXTURES} provider fixtures, found {}", out.len());
    out
}

fn splits(input: &[u8]) -> Vec<Vec<&[u8]>> {
    if input.len() <= FULL_CUT_LIMIT {
        return common::all_splits(input, RANDOM_RUNS);
    }
    let stride = input.len().div_ceil(FULL_CUT_LIMIT / 2);
    let mut out = vec![vec![input], common::split_bytes(input)];
    for at in (0..=input.len()).step_by(stride) {
        out.push(common::split_at(input, at));
    }
    for seed in 0..RANDOM_RUNS {
        out.push(common::split_random(input, seed, 1 + (seed as usize * 37 % 1500)));
    }
    out
}

/// Merged update of all pushes, and whether `done` was already set before `finish()`.
fn run(format: Format, pieces: &[&[u8]]) -> (Update, bool) {
    let r = run_with_finish(format, pieces);
    (r.all, r.done_before_finish)
}

struct Run {
    /// The merged update of every push and `finish()`.
    all: Update,
    done_before_finish: bool,
    /// What `finish()` alone produced.
    fin: Update,
    /// Every update's usage merged into one `Usage` as it came (what a relay does), in
    /// OpenAI's words; `None` when no update carried a usage object.
    usage_streamed: Option<String>,
}

fn run_with_finish(format: Format, pieces: &[&[u8]]) -> Run {
    let mut d = StreamDecoder::new(Options { format, ..Options::default() });
    let mut all = Update::default();
    let mut usage: Option<Usage> = None;
    let mut take = |u: &Update| {
        if let Some(json) = &u.usage {
            usage.get_or_insert_with(Usage::default).merge_json(json);
        }
    };
    for p in pieces {
        let u = d.push(p);
        take(&u);
        all.merge(u);
    }
    let done_before_finish = all.done;
    let fin = d.finish();
    take(&fin);
    all.merge(fin.clone());
    Run { all, done_before_finish, fin, usage_streamed: usage.map(|u| u.to_openai_json()) }
}

/// The final usage object of a merged update, in OpenAI's words.
fn usage_final(got: &Update) -> Option<String> {
    got.usage.as_ref().map(|json| {
        let mut u = Usage::default();
        u.merge_json(json);
        u.to_openai_json()
    })
}

/// Compares a `to_openai_json` text (or its absence) with the oracle's `usage_openai`.
fn compare_usage_openai(what: &str, exp: &Value, got: Option<&str>, bad: &mut Vec<String>) {
    let got_value: Option<Value> =
        got.map(|u| serde_json::from_str(u).unwrap_or_else(|e| Value::String(format!("<not JSON: {e}: {u}>"))));
    let want = if exp["usage_openai"].is_null() { None } else { Some(exp["usage_openai"].clone()) };
    if got_value != want {
        bad.push(format!("{what} {got:?} != expected {}", exp["usage_openai"]));
    }
}

/// Compares one run with the expectation; returns the list of mismatches.
fn compare(exp: &Value, got: &Update, done_before_finish: bool) -> Vec<String> {
    let skip = |field: &str| exp["not_asserted"].get(field).is_some();
    let mut bad = Vec::new();
    if !skip("text") && got.text != exp["text"].as_str().unwrap() {
        bad.push(format!("text {:?} != expected {:?}", got.text, exp["text"].as_str().unwrap()));
    }
    if !skip("reasoning") && got.reasoning != exp["reasoning"].as_str().unwrap() {
        bad.push(format!("reasoning {:?} != expected {:?}", got.reasoning, exp["reasoning"].as_str().unwrap()));
    }
    if !skip("finish_reason") && got.finish_reason.as_deref() != exp["finish_reason"].as_str() {
        bad.push(format!("finish_reason {:?} != expected {:?}", got.finish_reason, exp["finish_reason"]));
    }
    if !skip("usage") {
        let got_usage: Option<Value> = got.usage.as_ref().map(|u| {
            serde_json::from_str(u).unwrap_or_else(|e| Value::String(format!("<usage is not JSON: {e}: {u}>")))
        });
        let want = if exp["usage"].is_null() { None } else { Some(exp["usage"].clone()) };
        if got_usage != want {
            bad.push(format!("usage {:?} != expected {}", got.usage, exp["usage"]));
        }
        compare_usage_openai("usage in OpenAI's words", exp, usage_final(got).as_deref(), &mut bad);
    }
    if !skip("errors") {
        // kind: the provider's own error type; null in the expectation = the provider sent none,
        // so any kind is accepted. code: compared as JSON when the provider sent one.
        let want = exp["errors"].as_array().unwrap();
        let same = got.errors.len() == want.len()
            && got.errors.iter().zip(want).all(|(g, w)| {
                let kind_ok = w["kind"].as_str().is_none_or(|k| g.kind == k);
                let code_ok = match w["code"].as_str() {
                    None => true,
                    Some(c) => {
                        g.code.as_deref().and_then(|gc| serde_json::from_str::<Value>(gc).ok())
                            == serde_json::from_str::<Value>(c).ok()
                    }
                };
                kind_ok && code_ok && g.message == w["message"].as_str().unwrap()
            });
        if !same {
            bad.push(format!("errors {:?} != expected {}", got.errors, exp["errors"]));
        }
    }
    if !skip("done") && done_before_finish != exp["done"].as_bool().unwrap() {
        bad.push(format!("done before finish() = {} != expected {}", done_before_finish, exp["done"]));
    }
    if !got.done {
        bad.push("done is false after finish()".to_owned());
    }
    bad
}

fn describe(pieces: &[&[u8]]) -> String {
    if pieces.len() <= 3 {
        format!("{:?}", pieces.iter().map(|p| p.len()).collect::<Vec<_>>())
    } else {
        format!("{} pieces, first {:?}", pieces.len(), pieces.iter().take(6).map(|p| p.len()).collect::<Vec<_>>())
    }
}

#[test]
fn provider_fixtures_all_splits() {
    let fixtures = fixtures();
    let mut failures = Vec::new();
    let mut decodes = 0;
    for fx in &fixtures {
        let format = format_of(fx.expected["format"].as_str().unwrap());
        for pieces in splits(&fx.body) {
            decodes += 1;
            let Run { all: got, done_before_finish, fin, usage_streamed } = run_with_finish(format, &pieces);
            let mut bad = compare(&fx.expected, &got, done_before_finish);
            if fx.expected["not_asserted"].get("usage").is_none() {
                compare_usage_openai(
                    "usage merged update by update",
                    &fx.expected,
                    usage_streamed.as_deref(),
                    &mut bad,
                );
            }
            // every fixture body ends with a complete event or line, so all content must
            // already have come out of push(); finish() only closes the stream
            if !fin.text.is_empty() || !fin.reasoning.is_empty() {
                bad.push(format!("finish() still produced text {:?} / reasoning {:?}", fin.text, fin.reasoning));
            }
            if !bad.is_empty() {
                failures.push(format!("[{}] split {}:\n    {}", fx.name, describe(&pieces), bad.join("\n    ")));
                break; // first failing split per fixture
            }
        }
    }
    eprintln!("provider_fixtures_all_splits: {} fixtures, {} decodes", fixtures.len(), decodes);
    assert!(failures.is_empty(), "{} fixture(s) failed:\n{}", failures.len(), failures.join("\n"));
}

/// Every split must give the same merged update as the whole body, field for field, including
/// the fields an expectation leaves unasserted.
#[test]
fn provider_fixtures_split_invariance() {
    let mut failures = Vec::new();
    for fx in fixtures() {
        let format = format_of(fx.expected["format"].as_str().unwrap());
        let (whole, whole_done) = run(format, &[&fx.body]);
        for pieces in splits(&fx.body) {
            let (got, done) = run(format, &pieces);
            let same = got.text == whole.text
                && got.reasoning == whole.reasoning
                && got.finish_reason == whole.finish_reason
                && got.usage == whole.usage
                && got.errors == whole.errors
                && done == whole_done;
            if !same {
                failures.push(format!(
                    "[{}] split {} differs from the whole body: {:?} vs {:?}",
                    fx.name,
                    describe(&pieces),
                    got,
                    whole
                ));
                break;
            }
        }
    }
    assert!(failures.is_empty(), "{} failure(s):\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn provider_fixtures_inventory() {
    let fixtures = fixtures();
    eprintln!("provider fixtures: {}", fixtures.len());
    let mut unasserted = 0;
    for fx in &fixtures {
        assert!(!fx.expected["source"].as_str().unwrap().is_empty(), "{} has no source", fx.name);
        assert!(fx.expected.get("usage_openai").is_some(), "{} has no usage_openai: rerun make_expected.py", fx.name);
        if let Some(map) = fx.expected["not_asserted"].as_object() {
            for (field, why) in map {
                unasserted += 1;
                eprintln!("  not asserted: {} {}: {}", fx.name, field, why.as_str().unwrap());
            }
        }
    }
    eprintln!("  {} field(s) not asserted", unasserted);
}

/// The answer's id as an independent reading of the body finds it: serde_json over each
/// message (`data:` lines, NDJSON lines, or a whole JSON body), the first that names one.
fn oracle_response_id(format: &str, body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let text = text.trim_start_matches('\u{FEFF}').trim();
    let messages: Vec<Value> = match serde_json::from_str::<Value>(text) {
        Ok(Value::Array(items)) => items,
        Ok(one) => vec![one],
        Err(_) => text
            .lines()
            .filter_map(|l| l.strip_prefix("data:").or(Some(l)))
            .filter_map(|l| serde_json::from_str(l.trim()).ok())
            .collect(),
    };
    messages.iter().find_map(|m| {
        let id = match format {
            "openai" => &m["id"],
            "openai-responses" => &m["response"]["id"],
            "anthropic" if m["type"] == "message_start" => &m["message"]["id"],
            "gemini" => &m["responseId"],
            "dify" => &m["message_id"],
            _ => &Value::Null,
        };
        id.as_str().filter(|s| !s.is_empty()).map(str::to_owned)
    })
}

#[test]
fn provider_fixtures_response_id() {
    let mut with_id = 0;
    for fx in fixtures() {
        let name = fx.expected["format"].as_str().unwrap();
        let want = oracle_response_id(name, &fx.body);
        with_id += want.is_some() as usize;
        for pieces in splits(&fx.body) {
            let mut d = StreamDecoder::new(Options { format: format_of(name), ..Options::default() });
            for p in &pieces {
                d.push(p);
            }
            d.finish();
            assert_eq!(d.response_id(), want.as_deref(), "[{}] split {}", fx.name, describe(&pieces));
        }
    }
    assert!(with_id >= 8, "only {with_id} fixtures name an id");
}
