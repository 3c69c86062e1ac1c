//! HTTP handlers. Each is small: validation, limits and generation logic live in their own
//! modules; auth, rate limits, CORS and body limits are layers (see [`crate::router`]).

use std::convert::Infallible;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use bytes::{Bytes, BytesMut};
use serde::Deserialize;

use crate::auth::{self, Owner};
use crate::chat::ChatBody;
use crate::conn::PeerSocket;
use crate::error::ApiError;
use crate::generation::{Attachment, ChangeRx, Generation, Render};
use crate::limits::ClientIp;
use crate::metrics::Metrics;
use crate::App;

/// Query options shared by the streaming endpoints. All strings, so a bad value gets our
/// own clear error instead of a framework rejection.
#[derive(Debug, Default, Deserialize)]
pub struct StreamQuery {
    format: Option<String>,
    chaos: Option<String>,
    after: Option<String>,
    offset: Option<String>,
}

/// Query strings read by the relay itself, so a bad one gets the JSON error shape.
impl<S: Send + Sync> FromRequestParts<S> for StreamQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Query::<StreamQuery>::try_from_uri(&parts.uri)
            .map(|Query(q)| q)
            .map_err(|e| ApiError::bad_request("invalid_parameter", format!("the query string cannot be read: {e}")))
    }
}

/// The generation id of the path, or the JSON error for a path that cannot be read.
fn generation_id(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    path.map(|Path(id)| id)
        .map_err(|_| ApiError::bad_request("invalid_parameter", "the generation id in the path cannot be read"))
}

impl StreamQuery {
    /// The position to resume after: `after=`, else `Last-Event-ID`, else 0.
    fn after(&self, headers: &HeaderMap) -> Result<u64, ApiError> {
        let last_event_id = headers.get("last-event-id").and_then(|v| v.to_str().ok());
        match (self.after.as_deref(), last_event_id) {
            (Some(v), _) => parse_u64("after", v),
            (None, Some(v)) if !v.trim().is_empty() => parse_u64("Last-Event-ID", v),
            _ => Ok(0),
        }
    }

    fn render(&self) -> Result<Render, ApiError> {
        match self.format.as_deref() {
            None | Some("") | Some("sse") => Ok(Render::Sse),
            Some("text") => Ok(Render::Text),
            Some(other) => {
                Err(ApiError::bad_request("invalid_format", format!("format={other:?}: expected sse or text")))
            }
        }
    }

    /// Chaos mode costs many times the CPU of an answer: the demo model honours it, real
    /// upstreams only when the operator allows it.
    fn chaos(&self, headers: &HeaderMap, app: &App, gen: &Generation) -> bool {
        let on = |v: &str| matches!(v, "1" | "true" | "yes" | "on");
        let asked = self.chaos.as_deref().is_some_and(on)
            || headers.get("x-chunkwise-chaos").and_then(|v| v.to_str().ok()).is_some_and(on);
        asked && (gen.model == crate::demo::MODEL || app.config.server.allow_chaos)
    }
}

fn parse_u64(name: &str, v: &str) -> Result<u64, ApiError> {
    v.trim()
        .parse()
        .map_err(|_| ApiError::bad_request("invalid_parameter", format!("{name}={v:?} is not a non-negative integer")))
}

/// `POST /v1/chat/completions`
pub async fn completions(
    State(app): State<Arc<App>>,
    ClientIp(ip): ClientIp,
    Extension(owner): Extension<Owner>,
    socket: Option<Extension<PeerSocket>>,
    q: StreamQuery,
    headers: HeaderMap,
    ChatBody(req): ChatBody,
) -> Result<Response, ApiError> {
    let render = q.render()?;
    let prompt = req.validate(&app.config.limits)?;
    let source = app.resolve_model(&req.model)?;
    let gen = app.begin(source, prompt, owner.0, ip).await?;
    let attachment = gen.attach().with_grace(app.grace());
    // Until the first byte goes out, only the socket tells that the client left.
    let gone = async {
        match socket {
            Some(Extension(s)) => s.closed().await,
            None => std::future::pending().await,
        }
    };
    if !req.stream {
        tokio::select! {
            () = wait_finished(&gen) => {}
            () = gone => return Err(client_gone()),
        }
        return Ok(Json(gen.completion()?).into_response());
    }
    tokio::select! {
        started = gen.started() => started?,
        () = gone => return Err(client_gone()),
    }
    let chaos = q.chaos(&headers, &app, &gen);
    Ok(stream_response(&app, attachment, 1, 0, render, chaos))
}

