//! Talking to the model: building each provider's request, reading its stream through the
//! chunkwise decoder, and writing normalized events into the generation.
//!
//! Each way an upstream can fail is its own error code, so an operator can tell them apart:
//! `upstream_connect_timeout`, `upstream_unreachable`, `upstream_first_byte_timeout`,
//! `upstream_idle_timeout`, `upstream_disconnected`, `upstream_auth`, `upstream_rate_limited`,
//! `upstream_overloaded`, `upstream_rejected`, `upstream_error`.

mod body;
pub mod decode;
mod h1;

use std::borrow::Cow;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;

use crate::chat::Prompt;
use crate::config::{Provider, UpstreamConfig};
use crate::error::{safe_identifier, ApiError};
use crate::generation::{Generation, Kind};
use crate::metrics::Metrics;
use chunkwise::usage::Usage;
use decode::UpstreamDecoder;

/// A configured HTTP upstream and its connections.
///
/// Over HTTP/1.1 every stream has its own upstream connection. With `upstream.http2` streams
/// are multiplexed over `http2_connections` connections, each new stream going to the least
/// busy one of its worker thread's (see [`crate::workers::lane`]): a provider caps the streams of one connection (often 100 to 250) and hyper queues
/// streams beyond the cap instead of opening another connection, so the capacity is
/// connections × the provider's cap.
pub struct Upstream {
    pub config: UpstreamConfig,
    clients: Vec<(reqwest::Client, AtomicUsize)>,
    /// A plain `http://` upstream over HTTP/1.1: read in the generation's own task.
    origin: Option<h1::Origin>,
}

/// Opened when a shared store has admitted the answer (see [`crate::App::begin`]): until then
/// the generation's task may connect, but sends nothing. Dropped unopened: the answer was
/// refused, or its client left.
pub type Gate = tokio::sync::oneshot::Receiver<()>;

/// Waits for `gate` (at once without one): `false` when it was dropped unopened, and then the
/// generation ends quietly, since nobody will read it (it is no longer registered).
pub async fn admitted(gate: Option<Gate>, gen: &Generation) -> bool {
    match gate {
        None => true,
        Some(gate) => {
            let open = gate.await.is_ok();
            if !open {
                gen.end("error", None);
            }
            open
        }
    }
}

/// One stream in flight on a client; returns its slot on drop.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

