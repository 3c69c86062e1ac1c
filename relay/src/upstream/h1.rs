//! HTTP/1.1 to a plain `http://` upstream (Ollama, vLLM, llama.cpp on the same host or
//! network), read inside the generation's own task.
//!
//! Why not the general client: over HTTP/1.1 every stream has a connection of its own, and a
//! pooled client connection is a task of its own with 16 KiB of buffers, handing each piece of
//! the body to the generation's task through a channel: a second task woken per delta. Here
//! the generation's task reads its socket itself into one small buffer and decodes the body
//! framing in place (RFC 9112 §6-7: `Content-Length`, `chunked`, or until close).
//!
//! Connections are kept alive between answers, as the general client does, in a small LIFO
//! pool ([`MAX_IDLE`], each at most [`IDLE_FOR`]). A kept connection the upstream has closed
//! is seen closed when it is taken and not used. The request goes out once more, on a new
//! connection, only when writing it to a kept connection failed: once the whole request was
//! written the upstream may have acted on it (an answer is not to be asked for twice), so any
//! failure after that, even an end of file before any byte of a response, is the request's
//! failure (the rule hyper follows too). No HTTP proxy is used. `https://` upstreams and
//! `upstream.http2` use the general client.
//!
//! Bounds: the response head is at most [`MAX_HEAD`] bytes, a chunk-size or trailer line at
//! most [`MAX_LINE`]; anything longer is an error, not a bigger buffer.

use std::io;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MAX_HEAD: usize = 64 * 1024;
const MAX_LINE: usize = 4 * 1024;
/// Read size: an upstream's SSE events are small; a larger piece is read in several.
const READ: usize = 2 * 1024;
const MAX_IDLE: usize = 256;
const IDLE_FOR: Duration = Duration::from_secs(60);

/// Why a request got no response head.
#[derive(Debug)]
pub enum SendError {
    ConnectTimeout,
    Unreachable,
    /// The connection failed or the head was not HTTP/1.1 we can read.
    Failed,
}

/// One plain-HTTP upstream origin and its kept-alive connections.
pub struct Origin {
    /// `host:port` to connect to.
    addr: String,
    /// The `Host` header.
    authority: String,
    idle: Mutex<Vec<(TcpStream, Instant)>>,
}

