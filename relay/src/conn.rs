//! One client connection below HTTP: a write deadline, JSON for the errors hyper answers by
//! itself, and a way for a handler to notice that its client went away.
//!
//! - **Write timeout.** A write that makes no progress for `write_timeout` fails the
//!   connection: a client that stopped reading is disconnected, its response stream dropped,
//!   and its generation detached (so the grace period can cancel it).
//! - **hyper's own errors.** hyper answers an unparsable request (400) or an oversized head
//!   (431) itself, with an empty body. Those heads are rewritten into the relay's JSON error
//!   shape. Every response the relay writes has a body, so an empty-bodied 4xx is hyper's.
//! - **The request already there.** A client sends its request with the connection, so it is
//!   usually in the socket when the connection is accepted. The first read is tried at once
//!   instead of after the event loop's next look at the socket: on a busy relay that look
//!   comes behind every stream with data, and a new answer's first byte would wait for it.
//! - **Client gone.** While a handler waits for the upstream's first byte, hyper does not read
//!   the socket (`half_close`), so a client that disconnects would go unnoticed until the
//!   first-byte timeout. [`PeerSocket::closed`] watches a duplicate of the socket with a
//!   one-byte `peek`, holding no buffer.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;

pub struct Conn {
    io: TcpStream,
    write_timeout: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
    /// A rewritten error response being written: bytes, how far, and the length to report.
    rewrite: Option<(Vec<u8>, usize, usize)>,
    /// Nothing read yet: the first read goes to the socket without waiting for readiness.
    fresh: bool,
}

impl Conn {
    pub fn new(io: TcpStream, write_timeout: Duration) -> Conn {
        Conn { io, write_timeout, stalled: None, rewrite: None, fresh: true }
    }

