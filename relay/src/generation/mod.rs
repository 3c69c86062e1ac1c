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
//! - With a follower (the shared store's mirror) the log never drops an event the follower
//!   has not copied. The upstream task asks for [`Generation::room`] before each read: while
//!   the uncopied text exceeds half the log's bound it stops reading (TCP flow control holds
//!   the upstream) and wakes the follower, for at most [`MIRROR_WAIT`]; past that the answer
//!   ends with a `store_unavailable` error instead of losing text. So the log exceeds its
//!   bound by at most what one upstream read decodes to.

mod log;
mod output;
mod registry;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use tokio::task::AbortHandle;

use crate::error::ApiError;
use crate::metrics::Metrics;
use chunkwise::usage::Usage;
pub use log::Kind;
use log::Log;
pub(crate) use output::render_text;
pub use output::{chunk_head, render_sse, Render};
pub use registry::{new_id, Registry};

pub struct Generation {
    pub id: String,
    pub model: String,
    pub created: u64,
    /// Token subject that started it (empty when tokens are off); resume and cancel must match.
    pub owner: String,
    /// `{"id":"…","object":"chat.completion.chunk","created":…,"model":"…"`
    chunk_head: String,
    log: Mutex<Log>,
    changed: Arc<Changes>,
    task: Mutex<Option<AbortHandle>>,
    attached: AtomicUsize,
    /// Bumped on every detach, so a grace timer only acts on the detach that started it.
    detach_epoch: AtomicU64,
    started_at: Instant,
    max_log_bytes: usize,
    metrics: Arc<Metrics>,
    /// The shared store's writer, told of changes (see [`Generation::follow`]).
    follower: OnceLock<Follower>,
}

/// The longest the upstream task waits for the follower to copy the log before the answer
/// ends with an error. It outlasts the shared store's mirror giving up on a store that stopped
/// answering (its first write fails after 2.5 s, it gives up after failing for the 6 s lease,
/// and its last attempt takes at most 3.6 s: 12.1 s, `store::mirror::GIVE_UP_MS`, checked
/// against this when the relay is compiled), so the holder's own readers go on from memory,
/// as with no store, instead of ending with an error.
pub const MIRROR_WAIT: Duration = Duration::from_secs(13);

/// A queue that hears of a generation's changes: the generation is sent once, and not again
/// until the follower has called [`Generation::take_change`] (so each generation is in the
/// queue at most once, whatever the rate of its events).
struct Follower {
    queued: AtomicBool,
    me: Weak<Generation>,
    tx: tokio::sync::mpsc::UnboundedSender<Arc<Generation>>,
    /// Told when a generation waits for room: the follower copies now instead of lingering.
    hurry: Arc<tokio::sync::Notify>,
    /// Told when the follower copied events (or let go): the upstream task looks again.
    copied: tokio::sync::Notify,
}

/// How readers hear of a generation's changes: a version bumped on every change, and one
/// `Notify` for the readers waiting (a watch channel notifies eight shards per change, each
/// under a lock of its own, and a generation changes once per delta).
#[derive(Default)]
struct Changes {
    version: AtomicU64,
    notify: tokio::sync::Notify,
}

impl Changes {
    fn send(&self) {
        self.version.fetch_add(1, Ordering::Release);
        self.notify.notify_waiters();
    }
}

/// One reader's view of a generation's changes.
pub struct ChangeRx {
    changes: Arc<Changes>,
    seen: u64,
}

impl ChangeRx {
    /// Returns once the generation changed after the last change this receiver saw (at once
    /// when it already has), and marks it seen.
    pub async fn changed(&mut self) {
        loop {
            // Registered before the version is read: a change between the two still wakes it.
            let notified = self.changes.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let now = self.changes.version.load(Ordering::Acquire);
            if now != self.seen {
                self.seen = now;
                return;
            }
            notified.await;
        }
    }

    /// Marks every change so far seen: call before reading the log.
    pub fn mark_seen(&mut self) {
        self.seen = self.changes.version.load(Ordering::Acquire);
    }
}

