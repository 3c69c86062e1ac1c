//! SIGTERM drains the relay (see `chunkwise_relay::drain`): new connections are refused at
//! once, the answers already streaming run to their end and are read to the end (on this
//! instance and, with Redis, on others), then the process exits 0; past the drain timeout the
//! rest end with a clear error and `[DONE]` and their upstreams are closed; a second signal
//! stops it at once. Runs the real binary on loopback; bounded in time.

#![cfg(target_os = "linux")]

mod common;

use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use common::store::*;
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A client of its own: a new connection for each request.
fn fresh() -> reqwest::Client {
    reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap()
}

fn signal(relay: &RelayProcess, name: &str) {
    let pid = relay.child.id().to_string();
    assert!(Command::new("kill").args([&format!("-{name}"), &pid]).status().unwrap().success());
}

/// The relay's exit status, once it exits within `limit` (the test fails otherwise).
async fn exited(relay: &mut RelayProcess, limit: Duration) -> (ExitStatus, Instant) {
    let t = Instant::now();
    loop {
        if let Some(status) = relay.child.try_wait().unwrap() {
            return (status, Instant::now());
        }
        assert!(t.elapsed() < limit, "still running {limit:?} later");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until a new connection to `base` is refused, and says how long that took.
async fn refused(base: &str) -> Duration {
    let addr = base.trim_start_matches("http://").to_string();
    let t = Instant::now();
    loop {
        if TcpStream::connect(&addr).await.is_err() {
            return t.elapsed();
        }
        assert!(t.elapsed() < Duration::from_secs(5), "new connections still accepted 5 s after SIGTERM");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A keep-alive connection the relay has accepted and answered once (`/healthz`).
async fn kept(base: &str) -> TcpStream {
    let mut s = TcpStream::connect(base.trim_start_matches("http://")).await.unwrap();
    let (head, _) = exchange(&mut s, "GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(!head.to_ascii_lowercase().contains("connection: close"), "{head}");
    s
}

/// Sends one request on `s` and reads its response: the head and the body (de-chunked).
async fn exchange(s: &mut TcpStream, request: &str) -> (String, Vec<u8>) {
    let (head, rest) = send(s, request).await;
    let body = read_body(s, &head, rest).await;
    (head, body)
}

/// Sends one request on `s` and reads the response's head; returns it and what was read after.
async fn send(s: &mut TcpStream, request: &str) -> (String, Vec<u8>) {
    s.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        read_more(s, &mut buf).await;
    };
    (String::from_utf8_lossy(&buf[..head_end]).to_string(), buf[head_end..].to_vec())
}

/// Reads the body of the response whose `head` was read (and `rest` after it), de-chunked.
async fn read_body(s: &mut TcpStream, head: &str, mut rest: Vec<u8>) -> Vec<u8> {
    let lower = head.to_ascii_lowercase();
    if let Some(len) = lower.lines().find_map(|l| l.strip_prefix("content-length:")) {
        let len: usize = len.trim().parse().unwrap();
        while rest.len() < len {
            read_more(s, &mut rest).await;
        }
        return rest[..len].to_vec();
    }
    assert!(lower.contains("transfer-encoding: chunked"), "{head}");
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        let Some(eol) = rest[at..].windows(2).position(|w| w == b"\r\n") else {
            read_more(s, &mut rest).await;
            continue;
        };
        let size = usize::from_str_radix(std::str::from_utf8(&rest[at..at + eol]).unwrap().trim(), 16).unwrap();
        let end = at + eol + 2 + size + 2;
        while rest.len() < end {
            read_more(s, &mut rest).await;
        }
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&rest[at + eol + 2..at + eol + 2 + size]);
        at = end;
    }
}

/// Reads what `s` has into `buf`; the test fails if it closes or stalls.
async fn read_more(s: &mut TcpStream, buf: &mut Vec<u8>) {
    let mut tmp = [0u8; 8192];
    let n = tokio::time::timeout(Duration::from_secs(20), s.read(&mut tmp)).await.expect("response stalled").unwrap();
    assert!(n > 0, "the connection closed mid-response: {:?}", String::from_utf8_lossy(buf));
    buf.extend_from_slice(&tmp[..n]);
}

/// The events of an SSE body.
fn parse(body: &[u8]) -> Vec<Ev> {
    let mut dec = chunkwise::StreamDecoder::new(chunkwise::Options {
        format: chunkwise::Format::Sse,
        ..chunkwise::Options::default()
    });
    let mut evs: Vec<Ev> = dec.push(body).events.into_iter().map(|e| Ev { id: e.id, data: e.data }).collect();
    evs.extend(dec.finish().events.into_iter().map(|e| Ev { id: e.id, data: e.data }));
    evs
}

fn error_code(evs: &[Ev]) -> Option<String> {
    evs.iter().find_map(|e| e.json()["error"]["code"].as_str().map(str::to_string))
}

fn finish_reason(evs: &[Ev]) -> Option<String> {
    evs.iter().rev().find_map(|e| e.json()["choices"][0]["finish_reason"].as_str().map(str::to_string))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_refuses_new_connections_and_lets_the_open_streams_finish() {
    let (script, expected) = numbered(30, 50);
    let mock = Mock::start(script).await;
    let mut relay = spawn_relay(&mock.url(), &[("RELAY_WORKER_THREADS", "2")]).await;
    // Read over raw connections: a body must end with its last chunk, not just stop.
    let body = serde_json::to_string(&chat("hi", true)).unwrap();
    let mut streams = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(relay.base.trim_start_matches("http://")).await.unwrap();
        let (head, rest) = send(&mut s, &raw_post("/v1/chat/completions", &body)).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        let id = head.lines().find_map(|l| l.strip_prefix("x-chunkwise-generation: ")).unwrap().to_string();
        streams.push((id, s, head, rest));
    }
    // Connections opened before the signal, idle between requests.
    let (mut for_resume, mut for_health, mut for_new) =
        (kept(&relay.base).await, kept(&relay.base).await, kept(&relay.base).await);

    let sent = Instant::now();
    signal(&relay, "TERM");
    let ids: Vec<String> = streams.iter().map(|(id, ..)| id.clone()).collect();
    let readers: Vec<_> = streams
        .into_iter()
        .map(|(_, mut s, head, rest)| {
            tokio::spawn(async move {
                let body = read_body(&mut s, &head, rest).await;
                (parse(&body), Instant::now())
            })
        })
        .collect();
    let took = refused(&relay.base).await;
    assert!(took < Duration::from_secs(2), "new connections refused only {took:?} after SIGTERM");

    // On a connection already open: /healthz says 503, a new answer is refused, and a
    // running answer of this instance is still served, each closing its connection.
    let (head, body) = exchange(&mut for_health, "GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 503"), "{head}");
    assert!(String::from_utf8_lossy(&body).contains("\"draining\""));
    assert!(head.to_ascii_lowercase().contains("connection: close"), "{head}");
    let body = serde_json::to_string(&chat("hi", true)).unwrap();
    let (head, body) = exchange(&mut for_new, &raw_post("/v1/chat/completions", &body)).await;
    assert!(head.starts_with("HTTP/1.1 503"), "{head}");
    assert!(head.to_ascii_lowercase().contains("retry-after: 1"), "{head}");
    let error: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(error["error"]["code"], "relay_draining", "{error}");
    let resume = format!("GET /v1/chat/stream/{}?after=0 HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n", ids[0]);
    let (head, body) = exchange(&mut for_resume, &resume).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let resumed = parse(&body);
    assert_sequential(&resumed, 1);
    assert_eq!(content(&resumed), expected);
    assert_eq!(resumed.last().unwrap().data, "[DONE]");

    let mut last_end = sent;
    for r in readers {
        let (evs, ended) = tokio::time::timeout(Duration::from_secs(20), r).await.expect("a stream hung").unwrap();
        assert_sequential(&evs, 1);
        assert_eq!(content(&evs), expected, "an open stream was cut by SIGTERM");
        assert_eq!(evs.last().unwrap().data, "[DONE]");
        assert_eq!(finish_reason(&evs).as_deref(), Some("stop"));
        last_end = last_end.max(ended);
    }
    let (status, at) = exited(&mut relay, Duration::from_secs(10)).await;
    assert!(status.success(), "{status:?}");
    assert!(at >= last_end, "the relay exited before its last stream ended");
    assert!(at - last_end < Duration::from_secs(3), "exited {:?} after the last stream ended", at - last_end);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_drain_timeout_open_streams_end_with_an_error_and_their_upstreams_close() {
    let mock = Mock::start(vec![Step::Begin, openai_delta("first"), Step::Hang]).await;
    let mut relay = spawn_relay(&mock.url(), &[("RELAY_DRAIN_TIMEOUT_SECS", "1")]).await;
    let resp = fresh().post(format!("{}/v1/chat/completions", relay.base)).json(&chat("hi", true)).send().await;
    let mut sse = Sse::new(resp.unwrap());
    let mut evs = vec![sse.next().await.unwrap(), sse.next().await.unwrap()];
    assert_eq!(content(&evs), "first");

    let sent = Instant::now();
    signal(&relay, "TERM");
    evs.extend(sse.all().await);
    let ended = sent.elapsed();
    assert!(ended >= Duration::from_secs(1), "the stream ended {ended:?} after SIGTERM, before the drain timeout");
    assert!(ended < Duration::from_secs(4), "the stream ended only {ended:?} after SIGTERM");
    assert_sequential(&evs, 1);
    assert_eq!(content(&evs), "first");
    assert_eq!(error_code(&evs).as_deref(), Some("relay_shutdown"), "{evs:?}");
    assert_eq!(finish_reason(&evs).as_deref(), Some("error"));
    assert_eq!(evs.last().unwrap().data, "[DONE]");
    let closed = mock.wait_for(0, Duration::from_secs(3), |s| s.closed_at.is_some()).await;
    assert!(closed.is_some(), "the upstream connection was left open");
    let (status, at) = exited(&mut relay, Duration::from_secs(5)).await;
    assert!(status.success(), "{status:?}");
    assert!(at - sent < Duration::from_secs(4), "exited {:?} after SIGTERM (drain timeout 1 s)", at - sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_during_the_drain_stops_at_once() {
    let mock = Mock::start(vec![Step::Begin, openai_delta("first"), Step::Hang]).await;
    for second in ["TERM", "INT"] {
        let mut relay = spawn_relay(&mock.url(), &[]).await;
        let resp = fresh().post(format!("{}/v1/chat/completions", relay.base)).json(&chat("hi", true)).send().await;
        let mut sse = Sse::new(resp.unwrap());
        assert_eq!(content(&[sse.next().await.unwrap(), sse.next().await.unwrap()]), "first");
        signal(&relay, "TERM");
        refused(&relay.base).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(relay.child.try_wait().unwrap().is_none(), "the relay did not wait for its open stream");
        let sent = Instant::now();
        signal(&relay, second);
        let (status, at) = exited(&mut relay, Duration::from_secs(5)).await;
        assert!(status.success(), "{status:?}");
        assert!(at - sent < Duration::from_millis(1500), "a second SIG{second} took {:?} to stop it", at - sent);
        let rest = sse.all().await;
        assert!(rest.iter().all(|e| e.data != "[DONE]"), "the stream was ended, not cut: {rest:?}");
    }
}

/// With Redis: a reader on another instance of an answer whose holder drains reads the whole
/// answer; past the drain timeout it gets the holder's error and `[DONE]` at once, not after
/// the lease lapsed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_on_other_instances_read_to_the_end_of_a_drained_holders_answer() {
    let redis = redis().await;
    let (script, expected) = numbered(30, 50);
    let mock = Mock::start(script).await;
    let other = relay(shared(&mock.url(), &redis)).await;
    let mut holder = spawn_relay(&mock.url(), &[("REDIS_URL", &redis.url)]).await;
    let (id, _own, first) = start_answer(&holder.base, 3).await;
    let resp = client().get(format!("{other}/v1/chat/stream/{id}?after=0")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    signal(&holder, "TERM");
    let evs = tokio::time::timeout(Duration::from_secs(20), events(resp)).await.expect("the reader hung");
    assert_sequential(&evs, 1);
    assert_eq!(content(&evs), expected, "the reader elsewhere did not get the whole answer");
    assert_eq!(finish_reason(&evs).as_deref(), Some("stop"));
    assert_eq!(evs.last().unwrap().data, "[DONE]");
    assert_eq!(content(&first), content(&evs[..3]));
    let (status, _) = exited(&mut holder, Duration::from_secs(10)).await;
    assert!(status.success(), "{status:?}");

    let hang = Mock::start(vec![Step::Begin, openai_delta("first"), Step::Hang]).await;
    let mut holder = spawn_relay(&hang.url(), &[("REDIS_URL", &redis.url), ("RELAY_DRAIN_TIMEOUT_SECS", "1")]).await;
    let (id, _own, _) = start_answer(&holder.base, 2).await;
    let resp = client().get(format!("{other}/v1/chat/stream/{id}?after=0")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let sent = Instant::now();
    signal(&holder, "TERM");
    let evs = tokio::time::timeout(Duration::from_secs(20), events(resp)).await.expect("the reader hung");
    let ended = sent.elapsed();
    assert_eq!(content(&evs), "first");
    assert_eq!(error_code(&evs).as_deref(), Some("relay_shutdown"), "{evs:?}");
    assert_eq!(evs.last().unwrap().data, "[DONE]");
    // The drain timeout and a batch or two of the holder's writer, with room for a loaded
    // machine; a lapsed lease would be 6 s and more.
    assert!(ended < Duration::from_millis(4500), "the reader elsewhere ended {ended:?} after SIGTERM");
    let (status, _) = exited(&mut holder, Duration::from_secs(10)).await;
    assert!(status.success(), "{status:?}");
}

/// The relay binary on `port` (which it must bind), in front of `upstream`.
async fn spawn_on(port: u16, upstream: &str) -> RelayProcess {
    let child = Command::new(env!("CARGO_BIN_EXE_chunkwise-relay"))
        .env_clear()
        .env("PORT", port.to_string())
        .env("UPSTREAM_BASE_URL", format!("{upstream}/v1"))
        .env("UPSTREAM_MODEL", "m")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut relay = RelayProcess { child, base: format!("http://127.0.0.1:{port}") };
    let base = relay.base.clone();
    let healthy = || async {
        let ok = client().get(format!("{base}/healthz")).send().await.is_ok_and(|r| r.status() == 200);
        ok.then_some(())
    };
    until(Duration::from_secs(10), Duration::from_millis(50), "the new relay did not start", healthy).await;
    assert!(relay.child.try_wait().unwrap().is_none(), "the new relay exited (port taken?)");
    relay
}

/// The listeners close when the drain begins, so a new process can take the port at once
/// (a deploy that starts the new relay before the old one has finished).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_relay_takes_the_port_while_the_old_one_drains() {
    let (script, expected) = numbered(30, 50);
    let mock = Mock::start(script).await;
    let port = free_port();
    let mut old = spawn_on(port, &mock.url()).await;
    let resp = fresh().post(format!("{}/v1/chat/completions", old.base)).json(&chat("hi", true)).send().await;
    let mut sse = Sse::new(resp.unwrap());
    let first = vec![sse.next().await.unwrap(), sse.next().await.unwrap()];
    signal(&old, "TERM");
    refused(&old.base).await;
    let new = spawn_on(port, &mock.url()).await;
    assert!(old.child.try_wait().unwrap().is_none(), "the old relay did not wait for its stream");
    let resp = fresh().post(format!("{}/v1/chat/completions", new.base)).json(&chat("hi", true)).send().await;
    let resp = resp.unwrap();
    assert_eq!(resp.status(), 200);
    let (old_rest, new_evs) = tokio::join!(sse.all(), events(resp));
    let old_evs: Vec<Ev> = first.into_iter().chain(old_rest).collect();
    assert_eq!(content(&old_evs), expected);
    assert_eq!(content(&new_evs), expected);
    let (status, _) = exited(&mut old, Duration::from_secs(10)).await;
    assert!(status.success(), "{status:?}");
}

/// A SIGTERM as soon as the relay answers (a deploy that stops an instance just started) is
/// a drain like any other: exit status 0, never the default action's 143.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigterm_right_after_the_start_drains() {
    let mock = Mock::start(vec![Step::Begin, openai_delta("first")]).await;
    for _ in 0..10 {
        let mut relay = spawn_relay(&mock.url(), &[("RELAY_WORKER_THREADS", "2")]).await;
        signal(&relay, "TERM");
        let (status, _) = exited(&mut relay, Duration::from_secs(10)).await;
        assert!(status.success(), "{status:?}");
    }
}

/// A client that stops reading a long answer holds the drain up to its timeout, not past it
/// by more than the stated bound (2 s drain timeout + 4 s), and nothing was interrupted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_never_reads_does_not_hold_the_exit_past_the_bound() {
    let piece = "x".repeat(100_000);
    let mut script = vec![Step::Begin];
    script.extend((0..200).map(|_| openai_delta(&piece)));
    script.extend(openai_finish());
    let mock = Mock::start(script).await;
    let mut relay = spawn_relay(&mock.url(), &[("RELAY_DRAIN_TIMEOUT_SECS", "2")]).await;
    let mut s = TcpStream::connect(relay.base.trim_start_matches("http://")).await.unwrap();
    let body = serde_json::to_string(&chat("hi", true)).unwrap();
    let (head, _) = send(&mut s, &raw_post("/v1/chat/completions", &body)).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    // The answer ends upstream while its reader reads no more.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent = Instant::now();
    signal(&relay, "TERM");
    let (status, at) = exited(&mut relay, Duration::from_secs(15)).await;
    assert!(status.success(), "{status:?}");
    let took = at - sent;
    assert!(took >= Duration::from_secs(2), "exited {took:?} after SIGTERM, before the drain timeout");
    assert!(took < Duration::from_secs(6), "exited {took:?} after SIGTERM (drain timeout 2 s)");
    drop(s);
}

/// Without a shared store, an answer whose reader left cannot be resumed once the relay
/// drains (a resume opens a connection, which another instance takes): it does not hold the
/// drain up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_whose_reader_left_does_not_hold_the_drain_without_a_store() {
    let mock = Mock::start(vec![Step::Begin, openai_delta("first"), Step::Hang]).await;
    let env = [("RELAY_DRAIN_TIMEOUT_SECS", "20"), ("RELAY_HEARTBEAT_SECS", "1")];
    let mut relay = spawn_relay(&mock.url(), &env).await;
    let resp = fresh().post(format!("{}/v1/chat/completions", relay.base)).json(&chat("hi", true)).send().await;
    let mut sse = Sse::new(resp.unwrap());
    assert_eq!(content(&[sse.next().await.unwrap(), sse.next().await.unwrap()]), "first");
    drop(sse);
    // The relay sees the reader gone when a heartbeat cannot be written.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let sent = Instant::now();
    signal(&relay, "TERM");
    let (status, at) = exited(&mut relay, Duration::from_secs(25)).await;
    assert!(status.success(), "{status:?}");
    assert!(at - sent < Duration::from_secs(3), "exited {:?} after SIGTERM", at - sent);
    let closed = mock.wait_for(0, Duration::from_secs(3), |s| s.closed_at.is_some()).await;
    assert!(closed.is_some(), "the upstream connection was left open");
}

/// A relay still starting (here, connecting to a Redis that does not answer) stops on
/// SIGTERM, with status 0: it served nothing yet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigterm_while_starting_stops_it() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("redis://{}/0", silent.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut kept = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            kept.push(s);
        }
    });
    let child = Command::new(env!("CARGO_BIN_EXE_chunkwise-relay"))
        .env_clear()
        .env("PORT", free_port().to_string())
        .env("UPSTREAM_BASE_URL", "http://127.0.0.1:9/v1")
        .env("UPSTREAM_MODEL", "m")
        .env("REDIS_URL", &url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut relay = RelayProcess { child, base: String::new() };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(relay.child.try_wait().unwrap().is_none(), "the relay did not wait for Redis");
    let sent = Instant::now();
    signal(&relay, "TERM");
    let (status, at) = exited(&mut relay, Duration::from_secs(10)).await;
    assert!(status.success(), "{status:?}");
    assert!(at - sent < Duration::from_secs(2), "stopped {:?} after SIGTERM", at - sent);
    held.abort();
}
