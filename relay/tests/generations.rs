//! Generations outlive connections: slow clients, disconnect and resume, cancel, grace.

mod common;

use std::time::{Duration, Instant};

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_that_disconnects_resumes_with_nothing_lost_or_repeated() {
    let (script, expected) = numbered(60, 10);
    let mock = Mock::start(script).await;
    let base = relay(config_for(&mock.url())).await;

    // First connection: read until event 12, then drop it.
    let resp = post(&base, "/v1/chat/completions", &chat("hi", true)).await;
    let id = generation_id(&resp);
    let mut sse = Sse::new(resp);
    let mut seen = Vec::new();
    while let Some(e) = sse.next().await {
        let last = e.id.parse::<u64>().unwrap();
        seen.push(e);
        if last == 12 {
            break;
        }
    }
    drop(sse);
    tokio::time::sleep(Duration::from_millis(150)).await;

    // Resume after the last event seen: the rest, numbered on from 13.
    let resp = client().get(format!("{base}/v1/chat/stream/{id}?after=12")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let rest = events(resp).await;
    assert_sequential(&rest, 13);
    let joined = content(&seen) + &content(&rest);
    assert_eq!(joined, expected);
    assert_eq!(rest.last().unwrap().data, "[DONE]");

    // Last-Event-ID works the same, and a finished generation can be read again.
    let resp = client().get(format!("{base}/v1/chat/stream/{id}")).header("Last-Event-ID", "30").send().await.unwrap();
    let tail = events(resp).await;
    assert_sequential(&tail, 31);
    let head: Vec<Ev> = seen.iter().chain(&rest).filter(|e| e.id.parse::<u64>().unwrap() <= 30).cloned().collect();
    assert_eq!(content(&head) + &content(&tail), expected);

    // The upstream was asked once: a disconnect is not a retry.
    assert_eq!(mock.seen().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_errors_are_clear() {
    let (script, _) = numbered(3, 0);
    let mock = Mock::start(script).await;
    let base = relay(config_for(&mock.url())).await;
    let resp = client().get(format!("{base}/v1/chat/stream/chatcmpl-nope?after=1")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "generation_not_found");
    let resp = post(&base, "/v1/chat/completions", &chat("hi", true)).await;
    let id = generation_id(&resp);
    events(resp).await;
    let resp = client().get(format!("{base}/v1/chat/stream/{id}?after=x")).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    let v: serde_json::Value = resp.json().await.unwrap();
    assert!(v["error"]["message"].as_str().unwrap().contains("after=\"x\""), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_client_gets_every_byte_while_the_upstream_runs_at_its_own_pace() {
    // ~3 MB of answer: more than the socket buffers between the relay and a client that
    // is not reading, so a relay that coupled upstream to client would stall the upstream.
    let piece = "慢".repeat(1000);
    let mut script = vec![Step::Begin];
    for _ in 0..1000 {
        script.push(openai_delta(&piece));
    }
    script.extend(openai_finish());
    let mock = Mock::start(script).await;
    let mut c = config_for(&mock.url());
    c.generations.max_log_bytes = 16 << 20;
    let base = relay(c).await;

    let resp = post(&base, "/v1/chat/completions", &chat("hi", true)).await;
    let mut sse = Sse::new(resp);
    let first = sse.next().await.unwrap();
    assert_eq!(first.id, "1");
    // Not reading: the upstream still finishes.
    let finished = mock.wait_for(0, Duration::from_secs(10), |s| s.finished_at.is_some()).await;
    assert!(finished.is_some(), "the upstream was held back by a client that does not read");
    // Now read slowly, in small steps, to the end.
    let mut text = String::new();
    let mut n = 0;
    while let Some(e) = sse.next().await {
        text.push_str(&e.content());
        n += 1;
        if n % 100 == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert_eq!(text, piece.repeat(1000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_closes_the_upstream_connection_within_a_second() {
    let (script, _) = numbered(400, 50);
    let mock = Mock::start(script).await;
    let base = relay(config_for(&mock.url())).await;
    let resp = post(&base, "/v1/chat/completions", &chat("hi", true)).await;
    let id = generation_id(&resp);
    let mut sse = Sse::new(resp);
    for _ in 0..4 {
        sse.next().await.unwrap();
    }
    let t = Instant::now();
    let resp = client().post(format!("{base}/v1/chat/stream/{id}/cancel")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["status"], "cancelled");
    let closed =
        mock.wait_for(0, Duration::from_secs(3), |s| s.closed_at.is_some()).await.expect("upstream never closed");
    let took = closed.closed_at.unwrap().saturating_duration_since(t);
    assert!(took < Duration::from_secs(1), "the upstream connection closed {took:?} after cancel");
    assert!(closed.finished_at.is_none(), "the script should not have finished");
    // The client's stream ends cleanly, saying why.
    let rest = sse.all().await;
    assert!(rest.iter().any(|e| e.json()["choices"][0]["finish_reason"] == "cancelled"), "{rest:?}");
    assert_eq!(rest.last().unwrap().data, "[DONE]");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disconnect_is_not_a_cancel_until_the_grace_period_ends() {
    let (script, _) = numbered(400, 50);
    let mock = Mock::start(script).await;
    let mut c = config_for(&mock.url());
    c.generations.grace_secs = 0.6;
    let base = relay(c).await;
    let resp = post(&base, "/v1/chat/completions", &chat("hi", true)).await;
    let mut sse = Sse::new(resp);
    sse.next().await.unwrap();
    let t = Instant::now();
    drop(sse);
    // Within the grace period the upstream keeps going.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(mock.seen()[0].closed_at.is_none(), "cancelled before the grace period ended");
    let closed = mock.wait_for(0, Duration::from_secs(3), |s| s.closed_at.is_some()).await.expect("never cancelled");
    let after = closed.closed_at.unwrap() - t;
    assert!(after >= Duration::from_millis(550) && after < Duration::from_millis(1800), "{after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_within_the_grace_period_keeps_the_generation() {
    let (script, expected) = numbered(30, 20);
    let mock = Mock::start(script).await;
    let mut c = config_for(&mock.url());
    c.generations.grace_secs = 0.4;
    let base = relay(c).await;
    let resp = post(&base, "/v1/chat/completions", &chat("hi", true)).await;
    let id = generation_id(&resp);
    let mut sse = Sse::new(resp);
    let first = sse.next().await.unwrap();
    drop(sse);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let resp = client().get(format!("{base}/v1/chat/stream/{id}?after={}", first.id)).send().await.unwrap();
    let rest = events(resp).await;
    assert_eq!(content(&rest), expected);
    assert!(mock.seen()[0].finished_at.is_some());
}
