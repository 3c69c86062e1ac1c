//! Generations: one model answer, decoupled from the HTTP connection that asked for it.
//!
//! A generation owns the task that talks to the upstream and an event log. Connections are
//! readers of that log: each keeps only the sequence number of the next event it owes its
//! client, so a client that reconnects with `after=<seq>` (or `Last-Event-ID`) continues
//! exactly where it left off — nothing lost, nothing repeated.
//!
//! Guarantees:
//! - Sequence numbers start at 1 and grow by one per event; every event a reader sends carries
//!   its number. The last event of every generation is `[DONE]`.
//! - The log is bounded (`max_log_bytes` of text): when it overflows, the oldest events are
//!   dropped and a resume before them is refused with 410 instead of silently skipping text.
//! - A finished generation stays resumable for `ttl`; a running generation with no reader
//!   attached is cancelled after `grace`.
//! - Cancelling aborts the upstream task at once, which drops (closes) its connection.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, BytesMut};
use tokio::sync::watch;
use tokio::task::AbortHandle;

use crate::error::ApiError;
use crate::metrics::Metrics;

/// What one log entry is. The payload is text stored in the log's shared buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// `delta.role = "assistant"`; empty payload. Always seq 1.
    Role,
    Reasoning,
    Content,
    /// Payload: the finish reason.
    Finish,
    /// Payload: an OpenAI usage object (JSON).
    Usage,
    /// Payload: `{"error":{...}}` (JSON).
    Error,
    /// `[DONE]`; empty payload. Always the last entry.
    Done,
}

/// 8 bytes per event; the text lives in one `String` for the whole generation, so a
/// 200-delta answer costs a few KiB however it was split.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// End of this entry's payload in `Log::text`.
    end: u32,
    kind: Kind,
}

#[derive(Debug, Default)]
struct Log {
    /// Sequence number of `entries[0]`.
    first_seq: u64,
    entries: Vec<Entry>,
    text: String,
    /// The stream has started (the upstream accepted): later errors are events.
    started: bool,
    /// Failed before the stream started: the error becomes the HTTP response.
    early_error: Option<ApiError>,
    finished: bool,
    finished_at: Option<Instant>,
    /// Number of content/reasoning events, for usage estimates.
    deltas: u64,
}

impl Log {
    fn payload(&self, index: usize) -> &str {
        let start = if index == 0 { 0 } else { self.entries[index - 1].end as usize };
        &self.text[start..self.entries[index].end as usize]
    }

    fn push(&mut self, kind: Kind, payload: &str, max_bytes: usize) {
        if self.text.len() + payload.len() > max_bytes && !self.entries.is_empty() {
            self.drop_oldest(payload.len(), max_bytes);
        }
        self.text.push_str(payload);
        self.entries.push(Entry { end: self.text.len() as u32, kind });
    }

    /// Drops whole events from the front until `incoming` more bytes fit in half the bound
    /// (halving keeps this rare: it moves the remaining text).
    fn drop_oldest(&mut self, incoming: usize, max_bytes: usize) {
        let target = (max_bytes / 2).saturating_sub(incoming);
        let mut cut = 0;
        while cut < self.entries.len() && self.text.len() - self.entries[cut].end as usize > target {
            cut += 1;
        }
        cut = (cut + 1).min(self.entries.len());
        let removed = self.entries[cut - 1].end;
        self.text.drain(..removed as usize);
        self.entries.drain(..cut);
        for e in &mut self.entries {
            e.end -= removed;
        }
        self.first_seq += cut as u64;
    }
}

/// How a reader wants events rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Render {
    /// `id: <seq>\ndata: <chat.completion.chunk>\n\n`
    Sse,
    /// Only the answer text, as plain UTF-8.
    Text,
}