/// The answer to a client that already left (nobody reads it; the generation is detached).
fn client_gone() -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_request_error", "client_gone", "the client closed the connection")
}

/// `GET /v1/chat/stream/{id}?after=<seq>` (or `Last-Event-ID: <seq>`; text mode: `offset=<bytes>`)
pub async fn resume(
    State(app): State<Arc<App>>,
    Extension(owner): Extension<Owner>,
    path: Result<Path<String>, PathRejection>,
    q: StreamQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = generation_id(path)?;
    let render = q.render()?;
    let gen = match (app.owned_generation(&id, &owner), &app.store) {
        (Ok(gen), _) => gen,
        (Err(_), Some(store)) => {
            let at = match render {
                Render::Sse => Position::After(q.after(&headers)?),
                Render::Text => {
                    Position::Offset(q.offset.as_deref().map(|v| parse_u64("offset", v)).transpose()?.unwrap_or(0))
                }
            };
            return remote_resume(&app, store, &id, &owner, at).await;
        }
        (Err(e), _) => return Err(e),
    };
    let (next, skip) = match render {
        Render::Text => {
            let offset = q.offset.as_deref().map(|v| parse_u64("offset", v)).transpose()?.unwrap_or(0);
            gen.text_offset(offset)?
        }
        Render::Sse => (gen.check_resume(q.after(&headers)?)?, 0),
    };
    let attachment = gen.attach().with_grace(app.grace());
    gen.started().await?;
    app.metrics.resumes_total.fetch_add(1, Relaxed);
    let chaos = q.chaos(&headers, &app, &gen);
    Ok(stream_response(&app, attachment, next, skip, render, chaos))
}

/// Where a resume starts: after an event (SSE), or at a byte of the answer (text).
enum Position {
    After(u64),
    Offset(u64),
}

/// A resume of a generation that another instance holds, served from the shared store.
async fn remote_resume(
    app: &App,
    store: &Arc<crate::store::RedisStore>,
    id: &str,
    owner: &Owner,
    at: Position,
) -> Result<Response, ApiError> {
    let meta = match store.meta(id).await? {
        Some(meta) if meta.owner == owner.0 => meta,
        _ => return Err(crate::generation_not_found(id)),
    };
    let (render, after, skip, ended) = match at {
        Position::After(after) => (Render::Sse, after, 0, store.check_resume(id, after).await?),
        Position::Offset(offset) => {
            let (after, skip, ended) = store.text_offset(id, offset).await?;
            (Render::Text, after, skip, ended)
        }
    };
    let heartbeat = Duration::from_secs(app.config.server.heartbeat_secs.max(1));
    let body = Body::from_stream(store.stream(id, &meta, after, heartbeat, render, skip, ended).await?);
    app.metrics.resumes_total.fetch_add(1, Relaxed);
    let mut res = Response::new(body);
    stream_headers(res.headers_mut(), render, id);
    Ok(res)
}

/// `POST /v1/chat/stream/{id}/cancel`
pub async fn cancel(
    State(app): State<Arc<App>>,
    Extension(owner): Extension<Owner>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = generation_id(path)?;
    let gen = match (app.owned_generation(&id, &owner), &app.store) {
        (Ok(gen), _) => gen,
        (Err(e), Some(store)) => {
            // Held by another instance: it stops its upstream when it hears the cancel.
            let was_running = match store.meta(&id).await? {
                Some(meta) if meta.owner == owner.0 => store.cancel(&id).await?,
                _ => return Err(e),
            };
            let status = if was_running { "cancelled" } else { "finished" };
            return Ok(Json(serde_json::json!({ "id": id, "object": "chat.completion.cancel", "status": status }))
                .into_response());
        }
        (Err(e), None) => return Err(e),
    };
    let was_running = !gen.is_finished();
    gen.cancel("cancelled");
    let status = if was_running { "cancelled" } else { "finished" };
    Ok(Json(serde_json::json!({ "id": gen.id, "object": "chat.completion.cancel", "status": status })).into_response())
}

