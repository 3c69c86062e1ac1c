//! Token counts in OpenAI's words, read from any provider's usage object.
//!
//! Every provider counts tokens, each under its own names:
//!
//! | provider | prompt | completion | total | reasoning |
//! |---|---|---|---|---|
//! | OpenAI Chat Completions, Dify, compatible APIs | `prompt_tokens` | `completion_tokens` | `total_tokens` | `completion_tokens_details.reasoning_tokens` |
//! | OpenAI Responses, DashScope | `input_tokens` | `output_tokens` | `total_tokens` | `output_tokens_details.reasoning_tokens` |
//! | Anthropic | `input_tokens` + `cache_creation_input_tokens` + `cache_read_input_tokens` | `output_tokens` | — | — |
//! | Gemini | `promptTokenCount` | `candidatesTokenCount` + `thoughtsTokenCount` | `totalTokenCount` | `thoughtsTokenCount` |
//! | Ollama | `prompt_eval_count` | `eval_count` | — | — |
//!
//! OpenAI's completion tokens include the reasoning tokens, so Gemini's thoughts are added
//! to its candidates. Anthropic's `input_tokens` leave out the cached part of the prompt,
//! which OpenAI's `prompt_tokens` include, so the cache counts are added to it.
//!
//! ```
//! use chunkwise::usage::Usage;
//! let mut u = Usage::default();
//! u.merge_json(r#"{"input_tokens":12,"output_tokens":1}"#); // Anthropic's message_start
//! u.merge_json(r#"{"output_tokens":40}"#); // its message_delta
//! assert_eq!(u.to_openai_json(), r#"{"prompt_tokens":12,"completion_tokens":40,"total_tokens":52}"#);
//! ```

use crate::json::{Reader, Result};

/// Token counts in OpenAI's names; `None` where no usage object said.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt: Option<u64>,
    pub completion: Option<u64>,
    pub total: Option<u64>,
    /// Reasoning tokens (part of `completion`), where the provider tells them apart.
    pub reasoning: Option<u64>,
}

/// The counts one usage object gives, by what they mean.
#[derive(Default)]
struct Counts {
    prompt: Option<u64>,
    prompt_cache: u64,
    completion: Option<u64>,
    thoughts: Option<u64>,
    total: Option<u64>,
    reasoning: Option<u64>,
}

impl Usage {
    /// Reads a provider's usage object (see the module documentation for the names) into
    /// `self`. A count the object omits keeps what an earlier object said, so Anthropic's
    /// two halves merge; a total the provider does not give is the sum of the other two.
    /// Text that is not a JSON object changes nothing.
    pub fn merge_json(&mut self, json: &str) {
        let Ok(c) = Reader::parse(json, read_counts) else { return };
        if let Some(p) = c.prompt {
            self.prompt = Some(p + c.prompt_cache);
        }
        if let Some(completion) = c.completion {
            self.completion = Some(completion + c.thoughts.unwrap_or(0));
        }
        if c.thoughts.is_some() {
            self.reasoning = c.thoughts;
        }
        if c.reasoning.is_some() {
            self.reasoning = c.reasoning;
        }
        if c.total.is_some() {
            self.total = c.total;
        } else if c.prompt.is_some() || c.completion.is_some() {
            // A total said before counts that have changed since is stale.
            self.total = None;
        }
    }

    /// `{"prompt_tokens":..,"completion_tokens":..,"total_tokens":..}`, with
    /// `"completion_tokens_details":{"reasoning_tokens":..}` when the reasoning tokens are
    /// known. A count nobody gave is 0; the total defaults to prompt + completion.
    pub fn to_openai_json(&self) -> String {
        let p = self.prompt.unwrap_or(0);
        let c = self.completion.unwrap_or(0);
        let t = self.total.unwrap_or(p + c);
        let mut out = format!("{{\"prompt_tokens\":{p},\"completion_tokens\":{c},\"total_tokens\":{t}");
        if let Some(r) = self.reasoning {
            out.push_str(&format!(",\"completion_tokens_details\":{{\"reasoning_tokens\":{r}}}"));
        }
        out.push('}');
        out
    }
}