pub struct Generation {
    pub id: String,
    pub model: String,
    pub created: u64,
    /// Token subject that started it (empty when tokens are off); resume and cancel must match.
    pub owner: String,
    /// `{"id":"…","object":"chat.completion.chunk","created":…,"model":"…"`
    chunk_head: String,
    log: Mutex<Log>,
    changed: watch::Sender<()>,
    task: Mutex<Option<AbortHandle>>,
    attached: AtomicUsize,
    /// Bumped on every detach, so a grace timer only acts on the detach that started it.
    detach_epoch: AtomicU64,
    started_at: Instant,
    max_log_bytes: usize,
    metrics: Arc<Metrics>,
}

impl Generation {
    pub fn new(id: String, model: String, owner: String, max_log_bytes: usize, metrics: Arc<Metrics>) -> Generation {
        let created = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let chunk_head = format!(
            "{{\"id\":{},\"object\":\"chat.completion.chunk\",\"created\":{created},\"model\":{}",
            json_str(&id),
            json_str(&model)
        );
        Generation {
            id,
            model,
            created,
            owner,
            chunk_head,
            log: Mutex::new(Log { first_seq: 1, ..Log::default() }),
            changed: watch::channel(()).0,
            task: Mutex::new(None),
            attached: AtomicUsize::new(0),
            detach_epoch: AtomicU64::new(0),
            started_at: Instant::now(),
            max_log_bytes: max_log_bytes.max(1024),
            metrics,
        }
    }

    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn set_task(&self, handle: AbortHandle) {
        *self.task.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
    }

    // ---- writing (the upstream task) ----

    /// The upstream accepted the request: the stream starts with the role event.
    pub fn start(&self) {
        {
            let mut log = self.log();
            if log.started || log.finished {
                return;
            }
            log.started = true;
            log.push(Kind::Role, "", self.max_log_bytes);
        }
        self.changed.send_replace(());
    }

    pub fn push_delta(&self, kind: Kind, text: &str) {
        if text.is_empty() {
            return;
        }
        let first = {
            let mut log = self.log();
            if log.finished {
                return;
            }
            if !log.started {
                log.started = true;
                log.push(Kind::Role, "", self.max_log_bytes);
            }
            log.deltas += 1;
            log.push(kind, text, self.max_log_bytes);
            log.deltas == 1
        };
        if first {
            self.metrics.observe_ttft(self.started_at.elapsed());
        }
        self.changed.send_replace(());
    }

    /// An error while streaming: an event (the stream goes on; call [`Generation::end`] after).
    /// Before the stream started it becomes the HTTP response instead, and ends the generation.
    pub fn fail(&self, error: ApiError) {
        self.metrics.count_error(&error.code);
        {
            let mut log = self.log();
            if log.finished {
                return;
            }
            if !log.started {
                log.early_error = Some(error);
                log.finished = true;
                log.finished_at = Some(Instant::now());
                drop(log);
                self.changed.send_replace(());
                return;
            }
            let max = self.max_log_bytes;
            log.push(Kind::Error, &error.body(), max);
        }
        self.changed.send_replace(());
    }

    /// Ends the stream: finish reason, usage, `[DONE]`. Later pushes are ignored.
    pub fn end(&self, finish_reason: &str, usage: Option<Usage>) {
        {
            let mut log = self.log();
            if log.finished {
                return;
            }
            let max = self.max_log_bytes;
            if !log.started {
                log.started = true;
                log.push(Kind::Role, "", max);
            }
            log.push(Kind::Finish, finish_reason, max);
            let usage = usage.unwrap_or(Usage { prompt: None, completion: Some(log.deltas), total: None });
            log.push(Kind::Usage, &usage.to_json(), max);
            log.push(Kind::Done, "", max);
            log.finished = true;
            log.finished_at = Some(Instant::now());
            // A finished answer is kept for the TTL: drop the growth slack now.
            log.text.shrink_to_fit();
            log.entries.shrink_to_fit();
        }
        self.changed.send_replace(());
    }

