//! # chunkwise-relay
//!
//! The backend of a streaming chat in a WeChat mini program: it holds the model key, calls
//! the configured upstream (any OpenAI-compatible API, Anthropic, Gemini, or the built-in demo
//! model) and re-streams the answer to the phone in one normalized OpenAI format.
//!
//! What it guarantees:
//! - **One format out.** Whatever the upstream, clients get `chat.completion.chunk` events
//!   (`delta.content`, `delta.reasoning_content`), a final usage chunk and `[DONE]`; errors are
//!   `{"error":{message,type,code}}`, as an HTTP status before the stream starts and as an
//!   event after. Every event carries `id: <seq>`; the chunk `id` is the generation id.
//! - **Resumable.** A generation outlives its connection ([`generation`]): a client that was
//!   cut resumes with `GET /v1/chat/stream/{id}?after=<seq>` and gets exactly the rest.
//! - **Not an open proxy.** Bounded bodies, messages, `max_tokens` and models; per-IP rate and
//!   concurrency limits; client tokens when a real key is served beyond loopback ([`auth`]).
//! - **On more than one machine**, with `REDIS_URL`: generations are mirrored to Redis
//!   ([`store`]) so any instance resumes or stops them, and per-IP limits are shared.
//! - **Stopped without cutting answers.** On SIGTERM the relay refuses new connections and
//!   exits once the answers it is streaming have finished, within a bound ([`drain`]).
//!
//! Non-goals: tool calls, images and audio (text chat only); HTTP/2 to clients; persistence
//! across restarts of the instance that holds an upstream (an answer still running at the end
//! of the drain, or when the process dies, ends with an error).
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! let config = chunkwise_relay::config::Config::load().map_err(std::io::Error::other)?;
//! let app = chunkwise_relay::App::new(config).map_err(std::io::Error::other)?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8787").await?;
//! chunkwise_relay::serve(listener, app).await
//! # }
//! ```

pub mod auth;
pub mod chaos;
pub mod chat;
pub mod config;
pub mod conn;
pub mod demo;
pub mod drain;
pub mod error;
pub mod generation;
pub mod limits;
pub mod metrics;
pub mod routes;
pub mod store;
pub mod upstream;
pub mod workers;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use axum::{Extension, Router};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::services::ServeDir;

use auth::Owner;
use chat::{BodyRules, Prompt};
use config::{Config, Provider};
use error::ApiError;
use generation::{Generation, Registry};
use limits::{RateLimiter, StreamLimiter, StreamPermit};
use metrics::Metrics;
use upstream::{Source, Upstream};

/// The relay's shared state, handed to handlers through `State<Arc<App>>`.
pub struct App {
    pub config: Config,
    pub registry: Registry,
    pub metrics: Arc<Metrics>,
    pub rate: RateLimiter,
    pub streams: Arc<StreamLimiter>,
    /// Running answers per token subject (`per_token_streams`; 0 = no limit).
    pub token_streams: Arc<StreamLimiter>,
    pub upstream: Option<Arc<Upstream>>,
    pub auth_required: bool,
    /// Generations shared with other instances (`REDIS_URL`).
    pub store: Option<Arc<store::RedisStore>>,
    /// Set when the relay stops taking new answers (see [`drain`]).
    pub drain: drain::Drain,
}

impl App {
    /// The relay without a shared store (whatever `redis_url` says).
    pub fn new(config: Config) -> Result<Arc<App>, String> {
        App::build(config, None)
    }

    /// The relay as configured: with `redis_url` set, connected to Redis (an unreachable
    /// Redis is an error: the relay does not start half-shared).
    pub async fn connect(config: Config) -> Result<Arc<App>, String> {
        if config.server.redis_url.is_empty() {
            return App::new(config);
        }
        let g = &config.generations;
        let store =
            store::RedisStore::connect(&config.server.redis_url, g.ttl_secs, (g.max_log_bytes / 16).max(1024)).await?;
        let app = App::build(config, Some(store.clone()))?;
        store.serve_cancels(Arc::downgrade(&app));
        Ok(app)
    }

