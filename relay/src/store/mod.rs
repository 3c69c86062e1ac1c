//! Generations shared between relay instances through Redis (`REDIS_URL`), so a resume or a
//! stop that a load balancer sends to another instance still works.
//!
//! The instance that talks to the upstream keeps its in-memory log as without Redis (its own
//! readers are served from memory, at the same cost) and mirrors every event to Redis. Any
//! other instance serves `GET /v1/chat/stream/{id}` from Redis.
//!
//! Why Redis Streams: a generation is an append-only log read from a position, which is what a
//! stream is. An entry holds one or more consecutive events and its id is the number of the
//! last (`<seq>-0`, [`entry`]), so `after=<seq>` is `XREAD … <seq>-0` (skipping the events of
//! the first entry up to `seq`) with nothing lost or repeated, and `XREAD BLOCK` wakes a
//! remote reader when the next events land (no polling, no pub/sub message to lose between a
//! read and a subscribe). Needs Redis 6.2 or later (`XADD … MINID`, `ZADD … GT`).
//!
//! Keys, for a generation `id` (all expire: `ttl_secs` after the last write):
//! - `cw:g:{id}`: hash `owner`, `model`, `created`.
//! - `cw:g:{id}:log`: the stream; fields `k` (a letter per event kind), `p` (the payloads)
//!   and `n` (their lengths), at most about `max_log_bytes / 16` events (the oldest entries
//!   are trimmed by event number).
//! - `cw:g:{id}:lease`: set while the upstream runs, renewed every [`RENEW_EVERY`], expiring after
//!   [`LEASE`]: a reader that finds neither the lease nor `[DONE]` knows the instance died and
//!   ends the stream with an error.
//! - `cw:g:{id}:cancel`: set by a cancel sent to any instance, and published on channel
//!   `cw:cancel`. The holder aborts its upstream when the message arrives, and reads the key
//!   with every lease renewal, so a cancel published while its subscriber reconnects still
//!   lands within [`RENEW_EVERY`].
//! - `cw:streams:{ip}` and `cw:streams:token:{subject}`: a client's running answers on all
//!   instances, a sorted set of generation ids scored by their lease's end.
//!
//! Round trips: a new answer costs one before its upstream request is sent (one script takes
//! the client's request token and stream slots and writes the metadata and lease,
//! [`RedisStore::admit`]), while its task connects to the upstream (the request itself waits
//! for the admission: a refused answer costs the upstream nothing); its
//! events then go to Redis behind the holder's own readers, in batches shared by all the
//! instance's generations, and its lease is renewed with all the others every [`RENEW_EVERY`], a
//! few hundred per script call ([`mirror`]). Requests and the mirror use separate connections, so a client's
//! round trip never queues behind a batch. The connections, the writer and the heartbeat run
//! on a thread of their own: on a busy relay a reply from Redis would otherwise wait for its
//! turn behind thousands of streams twice (the connection's task, then the request's).
//!
//! Timeouts mean "Redis is gone", not "Redis is busy": a request waits up to
//! [`REQUEST_TIMEOUT`] for its answer, and a connection is dropped and made again only when it
//! fails (reset, closed) or has had no answer at all for [`GONE_AFTER`]. The heartbeat's
//! connection is replaced sooner, before a renewal it has not answered lets the leases lapse
//! ([`mirror`]).
//!
//! The mirror never leaves a hole: a failed write is retried with the same events (after
//! asking Redis which of them landed), and the holder's bounded log keeps every event the
//! mirror has not copied: an upstream that bursts faster than Redis takes the events is held
//! back (the generation stops reading it) until the mirror catches up, at most
//! [`crate::generation::MIRROR_WAIT`], and the answer then ends with an error rather than a
//! hole. Should events be missing all the same, the stream ends with a "lost" entry at the
//! first missing number and readers get an error there. A remote reader also checks that every entry it reads is the next
//! number (trimming can outrun a slow reader) and answers `client_too_slow` otherwise, as the
//! in-memory path does.
//!
//! A text reader (`?format=text&offset=`) is placed by counting content bytes from the
//! stream's first event, so it needs the stream untrimmed up to its offset (410 otherwise).
//!
//! A generation costs Redis about its payload bytes plus some 50 bytes per entry (the stream's
//! listpacks store ids as deltas), measured with `MEMORY USAGE` in `tests/shared_faults.rs`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, RedisError};

