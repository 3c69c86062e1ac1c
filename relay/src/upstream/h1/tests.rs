use super::*;
use tokio::net::TcpListener;

/// The connect and first-byte timeouts of these tests.
const T: Duration = Duration::from_secs(1);
/// The bound on each wait of a test that could otherwise hang.
const W: Duration = Duration::from_secs(3);
/// A gate that is open (no shared store to wait for).
#[allow(non_snake_case)]
fn OPEN() -> std::future::Ready<bool> {
    std::future::ready(true)
}

/// Reads from `s` until a request head has arrived, and returns all that was read; `None` when
/// the client closed (or the read failed) first.
async fn read_head(s: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    }
    Some(req)
}

/// Serves each accepted connection one `(request count, answer pieces)` script: reads a
/// request head (and its small body) per answer and writes the answer's pieces with a
/// pause between them, so they arrive as separate reads.
async fn serve(answers: Vec<Vec<Vec<u8>>>, keep: bool) -> (String, tokio::task::JoinHandle<usize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let mut accepted = 0;
        let mut answers = answers.into_iter().peekable();
        while answers.peek().is_some() {
            let (mut s, _) = listener.accept().await.unwrap();
            accepted += 1;
            while let Some(pieces) = answers.next() {
                read_head(&mut s).await.expect("the client closed before its request");
                for piece in pieces {
                    s.write_all(&piece).await.unwrap();
                    s.flush().await.unwrap();
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                if !keep || answers.peek().is_none() {
                    break;
                }
            }
        }
        accepted
    });
    (url, task)
}

async fn body(origin: &Origin, url: &str) -> io::Result<(u16, Vec<u8>)> {
    let mut resp = origin
        .post(&format!("{url}/chat/completions"), &[("accept", "text/event-stream")], b"{}", T, T, OPEN())
        .await
        .map_err(|e| io::Error::other(format!("{e:?}")))?;
    let mut out = Vec::new();
    while let Some(piece) = resp.chunk().await? {
        out.extend_from_slice(&piece);
    }
    Ok((resp.status, out))
}

/// The body of a request to a fresh origin whose one connection writes `answer` and closes.
async fn answer_once(answer: Vec<u8>) -> io::Result<Vec<u8>> {
    let (url, server) = serve(vec![vec![answer]], false).await;
    let got = body(&Origin::of(&url).unwrap(), &url).await;
    server.await.unwrap();
    got.map(|(_, out)| out)
}

const CHUNKED: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n\
    7\r\ndata: a\r\n10;ext=1\r\n\n\ndata: \xe7\x89\x87\xe6\xae\xb5b\n\r\n0\r\ntrailer: x\r\n\r\n";
const CHUNKED_BODY: &[u8] = b"data: a\n\ndata: \xe7\x89\x87\xe6\xae\xb5b\n";

#[tokio::test]
async fn a_chunked_body_is_the_same_however_it_is_split() {
    for at in 1..CHUNKED.len() {
        let (url, server) = serve(vec![vec![CHUNKED[..at].to_vec(), CHUNKED[at..].to_vec()]], false).await;
        let origin = Origin::of(&url).unwrap();
        let (status, got) = body(&origin, &url).await.unwrap_or_else(|e| panic!("split at {at}: {e}"));
        assert_eq!((status, &got[..]), (200, CHUNKED_BODY), "split at {at}");
        server.await.unwrap();
    }
}

#[tokio::test]
async fn length_and_close_delimited_bodies() {
    let length = b"HTTP/1.1 429 Too Many Requests\r\nretry-after: 7\r\ncontent-length: 5\r\n\r\nhello".to_vec();
    let close = b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil the end".to_vec();
    for at in [1, 20, length.len() - 2] {
        let (url, server) = serve(vec![vec![length[..at].to_vec(), length[at..].to_vec()]], false).await;
        let origin = Origin::of(&url).unwrap();
        let mut resp = origin.post(&format!("{url}/x"), &[], b"", T, T, OPEN()).await.unwrap();
        assert_eq!((resp.status, resp.retry_after), (429, Some(7)));
        let mut got = Vec::new();
        while let Some(piece) = resp.chunk().await.unwrap() {
            got.extend_from_slice(&piece);
        }
        assert_eq!(got, b"hello");
        server.await.unwrap();
    }
    let (url, server) = serve(vec![vec![close.clone()]], false).await;
    let origin = Origin::of(&url).unwrap();
    assert_eq!(body(&origin, &url).await.unwrap().1, b"until the end");
    server.await.unwrap();
}

