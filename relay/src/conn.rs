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
//!   first-byte timeout. [`PeerSocket::closed`] waits for the connection's own socket to turn
//!   readable, through the registration the connection already has with the event loop, and
//!   then looks with a one-byte `peek`, holding no buffer. The connection and the watch share
//!   the socket (the connection owns it; the watch holds a weak reference), so watching costs
//!   no second descriptor and no system call to set up or tear down.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;

pub struct Conn {
    /// Shared with the connection's [`PeerSocket`], which only reads readiness and peeks: every
    /// read and write goes through `&TcpStream`'s readiness API, as tokio's own
    /// `AsyncRead`/`AsyncWrite` for `TcpStream` do.
    io: Arc<TcpStream>,
    write_timeout: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
    /// A rewritten error response being written: bytes, how far, and the length to report.
    rewrite: Option<(Vec<u8>, usize, usize)>,
    /// Nothing read yet: the first read goes to the socket without waiting for readiness.
    fresh: bool,
}

impl Conn {
    pub fn new(io: TcpStream, write_timeout: Duration) -> Conn {
        Conn { io: Arc::new(io), write_timeout, stalled: None, rewrite: None, fresh: true }
    }

    /// The handle a handler of this connection watches for the client going away.
    pub fn peer(&self) -> PeerSocket {
        PeerSocket { io: Arc::downgrade(&self.io) }
    }

    /// One write attempt, waiting for writability: `WouldBlock` clears the readiness tokio saw,
    /// so the next `poll_write_ready` waits for a new event.
    fn poll_send_with(
        io: &TcpStream,
        cx: &mut Context<'_>,
        mut send: impl FnMut(&TcpStream) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        loop {
            match io.poll_write_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
            match send(io) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                r => return Poll::Ready(r),
            }
        }
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
            let bytes = &bytes[*done..];
            match Self::poll_send_with(&self.io, cx, |io| io.try_write(bytes)) {
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
            let socket = socket2::SockRef::from(&*self.io);
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
        loop {
            match self.io.poll_read_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
            // As tokio's own read: `WouldBlock` clears the readiness seen, and the loop waits
            // for the next event.
            // SAFETY: as above.
            let read = self
                .io
                .try_io(Interest::READABLE, || socket2::SockRef::from(&*self.io).recv(unsafe { buf.unfilled_mut() }));
            match read {
                Ok(n) => {
                    unsafe { buf.assume_init(n) };
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
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
        match Self::poll_send_with(&this.io, cx, |io| io.try_write(buf)) {
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
        match Self::poll_send_with(&this.io, cx, |io| io.try_write_vectored(bufs)) {
            Poll::Ready(r) => {
                this.progressed();
                Poll::Ready(r)
            }
            Poll::Pending => this.pending(cx),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    /// A socket has nothing to flush.
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Shuts the sending side, as tokio's `TcpStream` does.
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(socket2::SockRef::from(&*self.io).shutdown(std::net::Shutdown::Write))
    }
}

/// The client's socket, for [`PeerSocket::closed`]; in the request's extensions.
///
/// A weak reference: the connection owns the socket, and a handle kept past it (in a task
/// that outlived its request) neither keeps the descriptor open nor sees a reused one.
/// [`PeerSocket::closed`] holds the socket only while it waits, inside the request's handler,
/// which ends with the connection.
#[derive(Debug, Clone)]
pub struct PeerSocket {
    io: Weak<TcpStream>,
}

impl PeerSocket {
    /// Resolves when the client closed or reset its connection, or the connection is gone.
    /// Pending forever when that cannot be told (the client sent more bytes).
    ///
    /// The socket is registered with the event loop for reading already (the connection reads
    /// it), so this only waits on that registration: it never reads, and a `WouldBlock` peek
    /// clears the readiness it saw, so a spurious or stale wake-up costs one `recv`.
    pub async fn closed(self) {
        let Some(io) = self.io.upgrade() else { return };
        let mut byte = [std::mem::MaybeUninit::<u8>::uninit(); 1];
        loop {
            if io.readable().await.is_err() {
                return;
            }
            match io.try_io(Interest::READABLE, || socket2::SockRef::from(&*io).peek(&mut byte)) {
                Ok(0) => return,
                // More bytes from the client (a pipelined request): it is still there.
                Ok(_) => break,
                // Not readable after all: wait for the next event.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return,
            }
        }
        drop(io);
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
        let watch = tokio::spawn(conn.peer().closed());
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