    /// Stops the upstream now (dropping its connection) and ends the stream.
    pub fn cancel(&self, reason: &str) {
        // End the log first: the aborted task may be dropped on another thread at once, and
        // whatever it would still push is then ignored.
        if !self.is_finished() {
            self.metrics.count_error(reason);
            if self.log().started {
                self.end("cancelled", None);
            } else {
                self.fail(ApiError::new(
                    axum::http::StatusCode::CONFLICT,
                    "invalid_request_error",
                    reason,
                    "the generation was cancelled before it started",
                ));
            }
        }
        if let Some(task) = self.task.lock().unwrap_or_else(|p| p.into_inner()).take() {
            task.abort();
        }
    }

    /// The feeding task ended without ending the stream (it panicked): end it with an error
    /// so readers are not left waiting.
    pub(crate) fn abandon(&self) {
        if !self.is_finished() {
            self.fail(ApiError::upstream(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "the relay lost this generation (internal error)",
            ));
            self.end("error", None);
        }
    }

    // ---- reading (the connections) ----

    pub fn is_finished(&self) -> bool {
        self.log().finished
    }

    pub fn finished_before(&self, deadline: Instant) -> bool {
        self.log().finished_at.is_some_and(|t| t < deadline)
    }

    pub fn subscribe(&self) -> watch::Receiver<()> {
        self.changed.subscribe()
    }

    /// Waits until the stream started (`Ok`) or failed before starting (`Err`).
    pub async fn started(&self) -> Result<(), ApiError> {
        let mut rx = self.subscribe();
        loop {
            {
                let log = self.log();
                if let Some(e) = &log.early_error {
                    return Err(e.clone());
                }
                if log.started {
                    return Ok(());
                }
            }
            if rx.changed().await.is_err() {
                return Ok(());
            }
        }
    }

    /// The sequence number a reader starting after `after` should read next, or 410 when
    /// those events were dropped from the bounded log.
    pub fn check_resume(&self, after: u64) -> Result<u64, ApiError> {
        let log = self.log();
        if after + 1 < log.first_seq {
            return Err(ApiError::new(
                axum::http::StatusCode::GONE,
                "invalid_request_error",
                "events_expired",
                format!(
                    "events up to {} were dropped from this generation's bounded log; cannot resume after {after}",
                    log.first_seq - 1
                ),
            ));
        }
        Ok(after + 1)
    }

    /// The sequence number to read next so that a text reader skips `offset` bytes of answer.
    /// Returns the seq and how many bytes of that event's payload to skip.
    pub fn text_offset(&self, offset: u64) -> Result<(u64, usize), ApiError> {
        let log = self.log();
        if log.first_seq != 1 && offset > 0 {
            return Err(ApiError::new(
                axum::http::StatusCode::GONE,
                "invalid_request_error",
                "events_expired",
                "early events were dropped from this generation's bounded log; cannot resume by offset",
            ));
        }
        let mut left = offset as usize;
        for (i, e) in log.entries.iter().enumerate() {
            if e.kind != Kind::Content {
                continue;
            }
            let len = log.payload(i).len();
            if left < len {
                return Ok((log.first_seq + i as u64, left));
            }
            left -= len;
        }
        Ok((log.first_seq + log.entries.len() as u64, 0))
    }

    /// Renders every event from `*next` on into `out`, advances `*next`, and says whether the
    /// generation is finished and fully rendered. `skip` drops bytes from the first text payload.
    pub fn render(
        &self,
        next: &mut u64,
        render: Render,
        skip: &mut usize,
        out: &mut BytesMut,
    ) -> Result<bool, ApiError> {
        let log = self.log();
        if *next < log.first_seq {
            return Err(ApiError::new(
                axum::http::StatusCode::GONE,
                "invalid_request_error",
                "client_too_slow",
                "this client fell behind the generation's bounded log; events were dropped",
            ));
        }
        let end = log.first_seq + log.entries.len() as u64;
        while *next < end {
            let i = (*next - log.first_seq) as usize;
            let kind = log.entries[i].kind;
            let payload = log.payload(i);
            match render {
                Render::Sse => self.render_sse(*next, kind, payload, out),
                Render::Text => render_text(kind, payload, skip, out),
            }
            *next += 1;
        }
        Ok(log.finished)
    }

