//! Anthropic's Messages API streaming events.
//!
//! Reference: <https://docs.anthropic.com/en/docs/build-with-claude/streaming>
//!
//! ```text
//! event: message_start
//! data: {"type":"message_start","message":{"id":"msg_…","type":"message","role":"assistant","content":[],"usage":{"input_tokens":25,"output_tokens":1}}}
//! event: content_block_start
//! data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}
//! event: content_block_delta
//! data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}
//! event: content_block_stop
//! data: {"type":"content_block_stop","index":0}
//! event: message_delta
//! data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}}
//! event: message_stop
//! data: {"type":"message_stop"}
//! ```
//!
//! `ping` events may come at any point; thinking blocks stream `thinking_delta`s with a
//! `thinking` field; an `error` event (`{"type":"error","error":{"type","message"}}`) can
//! arrive mid-stream. New event types may be added; they are ignored.

use std::borrow::Cow;

use super::{error_value, text, Delta, ErrorParts};
use crate::json::{write_str, Reader, Result};

pub(super) fn read<'a>(r: &mut Reader<'a>, start_usage: &mut Option<String>, d: &mut Delta<'a>) -> Result<()> {
    let mut kind = None;
    let mut usage = None;
    let mut block = Delta::default();
    let mut stop_reason = None;
    let mut error = None;
    let mut message_usage = None;
    let mut id = None;
    r.object(|r, key| match key {
        "type" => Ok(kind = r.opt_str()?),
        "message" if !r.is_null()? => r.object(|r, key| match key {
            "id" => Ok(id = r.opt_str()?),
            "usage" => Ok(message_usage = r.opt_raw()?),
            _ => r.skip(),
        }),
        "delta" | "content_block" if !r.is_null()? => r.object(|r, key| match key {
            "text" => Ok(block.text = text(r)?),
            "thinking" => Ok(block.reasoning = text(r)?),
            "stop_reason" => Ok(stop_reason = r.opt_str()?),
            _ => r.skip(),
        }),
        "usage" => Ok(usage = r.opt_raw()?),
        "error" => Ok(error = error_value(r)?),
        _ => r.skip(),
    })?;
    match kind.as_deref() {
        Some("message_start") => {
            *start_usage = message_usage.map(str::to_owned);
            d.id = id;
        }
        Some("content_block_start" | "content_block_delta") => (d.text, d.reasoning) = (block.text, block.reasoning),
        Some("message_delta") => {
            d.finish_reason = stop_reason;
            // The final usage is message_start's with message_delta's counts over it, as
            // Anthropic's SDKs report it.
            d.usage = usage.map(|u| Cow::Owned(merge_objects(start_usage.as_deref(), u)));
        }
        Some("message_stop") => d.done = true,
        Some("error") => d.error = Some(error.unwrap_or_else(|| ErrorParts::default().finish())),
        _ => {} // ping, content_block_stop, and event types added later
    }
    Ok(())
}

/// `{...start, ...delta}` for two JSON objects given as text, keeping `start`'s key order.
fn merge_objects(start: Option<&str>, delta: &str) -> String {
    let fields = |text: &str| {
        let mut out: Vec<(String, String)> = Vec::new();
        let parsed = Reader::parse(text, |r| {
            r.object(|r, key| {
                let value = r.raw()?.to_owned();
                out.push((key.to_owned(), value));
                Ok(())
            })
        });
        parsed.map(|()| out)
    };
    let (Some(start), Ok(later)) = (start, fields(delta)) else { return delta.to_owned() };
    let Ok(mut merged) = fields(start) else { return delta.to_owned() };
    for (key, value) in later {
        match merged.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => merged.push((key, value)),
        }
    }
    let mut out = String::from("{");
    for (i, (key, value)) in merged.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(&mut out, key);
        out.push(':');
        out.push_str(value);
    }
    out.push('}');
    out
}
