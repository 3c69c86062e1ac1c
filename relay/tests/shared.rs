//! Generations shared through Redis: resume and stop from another instance, three instances
//! behind nginx round-robin, the death of the instance that holds the upstream, and Redis
//! lost and back. Each test starts its own `redis-server` (and nginx) on loopback ports
//! (Debian's packages, installed by `build.sh`).

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

struct Redis {
    child: Child,
    url: String,
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn redis() -> Redis {
    redis_on(free_port()).await
}

async fn redis_on(port: u16) -> Redis {
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server (apt-get install redis-server; ./build.sh test installs it)");
    let url = format!("redis://127.0.0.1:{port}/");
    let redis = Redis { child, url };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(client) = redis::Client::open(redis.url.as_str()) {
            if let Ok(mut con) = client.get_multiplexed_async_connection().await {
                if redis::cmd("PING").query_async::<String>(&mut con).await.is_ok() {
                    return redis;
                }
            }
        }
        assert!(Instant::now() < deadline, "redis-server did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn shared(upstream: &str, redis: &Redis) -> chunkwise_relay::config::Config {
    let mut c = config_for(upstream);
    c.server.redis_url = redis.url.clone();
    c.generations.ttl_secs = 60;
    c
}

/// An answer started on `base` with its first `n` events read: its generation id, its stream
/// (to read on, or to drop) and those events.
async fn start_answer(base: &str, n: usize) -> (String, Sse, Vec<Ev>) {
    let resp = post(base, "/v1/chat/completions", &chat("hi", true)).await;
    let id = generation_id(&resp);
    let mut sse = Sse::new(resp);
    let mut first = Vec::with_capacity(n);
    for _ in 0..n {
        first.push(sse.next().await.unwrap());
    }
    (id, sse, first)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_cut_at_random_points_resume_on_other_instances() {
    let redis = redis().await;
    let (script, expected) = numbered(80, 8);
    let mock = Mock::start(script).await;
    let instances = [relay(shared(&mock.url(), &redis)).await, relay(shared(&mock.url(), &redis)).await];
    let resp = post(&instances[0], "/v1/chat/completions", &chat("hi", true)).await;
    let id = generation_id(&resp);
    let mut rng = fastrand::Rng::with_seed(7);
    // Each cut resumes on the other instance.
    let (got, hop) = read_with_cuts(resp, &mut rng, 15, |hop, after| {
        let url = format!("{}/v1/chat/stream/{id}?after={after}", instances[hop % 2]);
        async move { client().get(url).send().await.unwrap() }
    })
    .await;
    assert!(hop >= 4, "only {hop} cuts");
    assert_sequential(&got, 1);
    assert_eq!(content(&got), expected);
    assert_eq!(got.last().unwrap().data, "[DONE]");
    // A finished generation is served by either instance; positions past the end are refused.
    let last = got.last().unwrap().id.parse::<u64>().unwrap();
    let resp = client().get(format!("{}/v1/chat/stream/{id}?after={}", instances[1], last + 5)).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    // After the last event: an empty answer, not an error.
    let resp = client().get(format!("{}/v1/chat/stream/{id}?after={last}", instances[1])).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_sent_to_another_instance_closes_the_upstream_within_a_second() {
    let redis = redis().await;
    let (script, _) = numbered(500, 20);
    let mock = Mock::start(script).await;
    let a = relay(shared(&mock.url(), &redis)).await;
    let b = relay(shared(&mock.url(), &redis)).await;
    let (id, sse, _) = start_answer(&a, 3).await;
    let t = Instant::now();
    let cancel = client().post(format!("{b}/v1/chat/stream/{id}/cancel")).send().await.unwrap();
    assert_eq!(cancel.status(), 200);
    let closed = mock.wait_for(0, Duration::from_secs(1), |s| s.closed_at.is_some()).await;
    assert!(closed.is_some(), "the upstream was still open {:?} after the cancel", t.elapsed());
    let rest = sse.all().await;
    assert_eq!(rest.last().unwrap().data, "[DONE]");
    // Someone else's token cannot cancel through another instance either.
    let other = client().post(format!("{b}/v1/chat/stream/chatcmpl-unknown/cancel")).send().await.unwrap();
    assert_eq!(other.status(), 404);
}

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
    let deadline = Instant::now() + Duration::from_secs(10);
    while client().get(format!("{a}/healthz")).send().await.is_err() {
        assert!(Instant::now() < deadline, "the holder did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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
    assert!(waited < Duration::from_secs(6), "{waited:?}");
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
    let deadline = Instant::now() + Duration::from_secs(10);
    let resp = loop {
        let resp = post(&a, "/v1/chat/completions", &chat("hi", true)).await;
        if resp.status() == 200 || Instant::now() > deadline {
            break resp;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(resp.status(), 200);
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

struct Nginx {
    child: Child,
    dir: std::path::PathBuf,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// nginx on a loopback port, round-robin over `backends` with no stickiness, not buffering.
/// One process (`master_process off`), so that dropping it kills all of it: a killed master
/// would leave its workers running.
async fn nginx(backends: &[String]) -> (Nginx, String) {
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("relay-nginx-{}-{port}", std::process::id()));
    std::fs::create_dir_all(dir.join("tmp")).unwrap();
    let servers: String =
        backends.iter().map(|b| format!("    server {};\n", b.trim_start_matches("http://"))).collect();
    let d = dir.display();
    let conf = format!(
        "user root;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\ndaemon off;\n\
         events {{ worker_connections 256; }}\nhttp {{\n  access_log off;\n  client_body_temp_path {d}/tmp/body;\n\
         proxy_temp_path {d}/tmp/proxy;\n  fastcgi_temp_path {d}/tmp/fastcgi;\n  uwsgi_temp_path {d}/tmp/uwsgi;\n\
         scgi_temp_path {d}/tmp/scgi;\n  upstream relays {{\n{servers}  }}\n  server {{\n    listen 127.0.0.1:{port};\n\
         location / {{\n      proxy_pass http://relays;\n      proxy_buffering off;\n      proxy_http_version 1.1;\n\
         proxy_set_header Connection \"\";\n      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
         proxy_read_timeout 60s;\n    }}\n  }}\n}}\n"
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let child = Command::new("nginx")
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx (apt-get install nginx; ./build.sh test installs it)");
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(Instant::now() < deadline, "nginx did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (Nginx { child, dir }, base)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_behind_nginx_round_robin_resume_and_cancel() {
    let redis = redis().await;
    let (script, expected) = numbered(120, 6);
    let mock = Mock::start(script).await;
    let mut instances = Vec::new();
    for _ in 0..3 {
        let mut c = shared(&mock.url(), &redis);
        // Behind a proxy: client IPs from X-Forwarded-For, and with a key, client tokens.
        c.server.trust_forwarded_for = true;
        c.auth.tokens = vec!["balanced-client-token".into()];
        instances.push(relay(c).await);
    }
    let (_nginx, lb) = nginx(&instances).await;
    let authed = |r: reqwest::RequestBuilder| r.bearer_auth("balanced-client-token");
    for round in 0..3u64 {
        let resp =
            authed(client().post(format!("{lb}/v1/chat/completions"))).json(&chat("hi", true)).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let id = generation_id(&resp);
        let mut rng = fastrand::Rng::with_seed(round);
        let (got, cuts) = read_with_cuts(resp, &mut rng, 25, |_, after| {
            let url = format!("{lb}/v1/chat/stream/{id}?after={after}");
            async move { authed(client().get(url)).send().await.unwrap() }
        })
        .await;
        assert!(cuts >= 3, "{cuts}");
        assert_sequential(&got, 1);
        assert_eq!(content(&got), expected, "round {round}");
    }

    // A cancel through a balancer over the instances that do not hold the generation reaches
    // the one that does.
    let (script, _) = numbered(500, 20);
    let slow = Mock::start(script).await;
    let mut holders = Vec::new();
    for _ in 0..3 {
        let mut c = shared(&slow.url(), &redis);
        c.server.trust_forwarded_for = true;
        c.auth.tokens = vec!["balanced-client-token".into()];
        holders.push(relay(c).await);
    }
    let (_nginx2, lb2) = nginx(&holders).await;
    let resp =
        authed(client().post(format!("{lb2}/v1/chat/completions"))).json(&chat("hi", true)).send().await.unwrap();
    let id = generation_id(&resp);
    let mut sse = Sse::new(resp);
    sse.next().await.unwrap();
    let mut others = Vec::new();
    for base in &holders {
        let health: serde_json::Value =
            client().get(format!("{base}/healthz")).send().await.unwrap().json().await.unwrap();
        if health["generations"] == 0 {
            others.push(base.clone());
        }
    }
    assert_eq!(others.len(), 2, "exactly one instance holds the generation");
    let (_nginx3, elsewhere) = nginx(&others).await;
    let t = Instant::now();
    let cancel = authed(client().post(format!("{elsewhere}/v1/chat/stream/{id}/cancel"))).send().await.unwrap();
    assert_eq!(cancel.status(), 200);
    let v: serde_json::Value = cancel.json().await.unwrap();
    assert_eq!(v["status"], "cancelled");
    let closed = slow.wait_for(0, Duration::from_secs(1), |s| s.closed_at.is_some()).await;
    assert!(closed.is_some(), "the upstream is still open {:?} after a cancel sent elsewhere", t.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_ip_limits_hold_across_instances() {
    let redis = redis().await;
    let mut c = demo_config();
    c.server.redis_url = redis.url.clone();
    c.limits.per_ip_per_minute = 20;
    c.limits.per_ip_burst = 20;
    c.limits.per_ip_streams = 4;
    c.demo.token_ms = 30;
    let a = relay(c.clone()).await;
    let b = relay(c).await;
    // Each instance alone would allow 20 and 4: together they allow 20 requests and 4 answers.
    let mut streams = Vec::new();
    let mut refused = 0;
    for i in 0..6 {
        let base = if i % 2 == 0 { &a } else { &b };
        let resp = post(base, "/v1/chat/completions", &chat("hi", true)).await;
        match resp.status().as_u16() {
            200 => streams.push(resp),
            429 => {
                let v: serde_json::Value = resp.json().await.unwrap();
                assert_eq!(v["error"]["code"], "too_many_streams");
                refused += 1;
            }
            other => panic!("{other}"),
        }
    }
    assert_eq!((streams.len(), refused), (4, 2));
    // A finished answer frees its slot on every instance.
    let first = streams.remove(0);
    let id = generation_id(&first);
    client().post(format!("{a}/v1/chat/stream/{id}/cancel")).send().await.unwrap();
    drop(first);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(post(&b, "/v1/chat/completions", &chat("hi", true)).await.status(), 200);
    drop(streams);

    let mut limited = 0;
    for i in 0..30 {
        let base = if i % 2 == 0 { &a } else { &b };
        limited += (client().get(format!("{base}/v1/models")).send().await.unwrap().status() == 429) as usize;
    }
    // 8 requests above were counted too: 38 in all against a bucket of 20.
    assert!(limited >= 15, "only {limited} of 30 limited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_refused_at_the_shared_limit_sends_the_upstream_nothing() {
    // The upstream connection is made while the admission runs: a refused answer must not
    // have sent its request on it.
    let redis = redis().await;
    let (script, _) = numbered(100, 20);
    let mock = Mock::start(script).await;
    let mut c = shared(&mock.url(), &redis);
    c.limits.per_ip_streams = 1;
    let a = relay(c.clone()).await;
    let held = post(&a, "/v1/chat/completions", &chat("hi", true)).await;
    assert_eq!(held.status(), 200);
    let accepted = || mock.accepted.load(std::sync::atomic::Ordering::SeqCst);
    // A fresh instance per try: a refused answer's connection is kept, and the next answer on
    // that instance has none to make. On a busy machine the answer's task may first run after
    // the refusal (and then connects to nothing), hence more than one try.
    let mut ahead = false;
    for _ in 0..5 {
        let b = relay(c.clone()).await;
        let before = accepted();
        let refused = post(&b, "/v1/chat/completions", &chat("hi", true)).await;
        assert_eq!(refused.status(), 429);
        let v: serde_json::Value = refused.json().await.unwrap();
        assert_eq!(v["error"]["code"], "too_many_streams");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(mock.seen().len(), 1, "the refused answer's request reached the upstream");
        // Nor is the refused answer left behind on its instance.
        let health: serde_json::Value =
            client().get(format!("{b}/healthz")).send().await.unwrap().json().await.unwrap();
        assert_eq!((health["generations"].as_u64(), health["active"].as_u64()), (Some(0), Some(0)), "{health}");
        assert!(accepted() <= before + 1);
        if accepted() == before + 1 {
            ahead = true;
            break;
        }
    }
    assert!(ahead, "no refused answer connected while its admission ran");
    drop(held);
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
async fn a_new_answer_takes_its_shared_request_token_in_the_admission() {
    let redis = redis().await;
    let mut con = redis_con(&redis).await;
    let mut c = demo_config();
    c.server.redis_url = redis.url.clone();
    c.limits.per_ip_per_minute = 6;
    c.limits.per_ip_burst = 6;
    c.demo.token_ms = 0;
    let a = relay(c.clone()).await;
    let b = relay(c).await;
    let evals = |info: String| -> u64 {
        let line = info.lines().find(|l| l.starts_with("cmdstat_eval:")).unwrap_or("calls=0,");
        line.split("calls=").nth(1).and_then(|v| v.split(',').next()).and_then(|v| v.parse().ok()).unwrap_or(0)
    };
    let before: String = redis::cmd("INFO").arg("commandstats").query_async(&mut con).await.unwrap();
    let resp = post(&a, "/v1/chat/completions", &chat("hi", true)).await;
    assert_eq!(resp.status(), 200);
    let after: String = redis::cmd("INFO").arg("commandstats").query_async(&mut con).await.unwrap();
    assert_eq!(evals(after) - evals(before), 1, "one script before the answer's first byte");
    events(resp).await;
    // Each instance alone would allow all of these; together they allow the bucket's 6.
    let mut codes = Vec::new();
    for i in 0..9 {
        let base = if i % 2 == 0 { &b } else { &a };
        let resp = post(base, "/v1/chat/completions", &chat("hi", true)).await;
        codes.push(match resp.status().as_u16() {
            200 => {
                events(resp).await;
                "ok".to_string()
            }
            429 => {
                assert!(resp.headers().contains_key("retry-after"));
                let v: serde_json::Value = resp.json().await.unwrap();
                v["error"]["code"].as_str().unwrap().to_string()
            }
            other => panic!("{other}"),
        });
    }
    assert_eq!(codes.iter().filter(|c| *c == "ok").count(), 5, "{codes:?}");
    assert!(codes.iter().all(|c| c == "ok" || c == "rate_limited"), "{codes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instant_burst_reaches_redis_whole_and_its_stream_is_bounded() {
    let redis = redis().await;
    // 3,000 events at once, some 45 KB: far more than the holder's 16 KiB log holds before a
    // mirror batch. The upstream is held back until the mirror catches up; nothing is lost.
    let (script, _) = numbered(3000, 0);
    let mock = Mock::start(script).await;
    let mut c = shared(&mock.url(), &redis);
    c.generations.max_log_bytes = 16 * 1024; // 1,024 events in Redis
    let a = relay(c.clone()).await;
    let b = relay(c).await;
    let resp = post(&a, "/v1/chat/completions", &chat("hi", true)).await;
    let id = generation_id(&resp);
    // The holder's own client leaves at once (a reader this far behind a 16 KiB log would be
    // told it is too slow; that is the in-memory log's bound, not the mirror's).
    drop(resp);
    let resp = client().get(format!("{b}/v1/chat/stream/{id}?after=3003")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(events(resp).await.last().unwrap().data, "[DONE]");
    let mut con = redis_con(&redis).await;
    let log = format!("cw:g:{id}:log");
    let len: usize = redis::cmd("XLEN").arg(&log).query_async(&mut con).await.unwrap();
    assert!(len < 1300, "{len} entries kept");
    let resp = client().get(format!("{b}/v1/chat/stream/{id}?after=1")).send().await.unwrap();
    assert_eq!(resp.status(), 410);
    // From the first entry Redis kept to the end: every event, once.
    let first: redis::streams::StreamRangeReply =
        redis::cmd("XRANGE").arg(&log).arg("-").arg("+").arg("COUNT").arg(1).query_async(&mut con).await.unwrap();
    let kept: u64 = first.ids[0].id.split('-').next().unwrap().parse().unwrap();
    assert!(kept > 1000, "{kept}");
    // Resumed on the other instance inside what Redis keeps: the rest, whole and once.
    // Event 1 is the role, event 2 + i the piece i.
    for after in [kept, kept + 1, 2501, 2999, 3001] {
        let resp = client().get(format!("{b}/v1/chat/stream/{id}?after={after}")).send().await.unwrap();
        assert_eq!(resp.status(), 200, "after={after}");
        let tail = events(resp).await;
        let want: String = (after.saturating_sub(1) as usize..3000).map(|i| format!("{i}·片段{i} ")).collect();
        assert_eq!(content(&tail), want, "after={after}");
        assert_eq!(tail.first().unwrap().id, (after + 1).to_string());
        assert!(tail.iter().all(|e| e.data == "[DONE]" || e.json().get("error").is_none()), "after={after}");
        assert_eq!(tail.last().unwrap().data, "[DONE]");
    }
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

/// Writes a generation into Redis the way a holder's mirror does, so a test controls exactly
/// what another instance finds there: `entries` as `(seq, kind letter, payload)`.
async fn fake_generation(
    con: &mut redis::aio::MultiplexedConnection,
    id: &str,
    running: bool,
    entries: &[(u64, &str, &str)],
) {
    let _: () = redis::cmd("HSET")
        .arg(format!("cw:g:{id}"))
        .arg("owner")
        .arg("")
        .arg("model")
        .arg("m")
        .arg("created")
        .arg(1)
        .query_async(con)
        .await
        .unwrap();
    if running {
        let _: () = redis::cmd("SET")
            .arg(format!("cw:g:{id}:lease"))
            .arg("elsewhere")
            .arg("PX")
            .arg(3000)
            .query_async(con)
            .await
            .unwrap();
    }
    add_entries(con, id, entries).await;
}

async fn add_entries(con: &mut redis::aio::MultiplexedConnection, id: &str, entries: &[(u64, &str, &str)]) {
    for (seq, k, p) in entries {
        let _: String = redis::cmd("XADD")
            .arg(format!("cw:g:{id}:log"))
            .arg(format!("{seq}-0"))
            .arg("k")
            .arg(*k)
            .arg("p")
            .arg(*p)
            .query_async(con)
            .await
            .unwrap();
    }
}

async fn redis_con(redis: &Redis) -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis.url.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_ahead_of_redis_waits_for_the_holders_mirror() {
    // The holder already sent events 3-5 to its own client, who was cut and landed here while
    // the mirror had written only 1-2.
    let redis = redis().await;
    let mut con = redis_con(&redis).await;
    let b = relay(shared("http://127.0.0.1:9", &redis)).await;
    let id = "chatcmpl-aheadofredis";
    fake_generation(&mut con, id, true, &[(1, "a", ""), (2, "c", "one ")]).await;
    let mut writer = con.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let rest =
            [(3, "c", "two "), (4, "c", "three "), (5, "c", "four "), (6, "c", "five"), (7, "f", "stop"), (8, "d", "")];
        add_entries(&mut writer, "chatcmpl-aheadofredis", &rest).await;
    });
    let resp = client().get(format!("{b}/v1/chat/stream/{id}?after=5")).send().await.unwrap();
    assert_eq!(resp.status(), 200, "{:?}", resp.text().await);
    let evs = events(resp).await;
    assert_eq!(evs.first().unwrap().id, "6");
    assert_eq!(content(&evs), "five");
    assert_eq!(evs.last().unwrap().data, "[DONE]");
    // Past the end of a generation nobody is producing any more: refused at once.
    let t = Instant::now();
    let _: () = redis::cmd("DEL").arg(format!("cw:g:{id}:lease")).query_async(&mut con).await.unwrap();
    let resp = client().get(format!("{b}/v1/chat/stream/{id}?after=20")).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert!(t.elapsed() < Duration::from_secs(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_reader_never_jumps_over_missing_events() {
    let redis = redis().await;
    let mut con = redis_con(&redis).await;
    let b = relay(shared("http://127.0.0.1:9", &redis)).await;
    // Trimmed under a slow reader: after event 2 the stream goes on at 5.
    let id = "chatcmpl-trimmedunder";
    fake_generation(&mut con, id, true, &[(1, "a", ""), (2, "c", "one ")]).await;
    let resp = client().get(format!("{b}/v1/chat/stream/{id}?after=2")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    add_entries(&mut con, id, &[(5, "c", "four "), (6, "f", "stop"), (7, "d", "")]).await;
    let _: () =
        redis::cmd("XTRIM").arg(format!("cw:g:{id}:log")).arg("MINID").arg("5-0").query_async(&mut con).await.unwrap();
    let evs = tokio::time::timeout(Duration::from_secs(5), events(resp)).await.unwrap();
    assert_eq!(content(&evs), "", "text after a gap was sent: {evs:?}");
    let err = evs.iter().find(|e| e.json().get("error").is_some()).expect("an error event");
    assert_eq!(err.json()["error"]["code"], "client_too_slow");

    // The holder's mirror could not copy events 3-4: it marked them lost.
    let id = "chatcmpl-mirrorlost";
    fake_generation(&mut con, id, false, &[(1, "a", ""), (2, "c", "one "), (3, "x", "")]).await;
    let evs = events(client().get(format!("{b}/v1/chat/stream/{id}?after=0")).send().await.unwrap()).await;
    assert_eq!(content(&evs), "one ");
    let err = evs.iter().find(|e| e.json().get("error").is_some()).expect("an error event");
    assert_eq!(err.json()["error"]["code"], "events_lost");
    let resp = client().get(format!("{b}/v1/chat/stream/{id}?after=4")).send().await.unwrap();
    assert_eq!(resp.status(), 410);
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
async fn cancel_elsewhere_is_truthful_and_lands_through_the_flag() {
    let redis = redis().await;
    let mut con = redis_con(&redis).await;
    let (script, _) = numbered(500, 20);
    let mock = Mock::start(script).await;
    let a = relay(shared(&mock.url(), &redis)).await;
    let b = relay(shared(&mock.url(), &redis)).await;
    // A cancel whose message nobody heard (published while the holder's subscriber was
    // reconnecting) still lands: the holder reads the flag with its lease.
    let (id, sse, _) = start_answer(&a, 1).await;
    let _: () = redis::cmd("SET")
        .arg(format!("cw:g:{id}:cancel"))
        .arg(1)
        .arg("EX")
        .arg(60)
        .query_async(&mut con)
        .await
        .unwrap();
    let closed = mock.wait_for(0, Duration::from_millis(1500), |s| s.closed_at.is_some()).await;
    assert!(closed.is_some(), "a cancel flag was not noticed");
    drop(sse);
    // A generation that already finished is reported so, not "cancelled".
    let (script, _) = numbered(5, 0);
    let quick = Mock::start(script).await;
    let a = relay(shared(&quick.url(), &redis)).await;
    let resp = post(&a, "/v1/chat/completions", &chat("hi", true)).await;
    let id = generation_id(&resp);
    events(resp).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let v: serde_json::Value =
        client().post(format!("{b}/v1/chat/stream/{id}/cancel")).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["status"], "finished");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_token_stream_limits_hold_on_one_instance_and_across_instances() {
    let redis = redis().await;
    let mut c = demo_config();
    c.limits.per_token_streams = 2;
    c.limits.per_ip_streams = 10;
    c.demo.token_ms = 30;
    c.auth.tokens = vec!["token-one".into(), "token-two".into()];
    let with = |token: &'static str, base: &str| {
        client().post(format!("{base}/v1/chat/completions")).bearer_auth(token).json(&chat("hi", true)).send()
    };
    // In memory: one instance counts a token's answers.
    let alone = relay(c.clone()).await;
    let held = [with("token-one", &alone).await.unwrap(), with("token-one", &alone).await.unwrap()];
    assert!(held.iter().all(|r| r.status() == 200));
    let refused = with("token-one", &alone).await.unwrap();
    assert_eq!(refused.status(), 429);
    let v: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(v["error"]["code"], "too_many_streams");
    assert_eq!(with("token-two", &alone).await.unwrap().status(), 200);
    drop(held);

    // Shared: two instances together allow a token 2 answers, not 2 each.
    c.server.redis_url = redis.url.clone();
    let a = relay(c.clone()).await;
    let b = relay(c).await;
    let mut statuses = Vec::new();
    let mut open = Vec::new();
    for i in 0..4 {
        let resp = with("token-one", if i % 2 == 0 { &a } else { &b }).await.unwrap();
        statuses.push(resp.status().as_u16());
        open.push(resp);
    }
    assert_eq!(statuses, [200, 200, 429, 429]);
    assert_eq!(with("token-two", &b).await.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_resume_by_byte_offset_works_on_another_instance() {
    let redis = redis().await;
    let (script, expected) = numbered(80, 8);
    let mock = Mock::start(script).await;
    let a = relay(shared(&mock.url(), &redis)).await;
    let b = relay(shared(&mock.url(), &redis)).await;
    let (id, sse, first) = start_answer(&a, 10).await;
    // Running: a reader at the answer's last byte waits for the rest to reach Redis, and
    // gets nothing more (not a 400 for an answer that ended while it looked).
    let at_end = client().get(format!("{b}/v1/chat/stream/{id}?format=text&offset={}", expected.len())).send();
    let at_end = tokio::spawn(at_end);
    // Running: the text from the byte the client has on, served by the other instance.
    let have = content(&first);
    let resp = client().get(format!("{b}/v1/chat/stream/{id}?format=text&offset={}", have.len())).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let rest = resp.bytes().await.unwrap();
    assert_eq!([have.as_bytes(), &rest].concat(), expected.as_bytes());
    sse.all().await;
    let at_end = at_end.await.unwrap().unwrap();
    assert_eq!(at_end.status(), 200);
    assert!(at_end.bytes().await.unwrap().is_empty());
    // Finished: any byte, inside a character too, and the end.
    let bytes = expected.as_bytes();
    for offset in [0, 1, 9, 10, bytes.len() / 2, bytes.len()] {
        let url = format!("{b}/v1/chat/stream/{id}?format=text&offset={offset}");
        let resp = client().get(url).send().await.unwrap();
        assert_eq!(resp.status(), 200, "offset {offset}");
        assert_eq!(&resp.bytes().await.unwrap()[..], &bytes[offset..], "offset {offset}");
    }
    let resp =
        client().get(format!("{b}/v1/chat/stream/{id}?format=text&offset={}", bytes.len() + 1)).send().await.unwrap();
    assert_eq!(resp.status(), 400);
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
async fn a_reader_elsewhere_gets_the_end_as_soon_as_it_is_in_redis() {
    // A remote reader waits in `XREAD BLOCK`; the end of the answer must reach it when it
    // lands, not when the block times out, whether the reader waits for it or already has it.
    let redis = redis().await;
    let (mut script, _) = numbered(20, 0);
    let finish = script.split_off(script.len() - openai_finish().len());
    script.push(Step::Sleep(400));
    script.extend(finish);
    let mock = Mock::start(script).await;
    let a = relay(shared(&mock.url(), &redis)).await;
    let b = relay(shared(&mock.url(), &redis)).await;
    let (id, mut sse, mut first) = start_answer(&a, 0).await;
    while content(&first).matches('·').count() < 20 {
        first.push(sse.next().await.unwrap());
    }
    // Waiting at the last delta on the other instance while the upstream pauses.
    let after = first.last().unwrap().id.clone();
    let waiting = client().get(format!("{b}/v1/chat/stream/{id}?after={after}")).send().await.unwrap();
    assert_eq!(waiting.status(), 200);
    let waiting = tokio::spawn(async move {
        let rest = events(waiting).await;
        (rest, Instant::now())
    });
    let rest = sse.all().await;
    let holder_done = Instant::now();
    let (remote_rest, remote_done) = waiting.await.unwrap();
    assert_eq!(remote_rest.last().unwrap().data, "[DONE]");
    assert_eq!(remote_rest.len(), rest.len());
    let late = remote_done.saturating_duration_since(holder_done);
    eprintln!("the end reached a blocked reader elsewhere {late:?} after the holder's reader");
    assert!(late < Duration::from_millis(300), "{late:?}");
    // Arriving after the end: an empty answer at once, in SSE and in text.
    let done = rest.last().unwrap().id.clone();
    let bytes = content(&first).len() + content(&rest).len();
    for url in
        [format!("{b}/v1/chat/stream/{id}?after={done}"), format!("{b}/v1/chat/stream/{id}?format=text&offset={bytes}")]
    {
        let t = Instant::now();
        let resp = client().get(&url).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{url}");
        assert!(resp.bytes().await.unwrap().is_empty(), "{url}");
        let took = t.elapsed();
        eprintln!("{url}: the empty answer took {took:?}");
        assert!(took < Duration::from_millis(300), "{url}: {took:?}");
    }
}
