//! The relay process's memory stays bounded under clients that send their bodies one byte at a
//! time and clients that never read their answers. Runs the real binary on loopback and reads
//! its resident set size from /proc (Linux only); bounded in time and connections.

#![cfg(target_os = "linux")]

mod common;

use std::time::{Duration, Instant};

use common::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")).unwrap().trim().trim_end_matches("kB").trim().parse().unwrap()
}

type Relay = RelayProcess;

async fn start(upstream: &str) -> Relay {
    let env = [("RELAY_WORKER_THREADS", "2"), ("RELAY_WRITE_TIMEOUT_SECS", "3"), ("RELAY_GRACE_SECS", "0.5")];
    spawn_relay(upstream, &env).await
}

/// A request whose body arrives one byte per TCP segment.
async fn trickle(addr: String, bytes: usize) {
    let pad = "x".repeat(bytes.saturating_sub(80));
    let body = format!(r#"{{"model":"demo","messages":[{{"role":"user","content":"{pad}"}}]}}"#);
    let Ok(mut s) = TcpStream::connect(&addr).await else { return };
    s.set_nodelay(true).unwrap();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    if s.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    for b in body.as_bytes() {
        if s.write_all(std::slice::from_ref(b)).await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_micros(700)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rss_stays_bounded_under_slow_bodies_and_clients_that_never_read() {
    let mut script = vec![Step::Begin];
    let piece = "字".repeat(2000);
    for _ in 0..2000 {
        script.push(openai_delta(&piece));
    }
    script.push(Step::Hang);
    let mock = Mock::start(script).await;
    let relay = start(&mock.url()).await;
    let pid = relay.child.id();
    let addr = relay.base.trim_start_matches("http://").to_string();
    // Warm up: one whole answer, so allocator pools exist before the baseline.
    let _ = client().get(format!("{}/v1/models", relay.base)).send().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let base_rss = rss_kib(pid);

    // 4 connections × 3,000 one-byte writes.
    let t = Instant::now();
    let slow: Vec<_> = (0..4).map(|_| tokio::spawn(trickle(addr.clone(), 3000))).collect();
    let mut peak = 0;
    for h in slow {
        let _ = tokio::time::timeout(Duration::from_secs(20), h).await;
        peak = peak.max(rss_kib(pid));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after_slow = rss_kib(pid);
    eprintln!("slow bodies: RSS {base_rss} KiB before, {after_slow} KiB after, peak {peak} KiB ({:?})", t.elapsed());
    assert!(after_slow < base_rss + 8 * 1024, "slow bodies grew RSS from {base_rss} to {after_slow} KiB");

    // 8 clients that never read an answer of ~12 MB each.
    let mut sockets = Vec::new();
    for _ in 0..8 {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        let body = chat("hi", true).to_string();
        let req = raw_post("/v1/chat/completions", &body);
        s.write_all(req.as_bytes()).await.unwrap();
        sockets.push(s);
    }
    let mut held = 0;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        held = held.max(rss_kib(pid));
    }
    let after_stuck = rss_kib(pid);
    eprintln!("clients that never read: peak {held} KiB, {after_stuck} KiB after 10 s (baseline {base_rss} KiB)");
    // Each generation keeps at most its bounded log (1 MiB by default) while it runs.
    assert!(held < base_rss + 8 * 1024 + 64 * 1024, "peak {held} KiB");
    let metrics = client().get(format!("{}/metrics", relay.base)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("chunkwise_relay_open_streams 0\n"), "clients that never read are still connected");
    drop(sockets);
}

/// The descriptor table is grown once at start, while the process has one thread: grown later,
/// each doubling stalls the thread that opened the descriptor for an RCU grace period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_descriptor_table_is_grown_before_the_first_stream() {
    let relay = start("http://127.0.0.1:9").await;
    let status = std::fs::read_to_string(format!("/proc/{}/status", relay.child.id())).unwrap();
    let size: u64 = status.lines().find_map(|l| l.strip_prefix("FDSize:")).unwrap().trim().parse().unwrap();
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", relay.child.id())).unwrap();
    let soft: u64 = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(size >= soft.min(65_536), "FDSize {size} with a limit of {soft}");
    drop(relay);
}
