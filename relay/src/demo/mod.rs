//! The built-in demo model: a fixed, realistic answer (reasoning first, then Markdown with a
//! heading, a list, a code block, a table, a quote and emoji), in Chinese when the last user
//! message contains Chinese and in English otherwise, streamed token by token at a realistic
//! rate. It needs no network and no key, so a fresh checkout shows the whole pipeline.
//!
//! The answer is deterministic (the files beside this one), so tests anywhere can compare
//! what a client shows with [`answer`].

use std::time::Duration;

use crate::chat::Prompt;
use crate::config::DemoConfig;
use crate::generation::{Generation, Kind};
use chunkwise::usage::Usage;

/// The model name that always selects the demo model.
pub const MODEL: &str = "demo";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

/// `(reasoning, answer)` for a language.
pub fn answer(lang: Lang) -> (&'static str, &'static str) {
    match lang {
        Lang::Zh => (include_str!("reasoning.zh.txt").trim_end(), include_str!("answer.zh.md").trim_end()),
        Lang::En => (include_str!("reasoning.en.txt").trim_end(), include_str!("answer.en.md").trim_end()),
    }
}

/// Chinese if the last user message has a CJK character.
pub fn language(prompt: &Prompt) -> Lang {
    let last_user =
        prompt.messages.iter().rev().find(|(role, _)| role == "user").map(|(_, t)| t.as_str()).unwrap_or("");
    if last_user.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c) || ('\u{3400}'..='\u{4dbf}').contains(&c)) {
        Lang::Zh
    } else {
        Lang::En
    }
}

/// Splits text into token-sized pieces the way a model's stream looks: English by words
/// (long words cut at 8 characters), Chinese one to three characters at a time.
pub fn tokens(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut n) = (0, 0);
    for (i, c) in s.char_indices() {
        let end = i + c.len_utf8();
        n += 1;
        let cut = if c.is_ascii() { c == ' ' || c == '\n' || n >= 8 } else { n > out.len() % 3 };
        if cut {
            out.push(&s[start..end]);
            start = end;
            n = 0;
        }
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

/// Streams the demo answer into `gen`, honouring `max_tokens`.
pub async fn run(gen: &Generation, prompt: &Prompt, cfg: &DemoConfig) {
    let (reasoning, text) = answer(language(prompt));
    gen.start();
    if cfg.first_token_ms > 0 {
        tokio::time::sleep(Duration::from_millis(cfg.first_token_ms)).await;
    }
    let mut interval = tokio::time::interval(Duration::from_millis(cfg.token_ms.max(1)));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let budget = prompt.max_tokens as u64;
    let mut emitted = 0u64;
    let pieces = tokens(reasoning)
        .into_iter()
        .map(|t| (Kind::Reasoning, t))
        .chain(tokens(text).into_iter().map(|t| (Kind::Content, t)));
    let mut finish = "stop";
    for (kind, piece) in pieces {
        if emitted == budget {
            finish = "length";
            break;
        }
        if cfg.token_ms > 0 {
            interval.tick().await;
        } else if emitted % 32 == 31 {
            tokio::task::yield_now().await;
        }
        if let Err(e) = gen.room().await {
            gen.fail(e);
            finish = "error";
            break;
        }
        gen.push_delta(kind, piece);
        emitted += 1;
    }
    let prompt_tokens = (prompt.chars as u64).div_ceil(2).max(1);
    gen.end(
        finish,
        Some(Usage { prompt: Some(prompt_tokens), completion: Some(emitted), total: None, reasoning: None }),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_join_back_and_look_like_tokens() {
        for lang in [Lang::Zh, Lang::En] {
            let (r, a) = answer(lang);
            assert_eq!(tokens(r).concat(), r);
            assert_eq!(tokens(a).concat(), a);
            assert!(tokens(a).iter().all(|t| t.chars().count() <= 8));
            assert!(tokens(a).len() > 150, "{lang:?}");
        }
        let (_, zh) = answer(Lang::Zh);
        for needle in ["```js", "| --- |", "🚀", "## ", "> "] {
            assert!(zh.contains(needle), "{needle}");
        }
    }
}