impl Upstream {
    /// `workers`: how many worker threads will use it. Over HTTP/2 the clients are the
    /// configured connections, shared out among the workers; over HTTP/1.1 to an `https://`
    /// upstream each worker gets a client and its pool of its own, so a kept TLS connection is
    /// read on the thread that made it. A plain `http://` one over HTTP/1.1 is read by the
    /// stream's own task (see [`h1`]), so one client (which streams do not use) is built, not
    /// one per worker.
    pub fn new(config: UpstreamConfig, workers: usize) -> Result<Upstream, String> {
        let origin = if config.http2 { None } else { h1::Origin::of(&config.base_url) };
        let n = match (config.http2, &origin) {
            (true, _) => config.http2_connections.max(1),
            (false, Some(_)) => 1,
            (false, None) => workers.max(1),
        };
        let mut clients = Vec::with_capacity(n);
        for _ in 0..n {
            let builder = reqwest::Client::builder();
            let builder = if config.http2 { builder.http2_prior_knowledge() } else { builder.http1_only() };
            let client = builder
                .connect_timeout(Duration::from_millis(config.connect_timeout_ms))
                // A redirect would carry the key (and, on 307/308, the prompt) to another host.
                .redirect(reqwest::redirect::Policy::none())
                .tcp_nodelay(true)
                .pool_idle_timeout(Duration::from_secs(60))
                .user_agent(concat!("chunkwise-relay/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| format!("building the HTTP client: {e}"))?;
            clients.push((client, AtomicUsize::new(0)));
        }
        Ok(Upstream { config, clients, origin })
    }

    /// Whether a stream's connection is made by its own task (a plain `http://` upstream over
    /// HTTP/1.1), so that it can be made while something else is awaited first.
    pub fn connects_ahead(&self) -> bool {
        self.origin.is_some()
    }

    /// The least busy client of this worker thread's lane ([`crate::workers::lane`]), with its
    /// in-flight count taken. A client's connection task runs on the thread that made the
    /// connection: a stream on another thread would be woken across threads every delta.
    fn client(&self) -> (&reqwest::Client, InFlight<'_>) {
        let lane = crate::workers::lane(self.clients.len());
        let (_, (client, count)) = self
            .clients
            .iter()
            .enumerate()
            .filter(|(i, _)| lane.is_none_or(|(lanes, mine)| i % lanes == mine))
            .min_by_key(|(_, (_, n))| n.load(Relaxed))
            .expect("at least one client in every lane");
        count.fetch_add(1, Relaxed);
        (client, InFlight(count))
    }

    /// The provider's streaming request for `prompt`: URL, headers, body.
    fn request(&self, model: &str, prompt: &Prompt) -> (String, Headers<'_>, Vec<u8>) {
        let c = &self.config;
        let (url, body) = match c.kind {
            Provider::Anthropic => {
                (format!("{}/v1/messages", c.base_url), body::anthropic(model, prompt, c.thinking_budget))
            }
            Provider::Gemini => (
                format!("{}/v1beta/models/{model}:streamGenerateContent?alt=sse", c.base_url),
                body::gemini(prompt, c.thinking_budget),
            ),
            Provider::OpenAi | Provider::Demo => {
                (format!("{}/chat/completions", c.base_url), body::openai(model, prompt, c.include_usage))
            }
        };
        let mut headers = vec![
            ("content-type", Cow::Borrowed("application/json")),
            ("accept", Cow::Borrowed("text/event-stream")),
            ("user-agent", Cow::Borrowed(concat!("chunkwise-relay/", env!("CARGO_PKG_VERSION")))),
        ];
        if !c.api_key.is_empty() {
            match c.kind {
                Provider::Anthropic => {
                    headers.push(("x-api-key", Cow::Borrowed(&c.api_key)));
                    headers.push(("anthropic-version", Cow::Borrowed("2023-06-01")));
                }
                Provider::Gemini => headers.push(("x-goog-api-key", Cow::Borrowed(&c.api_key))),
                _ => headers.push(("authorization", Cow::Owned(format!("Bearer {}", c.api_key)))),
            }
        } else if c.kind == Provider::Anthropic {
            headers.push(("anthropic-version", Cow::Borrowed("2023-06-01")));
        }
        (url, headers, body)
    }

    /// Runs one generation to its end: every outcome, success or failure, ends up in `gen`.
    /// With a `gate`, the request goes out when it opens (an `http://` upstream is connected
    /// meanwhile); the first-byte timeout counts from then.
    pub async fn run(&self, model: &str, prompt: &Prompt, gen: &Generation, metrics: &Metrics, gate: Option<Gate>) {
        let c = &self.config;
        let first_byte = Duration::from_millis(c.first_byte_timeout_ms);
        let (url, headers, body) = self.request(model, prompt);
        let timed_out = || {
            ApiError::upstream(
                StatusCode::GATEWAY_TIMEOUT,
                "upstream_first_byte_timeout",
                format!("the upstream did not answer within {} ms (first-byte timeout)", c.first_byte_timeout_ms),
            )
        };
        // Held for the whole stream: the least busy of the HTTP/2 connections gets the next.
        let mut in_flight = None;
        let mut resp = if let Some(origin) = &self.origin {
            let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, &**v)).collect();
            let connect = Duration::from_millis(c.connect_timeout_ms);
            let open = admitted(gate, gen);
            let sending = Box::pin(origin.post(&url, &headers, &body, connect, first_byte, open));
            match sending.await {
                // Not admitted: the generation has ended, unread.
                Err(h1::SendError::Refused) => return,
                Err(h1::SendError::FirstByteTimeout) => return gen.fail(timed_out()),
                Err(e) => return gen.fail(h1_send_error(e, c.connect_timeout_ms)),
                Ok(resp) => Body::H1(resp),
            }
        } else {
            if !admitted(gate, gen).await {
                return;
            }
            let (client, slot) = self.client();
            in_flight = Some(slot);
            let mut req = client.post(url);
            for (k, v) in headers {
                req = req.header(k, &*v);
            }
            // Boxed so the request machinery is freed once the response arrives, instead of
            // staying in the task for the whole stream.
            let sending = Box::pin(tokio::time::timeout(first_byte, req.body(body).send()));
            match sending.await {
                Err(_) => return gen.fail(timed_out()),
                Ok(Err(e)) => return gen.fail(send_error(&e, c.connect_timeout_ms)),
                Ok(Ok(resp)) => Body::Reqwest(resp),
            }
        };
        let (status, retry_after) = resp.status();
        if !(200..300).contains(&status) {
            let body = tokio::time::timeout(Duration::from_secs(5), read_limited(&mut resp, 64 * 1024))
                .await
                .unwrap_or_default();
            return gen.fail(status_error(status, retry_after, &body));
        }
        gen.start();
        self.read_stream(resp, gen, metrics).await;
        drop(in_flight);
    }