fn read_counts(r: &mut Reader<'_>) -> Result<Counts> {
    let mut c = Counts::default();
    r.object(|r, key| {
        match key {
            "prompt_tokens" | "input_tokens" | "promptTokenCount" | "prompt_eval_count" => c.prompt = count(r)?,
            "cache_creation_input_tokens" | "cache_read_input_tokens" => c.prompt_cache += count(r)?.unwrap_or(0),
            "completion_tokens" | "output_tokens" | "candidatesTokenCount" | "eval_count" => c.completion = count(r)?,
            "thoughtsTokenCount" => c.thoughts = count(r)?,
            "total_tokens" | "totalTokenCount" => c.total = count(r)?,
            "completion_tokens_details" | "output_tokens_details" if !r.is_null()? => r.object(|r, key| {
                match key {
                    "reasoning_tokens" => c.reasoning = count(r)?,
                    _ => r.skip()?,
                }
                Ok(())
            })?,
            _ => r.skip()?,
        }
        Ok(())
    })?;
    // Anthropic's cache counts are part of the prompt only beside its `input_tokens`.
    if c.prompt.is_none() {
        c.prompt_cache = 0;
    }
    Ok(c)
}

/// A token count: a non-negative integer, else nothing.
fn count(r: &mut Reader<'_>) -> Result<Option<u64>> {
    Ok(r.raw()?.parse::<u64>().ok())
}

#[cfg(test)]
mod tests {
    use super::Usage;

    fn openai(objects: &[&str]) -> String {
        let mut u = Usage::default();
        for o in objects {
            u.merge_json(o);
        }
        u.to_openai_json()
    }

    #[test]
    fn anthropic_halves_merge() {
        assert_eq!(
            openai(&[r#"{"input_tokens":12,"output_tokens":1}"#, r#"{"output_tokens":40}"#]),
            r#"{"prompt_tokens":12,"completion_tokens":40,"total_tokens":52}"#
        );
        assert_eq!(
            openai(&[
                r#"{"input_tokens":5,"cache_creation_input_tokens":100,"cache_read_input_tokens":20,"output_tokens":1}"#,
                r#"{"output_tokens":9}"#
            ]),
            r#"{"prompt_tokens":125,"completion_tokens":9,"total_tokens":134}"#
        );
    }

    #[test]
    fn gemini_thoughts_count_as_completion_and_reasoning() {
        assert_eq!(
            openai(&[r#"{"promptTokenCount":3,"candidatesTokenCount":5,"thoughtsTokenCount":2,"totalTokenCount":10}"#]),
            r#"{"prompt_tokens":3,"completion_tokens":7,"total_tokens":10,"completion_tokens_details":{"reasoning_tokens":2}}"#
        );
    }

    #[test]
    fn openai_responses_dashscope_ollama_dify() {
        let reasoning = r#"{"prompt_tokens":9,"completion_tokens":30,"total_tokens":39,"completion_tokens_details":{"reasoning_tokens":20}}"#;
        assert_eq!(openai(&[reasoning]), reasoning);
        assert_eq!(
            openai(&[
                r#"{"input_tokens":9,"output_tokens":30,"output_tokens_details":{"reasoning_tokens":20},"total_tokens":39}"#
            ]),
            reasoning
        );
        assert_eq!(
            openai(&[r#"{"total_duration":5,"prompt_eval_count":26,"eval_count":290,"eval_duration":4}"#]),
            r#"{"prompt_tokens":26,"completion_tokens":290,"total_tokens":316}"#
        );
        // Dify's usage has prices beside the counts; they are not counts.
        assert_eq!(
            openai(&[
                r#"{"prompt_tokens":1033,"prompt_price":"0.001","completion_tokens":135,"total_tokens":1168,"latency":1.3}"#
            ]),
            r#"{"prompt_tokens":1033,"completion_tokens":135,"total_tokens":1168}"#
        );
    }

    #[test]
    fn a_stale_total_is_recomputed_and_bad_input_changes_nothing() {
        assert_eq!(
            openai(&[r#"{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}"#, r#"{"completion_tokens":5}"#]),
            r#"{"prompt_tokens":1,"completion_tokens":5,"total_tokens":6}"#
        );
        assert_eq!(
            openai(&["not json", "[1]", r#"{"prompt_tokens":-1,"completion_tokens":null}"#]),
            r#"{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0}"#
        );
        let mut u = Usage::default();
        u.merge_json(r#"{"prompt_tokens":4}"#);
        u.merge_json(r#"{"prompt_tokens":"#);
        assert_eq!(u.prompt, Some(4));
    }
}