    /// Turns a `Pending` write into an error once it has lasted `write_timeout`.
    fn pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let deadline = tokio::time::Instant::now() + self.write_timeout;
        let sleep = self.stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "the client stopped reading"))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn progressed(&mut self) {
        self.stalled = None;
    }

    fn write_rewrite(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        loop {
            let Some((bytes, done, report)) = self.rewrite.as_mut() else { return Poll::Ready(Ok(0)) };
            if *done == bytes.len() {
                let report = *report;
                self.rewrite = None;
                return Poll::Ready(Ok(report));
            }
            match Pin::new(&mut self.io).poll_write(cx, &bytes[*done..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => {
                    *done += n;
                    self.progressed();
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return self.pending(cx),
            }
        }
    }
}

/// hyper's empty-bodied 4xx head, as the relay's JSON error.
fn rewrite_error_head(buf: &[u8]) -> Option<Vec<u8>> {
    if !buf.starts_with(b"HTTP/1.1 4") || !buf.ends_with(b"\r\n\r\n") {
        return None;
    }
    let head = std::str::from_utf8(buf).ok()?;
    if !head.to_ascii_lowercase().contains("\r\ncontent-length: 0\r\n") {
        return None;
    }
    let status_line = head.split("\r\n").next()?;
    let (code, message) = match status_line.get(9..12)? {
        "431" => ("header_too_large", "the request head is larger than this relay accepts"),
        _ => ("bad_request", "the request could not be read as HTTP/1.1"),
    };
    let body = format!(r#"{{"error":{{"message":"{message}","type":"invalid_request_error","code":"{code}"}}}}"#);
    let out = format!(
        "{status_line}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    Some(out.into_bytes())
}

impl AsyncRead for Conn {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if std::mem::take(&mut self.fresh) {
            // The socket is non-blocking: nothing there yet is `WouldBlock`, and then the read
            // waits for readiness as any other.
            let socket = socket2::SockRef::from(&self.io);
            // SAFETY: `recv` only writes into the unfilled part, and `n` bytes of it were written.
            // Read into the unfilled part as it is, so no page of the buffer is touched beyond
            // what the request fills.
            match socket.recv(unsafe { buf.unfilled_mut() }) {
                Ok(n) => {
                    unsafe { buf.assume_init(n) };
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.rewrite.is_none() {
            if let Some(bytes) = rewrite_error_head(buf) {
                this.rewrite = Some((bytes, 0, buf.len()));
            }
        }
        if this.rewrite.is_some() {
            return this.write_rewrite(cx);
        }
        match Pin::new(&mut this.io).poll_write(cx, buf) {
            Poll::Ready(r) => {
                this.progressed();
                Poll::Ready(r)
            }
            Poll::Pending => this.pending(cx),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.rewrite.is_none() {
            if let Some(first) = bufs.iter().find(|b| !b.is_empty()) {
                if let Some(bytes) = rewrite_error_head(first) {
                    this.rewrite = Some((bytes, 0, first.len()));
                }
            }
        }
        if this.rewrite.is_some() {
            return this.write_rewrite(cx);
        }
        match Pin::new(&mut this.io).poll_write_vectored(cx, bufs) {
            Poll::Ready(r) => {
                this.progressed();
                Poll::Ready(r)
            }
            Poll::Pending => this.pending(cx),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// The client's socket, for [`PeerSocket::closed`]; in the request's extensions.
#[derive(Debug, Clone, Copy)]
pub struct PeerSocket {
    #[cfg(unix)]
    fd: std::os::fd::RawFd,
}

impl PeerSocket {
    pub fn of(stream: &TcpStream) -> PeerSocket {
        #[cfg(unix)]
        {
            use std::os::fd::AsRawFd;
            PeerSocket { fd: stream.as_raw_fd() }
        }
        #[cfg(not(unix))]
        {
            let _ = stream;
            PeerSocket {}
        }
    }

    /// Resolves when the client closed or reset its connection. Pending forever when that
    /// cannot be told (the client sent more bytes, or the socket cannot be watched).
    ///
    /// Call it only from a handler of this connection: the connection, and so the socket,
    /// outlives the handler.
    pub async fn closed(self) {
        #[cfg(unix)]
        {
            use std::os::fd::BorrowedFd;
            use tokio::io::{unix::AsyncFd, Interest};
            // SAFETY: the connection that owns this descriptor is serving the request whose
            // handler calls this, so the descriptor is open; it is duplicated at once. The
            // duplicate shares the socket's open file, already non-blocking (as every socket
            // tokio serves is).
            let owned = unsafe { BorrowedFd::borrow_raw(self.fd) }.try_clone_to_owned();
            // Registered for reading only: a `TcpStream` would also ask to hear that the socket
            // is writable, which it is at once, and that event would wake an idle worker
            // thread for nothing while the answer's first token is on its way.
            let watched = owned.ok().and_then(|fd| {
                // SAFETY: the `Socket` owns the duplicate, which stays open, the same socket,
                // until the `AsyncFd` that owns the `Socket` is dropped.
                unsafe { AsyncFd::register_with_interest(socket2::Socket::from(fd), Interest::READABLE) }.ok()
            });
            if let Some(socket) = watched {
                let mut byte = [std::mem::MaybeUninit::<u8>::uninit(); 1];
                loop {
                    let Ok(mut ready) = socket.readable().await else { return };
                    match ready.try_io(|s| s.get_ref().peek(&mut byte)) {
                        Ok(Ok(0)) | Ok(Err(_)) => return,
                        Ok(Ok(_)) => break,
                        // Not readable after all: wait for the next event.
                        Err(_) => continue,
                    }
                }
            }
        }
        std::future::pending::<()>().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A connection accepted while the client does `client` with its end.
    async fn accepted<F, Fut>(client: F) -> (Conn, tokio::task::JoinHandle<()>)
    where
        F: FnOnce(TcpStream) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move { client(TcpStream::connect(addr).await.unwrap()).await });
        let (io, _) = listener.accept().await.unwrap();
        (Conn::new(io, Duration::from_secs(1)), task)
    }

    #[tokio::test]
    async fn the_first_read_takes_what_is_in_the_socket() {
        let (mut conn, client) = accepted(|mut s| async move {
            s.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
            tokio::time::sleep(Duration::from_millis(200)).await;
        })
        .await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut buf = [0u8; 64];
        let n = conn.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"GET / HTTP/1.1\r\n\r\n");
        client.await.unwrap();
    }

    #[tokio::test]
    async fn a_client_that_sent_nothing_yet_is_waited_for() {
        let (mut conn, client) = accepted(|mut s| async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            s.write_all(b"late").await.unwrap();
            tokio::time::sleep(Duration::from_millis(200)).await;
        })
        .await;
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf)).await.unwrap().unwrap();
        assert_eq!(&buf[..n], b"late");
        client.await.unwrap();
    }

    #[tokio::test]
    async fn a_client_that_closed_at_once_is_the_end() {
        let (mut conn, client) = accepted(|s| async move { drop(s) }).await;
        client.await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf)).await.unwrap().unwrap();
        assert_eq!(n, 0);
    }

    #[tokio::test]
    async fn a_first_read_into_a_buffer_partly_filled_keeps_what_was_there() {
        let (mut conn, client) = accepted(|mut s| async move {
            s.write_all(b"abc").await.unwrap();
            tokio::time::sleep(Duration::from_millis(200)).await;
        })
        .await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut storage = [std::mem::MaybeUninit::<u8>::uninit(); 16];
        let mut buf = ReadBuf::uninit(&mut storage);
        buf.put_slice(b"xy");
        std::future::poll_fn(|cx| Pin::new(&mut conn).poll_read(cx, &mut buf)).await.unwrap();
        assert_eq!(buf.filled(), b"xyabc");
        client.await.unwrap();
    }

    #[tokio::test]
    async fn a_quiet_client_is_not_taken_for_gone_and_a_closed_one_is() {
        let (conn, client) = accepted(|s| async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            drop(s);
        })
        .await;
        let watch = tokio::spawn(PeerSocket::of(&conn.io).closed());
        // Writable all along and silent: not gone.
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(!watch.is_finished(), "a connected, quiet client was taken for gone");
        client.await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), watch).await.expect("the closed client went unnoticed").unwrap();
        drop(conn);
    }

    #[test]
    fn only_empty_4xx_heads_are_rewritten() {
        let hyper = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let out = String::from_utf8(rewrite_error_head(hyper).unwrap()).unwrap();
        assert!(out.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"));
        let body = out.split_once("\r\n\r\n").unwrap().1;
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["error"]["code"], "header_too_large");
        assert!(out.contains(&format!("content-length: {}\r\n", body.len())));
        assert!(rewrite_error_head(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 57\r\n\r\n").is_none());
        assert!(rewrite_error_head(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
    }
}