#[tokio::test]
async fn a_connection_is_kept_for_the_next_answer_and_a_closed_one_is_replaced() {
    // Two answers on one connection.
    let (url, server) = serve(vec![vec![CHUNKED.to_vec()], vec![CHUNKED.to_vec()]], true).await;
    let origin = Origin::of(&url).unwrap();
    assert_eq!(body(&origin, &url).await.unwrap().1, CHUNKED_BODY);
    assert_eq!(body(&origin, &url).await.unwrap().1, CHUNKED_BODY);
    assert_eq!(server.await.unwrap(), 1, "the second answer did not reuse the connection");
    // The upstream closes each connection after its answer: the kept one fails before any
    // byte, and the request goes out again on a new one.
    let (url, server) = serve(vec![vec![CHUNKED.to_vec()], vec![CHUNKED.to_vec()]], false).await;
    let origin = Origin::of(&url).unwrap();
    assert_eq!(body(&origin, &url).await.unwrap().1, CHUNKED_BODY);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(body(&origin, &url).await.unwrap().1, CHUNKED_BODY);
    assert_eq!(server.await.unwrap(), 2);
}

#[tokio::test]
async fn the_connection_is_made_while_the_gate_is_shut_and_the_request_waits_for_it() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let (silent_tx, silent) = tokio::sync::oneshot::channel();
    let server = tokio::spawn(async move {
        let accepted = tokio::time::timeout(W, listener.accept()).await;
        let (mut s, _) = accepted.expect("no connection was made while the gate was shut").unwrap();
        // Connected, and nothing arrives while the gate is shut.
        let mut byte = [0u8; 1];
        let early = tokio::time::timeout(Duration::from_millis(200), s.read(&mut byte)).await;
        assert!(early.is_err(), "the request went out before the gate opened: {early:?}");
        silent_tx.send(()).unwrap();
        let head = tokio::time::timeout(W, read_head(&mut s)).await.expect("no request after the gate opened");
        let head = head.expect("the client closed before its request");
        assert!(head.starts_with(b"POST /v1/x HTTP/1.1\r\n"), "{}", String::from_utf8_lossy(&head));
        s.write_all(CHUNKED).await.unwrap();
    });
    let (open_tx, open_rx) = tokio::sync::oneshot::channel::<()>();
    let origin = Origin::of(&url).unwrap();
    let target = format!("{url}/x");
    let sending = origin.post(&target, &[], b"", T, T, async { open_rx.await.is_ok() });
    let opener = async {
        // The server fails (and drops `silent_tx`) if no connection came.
        tokio::time::timeout(W, silent).await.expect("the server heard nothing").expect("the server failed");
        open_tx.send(()).unwrap();
    };
    let (resp, ()) = tokio::time::timeout(W * 2, async { tokio::join!(sending, opener) }).await.expect("stuck");
    assert_eq!(resp.map(|r| r.status).map_err(|e| format!("{e:?}")), Ok(200));
    tokio::time::timeout(W, server).await.expect("the server is stuck").unwrap();
}

#[tokio::test]
async fn an_unreachable_upstream_behind_a_gate_is_unreachable_once_it_opens() {
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", closed.local_addr().unwrap());
    drop(closed);
    let origin = Origin::of(&url).unwrap();
    let later = async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        true
    };
    let sent = origin.post(&format!("{url}/x"), &[], b"", T, T, later).await;
    assert!(matches!(sent, Err(SendError::Unreachable)), "{:?}", sent.err());
}

