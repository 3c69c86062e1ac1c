//! Generations shared between relay instances through Redis (`REDIS_URL`), so a resume or a
//! stop that a load balancer sends to another instance still works.
//!
//! The instance that talks to the upstream keeps its in-memory log as without Redis (its own
//! readers are served from memory, at the same cost) and mirrors every event to Redis. Any
//! other instance serves `GET /v1/chat/stream/{id}` from Redis.
//!
//! Why Redis Streams: a generation is an append-only log read from a position, which is what a
//! stream is. The relay's sequence number is the entry id (`<seq>-0`), so `after=<seq>` is
//! `XREAD … <seq>-0` with nothing lost or repeated, and `XREAD BLOCK` wakes a remote reader
//! when the next event lands (no polling, no pub/sub message to lose between a read and a
//! subscribe).
//!
//! Keys, for a generation `id` (all expire: `ttl_secs` after the last write):
//! - `cw:g:{id}`: hash `owner`, `model`, `created`.
//! - `cw:g:{id}:log`: the stream; fields `k` (a letter per event kind) and `p` (payload),
//!   at most about `max_log_bytes / 16` events (the oldest are trimmed).
//! - `cw:g:{id}:lease`: set while the upstream runs, renewed every second, expiring after
//!   [`LEASE`]: a reader that finds neither the lease nor `[DONE]` knows the instance died and
//!   ends the stream with an error.
//! - `cw:g:{id}:cancel`: set by a cancel sent to any instance, and published on channel
//!   `cw:cancel`. The holder aborts its upstream when the message arrives, and reads the key
//!   with every lease renewal, so a cancel published while its subscriber reconnects still
//!   lands within a second.
//!
//! The mirror never leaves a hole: a failed write is retried with the same events (after
//! asking Redis which of them landed); if the holder's bounded log dropped events before they
//! were mirrored, the stream ends with a "lost" entry at the first missing number and readers
//! get an error there. A remote reader also checks that every entry it reads is the next
//! number (trimming can outrun a slow reader) and answers `client_too_slow` otherwise, as the
//! in-memory path does.
//!
//! A text reader (`?format=text&offset=`) is placed by counting content bytes from the
//! stream's first event, so it needs the stream untrimmed up to its offset (410 otherwise).
//!
//! A generation costs Redis about its payload bytes plus some 50 bytes per event (the stream's
//! listpacks store ids as deltas): 12.5 KB for a 200-delta answer of short deltas, measured
//! with `MEMORY USAGE` in `tests/shared.rs`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, RedisError};

use crate::error::ApiError;
use crate::generation::{chunk_head, Generation, Kind, Render};
use remote::Remote;

mod remote;

/// How long a lease lives without renewal: a holder that died is noticed within it.
pub const LEASE: Duration = Duration::from_secs(3);
const CANCEL_CHANNEL: &str = "cw:cancel";
/// The kind letter of the entry that marks events the mirror could not copy.
const LOST: &str = "x";

/// The per-IP token bucket, shared: `KEYS[1]` a hash (tokens, at), `ARGV` now (ms), refill
/// per ms, burst, expiry (ms). Returns `{1, tokens}` when a token was taken, `{0, tokens}` not.
const TAKE_TOKEN: &str = r"
local b = redis.call('HMGET', KEYS[1], 't', 'at')
local now, rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = tonumber(b[1]) or burst
local at = tonumber(b[2]) or now
if now > at then t = math.min(burst, t + (now - at) * rate) end
local ok = 0
if t >= 1 then t = t - 1; ok = 1 end
redis.call('HSET', KEYS[1], 't', tostring(t), 'at', tostring(math.max(now, at)))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {ok, tostring(t)}
";

/// One client's count of running answers (per IP or per token), shared: `KEYS[1]` a sorted
/// set of slots scored by their lease's end; `ARGV` now (ms), limit, slot, lease end. Lapsed
/// slots (an instance that died) are dropped first. Returns 1 when the slot was added, 0 at the limit.
const TAKE_SLOT: &str = r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[3])
redis.call('PEXPIRE', KEYS[1], math.max(1, tonumber(ARGV[4]) - tonumber(ARGV[1])))
return 1
";

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// One running answer of one IP in the shared count; released when dropped (and lapsing by
/// itself if this instance dies).
pub struct Slot {
    store: Arc<RedisStore>,
    key: String,
    member: String,
}

