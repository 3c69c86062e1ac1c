//! Stopping without cutting answers, as nginx's graceful shutdown does: on SIGTERM (a rolling
//! deploy, `systemctl restart`, a container stop) the relay
//!
//! 1. **stops taking work.** Each worker closes its listener, so a balancer's next connect is
//!    refused and goes to another instance. A connection already open stays open: a resume or a
//!    cancel of an answer this instance holds is still served on it, a new answer is refused
//!    with 503 `relay_draining` (`Retry-After: 1`), `/healthz` answers 503, and every response
//!    says `Connection: close`, so the client's next request opens a connection elsewhere.
//! 2. **lets the running answers finish**, and their readers read them to the end: it waits
//!    until no answer is running, no reader of one is open and, with a shared store, every
//!    answer's end has been written to Redis (so readers on other instances read it to the end
//!    too). At most `server.drain_timeout_secs`. Without a store, an answer whose readers all
//!    left (in its grace period) is cancelled, as its grace period would: no one can resume it.
//! 3. **past that bound, ends what is left** with a `relay_shutdown` error event, its finish and
//!    `[DONE]`, and aborts the upstream requests (closing their connections). With a shared
//!    store that end is written to Redis like any other, so readers elsewhere get the same end
//!    instead of waiting for the lease to lapse. At most [`FLUSH`] more for that, and only
//!    when something was ended or is still to be written (a reader that does not read is not
//!    waited for again).
//! 4. **closes every connection** as hyper's graceful shutdown does (a response still being
//!    written is finished, an idle keep-alive connection is closed), at most [`CLOSE`], and
//!    exits with status 0, waiting at most [`JOIN`] more for the worker threads to end.
//!
//! So the process exits at most `server.drain_timeout_secs` + [`LATE`] (4 s) after the signal.
//!
//! A second SIGTERM or SIGINT during any of this exits at once. A stream of an answer that
//! another instance holds (served here from Redis) is not waited for: it is cut at step 4
//! and its client resumes on another instance, where the answer goes on.
//!
//! What it costs while serving: nothing per event. Per request, one atomic load (the
//! `Connection: close` layer); per answer, one (the refusal in [`crate::App::begin`]); per
//! connection, an entry in its worker's [`Connections`] while it waits, and one atomic load
//! each time it is polled. The waits are polls of counters the relay keeps anyway
//! ([`POLL`] apart), on the control thread.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Waker;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::App;

/// How often the drain looks whether anything is left to wait for.
pub const POLL: Duration = Duration::from_millis(50);
/// How long the ends written at the drain timeout may take to reach Redis (a batch or two of
/// its writer), when there is anything to write: answers were ended, or the store still holds
/// some. A reader that does not read is not waited for here; step 4 gives its connection
/// [`CLOSE`] to take what hyper has buffered.
pub const FLUSH: Duration = Duration::from_secs(2);
/// How long the connections may take to finish the response they are writing, at the end.
pub const CLOSE: Duration = Duration::from_secs(1);
/// How long the worker threads may take to end after their connections were closed (or
/// dropped, on a second signal or a failure) before the process exits without them.
pub const JOIN: Duration = Duration::from_secs(1);
/// The most a drain takes past `server.drain_timeout_secs`, from the signal to the exit.
pub const LATE: Duration = Duration::from_secs(FLUSH.as_secs() + CLOSE.as_secs() + JOIN.as_secs());

/// Whether this relay is draining: set once, never cleared.
#[derive(Debug, Default)]
pub struct Drain {
    started: AtomicBool,
}

impl Drain {
    /// From now on new answers are refused (see [`crate::App::begin`]).
    pub fn begin(&self) {
        self.started.store(true, Ordering::SeqCst);
    }

    pub fn started(&self) -> bool {
        self.started.load(Ordering::SeqCst)
    }
}

/// A new answer asked of a draining relay.
pub fn refusal() -> ApiError {
    ApiError {
        retry_after: Some(1),
        ..ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            "relay_draining",
            "this relay instance is shutting down; retry (another instance will answer)",
        )
    }
}

/// The end of an answer still running when the drain timeout passed.
pub fn shutdown_error(timeout: Duration) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "server_error",
        "relay_shutdown",
        format!(
            "this relay instance shut down before the answer finished (it waited {} s for it); ask again",
            timeout.as_secs()
        ),
    )
}