/// Answers every request on every connection it accepts with `CHUNKED`, keeping each
/// connection; counts the connections it accepted.
async fn serve_all() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let accepted = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = accepted.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else { return };
            counted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                while read_head(&mut s).await.is_some() {
                    if s.write_all(CHUNKED).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, accepted)
}

/// A gate that opens (or stays shut, `false`) after `ms`.
async fn gate(ms: u64, open: bool) -> bool {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    open
}

#[tokio::test]
async fn a_gate_that_stays_shut_sends_nothing_and_keeps_the_connection() {
    use std::sync::atomic::Ordering;
    let (url, accepted) = serve_all().await;
    let origin = Origin::of(&url).unwrap();
    assert_eq!(body(&origin, &url).await.unwrap().1, CHUNKED_BODY);
    // Shut while a connection is kept: it stays in the pool, untouched, and no other is made.
    let target = format!("{url}/chat/completions");
    let refused = origin.post(&target, &[], b"{}", T, T, gate(20, false)).await;
    assert!(matches!(refused, Err(SendError::Refused)), "{:?}", refused.err());
    assert_eq!(origin.idle.lock().unwrap().len(), 1);
    assert_eq!(body(&origin, &url).await.unwrap().1, CHUNKED_BODY);
    // Shut before anything: no connection is made.
    let fresh = Origin::of(&url).unwrap();
    let shut = fresh.post(&target, &[], b"{}", T, T, std::future::ready(false)).await;
    assert!(matches!(shut, Err(SendError::Refused)));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "a refused request made a connection");
}

#[tokio::test]
async fn a_connection_made_for_a_refused_answer_is_kept_for_the_next() {
    use std::sync::atomic::Ordering;
    let (url, accepted) = serve_all().await;
    let origin = Origin::of(&url).unwrap();
    let refused = origin.post(&format!("{url}/x"), &[], b"", T, T, gate(50, false)).await;
    assert!(matches!(refused, Err(SendError::Refused)), "{:?}", refused.err());
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "no connection was made while the gate was shut");
    assert_eq!(origin.idle.lock().unwrap().len(), 1, "the connection made for nothing was dropped");
    assert_eq!(body(&origin, &url).await.unwrap().1, CHUNKED_BODY);
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "the kept connection was not reused");
}

#[tokio::test]
async fn a_kept_connection_closed_while_the_gate_is_shut_is_not_used() {
    // The upstream keeps the first connection 50 ms after its answer (an idle timeout), then
    // closes it; the gate opens at 100 ms.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        read_head(&mut s).await.expect("no first request");
        s.write_all(CHUNKED).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(s);
        let (mut s, _) = listener.accept().await.unwrap();
        read_head(&mut s).await.expect("no second request");
        s.write_all(CHUNKED).await.unwrap();
    });
    let origin = Origin::of(&url).unwrap();
    assert_eq!(body(&origin, &url).await.unwrap().1, CHUNKED_BODY);
    let mut resp = origin
        .post(&format!("{url}/x"), &[], b"", T, T, gate(100, true))
        .await
        .map_err(|e| format!("{e:?}"))
        .expect("the request went to the closed connection");
    let mut got = Vec::new();
    while let Some(piece) = resp.chunk().await.unwrap() {
        got.extend_from_slice(&piece);
    }
    assert_eq!((resp.status, &got[..]), (200, CHUNKED_BODY));
    tokio::time::timeout(Duration::from_secs(2), server).await.expect("no second connection").unwrap();
}

#[tokio::test]
async fn a_kept_connection_keeps_its_idle_time_through_a_refusal() {
    let (url, _accepted) = serve_all().await;
    let origin = Origin::of(&url).unwrap();
    assert_eq!(body(&origin, &url).await.unwrap().1, CHUNKED_BODY);
    let since = origin.idle.lock().unwrap()[0].1;
    let refused = origin.post(&format!("{url}/x"), &[], b"", T, T, gate(20, false)).await;
    assert!(matches!(refused, Err(SendError::Refused)));
    assert_eq!(origin.idle.lock().unwrap()[0].1, since, "a refusal restarted the idle time");
}