impl Slot {
    fn renew(&self, pipe: &mut redis::Pipeline) {
        let end = now_ms() + LEASE.as_millis() as u64;
        pipe.cmd("ZADD").arg(&self.key).arg("XX").arg(end).arg(&self.member).ignore();
        pipe.cmd("PEXPIRE").arg(&self.key).arg(LEASE.as_millis() as u64).ignore();
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let (store, key, member) =
            (self.store.clone(), std::mem::take(&mut self.key), std::mem::take(&mut self.member));
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let mut pipe = redis::pipe();
                pipe.cmd("ZREM").arg(&key).arg(&member).ignore();
                let _ = store.run::<()>(&pipe).await;
            });
        }
    }
}

pub struct RedisStore {
    client: redis::Client,
    /// One multiplexed connection shared by all requests; dropped when it fails, so the next
    /// request connects again (service resumes by itself when Redis returns).
    shared: std::sync::Mutex<Option<MultiplexedConnection>>,
    ttl_secs: u64,
    /// Bound on one generation's stream (`MAXLEN ~`): the oldest events go first, and a
    /// resume before them is refused with 410, as with the in-memory log.
    max_events: usize,
    /// The name this instance writes into leases.
    instance: String,
}

/// What another instance needs to serve a generation.
pub struct Meta {
    pub owner: String,
    pub model: String,
    pub created: u64,
}

/// Redis failed: the client gets the relay's 503 (the driver's text stays on the server).
fn unavailable<E>(_: E) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "server_error",
        "store_unavailable",
        "the relay's shared store is unreachable; retry shortly",
    )
}

impl RedisStore {
    /// Connects and checks the server answers, within 3 seconds.
    pub async fn connect(url: &str, ttl_secs: u64, max_events: usize) -> Result<Arc<RedisStore>, String> {
        let client = redis::Client::open(url).map_err(|e| format!("REDIS_URL is not a Redis URL: {e}"))?;
        let instance = crate::generation::new_id().replace("chatcmpl-", "relay-");
        let store = RedisStore {
            client,
            shared: std::sync::Mutex::new(None),
            ttl_secs: ttl_secs.max(1),
            max_events: max_events.max(16),
            instance,
        };
        let mut con = match tokio::time::timeout(Duration::from_secs(3), store.con()).await {
            Ok(Ok(con)) => con,
            Ok(Err(e)) => return Err(format!("cannot connect to Redis at REDIS_URL: {e}")),
            Err(_) => return Err("cannot connect to Redis at REDIS_URL within 3 s".into()),
        };
        let pong: String = redis::cmd("PING").query_async(&mut con).await.map_err(|e| format!("Redis: {e}"))?;
        if pong != "PONG" {
            return Err(format!("Redis answered PING with {pong:?}"));
        }
        Ok(Arc::new(store))
    }

    fn config() -> AsyncConnectionConfig {
        AsyncConnectionConfig::new()
            .set_connection_timeout(Duration::from_secs(1))
            .set_response_timeout(Duration::from_secs(2))
    }

