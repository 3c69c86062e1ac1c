//! The relay under attack, as a hostile client and a hostile upstream would try it: the key
//! must not leak, one client must not act as another, and the limits must hold.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chunkwise_relay::config::Provider;
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const KEY: &str = "sk-proj-S3cr3tK3yABCDEF0123456789ghijklmnop";

fn keyed(url: &str, kind: Provider) -> chunkwise_relay::config::Config {
    let mut c = config_for(url);
    c.upstream.kind = kind;
    c.upstream.api_key = KEY.into();
    c
}

fn assert_no_secret(bytes: &[u8], what: &str) {
    let s = String::from_utf8_lossy(bytes);
    assert!(!s.contains(KEY), "{what}: the key leaked: {s}");
    assert!(!s.contains("S3cr3tK3y"), "{what}: part of the key leaked: {s}");
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_error_text_never_carries_the_key() {
    let said = format!("Incorrect API key provided: Bearer {KEY}. You can find your API key at https://x");
    let bodies: Vec<(u16, String)> = vec![
        (
            401,
            serde_json::json!({"error":{"message": said, "type":"invalid_request_error","code":"invalid_api_key"}})
                .to_string(),
        ),
        (403, serde_json::json!([{"error":{"code":403,"message": said,"status":"PERMISSION_DENIED"}}]).to_string()),
        (400, serde_json::json!({"type":"error","error":{"type":"invalid_request_error","message": said}}).to_string()),
        (500, format!("<html>internal error for key {KEY}</html>")),
        (429, serde_json::json!({"error": said}).to_string()),
    ];
    for kind in [Provider::OpenAi, Provider::Anthropic, Provider::Gemini] {
        for (status, body) in &bodies {
            let close = vec![("connection", "close".to_string())];
            let mock = Mock::start(vec![Step::Respond(*status, close, body.clone())]).await;
            let base = relay(keyed(&mock.url(), kind)).await;
            for stream in [true, false] {
                let resp = post(&base, "/v1/chat/completions", &chat("hi", stream)).await;
                let code = resp.status().as_u16();
                let bytes = resp.bytes().await.unwrap();
                assert_no_secret(&bytes, &format!("{kind:?} {status} stream={stream}"));
                let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                assert!(code >= 400, "{v}");
                let message = v["error"]["message"].as_str().unwrap();
                assert!(message.contains(&status.to_string()), "the upstream's status is kept: {message}");
                assert!(v["error"]["code"].as_str().unwrap().starts_with("upstream_"), "{v}");
            }
        }
    }
    // The upstream's own type and code survive (they name the failure, not the key).
    let mock = Mock::start(vec![Step::Respond(401, vec![], bodies[0].1.clone())]).await;
    let base = relay(keyed(&mock.url(), Provider::OpenAi)).await;
    let v: serde_json::Value = post(&base, "/v1/chat/completions", &chat("hi", true)).await.json().await.unwrap();
    assert_eq!(v["error"]["code"], "upstream_auth");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains("invalid_api_key") && message.contains("invalid_request_error"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_stream_upstream_errors_never_carry_the_key() {
    let said = format!("upstream failed, key was {KEY}");
    let cases = [
        (
            Provider::OpenAi,
            format!(
                "data: {}\n\n",
                serde_json::json!({"error":{"message": said, "type":"server_error","code":"overloaded"}})
            ),
        ),
        (
            Provider::Anthropic,
            format!(
                "event: error\ndata: {}\n\n",
                serde_json::json!({"type":"error","error":{"type":"overloaded_error","message": said}})
            ),
        ),
        (
            Provider::Gemini,
            format!("data: {}\n\n", serde_json::json!({"error":{"code":500,"message": said,"status":"INTERNAL"}})),
        ),
    ];
    for (kind, error) in cases {
        let mock = Mock::start(vec![Step::Begin, send(error), Step::End]).await;
        let base = relay(keyed(&mock.url(), kind)).await;
        let resp = post(&base, "/v1/chat/completions", &chat("hi", true)).await;
        let mut sse = Sse::new(resp);
        while sse.next().await.is_some() {}
        assert_no_secret(&sse.raw, &format!("{kind:?} stream"));
        assert!(String::from_utf8_lossy(&sse.raw).contains("\"error\""), "{kind:?}: an error event");
        let resp = post(&base, "/v1/chat/completions", &chat("hi", false)).await;
        let bytes = resp.bytes().await.unwrap();
        assert_no_secret(&bytes, &format!("{kind:?} non-streaming"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_from_the_upstream_are_not_followed() {
    for kind in [Provider::OpenAi, Provider::Anthropic, Provider::Gemini] {
        let elsewhere = Mock::start(vec![Step::Respond(200, vec![], "{}".into())]).await;
        for status in [302, 307, 308] {
            let location = format!("{}/steal", elsewhere.url());
            let mock = Mock::start(vec![Step::Respond(status, vec![("location", location)], String::new())]).await;
            let base = relay(keyed(&mock.url(), kind)).await;
            let resp = post(&base, "/v1/chat/completions", &chat("the prompt", true)).await;
            assert_eq!(resp.status(), 502, "{kind:?} {status}");
            let bytes = resp.bytes().await.unwrap();
            assert_no_secret(&bytes, "redirect");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(elsewhere.seen().is_empty(), "{kind:?}: the key went to the redirect target");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_uses_the_address_the_trusted_proxy_added() {
    let mut c = demo_config();
    c.server.trust_forwarded_for = true;
    c.limits.per_ip_per_minute = 20;
    c.limits.per_ip_burst = 20;
    c.limits.per_ip_streams = 8;
    c.demo.token_ms = 30;
    let base = relay(c).await;
    // The client writes any X-Forwarded-For it likes; the proxy appends the address it saw.
    let mut limited = 0;
    for i in 0..100 {
        let resp = client()
            .get(format!("{base}/v1/models"))
            .header("x-forwarded-for", format!("10.9.{}.{}, 198.51.100.7", i / 250, i % 250))
            .header("x-real-ip", format!("10.8.0.{i}"))
            .send()
            .await
            .unwrap();
        limited += (resp.status() == 429) as usize;
    }
    assert!(limited >= 75, "only {limited} of 100 requests were limited");

    let mut streams = Vec::new();
    let mut refused = 0;
    for i in 0..15 {
        let resp = client()
            .post(format!("{base}/v1/chat/completions"))
            .header("x-forwarded-for", format!("10.7.0.{i}, 198.51.100.8"))
            .json(&chat("hi", true))
            .send()
            .await
            .unwrap();
        if resp.status() == 429 {
            refused += 1;
        }
        streams.push(resp);
    }
    assert_eq!(refused, 7, "8 streams per client");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_token_cannot_take_a_static_tokens_generations() {
    let mut c = demo_config();
    c.auth.tokens = vec!["static-team-token-0001".into()];
    c.auth.hmac_secret = "s3cret".into();
    c.demo.token_ms = 50;
    let base = relay(c).await;
    let resp = client()
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth("static-team-token-0001")
        .json(&chat("hi", true))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let id = generation_id(&resp);
    for subject in ["token0", "static-0", "static_0", "0"] {
        let forged = chunkwise_relay::auth::sign("s3cret", subject, now() + 60);
        let url = format!("{base}/v1/chat/stream/{id}");
        assert_eq!(client().get(&url).bearer_auth(&forged).send().await.unwrap().status(), 404, "{subject}");
        let cancel = client().post(format!("{url}/cancel")).bearer_auth(&forged).send().await.unwrap();
        assert_eq!(cancel.status(), 404, "{subject}");
    }
    drop(resp);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_labels_are_escaped_and_bounded() {
    let mut script = vec![Step::Begin, openai_delta("x")];
    script.push(send(format!(
        "data: {}\n\n",
        serde_json::json!({"error":{"message":"m","type":"t","code":"a\"} 1\nchunkwise_fake_metric{x=\"1"}})
    )));
    for i in 0..2000 {
        script.push(send(format!(
            "data: {}\n\n",
            serde_json::json!({"error":{"message":"m","code": format!("code_{i}")}})
        )));
    }
    script.extend(openai_finish());
    let mock = Mock::start(script).await;
    let base = relay(config_for(&mock.url())).await;
    let before = client().get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    events(post(&base, "/v1/chat/completions", &chat("hi", true)).await).await;
    let m = client().get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(!m.lines().any(|l| l.starts_with("chunkwise_fake_metric")), "{m}");
    assert!(m.len() < before.len() + 1024, "/metrics grew from {} to {} bytes", before.len(), m.len());
    for line in m.lines().filter(|l| !l.starts_with('#')) {
        let (name, value) = line.rsplit_once(' ').unwrap();
        assert!(value.parse::<f64>().is_ok(), "{line}");
        assert!(name.starts_with("chunkwise_relay_"), "{line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_spellings_schemes_and_empty_tokens() {
    let mut c = demo_config();
    c.auth.hmac_secret = "s3cret".into();
    c.auth.tokens = vec!["team-token-0123456789".into()];
    let base = relay(c).await;
    let with = |auth: String| {
        let base = base.clone();
        async move {
            client()
                .get(format!("{base}/v1/models"))
                .header("authorization", auth)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(with("BEARER team-token-0123456789".into()).await, 200, "schemes are case-insensitive");
    assert_eq!(with("bEaReR team-token-0123456789".into()).await, 200);
    let good = chunkwise_relay::auth::sign("s3cret", "alice", now() + 600);
    assert_eq!(with(format!("Bearer {good}")).await, 200);
    let parts: Vec<&str> = good.split('.').collect();
    let variants = [
        format!("cw1.+{}.{}.{}", parts[1], parts[2], parts[3]),
        format!("cw1.0{}.{}.{}", parts[1], parts[2], parts[3]),
        format!("cw1.{}.{}.{}", parts[1], parts[2], parts[3].to_uppercase()),
        format!("cw1.{}.{}.+{}", parts[1], parts[2], &parts[3][1..]),
    ];
    for v in variants {
        assert_eq!(with(format!("Bearer {v}")).await, 401, "a second spelling of a token verified: {v}");
    }

    // An empty static token is a configuration error, not a token everyone has.
    let mut c = demo_config();
    c.auth.tokens = vec![String::new()];
    assert!(chunkwise_relay::App::new(c).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_subcommand_refuses_what_cannot_verify() {
    let bin = env!("CARGO_BIN_EXE_chunkwise-relay");
    let run = |args: &[&str]| {
        std::process::Command::new(bin).args(args).env_clear().env("RELAY_HMAC_SECRET", "s3cret").output().unwrap()
    };
    let ok = run(&["token", "alice", "60"]);
    assert!(ok.status.success());
    let token = String::from_utf8(ok.stdout).unwrap();
    assert!(chunkwise_relay::auth::verify("s3cret", token.trim(), now()).is_ok());
    for args in [&["token", "al ice"][..], &["token", "a.b"], &["token", "alice", "soon"], &["token", "alice", "0"]] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", String::from_utf8_lossy(&out.stdout));
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_behind_a_proxy_needs_tokens_and_browsers_cannot_spend_the_key() {
    // Behind a proxy, loopback is not the edge: a key needs tokens.
    let mut c = keyed("http://127.0.0.1:9", Provider::OpenAi);
    c.server.trust_forwarded_for = true;
    assert!(chunkwise_relay::App::new(c).is_err());

    // A key on loopback without tokens: no CORS grant for other origins, and only local Host names.
    let mock = Mock::start(vec![Step::Respond(500, vec![], "{}".into())]).await;
    let base = relay(keyed(&mock.url(), Provider::OpenAi)).await;
    let pre = client()
        .request(reqwest::Method::OPTIONS, format!("{base}/v1/chat/completions"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(!pre.headers().contains_key("access-control-allow-origin"), "{:?}", pre.headers());
    let addr = base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /v1/models HTTP/1.1\r\nhost: evil.example\r\nconnection: close\r\n\r\n").await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let raw = String::from_utf8_lossy(&raw);
    assert!(raw.starts_with("HTTP/1.1 421"), "{raw}");
    assert!(raw.contains("\"error\""), "{raw}");
    // localhost names pass.
    let ok = client().get(format!("http://localhost:{}/v1/models", base.rsplit(':').next().unwrap())).send().await;
    assert_eq!(ok.unwrap().status(), 200);

    // Error messages do not reveal the upstream's address.
    let port = free_port();
    let base = relay(keyed(&format!("http://127.0.0.1:{port}"), Provider::OpenAi)).await;
    let text = post(&base, "/v1/chat/completions", &chat("hi", true)).await.text().await.unwrap();
    assert!(text.contains("upstream_unreachable"), "{text}");
    assert!(!text.contains(&port.to_string()), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_start_banner_hides_the_base_urls_password() {
    let bin = env!("CARGO_BIN_EXE_chunkwise-relay");
    let port = free_port();
    let mut child = std::process::Command::new(bin)
        .env_clear()
        .env("PORT", port.to_string())
        .env("UPSTREAM_BASE_URL", "http://admin:hunter2pass@127.0.0.1:9/v1")
        .env("UPSTREAM_MODEL", "m")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let mut banner = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    use std::io::Read;
    while !banner.ends_with(b"\n") && std::time::Instant::now() < deadline {
        let n = stderr.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        banner.extend_from_slice(&buf[..n]);
    }
    let _ = child.kill();
    let _ = child.wait();
    let banner = String::from_utf8_lossy(&banner);
    assert!(banner.contains("listening"), "{banner}");
    assert!(!banner.contains("hunter2pass"), "{banner}");
}