/// `GET /v1/models`
pub async fn models(State(app): State<Arc<App>>) -> Json<serde_json::Value> {
    let data: Vec<_> = app
        .model_names()
        .into_iter()
        .map(|id| serde_json::json!({ "id": id, "object": "model", "created": 0, "owned_by": "chunkwise-relay" }))
        .collect();
    Json(serde_json::json!({ "object": "list", "data": data }))
}

/// `GET /healthz`: 503 while draining, so a balancer that still reaches it takes the instance
/// out.
pub async fn healthz(State(app): State<Arc<App>>) -> impl IntoResponse {
    let draining = app.drain.started();
    let status = if draining { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
    let body = serde_json::json!({
        "status": if draining { "draining" } else { "ok" },
        "upstream": app.config.upstream.kind.name(),
        "generations": app.registry.len(),
        "active": app.metrics.active_generations.load(Relaxed),
    });
    (status, Json(body))
}

/// `GET /metrics`
pub async fn metrics(State(app): State<Arc<App>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], app.metrics.render())
}

/// Layer: per-IP request rate.
pub async fn rate_limit(
    State(app): State<Arc<App>>,
    ClientIp(ip): ClientIp,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    // With a shared store the bucket is shared by all instances; if the store is unreachable
    // this instance's own bucket still holds. A new answer takes its shared token in the
    // admission (one round trip instead of two before its first byte): here it meets only
    // this instance's bucket, which sees a part of what the shared one sees and so refuses
    // no sooner, and which still bounds requests that fail before the admission.
    let limits = &app.config.limits;
    let admitted_later = req.method() == axum::http::Method::POST && req.uri().path() == "/v1/chat/completions";
    let shared = match &app.store {
        Some(_) if admitted_later => None,
        Some(store) if limits.per_ip_per_minute > 0 => {
            let rate = crate::store::RateLimit { ip, per_minute: limits.per_ip_per_minute, burst: limits.per_ip_burst };
            store.take_token(rate).await.ok()
        }
        _ => None,
    };
    let checked = match shared {
        _ if app.config.limits.per_ip_per_minute == 0 => Ok(()),
        Some(None) => Ok(()),
        Some(Some(wait)) => Err(app.rate.refusal(ip, wait)),
        None => app.rate.check(ip),
    };
    if let Err(e) = checked {
        app.metrics.count_error(&e.code);
        return Err(e);
    }
    Ok(next.run(req).await)
}

/// Layer: client tokens, when required. Puts the caller's [`Owner`] in the request.
pub async fn authenticate(State(app): State<Arc<App>>, mut req: Request, next: Next) -> Result<Response, ApiError> {
    let owner = if app.auth_required {
        let bearer = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(auth::bearer)
            .map(str::to_string);
        let query = req.uri().query().and_then(|q| {
            q.split('&').find_map(|kv| kv.strip_prefix("token=")).map(|t| t.replace("%2E", ".").replace("%2e", "."))
        });
        let Some(token) = bearer.or(query) else {
            app.metrics.count_error("invalid_client_token");
            return Err(ApiError::unauthorized("this relay needs a client token: send Authorization: Bearer <token>"));
        };
        match app.check_token(&token) {
            Some(owner) => owner,
            None => {
                app.metrics.count_error("invalid_client_token");
                return Err(ApiError::unauthorized("the client token is not valid (unknown, badly signed or expired)"));
            }
        }
    } else {
        Owner::default()
    };
    req.extensions_mut().insert(owner);
    Ok(next.run(req).await)
}

/// Fallback: no route here.
pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "invalid_request_error", "not_found", "no such path on this relay")
}

/// Fallback: the path exists, the method does not.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request_error",
        "method_not_allowed",
        "this path does not take that method",
    )
}

