//! HTTP handlers. Each is small: validation, limits and generation logic live in their own
//! modules; auth, rate limits, CORS and body limits are layers (see [`crate::router`]).

use std::convert::Infallible;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use bytes::{Bytes, BytesMut};
use serde::Deserialize;
use tokio::sync::watch;

use crate::auth::Owner;
use crate::chat::ChatBody;
use crate::error::ApiError;
use crate::generation::{Attachment, Generation, Render};
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

impl StreamQuery {
    fn render(&self) -> Result<Render, ApiError> {
        match self.format.as_deref() {
            None | Some("") | Some("sse") => Ok(Render::Sse),
            Some("text") => Ok(Render::Text),
            Some(other) => {
                Err(ApiError::bad_request("invalid_format", format!("format={other:?}: expected sse or text")))
            }
        }
    }

    fn chaos(&self, headers: &HeaderMap) -> bool {
        let on = |v: &str| matches!(v, "1" | "true" | "yes" | "on");
        self.chaos.as_deref().is_some_and(on)
            || headers.get("x-chunkwise-chaos").and_then(|v| v.to_str().ok()).is_some_and(on)
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
    Query(q): Query<StreamQuery>,
    headers: HeaderMap,
    ChatBody(req): ChatBody,
) -> Result<Response, ApiError> {
    let render = q.render()?;
    let prompt = req.validate(&app.config.limits)?;
    let source = app.resolve_model(&req.model)?;
    let permit = app.streams.acquire(ip)?;
    let gen = app.start(source, prompt, owner.0, permit)?;
    let attachment = gen.attach().with_grace(app.grace());
    if !req.stream {
        wait_finished(&gen).await;
        return Ok(Json(gen.completion()?).into_response());
    }
    gen.started().await?;
    Ok(stream_response(&app, attachment, 1, 0, render, q.chaos(&headers)))
}

/// `GET /v1/chat/stream/{id}?after=<seq>` (or `Last-Event-ID: <seq>`; text mode: `offset=<bytes>`)
pub async fn resume(
    State(app): State<Arc<App>>,
    Extension(owner): Extension<Owner>,
    Path(id): Path<String>,
    Query(q): Query<StreamQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let render = q.render()?;
    let gen = app.owned_generation(&id, &owner)?;
    let (next, skip) = match render {
        Render::Text => {
            let offset = q.offset.as_deref().map(|v| parse_u64("offset", v)).transpose()?.unwrap_or(0);
            gen.text_offset(offset)?
        }
        Render::Sse => {
            let last_event_id = headers.get("last-event-id").and_then(|v| v.to_str().ok());
            let after = match (q.after.as_deref(), last_event_id) {
                (Some(v), _) => parse_u64("after", v)?,
                (None, Some(v)) if !v.trim().is_empty() => parse_u64("Last-Event-ID", v)?,
                _ => 0,
            };
            (gen.check_resume(after)?, 0)
        }
    };
    let attachment = gen.attach().with_grace(app.grace());
    gen.started().await?;
    app.metrics.resumes_total.fetch_add(1, Relaxed);
    Ok(stream_response(&app, attachment, next, skip, render, q.chaos(&headers)))
}

/// `POST /v1/chat/stream/{id}/cancel`
pub async fn cancel(
    State(app): State<Arc<App>>,
    Extension(owner): Extension<Owner>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let gen = app.owned_generation(&id, &owner)?;
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

/// `GET /healthz`
pub async fn healthz(State(app): State<Arc<App>>) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "status": "ok",
        "upstream": app.config.upstream.kind.name(),
        "generations": app.registry.len(),
        "active": app.metrics.active_generations.load(Relaxed),
    }))
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
    if let Err(e) = app.rate.check(ip) {
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
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(|t| t.trim().to_string());
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

async fn wait_finished(gen: &Generation) {
    let mut rx = gen.subscribe();
    while !gen.is_finished() {
        if rx.changed().await.is_err() {
            break;
        }
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
    let content_type = match render {
        Render::Sse => "text/event-stream; charset=utf-8",
        Render::Text => "text/plain; charset=utf-8",
    };
    let mut res = Response::new(body);
    // Room for ours and the CORS layer's, so the map is allocated once per stream.
    *res.headers_mut() = HeaderMap::with_capacity(10);
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    if let Ok(v) = HeaderValue::from_str(&gen.id) {
        h.insert("x-chunkwise-generation", v);
    }
    res
}

/// One client connection reading a generation's log.
struct Reader {
    attachment: Attachment,
    rx: watch::Receiver<()>,
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
            self.rx.borrow_and_update();
            let gen = self.attachment.generation();
            let finished = match gen.render(&mut self.next, self.render, &mut self.skip, &mut self.buf) {
                Ok(finished) => finished,
                Err(e) => {
                    self.buf.extend_from_slice(format!("data: {}\n\n", e.body()).as_bytes());
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
                changed = self.rx.changed() => { let _ = changed; }
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
