//! Random requests against the relay (methods, paths, queries, headers, bodies; valid, half
//! valid and garbage), in front of an upstream that puts the key in its error text. For every
//! answer: no 5xx unless the upstream failed, every error is the JSON error shape, and no
//! configured secret appears in any byte. Seeded (`RELAY_FUZZ_SEED`), bounded in count
//! (`RELAY_FUZZ_CASES`, default 1,500) and in time (60 s).

mod common;

use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const KEY: &str = "sk-live-FuzzK3yZYXWVUT9876543210abcdef";
const TOKEN: &str = "fuzz-client-token-0123456789";
const HMAC: &str = "fuzz-hmac-secret-abcdef";

fn pick<'a>(rng: &mut fastrand::Rng, items: &[&'a str]) -> &'a str {
    items[rng.usize(..items.len())]
}

fn junk(rng: &mut fastrand::Rng, max: usize) -> String {
    let alphabet = ["a", "Z", "0", "%", "%FF", "%00", "&", "=", "?", "/", "..", " ", "\"", "字", "🚀", "\\", "{", "}"];
    (0..rng.usize(..max)).map(|_| pick(rng, &alphabet)).collect()
}

fn body(rng: &mut fastrand::Rng) -> Vec<u8> {
    let content = match rng.u8(..4) {
        0 => serde_json::json!("hi"),
        1 => serde_json::json!([{"type":"text","text":"hi"}]),
        2 => serde_json::json!(12),
        _ => serde_json::json!("长".repeat(rng.usize(..50))),
    };
    let mut v = serde_json::json!({
        "model": pick(rng, &["", "demo", "default", "up-model", "gpt-x", "\u{0}"]),
        "stream": rng.bool(),
        "messages": [{"role": pick(rng, &["user", "system", "tool", "assistant", ""]), "content": content}],
    });
    match rng.u8(..8) {
        0 => v["max_tokens"] = serde_json::json!(rng.i64(-5..100_000)),
        1 => v["messages"] = serde_json::json!([]),
        2 => v["temperature"] = serde_json::json!("hot"),
        3 => v["stop"] = serde_json::json!(["\n", 1, null]),
        _ => v["max_tokens"] = serde_json::json!(rng.u32(1..40)),
    }
    let mut bytes = v.to_string().into_bytes();
    match rng.u8(..10) {
        0 => bytes.truncate(rng.usize(..bytes.len())),
        1 => {
            let i = rng.usize(..bytes.len());
            bytes[i] = rng.u8(..);
        }
        2 => bytes = (0..rng.usize(..300)).map(|_| rng.u8(..)).collect(),
        _ => {}
    }
    bytes
}

