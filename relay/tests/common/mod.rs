//! Test support: a scripted mock upstream on 127.0.0.1 (raw TCP, so a test controls every
//! byte, every pause and every disconnect, and sees when the relay closes its connection),
//! a relay on an ephemeral port, SSE helpers built on the chunkwise decoder, and (`store`) a
//! loopback Redis for the tests of shared generations.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chunkwise::{Format, Options, StreamDecoder};
use chunkwise_relay::config::{Config, Provider};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

pub mod store;

/// One step of what the mock upstream does on a connection.
#[derive(Debug, Clone)]
pub enum Step {
    /// A complete non-streaming response: status, extra headers, body.
    Respond(u16, Vec<(&'static str, String)>, String),
    /// `200` with SSE headers; the body follows in chunked encoding. The mock answers one
    /// request per connection and says so (`connection: close`).
    Begin,
    /// One body chunk.
    Send(Vec<u8>),
    Sleep(u64),
    /// Never answer again (but keep the connection open).
    Hang,
    /// Drop the connection abruptly (no terminating chunk).
    Drop,
    /// The terminating chunk: a clean end of the body.
    End,
}

pub fn send(s: impl Into<Vec<u8>>) -> Step {
    Step::Send(s.into())
}

/// What the mock saw on one connection.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    pub head: String,
    pub body: String,
    /// When the relay closed its side of the connection (EOF or reset).
    pub closed_at: Option<Instant>,
    /// When the script ran to its end.
    pub finished_at: Option<Instant>,
}

pub struct Mock {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    pub changed: Arc<Notify>,
    /// Connections accepted, whether or not a request came on them.
    pub accepted: Arc<std::sync::atomic::AtomicUsize>,
}

impl Mock {
    /// Starts a mock that plays `script` on every connection.
    pub async fn start(script: Vec<Step>) -> Mock {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let changed = Arc::new(Notify::new());
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (s2, c2, a2) = (seen.clone(), changed.clone(), accepted.clone());
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else { return };
                a2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let (seen, changed, script) = (s2.clone(), c2.clone(), script.clone());
                tokio::spawn(async move { serve_one(sock, script, seen, changed).await });
            }
        });
        Mock { addr, seen, changed, accepted }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits (at most `limit`) until connection `i` satisfies `pred`.
    pub async fn wait_for(&self, i: usize, limit: Duration, pred: impl Fn(&Seen) -> bool) -> Option<Seen> {
        let deadline = Instant::now() + limit;
        loop {
            let notified = self.changed.notified();
            if let Some(s) = self.seen().get(i).filter(|s| pred(s)) {
                return Some(s.clone());
            }
            if tokio::time::timeout_at(deadline.into(), notified).await.is_err() {
                return None;
            }
        }
    }
}

async fn serve_one(mut sock: TcpStream, script: Vec<Step>, seen: Arc<Mutex<Vec<Seen>>>, changed: Arc<Notify>) {
    // Read the request head and its Content-Length body.
    let mut buf = Vec::new();
    let mut tmp = [0u8; 8192];
    let head_end = loop {
        let Ok(n) = sock.read(&mut tmp).await else { return };
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&tmp[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let len: usize = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let Ok(n) = sock.read(&mut tmp).await else { return };
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&tmp[..n]);
    }
    let body = String::from_utf8_lossy(&buf[head_end..head_end + len]).to_string();
    let index = {
        let mut s = seen.lock().unwrap();
        s.push(Seen { head, body, ..Seen::default() });
        s.len() - 1
    };
    changed.notify_waiters();
    let (mut rd, mut wr) = sock.into_split();
    // Watch for the relay closing its side while the script plays.
    let (seen2, changed2) = (seen.clone(), changed.clone());
    let watcher = tokio::spawn(async move {
        let mut b = [0u8; 1024];
        loop {
            match rd.read(&mut b).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        seen2.lock().unwrap()[index].closed_at = Some(Instant::now());
        changed2.notify_waiters();
    });
    for step in script {
        let ok = match step {
            Step::Respond(status, headers, body) => {
                let mut h = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
                    body.len()
                );
                for (k, v) in headers {
                    h.push_str(&format!("{k}: {v}\r\n"));
                }
                h.push_str("\r\n");
                h.push_str(&body);
                wr.write_all(h.as_bytes()).await.is_ok()
            }
            Step::Begin => wr
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n")
                .await
                .is_ok(),
            Step::Send(bytes) => {
                let mut frame = format!("{:x}\r\n", bytes.len()).into_bytes();
                frame.extend_from_slice(&bytes);
                frame.extend_from_slice(b"\r\n");
                wr.write_all(&frame).await.is_ok()
            }
            Step::Sleep(ms) => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                true
            }
            Step::Hang => {
                std::future::pending::<()>().await;
                true
            }
            Step::Drop => {
                watcher.abort();
                return;
            }
            Step::End => wr.write_all(b"0\r\n\r\n").await.is_ok(),
        };
        if !ok {
            break;
        }
    }
    seen.lock().unwrap()[index].finished_at = Some(Instant::now());
    changed.notify_waiters();
    let _ = wr.flush().await;
    // Keep the socket open until the relay closes it, so `closed_at` means the relay's close.
    let _ = watcher.await;
    drop(wr);
}

