//! `relay-load`: the relay benchmark's tools, loopback only (see `bench/relay/run.sh`).
//!
//! - `relay-load mock --port P [--deltas 200] [--interval-ms 20] [--h2]`: a fast
//!   OpenAI-compatible mock upstream (HTTP/1.1 by hand, or with `--h2` HTTP/2 prior knowledge
//!   through hyper). Every answer is `--deltas` content chunks, `--interval-ms` apart, with
//!   text that [`piece`] makes, so a client knows every byte it must receive.
//! - `relay-load run --url URL[,URL…] --streams N [--deltas 200] [--ramp-ms 1000] [--pids 1,2]
//!   [--label L] [--timeout-s 120]`: opens N streams (started evenly over the ramp), decodes
//!   each with the chunkwise decoder, checks every byte of every answer, and prints one JSON
//!   line: errors, time to first token, CPU of the given processes per delta, and their memory
//!   growth per open stream (median RSS over the samples with the most streams open, minus
//!   the RSS before the run; the largest such sample is reported too).
//! - `relay-load report FILE...`: the Markdown table of the runs.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chunkwise::{Format, Options, StreamDecoder};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let num = |name: &str, default: u64| flag(name).map(|v| v.parse().expect("a number")).unwrap_or(default);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    match args.first().map(String::as_str) {
        Some("mock") => {
            let port = num("--port", 0) as u16;
            let (deltas, interval) = (num("--deltas", 200) as usize, Duration::from_millis(num("--interval-ms", 20)));
            if args.iter().any(|a| a == "--h2") {
                rt.block_on(mock_h2(port, deltas, interval));
            } else {
                rt.block_on(mock(port, deltas, interval));
            }
        }
        Some("run") => {
            let cfg = RunConfig {
                url: flag("--url").expect("--url"),
                streams: num("--streams", 1000) as usize,
                deltas: num("--deltas", 200) as usize,
                ramp: Duration::from_millis(num("--ramp-ms", 1000)),
                window: Duration::from_millis(num("--window-ms", 2000)),
                timeout: Duration::from_secs(num("--timeout-s", 120)),
                pids: flag("--pids")
                    .unwrap_or_default()
                    .split(',')
                    .filter(|p| !p.is_empty())
                    .map(|p| p.parse().expect("pid"))
                    .collect(),
                label: flag("--label").unwrap_or_else(|| "run".into()),
                clk_tck: num("--clk-tck", 100) as f64,
            };
            let out = rt.block_on(run(cfg));
            println!("{out}");
        }
        Some("report") => println!("{}", report(&args[1..])),
        _ => {
            eprintln!("usage: relay-load mock|run|report ... (see the source's header)");
            std::process::exit(2);
        }
    }
}

/// The text of delta `i`: ASCII, Chinese and a 4-byte emoji, so every UTF-8 length is checked.
fn piece(i: usize) -> String {
    format!("tok{i} 流式🚀 ")
}

fn expected(deltas: usize) -> String {
    (0..deltas).map(piece).collect()
}

// ---------------------------------------------------------------- mock upstream

async fn mock(port: u16, deltas: usize, interval: Duration) {
    let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind the mock");
    eprintln!("relay-load mock on {}", listener.local_addr().unwrap());
    loop {
        let Ok((sock, _)) = listener.accept().await else { continue };
        tokio::spawn(async move {
            let _ = mock_conn(sock, deltas, interval).await;
        });
    }
}

fn role_event() -> &'static [u8] {
    b"data: {\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":\"mock\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n"
}

fn delta_event(i: usize) -> String {
    format!(
        "data: {{\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":\"mock\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{}\"}},\"finish_reason\":null}}]}}\n\n",
        piece(i)
    )
}

fn end_events() -> &'static [u8] {
    b"data: {\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":\"mock\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: {\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":\"mock\",\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":200,\"total_tokens\":201}}\n\ndata: [DONE]\n\n"
}

