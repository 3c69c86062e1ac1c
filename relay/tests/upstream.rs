//! The relay against a scripted mock upstream on loopback: the normal stream, each way an
//! upstream fails, and the native Anthropic and Gemini protocols normalized to OpenAI chunks.

mod common;

use std::time::{Duration, Instant};

use chunkwise_relay::config::Provider;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn normal_stream_is_normalized_with_ids_headers_and_usage() {
    let mut script = vec![Step::Begin];
    script.push(send(
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"reasoning_content\":\"think\"}}]}\n\n",
    ));
    script.push(openai_delta("Hel"));
    // One event split inside the UTF-8 of 世 and inside the `data:` line.
    let split = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo 世界\"}}]}\n\n".as_bytes().to_vec();
    let cut = split.iter().position(|&b| b == 0xe4).unwrap() + 1;
    script.push(Step::Send(split[..cut].to_vec()));
    script.push(Step::Send(split[cut..].to_vec()));
    script.extend(openai_finish());
    let mock = Mock::start(script).await;
    let base = relay(config_for(&mock.url())).await;

    let resp = post(&base, "/v1/chat/completions", &chat("hi", true)).await;
    assert_eq!(resp.status(), 200);
    let h = resp.headers().clone();
    assert_eq!(h["content-type"], "text/event-stream; charset=utf-8");
    assert_eq!(h["cache-control"], "no-cache");
    assert_eq!(h["x-accel-buffering"], "no");
    let gen_id = h["x-chunkwise-generation"].to_str().unwrap().to_string();
    let evs = events(resp).await;
    assert_sequential(&evs, 1);
    assert_eq!(content(&evs), "Hello 世界");
    assert_eq!(reasoning(&evs), "think");
    assert_eq!(evs[0].json()["choices"][0]["delta"]["role"], "assistant");
    for e in &evs[..evs.len() - 1] {
        assert_eq!(e.json()["id"], gen_id.as_str(), "{e:?}");
        assert_eq!(e.json()["object"], "chat.completion.chunk");
    }
    let finish: Vec<_> =
        evs.iter().filter_map(|e| e.json()["choices"][0]["finish_reason"].as_str().map(String::from)).collect();
    assert_eq!(finish, ["stop"]);
    let usage = &evs[evs.len() - 2].json()["usage"];
    assert_eq!(usage["prompt_tokens"], 9);
    assert_eq!(usage["total_tokens"], 13);
    assert_eq!(evs.last().unwrap().data, "[DONE]");

    // What the upstream received: the server-side key, the configured model, a stream.
    let seen = &mock.seen()[0];
    assert!(seen.head.starts_with("POST /v1/chat/completions "), "{}", seen.head);
    assert!(seen.head.to_ascii_lowercase().contains("authorization: bearer sk-test"));
    let body: serde_json::Value = serde_json::from_str(&seen.body).unwrap();
    assert_eq!(body["model"], "up-model");
    assert_eq!(body["stream"], true);
    assert_eq!(body["messages"][0]["content"], "hi");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_streaming_request_gets_one_completion() {
    let mut script = vec![Step::Begin, openai_delta("one "), openai_delta("two")];
    script.extend(openai_finish());
    let mock = Mock::start(script).await;
    let base = relay(config_for(&mock.url())).await;
    let resp = post(&base, "/v1/chat/completions", &chat("hi", false)).await;
    assert_eq!(resp.status(), 200);
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["choices"][0]["message"]["content"], "one two");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["usage"]["completion_tokens"], 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_before_the_stream_is_an_http_status() {
    let limited = Mock::start(vec![Step::Respond(
        429,
        vec![("retry-after", "7".into())],
        r#"{"error":{"message":"You exceeded your quota","type":"requests","code":"rate_limit_exceeded"}}"#.into(),
    )])
    .await;
    let base = relay(config_for(&limited.url())).await;
    let resp = post(&base, "/v1/chat/completions", &chat("hi", true)).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "7");
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "upstream_rate_limited");
    // The upstream's own words are not forwarded (they can quote the key); its code is.
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains("429") && message.contains("rate_limit_exceeded"), "{v}");
    assert!(!message.contains("You exceeded your quota"), "{v}");

    let denied =
        Mock::start(vec![Step::Respond(401, vec![], r#"{"error":{"message":"Incorrect API key provided"}}"#.into())])
            .await;
    let base = relay(config_for(&denied.url())).await;
    let resp = post(&base, "/v1/chat/completions", &chat("hi", true)).await;
    assert_eq!(resp.status(), 502);
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "upstream_auth");
    assert_eq!(v["error"]["type"], "upstream_error");
    assert!(v["error"]["message"].as_str().unwrap().contains("401"), "{v}");
    assert!(!v["error"]["message"].as_str().unwrap().contains("Incorrect API key"), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_mid_stream_is_an_event_then_done() {
    let mock = Mock::start(vec![
        Step::Begin,
        openai_delta("partial"),
        send("data: {\"error\":{\"message\":\"The server had an error\",\"type\":\"server_error\",\"code\":\"overloaded\"}}\n\n"),
        Step::End,
    ])
    .await;
    let base = relay(config_for(&mock.url())).await;
    let resp = post(&base, "/v1/chat/completions", &chat("hi", true)).await;
    assert_eq!(resp.status(), 200);
    let evs = events(resp).await;
    assert_sequential(&evs, 1);
    assert_eq!(content(&evs), "partial");
    let err = evs.iter().find(|e| e.json().get("error").is_some()).expect("an error event").json();
    assert_eq!(
        err["error"]["message"],
        "the upstream reported an error mid-stream (type server_error, code overloaded)"
    );
    assert_eq!(err["error"]["type"], "server_error");
    assert_eq!(err["error"]["code"], "overloaded");
    assert_eq!(evs.last().unwrap().data, "[DONE]");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_that_hangs_hits_the_first_byte_and_idle_timeouts() {
    let silent = Mock::start(vec![Step::Hang]).await;
    let mut c = config_for(&silent.url());
    c.upstream.first_byte_timeout_ms = 300;
    let base = relay(c).await;
    let t = Instant::now();
    let resp = post(&base, "/v1/chat/completions", &chat("hi", true)).await;
    assert_eq!(resp.status(), 504);
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "upstream_first_byte_timeout");
    assert!(v["error"]["message"].as_str().unwrap().contains("300 ms"), "{v}");

    let stalls = Mock::start(vec![Step::Begin, openai_delta("so far"), Step::Hang]).await;
    let mut c = config_for(&stalls.url());
    c.upstream.idle_timeout_ms = 300;
    let base = relay(c).await;
    let t = Instant::now();
    let evs = events(post(&base, "/v1/chat/completions", &chat("hi", true)).await).await;
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert_eq!(content(&evs), "so far");
    let err = evs.iter().find(|e| e.json().get("error").is_some()).expect("an error event").json();
    assert_eq!(err["error"]["code"], "upstream_idle_timeout");
    assert_eq!(evs.last().unwrap().data, "[DONE]");
    // The relay gave up on the stalled upstream: it closed the connection.
    assert!(stalls.wait_for(0, Duration::from_secs(2), |s| s.closed_at.is_some()).await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_upstream_and_connect_timeout_are_distinct_errors() {
    // A port with nothing listening: refused at once.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let base = relay(config_for(&format!("http://127.0.0.1:{port}"))).await;
    let resp = post(&base, "/v1/chat/completions", &chat("hi", true)).await;
    assert_eq!(resp.status(), 502);
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "upstream_unreachable");

    // A listener whose accept queue is full: the SYN is dropped and connect() waits.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..4 {
        if let Ok(Ok(s)) = tokio::time::timeout(Duration::from_millis(200), tokio::net::TcpStream::connect(addr)).await
        {
            fillers.push(s);
        }
    }
    let mut c = config_for(&format!("http://{addr}"));
    c.upstream.connect_timeout_ms = 300;
    let base = relay(c).await;
    let resp = post(&base, "/v1/chat/completions", &chat("hi", true)).await;
    assert_eq!(resp.status(), 504);
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "upstream_connect_timeout", "{v}");
    drop(listener);
}

/// An answer whose upstream went away after `text`: that text in order, an
/// `upstream_disconnected` error event, then `[DONE]`.
fn assert_cut_short(evs: &[Ev], text: &str) {
    assert_sequential(evs, 1);
    assert_eq!(content(evs), text);
    let err = evs.iter().find(|e| e.json().get("error").is_some()).expect("an error event").json();
    assert_eq!(err["error"]["code"], "upstream_disconnected");
    assert_eq!(evs.last().unwrap().data, "[DONE]");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_that_disconnects_mid_stream_is_an_error_event() {
    let mock = Mock::start(vec![Step::Begin, openai_delta("half "), openai_delta("an answer"), Step::Drop]).await;
    let base = relay(config_for(&mock.url())).await;
    let evs = events(post(&base, "/v1/chat/completions", &chat("hi", true)).await).await;
    assert_cut_short(&evs, "half an answer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_stream_is_normalized() {
    let ev = |name: &str, data: &str| send(format!("event: {name}\ndata: {data}\n\n"));
    let mock = Mock::start(vec![
        Step::Begin,
        ev("message_start", r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-x","usage":{"input_tokens":21,"output_tokens":1}}}"#),
        ev("content_block_start", r#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}"#),
        ev("content_block_delta", r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Let me see."}}"#),
        ev("content_block_stop", r#"{"type":"content_block_stop","index":0}"#),
        ev("content_block_start", r#"{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}"#),
        ev("ping", r#"{"type":"ping"}"#),
        ev("content_block_delta", r#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"你好，"}}"#),
        ev("content_block_delta", r#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"world"}}"#),
        ev("content_block_stop", r#"{"type":"content_block_stop","index":1}"#),
        ev("message_delta", r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}}"#),
        ev("message_stop", r#"{"type":"message_stop"}"#),
        Step::End,
    ])
    .await;
    let mut c = config_for(&mock.url());
    c.upstream.kind = Provider::Anthropic;
    c.upstream.base_url = mock.url();
    c.upstream.model = "claude-x".into();
    let base = relay(c).await;
    let body = serde_json::json!({"stream": true, "messages": [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]});
    let resp = post(&base, "/v1/chat/completions", &body).await;
    assert_eq!(resp.status(), 200);
    let evs = events(resp).await;
    assert_sequential(&evs, 1);
    assert_eq!(reasoning(&evs), "Let me see.");
    assert_eq!(content(&evs), "你好，world");
    assert!(evs.iter().any(|e| e.json()["choices"][0]["finish_reason"] == "stop"));
    let usage = evs.iter().find_map(|e| e.json().get("usage").cloned()).unwrap();
    assert_eq!(usage, serde_json::json!({"prompt_tokens":21,"completion_tokens":15,"total_tokens":36}));
    assert_eq!(evs.last().unwrap().data, "[DONE]");

    let seen = &mock.seen()[0];
    assert!(seen.head.starts_with("POST /v1/messages "), "{}", seen.head);
    let head = seen.head.to_ascii_lowercase();
    assert!(head.contains("x-api-key: sk-test") && head.contains("anthropic-version: 2023-06-01"), "{head}");
    let sent: serde_json::Value = serde_json::from_str(&seen.body).unwrap();
    assert_eq!(sent["system"], "Be brief.");
    assert_eq!(sent["messages"].as_array().unwrap().len(), 1);
    assert_eq!(sent["model"], "claude-x");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_stream_is_normalized() {
    let data = |d: &str| send(format!("data: {d}\r\n\r\n"));
    let mock = Mock::start(vec![
        Step::Begin,
        data(r#"{"candidates":[{"content":{"parts":[{"text":"Thinking it over","thought":true}],"role":"model"},"index":0}]}"#),
        data(r#"{"candidates":[{"content":{"parts":[{"text":"Hello "}],"role":"model"},"index":0}]}"#),
        data(r#"{"candidates":[{"content":{"parts":[{"text":"from Gemini ✨"}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":4,"candidatesTokenCount":6,"totalTokenCount":10}}"#),
        Step::End,
    ])
    .await;
    let mut c = config_for(&mock.url());
    c.upstream.kind = Provider::Gemini;
    c.upstream.base_url = mock.url();
    c.upstream.model = "gemini-x".into();
    let base = relay(c).await;
    let resp = post(&base, "/v1/chat/completions", &chat("hi", true)).await;
    assert_eq!(resp.status(), 200);
    let evs = events(resp).await;
    assert_sequential(&evs, 1);
    assert_eq!(reasoning(&evs), "Thinking it over");
    assert_eq!(content(&evs), "Hello from Gemini ✨");
    assert!(evs.iter().any(|e| e.json()["choices"][0]["finish_reason"] == "stop"));
    let usage = evs.iter().find_map(|e| e.json().get("usage").cloned()).unwrap();
    assert_eq!(usage["total_tokens"], 10);
    assert_eq!(evs.last().unwrap().data, "[DONE]");
    let seen = &mock.seen()[0];
    assert!(seen.head.starts_with("POST /v1beta/models/gemini-x:streamGenerateContent?alt=sse "), "{}", seen.head);
    assert!(seen.head.to_ascii_lowercase().contains("x-goog-api-key: sk-test"));
}

/// An HTTP/2 (h2c) upstream: deltas every `ms`, and a flag raised when the relay drops the
/// stream (RST_STREAM), since with HTTP/2 a cancel resets the stream, not the connection.
async fn h2_upstream(deltas: usize, ms: u64) -> (String, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    struct Dropped(Arc<AtomicBool>);
    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let dropped = Arc::new(AtomicBool::new(false));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let flag = dropped.clone();
    tokio::spawn(async move {
        let (sock, _) = listener.accept().await.unwrap();
        let service = hyper::service::service_fn(move |_req: hyper::Request<hyper::body::Incoming>| {
            let guard = Dropped(flag.clone());
            async move {
                let events = futures_util::stream::unfold((0usize, guard), move |(i, guard)| async move {
                    if i > deltas {
                        return None;
                    }
                    let event = if i == deltas {
                        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n".to_string()
                    } else {
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                        format!("data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"h2-{i} \"}}}}]}}\n\n")
                    };
                    Some((Ok::<_, std::convert::Infallible>(bytes::Bytes::from(event)), (i + 1, guard)))
                });
                let res = hyper::Response::builder()
                    .header("content-type", "text/event-stream")
                    .body(axum::body::Body::from_stream(events))
                    .unwrap();
                Ok::<_, std::convert::Infallible>(res)
            }
        });
        let _ = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
            .serve_connection(hyper_util::rt::TokioIo::new(sock), service)
            .await;
    });
    (format!("http://{addr}"), dropped)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_upstream_streams_and_cancel_resets_the_stream() {
    use std::sync::atomic::Ordering;
    let (url, _) = h2_upstream(5, 1).await;
    let mut c = config_for(&url);
    c.upstream.http2 = true;
    let base = relay(c).await;
    let evs = events(post(&base, "/v1/chat/completions", &chat("hi", true)).await).await;
    assert_eq!(content(&evs), "h2-0 h2-1 h2-2 h2-3 h2-4 ");
    assert_eq!(evs.last().unwrap().data, "[DONE]");

    let (url, dropped) = h2_upstream(1000, 50).await;
    let mut c = config_for(&url);
    c.upstream.http2 = true;
    let base = relay(c).await;
    let resp = post(&base, "/v1/chat/completions", &chat("hi", true)).await;
    let id = generation_id(&resp);
    let mut sse = Sse::new(resp);
    for _ in 0..3 {
        sse.next().await.unwrap();
    }
    assert!(!dropped.load(Ordering::SeqCst));
    let t = Instant::now();
    client().post(format!("{base}/v1/chat/stream/{id}/cancel")).send().await.unwrap();
    while !dropped.load(Ordering::SeqCst) {
        assert!(t.elapsed() < Duration::from_secs(1), "the upstream stream was not reset within a second");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// What a scripted HTTP/2 (h2c) upstream answers every stream with.
#[derive(Clone)]
struct H2Answer {
    status: u16,
    headers: Vec<(&'static str, &'static str)>,
    /// The body, each piece its own DATA frame.
    frames: Vec<Vec<u8>>,
    /// After the frames, the whole connection is dropped instead of the stream ending, once
    /// the test says so ([`H2Upstream::drop_one`]): dropped at once, frames the server had
    /// queued but not yet written would be lost with it.
    then_drop: bool,
}

/// What an [`h2_scripted`] upstream saw, and its hand on the connections it drops.
struct H2Upstream {
    /// Per accepted connection, how many streams it carried.
    streams: std::sync::Mutex<Vec<usize>>,
    /// A permit drops one connection whose answer has sent its frames (`then_drop`).
    cut: tokio::sync::Semaphore,
}

impl H2Upstream {
    fn new() -> H2Upstream {
        H2Upstream { streams: Default::default(), cut: tokio::sync::Semaphore::new(0) }
    }

    /// How many connections carried at least one stream, and how many streams in all. A
    /// connection that carried none is left out: when a stream finds the pool's connection
    /// ready the moment its own connect has started, hyper-util finishes that connect in the
    /// background and closes it unused, and on a loaded machine that happens now and then.
    fn used(&self) -> (usize, usize) {
        let streams = self.streams.lock().unwrap();
        (streams.iter().filter(|&&n| n > 0).count(), streams.iter().sum())
    }

    /// Lets one connection that has sent its frames be dropped.
    fn drop_one(&self) {
        self.cut.add_permits(1);
    }
}

/// An h2c upstream that answers every stream with `answer(the user's message)`, on as many
/// connections as come; returns its URL and what it saw.
async fn h2_scripted(
    answer: impl Fn(&str) -> H2Answer + Send + Sync + 'static,
) -> (String, std::sync::Arc<H2Upstream>) {
    use std::sync::Arc;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(H2Upstream::new());
    let upstream = seen.clone();
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let conn = {
                let mut streams = upstream.streams.lock().unwrap();
                streams.push(0);
                streams.len() - 1
            };
            let answer = answer.clone();
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let (kill, killed) = tokio::sync::mpsc::unbounded_channel::<()>();
                let mut killed = killed;
                let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let (answer, kill, upstream) = (answer.clone(), kill.clone(), upstream.clone());
                    upstream.streams.lock().unwrap()[conn] += 1;
                    async move {
                        let body = axum::body::to_bytes(axum::body::Body::new(req.into_body()), 1 << 20).await.unwrap();
                        let request: serde_json::Value = serde_json::from_slice(&body).unwrap();
                        let answer = answer(request["messages"][0]["content"].as_str().unwrap_or(""));
                        let then_drop = answer.then_drop;
                        let frames = answer.frames.into_iter().map(bytes::Bytes::from).collect::<Vec<_>>();
                        let body = futures_util::stream::unfold(
                            (frames.into_iter(), kill, upstream),
                            move |(mut frames, kill, upstream)| async move {
                                // Apart in time, so each piece leaves as a frame of its own.
                                tokio::time::sleep(Duration::from_millis(1)).await;
                                match frames.next() {
                                    Some(f) => Some((Ok::<_, std::convert::Infallible>(f), (frames, kill, upstream))),
                                    None => {
                                        if then_drop {
                                            upstream.cut.acquire().await.unwrap().forget();
                                            let _ = kill.send(());
                                            std::future::pending::<()>().await;
                                        }
                                        None
                                    }
                                }
                            },
                        );
                        let mut res = hyper::Response::builder().status(answer.status);
                        for (k, v) in answer.headers {
                            res = res.header(k, v);
                        }
                        Ok::<_, std::convert::Infallible>(res.body(axum::body::Body::from_stream(body)).unwrap())
                    }
                });
                let serving = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(sock), service);
                tokio::select! {
                    _ = serving => {}
                    _ = killed.recv() => {}
                }
            });
        }
    });
    (format!("http://{addr}"), seen)
}

fn h2_config(url: &str, connections: usize) -> chunkwise_relay::config::Config {
    let mut c = config_for(url);
    c.upstream.http2 = true;
    c.upstream.http2_connections = connections;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_upstream_any_split_into_frames_gives_the_same_answer() {
    let body = concat!(
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"reasoning_content\":\"想\"}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello 世界 🌏\"}}]}\r\n\r\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
        "data: [DONE]\n\n",
    )
    .as_bytes();
    // Every cut position (one cut per answer, many answers at once over two connections),
    // and every byte its own frame.
    // The user's message names the cut: a position, or 0 for every byte its own frame.
    let (url, _) = h2_scripted(move |cut| {
        let cut: usize = cut.parse().unwrap();
        let frames = if cut == 0 {
            body.iter().map(|b| vec![*b]).collect()
        } else {
            vec![body[..cut].to_vec(), body[cut..].to_vec()]
        };
        H2Answer { status: 200, headers: vec![], frames, then_drop: false }
    })
    .await;
    let mut c = h2_config(&url, 2);
    c.limits.per_ip_streams = 1000;
    let base = relay(c).await;
    let mut answers = Vec::new();
    for cut in 0..body.len() {
        let base = base.clone();
        answers.push(tokio::spawn(async move {
            events(post(&base, "/v1/chat/completions", &chat(&cut.to_string(), true)).await).await
        }));
    }
    for answer in answers {
        let evs = answer.await.unwrap();
        assert_sequential(&evs, 1);
        assert_eq!(content(&evs), "Hello 世界 🌏");
        assert_eq!(reasoning(&evs), "想");
        assert_eq!(evs.last().unwrap().data, "[DONE]");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_upstream_streams_share_connections_and_one_that_drops_is_made_again() {
    let delta = |s: &str| format!("data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{s}\"}}}}]}}\n\n");
    let mut frames: Vec<Vec<u8>> = (0..20).map(|i| delta(&format!("{i} ")).into_bytes()).collect();
    frames.push(
        b"data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n".to_vec(),
    );
    let (url, upstream) =
        h2_scripted(move |_| H2Answer { status: 200, headers: vec![], frames: frames.clone(), then_drop: false }).await;
    let base = relay(h2_config(&url, 3)).await;
    let expected: String = (0..20).map(|i| format!("{i} ")).collect();
    let answers: Vec<_> = (0..30)
        .map(|_| {
            let base = base.clone();
            tokio::spawn(async move { events(post(&base, "/v1/chat/completions", &chat("hi", true)).await).await })
        })
        .collect();
    for answer in answers {
        let evs = answer.await.unwrap();
        assert_sequential(&evs, 1);
        assert_eq!(content(&evs), expected);
        assert_eq!(evs.last().unwrap().data, "[DONE]");
    }
    // Thirty answers at once went over the three connections, not one each.
    assert_eq!(upstream.used(), (3, 30));

    // The connection drops after two deltas: those streams end with an error, and the next
    // answer goes out on a new connection.
    let frames = vec![delta("half ").into_bytes(), delta("an answer").into_bytes()];
    // The connection is dropped once the relay has passed on both deltas, so that none is
    // lost in the upstream's own send buffer.
    let (url, upstream) =
        h2_scripted(move |_| H2Answer { status: 200, headers: vec![], frames: frames.clone(), then_drop: true }).await;
    let base = relay(h2_config(&url, 1)).await;
    for round in 1..=2 {
        let mut sse = Sse::new(post(&base, "/v1/chat/completions", &chat("hi", true)).await);
        let mut evs = Vec::new();
        while content(&evs) != "half an answer" {
            evs.push(sse.next().await.expect("both deltas before the drop"));
        }
        upstream.drop_one();
        evs.extend(sse.all().await);
        assert_cut_short(&evs, "half an answer");
        assert_eq!(upstream.used(), (round, round));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_upstream_errors_before_the_stream_are_http_statuses() {
    let body = br#"{"error":{"message":"You exceeded your quota","type":"requests","code":"rate_limit_exceeded"}}"#;
    let (url, _) = h2_scripted(|_| H2Answer {
        status: 429,
        headers: vec![("retry-after", "7"), ("content-type", "application/json")],
        frames: vec![body.to_vec()],
        then_drop: false,
    })
    .await;
    let base = relay(h2_config(&url, 2)).await;
    let resp = post(&base, "/v1/chat/completions", &chat("hi", true)).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "7");
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "upstream_rate_limited");
    assert!(v["error"]["message"].as_str().unwrap().contains("rate_limit_exceeded"), "{v}");

    // Nothing listening: refused, and the next answer tries again (and is refused again).
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let base = relay(h2_config(&format!("http://127.0.0.1:{port}"), 2)).await;
    for _ in 0..3 {
        let resp = post(&base, "/v1/chat/completions", &chat("hi", true)).await;
        assert_eq!(resp.status(), 502);
        let v: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(v["error"]["code"], "upstream_unreachable");
    }

    // Headers, then nothing: the first-byte timeout counts to the response head.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (sock, _) = listener.accept().await.unwrap();
        let service = hyper::service::service_fn(|_req: hyper::Request<hyper::body::Incoming>| async {
            std::future::pending::<()>().await;
            Ok::<_, std::convert::Infallible>(hyper::Response::new(axum::body::Body::empty()))
        });
        let _ = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
            .serve_connection(hyper_util::rt::TokioIo::new(sock), service)
            .await;
    });
    let mut c = h2_config(&format!("http://{addr}"), 1);
    c.upstream.first_byte_timeout_ms = 300;
    let base = relay(c).await;
    let t = Instant::now();
    let resp = post(&base, "/v1/chat/completions", &chat("hi", true)).await;
    assert_eq!(resp.status(), 504);
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "upstream_first_byte_timeout");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
}