    fn render_sse(&self, seq: u64, kind: Kind, payload: &str, out: &mut BytesMut) {
        let mut seq_buf = itoa_buf();
        out.put_slice(b"id: ");
        out.put_slice(itoa(seq, &mut seq_buf));
        out.put_slice(b"\ndata: ");
        match kind {
            Kind::Role => {
                out.put_slice(self.chunk_head.as_bytes());
                out.put_slice(
                    br#","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#,
                );
            }
            Kind::Content | Kind::Reasoning => {
                out.put_slice(self.chunk_head.as_bytes());
                out.put_slice(if kind == Kind::Content {
                    br#","choices":[{"index":0,"delta":{"content":"#
                } else {
                    br#","choices":[{"index":0,"delta":{"reasoning_content":"#
                });
                write_json_str(payload, out);
                out.put_slice(br#"},"finish_reason":null}]}"#);
            }
            Kind::Finish => {
                out.put_slice(self.chunk_head.as_bytes());
                out.put_slice(br#","choices":[{"index":0,"delta":{},"finish_reason":"#);
                write_json_str(payload, out);
                out.put_slice(b"}]}");
            }
            Kind::Usage => {
                out.put_slice(self.chunk_head.as_bytes());
                out.put_slice(br#","choices":[],"usage":"#);
                out.put_slice(payload.as_bytes());
                out.put_slice(b"}");
            }
            Kind::Error => out.put_slice(payload.as_bytes()),
            Kind::Done => out.put_slice(b"[DONE]"),
        }
        out.put_slice(b"\n\n");
    }

    /// The whole answer, once finished, as a `chat.completion` object (non-streaming mode).
    pub fn completion(&self) -> Result<serde_json::Value, ApiError> {
        let log = self.log();
        if let Some(e) = &log.early_error {
            return Err(e.clone());
        }
        let (mut content, mut reasoning, mut finish, mut usage) =
            (String::new(), String::new(), "stop".to_string(), None);
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
            return Err(ApiError::upstream(
                axum::http::StatusCode::BAD_GATEWAY,
                "answer_too_long",
                "the answer outgrew the relay's bounded log; use stream: true",
            ));
        }
        let mut message = serde_json::json!({ "role": "assistant", "content": content });
        if !reasoning.is_empty() {
            message["reasoning_content"] = reasoning.into();
        }
        Ok(serde_json::json!({
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [{ "index": 0, "message": message, "finish_reason": finish }],
            "usage": usage,
        }))
    }

    // ---- attachment (disconnect is not cancel) ----

    pub fn attach(self: &Arc<Self>) -> Attachment {
        self.attached.fetch_add(1, Ordering::SeqCst);
        Attachment { generation: self.clone(), grace: None }
    }
}

fn render_text(kind: Kind, payload: &str, skip: &mut usize, out: &mut BytesMut) {
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

/// A reader attached to a generation. Dropping the last one starts the grace period.
pub struct Attachment {
    generation: Arc<Generation>,
    grace: Option<Duration>,
}

impl Attachment {
    pub fn with_grace(mut self, grace: Duration) -> Attachment {
        self.grace = Some(grace);
        self
    }
    pub fn generation(&self) -> &Arc<Generation> {
        &self.generation
    }
}

impl Drop for Attachment {
    fn drop(&mut self) {
        let g = &self.generation;
        if g.attached.fetch_sub(1, Ordering::SeqCst) != 1 || g.is_finished() {
            return;
        }
        let Some(grace) = self.grace else { return };
        let epoch = g.detach_epoch.fetch_add(1, Ordering::SeqCst) + 1;
        let g = g.clone();
        // Drop can run outside a runtime only at shutdown; then there is nothing to cancel.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                tokio::time::sleep(grace).await;
                if g.attached.load(Ordering::SeqCst) == 0 && g.detach_epoch.load(Ordering::SeqCst) == epoch {
                    g.cancel("abandoned");
                }
            });
        }
    }
}

/// Token counts in OpenAI's names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt: Option<u64>,
    pub completion: Option<u64>,
    pub total: Option<u64>,
}

