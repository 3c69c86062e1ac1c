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
//! pool ([`MAX_IDLE`], each at most [`IDLE_FOR`]), each handed out again only on the worker
//! thread that made it ([`crate::workers`]): its socket is registered with that thread's event
//! loop, and read from another thread every delta would be a cross-thread wake. A kept connection the upstream has closed
//! is seen closed when it is taken and not used. The request goes out once more, on a new
//! connection, only when writing it to a kept connection failed: once the whole request was
//! written the upstream may have acted on it (an answer is not to be asked for twice), so any
//! failure after that, even an end of file before any byte of a response, is the request's
//! failure (the rule hyper follows too). No HTTP proxy is used. `https://` upstreams and
//! `upstream.http2` use the general client.
//!
//! Bounds: the response head is at most [`MAX_HEAD`] bytes, a chunk-size or trailer line at
//! most [`MAX_LINE`], the trailer at most [`MAX_TRAILERS`] lines; anything longer is an error,
//! not a bigger buffer.
//!
//! Framing (RFC 9112 §6.3): a 204 or 304 has no body whatever its header fields say; a
//! `Transfer-Encoding` must be exactly `chunked` (the relay decodes no other coding, so a body
//! in any other would reach the SSE decoder as noise); with a `Content-Length` beside it the
//! chunked framing wins and the connection is not kept (§6.1: it may be a smuggling attempt);
//! a `Content-Length` is digits only, and repeated only with the same value (§6.3 step 5).

use std::io::{self, Write as _};
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MAX_HEAD: usize = 64 * 1024;
const MAX_LINE: usize = 4 * 1024;
const MAX_TRAILERS: usize = 64;
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
    /// The head's body framing is not one the relay can read: why.
    Framing(&'static str),
    /// No head within the first-byte timeout (counted from when the request could go out).
    FirstByteTimeout,
    /// The gate stayed shut: nothing was sent.
    Refused,
}

/// One plain-HTTP upstream origin and its kept-alive connections.
pub struct Origin {
    /// `host:port` to connect to.
    addr: String,
    /// The address itself when the host is an IP literal: no lookup per connection.
    ip: Option<SocketAddr>,
    /// The `Host` header.
    authority: String,
    /// The base URL as given and its path, when the URL parser leaves the base unchanged (see
    /// [`Origin::target`]).
    base: Option<(String, String)>,
    /// Kept connections: each with when it went idle and the worker lane it belongs to.
    idle: Mutex<Vec<(TcpStream, Instant, usize)>>,
}