/// Seconds since the Unix epoch: a generation's `created`.
pub fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl Generation {
    pub fn new(id: String, model: String, owner: String, max_log_bytes: usize, metrics: Arc<Metrics>) -> Generation {
        Generation::created_at(id, now_secs(), model, owner, max_log_bytes, metrics)
    }

    /// A generation whose `created` was fixed before (the shared store wrote it already).
    pub fn created_at(
        id: String,
        created: u64,
        model: String,
        owner: String,
        max_log_bytes: usize,
        metrics: Arc<Metrics>,
    ) -> Generation {
        let chunk_head = output::chunk_head(&id, created, &model);
        Generation {
            id,
            model,
            created,
            owner,
            chunk_head,
            log: Mutex::new(Log::default()),
            changed: Arc::default(),
            task: Mutex::new(None),
            attached: AtomicUsize::new(0),
            detach_epoch: AtomicU64::new(0),
            started_at: Instant::now(),
            max_log_bytes: max_log_bytes.max(1024),
            metrics,
            follower: OnceLock::new(),
        }
    }

    /// Wakes the readers and tells the follower, if any.
    fn notify(&self) {
        self.changed.send();
        if let Some(f) = self.follower.get() {
            if !f.queued.swap(true, Ordering::AcqRel) {
                if let Some(me) = f.me.upgrade() {
                    let _ = f.tx.send(me);
                }
            }
        }
    }

    /// Sends this generation to `tx` now and after each change, once until the receiver calls
    /// [`Generation::take_change`]. One follower per generation; a second call is ignored.
    /// From now on the log keeps every event the follower has not copied (see
    /// [`Generation::copied`]); `hurry` is told when the upstream waits for it.
    pub fn follow(
        self: &Arc<Self>,
        tx: tokio::sync::mpsc::UnboundedSender<Arc<Generation>>,
        hurry: Arc<tokio::sync::Notify>,
    ) {
        let follower = Follower {
            queued: AtomicBool::new(true),
            me: Arc::downgrade(self),
            tx: tx.clone(),
            hurry,
            copied: tokio::sync::Notify::new(),
        };
        if self.follower.set(follower).is_ok() {
            {
                let mut log = self.log();
                log.hold_from = Some(log.first_seq);
            }
            let _ = tx.send(self.clone());
        }
    }

    /// The follower has every event before `next`: the log may drop them when it must.
    pub fn copied(&self, next: u64) {
        {
            let mut log = self.log();
            if let Some(from) = log.hold_from.as_mut() {
                *from = (*from).max(next);
            }
        }
        if let Some(f) = self.follower.get() {
            f.copied.notify_one();
        }
    }

    /// The follower stopped copying (it gave up on a failing store): nothing is held back.
    pub fn let_go(&self) {
        self.log().hold_from = None;
        if let Some(f) = self.follower.get() {
            f.copied.notify_one();
        }
    }

    /// Waits until the follower has copied enough of the log that the next upstream read
    /// cannot make it drop an uncopied event: at once without a follower or with room, at
    /// most [`MIRROR_WAIT`] otherwise (then an error: the answer must end, not lose text).
    /// `Ok(true)` when it waited.
    pub async fn room(&self) -> Result<bool, ApiError> {
        let Some(f) = self.follower.get() else { return Ok(false) };
        let bound = self.max_log_bytes / 2;
        if self.log().held_bytes() <= bound {
            return Ok(false);
        }
        let deadline = tokio::time::Instant::now() + MIRROR_WAIT;
        loop {
            f.hurry.notify_one();
            let copied = f.copied.notified();
            if self.log().held_bytes() <= bound {
                return Ok(true);
            }
            if tokio::time::timeout_at(deadline, copied).await.is_err() {
                return Err(ApiError::new(
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    "server_error",
                    "store_unavailable",
                    format!(
                        "the relay's shared store did not keep up with this answer for {} s; it ends here rather than lose text",
                        MIRROR_WAIT.as_secs()
                    ),
                ));
            }
        }
    }

    /// The follower is about to read the log: the next change sends the generation again.
    pub fn take_change(&self) {
        if let Some(f) = self.follower.get() {
            f.queued.store(false, Ordering::Release);
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
        self.notify();
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
        self.notify();
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
                self.notify();
                return;
            }
            let max = self.max_log_bytes;
            log.push(Kind::Error, &error.body(), max);
        }
        self.notify();
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
            let usage = usage.unwrap_or(Usage { completion: Some(log.deltas), ..Usage::default() });
            log.push(Kind::Usage, &usage.to_openai_json(), max);
            log.push(Kind::Done, "", max);
            log.finished = true;
            log.finished_at = Some(Instant::now());
            // A finished answer is kept for the TTL: drop the growth slack now.
            log.text.shrink_to_fit();
            log.entries.shrink_to_fit();
        }
        self.notify();
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
        self.finished_at().is_some_and(|t| t < deadline)
    }

    pub fn finished_at(&self) -> Option<Instant> {
        self.log().finished_at
    }

    /// Hears of every change from now on (see [`ChangeRx::changed`]).
    pub fn subscribe(&self) -> ChangeRx {
        ChangeRx { seen: self.changed.version.load(Ordering::Acquire), changes: self.changed.clone() }
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
            rx.changed().await;
        }
    }

    /// The sequence number a reader starting after `after` should read next: 410 when those
    /// events were dropped from the bounded log, 400 when `after` is past the last event.
    pub fn check_resume(&self, after: u64) -> Result<u64, ApiError> {
        let log = self.log();
        let next = after.checked_add(1).filter(|n| *n <= log.end_seq());
        let Some(next) = next else {
            return Err(ApiError::bad_request(
                "invalid_parameter",
                format!("cannot resume after event {after}: the last event is {}", log.end_seq() - 1),
            ));
        };
        if next < log.first_seq {
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
        Ok(next)
    }

    /// The sequence number to read next so that a text reader skips `offset` bytes of answer,
    /// and how many bytes of that event's payload to skip: 410 when part of the text after
    /// `offset` was dropped from the bounded log, 400 when `offset` is past the answer so far.
    pub fn text_offset(&self, offset: u64) -> Result<(u64, usize), ApiError> {
        let log = self.log();
        if offset < log.dropped_content {
            return Err(ApiError::new(
                axum::http::StatusCode::GONE,
                "invalid_request_error",
                "events_expired",
                format!(
                    "the first {} bytes of this answer were dropped from its bounded log; cannot resume at byte {offset}",
                    log.dropped_content
                ),
            ));
        }
        let mut left = offset - log.dropped_content;
        for (i, e) in log.entries.iter().enumerate() {
            if e.kind != Kind::Content {
                continue;
            }
            let len = log.payload(i).len() as u64;
            if left < len {
                return Ok((log.first_seq + i as u64, left as usize));
            }
            left -= len;
        }
        if left > 0 {
            return Err(ApiError::bad_request(
                "invalid_parameter",
                format!("offset={offset} is past the {} bytes of answer so far", offset - left),
            ));
        }
        Ok((log.end_seq(), 0))
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
        let end = log.end_seq();
        // Sized once: grown from empty, one event's chunk took seven allocations.
        let mut sse = match render {
            Render::Sse if *next < end => {
                let payload = log.payload_bytes_from((*next - log.first_seq) as usize);
                String::with_capacity((end - *next) as usize * (self.chunk_head.len() + 96) + payload + payload / 4)
            }
            _ => String::new(),
        };
        while *next < end {
            let i = (*next - log.first_seq) as usize;
            let kind = log.entries[i].kind;
            let payload = log.payload(i);
            match render {
                Render::Sse => output::render_sse(&self.chunk_head, *next, kind, payload, &mut sse),
                Render::Text => output::render_text(kind, payload, skip, out),
            }
            *next += 1;
        }
        out.extend_from_slice(sse.as_bytes());
        Ok(log.finished)
    }

    /// Hands up to `max` events from `*next` on to `each` as `(seq, kind, payload)`, advances
    /// `*next`, and says whether the generation is finished and every event handed over. The
    /// shared store mirrors the log with it. `Err(first)` when events from `*next` on were
    /// already dropped from the bounded log (the log now starts at `first`): nothing is handed
    /// over, so a copy never has a hole in it.
    pub fn copy_events(&self, next: &mut u64, max: usize, mut each: impl FnMut(u64, Kind, &str)) -> Result<bool, u64> {
        let log = self.log();
        if *next < log.first_seq {
            return Err(log.first_seq);
        }
        let end = log.end_seq().min(next.saturating_add(max as u64));
        while *next < end {
            let i = (*next - log.first_seq) as usize;
            each(*next, log.entries[i].kind, log.payload(i));
            *next += 1;
        }
        Ok(log.finished && *next == log.end_seq())
    }

    /// The whole answer, once finished, as a `chat.completion` object (non-streaming mode).
    pub fn completion(&self) -> Result<serde_json::Value, ApiError> {
        output::completion(&self.log(), &self.id, self.created, &self.model)
    }

    // ---- attachment (disconnect is not cancel) ----

    /// Running, with no reader attached since its last reader left (in its grace period).
    pub fn abandoned(&self) -> bool {
        !self.is_finished() && self.attached.load(Ordering::SeqCst) == 0 && self.detach_epoch.load(Ordering::SeqCst) > 0
    }

    pub fn attach(self: &Arc<Self>) -> Attachment {
        self.attached.fetch_add(1, Ordering::SeqCst);
        Attachment { generation: self.clone(), grace: None }
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
        assert_eq!(g.check_resume(0).unwrap_err().code, "events_expired");
        assert_eq!(g.check_resume(first - 1).unwrap(), first);
        assert_eq!(g.check_resume(u64::MAX).unwrap_err().code, "invalid_parameter");
    }

    #[test]
    fn a_copy_behind_the_bounded_log_is_told_not_moved_past_the_hole() {
        let g = gen(1024);
        g.start();
        let (mut next, mut out) = (1, Vec::new());
        let copy = |next: &mut u64, out: &mut Vec<u64>| g.copy_events(next, 1000, |seq, _, _| out.push(seq));
        assert_eq!(copy(&mut next, &mut out), Ok(false));
        assert_eq!((next, out.len()), (2, 1));
        for i in 0..100 {
            g.push_delta(Kind::Content, &format!("{i:020}"));
        }
        let first = g.log().first_seq;
        out.clear();
        assert_eq!(copy(&mut next, &mut out), Err(first));
        assert_eq!((next, out.len()), (2, 0), "nothing copied past the dropped events");
    }

    #[tokio::test(start_paused = true)]
    async fn a_followed_log_keeps_uncopied_events_and_holds_the_upstream_back() {
        let g = Arc::new(gen(1024));
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        g.follow(tx, Arc::new(tokio::sync::Notify::new()));
        g.start();
        for i in 0..100 {
            g.push_delta(Kind::Content, &format!("{i:020}"));
        }
        // Nothing copied: nothing dropped, however far past the bound.
        assert_eq!(g.log().first_seq, 1);
        assert!(g.log().text.len() > 1024);
        // No room until the copy catches up; past the bound the wait ends with an error.
        let t = tokio::time::Instant::now();
        let err = g.room().await.unwrap_err();
        assert_eq!(err.code, "store_unavailable");
        assert_eq!(t.elapsed(), MIRROR_WAIT);
        // Copied up to near the end: room, and the log may now drop what was copied.
        let waiting = {
            let g = g.clone();
            tokio::spawn(async move { g.room().await })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        g.copied(95);
        assert!(waiting.await.unwrap().unwrap());
        g.push_delta(Kind::Content, "x");
        let first = g.log().first_seq;
        assert!(first > 1 && first <= 95, "{first}");
        // A follower that lets go holds nothing back.
        for i in 0..100 {
            g.push_delta(Kind::Content, &format!("{i:020}"));
        }
        g.let_go();
        assert!(!g.room().await.unwrap());
        g.push_delta(Kind::Content, "y");
        assert!(g.log().text.len() <= 1024);
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

    /// A change is never missed: one made before `changed` is awaited returns at once, and
    /// every reader waiting is woken by the next one; with no new change it waits.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn readers_hear_every_change() {
        let g = Arc::new(gen(1 << 20));
        let mut early = g.subscribe();
        g.push_delta(Kind::Content, "a");
        tokio::time::timeout(Duration::from_secs(1), early.changed()).await.expect("a change before the wait");
        let quiet = tokio::time::timeout(Duration::from_millis(50), early.changed()).await;
        assert!(quiet.is_err(), "no change, yet changed() returned");
        early.mark_seen();

        let waiting: Vec<_> = (0..4)
            .map(|_| {
                let mut rx = g.subscribe();
                tokio::spawn(async move { tokio::time::timeout(Duration::from_secs(2), rx.changed()).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(20)).await;
        g.push_delta(Kind::Content, "b");
        for w in waiting {
            assert!(w.await.unwrap().is_ok(), "a waiting reader was not woken");
        }
        // Many changes while it did not look are one wake, then quiet again.
        for _ in 0..3 {
            g.push_delta(Kind::Content, "c");
        }
        tokio::time::timeout(Duration::from_secs(1), early.changed()).await.expect("the changes while away");
        assert!(tokio::time::timeout(Duration::from_millis(50), early.changed()).await.is_err());
    }
}
