//! The holder's side of shared generations: one writer per instance copies the events of all
//! its generations into Redis in batches, and one heartbeat renews their leases.
//!
//! Why one writer and not a task per generation: at 10,000 streams of 5 events a second a
//! round trip per event is 50,000 round trips a second on the shared connection, each paying
//! the client's and the server's per-request cost; and lease renewals, expiry refreshes and
//! cancel checks sent with every event multiplied Redis's work by seven. The writer sends one
//! pipeline at a time holding every event that arrived since the last one (at most about
//! [`MAX_BATCH`] events), so the batch grows with the load instead of the queue, and one
//! generation's events always reach Redis in order. Nothing waits on it before a client's
//! first byte: the holder's own readers are served from memory.
//!
//! Bounds: each generation is queued at most once however fast its events come
//! ([`Generation::follow`]), so the queue holds at most one entry per running generation;
//! the events themselves are read from the generation's bounded log when a batch is built,
//! never copied into a queue. The log keeps what the writer has not copied yet: a generation
//! that fills half its log that way waits for the writer and tells it to hurry (a batch at
//! once instead of after the linger).
//!
//! A failed write is not retried blindly: it may have landed without its answer reaching us,
//! so the next batch first asks Redis where each of those streams ends. A store that fails
//! for [`LEASE`] is given up on (its leases have lapsed and readers elsewhere ended with an
//! error); the holder's own readers go on from memory.
//!
//! The heartbeat has a connection of its own, so a large batch never delays a lease: every
//! [`RENEW_EVERY`], on a schedule that does not wait for the last answer ([`heartbeat`]), it
//! renews the lease of each running generation and its shared stream slots, and
//! reads the cancel flags, in one script call per [`RENEW_BATCH`] generations ([`RENEW`]):
//! renewals that each read the log's end took Redis several times the time of all the event
//! writes, and those of a busy instance then took longer than a second to be answered. The
//! script sets the lease and slots whether or not they still exist (after a Redis stall
//! longer than the lease they have expired while the answer still streams), unless the generation's log
//! already ends with its last event: the writer appends that event before it deletes the
//! lease and releases the slots, in one pipeline, so a finished generation's lease is never
//! brought back. Only a lease that is gone needs that check (reading the log's last entry
//! was most of the script's time): one that exists is of a running generation and is
//! extended.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt;
use redis::aio::MultiplexedConnection;
use tokio::sync::mpsc::UnboundedReceiver;

use super::entry::{last_event, Packed};
use super::{now_ms, RedisStore, LEASE, LOST, RENEW_EVERY};
use crate::generation::Generation;

/// About the most events one batch carries (each generation's entry counts its events, plus
/// three for its lease, slots and expiry); the rest go in the next.
const MAX_BATCH: usize = 4096;
/// The least time between two batches. What one generation produced meanwhile goes to Redis
/// as one entry ([`super::entry`]): at a delta every 20 ms, two or three events for the cost of
/// one. It delays only the copy in Redis, which a resume elsewhere waits for; never this
/// instance's own readers.
const BATCH_EVERY: Duration = Duration::from_millis(50);
/// How long one attempt to write a batch (asking where unsure streams end, then the batch)
/// may wait for its answers before it counts as failed. Longer than a busy Redis takes (a
/// batch is a few milliseconds of its time), shorter than [`LEASE`].
pub(super) const WRITE_TIMEOUT: Duration = Duration::from_millis(2500);
/// The pause after a failed attempt.
const RETRY_PAUSE: Duration = Duration::from_millis(100);
/// The longest the writer goes on with a store that stopped answering before it gives up
/// (and lets its generations go): the first failed attempt, the failures of [`LEASE`], then
/// a last attempt that starts just before the lease ran out (a pause, a new connection, an
/// attempt). Milliseconds, so that the bound below is checked when the relay is compiled.
const GIVE_UP_MS: u128 = WRITE_TIMEOUT.as_millis()
    + LEASE.as_millis()
    + RETRY_PAUSE.as_millis()
    + super::CONNECT_TIMEOUT.as_millis()
    + WRITE_TIMEOUT.as_millis();
// The holder's wait for the writer must outlast the writer giving up, so that the holder's own
// readers go on from memory (as with no store) instead of ending with an error.
const _: () = assert!(GIVE_UP_MS < crate::generation::MIRROR_WAIT.as_millis());

