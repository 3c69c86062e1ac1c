//! Ollama's native API: `/api/chat` and `/api/generate`, newline-delimited JSON.
//!
//! Reference: <https://github.com/ollama/ollama/blob/main/docs/api.md>
//!
//! ```text
//! {"model":"llama3.2","created_at":"…","message":{"role":"assistant","content":"Hel"},"done":false}
//! {"model":"llama3.2","created_at":"…","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","total_duration":…,"prompt_eval_count":26,"eval_count":290,"eval_duration":…}
//! ```
//!
//! `/api/generate` has `response` (and `thinking`) at the top level instead of `message`.
//! The line with `"done": true` is the last; it carries the counters and timings. An error
//! is `{"error": "…"}`. (Ollama's OpenAI-compatible `/v1` is the `openai` format.)

use std::borrow::Cow;

use super::{error_value, text, Delta};
use crate::json::{write_str, Reader, Result};

pub(super) fn read<'a>(r: &mut Reader<'a>, d: &mut Delta<'a>) -> Result<()> {
    // Ollama has no usage object: its counters and timings sit on the final line.
    let mut usage = String::new();
    r.object(|r, key| match key {
        "message" if !r.is_null()? => r.object(|r, key| match key {
            "content" => Ok(d.text = text(r)?),
            "thinking" => Ok(d.reasoning = text(r)?),
            _ => r.skip(),
        }),
        // `/api/generate` puts the text at the top level.
        "response" => Ok(d.text = text(r)?.or(d.text.take())),
        "thinking" => Ok(d.reasoning = text(r)?.or(d.reasoning.take())),
        "done" => Ok(d.done = r.opt_bool()? == Some(true)),
        "done_reason" => Ok(d.finish_reason = r.opt_str()?),
        "error" => Ok(d.error = error_value(r)?),
        k if k.ends_with("_count") || k.ends_with("_duration") => {
            usage.push(if usage.is_empty() { '{' } else { ',' });
            write_str(&mut usage, k);
            usage.push(':');
            usage.push_str(r.raw()?);
            Ok(())
        }
        _ => r.skip(),
    })?;
    if d.done && !usage.is_empty() {
        usage.push('}');
        d.usage = Some(Cow::Owned(usage));
    }
    Ok(())
}
