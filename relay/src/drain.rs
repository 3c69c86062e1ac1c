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
//! `Connection: close` header) and a count held while its response is written ([`Busy`]); per
//! answer, one atomic load (the refusal in [`crate::App::begin`]); per connection, one atomic
//! load each time it is polled ([`Connections`]). The waits are polls of counters the relay keeps anyway
//! ([`POLL`] apart), on the control thread.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};

use tokio::sync::Notify;

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
        self.written() && self.metrics.open_streams.load(Ordering::SeqCst) == 0
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

/// While draining, `res` closes its connection after it, so the client's next request opens
/// one, which another instance accepts. Called on every response (one atomic load).
pub fn close_when_draining<B>(app: &App, res: &mut axum::http::Response<B>) {
    if app.drain.started() {
        res.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
}

/// The client connections one server loop ([`crate::serve_until`]) accepted, so that they can
/// be closed gracefully at the end (step 4) without a cost per connection: a connection looks
/// at one flag each time it is polled, and a request holds a count while its response is
/// written ([`Connections::busy`]). At the end, every connection polled again (one with a
/// response to write, or to flush) is shut down gracefully and waited for; one that is idle
/// between requests is not polled, and is dropped with its runtime.
///
/// [`Connections::close`] must run on the runtime (a current-thread one) that polls the
/// connections, so that a connection's poll is never halfway when it looks at the counts.
#[derive(Default)]
pub struct Connections {
    closing: AtomicBool,
    /// Requests whose response is not written to its end.
    busy: AtomicUsize,
    /// Connections shut down since the close began that have not ended.
    shutting: AtomicUsize,
    /// Told, once closing, when either count drops.
    dropped: Notify,
}

impl Connections {
    /// Runs one connection until it ends; once [`Connections::close`] began, calls `shutdown`
    /// on it once (hyper's graceful shutdown) when it is next polled, and lets it finish.
    pub async fn run<C: Future>(self: Arc<Self>, conn: C, shutdown: fn(Pin<&mut C>)) -> C::Output {
        let mut conn = std::pin::pin!(conn);
        let mut shut: Option<Shutting> = None;
        std::future::poll_fn(|cx| {
            if shut.is_none() && self.closing.load(Ordering::Relaxed) {
                shut = Some(self.shutting());
                shutdown(conn.as_mut());
            }
            let poll = conn.as_mut().poll(cx);
            // The close may have begun while it was polled (a response ended, its tail left
            // to flush): shut it down now, on the next poll, so that it is waited for.
            if poll.is_pending() && shut.is_none() && self.closing.load(Ordering::Relaxed) {
                cx.waker().wake_by_ref();
            }
            poll
        })
        .await
    }

    fn shutting(self: &Arc<Self>) -> Shutting {
        self.shutting.fetch_add(1, Ordering::Relaxed);
        Shutting(self.clone())
    }

    /// Held by a request until its response is written to its end (or dropped).
    pub fn busy(self: &Arc<Self>) -> Busy {
        self.busy.fetch_add(1, Ordering::Relaxed);
        Busy(self.clone())
    }

    /// How many requests are being answered, and connections being shut down.
    pub fn open(&self) -> usize {
        self.busy.load(Ordering::Relaxed) + self.shutting.load(Ordering::Relaxed)
    }

    fn dropped(&self) {
        if self.closing.load(Ordering::Relaxed) {
            self.dropped.notify_one();
        }
    }

    /// Shuts down gracefully every connection with a response to write (see the type) and
    /// waits, at most `limit`, until they ended. Returns how many are still open then.
    pub async fn close(&self, limit: Duration) -> usize {
        self.closing.store(true, Ordering::SeqCst);
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let dropped = self.dropped.notified();
            // Let the connections polled since the flag was set see it first.
            tokio::task::yield_now().await;
            let open = self.open();
            if open == 0 {
                return 0;
            }
            if tokio::time::timeout_at(deadline, dropped).await.is_err() {
                return self.open();
            }
        }
    }
}

/// A request of [`Connections`] until its response is written: see [`Connections::busy`].
pub struct Busy(Arc<Connections>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::Relaxed);
        self.0.dropped();
    }
}

/// A connection shut down at the close, until it ends.
struct Shutting(Arc<Connections>);

impl Drop for Shutting {
    fn drop(&mut self) {
        self.0.shutting.fetch_sub(1, Ordering::Relaxed);
        self.0.dropped();
    }
}

/// A response body that holds its request's [`Busy`] until hyper drops it (written to its end,
/// or the connection dropped).
pub struct Tracked<B> {
    body: B,
    _busy: Busy,
}

impl<B> Tracked<B> {
    pub fn new(body: B, busy: Busy) -> Tracked<B> {
        Tracked { body, _busy: busy }
    }
}

impl<B: hyper::body::Body + Unpin> hyper::body::Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<B::Data>, B::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
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

    /// A connection writing a response: polled again and again (it wakes itself).
    fn active() -> Conn {
        Conn { told: false, polls_after: 0 }
    }

    #[tokio::test]
    async fn close_shuts_down_every_active_connection_and_waits_for_it() {
        let conns = Arc::new(Connections::default());
        let tasks: Vec<_> =
            (0..3).map(|_| tokio::spawn(conns.clone().run(Spinning(active()), Spinning::shut))).collect();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(tasks.iter().all(|t| !t.is_finished()), "a connection ended before it was told");
        assert_eq!(conns.close(Duration::from_secs(5)).await, 0);
        for t in tasks {
            assert!(t.is_finished(), "the close did not wait for a connection");
            assert_eq!(t.await.unwrap(), 2);
        }
        // One that starts after the close is told at once.
        let late = tokio::spawn(conns.clone().run(Spinning(active()), Spinning::shut));
        assert_eq!(tokio::time::timeout(Duration::from_secs(5), late).await.unwrap().unwrap(), 2);
        assert_eq!(conns.open(), 0);
    }

    /// [`Conn`] woken on every poll.
    struct Spinning(Conn);

    impl Spinning {
        fn shut(mut c: Pin<&mut Spinning>) {
            c.0.told = true;
        }
    }

    impl Future for Spinning {
        type Output = usize;
        fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<usize> {
            cx.waker().wake_by_ref();
            Pin::new(&mut self.0).poll(cx)
        }
    }

    #[tokio::test]
    async fn close_does_not_wait_for_an_idle_connection() {
        let conns = Arc::new(Connections::default());
        let idle = tokio::spawn(conns.clone().run(std::future::pending::<()>(), |_| panic!("an idle one was polled")));
        tokio::time::sleep(Duration::from_millis(20)).await;
        let t = tokio::time::Instant::now();
        assert_eq!(conns.close(Duration::from_secs(5)).await, 0);
        assert!(t.elapsed() < Duration::from_secs(1), "waited {:?} for an idle connection", t.elapsed());
        assert!(!idle.is_finished());
        idle.abort();
    }

    #[tokio::test]
    async fn close_waits_for_a_response_being_written_and_gives_up_after_its_limit() {
        let conns = Arc::new(Connections::default());
        let busy = conns.busy();
        let t = tokio::time::Instant::now();
        assert_eq!(conns.close(Duration::from_millis(100)).await, 1);
        assert!(t.elapsed() >= Duration::from_millis(100));
        assert!(t.elapsed() < Duration::from_secs(2));
        let written = {
            let conns = conns.clone();
            tokio::spawn(async move { conns.close(Duration::from_secs(5)).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!written.is_finished(), "the close did not wait for the response");
        drop(busy);
        assert_eq!(tokio::time::timeout(Duration::from_secs(1), written).await.unwrap().unwrap(), 0);
    }
}