    async fn read_stream(&self, mut resp: Body<'_>, gen: &Generation, metrics: &Metrics) {
        let idle = Duration::from_millis(self.config.idle_timeout_ms);
        let mut decoder = UpstreamDecoder::new(self.config.kind);
        let mut finish: Option<String> = None;
        let mut usage = Usage::default();
        let mut saw_usage = false;
        let overflowed = std::sync::atomic::AtomicBool::new(false);
        let mut apply = |d: decode::Decoded| {
            gen.push_delta(Kind::Reasoning, &d.reasoning);
            gen.push_delta(Kind::Content, &d.text);
            for e in d.errors {
                gen.fail(in_stream_error(&e));
            }
            if d.too_large > 0 {
                overflowed.store(true, Relaxed);
            }
            if d.malformed > 0 {
                metrics.count_error("upstream_malformed");
            }
            if let Some(r) = d.finish_reason {
                finish = Some(r);
            }
            if let Some(u) = d.usage {
                usage.merge_json(&u);
                saw_usage = true;
            }
            d.done
        };
        // One timer per stream, re-armed only when it fires: cheaper than a timeout per chunk.
        let mut last = Instant::now();
        let sleep = tokio::time::sleep(idle);
        tokio::pin!(sleep);
        let outcome = loop {
            // Before each read: a shared store's copy must keep up (TCP holds the upstream).
            match gen.room().await {
                Ok(false) => {}
                // The wait was the relay's, not the upstream's: the idle clock restarts.
                Ok(true) => last = Instant::now(),
                Err(e) => break Err(e),
            }
            tokio::select! {
                biased;
                chunk = resp.chunk() => match chunk {
                    Ok(Some(bytes)) => {
                        last = Instant::now();
                        metrics.upstream_bytes.fetch_add(bytes.len() as u64, Relaxed);
                        // The overflow first: an oversized event and the end marker can
                        // arrive in one chunk, and the end must not hide the lost event.
                        let done = apply(decoder.push(&bytes));
                        if overflowed.load(Relaxed) {
                            break Err(too_large(decoder.max_event_bytes()));
                        }
                        if done {
                            break Ok(());
                        }
                    }
                    Ok(None) => {
                        apply(decoder.finish());
                        if overflowed.load(Relaxed) {
                            break Err(too_large(decoder.max_event_bytes()));
                        }
                        if finish.is_some() {
                            break Ok(());
                        }
                        break Err(ApiError::upstream(
                            StatusCode::BAD_GATEWAY,
                            "upstream_disconnected",
                            "the upstream closed the stream before the answer finished",
                        ));
                    }
                    Err(()) => {
                        break Err(ApiError::upstream(
                            StatusCode::BAD_GATEWAY,
                            "upstream_disconnected",
                            "the upstream connection failed mid-stream",
                        ))
                    }
                },
                () = &mut sleep => {
                    let deadline = last + idle;
                    if Instant::now() >= deadline {
                        break Err(ApiError::upstream(
                            StatusCode::GATEWAY_TIMEOUT,
                            "upstream_idle_timeout",
                            format!("the upstream sent nothing for {} ms (idle timeout)", self.config.idle_timeout_ms),
                        ));
                    }
                    sleep.as_mut().reset(deadline.into());
                }
            }
        };
        match outcome {
            Ok(()) => {
                gen.end(
                    chunkwise::formats::openai_finish_reason(finish.as_deref().unwrap_or("stop")),
                    saw_usage.then_some(usage),
                );
                // After the end marker: the body's own end (the last chunk), so a kept-alive
                // connection goes back to the pool.
                resp.drain(idle.min(DRAIN_FOR)).await;
            }
            Err(e) => {
                drop(resp);
                gen.fail(e);
                gen.end("error", saw_usage.then_some(usage));
            }
        }
    }
}