/// The same answers over HTTP/2 (h2c prior knowledge), many streams per connection.
async fn mock_h2(port: u16, deltas: usize, interval: Duration) {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind the mock");
    eprintln!("relay-load mock (h2c) on {}", listener.local_addr().unwrap());
    loop {
        let Ok((sock, _)) = listener.accept().await else { continue };
        let _ = sock.set_nodelay(true);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| async move {
                let _ = axum::body::to_bytes(axum::body::Body::new(req.into_body()), 1 << 20).await;
                let events = futures_util::stream::unfold(
                    (0usize, None::<tokio::time::Interval>),
                    move |(i, tick)| async move {
                        let mut tick = match tick {
                            None => {
                                return Some((
                                    Ok::<_, std::convert::Infallible>(bytes::Bytes::from_static(role_event())),
                                    (0, Some(tokio::time::interval(interval))),
                                ))
                            }
                            Some(t) => t,
                        };
                        if i > deltas {
                            return None;
                        }
                        if i == deltas {
                            return Some((Ok(bytes::Bytes::from_static(end_events())), (i + 1, Some(tick))));
                        }
                        tick.tick().await;
                        Some((Ok(bytes::Bytes::from(delta_event(i))), (i + 1, Some(tick))))
                    },
                );
                let res = hyper::Response::builder()
                    .header("content-type", "text/event-stream")
                    .body(axum::body::Body::from_stream(events))
                    .expect("a response");
                Ok::<_, std::convert::Infallible>(res)
            });
            let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .max_concurrent_streams(200_000)
                .serve_connection(TokioIo::new(sock), service)
                .await;
        });
    }
}

fn chunk(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

async fn mock_conn(mut s: TcpStream, deltas: usize, interval: Duration) -> std::io::Result<()> {
    s.set_nodelay(true)?;
    let mut buf = Vec::with_capacity(2048);
    let mut tmp = [0u8; 4096];
    loop {
        // One request: head, then a Content-Length body.
        let head_end = loop {
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            let n = s.read(&mut tmp).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&tmp[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let close = head.contains("connection: close");
        while buf.len() < head_end + len {
            let n = s.read(&mut tmp).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&tmp[..n]);
        }
        buf.drain(..head_end + len);

        let mut out = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
        chunk(&mut out, role_event());
        s.write_all(&out).await?;
        let mut tick = tokio::time::interval(interval);
        for i in 0..deltas {
            tick.tick().await;
            out.clear();
            let event = delta_event(i);
            chunk(&mut out, event.as_bytes());
            s.write_all(&out).await?;
        }
        out.clear();
        chunk(&mut out, end_events());
        out.extend_from_slice(b"0\r\n\r\n");
        s.write_all(&out).await?;
        if close {
            return Ok(());
        }
    }
}

// ---------------------------------------------------------------- load generator

struct RunConfig {
    url: String,
    streams: usize,
    deltas: usize,
    ramp: Duration,
    /// How long deltas are counted once every stream has started (see [`run`]).
    window: Duration,
    timeout: Duration,
    pids: Vec<u32>,
    label: String,
    clk_tck: f64,
}

#[derive(Default)]
struct Outcome {
    ttft: Option<Duration>,
    error: Option<String>,
    /// The connection's local port, and when the stream started and its request was written
    /// (ns since the Unix epoch): with `RELAY_LOAD_DUMP`, to line streams up with a trace.
    port: u16,
    start_ns: u128,
    sent_ns: u128,
}

fn wall_ns() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}

/// HTTP/1.1 chunked transfer decoding, incremental.
#[derive(Default)]
struct Dechunk {
    line: Vec<u8>,
    left: usize,
    /// Bytes of `\r\n` still to skip after a chunk's data.
    crlf: usize,
    done: bool,
}

impl Dechunk {
    fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        while !input.is_empty() && !self.done {
            if self.crlf > 0 {
                let n = self.crlf.min(input.len());
                input = &input[n..];
                self.crlf -= n;
            } else if self.left > 0 {
                let n = self.left.min(input.len());
                out.extend_from_slice(&input[..n]);
                input = &input[n..];
                self.left -= n;
                if self.left == 0 {
                    self.crlf = 2;
                }
            } else {
                let Some(p) = input.iter().position(|&b| b == b'\n') else {
                    self.line.extend_from_slice(input);
                    return Ok(());
                };
                self.line.extend_from_slice(&input[..p]);
                input = &input[p + 1..];
                let text = String::from_utf8_lossy(&self.line).trim().to_string();
                self.line.clear();
                let size = usize::from_str_radix(text.split(';').next().unwrap_or(""), 16)
                    .map_err(|_| format!("bad chunk size {text:?}"))?;
                if size == 0 {
                    self.done = true;
                } else {
                    self.left = size;
                }
            }
        }
        Ok(())
    }
}

