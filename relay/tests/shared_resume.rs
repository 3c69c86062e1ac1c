//! Generations shared through Redis, read and stopped from any instance: streams cut at random
//! points and resumed elsewhere, three instances behind nginx round-robin, cancels sent to an
//! instance that does not hold the generation, text resumed by byte offset, and what another
//! instance finds in Redis ahead of, behind or past the holder's mirror. Each test starts its own
//! `redis-server` (and nginx) on loopback ports (Debian's packages, installed by `build.sh`).

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::store::*;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_cut_at_random_points_resume_on_other_instances() {
    let redis = redis().await;
    let (script, expected) = numbered(80, 8);
    let mock = Mock::start(script).await;
    let instances = [relay(shared(&mock.url(), &redis)).await, relay(shared(&mock.url(), &redis)).await];
    let resp = post(&instances[0], "/v1/chat/completions", &chat("hi", true)).await;
    let id = generation_id(&resp);
    let mut rng = fastrand::Rng::with_seed(7);
    // Each cut resumes on the other instance.
    let (got, hop) = read_with_cuts(resp, &mut rng, 15, |hop, after| {
        let url = format!("{}/v1/chat/stream/{id}?after={after}", instances[hop % 2]);
        async move { client().get(url).send().await.unwrap() }
    })
    .await;
    assert!(hop >= 4, "only {hop} cuts");
    assert_sequential(&got, 1);
    assert_eq!(content(&got), expected);
    assert_eq!(got.last().unwrap().data, "[DONE]");
    // A finished generation is served by either instance; positions past the end are refused.
    let last = got.last().unwrap().id.parse::<u64>().unwrap();
    let resp = client().get(format!("{}/v1/chat/stream/{id}?after={}", instances[1], last + 5)).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    // After the last event: an empty answer, not an error.
    let resp = client().get(format!("{}/v1/chat/stream/{id}?after={last}", instances[1])).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_sent_to_another_instance_closes_the_upstream_within_a_second() {
    let redis = redis().await;
    let (script, _) = numbered(500, 20);
    let mock = Mock::start(script).await;
    let a = relay(shared(&mock.url(), &redis)).await;
    let b = relay(shared(&mock.url(), &redis)).await;
    let (id, sse, _) = start_answer(&a, 3).await;
    let t = Instant::now();
    let cancel = client().post(format!("{b}/v1/chat/stream/{id}/cancel")).send().await.unwrap();
    assert_eq!(cancel.status(), 200);
    let closed = mock.wait_for(0, Duration::from_secs(1), |s| s.closed_at.is_some()).await;
    assert!(closed.is_some(), "the upstream was still open {:?} after the cancel", t.elapsed());
    let rest = sse.all().await;
    assert_eq!(rest.last().unwrap().data, "[DONE]");
    // Someone else's token cannot cancel through another instance either.
    let other = client().post(format!("{b}/v1/chat/stream/chatcmpl-unknown/cancel")).send().await.unwrap();
    assert_eq!(other.status(), 404);
}

struct Nginx {
    child: Child,
    dir: std::path::PathBuf,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// nginx on a loopback port, round-robin over `backends` with no stickiness, not buffering.
/// One process (`master_process off`), so that dropping it kills all of it: a killed master
/// would leave its workers running.
async fn nginx(backends: &[String]) -> (Nginx, String) {
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("relay-nginx-{}-{port}", std::process::id()));
    std::fs::create_dir_all(dir.join("tmp")).unwrap();
    let servers: String =
        backends.iter().map(|b| format!("    server {};\n", b.trim_start_matches("http://"))).collect();
    let d = dir.display();
    let conf = format!(
        "user root;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\ndaemon off;\n\
         events {{ worker_connections 256; }}\nhttp {{\n  access_log off;\n  client_body_temp_path {d}/tmp/body;\n\
         proxy_temp_path {d}/tmp/proxy;\n  fastcgi_temp_path {d}/tmp/fastcgi;\n  uwsgi_temp_path {d}/tmp/uwsgi;\n\
         scgi_temp_path {d}/tmp/scgi;\n  upstream relays {{\n{servers}  }}\n  server {{\n    listen 127.0.0.1:{port};\n\
         location / {{\n      proxy_pass http://relays;\n      proxy_buffering off;\n      proxy_http_version 1.1;\n\
         proxy_set_header Connection \"\";\n      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
         proxy_read_timeout 60s;\n    }}\n  }}\n}}\n"
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let child = Command::new("nginx")
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx (apt-get install nginx; ./build.sh test installs it)");
    let base = format!("http://127.0.0.1:{port}");
    started("nginx did not start", || async { tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() })
        .await;
    (Nginx { child, dir }, base)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_behind_nginx_round_robin_resume_and_cancel() {
    let redis = redis().await;
    let (script, expected) = numbered(120, 6);
    let mock = Mock::start(script).await;
    let mut instances = Vec::new();
    for _ in 0..3 {
        let mut c = shared(&mock.url(), &redis);
        // Behind a proxy: client IPs from X-Forwarded-For, and with a key, client tokens.
        c.server.trust_forwarded_for = true;
        c.auth.tokens = vec!["balanced-client-token".into()];
        instances.push(relay(c).await);
    }
    let (_nginx, lb) = nginx(&instances).await;
    let authed = |r: reqwest::RequestBuilder| r.bearer_auth("balanced-client-token");
    for round in 0..3u64 {
        let resp =
            authed(client().post(format!("{lb}/v1/chat/completions"))).json(&chat("hi", true)).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let id = generation_id(&resp);
        let mut rng = fastrand::Rng::with_seed(round);
        let (got, cuts) = read_with_cuts(resp, &mut rng, 25, |_, after| {
            let url = format!("{lb}/v1/chat/stream/{id}?after={after}");
            async move { authed(client().get(url)).send().await.unwrap() }
        })
        .await;
        assert!(cuts >= 3, "{cuts}");
        assert_sequential(&got, 1);
        assert_eq!(content(&got), expected, "round {round}");
    }

    // A cancel through a balancer over the instances that do not hold the generation reaches
    // the one that does.
    let (script, _) = numbered(500, 20);
    let slow = Mock::start(script).await;
    let mut holders = Vec::new();
    for _ in 0..3 {
        let mut c = shared(&slow.url(), &redis);
        c.server.trust_forwarded_for = true;
        c.auth.tokens = vec!["balanced-client-token".into()];
        holders.push(relay(c).await);
    }
    let (_nginx2, lb2) = nginx(&holders).await;
    let resp =
        authed(client().post(format!("{lb2}/v1/chat/completions"))).json(&chat("hi", true)).send().await.unwrap();
    let id = generation_id(&resp);
    let mut sse = Sse::new(resp);
    sse.next().await.unwrap();
    let mut others = Vec::new();
    for base in &holders {
        let health: serde_json::Value =
            client().get(format!("{base}/healthz")).send().await.unwrap().json().await.unwrap();
        if health["generations"] == 0 {
            others.push(base.clone());
        }
    }
    assert_eq!(others.len(), 2, "exactly one instance holds the generation");
    let (_nginx3, elsewhere) = nginx(&others).await;
    let t = Instant::now();
    let cancel = authed(client().post(format!("{elsewhere}/v1/chat/stream/{id}/cancel"))).send().await.unwrap();
    assert_eq!(cancel.status(), 200);
    let v: serde_json::Value = cancel.json().await.unwrap();
    assert_eq!(v["status"], "cancelled");
    let closed = slow.wait_for(0, Duration::from_secs(1), |s| s.closed_at.is_some()).await;
    assert!(closed.is_some(), "the upstream is still open {:?} after a cancel sent elsewhere", t.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instant_burst_reaches_redis_whole_and_its_stream_is_bounded() {
    let redis = redis().await;
    // 3,000 events at once, some 45 KB: far more than the holder's 16 KiB log holds before a
    // mirror batch. The upstream is held back until the mirror catches up; nothing is lost.
    let (script, _) = numbered(3000, 0);
    let mock = Mock::start(script).await;
    let mut c = shared(&mock.url(), &redis);
    c.generations.max_log_bytes = 16 * 1024; // 1,024 events in Redis
    let a = relay(c.clone()).await;
    let b = relay(c).await;
    let resp = post(&a, "/v1/chat/completions", &chat("hi", true)).await;
    let id = generation_id(&resp);
    // The holder's own client leaves at once (a reader this far behind a 16 KiB log would be
    // told it is too slow; that is the in-memory log's bound, not the mirror's).
    drop(resp);
    let resp = client().get(format!("{b}/v1/chat/stream/{id}?after=3003")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(events(resp).await.last().unwrap().data, "[DONE]");
    let mut con = redis_con(&redis).await;
    let log = format!("cw:g:{id}:log");
    let len: usize = redis::cmd("XLEN").arg(&log).query_async(&mut con).await.unwrap();
    assert!(len < 1300, "{len} entries kept");
    let resp = client().get(format!("{b}/v1/chat/stream/{id}?after=1")).send().await.unwrap();
    assert_eq!(resp.status(), 410);
    // From the first entry Redis kept to the end: every event, once.
    let first: redis::streams::StreamRangeReply =
        redis::cmd("XRANGE").arg(&log).arg("-").arg("+").arg("COUNT").arg(1).query_async(&mut con).await.unwrap();
    let kept: u64 = first.ids[0].id.split('-').next().unwrap().parse().unwrap();
    assert!(kept > 1000, "{kept}");
    // Resumed on the other instance inside what Redis keeps: the rest, whole and once.
    // Event 1 is the role, event 2 + i the piece i.
    for after in [kept, kept + 1, 2501, 2999, 3001] {
        let resp = client().get(format!("{b}/v1/chat/stream/{id}?after={after}")).send().await.unwrap();
        assert_eq!(resp.status(), 200, "after={after}");
        let tail = events(resp).await;
        let want: String = (after.saturating_sub(1) as usize..3000).map(|i| format!("{i}·片段{i} ")).collect();
        assert_eq!(content(&tail), want, "after={after}");
        assert_eq!(tail.first().unwrap().id, (after + 1).to_string());
        assert!(tail.iter().all(|e| e.data == "[DONE]" || e.json().get("error").is_none()), "after={after}");
        assert_eq!(tail.last().unwrap().data, "[DONE]");
    }
}

/// Writes a generation into Redis the way a holder's mirror does, so a test controls exactly
/// what another instance finds there: `entries` as `(seq, kind letter, payload)`.
async fn fake_generation(
    con: &mut redis::aio::MultiplexedConnection,
    id: &str,
    running: bool,
    entries: &[(u64, &str, &str)],
) {
    let _: () = redis::cmd("HSET")
        .arg(format!("cw:g:{id}"))
        .arg("owner")
        .arg("")
        .arg("model")
        .arg("m")
        .arg("created")
        .arg(1)
        .query_async(con)
        .await
        .unwrap();
    if running {
        let _: () = redis::cmd("SET")
            .arg(format!("cw:g:{id}:lease"))
            .arg("elsewhere")
            .arg("PX")
            .arg(3000)
            .query_async(con)
            .await
            .unwrap();
    }
    add_entries(con, id, entries).await;
}

async fn add_entries(con: &mut redis::aio::MultiplexedConnection, id: &str, entries: &[(u64, &str, &str)]) {
    for (seq, k, p) in entries {
        let _: String = redis::cmd("XADD")
            .arg(format!("cw:g:{id}:log"))
            .arg(format!("{seq}-0"))
            .arg("k")
            .arg(*k)
            .arg("p")
            .arg(*p)
            .query_async(con)
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_ahead_of_redis_waits_for_the_holders_mirror() {
    // The holder already sent events 3-5 to its own client, who was cut and landed here while
    // the mirror had written only 1-2.
    let redis = redis().await;
    let mut con = redis_con(&redis).await;
    let b = relay(shared("http://127.0.0.1:9", &redis)).await;
    let id = "chatcmpl-aheadofredis";
    fake_generation(&mut con, id, true, &[(1, "a", ""), (2, "c", "one ")]).await;
    let mut writer = con.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let rest =
            [(3, "c", "two "), (4, "c", "three "), (5, "c", "four "), (6, "c", "five"), (7, "f", "stop"), (8, "d", "")];
        add_entries(&mut writer, "chatcmpl-aheadofredis", &rest).await;
    });
    let resp = client().get(format!("{b}/v1/chat/stream/{id}?after=5")).send().await.unwrap();
    assert_eq!(resp.status(), 200, "{:?}", resp.text().await);
    let evs = events(resp).await;
    assert_eq!(evs.first().unwrap().id, "6");
    assert_eq!(content(&evs), "five");
    assert_eq!(evs.last().unwrap().data, "[DONE]");
    // Past the end of a generation nobody is producing any more: refused at once.
    let t = Instant::now();
    let _: () = redis::cmd("DEL").arg(format!("cw:g:{id}:lease")).query_async(&mut con).await.unwrap();
    let resp = client().get(format!("{b}/v1/chat/stream/{id}?after=20")).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert!(t.elapsed() < Duration::from_secs(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_reader_never_jumps_over_missing_events() {
    let redis = redis().await;
    let mut con = redis_con(&redis).await;
    let b = relay(shared("http://127.0.0.1:9", &redis)).await;
    // Trimmed under a slow reader: after event 2 the stream goes on at 5.
    let id = "chatcmpl-trimmedunder";
    fake_generation(&mut con, id, true, &[(1, "a", ""), (2, "c", "one ")]).await;
    let resp = client().get(format!("{b}/v1/chat/stream/{id}?after=2")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    add_entries(&mut con, id, &[(5, "c", "four "), (6, "f", "stop"), (7, "d", "")]).await;
    let _: () =
        redis::cmd("XTRIM").arg(format!("cw:g:{id}:log")).arg("MINID").arg("5-0").query_async(&mut con).await.unwrap();
    let evs = tokio::time::timeout(Duration::from_secs(5), events(resp)).await.unwrap();
    assert_eq!(content(&evs), "", "text after a gap was sent: {evs:?}");
    let err = evs.iter().find(|e| e.json().get("error").is_some()).expect("an error event");
    assert_eq!(err.json()["error"]["code"], "client_too_slow");

    // The holder's mirror could not copy events 3-4: it marked them lost.
    let id = "chatcmpl-mirrorlost";
    fake_generation(&mut con, id, false, &[(1, "a", ""), (2, "c", "one "), (3, "x", "")]).await;
    let evs = events(client().get(format!("{b}/v1/chat/stream/{id}?after=0")).send().await.unwrap()).await;
    assert_eq!(content(&evs), "one ");
    let err = evs.iter().find(|e| e.json().get("error").is_some()).expect("an error event");
    assert_eq!(err.json()["error"]["code"], "events_lost");
    let resp = client().get(format!("{b}/v1/chat/stream/{id}?after=4")).send().await.unwrap();
    assert_eq!(resp.status(), 410);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_elsewhere_is_truthful_and_lands_through_the_flag() {
    let redis = redis().await;
    let mut con = redis_con(&redis).await;
    let (script, _) = numbered(500, 20);
    let mock = Mock::start(script).await;
    let a = relay(shared(&mock.url(), &redis)).await;
    let b = relay(shared(&mock.url(), &redis)).await;
    // A cancel whose message nobody heard (published while the holder's subscriber was
    // reconnecting) still lands: the holder reads the flag with its lease.
    let (id, sse, _) = start_answer(&a, 1).await;
    let _: () = redis::cmd("SET")
        .arg(format!("cw:g:{id}:cancel"))
        .arg(1)
        .arg("EX")
        .arg(60)
        .query_async(&mut con)
        .await
        .unwrap();
    let within = chunkwise_relay::store::RENEW_EVERY + Duration::from_millis(500);
    let closed = mock.wait_for(0, within, |s| s.closed_at.is_some()).await;
    assert!(closed.is_some(), "a cancel flag was not noticed");
    drop(sse);
    // A generation that already finished is reported so, not "cancelled".
    let (script, _) = numbered(5, 0);
    let quick = Mock::start(script).await;
    let a = relay(shared(&quick.url(), &redis)).await;
    let resp = post(&a, "/v1/chat/completions", &chat("hi", true)).await;
    let id = generation_id(&resp);
    events(resp).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let v: serde_json::Value =
        client().post(format!("{b}/v1/chat/stream/{id}/cancel")).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["status"], "finished");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_resume_by_byte_offset_works_on_another_instance() {
    let redis = redis().await;
    let (script, expected) = numbered(80, 8);
    let mock = Mock::start(script).await;
    let a = relay(shared(&mock.url(), &redis)).await;
    let b = relay(shared(&mock.url(), &redis)).await;
    let (id, sse, first) = start_answer(&a, 10).await;
    // Running: a reader at the answer's last byte waits for the rest to reach Redis, and
    // gets nothing more (not a 400 for an answer that ended while it looked).
    let at_end = client().get(format!("{b}/v1/chat/stream/{id}?format=text&offset={}", expected.len())).send();
    let at_end = tokio::spawn(at_end);
    // Running: the text from the byte the client has on, served by the other instance.
    let have = content(&first);
    let resp = client().get(format!("{b}/v1/chat/stream/{id}?format=text&offset={}", have.len())).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let rest = resp.bytes().await.unwrap();
    assert_eq!([have.as_bytes(), &rest].concat(), expected.as_bytes());
    sse.all().await;
    let at_end = at_end.await.unwrap().unwrap();
    assert_eq!(at_end.status(), 200);
    assert!(at_end.bytes().await.unwrap().is_empty());
    // Finished: any byte, inside a character too, and the end.
    let bytes = expected.as_bytes();
    for offset in [0, 1, 9, 10, bytes.len() / 2, bytes.len()] {
        let url = format!("{b}/v1/chat/stream/{id}?format=text&offset={offset}");
        let resp = client().get(url).send().await.unwrap();
        assert_eq!(resp.status(), 200, "offset {offset}");
        assert_eq!(&resp.bytes().await.unwrap()[..], &bytes[offset..], "offset {offset}");
    }
    let resp =
        client().get(format!("{b}/v1/chat/stream/{id}?format=text&offset={}", bytes.len() + 1)).send().await.unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_elsewhere_gets_the_end_as_soon_as_it_is_in_redis() {
    // A remote reader waits in `XREAD BLOCK`; the end of the answer must reach it when it
    // lands, not when the block times out, whether the reader waits for it or already has it.
    let redis = redis().await;
    let (mut script, _) = numbered(20, 0);
    let finish = script.split_off(script.len() - openai_finish().len());
    script.push(Step::Sleep(400));
    script.extend(finish);
    let mock = Mock::start(script).await;
    let a = relay(shared(&mock.url(), &redis)).await;
    let b = relay(shared(&mock.url(), &redis)).await;
    let (id, mut sse, mut first) = start_answer(&a, 0).await;
    while content(&first).matches('·').count() < 20 {
        first.push(sse.next().await.unwrap());
    }
    // Waiting at the last delta on the other instance while the upstream pauses.
    let after = first.last().unwrap().id.clone();
    let waiting = client().get(format!("{b}/v1/chat/stream/{id}?after={after}")).send().await.unwrap();
    assert_eq!(waiting.status(), 200);
    let waiting = tokio::spawn(async move {
        let rest = events(waiting).await;
        (rest, Instant::now())
    });
    let rest = sse.all().await;
    let holder_done = Instant::now();
    let (remote_rest, remote_done) = waiting.await.unwrap();
    assert_eq!(remote_rest.last().unwrap().data, "[DONE]");
    assert_eq!(remote_rest.len(), rest.len());
    let late = remote_done.saturating_duration_since(holder_done);
    eprintln!("the end reached a blocked reader elsewhere {late:?} after the holder's reader");
    assert!(late < Duration::from_millis(300), "{late:?}");
    // Arriving after the end: an empty answer at once, in SSE and in text.
    let done = rest.last().unwrap().id.clone();
    let bytes = content(&first).len() + content(&rest).len();
    for url in
        [format!("{b}/v1/chat/stream/{id}?after={done}"), format!("{b}/v1/chat/stream/{id}?format=text&offset={bytes}")]
    {
        let t = Instant::now();
        let resp = client().get(&url).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{url}");
        assert!(resp.bytes().await.unwrap().is_empty(), "{url}");
        let took = t.elapsed();
        eprintln!("{url}: the empty answer took {took:?}");
        assert!(took < Duration::from_millis(300), "{url}: {took:?}");
    }
}