    fn build(config: Config, store: Option<Arc<store::RedisStore>>) -> Result<Arc<App>, String> {
        config.check_auth()?;
        error::register_secret(&config.upstream.api_key);
        error::register_secret(&config.auth.hmac_secret);
        config.auth.tokens.iter().for_each(|t| error::register_secret(t));
        let upstream = match config.upstream.kind {
            Provider::Demo => None,
            _ => Some(Arc::new(Upstream::new(config.upstream.clone(), workers::count(config.server.worker_threads))?)),
        };
        let app = Arc::new(App {
            registry: Registry::default(),
            metrics: Arc::new(Metrics::default()),
            rate: RateLimiter::new(config.limits.per_ip_per_minute, config.limits.per_ip_burst),
            streams: StreamLimiter::new(config.limits.per_ip_streams),
            token_streams: StreamLimiter::new(config.limits.per_token_streams),
            upstream,
            auth_required: config.auth_required(),
            store,
            drain: drain::Drain::default(),
            config,
        });
        spawn_sweeper(Arc::downgrade(&app));
        Ok(app)
    }

    pub fn grace(&self) -> Duration {
        Duration::from_secs_f64(self.config.generations.grace_secs.max(0.0))
    }

    /// Which source answers a requested model name.
    pub fn resolve_model(&self, requested: &str) -> Result<Source, ApiError> {
        let Some(upstream) = &self.upstream else { return Ok(Source::Demo) };
        let default = &self.config.upstream.model;
        if requested == demo::MODEL {
            return Ok(Source::Demo);
        }
        if requested.is_empty() || requested == "default" || requested == default {
            return Ok(Source::Http { upstream: upstream.clone(), model: default.clone() });
        }
        if self.config.upstream.models.iter().any(|m| m == requested) {
            return Ok(Source::Http { upstream: upstream.clone(), model: requested.to_string() });
        }
        Err(ApiError::bad_request(
            "model_not_allowed",
            format!("model {requested:?} is not available on this relay; available: {}", self.model_names().join(", ")),
        ))
    }

