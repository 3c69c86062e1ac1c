//! Dify's chat-messages API with `response_mode: "streaming"`.
//!
//! Reference: <https://docs.dify.ai/en/guides/application-publishing/developing-with-apis>
//! (each app's own API page documents `POST /chat-messages`)
//!
//! ```text
//! data: {"event":"message","task_id":"…","message_id":"…","conversation_id":"…","answer":"Hel","created_at":1705398420}
//! data: {"event":"message_end","task_id":"…","message_id":"…","conversation_id":"…","metadata":{"usage":{"prompt_tokens":1033,"completion_tokens":135,"total_tokens":1168,…}}}
//! ```
//!
//! Agent apps send `agent_message` instead of `message`; `message_replace` replaces the whole
//! answer (output moderation); `error` ends the stream with a flat `{status, code, message}`;
//! `ping` comes every 10 s; workflow and node events carry no answer text.

use std::borrow::Cow;

use super::{Delta, ErrorParts};
use crate::json::{Reader, Result};
use crate::update::{ErrorKind, StreamError};

pub(super) fn read<'a>(r: &mut Reader<'a>, d: &mut Delta<'a>) -> Result<()> {
    let mut event = None;
    let mut answer = None;
    let mut e = ErrorParts::default();
    r.object(|r, key| match key {
        "event" => Ok(event = r.opt_str()?),
        "answer" => Ok(answer = r.opt_str()?),
        "message_id" => Ok(d.id = r.opt_str()?),
        "metadata" if !r.is_null()? => r.object(|r, key| match key {
            "usage" => Ok(d.usage = r.opt_raw()?.map(Cow::Borrowed)),
            _ => r.skip(),
        }),
        _ => e.field(r, key),
    })?;
    match event.as_deref() {
        Some("message" | "agent_message") => d.text = answer.filter(|a| !a.is_empty()),
        Some("message_end") => d.done = true,
        Some("error") => {
            d.done = true;
            d.error = Some(e.finish());
        }
        // Output moderation replaced the answer. Text already shown cannot be taken back,
        // so the replacement is reported for the page to show instead.
        Some("message_replace") => {
            d.error = Some(StreamError {
                kind: ErrorKind::MessageReplace,
                message: answer.map(Cow::into_owned).unwrap_or_default(),
                code: None,
            })
        }
        _ => {} // ping, workflow and node events, agent_thought
    }
    if event.as_deref() != Some("message_end") {
        d.usage = None;
    }
    Ok(())
}