/// How a drain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drained {
    /// Every answer finished and was read.
    Finished,
    /// The timeout passed: `answers` were still running and ended with [`shutdown_error`];
    /// `readers` streams were still open (their connections are closed next).
    Interrupted { answers: usize, readers: u64 },
}

impl App {
    /// Nothing left to wait for: no answer running, no reader of one open, and no answer's
    /// end still to be written to the shared store.
    pub fn drained(&self) -> bool {
        // SeqCst: read after [`Drain::begin`], so an answer that started before it is counted
        // here, and one that did not was refused (see `start_as`).
        self.registry.running().load(Ordering::SeqCst) == 0
            && self.metrics.open_streams.load(Ordering::SeqCst) == 0
            && self.store.as_ref().is_none_or(|s| s.holding() == 0)
    }

    /// [`App::drained`], after ending, without a shared store, the answers whose readers all
    /// left: nobody can read them any more (a resume comes on a new connection, which goes to
    /// another instance), so they would only hold the drain up to its timeout. With a store
    /// they go on: readers on other instances may still come.
    fn drained_or_let_go(&self) -> bool {
        if self.store.is_none() {
            for g in self.registry.unfinished() {
                if g.abandoned() {
                    g.cancel("abandoned");
                }
            }
        }
        self.drained()
    }

    /// No answer running, and none whose end is still to be written to the shared store.
    pub fn written(&self) -> bool {
        self.registry.running().load(Ordering::SeqCst) == 0 && self.store.as_ref().is_none_or(|s| s.holding() == 0)
    }

    /// Ends every answer still running with `error`, `finish_reason: "error"` and `[DONE]`,
    /// and aborts its upstream request. Returns how many there were.
    pub fn interrupt(&self, error: &ApiError) -> usize {
        let running = self.registry.unfinished();
        for g in &running {
            g.fail(error.clone());
            g.end("error", None);
            // Ended already: this only aborts the task, which closes its upstream connection.
            g.cancel(&error.code);
        }
        running.len()
    }
}

/// Steps 2 and 3: waits for the running answers (at most `timeout`), then ends what is left
/// and, if anything was ended or is still to be written to Redis, waits for those ends to be
/// written (at most [`FLUSH`]). Call [`Drain::begin`] first.
pub async fn drain(app: &App, timeout: Duration) -> Drained {
    if settled(app, timeout, App::drained_or_let_go).await {
        return Drained::Finished;
    }
    let answers = app.interrupt(&shutdown_error(timeout));
    if answers > 0 || !app.written() {
        settled(app, FLUSH, App::written).await;
    }
    Drained::Interrupted { answers, readers: app.metrics.open_streams.load(Ordering::SeqCst) }
}

/// Whether `done` holds within `limit`.
async fn settled(app: &App, limit: Duration, done: fn(&App) -> bool) -> bool {
    // Capped: an instant a configured `u64::MAX` seconds away does not exist.
    let deadline = tokio::time::Instant::now() + limit.min(Duration::from_secs(u64::from(u32::MAX)));
    loop {
        if done(app) {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL.min(deadline - tokio::time::Instant::now())).await;
    }
}