/// The pool lane of this thread: its worker index, or one lane for all threads of a
/// multi-thread runtime (they share one reactor).
fn lane() -> usize {
    crate::workers::current().map_or(usize::MAX, |w| w.index)
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
        let addr = format!("{host}:{port}");
        let ip = host.trim_start_matches('[').trim_end_matches(']').parse().ok().map(|ip| SocketAddr::new(ip, port));
        let plain = url.as_str() == base_url && url.query().is_none() && url.fragment().is_none();
        let base = plain.then(|| (base_url.to_string(), url.path().to_string()));
        Some(Origin { addr, ip, authority, base, idle: Mutex::new(Vec::new()) })
    }

    /// The request target (path and query) of `url`, as the URL parser would write it. Every
    /// stream's URL is the base URL and a suffix: when the suffix holds only characters the
    /// parser copies as they are (no percent-encoding, no dot segment to resolve, no fragment),
    /// the target is the base's path and the suffix, without parsing the whole URL again per
    /// stream (some 7,000 instructions, 4 % of a one-delta stream's).
    fn target(&self, url: &str) -> Option<String> {
        if let Some((base, path)) = &self.base {
            if let Some(rest) = url.strip_prefix(base.as_str()) {
                let copied = |b: u8| b.is_ascii_alphanumeric() || b"-_~/?=&:.".contains(&b);
                if rest.starts_with('/') && rest.bytes().all(copied) && !rest.contains("/.") {
                    return Some(format!("{path}{rest}"));
                }
            }
        }
        let url = reqwest::Url::parse(url).ok()?;
        Some(match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        })
    }

    /// Sends `POST url` with `headers` and `body`, and reads the response head. The request
    /// goes out when `open` says yes; with no connection kept, a new one is made meanwhile, so
    /// a caller that waits for something else first (the shared store's admission) pays for
    /// the connect only once. `first_byte` counts from then; `connect_timeout` bounds the
    /// connect (what is left of it once the gate is open).
    pub async fn post(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        connect_timeout: Duration,
        first_byte: Duration,
        open: impl std::future::Future<Output = bool>,
    ) -> Result<Response<'_>, SendError> {
        let target = self.target(url).ok_or(SendError::Failed)?;
        let mut request = Vec::with_capacity(256 + body.len());
        request.extend_from_slice(b"POST ");
        request.extend_from_slice(target.as_bytes());
        request.extend_from_slice(b" HTTP/1.1\r\nhost: ");
        request.extend_from_slice(self.authority.as_bytes());
        for (name, value) in headers {
            // A value with a line break would start a header of its own.
            if value.bytes().any(|b| b == b'\r' || b == b'\n') {
                return Err(SendError::Failed);
            }
            // Piece by piece: a `format!` a header is an allocation each, on every stream's way
            // to its first byte.
            request.extend_from_slice(b"\r\n");
            request.extend_from_slice(name.as_bytes());
            request.extend_from_slice(b": ");
            request.extend_from_slice(value.as_bytes());
        }
        let _ = write!(request, "\r\ncontent-length: {}\r\n\r\n", body.len());
        request.extend_from_slice(body);
        let mut open = std::pin::pin!(open);
        // Already open (no store, or admitted): the request goes out with a new connection's
        // handshake. Otherwise a new connection's handshake runs while the gate is shut.
        let waiting = match futures_util::FutureExt::now_or_never(open.as_mut()) {
            Some(false) => return Err(SendError::Refused),
            Some(true) => false,
            None => true,
        };
        let dialing = self.dial(connect_timeout);
        let mut dialing = std::pin::pin!(dialing);
        let mut early = Early::No;
        if waiting {
            // A kept connection has no handshake to overlap: it is taken only once the gate is
            // open, so that one the upstream closed meanwhile is seen closed then. With none
            // kept, the lookup and handshake race the gate: a refusal ends the wait at once.
            let mut admitted = None;
            if self.idle_is_empty() {
                tokio::select! {
                    biased;
                    ok = open.as_mut() => {
                        admitted = Some(ok);
                        early = Early::Pending;
                    }
                    dialed = dialing.as_mut() => early = Early::Done(dialed),
                }
            }
            let admitted = match admitted {
                Some(ok) => ok,
                None => open.as_mut().await,
            };
            if !admitted {
                // A connection made for nothing is kept for the next answer, not left in
                // TIME_WAIT.
                if let Early::Done(Ok(Dialed { socket: Some(socket), .. })) = early {
                    self.keep_dialed(socket);
                }
                return Err(SendError::Refused);
            }
        }
        let exchanged = async {
            // A kept connection first; if the request could not be written to it, a new one.
            // Once it was written, a failure is final: the upstream may have acted on it.
            if matches!(early, Early::No) {
                if let Some(stream) = self.checkout() {
                    match self.exchange(stream, &request).await {
                        Ok(Some(resp)) => return Ok(resp),
                        Ok(None) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            let sending = async {
                let dialed = match early {
                    Early::No => None,
                    Early::Done(dialed) => Some(dialed),
                    Early::Pending => Some(dialing.as_mut().await),
                };
                let addrs = match dialed {
                    None => self.addrs().await?,
                    Some(dialed) => {
                        let Dialed { socket, addrs } = dialed?;
                        if let Some(socket) = socket {
                            // Nothing was sent when this fails: a new connect below, to the
                            // addresses already looked up.
                            if let Ok(connected) = send_first(socket, &request).await {
                                return Ok(connected);
                            }
                        }
                        addrs
                    }
                };
                connect(&addrs, &request).await
            };
            let (stream, sent) = match tokio::time::timeout(connect_timeout, sending).await {
                Err(_) => return Err(SendError::ConnectTimeout),
                Ok(Err(e)) => return Err(e),
                Ok(Ok(connected)) => connected,
            };
            match self.exchange(stream, &request[sent..]).await {
                Ok(Some(resp)) => Ok(resp),
                Err(SendError::Framing(why)) => Err(SendError::Framing(why)),
                _ => Err(SendError::Failed),
            }
        };
        tokio::time::timeout(first_byte, exchanged).await.unwrap_or(Err(SendError::FirstByteTimeout))
    }

    /// The addresses to connect to: the IP literal, or the host's, looked up.
    async fn addrs(&self) -> Result<Vec<SocketAddr>, SendError> {
        match self.ip {
            Some(ip) => Ok(vec![ip]),
            None => Ok(tokio::net::lookup_host(&self.addr).await.map_err(|_| SendError::Unreachable)?.collect()),
        }
    }

    /// Looks the host up and starts a connection's handshake to the first address that takes
    /// it, sending nothing and leaving it out of the event loop until [`send_first`]. With no
    /// socket (none took it, or a platform without it) the ordinary connect runs later, to the
    /// same addresses, and says why.
    async fn dial(&self, connect_timeout: Duration) -> Result<Dialed, SendError> {
        let addrs =
            tokio::time::timeout(connect_timeout, self.addrs()).await.map_err(|_| SendError::ConnectTimeout)??;
        let socket = addrs.iter().find_map(|addr| dial(*addr).ok());
        Ok(Dialed { socket, addrs })
    }

    /// Puts a dialed connection no request went out on into the pool, if its handshake is
    /// complete (a socket still connecting has no peer).
    fn keep_dialed(&self, socket: socket2::Socket) {
        if !matches!(socket.take_error(), Ok(None)) || socket.peer_addr().is_err() {
            return;
        }
        if let Ok(stream) = TcpStream::from_std(std::net::TcpStream::from(socket)) {
            self.checkin(stream, Instant::now());
        }
    }

    /// No connection kept for this thread's lane.
    fn idle_is_empty(&self) -> bool {
        let lane = lane();
        !self.idle.lock().unwrap_or_else(|p| p.into_inner()).iter().any(|(_, _, l)| *l == lane)
    }

    fn checkout(&self) -> Option<TcpStream> {
        let lane = lane();
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        // Stale ones anywhere in the pool go, not only at its top (the oldest are at the bottom).
        idle.retain(|(_, since, _)| since.elapsed() < IDLE_FOR);
        // The newest of this lane first.
        while let Some(i) = idle.iter().rposition(|(_, _, l)| *l == lane) {
            let (stream, since, _) = idle.remove(i);
            // Closed by the upstream meanwhile (end of file), or sending unasked: not kept.
            let quiet = matches!(stream.try_read(&mut [0u8; 1]), Err(e) if e.kind() == io::ErrorKind::WouldBlock);
            if quiet && since.elapsed() < IDLE_FOR {
                return Some(stream);
            }
        }
        None
    }

    /// Puts `stream` into the pool, idle `since` then, in this thread's lane.
    fn checkin(&self, stream: TcpStream, since: Instant) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push((stream, since, lane()));
        }
    }

    /// Writes the request (what is left of it) and reads the head: `Ok(None)` when the request
    /// could not be written.
    async fn exchange(&self, mut stream: TcpStream, request: &[u8]) -> Result<Option<Response<'_>>, SendError> {
        if !request.is_empty() && stream.write_all(request).await.is_err() {
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
                    let close = header("connection").to_ascii_lowercase().contains("close") || head.version == Some(0);
                    let retry_after = header("retry-after").trim().parse::<u64>().ok();
                    let (framing, keep) = body_framing(status, head.headers).map_err(SendError::Framing)?;
                    buf.advance(len);
                    return Ok(Some(Response {
                        origin: self,
                        status,
                        retry_after,
                        stream: Some(stream),
                        buf,
                        framing,
                        keep: keep && !close,
                        trailers: 0,
                    }));
                }
                Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => buf.reserve(READ),
                _ => return Err(SendError::Failed),
            }
        }
    }
}

