//! Alibaba Cloud DashScope's native text-generation API (Qwen), streamed with
//! `X-DashScope-SSE: enable`.
//!
//! Reference: <https://www.alibabacloud.com/help/en/model-studio/stream> (the "DashScope"
//! tab) and <https://www.alibabacloud.com/help/en/model-studio/use-qwen-by-calling-api>
//!
//! ```text
//! id:1
//! event:result
//! :HTTP_STATUS/200
//! data:{"output":{"choices":[{"message":{"content":"Hel","role":"assistant"},"finish_reason":"null"}]},"usage":{"total_tokens":12,"input_tokens":10,"output_tokens":2},"request_id":"…"}
//! ```
//!
//! With `result_format: "text"` the answer is `output.text` and the finish reason
//! `output.finish_reason`. `finish_reason` is the *string* `"null"` until the last message.
//! Without `incremental_output: true` every message repeats the whole answer so far (use the
//! `cumulative` option). An error is an `event:error` message with a flat `{code, message,
//! request_id}`.

use std::borrow::Cow;

use super::{text, Delta, ErrorParts};
use crate::json::{Reader, Result};

pub(super) fn read<'a>(r: &mut Reader<'a>, event: &str, d: &mut Delta<'a>) -> Result<()> {
    let mut e = ErrorParts::default();
    let mut output_text = None;
    let mut finish = None;
    r.object(|r, key| match key {
        "output" if !r.is_null()? => r.object(|r, key| match key {
            "text" => Ok(output_text = text(r)?),
            "finish_reason" => Ok(finish = r.opt_str()?.or(finish.take())),
            "choices" if !r.is_null()? => r.array(|r, index| {
                r.object(|r, key| match key {
                    "message" if index == 0 && !r.is_null()? => r.object(|r, key| match key {
                        "content" => Ok(d.text = text(r)?),
                        "reasoning_content" => Ok(d.reasoning = text(r)?),
                        _ => r.skip(),
                    }),
                    "finish_reason" if index == 0 => Ok(finish = r.opt_str()?),
                    _ => r.skip(),
                })
            }),
            _ => r.skip(),
        }),
        "usage" => Ok(d.usage = r.opt_raw()?.map(Cow::Borrowed)),
        _ => e.field(r, key),
    })?;
    if d.text.is_none() {
        d.text = output_text;
    }
    // DashScope writes the string "null" while the answer is still going.
    d.finish_reason = finish.filter(|f| f != "null");
    d.done = d.finish_reason.is_some();
    let has_code = e.code.as_deref().is_some_and(|c| c != "\"\"");
    if event == "error" || (has_code && d.text.is_none() && d.reasoning.is_none()) {
        d.error = Some(e.finish());
    }
    Ok(())
}