use crate::error::ApiError;
use crate::generation::{chunk_head, Generation, Kind, Render};
use remote::Remote;

mod entry;
mod mirror;
mod remote;
mod version;

/// How long a lease lives without renewal: a holder that died is noticed within it (and a
/// remote reader's blocked read, a second). Its holder renews it every [`RENEW_EVERY`] on a
/// fixed schedule, so a renewal may run up to four seconds later than planned before a live
/// generation's lease lapses: under 10,000 streams on two saturated cores, renewals were
/// measured to run 2.5 to 3 s apart, which a 3 s lease did not survive (readers elsewhere
/// got `generation_lost`, and the admission script dropped live answers from their client's
/// count).
pub const LEASE: Duration = Duration::from_secs(6);
/// How often the holder renews its leases and slots and reads the cancel flags. Not every
/// second: renewals are a large part of Redis's work (with 1,000 answers held open, renewals
/// once a second took half the Redis time of all their event writes), and where Redis is
/// starved of CPU that time is taken from the admissions. Renewals that waited for each
/// other's answers came every 2.5 s or so on a saturated machine, so this costs Redis no more
/// than they did, and leaves the same four seconds of lateness as a renewal a second and a 5 s
/// lease would.
pub const RENEW_EVERY: Duration = Duration::from_secs(2);
/// How long a resume past what Redis holds waits for the holder's mirror to catch up (it
/// copies a batch every 50 ms) before it is refused.
const CATCH_UP: Duration = Duration::from_secs(3);
/// How long a client's request waits for Redis before it gets 503 `store_unavailable`.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long making a connection (with its handshake) may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// A requests' connection with no answer at all for this long is taken for dead and made again
/// (the heartbeat's has less: a lease does not last this long).
pub const GONE_AFTER: Duration = Duration::from_secs(10);
const CANCEL_CHANNEL: &str = "cw:cancel";
/// The kind letter of the entry that marks events the mirror could not copy.
const LOST: &str = "x";

/// The per-IP token bucket, as a Lua function both scripts below define: `take(key, now (ms),
/// refill per ms, burst, expiry (ms))` takes one token from the hash `key` (tokens, at) and
/// returns whether it did and the tokens left.
macro_rules! bucket_lua {
    () => {
        r"
local function take(key, now, rate, burst, expiry)
  local b = redis.call('HMGET', key, 't', 'at')
  local t = tonumber(b[1]) or burst
  local at = tonumber(b[2]) or now
  if now > at then t = math.min(burst, t + (now - at) * rate) end
  local ok = 0
  if t >= 1 then t = t - 1; ok = 1 end
  redis.call('HSET', key, 't', tostring(t), 'at', tostring(math.max(now, at)))
  redis.call('PEXPIRE', key, expiry)
  return ok, t
end
"
    };
}

/// One request from an IP, shared: `KEYS[1]` the bucket, `ARGV` now (ms), refill per ms,
/// burst, expiry (ms). Returns `{1, tokens}` when a token was taken, `{0, tokens}` not.
const TAKE_TOKEN: &str = concat!(
    bucket_lua!(),
    r"
local ok, t = take(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4])
return {ok, tostring(t)}
"
);