impl Origin {
    /// The origin of an `http://` base URL, or `None` for any other.
    pub fn of(base_url: &str) -> Option<Origin> {
        let url = reqwest::Url::parse(base_url).ok()?;
        if url.scheme() != "http" {
            return None;
        }
        let host = url.host_str()?;
        let port = url.port_or_known_default()?;
        let authority = match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        };
        Some(Origin { addr: format!("{host}:{port}"), authority, idle: Mutex::new(Vec::new()) })
    }

    /// Sends `POST url` with `headers` and `body`, and reads the response head.
    pub async fn post(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        connect_timeout: Duration,
    ) -> Result<Response<'_>, SendError> {
        let url = reqwest::Url::parse(url).map_err(|_| SendError::Failed)?;
        let mut request = Vec::with_capacity(256 + body.len());
        request.extend_from_slice(b"POST ");
        request.extend_from_slice(url.path().as_bytes());
        if let Some(q) = url.query() {
            request.push(b'?');
            request.extend_from_slice(q.as_bytes());
        }
        request.extend_from_slice(b" HTTP/1.1\r\nhost: ");
        request.extend_from_slice(self.authority.as_bytes());
        for (name, value) in headers {
            // A value with a line break would start a header of its own.
            if value.bytes().any(|b| b == b'\r' || b == b'\n') {
                return Err(SendError::Failed);
            }
            request.extend_from_slice(format!("\r\n{name}: {value}").as_bytes());
        }
        request.extend_from_slice(format!("\r\ncontent-length: {}\r\n\r\n", body.len()).as_bytes());
        request.extend_from_slice(body);
        // A kept connection first; if the request could not be written to it, a new one. Once
        // it was written, a failure is final: the upstream may have acted on it.
        if let Some(stream) = self.checkout() {
            match self.exchange(stream, &request).await {
                Ok(Some(resp)) => return Ok(resp),
                Ok(None) => {}
                Err(e) => return Err(e),
            }
        }
        let stream = match tokio::time::timeout(connect_timeout, TcpStream::connect(&self.addr)).await {
            Err(_) => return Err(SendError::ConnectTimeout),
            Ok(Err(_)) => return Err(SendError::Unreachable),
            Ok(Ok(s)) => s,
        };
        let _ = stream.set_nodelay(true);
        match self.exchange(stream, &request).await {
            Ok(Some(resp)) => Ok(resp),
            _ => Err(SendError::Failed),
        }
    }

    fn checkout(&self) -> Option<TcpStream> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        // Stale ones anywhere in the pool go, not only at its top (the oldest are at the bottom).
        idle.retain(|(_, since)| since.elapsed() < IDLE_FOR);
        while let Some((stream, since)) = idle.pop() {
            // Closed by the upstream meanwhile (end of file), or sending unasked: not kept.
            let quiet = matches!(stream.try_read(&mut [0u8; 1]), Err(e) if e.kind() == io::ErrorKind::WouldBlock);
            if quiet && since.elapsed() < IDLE_FOR {
                return Some(stream);
            }
        }
        None
    }

    fn checkin(&self, stream: TcpStream) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push((stream, Instant::now()));
        }
    }

    /// Writes the request and reads the head: `Ok(None)` when the request could not be written.
    async fn exchange(&self, mut stream: TcpStream, request: &[u8]) -> Result<Option<Response<'_>>, SendError> {
        if stream.write_all(request).await.is_err() {
            return Ok(None);
        }
        let mut buf = BytesMut::with_capacity(READ);
        // After a 1xx, what is already read is parsed first: the final head may have come in
        // the same segment.
        let mut read = true;
        loop {
            if read {
                match stream.read_buf(&mut buf).await {
                    Ok(0) | Err(_) => return Err(SendError::Failed),
                    Ok(_) => {}
                }
            }
            read = true;
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut head = httparse::Response::new(&mut headers);
            match head.parse(&buf) {
                Ok(httparse::Status::Complete(len)) => {
                    let status = head.code.unwrap_or(0);
                    if (100..200).contains(&status) {
                        // 1xx: an interim answer; the real one follows.
                        buf.advance(len);
                        read = buf.is_empty();
                        continue;
                    }
                    let header = |name: &str| {
                        head.headers
                            .iter()
                            .filter(|h| h.name.eq_ignore_ascii_case(name))
                            .filter_map(|h| std::str::from_utf8(h.value).ok())
                            .collect::<Vec<_>>()
                            .join(",")
                    };
                    let chunked = header("transfer-encoding").to_ascii_lowercase().contains("chunked");
                    let close = header("connection").to_ascii_lowercase().contains("close") || head.version == Some(0);
                    let length = header("content-length").trim().parse::<u64>().ok();
                    let retry_after = header("retry-after").trim().parse::<u64>().ok();
                    let framing = match (chunked, length) {
                        (true, _) => Framing::Size,
                        (false, Some(n)) => Framing::Data { left: n, chunked: false },
                        (false, None) => Framing::UntilClose,
                    };
                    buf.advance(len);
                    return Ok(Some(Response {
                        origin: self,
                        status,
                        retry_after,
                        stream: Some(stream),
                        buf,
                        framing,
                        keep: !close,
                    }));
                }
                Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => buf.reserve(READ),
                _ => return Err(SendError::Failed),
            }
        }
    }
}

/// Where the body's framing is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// At a chunk-size line.
    Size,
    /// Inside data: `left` bytes of it; then, if chunked, a CRLF.
    Data {
        left: u64,
        chunked: bool,
    },
    /// After a chunk's data: its CRLF.
    DataEnd,
    /// After the last chunk: trailer lines up to an empty one.
    Trailers,
    UntilClose,
    Done,
}

/// A response whose body is read in place.
pub struct Response<'a> {
    origin: &'a Origin,
    pub status: u16,
    pub retry_after: Option<u64>,
    stream: Option<TcpStream>,
    buf: BytesMut,
    framing: Framing,
    keep: bool,
}