/// An OpenAI chunk with `content` (and nothing else).
pub fn openai_delta(content: &str) -> Step {
    send(format!(
        "data: {}\n\n",
        serde_json::json!({"id":"up-1","object":"chat.completion.chunk","created":1,"model":"up","choices":[{"index":0,"delta":{"content":content},"finish_reason":null}]})
    ))
}

pub fn openai_finish() -> Vec<Step> {
    vec![
        send(
            r#"data: {"id":"up-1","object":"chat.completion.chunk","created":1,"model":"up","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}

"#,
        ),
        send(
            r#"data: {"id":"up-1","object":"chat.completion.chunk","created":1,"model":"up","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":4,"total_tokens":13}}

"#,
        ),
        send("data: [DONE]\n\n"),
        Step::End,
    ]
}

/// A config for the relay in front of `upstream` (OpenAI-compatible unless changed), with
/// generous limits and short timeouts.
pub fn config_for(upstream: &str) -> Config {
    let mut c = Config::default();
    c.upstream.kind = Provider::OpenAi;
    c.upstream.base_url = format!("{upstream}/v1");
    c.upstream.api_key = "sk-test".into();
    c.upstream.model = "up-model".into();
    c.upstream.connect_timeout_ms = 1000;
    c.upstream.first_byte_timeout_ms = 2000;
    c.upstream.idle_timeout_ms = 2000;
    c.limits.per_ip_streams = 100;
    c.limits.per_ip_per_minute = 6000;
    c.limits.per_ip_burst = 1000;
    c.demo.token_ms = 0;
    c.demo.first_token_ms = 0;
    c
}

pub fn demo_config() -> Config {
    let mut c = config_for("http://unused");
    c.upstream.kind = Provider::Demo;
    c
}

pub async fn relay(config: Config) -> String {
    let (addr, _app) = chunkwise_relay::spawn(config).await.unwrap();
    format!("http://{addr}")
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().build().unwrap()
}

pub fn chat(content: &str, stream: bool) -> serde_json::Value {
    serde_json::json!({ "model": "", "stream": stream, "messages": [{ "role": "user", "content": content }] })
}

/// The relay's id of the generation an answer belongs to (its `x-chunkwise-generation` header).
pub fn generation_id(resp: &reqwest::Response) -> String {
    resp.headers()["x-chunkwise-generation"].to_str().unwrap().to_string()
}

pub async fn post(base: &str, path: &str, body: &serde_json::Value) -> reqwest::Response {
    client().post(format!("{base}{path}")).json(body).send().await.unwrap()
}

/// One parsed SSE event.
#[derive(Debug, Clone)]
pub struct Ev {
    pub id: String,
    pub data: String,
}

impl Ev {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.data).unwrap_or(serde_json::Value::Null)
    }
    pub fn content(&self) -> String {
        self.json()["choices"][0]["delta"]["content"].as_str().unwrap_or("").to_string()
    }
    pub fn reasoning(&self) -> String {
        self.json()["choices"][0]["delta"]["reasoning_content"].as_str().unwrap_or("").to_string()
    }
}

/// Incremental SSE reader over a response body.
pub struct Sse {
    resp: reqwest::Response,
    dec: StreamDecoder,
    pending: std::collections::VecDeque<Ev>,
    pub raw: Vec<u8>,
}

impl Sse {
    pub fn new(resp: reqwest::Response) -> Sse {
        Sse {
            resp,
            dec: StreamDecoder::new(Options { format: Format::Sse, ..Options::default() }),
            pending: Default::default(),
            raw: Vec::new(),
        }
    }

    /// The next event, or `None` at the end of the body.
    pub async fn next(&mut self) -> Option<Ev> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Some(e);
            }
            let chunk = tokio::time::timeout(Duration::from_secs(20), self.resp.chunk()).await.expect("body stalled");
            match chunk {
                Ok(Some(bytes)) => {
                    self.raw.extend_from_slice(&bytes);
                    let u = self.dec.push(&bytes);
                    self.pending.extend(u.events.into_iter().map(|e| Ev { id: e.id, data: e.data }));
                }
                _ => {
                    let u = self.dec.finish();
                    self.pending.extend(u.events.into_iter().map(|e| Ev { id: e.id, data: e.data }));
                    return self.pending.pop_front();
                }
            }
        }
    }

    pub async fn all(mut self) -> Vec<Ev> {
        let mut out = Vec::new();
        while let Some(e) = self.next().await {
            out.push(e);
        }
        out
    }
}

