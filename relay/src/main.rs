//! `chunkwise-relay` — run the relay, or `chunkwise-relay token <subject> [ttl-seconds]` to
//! print an HMAC-signed client token with the configured secret.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chunkwise_relay::config::Config;
use chunkwise_relay::{auth, drain, serve_until, workers, App};

fn main() -> ExitCode {
    let config = match Config::load() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("chunkwise-relay: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("token") => token(&config, &args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("usage: chunkwise-relay            run the relay (configuration: README.md)\n       chunkwise-relay token SUBJECT [TTL_SECONDS]   print a signed client token (needs RELAY_HMAC_SECRET)");
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("chunkwise-relay: unknown command {other:?} (try --help)");
            ExitCode::from(2)
        }
        None => run(config),
    }
}

fn token(config: &Config, args: &[String]) -> ExitCode {
    let (Some(subject), secret) = (args.first(), &config.auth.hmac_secret) else {
        eprintln!("usage: chunkwise-relay token SUBJECT [TTL_SECONDS]");
        return ExitCode::from(2);
    };
    if secret.is_empty() {
        eprintln!("chunkwise-relay: set RELAY_HMAC_SECRET (or auth.hmac_secret) to sign tokens");
        return ExitCode::from(2);
    }
    if !auth::valid_subject(subject) {
        eprintln!("chunkwise-relay: the subject must be 1 to 64 characters of A-Z a-z 0-9 _ - (got {subject:?})");
        return ExitCode::from(2);
    }
    let ttl: u64 = match args.get(1).map(|t| t.parse::<u64>()) {
        None => 3600,
        Some(Ok(ttl)) if ttl > 0 => ttl,
        Some(_) => {
            eprintln!("chunkwise-relay: TTL_SECONDS must be a positive whole number of seconds");
            return ExitCode::from(2);
        }
    };
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    println!("{}", auth::sign(secret, subject, now + ttl));
    ExitCode::SUCCESS
}