/// A new connection to the first of `addrs` that takes it, with as much of `request` as went
/// out with it. Every address is tried in turn, as `TcpStream::connect` does.
async fn connect(addrs: &[SocketAddr], request: &[u8]) -> Result<(TcpStream, usize), SendError> {
    for addr in addrs {
        if let Ok(connected) = connect_sending(*addr, request).await {
            return Ok(connected);
        }
    }
    Err(SendError::Unreachable)
}

/// What became of the connection started while the gate was shut.
enum Early {
    /// None was started: a kept one is taken, or a new one made, once the gate is open.
    No,
    /// The gate opened first; the lookup or handshake is still running.
    Pending,
    Done(Result<Dialed, SendError>),
}

/// The host's addresses and a socket connecting to one of them.
struct Dialed {
    socket: Option<socket2::Socket>,
    addrs: Vec<SocketAddr>,
}

/// Connects to `addr` and sends the start of `request` in the same turn when the connection is
/// already up, which it is on loopback and often on a LAN (the handshake completes inside
/// `connect()`): no trip through the event loop between the connect and the request, a trip
/// that waits behind every stream with data when the relay is busy. Otherwise it waits for the
/// handshake and sends nothing yet. Returns the connection and the bytes sent.
#[cfg(unix)]
async fn connect_sending(addr: SocketAddr, request: &[u8]) -> io::Result<(TcpStream, usize)> {
    send_first(dial(addr)?, request).await
}