/// A new answer, admitted in one round trip (the client's request token too, so an answer
/// costs one round trip before its first byte). `KEYS`: the client's stream-slot sets (one or
/// two: per IP, per token), the generation's metadata and lease keys, then the client's
/// request bucket when the rate limit is on. `ARGV`: now (ms), lease end (ms), the generation
/// id, ttl (s), lease (ms), this instance, owner, model, created, the number of slot sets,
/// the bucket's refill per ms (0: no rate limit), burst and expiry (ms), then the limit of
/// each slot set. Slots whose lease lapsed (an instance that died) are dropped first. Returns
/// `{0}` when admitted (the slots taken, the metadata and lease written), `{1, i}` when slot
/// set `i` (1-based) is at its limit, `{2, tokens}` when the bucket is empty; a refused
/// answer writes nothing but the request's token.
const ADMIT: &str = concat!(
    bucket_lua!(),
    r"
local n = tonumber(ARGV[10])
if tonumber(ARGV[11]) > 0 then
  local ok, t = take(KEYS[n + 3], tonumber(ARGV[1]), tonumber(ARGV[11]), tonumber(ARGV[12]), ARGV[13])
  if ok == 0 then return {2, tostring(t)} end
end
for i = 1, n do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', ARGV[1])
  if redis.call('ZCARD', KEYS[i]) >= tonumber(ARGV[13 + i]) then return {1, i} end
end
for i = 1, n do
  redis.call('ZADD', KEYS[i], ARGV[2], ARGV[3])
  redis.call('PEXPIRE', KEYS[i], ARGV[5])
end
redis.call('HSET', KEYS[n + 1], 'owner', ARGV[7], 'model', ARGV[8], 'created', ARGV[9])
redis.call('EXPIRE', KEYS[n + 1], ARGV[4])
redis.call('SET', KEYS[n + 2], ARGV[6], 'PX', ARGV[5])
return {0}
"
);

/// A client's shared request bucket: `per_minute` requests a minute, `burst` deep.
#[derive(Clone, Copy)]
pub struct RateLimit {
    pub ip: std::net::IpAddr,
    pub per_minute: u32,
    pub burst: u32,
}

impl RateLimit {
    fn key(&self) -> String {
        format!("cw:rate:{}", self.ip)
    }
    fn per_ms(&self) -> f64 {
        self.per_minute as f64 / 60_000.0
    }
    /// How long the bucket lives unused: the time it takes to fill.
    fn expiry_ms(&self) -> u64 {
        ((self.burst as f64 / self.per_ms().max(1e-9)) as u64).clamp(1000, 3_600_000)
    }
    /// Seconds until a token is there, with `tokens` left.
    fn wait_secs(&self, tokens: &str) -> u64 {
        let tokens: f64 = tokens.parse().unwrap_or(0.0);
        (((1.0 - tokens) / self.per_ms().max(1e-9)) / 1000.0).ceil().max(1.0) as u64
    }
}

/// How a new answer fared at the shared limits.
pub enum Admission {
    /// Admitted: its slots (one per limit asked), released when dropped.
    Admitted(Vec<Slot>),
    /// Refused: the index of the limit that was full.
    Full(usize),
    /// Refused: the client's request rate; retry in this many seconds.
    Limited(u64),
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// One running answer of one client in a shared count; released when dropped (and lapsing
/// by itself if this instance dies). The heartbeat renews it.
pub struct Slot {
    store: Weak<RedisStore>,
    key: String,
    member: String,
}

impl Slot {
    /// Its removal went to Redis with the generation's last write.
    fn released(mut self) {
        self.key.clear();
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if self.key.is_empty() {
            return;
        }
        let Some(store) = self.store.upgrade() else { return };
        let (key, member) = (std::mem::take(&mut self.key), std::mem::take(&mut self.member));
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
    shared: Mutex<Option<MultiplexedConnection>>,
    /// When the shared connection last answered (ms since the Unix epoch).
    answered_at: AtomicU64,
    /// This instance's running generations, whose leases and slots the heartbeat renews.
    held: Mutex<HashMap<String, mirror::Held>>,
    /// The writer's queue: a generation that changed (see [`Generation::follow`]).
    writer: tokio::sync::mpsc::UnboundedSender<Arc<Generation>>,
    /// Told by a generation that waits for the writer (see [`Generation::room`]).
    hurry: Arc<tokio::sync::Notify>,
    /// The runtime of the store's thread, which ends when the store is dropped.
    io: tokio::runtime::Handle,
    _stop: tokio::sync::oneshot::Sender<()>,
    ttl_secs: u64,
    /// Bound on one generation's stream (`MINID ~`, by event number): the oldest events go
    /// first, and a resume before them is refused with 410, as with the in-memory log.
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
        let (writer, queue) = tokio::sync::mpsc::unbounded_channel();
        let (io, _stop) = io_thread().map_err(|e| format!("cannot start the Redis thread: {e}"))?;
        let store = RedisStore {
            io,
            _stop,
            client,
            shared: Mutex::new(None),
            answered_at: AtomicU64::new(now_ms()),
            held: Mutex::new(HashMap::new()),
            writer,
            hurry: Arc::new(tokio::sync::Notify::new()),
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
        version::check(&mut con).await?;
        let store = Arc::new(store);
        store.io.spawn(mirror::write(Arc::downgrade(&store), queue));
        store.io.spawn(mirror::heartbeat(Arc::downgrade(&store)));
        Ok(store)
    }

    /// A connection that answers within `response` or fails.
    fn config(response: Duration) -> AsyncConnectionConfig {
        AsyncConnectionConfig::new().set_connection_timeout(CONNECT_TIMEOUT).set_response_timeout(response)
    }

    /// A new connection, driven on the store's thread.
    async fn open(&self, response: Duration) -> Result<MultiplexedConnection, RedisError> {
        let client = self.client.clone();
        let opening = self
            .io
            .spawn(async move { client.get_multiplexed_async_connection_with_config(&Self::config(response)).await });
        match opening.await {
            Ok(con) => con,
            Err(_) => Err(RedisError::from(std::io::Error::other("the Redis thread stopped"))),
        }
    }

    /// The shared connection, connecting when there is none.
    async fn con(&self) -> Result<MultiplexedConnection, RedisError> {
        if let Some(con) = self.shared.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            return Ok(con);
        }
        let con = self.open(REQUEST_TIMEOUT).await?;
        self.answered_at.store(now_ms(), Ordering::Relaxed);
        *self.shared.lock().unwrap_or_else(|p| p.into_inner()) = Some(con.clone());
        Ok(con)
    }