pub async fn events(resp: reqwest::Response) -> Vec<Ev> {
    Sse::new(resp).all().await
}

pub fn content(events: &[Ev]) -> String {
    events.iter().map(Ev::content).collect()
}

pub fn reasoning(events: &[Ev]) -> String {
    events.iter().map(Ev::reasoning).collect()
}

/// Ids are 1, 2, 3, ... in order.
pub fn assert_sequential(events: &[Ev], first: u64) {
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.id, (first + i as u64).to_string(), "event {i}: {e:?}");
    }
}

/// `n` deltas of distinct, multi-byte text, `ms` apart, and the text they make.
pub fn numbered(n: usize, ms: u64) -> (Vec<Step>, String) {
    let mut script = vec![Step::Begin];
    let mut text = String::new();
    for i in 0..n {
        let piece = format!("{i}·片段{i} ");
        text.push_str(&piece);
        script.push(openai_delta(&piece));
        if ms > 0 {
            script.push(Step::Sleep(ms));
        }
    }
    script.extend(openai_finish());
    (script, text)
}

/// Asks `ready` every `every` until it gives a value, and returns it; past `within` the test
/// fails with `what`.
pub async fn until<T, F, Fut>(within: Duration, every: Duration, what: &str, mut ready: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = ready().await {
            return value;
        }
        assert!(Instant::now() < deadline, "{what} (waited {within:?})");
        tokio::time::sleep(every).await;
    }
}

/// Waits for a process the test started to answer (`ready` is true), for up to 10 s.
pub async fn started<F, Fut>(what: &str, mut ready: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let ready = || {
        let answered = ready();
        async move { answered.await.then_some(()) }
    };
    until(Duration::from_secs(10), Duration::from_millis(50), what, ready).await
}

/// The relay binary, started by a test on a free loopback port; killed when dropped.
pub struct RelayProcess {
    pub child: std::process::Child,
    pub base: String,
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the relay binary against the OpenAI-compatible `upstream`, with limits no test
/// reaches and `env` on top, and waits until it answers `/healthz`.
pub async fn spawn_relay(upstream: &str, env: &[(&str, &str)]) -> RelayProcess {
    let port = free_port();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_chunkwise-relay"));
    command
        .env_clear()
        .env("PORT", port.to_string())
        .env("UPSTREAM_BASE_URL", format!("{upstream}/v1"))
        .env("UPSTREAM_MODEL", "m")
        .env("RELAY_PER_IP_PER_MINUTE", "100000")
        .env("RELAY_PER_IP_BURST", "10000")
        .env("RELAY_PER_IP_STREAMS", "1000")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    for (name, value) in env {
        command.env(name, value);
    }
    let child = command.spawn().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    started("the relay did not start", || async { client().get(format!("{base}/healthz")).send().await.is_ok() }).await;
    RelayProcess { child, base }
}

/// A loopback port nothing listens on (at the moment of asking).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The bytes of a `POST` of `body` (JSON) to `path`, for tests that write raw HTTP.
pub fn raw_post(path: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Reads a stream, cutting it after a random number of events (1 to `most`) and resuming
/// with `resume(after)` until `[DONE]`. Returns every event read and how many cuts there were.
pub async fn read_with_cuts<F, Fut>(
    first: reqwest::Response,
    rng: &mut fastrand::Rng,
    most: usize,
    mut resume: F,
) -> (Vec<Ev>, usize)
where
    F: FnMut(usize, String) -> Fut,
    Fut: std::future::Future<Output = reqwest::Response>,
{
    let mut got: Vec<Ev> = Vec::new();
    let mut sse = Sse::new(first);
    let mut cuts = 0;
    loop {
        let mut ended = false;
        for _ in 0..rng.usize(1..most) {
            match sse.next().await {
                Some(e) => got.push(e),
                None => {
                    ended = true;
                    break;
                }
            }
        }
        if ended || got.last().is_some_and(|e| e.data == "[DONE]") {
            return (got, cuts);
        }
        drop(sse);
        cuts += 1;
        let after = got.last().map(|e| e.id.clone()).unwrap_or_else(|| "0".into());
        let resp = resume(cuts, after.clone()).await;
        assert_eq!(resp.status(), 200, "resume after {after}");
        sse = Sse::new(resp);
    }
}
