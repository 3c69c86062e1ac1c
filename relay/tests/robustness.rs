//! What a slow, stuck, hostile or careless client or upstream must not do: hold memory or
//! connections without bound, lose data silently, or get an answer that is not the JSON
//! error shape.

mod common;

use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn metric(base: &str, name: &str) -> f64 {
    let m = client().get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    m.lines().find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok())).unwrap_or(-1.0)
}

/// Sends raw bytes and reads the whole answer (the relay closes or the 10 s bound ends it).
async fn raw(base: &str, request: &[u8]) -> String {
    let mut s = TcpStream::connect(base.trim_start_matches("http://")).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).to_string()
}

/// The status and the JSON body of a raw answer (content-length or chunked).
fn status_and_json(answer: &str) -> (u16, serde_json::Value) {
    let status = answer.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    let start = body.find('{').unwrap_or(0);
    let end = body.rfind('}').map(|e| e + 1).unwrap_or(0);
    (status, serde_json::from_str(body.get(start..end).unwrap_or("")).unwrap_or(serde_json::Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_request_bodies_hit_a_deadline() {
    let mut c = demo_config();
    c.limits.body_timeout_ms = 1000;
    let base = relay(c).await;
    let t = Instant::now();
    let head = "POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"messages\":";
    let answer = raw(&base, head.as_bytes()).await;
    let (status, v) = status_and_json(&answer);
    assert_eq!(status, 408, "{answer}");
    assert_eq!(v["error"]["code"], "body_timeout");
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());

    // A declared length over the limit is refused before any of the body is read.
    let head = "POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 99999999\r\n\r\n";
    let (status, v) = status_and_json(&raw(&base, head.as_bytes()).await);
    assert_eq!((status, v["error"]["code"].as_str()), (413, Some("body_too_large")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_disconnected_and_its_generation_ends() {
    let mut script = vec![Step::Begin];
    let piece = "字".repeat(3000);
    for _ in 0..2500 {
        script.push(openai_delta(&piece));
    }
    script.push(Step::Hang);
    let mock = Mock::start(script).await;
    let mut c = config_for(&mock.url());
    c.server.write_timeout_secs = 2;
    c.generations.grace_secs = 0.3;
    c.generations.max_log_bytes = 64 << 20;
    let base = relay(c).await;
    let mut s = TcpStream::connect(base.trim_start_matches("http://")).await.unwrap();
    let body = chat("hi", true).to_string();
    let req = raw_post("/v1/chat/completions", &body);
    s.write_all(req.as_bytes()).await.unwrap();
    // Never read. The relay gives up writing, closes, and after the grace period cancels.
    let closed = mock.wait_for(0, Duration::from_secs(12), |s| s.closed_at.is_some()).await;
    assert!(closed.is_some(), "the upstream of a client that never reads is still open");
    assert_eq!(metric(&base, "chunkwise_relay_open_streams").await, 0.0);
    drop(s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_gone_before_the_upstream_answers_is_noticed() {
    let mock = Mock::start(vec![Step::Hang]).await;
    let mut c = config_for(&mock.url());
    c.upstream.first_byte_timeout_ms = 20_000;
    c.generations.grace_secs = 0.2;
    let base = relay(c).await;
    for stream in [true, false] {
        let mut s = TcpStream::connect(base.trim_start_matches("http://")).await.unwrap();
        let body = chat("hi", stream).to_string();
        let req = raw_post("/v1/chat/completions", &body);
        s.write_all(req.as_bytes()).await.unwrap();
        let i = if stream { 0 } else { 1 };
        assert!(mock.wait_for(i, Duration::from_secs(3), |_| true).await.is_some());
        let t = Instant::now();
        drop(s);
        let closed = mock.wait_for(i, Duration::from_secs(5), |s| s.closed_at.is_some()).await;
        assert!(closed.is_some(), "stream={stream}: the upstream request outlived its client");
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_line_over_the_bound_is_an_error_not_a_quiet_stop() {
    let huge = format!(
        "data: {}\n\n",
        serde_json::json!({"choices":[{"index":0,"delta":{"content":"y".repeat(1_200_000)},"finish_reason":null}]})
    );
    let mut script = vec![Step::Begin, openai_delta("before ")];
    script.push(send(huge));
    script.extend(openai_finish());
    let mock = Mock::start(script).await;
    let base = relay(config_for(&mock.url())).await;
    let evs = events(post(&base, "/v1/chat/completions", &chat("hi", true)).await).await;
    let err = evs.iter().find(|e| e.json().get("error").is_some()).expect("an error event");
    assert_eq!(err.json()["error"]["code"], "upstream_event_too_large");
    let finish: Vec<String> =
        evs.iter().filter_map(|e| e.json()["choices"][0]["finish_reason"].as_str().map(String::from)).collect();
    assert_eq!(finish, ["error"]);
    assert_eq!(evs.last().unwrap().data, "[DONE]");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_line_ending_in_the_same_chunk_as_the_end_marker_is_still_an_error() {
    // The oversized event crosses the bound in its last bytes, so the crossing, the finish and
    // `[DONE]` arrive in one read.
    let mut tail = format!(
        "data: {}\n\n",
        serde_json::json!({"choices":[{"index":0,"delta":{"content":"y".repeat(chunkwise::DEFAULT_MAX_BUFFER_BYTES - 40)},"finish_reason":null}]})
    );
    tail.push_str("data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n");
    let mock = Mock::start(vec![Step::Begin, openai_delta("before "), send(tail), Step::End]).await;
    let base = relay(config_for(&mock.url())).await;
    let evs = events(post(&base, "/v1/chat/completions", &chat("hi", true)).await).await;
    let err = evs.iter().find(|e| e.json().get("error").is_some()).expect("an error event, not a quiet stop");
    assert_eq!(err.json()["error"]["code"], "upstream_event_too_large");
    let finish: Vec<String> =
        evs.iter().filter_map(|e| e.json()["choices"][0]["finish_reason"].as_str().map(String::from)).collect();
    assert_eq!(finish, ["error"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_resume_of_a_trimmed_log_is_refused_not_truncated() {
    let mut script = vec![Step::Begin];
    for i in 0..200 {
        script.push(openai_delta(&format!("{i:050}")));
    }
    script.extend(openai_finish());
    let start = || async {
        let mock = Mock::start(script.clone()).await;
        let mut c = config_for(&mock.url());
        c.generations.max_log_bytes = 2048;
        (relay(c).await, mock)
    };
    let (base, _mock) = start().await;
    let resp = post(&base, "/v1/chat/completions", &chat("hi", false)).await;
    let status = resp.status().as_u16();
    let v: serde_json::Value = resp.json().await.unwrap();
    assert!((400..500).contains(&status), "the relay's own bound is not an upstream failure: {status} {v}");
    assert_eq!(v["error"]["code"], "answer_too_long");

    let (base, _mock) = start().await;
    let resp = post(&base, "/v1/chat/completions", &chat("hi", true)).await;
    assert_eq!(resp.status(), 200);
    let id = generation_id(&resp);
    events(resp).await;
    for offset in ["0", "100"] {
        let resp =
            client().get(format!("{base}/v1/chat/stream/{id}?format=text&offset={offset}")).send().await.unwrap();
        assert_eq!(resp.status(), 410, "offset {offset}");
        let v: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(v["error"]["code"], "events_expired");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_positions_past_the_end_are_refused() {
    let mut c = demo_config();
    c.demo.token_ms = 40;
    let base = relay(c).await;
    let resp = post(&base, "/v1/chat/completions", &chat("hi", true)).await;
    let running = generation_id(&resp);
    let quick = {
        let mut c = demo_config();
        c.demo.token_ms = 0;
        c
    };
    let base2 = relay(quick).await;
    let resp2 = post(&base2, "/v1/chat/completions", &chat("hi", true)).await;
    let finished = generation_id(&resp2);
    let all = events(resp2).await;
    let last: u64 = all.last().unwrap().id.parse().unwrap();

    for (base, id) in [(&base2, &finished), (&base, &running)] {
        for q in
            ["after=100000", "after=18446744073709551615", "after=18446744073709551614", "format=text&offset=99999999"]
        {
            let t = Instant::now();
            let resp = tokio::time::timeout(
                Duration::from_secs(3),
                client().get(format!("{base}/v1/chat/stream/{id}?{q}")).send(),
            )
            .await
            .expect("answered at once")
            .unwrap();
            assert_eq!(resp.status(), 400, "{q}");
            let v: serde_json::Value = resp.json().await.unwrap();
            assert_eq!(v["error"]["code"], "invalid_parameter", "{q}");
            assert!(t.elapsed() < Duration::from_secs(2));
        }
        let resp = client().get(format!("{base}/v1/chat/stream/{id}")).header("last-event-id", "99999").send().await;
        assert_eq!(resp.unwrap().status(), 400);
    }
    // The last event itself is a valid position: nothing more, at once.
    let resp = client().get(format!("{base2}/v1/chat/stream/{finished}?after={last}")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_json_whatever_the_layer() {
    let base = relay(demo_config()).await;
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (b"DELETE /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n".to_vec(), 405),
        (b"GET /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n".to_vec(), 405),
        (b"GET /nothing/here HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n".to_vec(), 404),
        (
            b"GET /v1/chat/stream/x?format=a&format=b HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n"
                .to_vec(),
            400,
        ),
        (b"GET /v1/chat/stream/%FF%FE HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n".to_vec(), 400),
        (b"THIS IS NOT HTTP\r\n\r\n".to_vec(), 400),
        (
            format!("GET /v1/models HTTP/1.1\r\nhost: 127.0.0.1\r\nx-big: {}\r\n\r\n", "a".repeat(20_000)).into_bytes(),
            431,
        ),
    ];
    for (request, want) in cases {
        let answer = raw(&base, &request).await;
        let (status, v) = status_and_json(&answer);
        let shown = String::from_utf8_lossy(&request[..request.len().min(60)]).to_string();
        assert_eq!(status, want, "{shown}: {answer}");
        assert!(answer.to_ascii_lowercase().contains("content-type: application/json"), "{shown}: {answer}");
        assert!(v["error"]["message"].is_string() && v["error"]["code"].is_string(), "{shown}: {answer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_mode_is_for_the_demo_model_only() {
    let mut script = vec![Step::Begin];
    for i in 0..30 {
        script.push(openai_delta(&format!("piece {i} ")));
    }
    script.extend(openai_finish());
    let mock = Mock::start(script).await;
    let base = relay(config_for(&mock.url())).await;
    let addr = base.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).await.unwrap();
    let body = chat("hi", true).to_string();
    let req = format!(
        "POST /v1/chat/completions?chaos=1 HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\nx-chunkwise-chaos: 1\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut reads = 0;
    let mut total = 0;
    let mut buf = vec![0u8; 65536];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await.unwrap().unwrap();
        if n == 0 {
            break;
        }
        reads += 1;
        total += n;
    }
    // Chaos cuts into writes of at most 7 bytes: thousands of reads for these ~6 KB.
    assert!(total > 3000, "{total}");
    assert!(reads < total / 40, "{reads} reads for {total} bytes: chaos mode ran on a real upstream");
}