/// Answers every request on every connection it accepts: the first with `CHUNKED` on a
/// kept connection, the second with `second` and then a close, any later one with
/// `CHUNKED`. Counts the requests it read.
async fn serve_counting(second: Vec<u8>) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let count = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = count.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else { return };
            let (count, second) = (counted.clone(), second.clone());
            tokio::spawn(async move {
                loop {
                    if read_head(&mut s).await.is_none() {
                        return;
                    }
                    if count.fetch_add(1, Ordering::SeqCst) == 1 {
                        let _ = s.write_all(&second).await;
                        return;
                    }
                    let _ = s.write_all(CHUNKED).await;
                }
            });
        }
    });
    (url, count)
}

#[tokio::test]
async fn a_request_is_not_sent_again_once_it_was_written_to_a_kept_connection() {
    let mut big_head = b"HTTP/1.1 200 OK\r\nx: ".to_vec();
    big_head.extend(std::iter::repeat_n(b'x', MAX_HEAD + 10));
    let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
    for i in 0..70 {
        many.extend_from_slice(format!("h{i}: v\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    let cases: [(&str, Vec<u8>); 5] = [
        ("closed after the request", Vec::new()),
        ("part of a head", b"HTTP/1.1 200 OK\r\ncontent-".to_vec()),
        ("a malformed head", b"HTTQ/9 what\r\n\r\n".to_vec()),
        ("a head over the bound", big_head),
        ("more than 64 headers", many),
    ];
    let continued = b"HTTP/1.1 100 Continue\r\n\r\n".to_vec();
    for (what, second) in cases.into_iter().chain([("a 1xx", continued)]) {
        let (url, count) = serve_counting(second).await;
        let origin = Origin::of(&url).unwrap();
        assert_eq!(body(&origin, &url).await.unwrap().1, CHUNKED_BODY);
        assert!(body(&origin, &url).await.is_err(), "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 2, "{what}: the request was sent again");
    }
}

#[tokio::test]
async fn a_final_head_in_the_same_segment_as_a_1xx_is_read_without_waiting() {
    let both = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi".to_vec();
    // The server writes both heads at once and keeps the connection open.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut req = [0u8; 4096];
        let _ = s.read(&mut req).await.unwrap();
        s.write_all(&both).await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
        drop(s);
    });
    let origin = Origin::of(&url).unwrap();
    let got = tokio::time::timeout(Duration::from_secs(2), body(&origin, &url)).await;
    assert_eq!(got.expect("waited for bytes it already had").unwrap(), (200, b"hi".to_vec()));
    server.abort();
}

#[tokio::test]
async fn broken_framing_and_cut_bodies_are_errors() {
    let cases: [&[u8]; 4] = [
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabcX\r\n",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n10\r\nabc",
        b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc",
    ];
    for case in cases {
        assert!(answer_once(case.to_vec()).await.is_err(), "{:?}", String::from_utf8_lossy(case));
    }
    // A chunk-size line without an end is bounded.
    let mut long = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    long.extend(std::iter::repeat_n(b'0', MAX_LINE + 10));
    assert!(answer_once(long).await.is_err());
    // So is a head.
    let mut head = b"HTTP/1.1 200 OK\r\n".to_vec();
    head.extend(std::iter::repeat_n(b'x', MAX_HEAD + 10));
    let (url, server) = serve(vec![vec![head]], false).await;
    let origin = Origin::of(&url).unwrap();
    assert!(origin.post(&format!("{url}/x"), &[], b"", T, T, OPEN()).await.is_err());
    server.await.unwrap();
}

#[tokio::test]
async fn stale_idle_connections_leave_the_whole_pool() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let origin = Origin::of(&url).unwrap();
    let mut kept = Vec::new();
    for _ in 0..3 {
        let stream = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        kept.push(listener.accept().await.unwrap().0);
        origin.idle.lock().unwrap().push((stream, Instant::now(), lane()));
    }
    // The two at the bottom are old; the top one is fresh and taken.
    let old = Instant::now().checked_sub(IDLE_FOR * 2).unwrap();
    origin.idle.lock().unwrap()[0].1 = old;
    origin.idle.lock().unwrap()[1].1 = old;
    assert!(origin.checkout().is_some());
    assert_eq!(origin.idle.lock().unwrap().len(), 0, "stale connections stayed in the pool");
}

