//! Limits shared through Redis: per-IP and per-token answers and the per-IP request bucket hold
//! across instances, not per instance, and an answer refused at the shared limit sends the
//! upstream nothing. Each test starts its own `redis-server` on a loopback port (Debian's
//! package, installed by `build.sh`).

mod common;

use std::time::Duration;

use common::store::*;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_ip_limits_hold_across_instances() {
    let redis = redis().await;
    let mut c = demo_config();
    c.server.redis_url = redis.url.clone();
    c.limits.per_ip_per_minute = 20;
    c.limits.per_ip_burst = 20;
    c.limits.per_ip_streams = 4;
    c.demo.token_ms = 30;
    let a = relay(c.clone()).await;
    let b = relay(c).await;
    // Each instance alone would allow 20 and 4: together they allow 20 requests and 4 answers.
    let mut streams = Vec::new();
    let mut refused = 0;
    for i in 0..6 {
        let base = if i % 2 == 0 { &a } else { &b };
        let resp = post(base, "/v1/chat/completions", &chat("hi", true)).await;
        match resp.status().as_u16() {
            200 => streams.push(resp),
            429 => {
                let v: serde_json::Value = resp.json().await.unwrap();
                assert_eq!(v["error"]["code"], "too_many_streams");
                refused += 1;
            }
            other => panic!("{other}"),
        }
    }
    assert_eq!((streams.len(), refused), (4, 2));
    // A finished answer frees its slot on every instance.
    let first = streams.remove(0);
    let id = generation_id(&first);
    client().post(format!("{a}/v1/chat/stream/{id}/cancel")).send().await.unwrap();
    drop(first);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(post(&b, "/v1/chat/completions", &chat("hi", true)).await.status(), 200);
    drop(streams);

    let mut limited = 0;
    for i in 0..30 {
        let base = if i % 2 == 0 { &a } else { &b };
        limited += (client().get(format!("{base}/v1/models")).send().await.unwrap().status() == 429) as usize;
    }
    // 8 requests above were counted too: 38 in all against a bucket of 20.
    assert!(limited >= 15, "only {limited} of 30 limited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_refused_at_the_shared_limit_sends_the_upstream_nothing() {
    // The upstream connection is made while the admission runs: a refused answer must not
    // have sent its request on it.
    let redis = redis().await;
    let (script, _) = numbered(100, 20);
    let mock = Mock::start(script).await;
    let mut c = shared(&mock.url(), &redis);
    c.limits.per_ip_streams = 1;
    let a = relay(c.clone()).await;
    let held = post(&a, "/v1/chat/completions", &chat("hi", true)).await;
    assert_eq!(held.status(), 200);
    let accepted = || mock.accepted.load(std::sync::atomic::Ordering::SeqCst);
    // A fresh instance per try: a refused answer's connection is kept, and the next answer on
    // that instance has none to make. On a busy machine the answer's task may first run after
    // the refusal (and then connects to nothing), hence more than one try.
    let mut ahead = false;
    for _ in 0..5 {
        let b = relay(c.clone()).await;
        let before = accepted();
        let refused = post(&b, "/v1/chat/completions", &chat("hi", true)).await;
        assert_eq!(refused.status(), 429);
        let v: serde_json::Value = refused.json().await.unwrap();
        assert_eq!(v["error"]["code"], "too_many_streams");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(mock.seen().len(), 1, "the refused answer's request reached the upstream");
        // Nor is the refused answer left behind on its instance.
        let health: serde_json::Value =
            client().get(format!("{b}/healthz")).send().await.unwrap().json().await.unwrap();
        assert_eq!((health["generations"].as_u64(), health["active"].as_u64()), (Some(0), Some(0)), "{health}");
        assert!(accepted() <= before + 1);
        if accepted() == before + 1 {
            ahead = true;
            break;
        }
    }
    assert!(ahead, "no refused answer connected while its admission ran");
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_answer_takes_its_shared_request_token_in_the_admission() {
    let redis = redis().await;
    let mut con = redis_con(&redis).await;
    let mut c = demo_config();
    c.server.redis_url = redis.url.clone();
    c.limits.per_ip_per_minute = 6;
    c.limits.per_ip_burst = 6;
    c.demo.token_ms = 0;
    let a = relay(c.clone()).await;
    let b = relay(c).await;
    let evals = |info: String| -> u64 {
        let line = info.lines().find(|l| l.starts_with("cmdstat_eval:")).unwrap_or("calls=0,");
        line.split("calls=").nth(1).and_then(|v| v.split(',').next()).and_then(|v| v.parse().ok()).unwrap_or(0)
    };
    let before: String = redis::cmd("INFO").arg("commandstats").query_async(&mut con).await.unwrap();
    let resp = post(&a, "/v1/chat/completions", &chat("hi", true)).await;
    assert_eq!(resp.status(), 200);
    let after: String = redis::cmd("INFO").arg("commandstats").query_async(&mut con).await.unwrap();
    assert_eq!(evals(after) - evals(before), 1, "one script before the answer's first byte");
    events(resp).await;
    // Each instance alone would allow all of these; together they allow the bucket's 6.
    let mut codes = Vec::new();
    for i in 0..9 {
        let base = if i % 2 == 0 { &b } else { &a };
        let resp = post(base, "/v1/chat/completions", &chat("hi", true)).await;
        codes.push(match resp.status().as_u16() {
            200 => {
                events(resp).await;
                "ok".to_string()
            }
            429 => {
                assert!(resp.headers().contains_key("retry-after"));
                let v: serde_json::Value = resp.json().await.unwrap();
                v["error"]["code"].as_str().unwrap().to_string()
            }
            other => panic!("{other}"),
        });
    }
    assert_eq!(codes.iter().filter(|c| *c == "ok").count(), 5, "{codes:?}");
    assert!(codes.iter().all(|c| c == "ok" || c == "rate_limited"), "{codes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_token_stream_limits_hold_on_one_instance_and_across_instances() {
    let redis = redis().await;
    let mut c = demo_config();
    c.limits.per_token_streams = 2;
    c.limits.per_ip_streams = 10;
    c.demo.token_ms = 30;
    c.auth.tokens = vec!["token-one".into(), "token-two".into()];
    let with = |token: &'static str, base: &str| {
        client().post(format!("{base}/v1/chat/completions")).bearer_auth(token).json(&chat("hi", true)).send()
    };
    // In memory: one instance counts a token's answers.
    let alone = relay(c.clone()).await;
    let held = [with("token-one", &alone).await.unwrap(), with("token-one", &alone).await.unwrap()];
    assert!(held.iter().all(|r| r.status() == 200));
    let refused = with("token-one", &alone).await.unwrap();
    assert_eq!(refused.status(), 429);
    let v: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(v["error"]["code"], "too_many_streams");
    assert_eq!(with("token-two", &alone).await.unwrap().status(), 200);
    drop(held);

    // Shared: two instances together allow a token 2 answers, not 2 each.
    c.server.redis_url = redis.url.clone();
    let a = relay(c.clone()).await;
    let b = relay(c).await;
    let mut statuses = Vec::new();
    let mut open = Vec::new();
    for i in 0..4 {
        let resp = with("token-one", if i % 2 == 0 { &a } else { &b }).await.unwrap();
        statuses.push(resp.status().as_u16());
        open.push(resp);
    }
    assert_eq!(statuses, [200, 200, 429, 429]);
    assert_eq!(with("token-two", &b).await.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_answers_keep_their_slots_in_every_set_past_the_lease() {
    // The renewals give each slot set one ZADD for all its answers: every running answer must
    // still be in each of its sets (its IP's, its token's) after the admission's expiry passed.
    let redis = redis().await;
    let mut c = demo_config();
    c.limits.per_token_streams = 5;
    c.limits.per_ip_streams = 10;
    c.demo.token_ms = 30;
    c.auth.tokens = vec!["token-one".into(), "token-two".into()];
    c.server.redis_url = redis.url.clone();
    let a = relay(c).await;
    let mut open = Vec::new();
    for token in ["token-one", "token-two", "token-one"] {
        let resp = client()
            .post(format!("{a}/v1/chat/completions"))
            .bearer_auth(token)
            .json(&chat("hi", true))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        open.push((generation_id(&resp), resp));
    }
    let ids: Vec<String> = open.iter().map(|(id, _)| id.clone()).collect();
    tokio::time::sleep(chunkwise_relay::store::LEASE + Duration::from_millis(1500)).await;
    let mut con = redis_con(&redis).await;
    let mut sets: Vec<String> = redis::cmd("KEYS").arg("cw:streams:*").query_async(&mut con).await.unwrap();
    sets.sort();
    assert_eq!(sets.len(), 3, "{sets:?}");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as f64;
    let mut found = Vec::new();
    for set in &sets {
        let members: Vec<(String, f64)> =
            redis::cmd("ZRANGE").arg(set).arg(0).arg(-1).arg("WITHSCORES").query_async(&mut con).await.unwrap();
        for (member, score) in &members {
            assert!(*score > now, "{set}: {member}'s slot is past its end ({score} <= {now})");
        }
        let ttl: i64 = redis::cmd("PTTL").arg(set).query_async(&mut con).await.unwrap();
        assert!(ttl > 0, "{set} has no expiry: {ttl}");
        let mut members: Vec<String> = members.into_iter().map(|(m, _)| m).collect();
        members.sort();
        found.push(members);
    }
    // The IP's set holds all three; token one's the first and third, token two's the second.
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    let mut want = vec![sorted(ids.clone()), sorted(vec![ids[0].clone(), ids[2].clone()]), vec![ids[1].clone()]];
    want.sort();
    found.sort();
    assert_eq!(found, want);
    drop(open);
}
