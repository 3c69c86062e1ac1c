//! OpenAI Chat Completions, and every API that copies it (DeepSeek, Qwen's compatible mode,
//! Azure OpenAI, vLLM, Groq, OpenRouter, Ollama's `/v1`).
//!
//! Reference: <https://platform.openai.com/docs/api-reference/chat-streaming>
//!
//! ```text
//! data: {"id":"chatcmpl-…","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}
//! data: {"id":"chatcmpl-…","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}
//! data: {"id":"chatcmpl-…","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}
//! data: {"id":"chatcmpl-…","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}
//! data: [DONE]
//! ```
//!
//! The usage chunk comes only with `stream_options: {"include_usage": true}`. A whole
//! response (`"stream": false`) has `message` where a chunk has `delta`. Reasoning text is
//! `delta.reasoning_content` (DeepSeek, Qwen) or `delta.reasoning` (Ollama, OpenRouter).
//! An error is `{"error": {"message", "type", "code"}}`, in the stream or as the body.

use std::borrow::Cow;

use super::{append, error_value, text, Delta};
use crate::json::{Reader, Result};

pub(super) fn read<'a>(data: &'a str, d: &mut Delta<'a>) -> Result<()> {
    // "data: [DONE]" is the end marker, the one message that is not JSON.
    if data.trim_ascii() == "[DONE]" {
        d.done = true;
        return Ok(());
    }
    Reader::parse(data, |r| {
        r.object(|r, key| match key {
            "id" => Ok(d.id = r.opt_str()?),
            "choices" if !r.is_null()? => r.array(|r, _| {
                // Only the first choice is the answer (n > 1 is not a chat UI's case).
                let mut index = 0;
                let mut choice = Delta::default();
                r.object(|r, key| match key {
                    "index" => Ok(index = if r.raw()? == "0" { 0 } else { 1 }),
                    "delta" | "message" if !r.is_null()? => r.object(|r, key| match key {
                        "content" => Ok(choice.text = text(r)?),
                        "reasoning_content" | "reasoning" => Ok(append(&mut choice.reasoning, text(r)?)),
                        _ => r.skip(),
                    }),
                    "finish_reason" => Ok(choice.finish_reason = r.opt_str()?),
                    _ => r.skip(),
                })?;
                if index == 0 {
                    (d.text, d.reasoning, d.finish_reason) = (choice.text, choice.reasoning, choice.finish_reason);
                }
                Ok(())
            }),
            "usage" => Ok(d.usage = r.opt_raw()?.map(Cow::Borrowed)),
            "error" => Ok(d.error = error_value(r)?),
            _ => r.skip(),
        })
    })
}
