//! Google Gemini: `GenerateContentResponse` chunks of `streamGenerateContent`.
//!
//! Reference: <https://ai.google.dev/api/generate-content#method:-models.streamgeneratecontent>
//!
//! With `?alt=sse` each chunk is one SSE event; without it the body is one JSON array of
//! the same chunks, streamed (both are read: see [`crate::decoder`]).
//!
//! ```text
//! data: {"candidates":[{"content":{"parts":[{"text":"Hel"}],"role":"model"},"index":0}],"usageMetadata":{"promptTokenCount":4,"totalTokenCount":4},"modelVersion":"gemini-2.5-flash","responseId":"…"}
//! data: {"candidates":[{"content":{"parts":[{"text":"lo"}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":4,"candidatesTokenCount":2,"totalTokenCount":6},"responseId":"…"}
//! ```
//!
//! There is no end marker: the chunk with a `finishReason` is the last. A part with
//! `"thought": true` is reasoning. A prompt blocked before any answer has
//! `promptFeedback.blockReason` and no candidates. Errors are `{"error":{"code","message","status"}}`
//! (as a body: `[{"error": …}]`).

use std::borrow::Cow;

use super::{append, error_value, text, Delta};
use crate::json::{Reader, Result};

pub(super) fn read<'a>(r: &mut Reader<'a>, d: &mut Delta<'a>) -> Result<()> {
    r.object(|r, key| match key {
        "candidates" if !r.is_null()? => r.array(|r, index| {
            r.object(|r, key| match key {
                "content" if index == 0 && !r.is_null()? => r.object(|r, key| match key {
                    "parts" if !r.is_null()? => r.array(|r, _| {
                        let mut part = None;
                        let mut thought = false;
                        r.object(|r, key| match key {
                            "text" => Ok(part = text(r)?),
                            "thought" => Ok(thought = r.opt_bool()? == Some(true)),
                            _ => r.skip(),
                        })?;
                        append(if thought { &mut d.reasoning } else { &mut d.text }, part);
                        Ok(())
                    }),
                    _ => r.skip(),
                }),
                "finishReason" if index == 0 => Ok(d.finish_reason = r.opt_str()?),
                _ => r.skip(),
            })
        }),
        "usageMetadata" => Ok(d.usage = r.opt_raw()?.map(Cow::Borrowed)),
        "promptFeedback" if !r.is_null()? => r.object(|r, key| match key {
            "blockReason" => Ok(d.finish_reason = r.opt_str()?.or(d.finish_reason.take())),
            _ => r.skip(),
        }),
        "responseId" => Ok(d.id = r.opt_str()?),
        "error" => Ok(d.error = error_value(r)?),
        _ => r.skip(),
    })?;
    d.done = d.finish_reason.is_some();
    Ok(())
}