/// Layer: on a loopback-only relay, only local host names (a page on another site that
/// rebinds its DNS name to 127.0.0.1 would otherwise reach the relay from the browser).
pub async fn check_host(State(local_only): State<bool>, req: Request, next: Next) -> Result<Response, ApiError> {
    if local_only {
        let host = req.headers().get(header::HOST).and_then(|v| v.to_str().ok());
        if let Some(host) = host {
            if !is_local_host(host) {
                return Err(ApiError::new(
                    StatusCode::MISDIRECTED_REQUEST,
                    "invalid_request_error",
                    "misdirected_request",
                    "this relay listens on loopback and answers only local host names",
                ));
            }
        }
    }
    Ok(next.run(req).await)
}

fn is_local_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(
            host,
            |(name, port)| {
                if port.bytes().all(|b| b.is_ascii_digit()) {
                    name
                } else {
                    host
                }
            },
        ),
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

async fn wait_finished(gen: &Generation) {
    let mut rx = gen.subscribe();
    while !gen.is_finished() {
        rx.changed().await;
    }
}

fn stream_response(app: &App, attachment: Attachment, next: u64, skip: usize, render: Render, chaos: bool) -> Response {
    let gen = attachment.generation().clone();
    let reader = Reader {
        rx: gen.subscribe(),
        attachment,
        next,
        skip,
        render,
        heartbeat: {
            let period = Duration::from_secs(app.config.server.heartbeat_secs.max(1));
            let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            beat
        },
        buf: BytesMut::new(),
        done: false,
        metrics: app.metrics.clone(),
    };
    app.metrics.open_streams.fetch_add(1, Relaxed);
    let stream = futures_util::stream::unfold(reader, Reader::next);
    let body = if chaos { Body::from_stream(crate::chaos::split(stream)) } else { Body::from_stream(stream) };
    let mut res = Response::new(body);
    stream_headers(res.headers_mut(), render, &gen.id);
    res
}

fn stream_headers(h: &mut HeaderMap, render: Render, id: &str) {
    let content_type = match render {
        Render::Sse => "text/event-stream; charset=utf-8",
        Render::Text => "text/plain; charset=utf-8",
    };
    // Room for ours and the CORS layer's, so the map is allocated once per stream.
    *h = HeaderMap::with_capacity(10);
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    if let Ok(v) = HeaderValue::from_str(id) {
        h.insert("x-chunkwise-generation", v);
    }
}

/// One client connection reading a generation's log.
struct Reader {
    attachment: Attachment,
    rx: ChangeRx,
    next: u64,
    skip: usize,
    render: Render,
    heartbeat: tokio::time::Interval,
    buf: BytesMut,
    done: bool,
    metrics: Arc<Metrics>,
}

impl Reader {
    async fn next(mut self) -> Option<(Result<Bytes, Infallible>, Reader)> {
        loop {
            if self.done {
                return None;
            }
            self.rx.mark_seen();
            let gen = self.attachment.generation();
            let finished = match gen.render(&mut self.next, self.render, &mut self.skip, &mut self.buf) {
                Ok(finished) => finished,
                Err(e) => {
                    let line = match self.render {
                        Render::Sse => format!("data: {}\n\n", e.body()),
                        Render::Text => format!("\n\n[error] {}\n", crate::error::redact(&e.message)),
                    };
                    self.buf.extend_from_slice(line.as_bytes());
                    true
                }
            };
            self.done = finished;
            if !self.buf.is_empty() {
                let frame = self.buf.split().freeze();
                self.metrics.bytes_sent.fetch_add(frame.len() as u64, Relaxed);
                return Some((Ok(frame), self));
            }
            if finished {
                return None;
            }
            tokio::select! {
                () = self.rx.changed() => {}
                _ = self.heartbeat.tick() => {
                    if self.render == Render::Sse {
                        return Some((Ok(Bytes::from_static(b": ping\n\n")), self));
                    }
                }
            }
        }
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.metrics.open_streams.fetch_sub(1, Relaxed);
    }
}