/// A running generation of this instance, as the heartbeat sees it.
pub(super) struct Held {
    pub(super) gen: Arc<Generation>,
    pub(super) slots: Vec<super::Slot>,
}

/// The writer's record of one generation.
struct Mirror {
    gen: Arc<Generation>,
    /// The first event not yet known to be in Redis.
    next: u64,
    /// Queued in `ready`.
    queued: bool,
    /// The last write failed: where the stream ends must be asked before writing again.
    unsure: bool,
    /// Redis holds the stream's end (`[DONE]` or the lost marker): only the lease and the
    /// slots are left to clear.
    ended: bool,
    /// When the keys' expiry is next refreshed (`None`: with the next write).
    refresh_at: Option<Instant>,
}

/// What one mirror put in a batch: where it will stand once the batch lands.
struct Planned {
    id: String,
    next: u64,
    ended: bool,
    finished: bool,
}

pub(super) async fn write(store: Weak<RedisStore>, mut rx: UnboundedReceiver<Arc<Generation>>) {
    let mut mirrors: HashMap<String, Mirror> = HashMap::new();
    let mut ready: VecDeque<String> = VecDeque::new();
    let mut con: Option<MultiplexedConnection> = None;
    let mut failing_since: Option<Instant> = None;
    let mut sent_at = Instant::now();
    loop {
        if ready.is_empty() {
            let Some(gen) = rx.recv().await else { return };
            enqueue(&store, &mut mirrors, &mut ready, gen);
        }
        let linger = BATCH_EVERY.saturating_sub(sent_at.elapsed());
        if !linger.is_zero() {
            // A generation waiting for room (its log is half full of uncopied events) cuts
            // the linger short.
            let Some(hurry) = store.upgrade().map(|s| s.hurry.clone()) else { return };
            tokio::select! {
                () = tokio::time::sleep(linger) => {}
                () = hurry.notified() => {}
            }
        }
        sent_at = Instant::now();
        while let Ok(gen) = rx.try_recv() {
            enqueue(&store, &mut mirrors, &mut ready, gen);
        }
        let Some(store) = store.upgrade() else { return };
        if con.is_none() {
            con = store
                .client
                .get_multiplexed_async_connection_with_config(&RedisStore::config(WRITE_TIMEOUT))
                .await
                .ok();
        }
        // One deadline for the whole attempt: a slow answer to the question where unsure
        // streams end must not give the batch after it a second full wait.
        let deadline = tokio::time::Instant::now() + WRITE_TIMEOUT;
        let result = match con.as_mut() {
            Some(c) => batch(&store, c, &mut mirrors, &mut ready, deadline).await,
            None => Err(()),
        };
        match result {
            Ok(()) => failing_since = None,
            Err(()) => {
                con = None;
                let since = *failing_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= LEASE {
                    // The leases have lapsed: readers elsewhere have ended these answers.
                    store.held.lock().unwrap_or_else(|p| p.into_inner()).clear();
                    mirrors.values().for_each(|m| m.gen.let_go());
                    mirrors.clear();
                    ready.clear();
                    failing_since = None;
                }
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
    }
}

/// Queues a generation that changed (the first time: starts mirroring it, if it is held).
fn enqueue(
    store: &Weak<RedisStore>,
    mirrors: &mut HashMap<String, Mirror>,
    ready: &mut VecDeque<String>,
    gen: Arc<Generation>,
) {
    let m = match mirrors.get_mut(&gen.id) {
        Some(m) => m,
        None => {
            // Not held (given up on after a failing store): nothing to mirror.
            let held =
                store.upgrade().is_some_and(|s| s.held.lock().unwrap_or_else(|p| p.into_inner()).contains_key(&gen.id));
            if !held {
                gen.let_go();
                return;
            }
            let m = Mirror { gen: gen.clone(), next: 1, queued: false, unsure: false, ended: false, refresh_at: None };
            mirrors.entry(gen.id.clone()).or_insert(m)
        }
    };
    if !m.queued {
        m.queued = true;
        ready.push_back(gen.id.clone());
    }
}

/// Writes one batch: the events of the generations at the front of `ready`.
async fn batch(
    store: &RedisStore,
    con: &mut MultiplexedConnection,
    mirrors: &mut HashMap<String, Mirror>,
    ready: &mut VecDeque<String>,
    deadline: tokio::time::Instant,
) -> Result<(), ()> {
    reconcile(con, mirrors, ready, deadline).await?;
    let ttl = store.ttl_secs;
    let mut pipe = redis::pipe();
    let mut planned: Vec<Planned> = Vec::new();
    let mut commands = 0;
    // Generations with events left over, queued after the batch (a generation is in a batch
    // once: its events' numbers in Redis must grow).
    let mut more = Vec::new();
    let max_events = store.max_events as u64;
    while commands < MAX_BATCH {
        let Some(id) = ready.pop_front() else { break };
        let Some(m) = mirrors.get_mut(&id) else { continue };
        m.queued = false;
        m.gen.take_change();
        let (log, lease) = (RedisStore::log_key(&id), RedisStore::lease_key(&id));
        let mut next = m.next;
        let before = commands;
        let (ended, finished) = if m.ended {
            (true, true)
        } else {
            let limit = MAX_BATCH.saturating_sub(commands).max(1);
            let mut packed = Packed::default();
            let copied = m.gen.copy_events(&mut next, limit, |seq, kind, payload| packed.push(seq, kind, payload));
            if packed.count > 0 {
                let mut xadd = redis::cmd("XADD");
                xadd.arg(&log);
                if packed.last > max_events {
                    // Trimmed by event number, not entry count: about `max_events` events kept.
                    xadd.arg("MINID").arg("~").arg(packed.last - max_events);
                }
                packed.args(&mut xadd);
                pipe.add_command(xadd).ignore();
                commands += packed.count;
            }
            match copied {
                Ok(finished) => {
                    if !finished && next - m.next == limit as u64 {
                        // More than this batch holds: the rest goes in the next one.
                        more.push(id.clone());
                    }
                    (finished, finished)
                }
                Err(_) => {
                    // The bounded log dropped events before they were copied: mark the hole.
                    pipe.cmd("XADD").arg(&log).arg(format!("{next}-0")).arg("k").arg(LOST).arg("p").arg("").ignore();
                    commands += 1;
                    next += 1;
                    (true, true)
                }
            }
        };
        let refresh = finished || m.refresh_at.is_none_or(|at| Instant::now() >= at);
        if commands == before && !refresh {
            continue;
        }
        if finished {
            pipe.del(&lease).ignore();
            let held = store.held.lock().unwrap_or_else(|p| p.into_inner());
            for slot in held.get(&id).map(|h| h.slots.as_slice()).unwrap_or_default() {
                pipe.cmd("ZREM").arg(&slot.key).arg(&slot.member).ignore();
            }
        }
        if refresh {
            pipe.expire(RedisStore::meta_key(&id), ttl as i64).ignore().expire(&log, ttl as i64).ignore();
        }
        commands += 3;
        planned.push(Planned { id, next, ended, finished });
    }
    let requeue = |mirrors: &mut HashMap<String, Mirror>, ready: &mut VecDeque<String>, id: String| {
        if let Some(m) = mirrors.get_mut(&id) {
            if !m.queued {
                m.queued = true;
                ready.push_back(id);
            }
        }
    };
    for id in more {
        requeue(mirrors, ready, id);
    }
    if planned.is_empty() {
        return Ok(());
    }
    let landed = tokio::time::timeout_at(deadline, pipe.query_async::<()>(con)).await;
    let ok = matches!(landed, Ok(Ok(())));
    let refresh_at = Instant::now() + Duration::from_secs((ttl / 4).max(1));
    for p in planned {
        let Some(m) = mirrors.get_mut(&p.id) else { continue };
        if !ok {
            m.unsure = true;
            requeue(mirrors, ready, p.id);
            continue;
        }
        m.next = p.next;
        m.gen.copied(p.next);
        m.ended = p.ended;
        m.refresh_at = Some(refresh_at);
        if p.finished {
            mirrors.remove(&p.id);
            if let Some(h) = store.held.lock().unwrap_or_else(|p| p.into_inner()).remove(&p.id) {
                // Their ZREM went with the batch.
                h.slots.into_iter().for_each(super::Slot::released);
            }
        }
    }
    if ok {
        Ok(())
    } else {
        Err(())
    }
}

/// Asks Redis where each stream whose last write failed ends, so nothing is written twice
/// and nothing is skipped.
async fn reconcile(
    con: &mut MultiplexedConnection,
    mirrors: &mut HashMap<String, Mirror>,
    ready: &VecDeque<String>,
    deadline: tokio::time::Instant,
) -> Result<(), ()> {
    let unsure: Vec<&String> = ready.iter().filter(|id| mirrors.get(*id).is_some_and(|m| m.unsure)).collect();
    if unsure.is_empty() {
        return Ok(());
    }
    let mut pipe = redis::pipe();
    for id in &unsure {
        pipe.cmd("XREVRANGE").arg(RedisStore::log_key(id)).arg("+").arg("-").arg("COUNT").arg(1);
    }
    let replies: Vec<redis::streams::StreamRangeReply> =
        match tokio::time::timeout_at(deadline, pipe.query_async(con)).await {
            Ok(Ok(replies)) => replies,
            _ => return Err(()),
        };
    let unsure: Vec<String> = unsure.into_iter().cloned().collect();
    for (id, reply) in unsure.iter().zip(replies) {
        let Some(m) = mirrors.get_mut(id) else { continue };
        m.unsure = false;
        let Some(last) = reply.ids.first() else { continue };
        let (seq, kind) = last_event(last);
        if seq >= m.next {
            m.next = seq + 1;
        }
        if kind == LOST || kind == crate::generation::Kind::Done.letter() {
            m.ended = true;
        }
    }
    Ok(())
}

/// The most generations one renewal script call carries: a call holds Redis for the time of
/// its generations (a few microseconds each), so a batch of them never stalls it, while the
/// per-call cost (parsing the call, entering the script) is paid once for all of them.
const RENEW_BATCH: usize = 256;

/// Renews a batch of generations. KEYS: per generation its lease, log and cancel flag, then
/// the batch's slot sets, each once; ARGV: instance, lease ms, slot deadline, the kind letters
/// that end a log, the number of generations, then per generation its number of slot sets and,
/// per set, the set's place among the slot sets and the member. Answers, per generation, 1
/// when its cancel flag is set.
///
/// A running generation's slots are gathered per set and each set gets one `ZADD` of all of
/// them and one `PEXPIRE`: most of a batch's generations share a few sets (a client's IP, its
/// token), and a `ZADD` and a `PEXPIRE` per slot were about half the script's time. The
/// `ZADD` only raises a deadline (`GT`): a renewal that runs after a newer one (it went out on a
/// connection since replaced, [`SWITCH_AFTER`]) must not shorten the slot.
const RENEW: &str = r"
local g = tonumber(ARGV[6])
local out = {}
local adds = {}
local a = 7
for j = 0, g - 1 do
  local k = 3 * j + 1
  local n = tonumber(ARGV[a])
  -- A lease that still exists belongs to a running generation (the writer deletes it only
  -- after appending the last event): extending it is all it takes. Reading the log's end,
  -- the costlier check, is left to a lease that is gone, finished or lapsed.
  local running = redis.call('PEXPIRE', KEYS[k], ARGV[2]) == 1
  if not running then
    local last = redis.call('XREVRANGE', KEYS[k + 1], '+', '-', 'COUNT', 1)[1]
    running = true
    if last then
      local f = last[2]
      for i = 1, #f, 2 do
        if f[i] == 'k' then
          local e = string.sub(f[i + 1], -1)
          running = e ~= ARGV[4] and e ~= ARGV[5]
          break
        end
      end
    end
    if running then
      redis.call('SET', KEYS[k], ARGV[1], 'PX', ARGV[2])
    end
  end
  if running then
    for i = 1, n do
      local set = tonumber(ARGV[a + 2 * i - 1])
      local t = adds[set]
      if not t then
        t = {}
        adds[set] = t
      end
      t[#t + 1] = ARGV[3]
      t[#t + 1] = ARGV[a + 2 * i]
    end
  end
  out[#out + 1] = redis.call('EXISTS', KEYS[k + 2])
  a = a + 1 + 2 * n
end
for set, t in pairs(adds) do
  local key = KEYS[3 * g + set]
  redis.call('ZADD', key, 'GT', unpack(t))
  redis.call('PEXPIRE', key, ARGV[2])
end
return out
";

/// The most values a C function may have on Lua's stack (`LUAI_MAXCSTACK` in Redis's Lua 5.1):
/// an `unpack` of more fails the whole script ("too many results to unpack").
const LUA_STACK: usize = 8000;
// A slot set's `ZADD` in [`RENEW`] unpacks a deadline and a member per generation of the batch (a
// generation has one slot per set at most), after the command, its key and `GT`.
const _: () = assert!(3 + 2 * RENEW_BATCH < LUA_STACK);

/// Renewals waiting for their answers on one connection at once. One goes out every
/// [`RENEW_EVERY`], and a new connection is tried once one has waited [`SWITCH_AFTER`]; while
/// none can be made the renewals stay on the old one, and this bound is what holds them back.
/// Those left on a replaced connection wait at most [`LEASE`] each, so a handful are in flight
/// in all.
const RENEW_IN_FLIGHT: usize = (LEASE.as_millis() / RENEW_EVERY.as_millis()) as usize;
const _: () = assert!(RENEW_IN_FLIGHT >= 1);

/// How long the oldest renewal on the heartbeat's connection may wait for its answer before a
/// new connection is made for the renewals. In the usual case (the renewal before it went out
/// [`RENEW_EVERY`] earlier and ran at once) the leases have at least [`super::CONNECT_TIMEOUT`]
/// left at that time, and making the connection and renewing on it must fit in it; where the
/// earlier renewals ran late too, less is left, or none. The old connection stays in use until
/// the new one is made: where that fails (making one takes longer than the timeout, as when
/// Redis is late with every connection), the renewals go on over the old one, and a new one is
/// tried again no sooner than [`RENEW_EVERY`] later.
///
/// Not [`super::GONE_AFTER`], as for the requests' connection: a connection can go silent while
/// Redis is fine (a NAT or a firewall dropped its state, a failover left it half-open), and
/// nothing but the missing answers tells; waiting 10 s for them let every lease and slot of
/// the instance lapse for seconds, so a cancel sent elsewhere answered "finished" and the
/// upstream ran on. The old connection is not closed, only no longer used: it may be merely
/// slow, and its renewals do no harm when they run late (a lease is extended from when the
/// script runs, a slot's deadline is only ever raised), so they are left to answer, and the
/// cancel flags they read still count. Where Redis is this late without being gone, a switch
/// costs a connection and one renewal more than the schedule every few seconds.
const SWITCH_AFTER: Duration =
    Duration::from_millis((LEASE.as_millis() - RENEW_EVERY.as_millis() - super::CONNECT_TIMEOUT.as_millis()) as u64);
// Renewals run up to 2.5–3 s late under load (see [`LEASE`]): a switch must not be the rule.
const _: () = assert!(SWITCH_AFTER.as_millis() >= RENEW_EVERY.as_millis());

/// The answer to one pipeline of renewals, with the connection it went out on, when it went
/// out, and the generations it renewed, in order.
type Renewed = (
    u64,
    tokio::time::Instant,
    Result<Result<Vec<Vec<bool>>, redis::RedisError>, tokio::time::error::Elapsed>,
    Vec<Weak<Generation>>,
);

/// Renews the leases and slots of this instance's running generations every [`RENEW_EVERY`],
/// and reads their cancel flags.
///
/// The renewals go out on a fixed schedule, not one after the answer to the last: a Redis that
/// answers late (starved of CPU, a deep queue) runs the renewals it has queued one period apart,
/// where waiting for each answer before the next made the time between two renewals the
/// period plus the round trip, which on a saturated machine grew to the length of the lease.
/// What is left to the lease ([`LEASE`] minus the period) is how much later than its schedule
/// a renewal may run. A late answer is not a failure: the connection is made again when it
/// breaks, or when a renewal has waited [`SWITCH_AFTER`] for its answer, and then at once
/// rather than at the next tick; in the second case the old connection is used until the new
/// one is made.
pub(super) async fn heartbeat(store: Weak<RedisStore>) {
    let mut tick = tokio::time::interval(RENEW_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let script = redis::Script::new(RENEW);
    // The connection, its number (answers from an older one are only read for their cancel
    // flags), whether the script is loaded on its server, and when each renewal still waiting
    // on it went out, oldest first.
    let mut con: Option<MultiplexedConnection> = None;
    let mut epoch = 0u64;
    let mut loaded = false;
    let mut waiting: VecDeque<tokio::time::Instant> = VecDeque::new();
    let mut in_flight: FuturesUnordered<BoxFuture<'static, Renewed>> = FuturesUnordered::new();
    // A new connection being made (the current one, if any, stays in use meanwhile), and when
    // the last try to replace a connection in use started: a failed try is made again no sooner
    // than a period later.
    let mut making: Option<BoxFuture<'static, redis::RedisResult<MultiplexedConnection>>> = None;
    let mut tried: Option<tokio::time::Instant> = None;
    loop {
        let switch_at = match (con.is_some() && making.is_none(), waiting.front()) {
            (true, Some(sent)) => {
                let at = *sent + SWITCH_AFTER;
                Some(tried.map_or(at, |t| at.max(t + RENEW_EVERY)))
            }
            _ => None,
        };
        let ticked = tokio::select! {
            Some((from, sent, answer, gens)) = in_flight.next(), if !in_flight.is_empty() => {
                if from == epoch {
                    // A connection answers in the order the renewals went out: those before this
                    // one are answered too.
                    while waiting.front().is_some_and(|s| *s <= sent) {
                        waiting.pop_front();
                    }
                }
                match answer {
                    Ok(Ok(cancelled)) => {
                        for (gen, cancelled) in gens.iter().zip(cancelled.into_iter().flatten()) {
                            if let (true, Some(gen)) = (cancelled, gen.upgrade()) {
                                gen.cancel("cancelled");
                            }
                        }
                    }
                    // A server restarted or flushed its scripts: load it again.
                    Ok(Err(e)) if from == epoch && e.code() == Some("NOSCRIPT") => loaded = false,
                    Ok(Err(e)) if from == epoch && super::broken(&e) && !e.is_timeout() => {
                        con = None;
                        waiting.clear();
                    }
                    _ => {}
                }
                continue;
            }
            made = async { making.as_mut().expect("guarded").await }, if making.is_some() => {
                making = None;
                // Renewed on at once, not at the next tick. On failure the old connection, if
                // any, stays in use.
                let Ok(made) = made else { continue };
                con = Some(made);
                epoch += 1;
                loaded = false;
                waiting.clear();
                tried = None;
                true
            }
            () = sleep_until(switch_at) => false,
            _ = tick.tick() => true,
        };
        // Marked tried before anything else: a switch that is due and not tried would wake the
        // loop again at once.
        let switch = switch_at.is_some_and(|at| at <= tokio::time::Instant::now());
        if switch {
            tried = Some(tokio::time::Instant::now());
        }
        let Some(store) = store.upgrade() else { return };
        if store.held.lock().unwrap_or_else(|p| p.into_inner()).is_empty() {
            continue;
        }
        if making.is_none() && (con.is_none() || switch) {
            // Made beside the renewals, not before them: the old connection, if any, stays in
            // use until the new one is made, for a late one still renews, and while Redis is late
            // with every connection, making one can take longer than its timeout every time.
            let client = store.client.clone();
            making = Some(Box::pin(async move {
                client.get_multiplexed_async_connection_with_config(&RedisStore::config(LEASE)).await
            }));
        }
        if !ticked {
            continue;
        }
        let Some(c) = con.clone() else { continue };
        if waiting.len() >= RENEW_IN_FLIGHT {
            continue;
        }
        let mut pipe = redis::pipe();
        if !loaded {
            // In the same pipeline as the renewals that need it: no round trip of its own.
            pipe.cmd("SCRIPT").arg("LOAD").arg(RENEW).ignore();
        }
        let gens = renewals(&store, script.get_hash(), &mut pipe);
        if gens.is_empty() {
            // They ended since the check above: the pipeline, its SCRIPT LOAD with it, is not sent.
            continue;
        }
        // Only now: a script marked loaded that never reached the server costs a round of
        // renewals (NOSCRIPT, then a load with the next).
        loaded = true;
        let sent = tokio::time::Instant::now();
        waiting.push_back(sent);
        in_flight.push(Box::pin(renew(epoch, sent, c, pipe, gens)));
    }
}

/// Waits until `at`, or for ever.
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Sends one pipeline of renewals and waits at most [`LEASE`] for its answer.
async fn renew(
    from: u64,
    sent: tokio::time::Instant,
    mut con: MultiplexedConnection,
    pipe: redis::Pipeline,
    gens: Vec<Weak<Generation>>,
) -> Renewed {
    (from, sent, tokio::time::timeout(LEASE, pipe.query_async::<Vec<Vec<bool>>>(&mut con)).await, gens)
}

/// Adds one renewal script call per [`RENEW_BATCH`] running generations to `pipe`, and returns
/// the generations in the order of the answers.
fn renewals(store: &RedisStore, digest: &str, pipe: &mut redis::Pipeline) -> Vec<Weak<Generation>> {
    let lease_ms = LEASE.as_millis() as u64;
    let end = now_ms() + lease_ms;
    let mut gens = Vec::new();
    let held = store.held.lock().unwrap_or_else(|p| p.into_inner());
    let held: Vec<_> = held.iter().collect();
    for batch in held.chunks(RENEW_BATCH) {
        // The batch's slot sets, each once, in the order first met.
        let mut sets: Vec<&str> = Vec::new();
        let mut place: HashMap<&str, usize> = HashMap::new();
        for (_, h) in batch {
            for s in &h.slots {
                place.entry(s.key.as_str()).or_insert_with(|| {
                    sets.push(s.key.as_str());
                    sets.len()
                });
            }
        }
        let mut renew = redis::cmd("EVALSHA");
        renew.arg(digest).arg(3 * batch.len() + sets.len());
        for (id, _) in batch {
            renew.arg(RedisStore::lease_key(id)).arg(RedisStore::log_key(id)).arg(RedisStore::cancel_key(id));
        }
        for key in &sets {
            renew.arg(*key);
        }
        renew.arg(&store.instance).arg(lease_ms).arg(end);
        renew.arg(crate::generation::Kind::Done.letter()).arg(LOST).arg(batch.len());
        for (_, h) in batch {
            renew.arg(h.slots.len());
            for s in &h.slots {
                renew.arg(place.get(s.key.as_str()).copied().unwrap_or(1)).arg(&s.member);
            }
            gens.push(Arc::downgrade(&h.gen));
        }
        pipe.add_command(renew);
    }
    gens
}

#[cfg(test)]
mod tests {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    /// A `redis-server`, killed when dropped (a failed assertion too).
    struct Server(std::process::Child);

    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    /// A renewal that runs after a newer one (it went out on a connection since replaced) must
    /// leave the newer slot deadline alone.
    #[tokio::test]
    async fn a_late_renewal_never_lowers_a_slot_deadline() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let _server = Server(
            Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server (apt-get install redis-server; ./build.sh test installs it)"),
        );
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut con = loop {
            if let Ok(con) = client.get_multiplexed_async_connection().await {
                break con;
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let (lease, set) = ("cw:g:a:lease", "cw:streams:127.0.0.1");
        let () = redis::cmd("SET").arg(lease).arg("relay-a").query_async(&mut con).await.unwrap();
        // KEYS: lease, log, cancel flag, the slot set; ARGV: instance, lease ms, slot deadline,
        // the ending kind letters, one generation with one slot in set 1.
        let renew = |end: u64| {
            let mut cmd = redis::cmd("EVAL");
            cmd.arg(super::RENEW).arg(4).arg(lease).arg("cw:g:a:log").arg("cw:g:a:cancel").arg(set);
            cmd.arg("relay-a").arg(6000).arg(end).arg(crate::generation::Kind::Done.letter()).arg(super::LOST);
            cmd.arg(1).arg(1).arg(1).arg("a");
            cmd
        };
        let _: Vec<i64> = renew(2_000_000).query_async(&mut con).await.unwrap();
        let _: Vec<i64> = renew(1_000_000).query_async(&mut con).await.unwrap();
        let score: u64 = redis::cmd("ZSCORE").arg(set).arg("a").query_async(&mut con).await.unwrap();
        assert_eq!(score, 2_000_000, "the late renewal lowered the slot's deadline");
    }
}