    pub fn model_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        if self.upstream.is_some() {
            names.push(self.config.upstream.model.clone());
            names.extend(self.config.upstream.models.iter().filter(|m| **m != self.config.upstream.model).cloned());
        }
        names.push(demo::MODEL.to_string());
        names
    }

    /// Starts a generation for a client at `ip` within its limits (this instance's, and with a
    /// shared store all instances'), and shares it when there is a store.
    pub async fn begin(
        self: &Arc<Self>,
        source: Source,
        prompt: Prompt,
        owner: String,
        ip: std::net::IpAddr,
    ) -> Result<Arc<Generation>, ApiError> {
        if self.drain.started() {
            // Before any limit or the shared store is asked (`start_as` decides the race).
            self.metrics.count_error("relay_draining");
            return Err(drain::refusal());
        }
        let mut permits = vec![self.streams.acquire(ip)?];
        // Tokens off: every client is the same empty owner, so only the IP counts.
        let per_token = self.token_streams.limit();
        let token_limited = per_token > 0 && !owner.is_empty();
        if token_limited {
            permits.push(self.token_streams.acquire_token(&owner)?);
        }
        let Some(store) = &self.store else { return self.start(source, prompt, owner, permits) };
        let limit = self.config.limits.per_ip_streams;
        let mut limits = vec![(format!("cw:streams:{ip}"), limit)];
        if token_limited {
            limits.push((format!("cw:streams:token:{owner}"), per_token));
        }
        // One round trip before the upstream request: the shared slots, the metadata and the
        // lease together. With a plain `http://` upstream the generation's task starts first
        // and connects while that round trip runs, and sends the request once the answer is
        // admitted (not before: a refused answer must cost the upstream nothing). Otherwise
        // there is nothing to overlap, and it starts once admitted. The events follow behind
        // this instance's own readers.
        let (id, created) = (generation::new_id(), generation::now_secs());
        let model = source_model(&source);
        let ahead = matches!(&source, Source::Http { upstream, .. } if upstream.connects_ahead());
        let start = if ahead {
            let (admit, gate) = tokio::sync::oneshot::channel();
            let gen = self.start_as(id.clone(), created, source, prompt, owner.clone(), permits, Some(gate))?;
            Start::Early(gen, admit)
        } else {
            Start::Admitted(source, prompt, permits)
        };
        // Until admitted, an early generation is this request's alone: refused, failed or
        // dropped (the client left), it goes.
        let pending = matches!(start, Start::Early(..)).then(|| Pending { app: self, id: &id });
        // The client's request token is taken here, not by the rate-limit layer (which leaves
        // this route's shared bucket to the admission).
        let l = &self.config.limits;
        let rate = (l.per_ip_per_minute > 0).then_some(store::RateLimit {
            ip,
            per_minute: l.per_ip_per_minute,
            burst: l.per_ip_burst,
        });
        let slots = match store.admit(&id, &owner, &model, created, &limits, rate).await? {
            store::Admission::Admitted(slots) => slots,
            store::Admission::Full(0) => return Err(limits::too_many_streams(ip, limit)),
            store::Admission::Full(_) => return Err(limits::too_many_token_streams(per_token)),
            store::Admission::Limited(wait) => {
                let e = self.rate.refusal(ip, wait);
                self.metrics.count_error(&e.code);
                return Err(e);
            }
        };
        std::mem::forget(pending);
        let (gen, admit) = match start {
            Start::Early(gen, admit) => (gen, Some(admit)),
            Start::Admitted(source, prompt, permits) => {
                match self.start_as(id.clone(), created, source, prompt, owner, permits, None) {
                    Ok(gen) => (gen, None),
                    Err(e) => {
                        store.withdraw(&id);
                        return Err(e);
                    }
                }
            }
        };
        self.metrics.generations_total.fetch_add(1, Ordering::Relaxed);
        // Mirrored before the request goes out: the log holds every event for the mirror.
        store.mirror(gen.clone(), slots);
        if let Some(admit) = admit {
            let _ = admit.send(());
        }
        Ok(gen)
    }

    /// Starts a generation: registers it and spawns the task that feeds it.
    pub fn start(
        self: &Arc<Self>,
        source: Source,
        prompt: Prompt,
        owner: String,
        permits: Vec<StreamPermit>,
    ) -> Result<Arc<Generation>, ApiError> {
        let gen = self.start_as(generation::new_id(), generation::now_secs(), source, prompt, owner, permits, None)?;
        self.metrics.generations_total.fetch_add(1, Ordering::Relaxed);
        Ok(gen)
    }

    /// Starts generation `id`, created at `created`. With a `gate`, its task may connect to
    /// the upstream but sends nothing until the gate opens, and ends quietly if it is dropped.
    #[allow(clippy::too_many_arguments)]
    fn start_as(
        self: &Arc<Self>,
        id: String,
        created: u64,
        source: Source,
        prompt: Prompt,
        owner: String,
        permits: Vec<StreamPermit>,
        gate: Option<upstream::Gate>,
    ) -> Result<Arc<Generation>, ApiError> {
        let running = self.registry.running();
        let before = running.fetch_add(1, Ordering::SeqCst);
        // After the count went up (both SeqCst): a drain that began before is seen here, and
        // one that begins after sees this answer running and waits for it.
        if self.drain.started() {
            running.fetch_sub(1, Ordering::SeqCst);
            self.metrics.count_error("relay_draining");
            return Err(drain::refusal());
        }
        if before >= self.config.limits.max_generations {
            running.fetch_sub(1, Ordering::SeqCst);
            self.metrics.count_error("relay_busy");
            return Err(ApiError {
                retry_after: Some(5),
                ..ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "server_error",
                    "relay_busy",
                    "the relay is at its limit of concurrent answers; retry shortly",
                )
            });
        }
        let gen = Arc::new(Generation::created_at(
            id,
            created,
            source_model(&source),
            owner,
            self.config.generations.max_log_bytes,
            self.metrics.clone(),
        ));
        self.registry.insert(gen.clone());
        self.metrics.active_generations.fetch_add(1, Ordering::Relaxed);
        let (app, g) = (self.clone(), gen.clone());
        let task = tokio::spawn(async move {
            // Dropped when the task ends or is aborted (cancel): frees the slots.
            let _running = Running { app: app.clone(), generation: g.clone(), _permits: permits };
            // Boxed: the task then holds only the branch it runs, not the larger of the two.
            match source {
                Source::Demo => {
                    if upstream::admitted(gate, &g).await {
                        Box::pin(demo::run(&g, &prompt, &app.config.demo)).await
                    }
                }
                Source::Http { upstream, model } => {
                    Box::pin(upstream.run(&model, &prompt, &g, &app.metrics, gate)).await
                }
            }
        });
        gen.set_task(task.abort_handle());
        Ok(gen)
    }

    /// A generation the caller may read or cancel (same token subject when tokens are on).
    pub fn owned_generation(&self, id: &str, owner: &Owner) -> Result<Arc<Generation>, ApiError> {
        match self.registry.get(id) {
            Some(g) if g.owner == owner.0 => Ok(g),
            _ => Err(generation_not_found(id)),
        }
    }

    /// The owner for a valid client token.
    pub fn check_token(&self, token: &str) -> Option<Owner> {
        let auth = &self.config.auth;
        if token.is_empty() {
            return None;
        }
        if let Some(i) = auth.tokens.iter().position(|t| auth::constant_time_eq(t.as_bytes(), token.as_bytes())) {
            return Some(Owner::static_token(i));
        }
        if !auth.hmac_secret.is_empty() {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
            return auth::verify(&auth.hmac_secret, token, now).ok().map(|subject| Owner::user(&subject));
        }
        None
    }
}

