//! Lease renewals of generations shared through Redis when their connection misbehaves while
//! Redis itself is fine: renewals that Redis runs late (a deep queue, a starved CPU), a
//! connection that goes silent (a NAT or a firewall dropped it, a failover left it half-open),
//! and a server that forgot the renewal script (`SCRIPT FLUSH`, a restart). Through all of them
//! a running answer keeps its lease and its client's slots, and a cancel still reaches it.
//! Each test starts its own `redis-server` on a loopback port (Debian's package, installed by
//! `build.sh`).

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chunkwise_relay::store::{LEASE, RENEW_EVERY};
use common::store::*;
use common::*;

/// Whether a chunk a client sent holds a lease renewal (the script call, or its loading).
fn renews(chunk: &[u8]) -> bool {
    [&b"EVALSHA"[..], b"SCRIPT"].iter().any(|w| chunk.windows(w.len()).any(|x| x == *w))
}

/// The members of the client slot sets (`cw:streams:*`) whose deadline has passed, as
/// `set member`: the admission script drops them, so a new answer is admitted in their place.
async fn lapsed_slots(con: &mut redis::aio::MultiplexedConnection) -> Vec<String> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    let keys: Vec<String> = redis::cmd("KEYS").arg("cw:streams:*").query_async(con).await.unwrap();
    let mut lapsed = Vec::new();
    for key in keys {
        let members: Vec<String> =
            redis::cmd("ZRANGEBYSCORE").arg(&key).arg("-inf").arg(now).query_async(con).await.unwrap();
        lapsed.extend(members.into_iter().map(|m| format!("{key} {m}")));
    }
    lapsed
}