    /// Maps a Redis result to the relay's 503, forgetting the shared connection when the
    /// error says it is broken: it failed, or it has answered nothing for [`GONE_AFTER`]. A
    /// slow answer alone is Redis being busy, and the connection is kept.
    fn check<T>(&self, result: Result<T, RedisError>) -> Result<T, ApiError> {
        match &result {
            Ok(_) => self.answered_at.store(now_ms(), Ordering::Relaxed),
            Err(e) => {
                let silent = now_ms().saturating_sub(self.answered_at.load(Ordering::Relaxed));
                if broken(e) && (!e.is_timeout() || silent >= GONE_AFTER.as_millis() as u64) {
                    *self.shared.lock().unwrap_or_else(|p| p.into_inner()) = None;
                }
            }
        }
        result.map_err(unavailable)
    }

    /// Runs a pipeline on the shared connection, and once more on a fresh one when the shared
    /// connection turns out broken (Redis restarted since it was last used).
    async fn run<T: redis::FromRedisValue>(&self, pipe: &redis::Pipeline) -> Result<T, ApiError> {
        let mut con = self.check(self.con().await)?;
        match pipe.query_async::<T>(&mut con).await {
            // Not after a timeout: Redis is busy, and the wait would double.
            Err(e) if broken(&e) && !e.is_timeout() => {
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

    /// Whether `id`'s lease is held, then its stream's last event number (0 when empty) and
    /// kind letter. In this order: the writer appends the last event before it deletes the
    /// lease, so an end read after the lease is gone is the end, never an older one.
    async fn held_and_last(&self, id: &str) -> Result<(bool, u64, String), ApiError> {
        let mut pipe = redis::pipe();
        pipe.exists(Self::lease_key(id));
        pipe.cmd("XREVRANGE").arg(Self::log_key(id)).arg("+").arg("-").arg("COUNT").arg(1);
        let (held, last): (bool, redis::streams::StreamRangeReply) = self.run(&pipe).await?;
        let (seq, kind) = last.ids.first().map(entry::last_event).unwrap_or((0, String::new()));
        Ok((held, seq, kind))
    }

    /// Takes one request from the client's bucket shared by all instances: `Ok(None)` when
    /// allowed, `Ok(Some(seconds))` to wait when not.
    pub async fn take_token(&self, rate: RateLimit) -> Result<Option<u64>, ApiError> {
        let mut pipe = redis::pipe();
        pipe.cmd("EVAL")
            .arg(TAKE_TOKEN)
            .arg(1)
            .arg(rate.key())
            .arg(now_ms())
            .arg(rate.per_ms())
            .arg(rate.burst)
            .arg(rate.expiry_ms());
        let ((ok, tokens),): ((i64, String),) = self.run(&pipe).await?;
        Ok((ok != 1).then(|| rate.wait_secs(&tokens)))
    }

    /// Admits a new answer `id` in one round trip: a request token from the client's bucket
    /// (`rate`, when the rate limit is on), a slot in each of `limits` (`(key, limit)`:
    /// `cw:streams:` and the IP, or `token:` and the subject) and, when all have room, its
    /// metadata and lease. An error means the store is unreachable (503).
    pub async fn admit(
        self: &Arc<Self>,
        id: &str,
        owner: &str,
        model: &str,
        created: u64,
        limits: &[(String, usize)],
        rate: Option<RateLimit>,
    ) -> Result<Admission, ApiError> {
        let now = now_ms();
        let lease_ms = LEASE.as_millis() as u64;
        let mut eval = redis::cmd("EVAL");
        eval.arg(ADMIT).arg(limits.len() + 2 + rate.is_some() as usize);
        for (key, _) in limits {
            eval.arg(key);
        }
        eval.arg(Self::meta_key(id)).arg(Self::lease_key(id));
        if let Some(rate) = &rate {
            eval.arg(rate.key());
        }
        eval.arg(now).arg(now + lease_ms).arg(id).arg(self.ttl_secs).arg(lease_ms).arg(&self.instance);
        eval.arg(owner).arg(model).arg(created).arg(limits.len());
        match &rate {
            Some(rate) => eval.arg(rate.per_ms()).arg(rate.burst).arg(rate.expiry_ms()),
            None => eval.arg(0).arg(0).arg(0),
        };
        for (_, limit) in limits {
            eval.arg(*limit);
        }
        let mut pipe = redis::pipe();
        pipe.add_command(eval);
        let (reply,): (Vec<String>,) = self.run(&pipe).await?;
        match (reply.first().map(String::as_str), reply.get(1)) {
            (Some("0"), _) => {}
            (Some("1"), Some(i)) => return Ok(Admission::Full(i.parse::<usize>().unwrap_or(1).saturating_sub(1))),
            (Some("2"), Some(tokens)) => {
                return Ok(Admission::Limited(rate.map(|r| r.wait_secs(tokens)).unwrap_or(1)));
            }
            _ => return Err(unavailable(())),
        }
        let slots = limits
            .iter()
            .map(|(key, _)| Slot { store: Arc::downgrade(self), key: key.clone(), member: id.to_string() })
            .collect();
        Ok(Admission::Admitted(slots))
    }

    /// Undoes an admission whose generation did not start (the relay was at its limit).
    pub fn withdraw(self: &Arc<Self>, id: &str) {
        let store = self.clone();
        let keys = [Self::meta_key(id), Self::lease_key(id)];
        tokio::spawn(async move {
            let mut pipe = redis::pipe();
            pipe.del(&keys).ignore();
            let _ = store.run::<()>(&pipe).await;
        });
    }

    /// Mirrors a local generation into Redis until it ends (see [`mirror`]); `slots` are
    /// renewed until then.
    pub fn mirror(&self, gen: Arc<Generation>, slots: Vec<Slot>) {
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(gen.id.clone(), mirror::Held { gen: gen.clone(), slots });
        gen.follow(self.writer.clone(), self.hurry.clone());
    }

    /// How many of this instance's generations the store still holds: running, or ended
    /// with their end not yet written to Redis (or not yet given up on, with a failing store).
    pub fn holding(&self) -> usize {
        self.held.lock().unwrap_or_else(|p| p.into_inner()).len()
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
    /// renewal, at least every [`RENEW_EVERY`]) and publishes the cancel (heard at once). `false` when
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
        store.io.clone().spawn(async move {
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
    /// generation waits (at most [`CATCH_UP`]) for Redis to catch up before it is refused.
    /// `Ok(true)`: the reader already has `[DONE]`, and its answer is empty (a blocked read
    /// would only time out).
    pub async fn check_resume(&self, id: &str, after: u64) -> Result<bool, ApiError> {
        let log = Self::log_key(id);
        let deadline = tokio::time::Instant::now() + CATCH_UP;
        let (last_seq, last_kind) = loop {
            let (held, last_seq, kind) = self.held_and_last(id).await?;
            if after <= last_seq || kind == LOST {
                break (last_seq, kind);
            }
            if !held || tokio::time::Instant::now() >= deadline {
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
        if let Some(first_seq) = first.ids.first().map(entry::first_seq) {
            if after + 1 < first_seq {
                return Err(ApiError::new(
                    axum::http::StatusCode::GONE,
                    "invalid_request_error",
                    "events_expired",
                    format!("events up to {} were dropped; cannot resume after {after}", first_seq - 1),
                ));
            }
        }
        Ok(after >= last_seq && last_kind == Kind::Done.letter())
    }

    /// Where a text reader that has `offset` bytes of answer starts: the event to read after,
    /// and the bytes of the next content payload to skip. 410 when the start of the answer was
    /// trimmed (the bytes before the stored events are unknown) or lost, 400 when `offset` is
    /// past the answer; a running generation gets [`CATCH_UP`] for Redis to catch up first.
    /// The third value: the place is after `[DONE]` (nothing is left to send).
    pub async fn text_offset(&self, id: &str, offset: u64) -> Result<(u64, usize, bool), ApiError> {
        let log = Self::log_key(id);
        let deadline = tokio::time::Instant::now() + CATCH_UP;
        let (mut left, mut last) = (offset, 0u64);
        let mut ended = false;
        let mut released = false;
        loop {
            let mut pipe = redis::pipe();
            pipe.cmd("XRANGE").arg(&log).arg(format!("({last}-0")).arg("+").arg("COUNT").arg(512);
            let (page,): (redis::streams::StreamRangeReply,) = self.run(&pipe).await?;
            for (seq, letter, payload) in page.ids.iter().flat_map(entry::events) {
                if seq <= last {
                    continue;
                }
                if seq != last + 1 {
                    return Err(ApiError::new(
                        axum::http::StatusCode::GONE,
                        "invalid_request_error",
                        "events_expired",
                        format!("the start of this answer was dropped from the shared store; cannot resume at byte {offset}"),
                    ));
                }
                if letter == LOST {
                    return Err(lost_error(seq));
                }
                if Kind::from_letter(&letter) == Some(Kind::Content) {
                    let len = payload.len() as u64;
                    if left < len {
                        return Ok((last, left as usize, false));
                    }
                    left -= len;
                }
                last = seq;
                ended = Kind::from_letter(&letter) == Some(Kind::Done);
            }
            if !page.ids.is_empty() {
                continue;
            }
            if left == 0 {
                return Ok((last, 0, ended));
            }
            if released || tokio::time::Instant::now() >= deadline {
                return Err(ApiError::bad_request(
                    "invalid_parameter",
                    format!("offset={offset} is past the {} bytes of answer so far", offset - left),
                ));
            }
            if !self.is_held(id).await? {
                // Its last events may have landed since that page ([`Self::held_and_last`]).
                released = true;
                continue;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The body for a generation held by another instance, from event `after + 1` on (in
    /// text mode skipping `skip` bytes of the first content). `ended`: the reader already has
    /// `[DONE]`, so the body is empty at once instead of after a blocked read's timeout.
    #[allow(clippy::too_many_arguments)]
    pub async fn stream(
        self: &Arc<Self>,
        id: &str,
        meta: &Meta,
        after: u64,
        heartbeat: Duration,
        render: Render,
        skip: usize,
        ended: bool,
    ) -> Result<impl futures_util::Stream<Item = Result<Bytes, Infallible>> + Send, ApiError> {
        if ended {
            return Ok(futures_util::stream::empty().left_stream());
        }
        // XREAD BLOCK holds its connection: each remote reader has its own.
        let con = self.open(REQUEST_TIMEOUT).await.map_err(unavailable)?;
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
        Ok(futures_util::stream::unfold(state, Remote::next).right_stream())
    }
}

/// A runtime on a thread of its own, which ends when the sender is dropped.
fn io_thread() -> std::io::Result<(tokio::runtime::Handle, tokio::sync::oneshot::Sender<()>)> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let handle = rt.handle().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    std::thread::Builder::new().name("relay-redis".into()).spawn(move || {
        rt.block_on(async {
            let _ = stopped.await;
        })
    })?;
    Ok((handle, stop))
}

fn broken(e: &RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_unrecoverable_error() || e.is_timeout()
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