/// The model name a source answers as.
fn source_model(source: &Source) -> String {
    match source {
        Source::Demo => demo::MODEL.to_string(),
        Source::Http { model, .. } => model.clone(),
    }
}

/// Unknown, expired, or another owner's: the answer does not say which.
pub fn generation_not_found(id: &str) -> ApiError {
    ApiError::not_found(
        "generation_not_found",
        format!("no generation {id:?} here (unknown, expired after the TTL, or not yours)"),
    )
}

/// When a generation with a shared store starts: before its admission (its task connects
/// meanwhile, and sends once told), or once admitted.
enum Start {
    Early(Arc<Generation>, tokio::sync::oneshot::Sender<()>),
    Admitted(Source, Prompt, Vec<StreamPermit>),
}

/// A generation started before its admission: forgotten unless the admission went through.
struct Pending<'a> {
    app: &'a App,
    id: &'a str,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.app.registry.remove(self.id);
    }
}

struct Running {
    app: Arc<App>,
    generation: Arc<Generation>,
    _permits: Vec<StreamPermit>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.generation.abandon();
        self.app.registry.running().fetch_sub(1, Ordering::SeqCst);
        self.app.metrics.active_generations.fetch_sub(1, Ordering::Relaxed);
    }
}

fn spawn_sweeper(app: Weak<App>) {
    let Ok(rt) = tokio::runtime::Handle::try_current() else { return };
    rt.spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(15));
        loop {
            tick.tick().await;
            let Some(app) = app.upgrade() else { return };
            let g = &app.config.generations;
            app.registry.sweep(Duration::from_secs(g.ttl_secs), g.max_finished);
            app.rate.sweep();
        }
    });
}

/// All routes with their layers.
pub fn router(app: Arc<App>) -> Router {
    let limit = app.config.limits.max_body_bytes;
    let api = Router::new()
        .route("/v1/chat/completions", post(routes::completions))
        .route("/v1/chat/stream/{id}", get(routes::resume))
        .route("/v1/chat/stream/{id}/cancel", post(routes::cancel))
        .route("/v1/models", get(routes::models))
        .layer(from_fn_with_state(app.clone(), routes::authenticate))
        .layer(from_fn_with_state(app.clone(), routes::rate_limit))
        .layer(DefaultBodyLimit::max(limit))
        .layer(Extension(BodyRules {
            limit,
            timeout: Duration::from_millis(app.config.limits.body_timeout_ms.max(1)),
            min_rate: app.config.limits.min_body_rate,
        }));
    let mut router = Router::new()
        .merge(api)
        .route("/healthz", get(routes::healthz))
        .route("/metrics", get(routes::metrics))
        .method_not_allowed_fallback(routes::method_not_allowed);
    if let Some(pkg) = &app.config.server.pkg_dir {
        router = router.nest_service("/pkg/web", ServeDir::new(pkg.join("web")).fallback(get(routes::not_found)));
    }
    router = match &app.config.server.static_dir {
        Some(dir) => router.fallback_service(
            ServeDir::new(dir).append_index_html_on_directories(true).fallback(get(routes::not_found)),
        ),
        None => router.fallback(routes::not_found),
    };
    let local_only = app.config.server.host.is_loopback() && !app.config.server.trust_forwarded_for;
    router.layer(cors(&app.config)).layer(from_fn_with_state(local_only, routes::check_host)).with_state(app)
}