async fn one_stream(
    addr: SocketAddr,
    request: Arc<Vec<u8>>,
    expected: Arc<String>,
    open: Arc<AtomicUsize>,
    received: Arc<AtomicU64>,
) -> Outcome {
    let start = Instant::now();
    let mut out = Outcome { start_ns: wall_ns(), ..Outcome::default() };
    let mut s = match tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            out.error = Some(format!("connect: {}", e.kind()));
            return out;
        }
        Err(_) => {
            out.error = Some("connect timeout".into());
            return out;
        }
    };
    let _ = s.set_nodelay(true);
    out.port = s.local_addr().map(|a| a.port()).unwrap_or(0);
    if let Err(e) = s.write_all(&request).await {
        out.error = Some(format!("write: {}", e.kind()));
        return out;
    }
    out.sent_ns = wall_ns();
    let mut buf = vec![0u8; 16 * 1024];
    let mut head = Vec::new();
    let mut body = Vec::new();
    let mut chunked: Option<Dechunk> = None;
    let mut decoder = StreamDecoder::new(Options { format: Format::OpenAi, ..Options::default() });
    let mut text = String::with_capacity(expected.len());
    let mut done = false;
    let mut counted = false;
    let result: Result<(), String> = async {
        loop {
            let n = s.read(&mut buf).await.map_err(|e| format!("read: {}", e.kind()))?;
            let mut data = &buf[..n];
            if chunked.is_none() {
                head.extend_from_slice(data);
                let Some(p) = head.windows(4).position(|w| w == b"\r\n\r\n") else {
                    if n == 0 {
                        return Err("closed before the response head".into());
                    }
                    continue;
                };
                let h = String::from_utf8_lossy(&head[..p]).to_ascii_lowercase();
                let status = h.split_whitespace().nth(1).unwrap_or("");
                if status != "200" {
                    return Err(format!("status {status}"));
                }
                if !h.contains("transfer-encoding: chunked") {
                    return Err("response is not chunked".into());
                }
                open.fetch_add(1, Ordering::Relaxed);
                counted = true;
                chunked = Some(Dechunk::default());
                let rest = head.split_off(p + 4);
                body.clear();
                chunked.as_mut().unwrap().feed(&rest, &mut body)?;
                data = &[];
            } else if n == 0 {
                return Err("connection closed mid-body".into());
            }
            let dc = chunked.as_mut().unwrap();
            dc.feed(data, &mut body)?;
            if !body.is_empty() {
                let u = decoder.push(&body);
                body.clear();
                if let Some(e) = u.errors.first() {
                    return Err(format!("stream error: {} {}", e.kind, e.message));
                }
                if !u.text.is_empty() {
                    if out.ttft.is_none() {
                        out.ttft = Some(start.elapsed());
                    }
                    text.push_str(&u.text);
                    received.fetch_add(u.text.len() as u64, Ordering::Relaxed);
                }
                done |= u.done;
            }
            if dc.done {
                return Ok(());
            }
        }
    }
    .await;
    if counted {
        open.fetch_sub(1, Ordering::Relaxed);
    }
    if let Err(e) = result {
        out.error = Some(e);
    } else if !done {
        out.error = Some("no [DONE]".into());
    } else if text != *expected {
        out.error = Some(format!("answer differs ({} of {} bytes)", text.len(), expected.len()));
    }
    out
}

