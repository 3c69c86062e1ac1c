//! Generations shared through Redis: resume and stop from another instance, and the death of
//! the instance that holds the upstream. Each test starts its own `redis-server` on a loopback
//! port (Debian's package, installed by `build.sh`).

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

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
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

fn numbered(n: usize, ms: u64) -> (Vec<Step>, String) {
    let mut script = vec![Step::Begin];
    let mut text = String::new();
    for i in 0..n {
        let piece = format!("{i}·片段{i} ");
        text.push_str(&piece);
        script.push(openai_delta(&piece));
        script.push(Step::Sleep(ms));
    }
    script.extend(openai_finish());
    (script, text)
}

fn shared(upstream: &str, redis: &Redis) -> chunkwise_relay::config::Config {
    let mut c = config_for(upstream);
    c.server.redis_url = redis.url.clone();
    c.generations.ttl_secs = 60;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_cut_at_random_points_resume_on_other_instances() {
    let redis = redis().await;
    let (script, expected) = numbered(80, 8);
    let mock = Mock::start(script).await;
    let instances = [relay(shared(&mock.url(), &redis)).await, relay(shared(&mock.url(), &redis)).await];
    let resp = post(&instances[0], "/v1/chat/completions", &chat("hi", true)).await;
    let id = resp.headers()["x-chunkwise-generation"].to_str().unwrap().to_string();
    let mut rng = fastrand::Rng::with_seed(7);
    let mut got: Vec<Ev> = Vec::new();
    let mut sse = Sse::new(resp);
    let mut hop = 0;
    loop {
        // Read a random number of events, then cut and resume on the other instance.
        let take = rng.usize(1..15);
        let mut ended = false;
        for _ in 0..take {
            match sse.next().await {
                Some(e) => got.push(e),
                None => {
                    ended = true;
                    break;
                }
            }
        }
        if ended || got.last().is_some_and(|e| e.data == "[DONE]") {
            break;
        }
        drop(sse);
        hop += 1;
        let after = got.last().map(|e| e.id.clone()).unwrap_or_else(|| "0".into());
        let base = &instances[hop % 2];
        let resp = client().get(format!("{base}/v1/chat/stream/{id}?after={after}")).send().await.unwrap();
        assert_eq!(resp.status(), 200, "resume after {after} on instance {}", hop % 2);
        sse = Sse::new(resp);
    }
    assert!(hop >= 4, "only {hop} cuts");
    assert_sequential(&got, 1);
    assert_eq!(content(&got), expected);
    assert_eq!(got.last().unwrap().data, "[DONE]");
    // A finished generation is served by either instance; positions past the end are refused.
    let last = got.last().unwrap().id.parse::<u64>().unwrap();
    let resp = client().get(format!("{}/v1/chat/stream/{id}?after={}", instances[1], last + 5)).send().await.unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_sent_to_another_instance_closes_the_upstream_within_a_second() {
    let redis = redis().await;
    let (script, _) = numbered(500, 20);
    let mock = Mock::start(script).await;
    let a = relay(shared(&mock.url(), &redis)).await;
    let b = relay(shared(&mock.url(), &redis)).await;
    let resp = post(&a, "/v1/chat/completions", &chat("hi", true)).await;
    let id = resp.headers()["x-chunkwise-generation"].to_str().unwrap().to_string();
    let mut sse = Sse::new(resp);
    for _ in 0..3 {
        sse.next().await.unwrap();
    }
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
    let resp = post(&a, "/v1/chat/completions", &chat("hi", true)).await;
    let id = resp.headers()["x-chunkwise-generation"].to_str().unwrap().to_string();
    let mut sse = Sse::new(resp);
    let mut first = Vec::new();
    for _ in 0..10 {
        first.push(sse.next().await.unwrap());
    }
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

    let redis = redis().await;
    let mut c = demo_config();
    c.server.redis_url = redis.url.clone();
    c.generations.ttl_secs = 30;
    let base = relay(c).await;
    let resp = post(&base, "/v1/chat/completions", &chat("hi", true)).await;
    let id = resp.headers()["x-chunkwise-generation"].to_str().unwrap().to_string();
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
    let memory: i64 =
        redis::cmd("MEMORY").arg("USAGE").arg(format!("cw:g:{id}:log")).query_async(&mut con).await.unwrap();
    eprintln!("Redis memory of one demo answer's log: {memory} bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_lost_mid_stream_ends_remote_readers_refuses_new_answers_and_recovers() {
    let port = free_port();
    let redis = redis_on(port).await;
    let (script, _) = numbered(400, 20);
    let mock = Mock::start(script).await;
    let a = relay(shared(&mock.url(), &redis)).await;
    let b = relay(shared(&mock.url(), &redis)).await;
    let resp = post(&a, "/v1/chat/completions", &chat("hi", true)).await;
    let id = resp.headers()["x-chunkwise-generation"].to_str().unwrap().to_string();
    let mut local = Sse::new(resp);
    for _ in 0..5 {
        local.next().await.unwrap();
    }
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
    let id = resp.headers()["x-chunkwise-generation"].to_str().unwrap().to_string();
    let mut sse = Sse::new(resp);
    for _ in 0..3 {
        sse.next().await.unwrap();
    }
    let remote = client().get(format!("{b}/v1/chat/stream/{id}?after=3")).send().await.unwrap();
    assert_eq!(remote.status(), 200);
    let mut remote = Sse::new(remote);
    assert_eq!(remote.next().await.unwrap().id, "4");
}