impl Usage {
    /// Reads any provider's usage object (OpenAI, Anthropic or Gemini field names) into `self`,
    /// keeping what earlier objects said when a later one omits a field.
    pub fn merge_json(&mut self, json: &str) {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(json) else { return };
        let get = |names: &[&str]| names.iter().find_map(|n| v.get(*n).and_then(|x| x.as_u64()));
        if let Some(p) = get(&["prompt_tokens", "input_tokens", "promptTokenCount"]) {
            self.prompt = Some(p);
        }
        let thoughts = get(&["thoughtsTokenCount"]).unwrap_or(0);
        if let Some(c) = get(&["completion_tokens", "output_tokens", "candidatesTokenCount"]) {
            self.completion = Some(c + thoughts);
        }
        if let Some(t) = get(&["total_tokens", "totalTokenCount"]) {
            self.total = Some(t);
        }
    }

    pub fn to_json(self) -> String {
        let p = self.prompt.unwrap_or(0);
        let c = self.completion.unwrap_or(0);
        let t = self.total.unwrap_or(p + c);
        format!("{{\"prompt_tokens\":{p},\"completion_tokens\":{c},\"total_tokens\":{t}}}")
    }
}

/// All generations, by id.
pub struct Registry {
    map: Mutex<HashMap<String, Arc<Generation>>>,
    running: AtomicUsize,
}

impl Default for Registry {
    fn default() -> Self {
        Registry { map: Mutex::new(HashMap::new()), running: AtomicUsize::new(0) }
    }
}

impl Registry {
    pub fn insert(&self, g: Arc<Generation>) {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).insert(g.id.clone(), g);
    }

    pub fn get(&self, id: &str) -> Option<Arc<Generation>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).get(id).cloned()
    }

    pub fn running(&self) -> &AtomicUsize {
        &self.running
    }

    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets generations that finished more than `ttl` ago, and beyond `max_finished` kept
    /// answers the oldest ones first (so a burst of traffic cannot hold memory for a whole TTL).
    pub fn sweep(&self, ttl: Duration, max_finished: usize) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(deadline) = Instant::now().checked_sub(ttl) {
            map.retain(|_, g| !g.finished_before(deadline));
        }
        let mut finished: Vec<(Instant, String)> =
            map.iter().filter_map(|(id, g)| g.log().finished_at.map(|t| (t, id.clone()))).collect();
        if finished.len() > max_finished {
            finished.sort_unstable();
            for (_, id) in &finished[..finished.len() - max_finished] {
                map.remove(id);
            }
        }
    }
}

/// A fresh unguessable generation id (the id is the capability to resume and cancel).
pub fn new_id() -> String {
    let mut raw = [0u8; 16];
    if getrandom::fill(&mut raw).is_err() {
        raw.iter_mut().for_each(|b| *b = fastrand::u8(..));
    }
    const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut n = u128::from_le_bytes(raw);
    let mut id = String::with_capacity(31);
    id.push_str("chatcmpl-");
    for _ in 0..22 {
        id.push(ALPHABET[(n % 62) as usize] as char);
        n /= 62;
    }
    id
}

pub fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
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