fn request(rng: &mut fastrand::Rng, now: u64, ids: &[String]) -> Vec<u8> {
    let id = if !ids.is_empty() && rng.bool() { ids[rng.usize(..ids.len())].clone() } else { junk(rng, 12) };
    let path = match rng.u8(..10) {
        0..=3 => "/v1/chat/completions".to_string(),
        4 | 5 => format!("/v1/chat/stream/{id}"),
        6 => format!("/v1/chat/stream/{id}/cancel"),
        7 => pick(rng, &["/v1/models", "/healthz", "/metrics", "/", "/pkg/web/x.js"]).to_string(),
        _ => format!("/{}", junk(rng, 20)),
    };
    let mut query = Vec::new();
    for _ in 0..rng.usize(..4) {
        let k = pick(rng, &["after", "format", "offset", "chaos", "token", "x", "after"]);
        let v = match rng.u8(..4) {
            0 => rng.u64(..).to_string(),
            1 => rng.u8(..40).to_string(),
            2 => pick(rng, &["text", "sse", "1", "-1", "", "18446744073709551616"]).to_string(),
            _ => junk(rng, 8),
        };
        query.push(format!("{k}={v}"));
    }
    let target = if query.is_empty() { path } else { format!("{path}?{}", query.join("&")) };
    let method = pick(rng, &["GET", "POST", "POST", "POST", "OPTIONS", "PUT", "DELETE", "HEAD", "BREW"]);
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n",
        pick(rng, &["127.0.0.1", "localhost"])
    );
    let auth = match rng.u8(..6) {
        0 => String::new(),
        1 => format!("Bearer {TOKEN}"),
        2 => format!("bearer {}", chunkwise_relay::auth::sign(HMAC, pick(rng, &["alice", "token0", "bob"]), now + 60)),
        3 => format!("Bearer {}", junk(rng, 30)),
        4 => format!("Basic {}", junk(rng, 10)),
        _ => format!("BEARER {TOKEN}"),
    };
    if !auth.is_empty() {
        head.push_str(&format!("authorization: {auth}\r\n"));
    }
    for _ in 0..rng.usize(..3) {
        let (k, v) = match rng.u8(..6) {
            0 => ("last-event-id", rng.u64(..).to_string()),
            1 => ("x-forwarded-for", format!("{}, 10.0.0.{}", junk(rng, 6), rng.u8(..))),
            2 => ("origin", "https://evil.example".to_string()),
            3 => (
                "content-type",
                pick(rng, &["application/json", "text/plain", "application/json; charset=x"]).to_string(),
            ),
            4 => ("x-chunkwise-chaos", "1".to_string()),
            _ => ("accept", junk(rng, 10)),
        };
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = if method == "POST" || rng.u8(..8) == 0 { body(rng) } else { Vec::new() };
    if !head.contains("content-type") && rng.u8(..4) != 0 {
        head.push_str("content-type: application/json\r\n");
    }
    head.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    let mut out = head.into_bytes();
    out.extend_from_slice(&body);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_requests_get_json_errors_no_relay_5xx_and_no_secret() {
    let cases: usize = std::env::var("RELAY_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(1500);
    let seed: u64 = std::env::var("RELAY_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0x5eed_0011);
    let leaky = format!("Incorrect API key provided: {KEY}; tokens {TOKEN} {HMAC}");
    let mock = Mock::start(vec![Step::Respond(
        401,
        vec![("connection", "close".to_string())],
        serde_json::json!({"error":{"message": leaky,"type":"invalid_request_error","code":"invalid_api_key"}})
            .to_string(),
    )])
    .await;
    let mut c = config_for(&mock.url());
    c.upstream.api_key = KEY.into();
    c.auth.tokens = vec![TOKEN.into()];
    c.auth.hmac_secret = HMAC.into();
    c.demo.token_ms = 0;
    let base = relay(c).await;
    let addr = base.trim_start_matches("http://").to_string();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut ids: Vec<String> = Vec::new();
    let mut by_status = std::collections::BTreeMap::<u16, usize>::new();
    let started = Instant::now();
    let mut ran = 0;
    while ran < cases && started.elapsed() < Duration::from_secs(60) {
        ran += 1;
        let req = request(&mut rng, now, &ids);
        let shown = String::from_utf8_lossy(&req[..req.len().min(200)]).to_string();
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let _ = s.write_all(&req).await;
        let mut answer = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut answer)).await;
        assert!(read.is_ok(), "no answer within 10 s to {shown}");
        let text = String::from_utf8_lossy(&answer).to_string();
        for secret in [KEY, TOKEN, HMAC, "FuzzK3y"] {
            assert!(!text.contains(secret), "a secret in the answer to {shown}:\n{text}");
        }
        let status: u16 = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        assert!(status >= 100, "no status line for {shown}:\n{text}");
        *by_status.entry(status).or_default() += 1;
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let lower = head.to_ascii_lowercase();
        if let Some(id) = lower.split("\r\n").find_map(|l| l.strip_prefix("x-chunkwise-generation: ")) {
            ids.push(id.trim().to_string());
        }
        if status < 400 || req.starts_with(b"HEAD ") {
            continue;
        }
        let json = if lower.contains("transfer-encoding: chunked") {
            body.split("\r\n").find(|l| l.starts_with('{')).unwrap_or("").to_string()
        } else {
            body.to_string()
        };
        let v: serde_json::Value = serde_json::from_str(&json)
            .unwrap_or_else(|e| panic!("{status} body is not JSON ({e}) for {shown}:\n{text}"));
        let err = &v["error"];
        assert!(
            err["message"].is_string() && err["type"].is_string() && err["code"].is_string(),
            "not the error shape for {shown}:\n{text}"
        );
        assert!(lower.contains("content-type: application/json"), "{shown}:\n{text}");
        if status >= 500 {
            let code = err["code"].as_str().unwrap();
            assert!(code.starts_with("upstream_"), "a 5xx that is the relay's own fault ({code}) for {shown}:\n{text}");
        }
    }
    eprintln!("{ran} random requests in {:?}; statuses {by_status:?}", started.elapsed());
    assert!(ran >= cases.min(200), "only {ran} requests ran");
}