/// `GET /healthz`: 503 while draining, so a balancer that still reaches it takes the
/// instance out.
pub async fn healthz(State(app): State<Arc<App>>) -> Response {
    if !app.drain.started() {
        return crate::routes::healthz(State(app)).await.into_response();
    }
    let body = serde_json::json!({
        "status": "draining",
        "upstream": app.config.upstream.kind.name(),
        "generations": app.registry.len(),
        "active": app.metrics.active_generations.load(Ordering::Relaxed),
    });
    (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
}

/// Layer: while draining, every response closes its connection after it, so the client's
/// next request opens one, which another instance accepts.
pub async fn close_when_draining(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    if app.drain.started() {
        res.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    res
}

/// The client connections one server loop ([`crate::serve_until`]) accepted, so that they can
/// all be closed gracefully at the end (step 4). A connection's task registers its waker when
/// it first waits, and looks at one flag each time it is polled.
#[derive(Default)]
pub struct Connections {
    closing: AtomicBool,
    next: AtomicU64,
    waiting: Mutex<HashMap<u64, Waker>>,
}

impl Connections {
    /// Runs one connection until it ends; once [`Connections::close`] is called, calls
    /// `shutdown` on it once (hyper's graceful shutdown) and lets it finish.
    pub async fn run<C: Future>(self: Arc<Self>, conn: C, shutdown: fn(Pin<&mut C>)) -> C::Output {
        let mut conn = std::pin::pin!(conn);
        let mut entry: Option<Entry> = None;
        let mut shut = false;
        std::future::poll_fn(|cx| {
            if !shut && self.closing.load(Ordering::Relaxed) {
                shut = true;
                shutdown(conn.as_mut());
            }
            let poll = conn.as_mut().poll(cx);
            if poll.is_pending() {
                match &mut entry {
                    None => entry = Some(self.enter(cx.waker())),
                    // A task keeps its waker; should it change, the new one is the one to wake.
                    Some(e) if !e.waker.will_wake(cx.waker()) => e.update(cx.waker()),
                    Some(_) => {}
                }
            }
            poll
        })
        .await
    }

    fn enter(self: &Arc<Self>, waker: &Waker) -> Entry {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let entry = Entry { connections: self.clone(), id, waker: waker.clone() };
        self.lock().insert(id, waker.clone());
        // Closing began before the entry was in the map, so `close` did not wake it.
        if self.closing.load(Ordering::SeqCst) {
            waker.wake_by_ref();
        }
        entry
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Waker>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many connections are open and waiting.
    pub fn open(&self) -> usize {
        self.lock().len()
    }

    /// Shuts every connection down gracefully and waits, at most `limit`, until they ended.
    /// Returns how many are still open then.
    pub async fn close(&self, limit: Duration) -> usize {
        self.closing.store(true, Ordering::SeqCst);
        for waker in self.lock().values() {
            waker.wake_by_ref();
        }
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let open = self.open();
            if open == 0 || tokio::time::Instant::now() >= deadline {
                return open;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// A connection in [`Connections`]: out of it when dropped (its task ended).
struct Entry {
    connections: Arc<Connections>,
    id: u64,
    waker: Waker,
}

impl Entry {
    fn update(&mut self, waker: &Waker) {
        self.waker = waker.clone();
        self.connections.lock().insert(self.id, waker.clone());
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.connections.lock().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Poll;

    /// A connection that ends only after it was told to shut down, one poll later.
    struct Conn {
        told: bool,
        polls_after: usize,
    }

    impl Future for Conn {
        type Output = usize;
        fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<usize> {
            if self.told {
                self.polls_after += 1;
                if self.polls_after == 2 {
                    return Poll::Ready(self.polls_after);
                }
                cx.waker().wake_by_ref();
            }
            Poll::Pending
        }
    }

    fn shut(mut c: Pin<&mut Conn>) {
        c.told = true;
    }

    #[tokio::test]
    async fn close_shuts_down_every_waiting_connection_and_waits_for_it() {
        let conns = Arc::new(Connections::default());
        let tasks: Vec<_> =
            (0..3).map(|_| tokio::spawn(conns.clone().run(Conn { told: false, polls_after: 0 }, shut))).collect();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(conns.open(), 3);
        assert!(tasks.iter().all(|t| !t.is_finished()), "a connection ended before it was told");
        assert_eq!(conns.close(Duration::from_secs(5)).await, 0);
        for t in tasks {
            assert_eq!(t.await.unwrap(), 2);
        }
        // One that starts after the close is told at once.
        let late = tokio::spawn(conns.clone().run(Conn { told: false, polls_after: 0 }, shut));
        assert_eq!(tokio::time::timeout(Duration::from_secs(5), late).await.unwrap().unwrap(), 2);
        assert_eq!(conns.open(), 0);
    }

    #[tokio::test]
    async fn close_gives_up_on_a_connection_after_its_limit() {
        let conns = Arc::new(Connections::default());
        let stuck = tokio::spawn(conns.clone().run(std::future::pending::<()>(), |_| {}));
        tokio::time::sleep(Duration::from_millis(20)).await;
        let t = tokio::time::Instant::now();
        assert_eq!(conns.close(Duration::from_millis(100)).await, 1);
        assert!(t.elapsed() < Duration::from_secs(2));
        stuck.abort();
        let _ = stuck.await;
        assert_eq!(conns.open(), 0, "an aborted connection left its entry");
    }
}
