//! Generations shared through Redis when something fails: the instance that holds the upstream
//! killed (`kill -9`), Redis unreachable at the start, lost mid-stream and back, frozen (SIGSTOP)
//! or with its writes paused, an admission that fails with Redis, a burst Redis cannot take, a
//! cancel flag read with the lease renewals (renewals that Redis runs late or never answers:
//! `shared_renewals.rs`).
//! Each test starts its own `redis-server` on a loopback port (Debian's package, installed by
//! `build.sh`).

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::store::*;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_elsewhere_get_an_error_and_done_when_the_holder_dies() {
    let redis = redis().await;
    let (script, expected) = numbered(400, 20);
    let mock = Mock::start(script).await;
    let port = free_port();
    let mut holder = Command::new(env!("CARGO_BIN_EXE_chunkwise-relay"))
        .env_clear()
        .env("PORT", port.to_string())
        .env("UPSTREAM_BASE_URL", format!("{}/v1", mock.url()))
        .env("UPSTREAM_MODEL", "m")
        .env("REDIS_URL", &redis.url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let a = format!("http://127.0.0.1:{port}");
    started("the holder did not start", || async { client().get(format!("{a}/healthz")).send().await.is_ok() }).await;
    let b = relay(shared(&mock.url(), &redis)).await;
    let (id, _sse, first) = start_answer(&a, 10).await;
    let after = first.last().unwrap().id.clone();
    let resp = client().get(format!("{b}/v1/chat/stream/{id}?after={after}")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    holder.kill().unwrap(); // SIGKILL
    let _ = holder.wait();
    let killed = Instant::now();
    let rest = tokio::time::timeout(Duration::from_secs(10), events(resp)).await.expect("the reader was left hanging");
    let waited = killed.elapsed();
    // Within the lease and a reader's blocked read (a second), as the README says, and a few
    // round trips on a loaded machine (half a second).
    let promised = chunkwise_relay::store::LEASE + Duration::from_secs(1);
    assert!(waited < promised + Duration::from_millis(500), "{waited:?}");
    eprintln!("readers elsewhere ended {waited:?} after the holder died");
    let err = rest.iter().find(|e| e.json().get("error").is_some()).expect("an error event");
    assert_eq!(err.json()["error"]["code"], "generation_lost");
    assert_eq!(rest.last().unwrap().data, "[DONE]");
    let all: Vec<Ev> = first.into_iter().chain(rest).collect();
    assert_sequential(&all, 1);
    let text = content(&all);
    assert!(expected.starts_with(&text) && text.len() > 10, "the text produced before the death: {text:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_redis_stops_the_start_and_keys_expire() {
    let mut c = demo_config();
    c.server.redis_url = format!("redis://127.0.0.1:{}/", free_port());
    let e = chunkwise_relay::App::connect(c).await.err().expect("no start without Redis");
    assert!(e.contains("Redis"), "{e}");

    // A server too old for the store's streams: refused with its version.
    let (url, _old) = old_redis("5.0.7").await;
    let mut c = demo_config();
    c.server.redis_url = url;
    let e = chunkwise_relay::App::connect(c).await.err().expect("no start on Redis 5");
    assert!(e.contains("5.0.7") && e.contains("6.2 or later"), "{e}");

    // A least-privilege user that may not run INFO: the version is not known, the start goes on.
    let server = redis().await;
    let client = redis::Client::open(server.url.as_str()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let acl = ["SETUSER", "relay", "on", ">pw", "~*", "&*", "+@all", "-@dangerous"];
    redis::cmd("ACL").arg(&acl[..]).query_async::<()>(&mut con).await.unwrap();
    let limited = server.url.replace("redis://", "redis://relay:pw@");
    let info = redis::Client::open(limited.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let denied = redis::cmd("INFO").arg("server").query_async::<String>(&mut info.clone()).await;
    assert!(denied.is_err(), "the ACL did not deny INFO");
    let mut c = demo_config();
    c.server.redis_url = limited;
    if let Err(e) = chunkwise_relay::App::connect(c).await {
        panic!("refused a Redis that denies INFO: {e}");
    }
    drop(server);

    let redis = redis().await;
    let (script, _) = numbered(200, 0);
    let mock = Mock::start(script).await;
    let mut c = shared(&mock.url(), &redis);
    c.generations.ttl_secs = 30;
    let base = relay(c).await;
    let resp = post(&base, "/v1/chat/completions", &chat("hi", true)).await;
    let id = generation_id(&resp);
    events(resp).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let client = redis::Client::open(redis.url.as_str()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS").arg("cw:*").query_async(&mut con).await.unwrap();
    assert!(keys.contains(&format!("cw:g:{id}:log")), "{keys:?}");
    assert!(!keys.contains(&format!("cw:g:{id}:lease")), "the lease outlived the answer: {keys:?}");
    for key in keys {
        let ttl: i64 = redis::cmd("TTL").arg(&key).query_async(&mut con).await.unwrap();
        assert!(ttl > 0 && ttl <= 30, "{key} has TTL {ttl}");
    }
    let mut memory = 0;
    for key in [format!("cw:g:{id}"), format!("cw:g:{id}:log")] {
        let cmd = redis::cmd("MEMORY").arg("USAGE").arg(&key).arg("SAMPLES").arg(0).clone();
        memory += cmd.query_async::<i64>(&mut con).await.unwrap();
    }
    eprintln!("Redis memory of one 200-delta answer (204 events): {memory} bytes");
    assert!(memory < 64 * 1024, "{memory} bytes");
}

/// A loopback server that speaks just enough RESP to pass for Redis `version`: `+PONG` to
/// PING, its version to INFO, `+OK` to anything else.
async fn old_redis(version: &'static str) -> (String, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("redis://{}/", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (r, mut w) = stream.into_split();
                let mut lines = BufReader::new(r).lines();
                // A command is `*N` then N pairs of `$len` and the argument.
                while let Ok(Some(head)) = lines.next_line().await {
                    let Some(n) = head.strip_prefix('*').and_then(|n| n.parse::<usize>().ok()) else { return };
                    let mut args = Vec::new();
                    for _ in 0..n {
                        let (Ok(Some(_)), Ok(Some(arg))) = (lines.next_line().await, lines.next_line().await) else {
                            return;
                        };
                        args.push(arg.to_ascii_uppercase());
                    }
                    let reply = match args.first().map(String::as_str) {
                        Some("PING") => "+PONG\r\n".to_string(),
                        Some("INFO") => {
                            let body = format!("# Server\r\nredis_version:{version}\r\n");
                            format!("${}\r\n{body}\r\n", body.len())
                        }
                        _ => "+OK\r\n".to_string(),
                    };
                    if w.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_lost_mid_stream_ends_remote_readers_refuses_new_answers_and_recovers() {
    let port = free_port();
    let redis = redis_on(port).await;
    let (script, _) = numbered(400, 20);
    let mock = Mock::start(script).await;
    let a = relay(shared(&mock.url(), &redis)).await;
    let b = relay(shared(&mock.url(), &redis)).await;
    let (id, mut local, _) = start_answer(&a, 5).await;
    let remote = client().get(format!("{b}/v1/chat/stream/{id}?after=3")).send().await.unwrap();
    assert_eq!(remote.status(), 200);
    drop(redis);
    let stopped = Instant::now();
    let rest = tokio::time::timeout(Duration::from_secs(10), events(remote)).await.expect("the remote reader hung");
    let err = rest.iter().find(|e| e.json().get("error").is_some()).expect("an error event");
    assert_eq!(err.json()["error"]["code"], "store_unavailable");
    assert_eq!(rest.last().unwrap().data, "[DONE]");
    assert!(stopped.elapsed() < Duration::from_secs(6), "{:?}", stopped.elapsed());
    // The holder's own reader goes on from memory.
    assert!(local.next().await.is_some());
    drop(local);

    let resp = post(&a, "/v1/chat/completions", &chat("hi", true)).await;
    assert_eq!(resp.status(), 503);
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "store_unavailable");

    // Redis comes back on the same address: service resumes by itself.
    let _redis = redis_on(port).await;
    let resp = until(Duration::from_secs(10), Duration::from_millis(200), "no answer once Redis was back", || async {
        Some(post(&a, "/v1/chat/completions", &chat("hi", true)).await).filter(|r| r.status() == 200)
    })
    .await;
    let id = generation_id(&resp);
    let mut sse = Sse::new(resp);
    for _ in 0..3 {
        sse.next().await.unwrap();
    }
    let remote = client().get(format!("{b}/v1/chat/stream/{id}?after=3")).send().await.unwrap();
    assert_eq!(remote.status(), 200);
    let mut remote = Sse::new(remote);
    assert_eq!(remote.next().await.unwrap().id, "4");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_whose_admission_fails_with_redis_sends_the_upstream_nothing() {
    // Redis stops answering (SIGSTOP) while the admission runs: the upstream connection made
    // meanwhile carries no request, and nothing stays open on the instance.
    let redis = redis().await;
    let (script, _) = numbered(10, 1);
    let mock = Mock::start(script).await;
    let a = relay(shared(&mock.url(), &redis)).await;
    let pid = redis.child.id() as libc::pid_t;
    assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
    let resp = tokio::time::timeout(Duration::from_secs(15), post(&a, "/v1/chat/completions", &chat("hi", true))).await;
    unsafe { libc::kill(pid, libc::SIGCONT) };
    let resp = resp.expect("the admission did not end");
    assert_eq!(resp.status(), 503);
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "store_unavailable");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(mock.accepted.load(std::sync::atomic::Ordering::SeqCst), 1, "no connection made ahead");
    assert!(mock.seen().is_empty(), "the request reached the upstream: {:?}", mock.seen());
    let health: serde_json::Value = client().get(format!("{a}/healthz")).send().await.unwrap().json().await.unwrap();
    assert_eq!((health["generations"].as_u64(), health["active"].as_u64()), (Some(0), Some(0)), "{health}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_redis_cannot_take_is_held_back_never_cut_into() {
    // Redis stops answering (SIGSTOP) as an upstream bursts past half the holder's log: the
    // upstream is held back until the mirror gives up on the store, then the holder's reader
    // goes on from memory (the wait's bound outlasts the give-up): the text has no hole and
    // no repeat, and a reader elsewhere ends with an error.
    let redis = redis().await;
    let (mut script, expected) = numbered(3000, 0);
    script.insert(1, Step::Sleep(300));
    let mock = Mock::start(script).await;
    let mut c = shared(&mock.url(), &redis);
    c.generations.max_log_bytes = 64 * 1024;
    let a = relay(c.clone()).await;
    let b = relay(c).await;
    let resp = post(&a, "/v1/chat/completions", &chat("hi", true)).await;
    assert_eq!(resp.status(), 200);
    let id = generation_id(&resp);
    let remote = client().get(format!("{b}/v1/chat/stream/{id}?after=0")).send().await.unwrap();
    assert_eq!(remote.status(), 200);
    let pid = redis.child.id().to_string();
    let signal = |sig: &str| assert!(Command::new("kill").args([sig, &pid]).status().unwrap().success());
    signal("-STOP");
    let t = Instant::now();
    let (local, remote) = tokio::join!(
        tokio::time::timeout(Duration::from_secs(20), events(resp)),
        tokio::time::timeout(Duration::from_secs(20), events(remote)),
    );
    signal("-CONT");
    let (local, remote) = (local.expect("the holder's reader hung"), remote.expect("the remote reader hung"));
    assert!(t.elapsed() >= Duration::from_secs(2), "not held back: {:?}", t.elapsed());
    for (name, evs) in [("local", &local), ("remote", &remote)] {
        let text = content(evs);
        assert!(expected.starts_with(&text), "{name}: text with a hole or a repeat");
        let ids: Vec<u64> = evs.iter().map(|e| e.id.parse().unwrap()).collect();
        assert!(ids.iter().enumerate().all(|(i, id)| *id == i as u64 + 1), "{name}: ids with a hole");
        assert_eq!(evs.last().unwrap().data, "[DONE]", "{name}");
        let errors: Vec<String> = evs
            .iter()
            .filter(|e| e.data != "[DONE]")
            .filter_map(|e| e.json()["error"]["code"].as_str().map(str::to_string))
            .collect();
        match (name, errors.as_slice()) {
            ("local", []) => assert_eq!(text, expected),
            ("remote", [code]) => assert!(code == "store_unavailable" || code == "generation_lost", "{code}"),
            _ => panic!("{name}: {errors:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_mirror_write_is_retried_and_leaves_no_hole() {
    let redis = redis().await;
    let mut con = redis_con(&redis).await;
    let (script, expected) = numbered(150, 20);
    let mock = Mock::start(script).await;
    let a = relay(shared(&mock.url(), &redis)).await;
    let b = relay(shared(&mock.url(), &redis)).await;
    let (id, local, _) = start_answer(&a, 5).await;
    // Writes stall past the mirror's 2.5 s write timeout: its write fails.
    let _: () = redis::cmd("CLIENT").arg("PAUSE").arg(3000).arg("WRITE").query_async(&mut con).await.unwrap();
    let local = local.all().await;
    assert_eq!(local.last().unwrap().data, "[DONE]");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let evs = events(client().get(format!("{b}/v1/chat/stream/{id}?after=0")).send().await.unwrap()).await;
    assert!(evs.iter().all(|e| e.json().get("error").is_none()), "{evs:?}");
    assert_sequential(&evs, 1);
    assert_eq!(content(&evs), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_redis_delays_new_answers_instead_of_refusing_them() {
    // Redis answering late (paused here for 4.5 s) is busy, not gone: new answers wait for it
    // and start, while answers already streaming go on from the holder's memory.
    let redis = redis().await;
    let mut con = redis_con(&redis).await;
    let (script, expected) = numbered(60, 20);
    let mock = Mock::start(script).await;
    let mut c = shared(&mock.url(), &redis);
    // Only the admission waits on Redis (the shared rate limit falls back to this instance's).
    c.limits.per_ip_per_minute = 0;
    let a = relay(c.clone()).await;
    let b = relay(c).await;
    let running = post(&a, "/v1/chat/completions", &chat("hi", true)).await;
    let _: () = redis::cmd("CLIENT").arg("PAUSE").arg(4500).arg("WRITE").query_async(&mut con).await.unwrap();
    let t = Instant::now();
    let starts: Vec<_> = (0..20)
        .map(|i| {
            let base = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move { post(&base, "/v1/chat/completions", &chat("hi", true)).await })
        })
        .collect();
    let evs = events(running).await;
    assert_eq!(content(&evs), expected, "the running answer stalled behind Redis");
    for start in starts {
        let resp = start.await.unwrap();
        assert_eq!(resp.status(), 200, "{:?}", resp.text().await);
        let evs = events(resp).await;
        assert_eq!(content(&evs), expected);
    }
    assert!(t.elapsed() >= Duration::from_millis(4000), "Redis was not paused: {:?}", t.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_that_lapsed_in_a_redis_stall_is_set_again_while_the_answer_streams() {
    let redis = redis().await;
    let (script, _) = numbered(600, 20);
    let mock = Mock::start(script).await;
    let a = relay(shared(&mock.url(), &redis)).await;
    let (id, sse, _) = start_answer(&a, 3).await;
    let client = redis::Client::open(redis.url.as_str()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let lease = format!("cw:g:{id}:lease");
    let slots: Vec<String> = redis::cmd("KEYS").arg("cw:streams:*").query_async(&mut con).await.unwrap();
    assert!(!slots.is_empty(), "no stream slot");
    // Stopped longer than the lease (its keys expire by the clock, which goes on meanwhile).
    let pid = redis.child.id().to_string();
    assert!(Command::new("kill").args(["-STOP", &pid]).status().unwrap().success());
    tokio::time::sleep(chunkwise_relay::store::LEASE + Duration::from_millis(300)).await;
    assert!(Command::new("kill").args(["-CONT", &pid]).status().unwrap().success());
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let exists: i64 = redis::cmd("EXISTS").arg(&lease).query_async(&mut con).await.unwrap();
    assert_eq!(exists, 1, "the lease was not set again while the answer still streams");
    for slot in &slots {
        let n: i64 = redis::cmd("ZCARD").arg(slot).query_async(&mut con).await.unwrap();
        assert_eq!(n, 1, "{slot} lost the running answer");
    }
    // And at the end it is gone, not brought back.
    let rest = sse.all().await;
    assert_eq!(rest.last().unwrap().data, "[DONE]");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let exists: i64 = redis::cmd("EXISTS").arg(&lease).query_async(&mut con).await.unwrap();
    assert_eq!(exists, 0, "a finished answer's lease was brought back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_flag_read_with_the_renewals_cancels_that_answer_and_no_other() {
    // The renewals of all of an instance's answers share script calls, and their answers come
    // back as one list: the flag must reach the answer it was set for.
    let redis = redis().await;
    let (script, _) = numbered(500, 20);
    let mock = Mock::start(script).await;
    let a = relay(shared(&mock.url(), &redis)).await;
    let mut answers = Vec::new();
    for _ in 0..3 {
        answers.push(start_answer(&a, 2).await);
    }
    let mut con = redis_con(&redis).await;
    // The flag alone, without the message a cancel also publishes: only the renewal reads it.
    let flag = format!("cw:g:{}:cancel", answers[1].0);
    let () = redis::cmd("SET").arg(&flag).arg(1).arg("EX").arg(60).query_async(&mut con).await.unwrap();
    let closed = mock
        .wait_for(1, chunkwise_relay::store::RENEW_EVERY + Duration::from_millis(1500), |s| s.closed_at.is_some())
        .await;
    assert!(closed.is_some(), "the flagged answer's upstream was still open");
    for i in [0, 2] {
        assert!(mock.seen()[i].closed_at.is_none(), "answer {i} was cancelled by another's flag");
    }
    let mut answers = answers.into_iter();
    let (_, first, _) = answers.next().unwrap();
    let (_, flagged, _) = answers.next().unwrap();
    let rest = flagged.all().await;
    assert_eq!(rest.last().unwrap().data, "[DONE]");
    drop(first);
}