    /// The shared connection, connecting when there is none.
    async fn con(&self) -> Result<MultiplexedConnection, RedisError> {
        if let Some(con) = self.shared.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            return Ok(con);
        }
        let con = self.client.get_multiplexed_async_connection_with_config(&Self::config()).await?;
        *self.shared.lock().unwrap_or_else(|p| p.into_inner()) = Some(con.clone());
        Ok(con)
    }

    /// Maps a Redis result to the relay's 503, forgetting the shared connection when the
    /// error says it is broken.
    fn check<T>(&self, result: Result<T, RedisError>) -> Result<T, ApiError> {
        if let Err(e) = &result {
            if broken(e) {
                *self.shared.lock().unwrap_or_else(|p| p.into_inner()) = None;
            }
        }
        result.map_err(unavailable)
    }

    /// Runs a pipeline on the shared connection, and once more on a fresh one when the shared
    /// connection turns out broken (Redis restarted since it was last used).
    async fn run<T: redis::FromRedisValue>(&self, pipe: &redis::Pipeline) -> Result<T, ApiError> {
        let mut con = self.check(self.con().await)?;
        match pipe.query_async::<T>(&mut con).await {
            Err(e) if broken(&e) => {
                let _ = self.check::<()>(Err(e));
                let mut con = self.check(self.con().await)?;
                let result = pipe.query_async::<T>(&mut con).await;
                self.check(result)
            }
            result => self.check(result),
        }
    }

    fn meta_key(id: &str) -> String {
        format!("cw:g:{id}")
    }
    fn log_key(id: &str) -> String {
        format!("cw:g:{id}:log")
    }
    fn lease_key(id: &str) -> String {
        format!("cw:g:{id}:lease")
    }
    fn cancel_key(id: &str) -> String {
        format!("cw:g:{id}:cancel")
    }

    /// The sequence number of the last entry of a stream (0 when empty) and its kind letter.
    async fn last_entry(&self, log: &str) -> Result<(u64, String), ApiError> {
        let mut pipe = redis::pipe();
        pipe.cmd("XREVRANGE").arg(log).arg("+").arg("-").arg("COUNT").arg(1);
        let (last,): (redis::streams::StreamRangeReply,) = self.run(&pipe).await?;
        Ok(last
            .ids
            .first()
            .map(|e| {
                let kind = e.map.get("k").and_then(|v| redis::from_redis_value::<String>(v).ok());
                (seq_of(&e.id).unwrap_or(0), kind.unwrap_or_default())
            })
            .unwrap_or((0, String::new())))
    }

    /// Takes one request from `ip`'s bucket shared by all instances: `Ok(None)` when allowed,
    /// `Ok(Some(seconds))` to wait when not.
    pub async fn take_token(&self, ip: std::net::IpAddr, per_minute: u32, burst: u32) -> Result<Option<u64>, ApiError> {
        let per_ms = per_minute as f64 / 60_000.0;
        let full_ms = ((burst as f64 / per_ms.max(1e-9)) as u64).clamp(1000, 3_600_000);
        let mut pipe = redis::pipe();
        pipe.cmd("EVAL")
            .arg(TAKE_TOKEN)
            .arg(1)
            .arg(format!("cw:rate:{ip}"))
            .arg(now_ms())
            .arg(per_ms)
            .arg(burst)
            .arg(full_ms);
        let ((ok, tokens),): ((i64, String),) = self.run(&pipe).await?;
        if ok == 1 {
            return Ok(None);
        }
        let tokens: f64 = tokens.parse().unwrap_or(0.0);
        Ok(Some((((1.0 - tokens) / per_ms.max(1e-9)) / 1000.0).ceil().max(1.0) as u64))
    }

    /// A slot among one client's running answers on all instances (`key`: `cw:streams:` and
    /// the IP or `token:` and the subject), or `None` at `limit`.
    pub async fn take_slot(self: &Arc<Self>, key: &str, limit: usize) -> Result<Option<Slot>, ApiError> {
        let key = key.to_string();
        let member = crate::generation::new_id();
        let now = now_ms();
        let mut pipe = redis::pipe();
        pipe.cmd("EVAL")
            .arg(TAKE_SLOT)
            .arg(1)
            .arg(&key)
            .arg(now)
            .arg(limit)
            .arg(&member)
            .arg(now + LEASE.as_millis() as u64);
        let (taken,): (i64,) = self.run(&pipe).await?;
        Ok((taken == 1).then(|| Slot { store: self.clone(), key, member }))
    }

    /// Records a new generation (its metadata and lease) before its answer starts; an error
    /// means the store is unreachable and the request is refused with 503.
    pub async fn begin(&self, gen: &Generation) -> Result<(), ApiError> {
        let (meta, lease) = (Self::meta_key(&gen.id), Self::lease_key(&gen.id));
        let fields = [("owner", gen.owner.clone()), ("model", gen.model.clone()), ("created", gen.created.to_string())];
        let mut pipe = redis::pipe();
        pipe.hset_multiple(&meta, &fields)
            .ignore()
            .expire(&meta, self.ttl_secs as i64)
            .ignore()
            .cmd("SET")
            .arg(&lease)
            .arg(&self.instance)
            .arg("PX")
            .arg(LEASE.as_millis() as u64)
            .ignore();
        self.run::<()>(&pipe).await
    }

    /// Mirrors a local generation into Redis until it ends: every event as it is logged,
    /// renewing the lease (and reading the cancel flag) every second.
    pub fn mirror(self: &Arc<Self>, gen: Arc<Generation>, slots: Vec<Slot>) {
        let store = self.clone();
        tokio::spawn(async move {
            let (meta, log, lease) = (Self::meta_key(&gen.id), Self::log_key(&gen.id), Self::lease_key(&gen.id));
            let cancel = Self::cancel_key(&gen.id);
            let ttl = store.ttl_secs as i64;
            let lease_ms = LEASE.as_millis() as u64;
            let mut rx = gen.subscribe();
            let mut renew = tokio::time::interval(Duration::from_secs(1));
            let mut next = 1;
            let mut batch: Vec<(u64, Kind, String)> = Vec::new();
            let mut first = true;
            let mut lost = None;
            // Set when a write failed: it may have landed without its answer reaching us.
            let mut failing_since: Option<std::time::Instant> = None;
            loop {
                let mut finished = match lost {
                    Some(_) => true,
                    None => match gen.copy_events(&mut next, &mut batch) {
                        Ok(finished) => finished,
                        Err(_) => {
                            lost = Some(next);
                            true
                        }
                    },
                };
                if failing_since.is_some() {
                    match store.last_entry(&log).await {
                        Ok((last, kind)) => {
                            batch.retain(|e| e.0 > last);
                            if kind == LOST {
                                finished = true;
                                lost = None;
                            }
                        }
                        Err(_) => {
                            if failing_since.is_some_and(|t| t.elapsed() >= LEASE) {
                                // The lease has lapsed: readers elsewhere ended with an error.
                                return;
                            }
                            wait(&mut rx, &mut renew).await;
                            continue;
                        }
                    }
                }
                let mut pipe = redis::pipe();
                if first {
                    pipe.hset_multiple(
                        &meta,
                        &[
                            ("owner", gen.owner.clone()),
                            ("model", gen.model.clone()),
                            ("created", gen.created.to_string()),
                        ],
                    )
                    .ignore();
                }
                for (seq, kind, payload) in &batch {
                    pipe.cmd("XADD")
                        .arg(&log)
                        .arg("MAXLEN")
                        .arg("~")
                        .arg(store.max_events)
                        .arg(format!("{seq}-0"))
                        .arg("k")
                        .arg(kind.letter())
                        .arg("p")
                        .arg(payload)
                        .ignore();
                }
                if let Some(seq) = lost {
                    pipe.cmd("XADD").arg(&log).arg(format!("{seq}-0")).arg("k").arg(LOST).arg("p").arg("").ignore();
                }
                if finished {
                    pipe.del(&lease).ignore();
                } else {
                    pipe.cmd("SET").arg(&lease).arg(&store.instance).arg("PX").arg(lease_ms).ignore();
                    for slot in &slots {
                        slot.renew(&mut pipe);
                    }
                }
                pipe.expire(&meta, ttl).ignore().expire(&log, ttl).ignore().exists(&cancel);
                match store.run::<(bool,)>(&pipe).await {
                    Ok((cancelled,)) => {
                        batch.clear();
                        first = false;
                        failing_since = None;
                        if finished {
                            return;
                        }
                        if cancelled {
                            gen.cancel("cancelled");
                        }
                    }
                    Err(_) => {
                        let since = *failing_since.get_or_insert_with(std::time::Instant::now);
                        if since.elapsed() >= LEASE {
                            return;
                        }
                    }
                }
                wait(&mut rx, &mut renew).await;
            }
        });
    }

    /// The generation's metadata, if any instance started it and it has not expired.
    pub async fn meta(&self, id: &str) -> Result<Option<Meta>, ApiError> {
        let mut pipe = redis::pipe();
        pipe.hgetall(Self::meta_key(id));
        let (fields,): (std::collections::HashMap<String, String>,) = self.run(&pipe).await?;
        let (Some(owner), Some(model)) = (fields.get("owner"), fields.get("model")) else { return Ok(None) };
        let created = fields.get("created").and_then(|c| c.parse().ok()).unwrap_or(0);
        Ok(Some(Meta { owner: owner.clone(), model: model.clone(), created }))
    }

    /// Whether an instance still holds `id`'s lease (is producing it).
    async fn is_held(&self, id: &str) -> Result<bool, ApiError> {
        let mut pipe = redis::pipe();
        pipe.exists(Self::lease_key(id));
        let (held,): (bool,) = self.run(&pipe).await?;
        Ok(held)
    }

    /// Cancels `id` on the instance that holds it: sets its cancel flag (read with the lease
    /// renewal, at least every second) and publishes the cancel (heard at once). `false` when
    /// no instance is producing it any more (it finished, or its holder died).
    pub async fn cancel(&self, id: &str) -> Result<bool, ApiError> {
        if !self.is_held(id).await? {
            return Ok(false);
        }
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(Self::cancel_key(id))
            .arg(1)
            .arg("EX")
            .arg(self.ttl_secs)
            .ignore()
            .cmd("PUBLISH")
            .arg(CANCEL_CHANNEL)
            .arg(id)
            .ignore();
        self.run::<()>(&pipe).await?;
        Ok(true)
    }

    /// Cancels local generations when any instance publishes their cancel. Runs for the life
    /// of the process, resubscribing when the connection drops.
    pub fn serve_cancels(self: &Arc<Self>, registry: std::sync::Weak<crate::App>) {
        let store = self.clone();
        tokio::spawn(async move {
            loop {
                if let Ok(mut pubsub) = store.client.get_async_pubsub().await {
                    if pubsub.subscribe(CANCEL_CHANNEL).await.is_ok() {
                        let mut messages = pubsub.on_message();
                        while let Some(msg) = messages.next().await {
                            let Some(app) = registry.upgrade() else { return };
                            let id: String = msg.get_payload().unwrap_or_default();
                            if let Some(g) = app.registry.get(&id) {
                                g.cancel("cancelled");
                            }
                        }
                    }
                }
                if registry.strong_count() == 0 {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
    }

    /// Checks a resume position against the stored stream: 410 before its first event (or at
    /// events the holder could not mirror), 400 past its last. The holder sends events to its
    /// own readers before they reach Redis, so a position past the stored end of a running
    /// generation waits (at most [`LEASE`]) for Redis to catch up before it is refused.
    pub async fn check_resume(&self, id: &str, after: u64) -> Result<(), ApiError> {
        let log = Self::log_key(id);
        let deadline = tokio::time::Instant::now() + LEASE;
        let (last_seq, last_kind) = loop {
            let (last_seq, kind) = self.last_entry(&log).await?;
            if after <= last_seq || kind == LOST {
                break (last_seq, kind);
            }
            if !self.is_held(id).await? || tokio::time::Instant::now() >= deadline {
                return Err(ApiError::bad_request(
                    "invalid_parameter",
                    format!("cannot resume after event {after}: the last event is {last_seq}"),
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        if last_kind == LOST && after >= last_seq {
            return Err(lost_error(last_seq));
        }
        let mut pipe = redis::pipe();
        pipe.cmd("XRANGE").arg(&log).arg("-").arg("+").arg("COUNT").arg(1);
        let (first,): (redis::streams::StreamRangeReply,) = self.run(&pipe).await?;
        if let Some(first_seq) = first.ids.first().and_then(|e| seq_of(&e.id)) {
            if after + 1 < first_seq {
                return Err(ApiError::new(
                    axum::http::StatusCode::GONE,
                    "invalid_request_error",
                    "events_expired",
                    format!("events up to {} were dropped; cannot resume after {after}", first_seq - 1),
                ));
            }
        }
        Ok(())
    }

    /// Where a text reader that has `offset` bytes of answer starts: the event to read after,
    /// and the bytes of the next content payload to skip. 410 when the start of the answer was
    /// trimmed (the bytes before the stored events are unknown) or lost, 400 when `offset` is
    /// past the answer; a running generation gets [`LEASE`] for Redis to catch up first.
    pub async fn text_offset(&self, id: &str, offset: u64) -> Result<(u64, usize), ApiError> {
        let log = Self::log_key(id);
        let deadline = tokio::time::Instant::now() + LEASE;
        let (mut left, mut last) = (offset, 0u64);
        loop {
            let mut pipe = redis::pipe();
            pipe.cmd("XRANGE").arg(&log).arg(format!("({last}-0")).arg("+").arg("COUNT").arg(512);
            let (page,): (redis::streams::StreamRangeReply,) = self.run(&pipe).await?;
            for e in &page.ids {
                let Some(seq) = seq_of(&e.id) else { continue };
                if seq != last + 1 {
                    return Err(ApiError::new(
                        axum::http::StatusCode::GONE,
                        "invalid_request_error",
                        "events_expired",
                        format!("the start of this answer was dropped from the shared store; cannot resume at byte {offset}"),
                    ));
                }
                let field = |name: &str| e.map.get(name).and_then(|v| redis::from_redis_value::<String>(v).ok());
                let letter = field("k").unwrap_or_default();
                if letter == LOST {
                    return Err(lost_error(seq));
                }
                if Kind::from_letter(&letter) == Some(Kind::Content) {
                    let len = field("p").unwrap_or_default().len() as u64;
                    if left < len {
                        return Ok((last, left as usize));
                    }
                    left -= len;
                }
                last = seq;
            }
            if !page.ids.is_empty() {
                continue;
            }
            if left == 0 {
                return Ok((last, 0));
            }
            if !self.is_held(id).await? || tokio::time::Instant::now() >= deadline {
                return Err(ApiError::bad_request(
                    "invalid_parameter",
                    format!("offset={offset} is past the {} bytes of answer so far", offset - left),
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The body for a generation held by another instance, from event `after + 1` on (in
    /// text mode skipping `skip` bytes of the first content).
    pub async fn stream(
        self: &Arc<Self>,
        id: &str,
        meta: &Meta,
        after: u64,
        heartbeat: Duration,
        render: Render,
        skip: usize,
    ) -> Result<impl futures_util::Stream<Item = Result<Bytes, Infallible>> + Send, ApiError> {
        // XREAD BLOCK holds its connection: each remote reader has its own.
        let con =
            self.client.get_multiplexed_async_connection_with_config(&Self::config()).await.map_err(unavailable)?;
        let state = Remote {
            con,
            log: Self::log_key(id),
            lease: Self::lease_key(id),
            head: chunk_head(id, meta.created, &meta.model),
            last: after,
            done: false,
            idle: Duration::ZERO,
            heartbeat,
            render,
            skip,
        };
        Ok(futures_util::stream::unfold(state, Remote::next))
    }
}

fn broken(e: &RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_unrecoverable_error() || e.is_timeout()
}

/// Waits for the next event of a generation or the next lease renewal, whichever is first.
async fn wait(rx: &mut tokio::sync::watch::Receiver<()>, renew: &mut tokio::time::Interval) {
    tokio::select! {
        changed = rx.changed() => if changed.is_err() { renew.tick().await; },
        _ = renew.tick() => {}
    }
}

/// Events from `seq` on never reached the shared store (the holder's bounded log dropped them
/// before they were mirrored).
fn lost_error(seq: u64) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::GONE,
        "invalid_request_error",
        "events_lost",
        format!("events from {seq} on were dropped before they reached the shared store; resume on the instance that holds it or start again"),
    )
}

fn seq_of(entry_id: &str) -> Option<u64> {
    entry_id.split('-').next()?.parse().ok()
}
