//! The OpenAI Responses API's streaming events.
//!
//! Reference: <https://platform.openai.com/docs/api-reference/responses-streaming>
//!
//! ```text
//! event: response.created
//! data: {"type":"response.created","sequence_number":0,"response":{"id":"resp_…","status":"in_progress",…}}
//! event: response.output_text.delta
//! data: {"type":"response.output_text.delta","item_id":"msg_…","output_index":0,"content_index":0,"delta":"Hi"}
//! event: response.completed
//! data: {"type":"response.completed","response":{"id":"resp_…","status":"completed","usage":{"input_tokens":9,"output_tokens":2,"total_tokens":11},…}}
//! ```
//!
//! The stream ends with `response.completed`, `response.incomplete` (with
//! `incomplete_details.reason`) or `response.failed` (with `response.error`); a
//! top-level `{"type":"error","code","message"}` event reports an error outside a response.
//! Reasoning summaries come as `response.reasoning_summary_text.delta`.

use std::borrow::Cow;

use super::{error_value, text, Delta, ErrorParts};
use crate::json::{Reader, Result};

pub(super) fn read<'a>(r: &mut Reader<'a>, d: &mut Delta<'a>) -> Result<()> {
    let mut kind = None;
    let mut delta = None;
    let mut e = ErrorParts::default();
    let mut nested_error = None;
    r.object(|r, key| match key {
        "type" => Ok(kind = r.opt_str()?),
        "delta" => Ok(delta = text(r)?),
        "error" => Ok(nested_error = error_value(r)?),
        "response" if !r.is_null()? => r.object(|r, key| match key {
            "id" => Ok(d.id = r.opt_str()?),
            "status" => Ok(d.finish_reason = d.finish_reason.take().or(r.opt_str()?)),
            "usage" => Ok(d.usage = r.opt_raw()?.map(Cow::Borrowed)),
            "error" => Ok(d.error = error_value(r)?),
            // A more precise finish reason than the status ("max_output_tokens").
            "incomplete_details" if !r.is_null()? => r.object(|r, key| match key {
                "reason" => Ok(d.finish_reason = r.opt_str()?.or(d.finish_reason.take())),
                _ => r.skip(),
            }),
            _ => r.skip(),
        }),
        _ => e.field(r, key),
    })?;
    match kind.as_deref() {
        Some("response.output_text.delta" | "response.refusal.delta") => d.text = delta,
        Some("response.reasoning_summary_text.delta" | "response.reasoning_text.delta") => d.reasoning = delta,
        Some("response.completed" | "response.incomplete" | "response.failed") => d.done = true,
        Some("error") => {
            e.kind = e.kind.or_else(|| Some("error".to_owned()));
            d.error = nested_error.or_else(|| Some(e.finish()));
        }
        _ => {
            // Only the final events carry a response whose fields mean the end.
            d.usage = None;
            d.finish_reason = None;
            d.error = None;
        }
    }
    Ok(())
}
