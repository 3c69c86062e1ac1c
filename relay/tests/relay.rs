//! The relay's own surface: limits, client tokens, the demo model, chaos mode, plain-text
//! mode, health, metrics, CORS and the static H5 page.

mod common;

use std::time::Duration;

use chunkwise_relay::demo::{self, Lang};
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn error_of(resp: reqwest::Response) -> (u16, serde_json::Value) {
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_reject_with_clear_messages() {
    let mut c = demo_config();
    c.limits.max_body_bytes = 2048;
    c.limits.max_messages = 2;
    c.limits.max_message_chars = 100;
    c.limits.max_tokens = 500;
    let base = relay(c).await;

    let big = chat(&"x".repeat(4000), true);
    let (status, v) = error_of(post(&base, "/v1/chat/completions", &big).await).await;
    assert_eq!(status, 413);
    assert_eq!(v["error"]["code"], "body_too_large");
    assert!(v["error"]["message"].as_str().unwrap().contains("2048 bytes"), "{v}");

    let many = serde_json::json!({"messages": [
        {"role":"user","content":"a"},{"role":"assistant","content":"b"},{"role":"user","content":"c"}]});
    let (status, v) = error_of(post(&base, "/v1/chat/completions", &many).await).await;
    assert_eq!((status, v["error"]["code"].as_str()), (400, Some("too_many_messages")));
    assert!(v["error"]["message"].as_str().unwrap().contains("limit of 2"), "{v}");

    let (status, v) = error_of(post(&base, "/v1/chat/completions", &chat(&"长".repeat(101), true)).await).await;
    assert_eq!((status, v["error"]["code"].as_str()), (400, Some("message_too_long")));

    let tokens = serde_json::json!({"max_tokens": 501, "messages": [{"role":"user","content":"a"}]});
    let (status, v) = error_of(post(&base, "/v1/chat/completions", &tokens).await).await;
    assert_eq!((status, v["error"]["code"].as_str()), (400, Some("max_tokens_too_large")));
    assert!(
        v["error"]["message"].as_str().unwrap().contains("501")
            && v["error"]["message"].as_str().unwrap().contains("500")
    );

    let resp = client()
        .post(format!("{base}/v1/chat/completions"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let (status, v) = error_of(resp).await;
    assert_eq!((status, v["error"]["code"].as_str()), (400, Some("invalid_json")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_outside_the_allowed_list_are_refused() {
    let mock = Mock::start(vec![Step::Hang]).await;
    let mut c = config_for(&mock.url());
    c.upstream.models = vec!["up-small".into()];
    let base = relay(c).await;
    let body = serde_json::json!({"model": "gpt-5-pro", "messages": [{"role":"user","content":"a"}]});
    let (status, v) = error_of(post(&base, "/v1/chat/completions", &body).await).await;
    assert_eq!((status, v["error"]["code"].as_str()), (400, Some("model_not_allowed")));
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains("gpt-5-pro") && msg.contains("up-model") && msg.contains("up-small"), "{msg}");
    // `demo` always answers, even with an upstream configured, without touching it.
    let body = serde_json::json!({"model": "demo", "stream": false, "messages": [{"role":"user","content":"hi"}]});
    let resp = post(&base, "/v1/chat/completions", &body).await;
    assert_eq!(resp.status(), 200);
    assert!(mock.seen().is_empty());
    let v: serde_json::Value = client().get(format!("{base}/v1/models")).send().await.unwrap().json().await.unwrap();
    let ids: Vec<&str> = v["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["up-model", "up-small", "demo"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_rate_and_concurrent_streams_are_limited_per_ip() {
    let mut c = demo_config();
    c.limits.per_ip_per_minute = 60;
    c.limits.per_ip_burst = 3;
    let base = relay(c).await;
    for _ in 0..3 {
        assert_eq!(post(&base, "/v1/chat/completions", &chat("hi", false)).await.status(), 200);
    }
    let resp = post(&base, "/v1/chat/completions", &chat("hi", false)).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "1");
    let (_, v) = error_of(resp).await;
    assert_eq!(v["error"]["code"], "rate_limited");
    assert!(v["error"]["message"].as_str().unwrap().contains("60 per minute"), "{v}");

    let mut c = demo_config();
    c.limits.per_ip_streams = 1;
    c.demo.token_ms = 50;
    let base = relay(c).await;
    let first = post(&base, "/v1/chat/completions", &chat("hi", true)).await;
    assert_eq!(first.status(), 200);
    let resp = post(&base, "/v1/chat/completions", &chat("hi", true)).await;
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().contains_key("retry-after"));
    let (_, v) = error_of(resp).await;
    assert_eq!(v["error"]["code"], "too_many_streams");
    // Cancelling the first frees the slot.
    let id = generation_id(&first);
    client().post(format!("{base}/v1/chat/stream/{id}/cancel")).send().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(post(&base, "/v1/chat/completions", &chat("hi", true)).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_tokens_static_and_signed() {
    let mut c = demo_config();
    c.auth.tokens = vec!["team-token".into()];
    c.auth.hmac_secret = "s3cret".into();
    let base = relay(c).await;
    let (status, v) = error_of(post(&base, "/v1/chat/completions", &chat("hi", false)).await).await;
    assert_eq!((status, v["error"]["code"].as_str()), (401, Some("invalid_client_token")));
    let with = |token: &str| {
        client().post(format!("{base}/v1/chat/completions")).bearer_auth(token).json(&chat("hi", true)).send()
    };
    assert_eq!(with("wrong").await.unwrap().status(), 401);
    assert_eq!(with("team-token").await.unwrap().status(), 200);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let alice = chunkwise_relay::auth::sign("s3cret", "alice", now + 60);
    let expired = chunkwise_relay::auth::sign("s3cret", "alice", now - 1);
    assert_eq!(with(&expired).await.unwrap().status(), 401);
    let resp = with(&alice).await.unwrap();
    assert_eq!(resp.status(), 200);
    let id = generation_id(&resp);
    // Only alice may resume or cancel alice's generation.
    let bob = chunkwise_relay::auth::sign("s3cret", "bob", now + 60);
    let url = format!("{base}/v1/chat/stream/{id}");
    assert_eq!(client().get(&url).bearer_auth(&bob).send().await.unwrap().status(), 404);
    assert_eq!(client().post(format!("{url}/cancel")).bearer_auth(&bob).send().await.unwrap().status(), 404);
    assert_eq!(client().get(format!("{url}?token={alice}")).send().await.unwrap().status(), 200);
    // Health and metrics stay open for probes.
    assert_eq!(client().get(format!("{base}/healthz")).send().await.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_model_streams_its_markdown_answer_with_reasoning() {
    let base = relay(demo_config()).await;
    let resp = post(&base, "/v1/chat/completions", &chat("小程序怎么做流式输出？", true)).await;
    assert_eq!(resp.status(), 200);
    let evs = events(resp).await;
    assert_sequential(&evs, 1);
    let (r, a) = demo::answer(Lang::Zh);
    assert_eq!(reasoning(&evs), r);
    assert_eq!(content(&evs), a);
    for needle in ["```js", "| --- |", "🚀", "## "] {
        assert!(a.contains(needle));
    }
    // Reasoning comes first, as with a reasoning model.
    let first_content = evs.iter().position(|e| !e.content().is_empty()).unwrap();
    let last_reasoning = evs.iter().rposition(|e| !e.reasoning().is_empty()).unwrap();
    assert!(last_reasoning < first_content);
    assert!(evs.len() > 200, "token-sized deltas: {}", evs.len());
    assert_eq!(evs[1].json()["model"], "demo");

    // English question, English answer; any model name works with no upstream.
    let body = serde_json::json!({"model": "gpt-4o", "stream": false, "messages": [{"role":"user","content":"How?"}]});
    let v: serde_json::Value = post(&base, "/v1/chat/completions", &body).await.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], demo::answer(Lang::En).1);
    assert_eq!(v["choices"][0]["message"]["reasoning_content"], demo::answer(Lang::En).0);

    // max_tokens is honoured.
    let body = serde_json::json!({"max_tokens": 5, "stream": false, "messages": [{"role":"user","content":"hi"}]});
    let v: serde_json::Value = post(&base, "/v1/chat/completions", &body).await.json().await.unwrap();
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(v["usage"]["completion_tokens"], 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_model_keeps_a_realistic_pace() {
    let mut c = demo_config();
    c.demo.token_ms = 20;
    let base = relay(c).await;
    let body = serde_json::json!({"max_tokens": 20, "stream": true, "messages": [{"role":"user","content":"hi"}]});
    let t = std::time::Instant::now();
    let evs = events(post(&base, "/v1/chat/completions", &body).await).await;
    let took = t.elapsed();
    assert_eq!(evs.iter().filter(|e| !e.reasoning().is_empty()).count(), 20);
    assert!(took >= Duration::from_millis(350) && took < Duration::from_secs(3), "{took:?}");
}

/// Raw HTTP/1.1 over TCP, returning each read as it arrived (the body still chunk-encoded).
async fn raw_reads(base: &str, path: &str, body: &str, extra: &str) -> Vec<Vec<u8>> {
    let addr = base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n{extra}\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut reads = Vec::new();
    let mut buf = vec![0u8; 65536];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(20), s.read(&mut buf)).await.unwrap().unwrap();
        if n == 0 {
            return reads;
        }
        reads.push(buf[..n].to_vec());
    }
}

/// Removes HTTP chunked framing, keeping where each chunk ended in body coordinates. Chaos
/// mode writes every piece as a body frame of its own, which HTTP/1.1 sends as a chunk of its
/// own; how those chunks fall into the client's reads depends on how fast the reader is (a
/// reader starved of CPU reads several at once), so the tests look at the chunks.
fn dechunk(reads: &[Vec<u8>]) -> (Vec<u8>, Vec<usize>) {
    let all: Vec<u8> = reads.concat();
    let head_end = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let mut body = Vec::new();
    let mut ends = Vec::new();
    let mut i = head_end;
    while i < all.len() {
        let line_end = i + all[i..].windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(std::str::from_utf8(&all[i..line_end]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            break;
        }
        let data = line_end + 2;
        body.extend_from_slice(&all[data..data + size]);
        ends.push(body.len());
        i = data + size + 2;
    }
    let cuts = ends.into_iter().filter(|&c| c < body.len()).collect();
    (body, cuts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_mode_cuts_inside_characters_and_lines() {
    let base = relay(demo_config()).await;
    // 120 tokens: the reasoning and the start of the answer, enough for thousands of cuts.
    let request =
        serde_json::json!({"max_tokens": 120, "stream": true, "messages": [{"role":"user","content":"你好"}]});
    let calm = events(post(&base, "/v1/chat/completions", &request).await).await;
    let body = request.to_string();
    let reads = raw_reads(&base, "/v1/chat/completions?chaos=1", &body, "").await;
    let (sse, cuts) = dechunk(&reads);
    assert!(cuts.len() > 200, "only {} separate writes", cuts.len());
    let longest = cuts.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
    assert!(cuts[0] <= 7 && longest <= 7, "a write of more than 7 bytes ({longest})");
    let inside_char = cuts.iter().filter(|&&c| (sse[c] & 0xC0) == 0x80).count();
    let inside_line = cuts.iter().filter(|&&c| sse[c - 1] != b'\n').count();
    assert!(inside_char > 0 && inside_line > 0, "cuts inside characters: {inside_char}, inside lines: {inside_line}");
    // The bytes themselves are unchanged: decoding gives the same answer as without chaos.
    let mut d =
        chunkwise::StreamDecoder::new(chunkwise::Options { format: chunkwise::Format::OpenAi, ..Default::default() });
    let (mut text, mut thought) = (String::new(), String::new());
    for w in sse.chunks(3) {
        let u = d.push(w);
        text.push_str(&u.text);
        thought.push_str(&u.reasoning);
    }
    let u = d.finish();
    text.push_str(&u.text);
    thought.push_str(&u.reasoning);
    assert_eq!((text, thought), (content(&calm), reasoning(&calm)));
    assert!(!content(&calm).is_empty());

    // The header form works the same.
    let reads = raw_reads(&base, "/v1/chat/completions?format=text", &body, "x-chunkwise-chaos: 1\r\n").await;
    let (plain, cuts) = dechunk(&reads);
    let longest = cuts.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
    assert!(cuts.len() > 10 && longest <= 7, "{} writes, the longest {longest} bytes", cuts.len());
    assert_eq!(String::from_utf8(plain).unwrap(), content(&calm));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_text_streams_the_bare_answer_and_resumes_by_offset() {
    let base = relay(demo_config()).await;
    let resp = post(&base, "/v1/chat/completions?format=text", &chat("hello", true)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/plain; charset=utf-8");
    let id = generation_id(&resp);
    let text = resp.text().await.unwrap();
    let answer = demo::answer(Lang::En).1;
    assert_eq!(text, answer);
    let offset = answer.find("🚀").unwrap() + 2; // inside the emoji's four bytes
    let resp = client().get(format!("{base}/v1/chat/stream/{id}?format=text&offset={offset}")).send().await.unwrap();
    let rest = resp.bytes().await.unwrap();
    assert_eq!(&rest[..], &answer.as_bytes()[offset..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_metrics_cors_and_static_page() {
    let dir = std::env::temp_dir().join(format!("relay-static-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("pkg/web")).unwrap();
    std::fs::create_dir_all(dir.join("h5")).unwrap();
    std::fs::write(dir.join("h5/index.html"), "<!doctype html><title>chat</title>").unwrap();
    std::fs::write(dir.join("pkg/web/chunkwise.js"), "export {}").unwrap();
    let mut c = demo_config();
    c.server.static_dir = Some(dir.join("h5"));
    c.server.pkg_dir = Some(dir.join("pkg"));
    let base = relay(c).await;

    let page = client().get(format!("{base}/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("<title>chat</title>"));
    let js = client().get(format!("{base}/pkg/web/chunkwise.js")).send().await.unwrap();
    assert_eq!(js.status(), 200);
    assert_eq!(client().get(format!("{base}/nope.html")).send().await.unwrap().status(), 404);

    let v: serde_json::Value = client().get(format!("{base}/healthz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["status"], "ok");
    assert_eq!(v["upstream"], "demo");

    events(post(&base, "/v1/chat/completions", &chat("hi", true)).await).await;
    let m = client().get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    for name in [
        "chunkwise_relay_active_generations 0",
        "chunkwise_relay_generations_total 1",
        "chunkwise_relay_time_to_first_token_seconds_count 1",
        "chunkwise_relay_sent_bytes_total",
        "chunkwise_relay_errors_total",
    ] {
        assert!(m.contains(name), "{name} missing from\n{m}");
    }

    let pre = client()
        .request(reqwest::Method::OPTIONS, format!("{base}/v1/chat/completions"))
        .header("origin", "http://localhost:5173")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type,authorization")
        .send()
        .await
        .unwrap();
    assert!(pre.status().is_success());
    assert_eq!(pre.headers()["access-control-allow-origin"], "*");
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_comments_keep_an_idle_stream_open() {
    let mut c = demo_config();
    c.server.heartbeat_secs = 1;
    c.demo.first_token_ms = 1300;
    let base = relay(c).await;
    let body = serde_json::json!({"max_tokens": 1, "stream": true, "messages": [{"role":"user","content":"hi"}]});
    let mut sse = Sse::new(post(&base, "/v1/chat/completions", &body).await);
    while sse.next().await.is_some() {}
    let raw = String::from_utf8(sse.raw.clone()).unwrap();
    assert!(raw.contains(": ping\n\n"), "{raw}");
}

/// A plain-HTTP upstream that keeps its connections: each answer's `[DONE]` comes a moment
/// before the body's terminating chunk. Counts the connections it accepted.
async fn keep_alive_upstream() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        // Bounded: a test makes a few requests.
        for _ in 0..8 {
            let Ok((mut s, _)) = listener.accept().await else { return };
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut tmp = [0u8; 8192];
                for _ in 0..8 {
                    // The head and its content-length body.
                    let end = loop {
                        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break p + 4;
                        }
                        match s.read(&mut tmp).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&tmp[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
                        .unwrap_or(0);
                    while buf.len() < end + len {
                        match s.read(&mut tmp).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&tmp[..n]),
                        }
                    }
                    buf.drain(..end + len);
                    let mut out =
                        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
                            .to_vec();
                    for event in [
                        r#"data: {"choices":[{"index":0,"delta":{"content":"hi"}}]}"#,
                        r#"data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
                        "data: [DONE]",
                    ] {
                        let event = format!("{event}\n\n");
                        out.extend_from_slice(format!("{:x}\r\n{event}\r\n", event.len()).as_bytes());
                    }
                    if s.write_all(&out).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    if s.write_all(b"0\r\n\r\n").await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, accepted)
}

#[tokio::test]
async fn two_answers_in_a_row_use_one_upstream_connection() {
    let (url, accepted) = keep_alive_upstream().await;
    let base = relay(config_for(&url)).await;
    for _ in 0..2 {
        let evs = events(post(&base, "/v1/chat/completions", &chat("hi", true)).await).await;
        assert_eq!(content(&evs), "hi");
        // The relay reads the body's end after [DONE] (the generation ends first).
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1, "the second answer opened a new connection");
}
