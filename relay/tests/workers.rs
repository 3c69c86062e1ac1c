//! The binary's worker threads (one event loop each, one listener each on the shared port):
//! streams started on any of them can be resumed and cancelled from connections that land on
//! another, and SIGTERM drains them all. Runs the real binary on loopback; bounded in time.

#![cfg(target_os = "linux")]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

type Relay = RelayProcess;

async fn start(upstream: &str, workers: usize) -> Relay {
    let workers = workers.to_string();
    spawn_relay(upstream, &[("RELAY_WORKER_THREADS", &workers)]).await
}

/// A client of its own: a new connection, which the kernel gives to any of the workers.
fn fresh() -> reqwest::Client {
    reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap()
}

fn thread_names(pid: u32) -> Vec<String> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|n| n.trim().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_resume_and_cancel_across_worker_threads_and_sigterm_drains_them() {
    let (script, expected) = numbered(40, 20);
    let mock = Mock::start(script).await;
    let relay = start(&mock.url(), 3).await;
    // A thread names itself once it runs: the last worker may not have yet when the first
    // answered.
    let pid = relay.child.id();
    let named = || async move {
        let mut names = thread_names(pid);
        names.retain(|n| n.starts_with("relay-worker-"));
        names.sort();
        (names == ["relay-worker-0", "relay-worker-1", "relay-worker-2"]).then_some(())
    };
    until(Duration::from_secs(5), Duration::from_millis(10), "not three named worker threads", named).await;

    let streams = 12;
    let mut started = Vec::new();
    for _ in 0..streams {
        let resp = fresh().post(format!("{}/v1/chat/completions", relay.base)).json(&chat("hi", true)).send().await;
        let resp = resp.unwrap();
        assert_eq!(resp.status(), 200);
        started.push((generation_id(&resp), resp));
    }
    let mut readers = Vec::new();
    for (i, (id, resp)) in started.into_iter().enumerate() {
        let base = relay.base.clone();
        let expected = expected.clone();
        readers.push(tokio::spawn(async move {
            if i % 2 == 0 {
                // Cancelled from another connection: the stream that started it hears of it.
                let cancel = fresh().post(format!("{base}/v1/chat/stream/{id}/cancel")).send().await.unwrap();
                assert!(cancel.status().is_success(), "{}", cancel.status());
                let evs = tokio::time::timeout(Duration::from_secs(10), events(resp)).await.expect("not cancelled");
                assert_sequential(&evs, 1);
                let finish =
                    evs.iter().rev().find_map(|e| e.json()["choices"][0]["finish_reason"].as_str().map(str::to_string));
                assert_eq!(finish.as_deref(), Some("cancelled"), "{evs:?}");
            } else {
                // Resumed from another connection while it runs: the same events.
                let resumed = fresh().get(format!("{base}/v1/chat/stream/{id}?after=0")).send().await.unwrap();
                assert_eq!(resumed.status(), 200);
                let (mine, theirs) = tokio::join!(events(resp), events(resumed));
                assert_sequential(&mine, 1);
                assert_eq!(content(&mine), expected);
                assert_eq!(content(&theirs), expected);
                assert_eq!(mine.len(), theirs.len());
            }
        }));
    }
    for r in readers {
        tokio::time::timeout(Duration::from_secs(20), r).await.expect("a stream hung").unwrap();
    }

    // SIGTERM with a stream open: every worker drains, the stream runs to its end, and the
    // process ends (the drain itself: tests/drain.rs).
    let resp = fresh().post(format!("{}/v1/chat/completions", relay.base)).json(&chat("hi", true)).send().await;
    let resp = resp.unwrap();
    assert_eq!(resp.status(), 200);
    let mut relay = relay;
    let pid = relay.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let rest = tokio::time::timeout(Duration::from_secs(5), events(resp)).await.expect("the open stream hung");
    assert_eq!(content(&rest), expected, "the open stream was cut by SIGTERM");
    let t = Instant::now();
    let status = loop {
        if let Some(status) = relay.child.try_wait().unwrap() {
            break status;
        }
        assert!(t.elapsed() < Duration::from_secs(5), "still running 5 s after its last stream ended");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{status:?}");
}