#[tokio::test]
async fn a_kept_connection_goes_back_only_to_the_worker_thread_that_made_it() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let origin = std::sync::Arc::new(Origin::of(&url).unwrap());
    let mut made = Vec::new();
    let mut peers = Vec::new();
    for worker in 0..2 {
        let stream = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        peers.push(listener.accept().await.unwrap().0);
        made.push(stream.local_addr().unwrap());
        origin.idle.lock().unwrap().push((stream, Instant::now(), worker));
    }
    // This thread is no worker: neither is its.
    assert!(origin.checkout().is_none());
    let taken_on = |index| {
        let origin = origin.clone();
        std::thread::spawn(move || {
            crate::workers::enter(index, 3);
            origin.checkout().map(|s| s.local_addr().unwrap())
        })
        .join()
        .unwrap()
    };
    assert_eq!(taken_on(2), None, "a worker took another's connection");
    assert_eq!(taken_on(1), Some(made[1]));
    assert_eq!(taken_on(0), Some(made[0]));
    assert!(origin.idle.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_header_value_with_a_line_break_is_refused() {
    let origin = Origin::of("http://127.0.0.1:9/v1").unwrap();
    let sent = origin.post("http://127.0.0.1:9/v1/x", &[("authorization", "Bearer a\r\nx-evil: 1")], b"", T, T, OPEN());
    assert!(matches!(sent.await, Err(SendError::Failed)));
    assert!(Origin::of("https://example.com/v1").is_none());
}
/// One answer on a connection the server then keeps open for 5 s: a body read to its end
/// does not wait for a close.
async fn answer_and_hold(answer: &'static [u8]) -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut req = [0u8; 4096];
        let _ = s.read(&mut req).await.unwrap();
        s.write_all(answer).await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    (url, server)
}

#[tokio::test]
async fn a_transfer_coding_other_than_just_chunked_is_an_error() {
    for te in ["gzip", "gzip, chunked", "chunked, chunked", "chunked;x=1", "identity", ""] {
        let answer = format!("HTTP/1.1 200 OK\r\ntransfer-encoding: {te}\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
        assert!(answer_once(answer.into_bytes()).await.is_err(), "transfer-encoding: {te}");
    }
    // Over two lines, chunked last is still two codings.
    let answer = b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n";
    assert!(answer_once(answer.to_vec()).await.is_err());
    // Its case and spaces do not matter.
    let answer = b"HTTP/1.1 200 OK\r\ntransfer-encoding:  Chunked \r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    assert_eq!(answer_once(answer.to_vec()).await.unwrap(), b"abc");
}

#[tokio::test]
async fn chunked_wins_over_a_content_length_and_that_connection_is_not_kept() {
    let chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    let both = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    for (answer, kept) in [(&chunked[..], 1), (&both[..], 0)] {
        let (url, server) = answer_and_hold(answer).await;
        let origin = Origin::of(&url).unwrap();
        assert_eq!(body(&origin, &url).await.unwrap().1, b"abc");
        assert_eq!(origin.idle.lock().unwrap().len(), kept, "{}", String::from_utf8_lossy(answer));
        server.abort();
    }
}

#[tokio::test]
async fn a_content_length_is_digits_and_repeated_only_with_its_value() {
    for cl in ["+5", "-5", "0x5", "5 5", "5;", "", "5, 6", "99999999999999999999999"] {
        let answer = format!("HTTP/1.1 200 OK\r\ncontent-length: {cl}\r\n\r\nhello");
        assert!(answer_once(answer.into_bytes()).await.is_err(), "content-length: {cl}");
    }
    let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\nhello!";
    assert!(answer_once(answer.to_vec()).await.is_err(), "two lines, two values");
    // The same value twice is one length.
    for answer in [
        &b"HTTP/1.1 200 OK\r\ncontent-length: 5, 5\r\n\r\nhello"[..],
        &b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 5\r\n\r\nhello"[..],
    ] {
        let (url, server) = answer_and_hold(answer).await;
        let got = tokio::time::timeout(Duration::from_secs(2), body(&Origin::of(&url).unwrap(), &url)).await;
        assert_eq!(got.expect("waited for a close").unwrap().1, b"hello");
        server.abort();
    }
}

#[tokio::test]
async fn a_chunk_size_with_a_sign_or_space_before_it_is_an_error() {
    for size in ["+3", "-3", " 3", "0x3"] {
        let answer = format!("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n{size}\r\nabc\r\n0\r\n\r\n");
        assert!(answer_once(answer.into_bytes()).await.is_err(), "chunk size {size:?}");
    }
    // Whitespace before an extension is allowed (BWS).
    let answer = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3 ;x=1\r\nabc\r\n0\r\n\r\n";
    assert_eq!(answer_once(answer.to_vec()).await.unwrap(), b"abc");
}

#[tokio::test]
async fn a_204_or_304_ends_at_its_head_and_keeps_the_connection() {
    let cases: [&[u8]; 3] = [
        b"HTTP/1.1 204 No Content\r\n\r\n",
        b"HTTP/1.1 304 Not Modified\r\ncontent-length: 5\r\n\r\n",
        b"HTTP/1.1 204 No Content\r\ntransfer-encoding: gzip\r\n\r\n",
    ];
    for answer in cases {
        let (url, server) = answer_and_hold(answer).await;
        let origin = Origin::of(&url).unwrap();
        let got = tokio::time::timeout(Duration::from_secs(2), body(&origin, &url)).await;
        let (status, got) = got.expect("waited for a close").unwrap();
        assert!(got.is_empty() && (status == 204 || status == 304));
        assert_eq!(origin.idle.lock().unwrap().len(), 1, "{}", String::from_utf8_lossy(answer));
        server.abort();
    }
}

#[tokio::test]
async fn the_trailer_has_a_bound_on_its_lines() {
    for (lines, ok) in [(MAX_TRAILERS, true), (MAX_TRAILERS + 1, false)] {
        let mut answer = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n".to_vec();
        for i in 0..lines {
            answer.extend_from_slice(format!("t{i}: v\r\n").as_bytes());
        }
        answer.extend_from_slice(b"\r\n");
        assert_eq!(answer_once(answer).await.is_ok(), ok, "{lines} trailer lines");
    }
}

#[tokio::test]
async fn a_host_name_is_looked_up_and_each_address_tried() {
    let (url, server) = serve(vec![vec![CHUNKED.to_vec()]], false).await;
    // `localhost` may resolve to ::1 first, where nothing listens: the next address is tried.
    let url = url.replace("127.0.0.1", "localhost");
    let origin = Origin::of(&url).unwrap();
    assert!(origin.ip.is_none());
    let (status, out) = body(&origin, &url).await.unwrap();
    assert_eq!((status, out.as_slice()), (200, CHUNKED_BODY));
    server.await.unwrap();
}

#[tokio::test]
async fn a_request_larger_than_the_socket_buffer_goes_out_whole() {
    // Sent partly with the connect, the rest once the upstream reads.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let big = vec![b'x'; 8 << 20];
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut got = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        let want = loop {
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0, "the request was cut");
            got.extend_from_slice(&buf[..n]);
            if let Some(p) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                if got.len() >= p + 4 + (8 << 20) {
                    break got.len() - p - 4;
                }
            }
        };
        s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await.unwrap();
        want
    });
    let origin = Origin::of(&url).unwrap();
    let mut resp = origin
        .post(&format!("{url}/chat/completions"), &[], &big, T, T, OPEN())
        .await
        .map_err(|e| format!("{e:?}"))
        .unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.chunk().await.unwrap().as_deref(), Some(&b"ok"[..]));
    assert_eq!(server.await.unwrap(), 8 << 20);
}