fn itoa_buf() -> [u8; 20] {
    [0; 20]
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

#[cfg(test)]
mod tests {
    use super::*;

    fn gen(max: usize) -> Generation {
        Generation::new("chatcmpl-t".into(), "m".into(), String::new(), max, Arc::new(Metrics::default()))
    }

    fn sse(g: &Generation, after: u64) -> String {
        let mut next = after + 1;
        let mut out = BytesMut::new();
        g.render(&mut next, Render::Sse, &mut 0, &mut out).unwrap();
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn events_are_numbered_and_end_with_done() {
        let g = gen(1 << 20);
        g.start();
        g.push_delta(Kind::Reasoning, "hm");
        g.push_delta(Kind::Content, "a\"\n✓");
        g.end("stop", None);
        let s = sse(&g, 0);
        let ids: Vec<&str> = s.lines().filter_map(|l| l.strip_prefix("id: ")).collect();
        assert_eq!(ids, ["1", "2", "3", "4", "5", "6"]);
        assert!(s.contains(r#""delta":{"content":"a\"\n✓"}"#), "{s}");
        assert!(s.contains(r#""reasoning_content":"hm""#));
        assert!(s.ends_with("id: 6\ndata: [DONE]\n\n"));
        for line in s.lines().filter_map(|l| l.strip_prefix("data: ")).filter(|d| *d != "[DONE]") {
            serde_json::from_str::<serde_json::Value>(line).unwrap();
        }
        assert_eq!(sse(&g, 4), "id: 5\ndata: {\"id\":\"chatcmpl-t\",\"object\":\"chat.completion.chunk\",\"created\":".to_string() + &g.created.to_string() + ",\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":0,\"completion_tokens\":2,\"total_tokens\":2}}\n\nid: 6\ndata: [DONE]\n\n");
    }

    #[test]
    fn bounded_log_drops_oldest_and_refuses_resume_before_them() {
        let g = gen(1024);
        g.start();
        for i in 0..100 {
            g.push_delta(Kind::Content, &format!("{i:020}"));
        }
        let log = g.log();
        assert!(log.text.len() <= 1024);
        assert!(log.first_seq > 1);
        let first = log.first_seq;
        assert_eq!(log.payload(log.entries.len() - 1), format!("{:020}", 99));
        drop(log);
        assert!(g.check_resume(0).is_err());
        assert_eq!(g.check_resume(first - 1).unwrap(), first);
    }

    #[test]
    fn text_offset_finds_the_byte_inside_an_event() {
        let g = gen(1 << 20);
        g.start();
        g.push_delta(Kind::Reasoning, "xx");
        g.push_delta(Kind::Content, "héllo");
        g.push_delta(Kind::Content, "world");
        assert_eq!(g.text_offset(0).unwrap(), (3, 0));
        assert_eq!(g.text_offset(4).unwrap(), (3, 4));
        assert_eq!(g.text_offset(6).unwrap(), (4, 0));
        let (mut next, mut skip) = g.text_offset(8).unwrap();
        let mut out = BytesMut::new();
        g.render(&mut next, Render::Text, &mut skip, &mut out).unwrap();
        assert_eq!(&out[..], b"rld");
    }

    #[test]
    fn usage_merges_provider_names() {
        let mut u = Usage::default();
        u.merge_json(r#"{"input_tokens":12,"output_tokens":1}"#);
        u.merge_json(r#"{"output_tokens":40}"#);
        assert_eq!(u.to_json(), r#"{"prompt_tokens":12,"completion_tokens":40,"total_tokens":52}"#);
        let mut g = Usage::default();
        g.merge_json(r#"{"promptTokenCount":3,"candidatesTokenCount":5,"thoughtsTokenCount":2,"totalTokenCount":10}"#);
        assert_eq!(g.to_json(), r#"{"prompt_tokens":3,"completion_tokens":7,"total_tokens":10}"#);
    }

    #[test]
    fn sweep_keeps_at_most_max_finished_answers_newest_first() {
        let r = Registry::default();
        let mut ids = Vec::new();
        for i in 0..5 {
            let g = Arc::new(Generation::new(
                format!("g{i}"),
                "m".into(),
                String::new(),
                4096,
                Arc::new(Metrics::default()),
            ));
            if i != 2 {
                g.end("stop", None);
            }
            ids.push(g.id.clone());
            r.insert(g);
            std::thread::sleep(Duration::from_millis(2));
        }
        r.sweep(Duration::from_secs(600), 2);
        let kept: Vec<bool> = ids.iter().map(|id| r.get(id).is_some()).collect();
        // g2 is running (never swept); of the finished g0, g1, g3, g4 the newest two stay.
        assert_eq!(kept, [false, false, true, true, true]);
    }

    #[test]
    fn ids_are_unique_and_url_safe() {
        let a = new_id();
        assert_ne!(a, new_id());
        assert!(a.starts_with("chatcmpl-") && a.len() == 31 && a[9..].chars().all(|c| c.is_ascii_alphanumeric()));
    }
}