fn run(config: Config) -> ExitCode {
    // Before the runtime's threads exist (see the function).
    reserve_descriptors();
    // This thread's own loop: the start, the signals, the sweeper; the streams run on the
    // workers (see `chunkwise_relay::workers`).
    let control = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("chunkwise-relay: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    control.block_on(async move {
        // First: from here a SIGTERM (a deploy that stops a relay still starting) is a drain,
        // taken up once the workers run, never the default action that kills the process.
        let mut signals = Signals::new();
        let addr = SocketAddr::new(config.server.host, config.server.port);
        let upstream = match config.upstream.kind {
            chunkwise_relay::config::Provider::Demo => "the built-in demo model".to_string(),
            kind => format!(
                "{} upstream {} (model {})",
                kind.name(),
                chunkwise_relay::config::without_userinfo(&config.upstream.base_url),
                config.upstream.model
            ),
        };
        let auth = config.auth_required();
        let static_dir = match &config.server.static_dir {
            Some(dir) => format!("static files from {}", dir.display()),
            None => "no static files".to_string(),
        };
        let threads = workers::count(config.server.worker_threads);
        // Nothing is served yet (a store that does not answer can hold this up): a signal
        // stops it here.
        let connected = tokio::select! {
            connected = App::connect(config) => connected,
            () = signals.next() => {
                eprintln!("chunkwise-relay: stopped while starting");
                return ExitCode::SUCCESS;
            }
        };
        let app = match connected {
            Ok(app) => app,
            Err(e) => {
                eprintln!("chunkwise-relay: {e}");
                return ExitCode::from(2);
            }
        };
        let listeners = match workers::listeners(addr, threads) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("chunkwise-relay: cannot listen on {addr}: {e}");
                return ExitCode::FAILURE;
            }
        };
        let drain_timeout = Duration::from_secs(app.config.server.drain_timeout_secs);
        let (stop, stopped) = tokio::sync::watch::channel(Phase::Serving);
        let (failed, mut failure) = tokio::sync::mpsc::unbounded_channel::<String>();
        let count = listeners.len();
        let mut threads = Vec::with_capacity(count);
        for (index, listener) in listeners.into_iter().enumerate() {
            let (app, mut stopped, fail) = (app.clone(), stopped.clone(), failed.clone());
            let spawned = std::thread::Builder::new().name(format!("relay-worker-{index}")).spawn(move || {
                workers::enter(index, count);
                let _unwinding = Unwinding(fail.clone(), index);
                let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(rt) => rt,
                    Err(e) => return drop(fail.send(format!("cannot start the runtime: {e}"))),
                };
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => return drop(fail.send(format!("cannot listen on {addr}: {e}"))),
                    };
                    let connections = Arc::new(drain::Connections::default());
                    let draining = async {
                        let _ = stopped.clone().wait_for(|p| *p != Phase::Serving).await;
                    };
                    // Returns when the drain begins, with the listener closed: the kernel
                    // refuses the next connect (or resets one still in its queue), and a
                    // balancer tries another instance.
                    if let Err(e) = serve_until(listener, app, &connections, draining).await {
                        let _ = fail.send(e.to_string());
                    }
                    let phase = stopped.wait_for(|p| *p >= Phase::Closing).await.map_or(Phase::Exiting, |p| *p);
                    if phase == Phase::Closing {
                        connections.close(drain::CLOSE).await;
                    }
                });
                // The runtime is dropped here, on its own thread: every task it still runs
                // (connections, generations) is dropped with it.
            });
            match spawned {
                Ok(t) => threads.push(t),
                Err(e) => {
                    let _ = failed.send(format!("cannot start a worker thread: {e}"));
                    break;
                }
            }
        }
        drop(failed);
        eprintln!(
            "chunkwise-relay listening on http://{addr} — {upstream}; client tokens {}; {static_dir}; {count} worker thread{}",
            if auth { "required" } else { "off" },
            if count == 1 { "" } else { "s" },
        );
        let failed = |e: Option<String>| {
            eprintln!("chunkwise-relay: {}", e.as_deref().unwrap_or("every worker thread stopped"));
            FAILED
        };
        tokio::select! {
            e = failure.recv() => return stopped_now(stop, threads, failed(e)).await,
            () = signals.next() => {}
        }
        app.drain.begin();
        let _ = stop.send(Phase::Draining);
        eprintln!(
            "chunkwise-relay: draining: {} answer(s) running, new connections refused; stopping when they end, within {} s (signal again to stop at once)",
            app.registry.running().load(std::sync::atomic::Ordering::Relaxed),
            drain_timeout.as_secs(),
        );
        tokio::select! {
            e = failure.recv() => return stopped_now(stop, threads, failed(e)).await,
            () = signals.next() => {
                eprintln!("chunkwise-relay: stopping at once");
                return stopped_now(stop, threads, 0).await;
            }
            drained = drain::drain(&app, drain_timeout) => match drained {
                drain::Drained::Finished => eprintln!("chunkwise-relay: every answer finished; shutting down"),
                drain::Drained::Interrupted { answers, readers } => eprintln!(
                    "chunkwise-relay: drain timeout ({} s) passed: {answers} answer(s) still running ended with an error, {readers} stream(s) still open are closed; shutting down",
                    drain_timeout.as_secs()
                ),
            },
        }
        let _ = stop.send(Phase::Closing);
        tokio::select! {
            all = joined(&mut threads, drain::CLOSE + drain::JOIN) => {
                // A worker that panicked while closing still makes the exit a failure.
                let code = failure.try_recv().map_or(0, |e| failed(Some(e)));
                exit(all, code)
            }
            () = signals.next() => {
                eprintln!("chunkwise-relay: stopping at once");
                exit(false, 0)
            }
        }
    })
}

/// The status for a failure.
const FAILED: u8 = 1;

/// `code` as the exit status; if some worker thread did not end (`all` false), the process
/// exits here, without waiting for it.
fn exit(all: bool, code: u8) -> ExitCode {
    if !all {
        std::process::exit(code.into());
    }
    ExitCode::from(code)
}

