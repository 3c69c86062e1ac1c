//! A reader, on one instance, of a generation another instance holds: it follows the
//! generation's Redis stream with `XREAD BLOCK` and renders it as SSE or as plain text.

use std::convert::Infallible;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use redis::aio::MultiplexedConnection;
use redis::streams::StreamReadReply;

use super::{entry, lost_error, LOST};
use crate::error::ApiError;
use crate::generation::{render_sse, render_text, Kind, Render};

/// A remote reader found a gap: events after the one it sent were trimmed before it read them.
fn too_slow() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::GONE,
        "invalid_request_error",
        "client_too_slow",
        "this client fell behind the generation's bounded log; events were dropped",
    )
}

pub(super) struct Remote {
    pub(super) con: MultiplexedConnection,
    pub(super) log: String,
    pub(super) lease: String,
    pub(super) head: String,
    /// The last event sent (or skipped as not this reader's).
    pub(super) last: u64,
    pub(super) done: bool,
    pub(super) idle: Duration,
    pub(super) heartbeat: Duration,
    pub(super) render: Render,
    /// Text mode: bytes of the first content payload the client already has.
    pub(super) skip: usize,
}

impl Remote {
    const BLOCK: Duration = Duration::from_millis(1000);

    pub(super) async fn next(mut self) -> Option<(Result<Bytes, Infallible>, Remote)> {
        if self.done {
            return None;
        }
        loop {
            let mut out = BytesMut::new();
            let mut sse = String::new();
            let read: Result<StreamReadReply, _> = redis::cmd("XREAD")
                .arg("COUNT")
                .arg(512)
                .arg("BLOCK")
                .arg(Self::BLOCK.as_millis() as u64)
                .arg("STREAMS")
                .arg(&self.log)
                .arg(format!("{}-0", self.last))
                .query_async(&mut self.con)
                .await;
            let reply = match read {
                Ok(reply) => reply,
                Err(_) => {
                    return Some((Ok(self.end_with("store_unavailable", "the relay lost its shared store")), self))
                }
            };
            for (seq, letter, payload) in reply.keys.iter().flat_map(|k| &k.ids).flat_map(entry::events) {
                // An entry can start before this reader's position.
                if seq <= self.last {
                    continue;
                }
                // Never skip: a gap (trimmed under a slow reader) or a lost mark ends the
                // stream with an error, as the in-memory log does.
                let error = if seq != self.last + 1 {
                    Some(too_slow())
                } else if letter == LOST {
                    Some(lost_error(seq))
                } else {
                    None
                };
                if let Some(e) = error {
                    self.error_line(&e, &mut sse, &mut out);
                    self.done = true;
                    break;
                }
                let Some(kind) = Kind::from_letter(&letter) else {
                    self.last = seq;
                    continue;
                };
                match self.render {
                    Render::Sse => render_sse(&self.head, seq, kind, &payload, &mut sse),
                    Render::Text => render_text(kind, &payload, &mut self.skip, &mut out),
                }
                self.last = seq;
                if kind == Kind::Done {
                    self.done = true;
                    break;
                }
            }
            out.extend_from_slice(sse.as_bytes());
            if !out.is_empty() {
                self.idle = Duration::ZERO;
                return Some((Ok(out.freeze()), self));
            }
            if self.done {
                return None;
            }
            // Nothing new: is anyone still producing?
            let alive: bool = redis::cmd("EXISTS").arg(&self.lease).query_async(&mut self.con).await.unwrap_or(true);
            if !alive {
                let tail: Result<StreamReadReply, _> = redis::cmd("XREAD")
                    .arg("STREAMS")
                    .arg(&self.log)
                    .arg(format!("{}-0", self.last))
                    .query_async(&mut self.con)
                    .await;
                if tail.map(|t| t.keys.is_empty()).unwrap_or(true) {
                    // A reader that starts after `[DONE]` has nothing more to get.
                    if self.ended_before().await {
                        return None;
                    }
                    let bytes = self.end_with(
                        "generation_lost",
                        "the relay instance producing this answer stopped; the answer is incomplete",
                    );
                    return Some((Ok(bytes), self));
                }
                continue;
            }
            self.idle += Self::BLOCK;
            if self.idle >= self.heartbeat && self.render == Render::Sse {
                self.idle = Duration::ZERO;
                return Some((Ok(Bytes::from_static(b": ping\n\n")), self));
            }
        }
    }

    /// Whether the stream's last entry is `[DONE]`, at or before where this reader is.
    async fn ended_before(&mut self) -> bool {
        let last: Result<redis::streams::StreamRangeReply, _> = redis::cmd("XREVRANGE")
            .arg(&self.log)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut self.con)
            .await;
        let Ok(last) = last else { return false };
        last.ids
            .first()
            .map(entry::last_event)
            .is_some_and(|(seq, letter)| letter == Kind::Done.letter() && seq <= self.last)
    }

    /// An error that ends the stream where this reader is, as the in-memory reader writes it
    /// (an unnumbered event in SSE, an `[error]` line in text).
    fn error_line(&self, e: &ApiError, sse: &mut String, out: &mut BytesMut) {
        match self.render {
            Render::Sse => sse.push_str(&format!("data: {}\n\n", e.body())),
            Render::Text => out.extend_from_slice(format!("\n\n[error] {}\n", e.message).as_bytes()),
        }
    }

    /// An error event, then a finish and `[DONE]`, numbered on from the last event sent
    /// (in text mode, the `[error]` line).
    fn end_with(&mut self, code: &str, message: &str) -> Bytes {
        let error = ApiError::new(axum::http::StatusCode::BAD_GATEWAY, "server_error", code, message);
        self.done = true;
        if self.render == Render::Text {
            return Bytes::from(format!("\n\n[error] {message}\n"));
        }
        let mut out = String::new();
        render_sse(&self.head, self.last + 1, Kind::Error, &error.body(), &mut out);
        render_sse(&self.head, self.last + 2, Kind::Finish, "error", &mut out);
        render_sse(&self.head, self.last + 3, Kind::Done, "", &mut out);
        Bytes::from(out)
    }
}
