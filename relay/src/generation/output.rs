//! The log as clients read it: OpenAI `chat.completion.chunk` events over SSE, the bare answer
//! text, or one `chat.completion` object.
//!
//! The streaming shape is OpenAI's
//! (<https://platform.openai.com/docs/api-reference/chat-streaming>): a role delta, content and
//! `reasoning_content` deltas, a finish chunk, a usage chunk with empty `choices`, `[DONE]`.
//! Every event carries `id: <seq>` so a client can resume after it.

use bytes::{BufMut, BytesMut};

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
    let mut head = BytesMut::new();
    head.put_slice(b"{\"id\":");
    write_json_str(id, &mut head);
    head.put_slice(format!(",\"object\":\"chat.completion.chunk\",\"created\":{created},\"model\":").as_bytes());
    write_json_str(model, &mut head);
    String::from_utf8(head.to_vec()).unwrap_or_default()
}

pub fn render_sse(chunk_head: &str, seq: u64, kind: Kind, payload: &str, out: &mut BytesMut) {
    let mut seq_buf = [0u8; 20];
    out.put_slice(b"id: ");
    out.put_slice(itoa(seq, &mut seq_buf));
    out.put_slice(b"\ndata: ");
    match kind {
        Kind::Role => {
            out.put_slice(chunk_head.as_bytes());
            out.put_slice(
                br#","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#,
            );
        }
        Kind::Content | Kind::Reasoning => {
            out.put_slice(chunk_head.as_bytes());
            out.put_slice(if kind == Kind::Content {
                br#","choices":[{"index":0,"delta":{"content":"#
            } else {
                br#","choices":[{"index":0,"delta":{"reasoning_content":"#
            });
            write_json_str(payload, out);
            out.put_slice(br#"},"finish_reason":null}]}"#);
        }
        Kind::Finish => {
            out.put_slice(chunk_head.as_bytes());
            out.put_slice(br#","choices":[{"index":0,"delta":{},"finish_reason":"#);
            write_json_str(payload, out);
            out.put_slice(b"}]}");
        }
        Kind::Usage => {
            out.put_slice(chunk_head.as_bytes());
            out.put_slice(br#","choices":[],"usage":"#);
            out.put_slice(payload.as_bytes());
            out.put_slice(b"}");
        }
        Kind::Error => out.put_slice(payload.as_bytes()),
        Kind::Done => out.put_slice(b"[DONE]"),
    }
    out.put_slice(b"\n\n");
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

/// JSON string escaping straight into the output buffer: the hot path of every delta.
pub fn write_json_str(s: &str, out: &mut BytesMut) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(s.len() + 2);
    out.put_u8(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        out.put_slice(&bytes[start..i]);
        if esc.is_empty() {
            out.put_slice(&[b'\\', b'u', b'0', b'0', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
        } else {
            out.put_slice(esc);
        }
        start = i + 1;
    }
    out.put_slice(&bytes[start..]);
    out.put_u8(b'"');
}

fn itoa(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}