/// Whether every thread of `threads` ended within `limit` (the ended ones are taken out).
async fn joined(threads: &mut Vec<std::thread::JoinHandle<()>>, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        // A panic is reported by the thread itself (`Unwinding`), so the ended ones are
        // dropped unjoined.
        threads.retain(|t| !t.is_finished());
        if threads.is_empty() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            eprintln!(
                "chunkwise-relay: {} worker thread(s) did not stop within {limit:?}; exiting without them",
                threads.len()
            );
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Where the relay is in its life; the worker threads follow it (see [`chunkwise_relay::drain`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Serving,
    /// Listeners closed; the connections and answers go on.
    Draining,
    /// Every connection is closed gracefully, then the worker ends.
    Closing,
    /// The worker ends at once, dropping what it runs.
    Exiting,
}

/// Ends every worker at once (dropping its connections and answers), within [`drain::JOIN`],
/// and exits with `code`.
async fn stopped_now(
    stop: tokio::sync::watch::Sender<Phase>,
    mut threads: Vec<std::thread::JoinHandle<()>>,
    code: u8,
) -> ExitCode {
    let _ = stop.send(Phase::Exiting);
    exit(joined(&mut threads, drain::JOIN).await, code)
}

/// Reports a worker thread that unwinds from a panic, so that the process exits (as it did when
/// a panic ended the one accept loop) instead of serving on fewer listeners, or none, while a
/// supervisor sees it running.
struct Unwinding(tokio::sync::mpsc::UnboundedSender<String>, usize);

impl Drop for Unwinding {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = self.0.send(format!("worker thread {} panicked", self.1));
        }
    }
}

/// Grows this process's descriptor table once, at start, to room for [`RESERVED_DESCRIPTORS`]
/// (or the descriptor limit, if lower). Linux doubles the table as descriptors are opened
/// (64, 128, 256, …), and in a process with several threads each doubling waits for an RCU
/// grace period (`expand_fdtable`): the `socket()` or `accept()` that crossed the line took
/// 6–14 ms here, while the event loop on that thread ran nothing else, so the streams that
/// started then waited for their first byte. Done while the process has one thread, the growth
/// costs no wait, and the table is never shrunk. It costs the kernel about 8 bytes a slot.
#[cfg(target_os = "linux")]
fn reserve_descriptors() {
    use std::os::fd::AsRawFd;
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes the limit into the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return;
    }
    let top = limit.rlim_cur.min(RESERVED_DESCRIPTORS) as libc::c_int;
    let Ok(probe) = std::fs::File::open("/dev/null") else { return };
    if top <= probe.as_raw_fd() + 1 {
        return;
    }
    // SAFETY: duplicates a descriptor this function owns onto the lowest free number from
    // `top - 1` (which grows the table), then closes that duplicate.
    unsafe {
        let high = libc::fcntl(probe.as_raw_fd(), libc::F_DUPFD_CLOEXEC, top - 1);
        if high >= 0 {
            libc::close(high);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn reserve_descriptors() {}

/// Three descriptors a stream (the client's socket, its watcher's duplicate, the upstream's):
/// room for some 20,000 streams without a table doubling.
#[cfg(target_os = "linux")]
const RESERVED_DESCRIPTORS: libc::rlim_t = 65_536;

/// SIGTERM and SIGINT, each time one arrives (the handlers stay installed in between, so a
/// second signal is never lost nor takes the default action of ending the process).
struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Signals { term: signal(SignalKind::terminate()).ok(), int: signal(SignalKind::interrupt()).ok() }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    async fn next(&mut self) {
        #[cfg(unix)]
        {
            async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
                let Some(s) = s else { return std::future::pending().await };
                if s.recv().await.is_none() {
                    std::future::pending().await
                }
            }
            tokio::select! {
                () = recv(&mut self.term) => {}
                () = recv(&mut self.int) => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