/// An event longer than the decoder's bound was dropped: the answer has a hole, so it ends
/// with an error instead of looking complete.
fn too_large(max: usize) -> ApiError {
    ApiError::upstream(
        StatusCode::BAD_GATEWAY,
        "upstream_event_too_large",
        format!("the upstream sent an event longer than the relay's bound of {max} bytes; the answer is incomplete"),
    )
}

/// An error the provider reported inside its stream, in the relay's words: the provider's
/// type and code are kept when they are plain identifiers, its message is not forwarded (it
/// can quote the request's credentials).
fn in_stream_error(e: &decode::ProviderError) -> ApiError {
    let kind = safe_identifier(e.kind.as_str());
    let code = e.code.as_deref().and_then(safe_identifier);
    let mut message = "the upstream reported an error mid-stream".to_string();
    push_detail(&mut message, kind.as_deref(), code.as_deref());
    ApiError {
        kind: kind.unwrap_or_else(|| "upstream_error".into()),
        ..ApiError::upstream(StatusCode::BAD_GATEWAY, code.as_deref().unwrap_or("upstream_error"), message)
    }
}

fn push_detail(message: &mut String, kind: Option<&str>, code: Option<&str>) {
    match (kind, code) {
        (Some(k), Some(c)) => message.push_str(&format!(" (type {k}, code {c})")),
        (Some(k), None) => message.push_str(&format!(" (type {k})")),
        (None, Some(c)) => message.push_str(&format!(" (code {c})")),
        (None, None) => {}
    }
}

fn send_error(e: &reqwest::Error, connect_ms: u64) -> ApiError {
    // The error's own text names the upstream's address: it stays on the server.
    if e.is_connect() && e.is_timeout() {
        return ApiError::upstream(
            StatusCode::GATEWAY_TIMEOUT,
            "upstream_connect_timeout",
            format!("could not connect to the upstream within {connect_ms} ms (connect timeout)"),
        );
    }
    if e.is_connect() {
        return ApiError::upstream(
            StatusCode::BAD_GATEWAY,
            "upstream_unreachable",
            "could not connect to the upstream",
        );
    }
    ApiError::upstream(StatusCode::BAD_GATEWAY, "upstream_error", "the upstream request failed")
}

/// The type and code of a provider's error body, as the core reads every provider's shape,
/// each kept only when it is a plain identifier.
fn error_detail(body: &[u8]) -> (Option<String>, Option<String>) {
    let Some(e) = chunkwise::error_body::read(body) else { return (None, None) };
    let code = e.code.as_deref().map(decode::plain_code).and_then(|c| safe_identifier(&c));
    (e.kind.as_deref().and_then(safe_identifier), code)
}

/// An upstream response, from the general client or read in place (plain HTTP/1.1).
enum Body<'a> {
    Reqwest(reqwest::Response),
    H1(h1::Response<'a>),
}