fn cpu_ticks(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/stat")).ok())
        .map(|s| {
            // Fields after the `(comm)`: state is field 3; utime and stime are 14 and 15.
            let rest = &s[s.rfind(')').map(|i| i + 2).unwrap_or(0)..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
                + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        })
        .sum()
}

fn rss_kib(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/status")).ok())
        .filter_map(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .sum()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn run(cfg: RunConfig) -> Value {
    // Several URLs (comma-separated): stream i goes to URL i mod n, as a round-robin balancer would.
    let targets: Vec<(SocketAddr, Arc<Vec<u8>>)> = cfg
        .url
        .split(',')
        .map(|url| {
            let rest = url.trim().strip_prefix("http://").expect("an http:// URL");
            let (hostport, path) =
                rest.split_once('/').map(|(h, p)| (h, format!("/{p}"))).unwrap_or((rest, "/".into()));
            let addr: SocketAddr = hostport.parse().expect("an IP:port URL (loopback)");
            assert!(addr.ip().is_loopback(), "the benchmark only targets loopback");
            let body = r#"{"model":"mock","stream":true,"messages":[{"role":"user","content":"benchmark"}]}"#;
            let request = format!(
                "POST {path} HTTP/1.1\r\nhost: {hostport}\r\ncontent-type: application/json\r\naccept: text/event-stream\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            (addr, Arc::new(request.into_bytes()))
        })
        .collect();
    let expected = Arc::new(expected(cfg.deltas));
    let open = Arc::new(AtomicUsize::new(0));

    let cpu0 = cpu_ticks(&cfg.pids);
    let rss0 = rss_kib(&cfg.pids);
    // Every (open streams, RSS) sample, taken every 100 ms.
    let samples: Arc<Mutex<Vec<(usize, u64)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (pids, open, samples, stop) = (cfg.pids.clone(), open.clone(), samples.clone(), stop.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let n = open.load(Ordering::Relaxed);
                samples.lock().unwrap().push((n, rss_kib(&pids)));
            }
        })
    };

    // Answer bytes received by all streams so far, for the delivery rate.
    let received = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    // The delivery rate: answer bytes counted over a fixed window that starts once every
    // stream has started (plus a settling margin), read at two instants measured to the
    // nanosecond. The whole run's wall time would also count the slowest stream's tail and
    // the joins, which move the figure by more than the 2% it is judged by.
    let window = {
        let received = received.clone();
        let (from, len) = (t0 + cfg.ramp + Duration::from_millis(250), cfg.window);
        tokio::spawn(async move {
            tokio::time::sleep_until(from.into()).await;
            let (a, ca) = (Instant::now(), received.load(Ordering::Relaxed));
            tokio::time::sleep_until((from + len).into()).await;
            let (b, cb) = (Instant::now(), received.load(Ordering::Relaxed));
            (cb - ca) as f64 / (b - a).as_secs_f64()
        })
    };
    let mut tasks = Vec::with_capacity(cfg.streams);
    for i in 0..cfg.streams {
        let at = t0 + cfg.ramp.mul_f64(i as f64 / cfg.streams.max(1) as f64);
        let (addr, request) = targets[i % targets.len()].clone();
        let (expected, open, received) = (expected.clone(), open.clone(), received.clone());
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(at.into()).await;
            one_stream(addr, request, expected, open, received).await
        }));
    }
    let deadline = tokio::time::Instant::now() + cfg.timeout;
    let mut outcomes = Vec::with_capacity(cfg.streams);
    for t in tasks {
        match tokio::time::timeout_at(deadline, t).await {
            Ok(Ok(o)) => outcomes.push(o),
            Ok(Err(_)) => outcomes.push(Outcome { error: Some("task failed".into()), ..Outcome::default() }),
            Err(_) => outcomes.push(Outcome { error: Some("timed out".into()), ..Outcome::default() }),
        }
    }
    let wall = t0.elapsed();
    let bytes_per_s = window.await.unwrap_or(f64::NAN);
    if let Ok(path) = std::env::var("RELAY_LOAD_DUMP") {
        // Per stream: start offset (ms), time to first token (ms), local port, and when it
        // started and its request was written (ns since the Unix epoch), for looking at tails.
        let lines: Vec<String> = outcomes
            .iter()
            .enumerate()
            .map(|(i, o)| {
                let at = cfg.ramp.as_secs_f64() * 1000.0 * i as f64 / cfg.streams.max(1) as f64;
                let ttft = o.ttft.map(|d| d.as_secs_f64() * 1000.0).unwrap_or(-1.0);
                format!("{at:.1} {ttft:.2} {} {} {}", o.port, o.start_ns, o.sent_ns)
            })
            .collect();
        let _ = std::fs::write(path, lines.join("\n"));
    }
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.await;
    let cpu1 = cpu_ticks(&cfg.pids);

    let mut errors: BTreeMap<String, usize> = BTreeMap::new();
    for o in &outcomes {
        if let Some(e) = &o.error {
            *errors.entry(e.clone()).or_default() += 1;
        }
    }
    let ok = outcomes.iter().filter(|o| o.error.is_none()).count();
    let mut ttfts: Vec<f64> = outcomes.iter().filter_map(|o| o.ttft.map(|d| d.as_secs_f64() * 1000.0)).collect();
    ttfts.sort_by(|a, b| a.total_cmp(b));
    let deltas = (ok * cfg.deltas) as f64;
    let cpu_s = (cpu1 - cpu0) as f64 / cfg.clk_tck;
    // Memory while the most streams were open: the median RSS of those samples (steady state;
    // one sample caught mid-burst does not decide), and the largest, reported beside it.
    let samples = samples.lock().unwrap().clone();
    let open_at_peak = samples.iter().map(|s| s.0).max().unwrap_or(0);
    let mut at_peak: Vec<u64> = samples.iter().filter(|s| s.0 == open_at_peak).map(|s| s.1).collect();
    at_peak.sort_unstable();
    let rss_median = at_peak.get(at_peak.len() / 2).copied().unwrap_or(rss0);
    let rss_peak = at_peak.last().copied().unwrap_or(rss0);
    let per_stream = |rss: u64| {
        if open_at_peak > 0 && !cfg.pids.is_empty() {
            rss.saturating_sub(rss0) as f64 / open_at_peak as f64
        } else {
            f64::NAN
        }
    };
    json!({
        "label": cfg.label,
        "streams": cfg.streams,
        "deltas_per_stream": cfg.deltas,
        "ok": ok,
        "errors": cfg.streams - ok,
        "error_rate": (cfg.streams - ok) as f64 / cfg.streams.max(1) as f64,
        "error_kinds": errors,
        "ttft_p50_ms": percentile(&ttfts, 50.0),
        "ttft_p90_ms": percentile(&ttfts, 90.0),
        "ttft_p99_ms": percentile(&ttfts, 99.0),
        "ttft_max_ms": percentile(&ttfts, 100.0),
        "wall_s": wall.as_secs_f64(),
        // Deltas per second over the window (answer bytes, at this answer's bytes per delta).
        "deltas_per_s": bytes_per_s * cfg.deltas as f64 / expected.len().max(1) as f64,
        "cpu_s": cpu_s,
        "cpu_us_per_delta": if deltas > 0.0 && !cfg.pids.is_empty() { cpu_s * 1e6 / deltas } else { f64::NAN },
        "rss_base_kib": rss0,
        "rss_median_kib": rss_median,
        "rss_peak_kib": rss_peak,
        "open_at_peak": open_at_peak,
        "samples_at_peak": at_peak.len(),
        "kib_per_stream": per_stream(rss_median),
        "kib_per_stream_max": per_stream(rss_peak),
    })
}