impl Response<'_> {
    /// The next piece of the body; `Ok(None)` at its end. An error when the connection fails
    /// or the framing is broken.
    pub async fn chunk(&mut self) -> io::Result<Option<Bytes>> {
        loop {
            match self.framing {
                Framing::Done => return Ok(None),
                Framing::Data { left: 0, chunked } => {
                    self.framing = if chunked { Framing::DataEnd } else { self.finish() };
                    continue;
                }
                Framing::Data { left, chunked } => {
                    if !self.buf.is_empty() {
                        let n = (self.buf.len() as u64).min(left) as usize;
                        let data = self.buf.split_to(n).freeze();
                        self.framing = match (left - n as u64, chunked) {
                            (0, true) => Framing::DataEnd,
                            (0, false) => self.finish(),
                            (left, chunked) => Framing::Data { left, chunked },
                        };
                        return Ok(Some(data));
                    }
                }
                Framing::UntilClose => {
                    if !self.buf.is_empty() {
                        return Ok(Some(self.buf.split().freeze()));
                    }
                }
                Framing::Size | Framing::DataEnd | Framing::Trailers => {
                    if let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") {
                        let line = self.buf.split_to(end + 2);
                        let line = &line[..end];
                        self.framing = match self.framing {
                            Framing::Size => {
                                let size = line.split(|b| *b == b';').next().unwrap_or_default();
                                let size = std::str::from_utf8(size).ok().map(str::trim);
                                match size.and_then(|s| u64::from_str_radix(s, 16).ok()) {
                                    Some(0) => Framing::Trailers,
                                    Some(n) => Framing::Data { left: n, chunked: true },
                                    None => return Err(broken_framing()),
                                }
                            }
                            Framing::DataEnd if line.is_empty() => Framing::Size,
                            Framing::DataEnd => return Err(broken_framing()),
                            _ if line.is_empty() => self.finish(),
                            _ => Framing::Trailers,
                        };
                        continue;
                    }
                    if self.buf.len() >= MAX_LINE {
                        return Err(broken_framing());
                    }
                }
            }
            let Some(stream) = self.stream.as_mut() else { return Ok(None) };
            if self.buf.capacity() - self.buf.len() < 64 {
                self.buf.reserve(READ);
            }
            if stream.read_buf(&mut self.buf).await? == 0 {
                if self.framing == Framing::UntilClose {
                    self.stream = None;
                    self.framing = Framing::Done;
                    return Ok(None);
                }
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    /// The body is complete: the connection goes back to the pool, if it may.
    fn finish(&mut self) -> Framing {
        if let Some(stream) = self.stream.take() {
            if self.keep && self.buf.is_empty() {
                self.origin.checkin(stream);
            }
        }
        Framing::Done
    }
}

fn broken_framing() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "the upstream's chunked body is malformed")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

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
                    let mut req = Vec::new();
                    let mut byte = [0u8; 1024];
                    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                        let n = s.read(&mut byte).await.unwrap();
                        assert!(n > 0, "the client closed before its request");
                        req.extend_from_slice(&byte[..n]);
                    }
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
            .post(&format!("{url}/chat/completions"), &[("accept", "text/event-stream")], b"{}", Duration::from_secs(1))
            .await
            .map_err(|e| io::Error::other(format!("{e:?}")))?;
        let mut out = Vec::new();
        while let Some(piece) = resp.chunk().await? {
            out.extend_from_slice(&piece);
        }
        Ok((resp.status, out))
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
            let mut resp = origin.post(&format!("{url}/x"), &[], b"", Duration::from_secs(1)).await.unwrap();
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
                        let mut req = Vec::new();
                        let mut byte = [0u8; 1024];
                        while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                            match s.read(&mut byte).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => req.extend_from_slice(&byte[..n]),
                            }
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
            let (url, server) = serve(vec![vec![case.to_vec()]], false).await;
            let origin = Origin::of(&url).unwrap();
            assert!(body(&origin, &url).await.is_err(), "{:?}", String::from_utf8_lossy(case));
            server.await.unwrap();
        }
        // A chunk-size line without an end is bounded.
        let mut long = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
        long.extend(std::iter::repeat_n(b'0', MAX_LINE + 10));
        let (url, server) = serve(vec![vec![long]], false).await;
        let origin = Origin::of(&url).unwrap();
        assert!(body(&origin, &url).await.is_err());
        server.await.unwrap();
        // So is a head.
        let mut head = b"HTTP/1.1 200 OK\r\n".to_vec();
        head.extend(std::iter::repeat_n(b'x', MAX_HEAD + 10));
        let (url, server) = serve(vec![vec![head]], false).await;
        let origin = Origin::of(&url).unwrap();
        assert!(origin.post(&format!("{url}/x"), &[], b"", Duration::from_secs(1)).await.is_err());
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
            origin.idle.lock().unwrap().push((stream, Instant::now()));
        }
        // The two at the bottom are old; the top one is fresh and taken.
        let old = Instant::now().checked_sub(IDLE_FOR * 2).unwrap();
        origin.idle.lock().unwrap()[0].1 = old;
        origin.idle.lock().unwrap()[1].1 = old;
        assert!(origin.checkout().is_some());
        assert_eq!(origin.idle.lock().unwrap().len(), 0, "stale connections stayed in the pool");
    }

    #[tokio::test]
    async fn a_header_value_with_a_line_break_is_refused() {
        let origin = Origin::of("http://127.0.0.1:9/v1").unwrap();
        let sent = origin.post(
            "http://127.0.0.1:9/v1/x",
            &[("authorization", "Bearer a\r\nx-evil: 1")],
            b"",
            Duration::from_secs(1),
        );
        assert!(matches!(sent.await, Err(SendError::Failed)));
        assert!(Origin::of("https://example.com/v1").is_none());
    }
}