#[cfg(not(unix))]
async fn connect_sending(addr: SocketAddr, _request: &[u8]) -> io::Result<(TcpStream, usize)> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok((stream, 0))
}

/// A non-blocking socket whose handshake with `addr` has started.
#[cfg(unix)]
fn dial(addr: SocketAddr) -> io::Result<socket2::Socket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_nonblocking(true)?;
    socket.set_tcp_nodelay(true)?;
    match socket.connect(&addr.into()) {
        Ok(()) => Ok(socket),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok(socket),
        Err(e) => Err(e),
    }
}

#[cfg(not(unix))]
fn dial(_addr: SocketAddr) -> io::Result<socket2::Socket> {
    Err(io::ErrorKind::Unsupported.into())
}

/// Sends the start of `request` on a dialed socket, handed to the event loop first. Nothing
/// has been sent when this fails: once a byte went out, it returns the connection.
#[cfg(unix)]
async fn send_first(socket: socket2::Socket, request: &[u8]) -> io::Result<(TcpStream, usize)> {
    let stream = TcpStream::from_std(std::net::TcpStream::from(socket))?;
    // While the handshake runs this is EAGAIN; a refused or reset connection is its error.
    // MSG_NOSIGNAL: a reset connection is an error here, not a SIGPIPE. Sent past tokio (whose
    // `try_write` waits for a readiness event first) so that it goes out in this turn.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let flags = libc::MSG_NOSIGNAL;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let flags = 0;
    let sent = match socket2::SockRef::from(&stream).send_with_flags(request, flags) {
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
        Err(e) => return Err(e),
    };
    if sent == 0 {
        stream.writable().await?;
        if let Some(e) = stream.take_error()? {
            return Err(e);
        }
    }
    Ok((stream, sent))
}