// ---------------------------------------------------------------- report

fn report(files: &[String]) -> String {
    // Runs by label; a label run several times is summarized by the median of each metric.
    let mut runs: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for v in files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .filter_map(|s| serde_json::from_str::<Value>(s.trim()).ok())
    {
        runs.entry(v["label"].as_str().unwrap_or("?").to_string()).or_default().push(v);
    }
    let get = |label: &str, key: &str| {
        let mut xs: Vec<f64> =
            runs.get(label).map(|vs| vs.iter().filter_map(|v| v[key].as_f64()).collect()).unwrap_or_default();
        xs.sort_by(|a, b| a.total_cmp(b));
        xs.get(xs.len() / 2).copied().unwrap_or(f64::NAN)
    };
    let main = if runs.contains_key("relay") { "relay" } else { "relay-h1" };
    let reps = runs.get(main).map(|v| v.len()).unwrap_or(0);
    let direct = get("direct", "ttft_p99_ms");
    let added = |label: &str| get(label, "ttft_p99_ms") - direct;
    let ratio = |a: f64, b: f64| if b.abs() > 1e-9 { format!("{:.2}×", a / b) } else { "–".into() };
    let verdict = |pass: bool| if pass { "✅" } else { "❌" };
    let mut s = String::new();
    s.push_str(&format!(
        "## Relay beside nginx: {} concurrent streams, {} deltas 20 ms apart, loopback (median of {reps} interleaved runs)\n\n",
        get(main, "streams"),
        get(main, "deltas_per_stream"),
    ));
    s.push_str("The relay column runs with `UPSTREAM_HTTP2=1`: HTTP/2 to the mock upstream, streams spread over 4 connections; nginx can only proxy HTTP/1.1 upstreams. The relay over HTTP/1.1 (one upstream connection per stream, like nginx; the default, and what self-hosted upstreams speak) is shown too. Targets are checked on the HTTP/1.1 column.\n\n");
    s.push_str("| metric | nginx (`proxy_buffering off`) | chunkwise-relay | relay / nginx | relay, HTTP/1.1 upstream | relay-h1 / nginx | target | |\n");
    s.push_str("| --- | --- | --- | --- | --- | --- | --- | --- |\n");
    let (an, ar, ah) = (added("nginx"), added("relay"), added("relay-h1"));
    s.push_str(&format!(
        "| added TTFT p99 (ms, over direct {direct:.1}) | {an:.1} | {ar:.1} | {} | {ah:.1} | {} | ≤ nginx (relay-h1 − nginx: {:+.2} ms) | {} |\n",
        ratio(ar, an),
        ratio(ah, an),
        ah - an,
        verdict(ah <= an)
    ));
    let (cn, cr, ch) =
        (get("nginx", "cpu_us_per_delta"), get("relay", "cpu_us_per_delta"), get("relay-h1", "cpu_us_per_delta"));
    s.push_str(&format!(
        "| CPU per relayed delta (µs) | {cn:.1} | {cr:.1} | {} | {ch:.1} | {} | ≤ 1.3× nginx | {} |\n",
        ratio(cr, cn),
        ratio(ch, cn),
        verdict(ch <= 1.3 * cn)
    ));
    let (mn, mr, mh) =
        (get("nginx", "kib_per_stream"), get("relay", "kib_per_stream"), get("relay-h1", "kib_per_stream"));
    s.push_str(&format!(
        "| memory per open stream (KiB, median; max {:.1} / {:.1} / {:.1}) | {mn:.1} | {mr:.1} | {} | {mh:.1} | {} | ≤ 32 KiB | {} |\n",
        get("nginx", "kib_per_stream_max"),
        get("relay", "kib_per_stream_max"),
        get("relay-h1", "kib_per_stream_max"),
        ratio(mr, mn),
        ratio(mh, mn),
        verdict(mh <= 32.0)
    ));
    // Delivered deltas per second while every stream is open (a fixed window, the same for
    // every path): a proxy that falls behind the mock's pace delivers fewer in it.
    let rate = |label: &str| get(label, "deltas_per_s");
    let ratio3 = |a: f64, b: f64| if b.abs() > 1e-9 { format!("{:.3}×", a / b) } else { "–".into() };
    let (rd, rn, rr, rh) = (rate("direct"), rate("nginx"), rate("relay"), rate("relay-h1"));
    s.push_str(&format!(
        "| deltas/s delivered (direct {rd:.0}) | {rn:.0} ({}) | {rr:.0} ({}) | | {rh:.0} ({}) | | within 2% of direct | {} |\n",
        ratio3(rn, rd),
        ratio3(rr, rd),
        ratio3(rh, rd),
        verdict(rh >= 0.98 * rd)
    ));
    s.push_str(&format!(
        "| answers with an error | {} | {} | | {} | | 0 | {} |\n",
        get("nginx", "errors"),
        get("relay", "errors"),
        get("relay-h1", "errors"),
        verdict(get("relay-h1", "errors") == 0.0)
    ));
    if runs.contains_key("relay-redis") {
        let (cm, cs) = (get("relay-h1", "cpu_us_per_delta"), get("relay-redis", "cpu_us_per_delta"));
        let (tm, ts) = (added("relay-h1"), added("relay-redis"));
        s.push_str(&format!(
            "\n**Two instances + Redis** (HTTP/1.1 upstream, streams spread over both, generations mirrored to Redis): CPU per delta, relays and Redis together, {cs:.1} µs vs {cm:.1} µs for one in-memory relay ({}; target ≤ 2×) {}; added TTFT p99 {ts:.1} ms vs {tm:.1} ms (target ≤ +10 ms) {}; memory per open stream {:.1} KiB; {} answers with an error.\n",
            ratio(cs, cm),
            verdict(cs <= 2.0 * cm),
            verdict(ts <= tm + 10.0),
            get("relay-redis", "kib_per_stream"),
            get("relay-redis", "errors"),
        ));
    }
    // Each path's repetitions in run order: their spread is what this machine can resolve.
    s.push_str("\n| path | TTFT p50 (ms), each repetition | TTFT p99 (ms), each repetition | CPU per delta (µs), median |\n| --- | --- | --- | --- |\n");
    let each = |vs: &[Value], key: &str| {
        vs.iter().map(|v| format!("{:.1}", v[key].as_f64().unwrap_or(f64::NAN))).collect::<Vec<_>>().join(", ")
    };
    for (label, vs) in runs.iter().filter(|(label, _)| !label.ends_with("10k")) {
        s.push_str(&format!(
            "| {label} | {} | {} | {:.1} |\n",
            each(vs, "ttft_p50_ms"),
            each(vs, "ttft_p99_ms"),
            get(label, "cpu_us_per_delta")
        ));
    }
    // With BEFORE=<binary>: the same paths through another build, in the same repetitions.
    for before in runs.keys().filter(|label| label.ends_with("-before")) {
        let after = before.trim_end_matches("-before");
        let pair = |key: &str| format!("{:.1} → {:.1}", get(before, key), get(after, key));
        s.push_str(&format!(
            "\n**{after}, before → after** (medians): TTFT p50 {} ms, p99 {} ms; CPU per delta {} µs\n",
            pair("ttft_p50_ms"),
            pair("ttft_p99_ms"),
            pair("cpu_us_per_delta"),
        ));
    }
    for (label, what) in [
        ("relay-10k", "one relay, in memory, `UPSTREAM_HTTP2=1`"),
        ("relay-redis-10k", "two instances + Redis, `UPSTREAM_HTTP2=1`"),
    ] {
        if let Some(big) = runs.get(label).and_then(|v| v.first()) {
            let rate = big["error_rate"].as_f64().unwrap_or(1.0);
            s.push_str(&format!(
            "\n**{} concurrent streams**, {what} ({} deltas 200 ms apart): {} ok, {} errors ({:.3} %; target < 0.1 %), TTFT p99 {:.1} ms, {:.1} KiB per open stream (peak {} open) {}\n",
            big["streams"],
            big["deltas_per_stream"],
            big["ok"],
            big["errors"],
            rate * 100.0,
            big["ttft_p99_ms"].as_f64().unwrap_or(f64::NAN),
            big["kib_per_stream"].as_f64().unwrap_or(f64::NAN),
            big["open_at_peak"],
            verdict(rate < 0.001)
        ));
            if let Some(kinds) = big["error_kinds"].as_object().filter(|k| !k.is_empty()) {
                s.push_str(&format!("errors by kind: {}\n", Value::Object(kinds.clone())));
            }
        }
    }
    s.push_str("\nRaw runs (JSON):\n\n```\n");
    for v in runs.values().flatten() {
        s.push_str(&v.to_string());
        s.push('\n');
    }
    s.push_str("```\n");
    s
}