#[tokio::test]
async fn an_ipv6_literal_is_connected_to_without_a_lookup() {
    let listener = TcpListener::bind("[::1]:0").await.expect("IPv6 loopback");
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    assert!(url.starts_with("http://[::1]:"), "{url}");
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let req = read_head(&mut s).await.expect("the client closed before its request");
        s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await.unwrap();
        String::from_utf8(req).unwrap()
    });
    let origin = Origin::of(&url).unwrap();
    assert_eq!(origin.ip, Some(SocketAddr::new(std::net::Ipv6Addr::LOCALHOST.into(), origin.ip.unwrap().port())));
    let (status, out) = body(&origin, &url).await.unwrap();
    assert_eq!((status, out.as_slice()), (200, &b"ok"[..]));
    let req = server.await.unwrap();
    // The Host header keeps the brackets (RFC 9110 §7.2 with RFC 3986's IP-literal).
    assert!(req.contains("\r\nhost: [::1]:"), "{req}");
}

/// A gate that is shut when first asked and says `open` when asked again: it settles while a
/// host name's lookup (on a thread of its own) is still running.
async fn next_turn(open: bool) -> bool {
    tokio::task::yield_now().await;
    open
}

#[tokio::test]
async fn a_gate_that_settles_during_the_lookup_does_not_wait_for_it() {
    use std::sync::atomic::Ordering;
    let (url, accepted) = serve_all().await;
    let url = url.replace("127.0.0.1", "localhost");
    let target = format!("{url}/x");
    // Refused: the lookup is abandoned and no connection is made.
    let origin = Origin::of(&url).unwrap();
    let refused = origin.post(&target, &[], b"", T, T, next_turn(false)).await;
    assert!(matches!(refused, Err(SendError::Refused)), "{:?}", refused.err());
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(accepted.load(Ordering::SeqCst), 0, "a connection was made for a refused answer");
    // Admitted: the request goes out on the connection the lookup leads to, once.
    let mut resp = origin.post(&target, &[], b"", T, T, next_turn(true)).await.map_err(|e| format!("{e:?}")).unwrap();
    assert_eq!(resp.status, 200);
    while resp.chunk().await.unwrap().is_some() {}
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[test]
fn a_request_target_is_what_the_url_parser_makes_of_the_url() {
    let suffixes = [
        "/chat/completions",
        "/v1/messages",
        "/v1beta/models/gemini-1.5-pro:streamGenerateContent?alt=sse",
        "/v1beta/models/a b:x?alt=sse",
        "/models/é/x",
        "/../x",
        "/./x",
        "/a/../../b?c=d&e",
        "/x%2Fy",
        "/x#frag",
        "/x?y=é z",
        "/x\\y",
        "",
        "x",
    ];
    // The usual base URL takes the path without a second parse.
    assert!(Origin::of("http://127.0.0.1:9/v1").unwrap().base.is_some());
    for base in [
        "http://127.0.0.1:9/v1",
        "http://h:9",
        "http://h:9/",
        "http://H:80/V1/",
        "http://h:9/a%20b",
        "http://h:9/a/./b",
    ] {
        let origin = Origin::of(base).unwrap();
        for suffix in suffixes {
            let url = format!("{base}{suffix}");
            let want = reqwest::Url::parse(&url).ok().map(|parsed| match parsed.query() {
                Some(q) => format!("{}?{q}", parsed.path()),
                None => parsed.path().to_string(),
            });
            assert_eq!(origin.target(&url), want, "{url}");
        }
    }
}