/// Checks every 100 ms for `span` from `since` that the lease of answer `id` exists and, with
/// `slots`, that no client slot has lapsed; `after` says what `since` was, for the failure.
/// `each` runs before every check, with the time since `since`.
async fn lease_holds(
    con: &mut redis::aio::MultiplexedConnection,
    id: &str,
    (since, span, after): (Instant, Duration, &str),
    slots: bool,
    mut each: impl FnMut(Duration),
) {
    let lease = format!("cw:g:{id}:lease");
    while since.elapsed() < span {
        each(since.elapsed());
        let exists: i64 = redis::cmd("EXISTS").arg(&lease).query_async(con).await.unwrap();
        assert_eq!(exists, 1, "the lease lapsed {:?} after {after}", since.elapsed());
        if slots {
            let lapsed = lapsed_slots(con).await;
            assert!(lapsed.is_empty(), "{:?} after {after}: {lapsed:?}", since.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Checks every 100 ms, until the answer `id` ends (its upstream script finished or was
/// closed) or 60 s have passed, that its lease exists and no client slot has lapsed; returns
/// what it found wrong, with the time.
fn watch_lease_and_slots(redis: &Redis, id: &str, mock: &Mock) -> tokio::task::JoinHandle<Vec<String>> {
    let url = redis.url.clone();
    let lease = format!("cw:g:{id}:lease");
    let seen = mock.seen.clone();
    tokio::spawn(async move {
        let mut con = redis::Client::open(url.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();
        let (start, mut wrong) = (Instant::now(), Vec::new());
        let ended = || seen.lock().unwrap().first().is_some_and(|s| s.finished_at.is_some() || s.closed_at.is_some());
        while start.elapsed() < Duration::from_secs(60) && !ended() {
            let exists: i64 = redis::cmd("EXISTS").arg(&lease).query_async(&mut con).await.unwrap();
            // An answer that ended meanwhile has deleted its lease.
            if exists != 1 && !ended() {
                wrong.push(format!("{:?}: no lease", start.elapsed()));
            }
            for slot in lapsed_slots(&mut con).await {
                wrong.push(format!("{:?}: lapsed slot {slot}", start.elapsed()));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        wrong
    })
}

/// A loopback proxy to `target` (host:port) that holds back by `delay` what a client sends on a
/// connection once it has sent a lease renewal (`SCRIPT LOAD` or `EVALSHA`): Redis runs that
/// connection's commands `delay` late, as a Redis with a deep queue or starved of CPU does.
/// Answers, and every other connection, pass at once.
async fn late_renewals(target: String, delay: Duration) -> (String, tokio::task::JoinHandle<()>) {
    let delay = Arc::new(AtomicU64::new(delay.as_millis() as u64));
    late_connections(target, delay, false).await
}

/// A loopback proxy to `target` (host:port) that holds back by `delay` (milliseconds, read for
/// each chunk, which still pass in order) what a client sends on a connection once it has sent a
/// lease renewal and, with `new_late`, on every connection accepted while `delay` is not zero:
/// such a connection's handshake then takes as long. Answers, and every other connection, pass
/// at once.
async fn late_connections(
    target: String,
    delay: Arc<AtomicU64>,
    new_late: bool,
) -> (String, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("redis://{}/", listener.local_addr().unwrap());
    let proxy = tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = tokio::net::TcpStream::connect(&target).await else { return };
            let (mut cr, mut cw) = client.into_split();
            let (mut sr, mut sw) = server.into_split();
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut sr, &mut cw).await;
            });
            // Chunks with the time they may go, in order (the times never decrease).
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
            tokio::spawn(async move {
                while let Some((at, chunk)) = rx.recv().await {
                    tokio::time::sleep_until(at).await;
                    if sw.write_all(&chunk).await.is_err() {
                        return;
                    }
                }
            });
            let delay = delay.clone();
            let mut late = new_late && delay.load(Ordering::SeqCst) > 0;
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = match cr.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    let chunk = buf[..n].to_vec();
                    late = late || renews(&chunk);
                    let ms = if late { delay.load(Ordering::SeqCst) } else { 0 };
                    let at = tokio::time::Instant::now() + Duration::from_millis(ms);
                    if tx.send((at, chunk)).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, proxy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewals_that_redis_runs_late_keep_a_running_answer_held() {
    // Redis busy is not Redis gone: renewals that run 2.8 s after they were sent (renewals 2.5
    // to 3 s apart were measured under 10,000 streams on two saturated cores) must keep a
    // running answer's lease and its client's slot, or readers elsewhere end it with
    // `generation_lost` and new answers are admitted past the client's limit.
    let redis = redis().await;
    let mut con = redis_con(&redis).await;
    let () =
        redis::cmd("CONFIG").arg("SET").arg("notify-keyspace-events").arg("Ex").query_async(&mut con).await.unwrap();
    let expired = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut pubsub = redis::Client::open(redis.url.as_str()).unwrap().get_async_pubsub().await.unwrap();
    pubsub.subscribe("__keyevent@0__:expired").await.unwrap();
    let seen = expired.clone();
    let listening = tokio::spawn(async move {
        use futures_util::StreamExt;
        let mut messages = pubsub.on_message();
        while let Some(msg) = messages.next().await {
            seen.lock().unwrap().push(msg.get_payload().unwrap_or_default());
        }
    });
    let target = redis.addr();
    let (late_url, _proxy) = late_renewals(target, Duration::from_millis(2800)).await;
    // Deltas 1.5 s apart: a reader elsewhere finds the stream empty for a second between them,
    // and then checks the lease.
    let (script, expected) = numbered(8, 1500);
    let mock = Mock::start(script).await;
    let mut c = shared(&mock.url(), &redis);
    c.server.redis_url = late_url;
    let a = relay(c).await;
    let b = relay(shared(&mock.url(), &redis)).await;
    let (id, local, first) = start_answer(&a, 2).await;
    // Each renewal's slot deadline is the lease from when it was sent: renewals that waited for
    // each other's answers ran too far apart for it even where the lease survived.
    let watch = watch_lease_and_slots(&redis, &id, &mock);
    let after = first.last().unwrap().id.clone();
    let remote = client().get(format!("{b}/v1/chat/stream/{id}?after={after}")).send().await.unwrap();
    assert_eq!(remote.status(), 200);
    let (local, remote) = tokio::join!(
        tokio::time::timeout(Duration::from_secs(30), local.all()),
        tokio::time::timeout(Duration::from_secs(30), events(remote))
    );
    let (local, remote) = (local.expect("the answer hung"), remote.expect("the reader elsewhere hung"));
    assert!(remote.iter().all(|e| e.json().get("error").is_none()), "{remote:?}");
    assert_eq!(remote.last().unwrap().data, "[DONE]");
    let all: Vec<Ev> = first.into_iter().chain(local).collect();
    assert_eq!(content(&all), expected);
    assert_sequential(&remote, after.parse::<u64>().unwrap() + 1);
    let wrong = watch.await.unwrap();
    assert!(wrong.is_empty(), "{wrong:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    listening.abort();
    let expired = expired.lock().unwrap().clone();
    assert!(
        !expired.iter().any(|k| k.ends_with(":lease") || k.starts_with("cw:streams:")),
        "a running answer's lease or slot lapsed: {expired:?}"
    );
}

/// A loopback proxy to `target` (host:port) whose [`Silencer::cut`] silences, both ways, each
/// connection that has carried a lease renewal so far: its sockets stay open and nothing more
/// passes, as when a NAT or a firewall drops the connection's state or a failover leaves it
/// half-open. Redis stays healthy, and every other connection, and every one made after the
/// cut, passes.
async fn silenced_renewals(target: String) -> (String, Silencer) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("redis://{}/", listener.local_addr().unwrap());
    let silencer = Silencer { renewing: Arc::default() };
    let renewing = silencer.renewing.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = tokio::net::TcpStream::connect(&target).await else { return };
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            let silent = Arc::new(AtomicBool::new(false));
            let renewing = renewing.clone();
            let (flag, known) = (silent.clone(), AtomicBool::new(false));
            let mark = move |chunk: &[u8]| {
                if renews(chunk) && !known.swap(true, Ordering::SeqCst) {
                    renewing.lock().unwrap().push(flag.clone());
                }
            };
            tokio::spawn(pass(cr, sw, silent.clone(), mark));
            tokio::spawn(pass(sr, cw, silent, |_: &[u8]| {}));
        }
    });
    (url, silencer)
}

/// One direction of a proxied connection: chunks pass until the connection is silenced; then
/// the halves are held (dropping a write half would send a FIN) for longer than a test runs.
async fn pass(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    silent: Arc<AtomicBool>,
    on_chunk: impl Fn(&[u8]),
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        on_chunk(&buf[..n]);
        if silent.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_secs(120)).await;
            drop((from, to));
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

struct Silencer {
    /// The silence flag of each connection that has carried a renewal.
    renewing: Arc<Mutex<Vec<Arc<AtomicBool>>>>,
}

impl Silencer {
    /// Silences the connections that have carried a renewal; returns how many.
    fn cut(&self) -> usize {
        let renewing = std::mem::take(&mut *self.renewing.lock().unwrap());
        renewing.iter().for_each(|s| s.store(true, Ordering::SeqCst));
        renewing.len()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewal_connection_gone_silent_is_replaced_before_the_lease_lapses() {
    // The heartbeat's connection stops answering while Redis is fine. Its renewals must go
    // another way before the lease runs out: a lapsed lease makes a cancel sent to another
    // instance answer "finished" while the upstream runs on, ends readers elsewhere with
    // `generation_lost`, and frees the client's slot for an answer past its limit.
    let redis = redis().await;
    let mut con = redis_con(&redis).await;
    let target = redis.addr();
    let (url, silencer) = silenced_renewals(target).await;
    let (script, _) = numbered(200, 100);
    let mock = Mock::start(script).await;
    let mut c = shared(&mock.url(), &redis);
    c.server.redis_url = url;
    let a = relay(c).await;
    let b = relay(shared(&mock.url(), &redis)).await;
    let started = Instant::now();
    let (id, sse, _) = start_answer(&a, 2).await;
    tokio::time::sleep_until((started + Duration::from_secs(3)).into()).await;
    assert!(silencer.cut() >= 1, "no renewal connection to silence");
    let cut = (Instant::now(), Duration::from_secs(7), "its renewals went silent");
    lease_holds(&mut con, &id, cut, true, |_| {}).await;
    let t = Instant::now();
    let resp = client().post(format!("{b}/v1/chat/stream/{id}/cancel")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["status"], "cancelled", "{v}");
    let closed =
        mock.wait_for(0, Duration::from_secs(3), |s| s.closed_at.is_some()).await.expect("the upstream ran on");
    let took = closed.closed_at.unwrap().saturating_duration_since(t);
    assert!(took < Duration::from_secs(1), "the upstream closed {took:?} after the cancel");
    drop(sse);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewals_stay_on_a_slow_connection_while_new_ones_take_too_long_to_make() {
    // Redis runs the heartbeat's commands late: a spike, then a steady lateness that still
    // leaves the lease time to spare. A renewal waits long enough for the heartbeat to want a new
    // connection, but making one takes longer than its timeout (its handshake is late too). The
    // renewals must go on over the old connection, which still answers, until a new one is
    // made: giving it up first left no connection to renew on, and the lease lapsed.
    let redis = redis().await;
    let mut con = redis_con(&redis).await;
    let target = redis.addr();
    let delay = Arc::new(AtomicU64::new(0));
    let (url, _proxy) = late_connections(target, delay.clone(), true).await;
    let (script, _) = numbered(300, 100);
    let mock = Mock::start(script).await;
    let mut c = shared(&mock.url(), &redis);
    c.server.redis_url = url;
    let a = relay(c).await;
    let started = Instant::now();
    let (id, sse, _) = start_answer(&a, 2).await;
    tokio::time::sleep_until((started + Duration::from_secs(3)).into()).await;
    delay.store(3500, Ordering::SeqCst);
    let spike = (Instant::now(), Duration::from_secs(18), "the renewals turned late");
    lease_holds(&mut con, &id, spike, true, |since| {
        if since >= Duration::from_millis(2500) {
            delay.store(1500, Ordering::SeqCst);
        }
    })
    .await;
    drop(sse);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewals_load_their_script_again_after_a_script_flush() {
    // A server that forgot the renewal script (flushed, restarted from a snapshot, a failover to
    // a replica without it) answers NOSCRIPT: the next renewal loads it again, in time for the
    // lease, and the cancel flags are read again.
    let redis = redis().await;
    let mut con = redis_con(&redis).await;
    let (script, _) = numbered(200, 100);
    let mock = Mock::start(script).await;
    let a = relay(shared(&mock.url(), &redis)).await;
    let (id, sse, _) = start_answer(&a, 2).await;
    // A renewal has loaded the script by then.
    tokio::time::sleep(RENEW_EVERY + Duration::from_millis(500)).await;
    let () = redis::cmd("SCRIPT").arg("FLUSH").query_async(&mut con).await.unwrap();
    let flushed = (Instant::now(), LEASE + Duration::from_secs(1), "SCRIPT FLUSH");
    lease_holds(&mut con, &id, flushed, false, |_| {}).await;
    // The flag alone, without the message a cancel also publishes: only a renewal reads it.
    let flag = format!("cw:g:{id}:cancel");
    let () = redis::cmd("SET").arg(&flag).arg(1).arg("EX").arg(60).query_async(&mut con).await.unwrap();
    let closed = mock.wait_for(0, RENEW_EVERY + Duration::from_millis(1500), |s| s.closed_at.is_some()).await;
    assert!(closed.is_some(), "the renewals no longer read the cancel flag");
    drop(sse);
}