impl Body<'_> {
    /// The status and the `Retry-After` seconds, if given.
    fn status(&self) -> (u16, Option<u64>) {
        match self {
            Body::Reqwest(r) => (
                r.status().as_u16(),
                r.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse().ok()),
            ),
            Body::H1(r) => (r.status, r.retry_after),
        }
    }

    async fn chunk(&mut self) -> Result<Option<bytes::Bytes>, ()> {
        match self {
            Body::Reqwest(r) => r.chunk().await.map_err(|_| ()),
            Body::H1(r) => r.chunk().await.map_err(|_| ()),
        }
    }

    /// Reads what is left of the body, at most [`DRAIN_MAX`] bytes within `limit`; past either
    /// the connection is closed instead of kept.
    async fn drain(mut self, limit: Duration) {
        let mut left = DRAIN_MAX;
        let _ = tokio::time::timeout(limit, async {
            while let Ok(Some(piece)) = self.chunk().await {
                if piece.len() > left {
                    return;
                }
                left -= piece.len();
            }
        })
        .await;
    }
}

/// What is read after an answer's end marker to keep its connection: the terminating chunk,
/// perhaps a trailer or a stray keep-alive comment.
const DRAIN_MAX: usize = 4 * 1024;
const DRAIN_FOR: Duration = Duration::from_secs(2);

fn h1_send_error(e: h1::SendError, connect_ms: u64) -> ApiError {
    match e {
        h1::SendError::ConnectTimeout => ApiError::upstream(
            StatusCode::GATEWAY_TIMEOUT,
            "upstream_connect_timeout",
            format!("could not connect to the upstream within {connect_ms} ms (connect timeout)"),
        ),
        h1::SendError::Unreachable => {
            ApiError::upstream(StatusCode::BAD_GATEWAY, "upstream_unreachable", "could not connect to the upstream")
        }
        // The first two are answered by the caller; here only for completeness.
        h1::SendError::Failed | h1::SendError::Refused | h1::SendError::FirstByteTimeout => {
            ApiError::upstream(StatusCode::BAD_GATEWAY, "upstream_error", "the upstream request failed")
        }
        h1::SendError::Framing(why) => ApiError::upstream(StatusCode::BAD_GATEWAY, "upstream_error", why),
    }
}

/// A non-2xx upstream answer as the error the client gets before its stream starts: the
/// upstream's status, type and code in the relay's own message (the upstream's message can
/// quote the relay's key: "Incorrect API key provided: sk-…").
fn status_error(n: u16, retry_after: Option<u64>, body: &[u8]) -> ApiError {
    let (kind, code) = error_detail(body);
    let mut message = match n {
        401 | 403 => format!("the upstream rejected the relay's API key ({n})"),
        429 => format!("the upstream is rate limiting the relay ({n})"),
        503 | 529 => format!("the upstream is overloaded ({n})"),
        400 | 413 | 422 => format!("the upstream rejected the request ({n})"),
        300..=399 => format!("the upstream answered with a redirect ({n}), which the relay does not follow"),
        _ => format!("the upstream answered {n}"),
    };
    push_detail(&mut message, kind.as_deref(), code.as_deref());
    match n {
        401 | 403 => ApiError::upstream(StatusCode::BAD_GATEWAY, "upstream_auth", message),
        429 => ApiError {
            retry_after: Some(retry_after.unwrap_or(5)),
            ..ApiError::upstream(StatusCode::TOO_MANY_REQUESTS, "upstream_rate_limited", message)
        },
        503 | 529 => ApiError {
            retry_after: Some(retry_after.unwrap_or(5)),
            ..ApiError::upstream(StatusCode::SERVICE_UNAVAILABLE, "upstream_overloaded", message)
        },
        400 | 413 | 422 => ApiError {
            kind: "invalid_request_error".into(),
            ..ApiError::upstream(StatusCode::BAD_REQUEST, "upstream_rejected", message)
        },
        _ => ApiError::upstream(StatusCode::BAD_GATEWAY, "upstream_error", message),
    }
}

async fn read_limited(resp: &mut Body<'_>, limit: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        out.extend_from_slice(&chunk[..chunk.len().min(limit - out.len())]);
        if out.len() >= limit {
            break;
        }
    }
    out
}

/// A request's header fields: the fixed ones and the key borrowed, only a built value owned.
type Headers<'a> = Vec<(&'static str, Cow<'a, str>)>;

/// Where a generation's events come from.
#[derive(Clone)]
pub enum Source {
    Demo,
    Http { upstream: Arc<Upstream>, model: String },
}