fn cors(config: &Config) -> CorsLayer {
    let origins = &config.cors_origins();
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers([
            HeaderName::from_static("content-type"),
            HeaderName::from_static("authorization"),
            HeaderName::from_static("last-event-id"),
            HeaderName::from_static("x-chunkwise-chaos"),
        ])
        .expose_headers([HeaderName::from_static("x-chunkwise-generation"), HeaderName::from_static("retry-after")])
        .max_age(Duration::from_secs(600))
}

/// Serves `app` on `listener`: HTTP/1.1, TCP_NODELAY on every connection, a 30 s limit for
/// request heads and the write timeout of [`conn::Conn`].
///
/// Memory every open stream pays is kept low: the read buffer is capped at 8 KiB (hyper would
/// grow it to 16 KiB after the first request), and `half_close` stops hyper from holding a
/// read buffer just to watch for EOF while a response streams. A client that goes away is
/// still noticed: the next event or heartbeat written to it fails.
pub async fn serve(listener: tokio::net::TcpListener, app: Arc<App>) -> std::io::Result<()> {
    serve_until(listener, app, &Arc::default(), std::future::pending()).await
}

/// [`serve`] until `stop` resolves, then closes the listener and returns. The connections it
/// accepted go on in this runtime, each in `connections`, which closes them (see [`drain`]).
pub async fn serve_until(
    listener: tokio::net::TcpListener,
    app: Arc<App>,
    connections: &Arc<drain::Connections>,
    stop: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    use axum::extract::ConnectInfo;
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt;

    let write_timeout = Duration::from_secs(app.config.server.write_timeout_secs.max(1));
    let router = router(app.clone());
    let mut http = hyper::server::conn::http1::Builder::new();
    http.max_buf_size(8192).half_close(true).timer(TokioTimer::new()).header_read_timeout(Duration::from_secs(30));
    let mut stop = std::pin::pin!(stop);
    loop {
        let accepted = tokio::select! {
            biased;
            () = &mut stop => return Ok(()),
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            // Out of descriptors or memory: wait for streams to end instead of spinning.
            Err(_) => {
                tokio::select! {
                    () = &mut stop => return Ok(()),
                    () = tokio::time::sleep(Duration::from_millis(20)) => {}
                }
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let io = conn::Conn::new(stream, write_timeout);
        let socket = io.peer();
        let (app, tracker) = (app.clone(), connections.clone());
        let service = hyper::service::service_fn(move |mut req: axum::http::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            req.extensions_mut().insert(socket.clone());
            let busy = tracker.busy();
            let (app, res) = (app.clone(), router.clone().oneshot(req.map(axum::body::Body::new)));
            async move {
                let mut res = res.await?;
                drain::close_when_draining(&app, &mut res);
                Ok::<_, std::convert::Infallible>(res.map(|b| drain::Tracked::new(b, busy)))
            }
        });
        let conn = http.serve_connection(TokioIo::new(io), service);
        tokio::spawn(connections.clone().run(conn, |c| c.graceful_shutdown()));
    }
}

/// Starts the relay on an ephemeral loopback port in this runtime (for tests and tools).
pub async fn spawn(config: Config) -> Result<(SocketAddr, Arc<App>), String> {
    let app = App::connect(config).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(serve(listener, app.clone()));
    Ok((addr, app))
}
