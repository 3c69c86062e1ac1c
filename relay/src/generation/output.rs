//! The log as clients read it: OpenAI `chat.completion.chunk` events over SSE, the bare answer
//! text, or one `chat.completion` object.
//!
//! The streaming shape is OpenAI's
//! (<https://platform.openai.com/docs/api-reference/chat-streaming>): a role delta, content and
//! `reasoning_content` deltas, a finish chunk, a usage chunk with empty `choices`, `[DONE]`.
//! Every event carries `id: <seq>` so a client can resume after it.

use bytes::{BufMut, BytesMut};
use chunkwise::json::write_str;

use super::log::{Kind, Log};
use crate::error::ApiError;

/// How a reader wants events rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Render {
    /// `id: <seq>\ndata: <chat.completion.chunk>\n\n`
    Sse,
    /// Only the answer text, as plain UTF-8.
    Text,
}

/// `{"id":"…","object":"chat.completion.chunk","created":…,"model":"…"`: the start of every
/// chunk of one generation, built once.
pub fn chunk_head(id: &str, created: u64, model: &str) -> String {
    let mut head = String::from("{\"id\":");
    write_str(&mut head, id);
    head.push_str(&format!(",\"object\":\"chat.completion.chunk\",\"created\":{created},\"model\":"));
    write_str(&mut head, model);
    head
}

/// One event as `id: <seq>\ndata: <chunk>\n\n`.
pub fn render_sse(chunk_head: &str, seq: u64, kind: Kind, payload: &str, out: &mut String) {
    out.push_str("id: ");
    out.push_str(itoa(seq, &mut [0u8; 20]));
    out.push_str("\ndata: ");
    match kind {
        Kind::Role => {
            out.push_str(chunk_head);
            out.push_str(r#","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#);
        }
        Kind::Content | Kind::Reasoning => {
            out.push_str(chunk_head);
            out.push_str(if kind == Kind::Content {
                r#","choices":[{"index":0,"delta":{"content":"#
            } else {
                r#","choices":[{"index":0,"delta":{"reasoning_content":"#
            });
            write_str(out, payload);
            out.push_str(r#"},"finish_reason":null}]}"#);
        }
        Kind::Finish => {
            out.push_str(chunk_head);
            out.push_str(r#","choices":[{"index":0,"delta":{},"finish_reason":"#);
            write_str(out, payload);
            out.push_str("}]}");
        }
        Kind::Usage => {
            out.push_str(chunk_head);
            out.push_str(r#","choices":[],"usage":"#);
            out.push_str(payload);
            out.push('}');
        }
        Kind::Error => out.push_str(payload),
        Kind::Done => out.push_str("[DONE]"),
    }
    out.push_str("\n\n");
}

pub(crate) fn render_text(kind: Kind, payload: &str, skip: &mut usize, out: &mut BytesMut) {
    match kind {
        Kind::Content => {
            let bytes = payload.as_bytes();
            let from = (*skip).min(bytes.len());
            *skip -= from;
            out.put_slice(&bytes[from..]);
        }
        Kind::Error => {
            let v: serde_json::Value = serde_json::from_str(payload).unwrap_or_default();
            let msg = v["error"]["message"].as_str().unwrap_or("upstream error");
            out.put_slice(format!("\n\n[error] {msg}\n").as_bytes());
        }
        _ => {}
    }
}

/// The whole answer of a finished log as a `chat.completion` object (non-streaming mode).
pub(crate) fn completion(log: &Log, id: &str, created: u64, model: &str) -> Result<serde_json::Value, ApiError> {
    if let Some(e) = &log.early_error {
        return Err(e.clone());
    }
    let (mut content, mut reasoning, mut finish, mut usage) = (String::new(), String::new(), "stop".to_string(), None);
    for (i, e) in log.entries.iter().enumerate() {
        let p = log.payload(i);
        match e.kind {
            Kind::Content => content.push_str(p),
            Kind::Reasoning => reasoning.push_str(p),
            Kind::Finish => finish = p.to_string(),
            Kind::Usage => usage = serde_json::from_str::<serde_json::Value>(p).ok(),
            Kind::Error => {
                let v: serde_json::Value = serde_json::from_str(p).unwrap_or_default();
                let err = &v["error"];
                return Err(ApiError::upstream(
                    axum::http::StatusCode::BAD_GATEWAY,
                    err["code"].as_str().unwrap_or("upstream_error"),
                    err["message"].as_str().unwrap_or("upstream error").to_string(),
                ));
            }
            Kind::Role | Kind::Done => {}
        }
    }
    if log.first_seq != 1 {
        return Err(ApiError::bad_request(
            "answer_too_long",
            "the answer outgrew the relay's bounded log for one answer; ask with stream: true",
        ));
    }
    let mut message = serde_json::json!({ "role": "assistant", "content": content });
    if !reasoning.is_empty() {
        message["reasoning_content"] = reasoning.into();
    }
    Ok(serde_json::json!({
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{ "index": 0, "message": message, "finish_reason": finish }],
        "usage": usage,
    }))
}

fn itoa(mut n: u64, buf: &mut [u8; 20]) -> &str {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[i..]).unwrap_or("0")
}