#[cfg(not(unix))]
async fn send_first(socket: socket2::Socket, _request: &[u8]) -> io::Result<(TcpStream, usize)> {
    let stream = TcpStream::from_std(std::net::TcpStream::from(socket))?;
    stream.writable().await?;
    Ok((stream, 0))
}

/// The body's framing from the final head (RFC 9112 §6.3), and whether the connection may be
/// kept after it; an error for a framing the relay cannot read.
fn body_framing(status: u16, headers: &[httparse::Header]) -> Result<(Framing, bool), &'static str> {
    // Step 1: these end at the head, whatever their header fields say. An empty `Data` rather
    // than `Done`, so that the first read of the body gives the connection back.
    if status == 204 || status == 304 {
        return Ok((Framing::Data { left: 0, chunked: false }, true));
    }
    // Elements of a list field over all its lines; empty elements are allowed (RFC 9110 §5.6.1).
    let elements = |name: &str| -> Result<Vec<&str>, &'static str> {
        let mut out = Vec::new();
        for h in headers.iter().filter(|h| h.name.eq_ignore_ascii_case(name)) {
            let value = std::str::from_utf8(h.value).map_err(|_| "a framing header field is not text")?;
            out.extend(value.split(',').map(|e| e.trim_matches([' ', '\t'])).filter(|e| !e.is_empty()));
        }
        Ok(out)
    };
    let codings = elements("transfer-encoding")?;
    let te = headers.iter().any(|h| h.name.eq_ignore_ascii_case("transfer-encoding"));
    let lengths = elements("content-length")?;
    let cl = headers.iter().any(|h| h.name.eq_ignore_ascii_case("content-length"));
    if te {
        // Step 4: chunked must be the final coding, and the relay decodes no other.
        if codings.len() != 1 || !codings[0].eq_ignore_ascii_case("chunked") {
            return Err("the upstream's transfer-encoding is not just chunked");
        }
        // Step 3: chunked wins over a content-length, and the connection is not kept.
        return Ok((Framing::Size, !cl));
    }
    if cl {
        // Step 5: 1*DIGIT, and a repeated value must be the same.
        let valid = |v: &str| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit());
        if lengths.is_empty() || !lengths.iter().all(|v| valid(v)) {
            return Err("the upstream's content-length is not a number");
        }
        if lengths.iter().any(|v| v != &lengths[0]) {
            return Err("the upstream sent differing content-lengths");
        }
        let left = lengths[0].parse::<u64>().map_err(|_| "the upstream's content-length is too large")?;
        return Ok((Framing::Data { left, chunked: false }, true));
    }
    Ok((Framing::UntilClose, true))
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
    /// Trailer lines read so far.
    trailers: usize,
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
                                // chunk-size = 1*HEXDIG, then BWS before an extension: no sign,
                                // which `from_str_radix` would take.
                                let size = line.split(|b| *b == b';').next().unwrap_or_default();
                                let size = std::str::from_utf8(size).ok().map(|s| s.trim_end_matches([' ', '\t']));
                                let size = size.filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit()));
                                match size.and_then(|s| u64::from_str_radix(s, 16).ok()) {
                                    Some(0) => Framing::Trailers,
                                    Some(n) => Framing::Data { left: n, chunked: true },
                                    None => return Err(broken_framing()),
                                }
                            }
                            Framing::DataEnd if line.is_empty() => Framing::Size,
                            Framing::DataEnd => return Err(broken_framing()),
                            _ if line.is_empty() => self.finish(),
                            _ if self.trailers >= MAX_TRAILERS => {
                                return Err(io::Error::new(
                                    io::ErrorKind::InvalidData,
                                    "the upstream's trailer has too many lines",
                                ))
                            }
                            _ => {
                                self.trailers += 1;
                                Framing::Trailers
                            }
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
                self.origin.checkin(stream, Instant::now());
            }
        }
        Framing::Done
    }
}

fn broken_framing() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "the upstream's chunked body is malformed")
}

#[cfg(test)]
mod tests;
