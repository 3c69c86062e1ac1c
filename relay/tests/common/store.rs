//! Support for the tests of generations shared through Redis: a `redis-server` on a loopback
//! port (Debian's package, installed by `build.sh`), a relay config that uses it, and an
//! answer started on one instance.

use std::process::{Child, Command, Stdio};

use super::*;

pub struct Redis {
    pub child: Child,
    pub url: String,
}

impl Redis {
    /// The server's address (`127.0.0.1:port`), for a proxy put in front of it.
    pub fn addr(&self) -> String {
        self.url.trim_start_matches("redis://").trim_end_matches('/').to_string()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn redis() -> Redis {
    redis_on(free_port()).await
}

pub async fn redis_on(port: u16) -> Redis {
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server (apt-get install redis-server; ./build.sh test installs it)");
    let url = format!("redis://127.0.0.1:{port}/");
    let redis = Redis { child, url };
    super::started("redis-server did not start", || async {
        let Ok(client) = redis::Client::open(redis.url.as_str()) else { return false };
        let Ok(mut con) = client.get_multiplexed_async_connection().await else { return false };
        redis::cmd("PING").query_async::<String>(&mut con).await.is_ok()
    })
    .await;
    redis
}

pub fn shared(upstream: &str, redis: &Redis) -> chunkwise_relay::config::Config {
    let mut c = config_for(upstream);
    c.server.redis_url = redis.url.clone();
    c.generations.ttl_secs = 60;
    c
}

/// An answer started on `base` with its first `n` events read: its generation id, its stream
/// (to read on, or to drop) and those events.
pub async fn start_answer(base: &str, n: usize) -> (String, Sse, Vec<Ev>) {
    let resp = post(base, "/v1/chat/completions", &chat("hi", true)).await;
    let id = generation_id(&resp);
    let mut sse = Sse::new(resp);
    let mut first = Vec::with_capacity(n);
    for _ in 0..n {
        first.push(sse.next().await.unwrap());
    }
    (id, sse, first)
}

pub async fn redis_con(redis: &Redis) -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis.url.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap()
}
