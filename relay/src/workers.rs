//! The relay's threads as nginx runs its worker processes: each worker thread is an event loop
//! of its own (a current-thread tokio runtime) with its own listener on the shared port
//! (`SO_REUSEPORT`: the kernel spreads new connections over them), its own timers, and its own
//! upstream connections. A stream's whole path (the accept, the request, the generation's task,
//! its upstream socket, every delta written back) then runs on the thread that accepted it.
//!
//! Why: on one multi-thread runtime the accept loop, a connection's task and its generation's
//! task land on different threads, and every hand-off between them is a futex wake and a
//! context switch; a new stream's first byte waited behind two of them queued one after the
//! other. What is shared across threads (the registry, the limits, the metrics, the Redis
//! store) stays behind the locks and atomics it already uses; a resume or a cancel that
//! reaches another thread's generation goes through the generation's own `Notify` and abort
//! handle, one cross-thread wake, which is rare.
//!
//! Resources a task holds across awaits (a kept upstream connection, an HTTP/2 client's
//! connection task) are registered with the runtime they were made on, so they are handed
//! out only to tasks of the same worker: see [`current`].

use std::cell::Cell;
use std::net::SocketAddr;

/// The worker thread this code runs on: its index and how many there are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Worker {
    pub index: usize,
    pub count: usize,
}

thread_local! {
    static WORKER: Cell<Option<Worker>> = const { Cell::new(None) };
}

/// The worker thread this runs on; `None` on any other thread (a multi-thread runtime, whose
/// threads share one reactor, as in tests and when the relay is used as a library).
pub fn current() -> Option<Worker> {
    WORKER.with(Cell::get)
}

/// How many worker threads a configured `worker_threads` means: 0 is one per core.
pub fn count(configured: usize) -> usize {
    match configured {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}

/// Marks this thread as worker `index` of `count` for the rest of its life.
pub fn enter(index: usize, count: usize) {
    WORKER.with(|w| w.set(Some(Worker { index, count })));
}

/// Which of `n` per-worker lanes (kept connections, HTTP/2 clients) this thread may use:
/// `Some((lanes, mine))` means lane `i` is this thread's when `i % lanes == mine`. With fewer
/// lanes than workers, workers share them (`index % lanes`). `None`: any lane.
pub fn lane(n: usize) -> Option<(usize, usize)> {
    let w = current()?;
    let lanes = n.min(w.count).max(1);
    Some((lanes, w.index % lanes))
}

/// `count` listeners on `addr`, all with `SO_REUSEPORT`, so that each worker accepts on its
/// own. A port taken by another socket is an error, as with one listener: the address is first
/// bound once without `SO_REUSEPORT` (which no other socket on that port lets through), and a
/// port 0 is resolved to the one the kernel picked then.
#[cfg(unix)]
pub fn listeners(addr: SocketAddr, count: usize) -> std::io::Result<Vec<std::net::TcpListener>> {
    use socket2::{Domain, Protocol, Socket, Type};
    let addr = std::net::TcpListener::bind(addr)?.local_addr()?;
    (0..count.max(1))
        .map(|_| {
            let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
            socket.set_reuse_address(true)?;
            socket.set_reuse_port(true)?;
            socket.set_nonblocking(true)?;
            socket.bind(&addr.into())?;
            // tokio's own backlog for `TcpListener::bind`.
            socket.listen(1024)?;
            Ok(socket.into())
        })
        .collect()
}

/// One listener (no `SO_REUSEPORT` here): a single worker accepts on it.
#[cfg(not(unix))]
pub fn listeners(addr: SocketAddr, _count: usize) -> std::io::Result<Vec<std::net::TcpListener>> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    Ok(vec![listener])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_split_among_workers_and_are_shared_when_fewer() {
        assert_eq!(lane(4), None, "a thread that is no worker may use any lane");
        let on = |index, count, n| {
            std::thread::spawn(move || {
                enter(index, count);
                lane(n)
            })
            .join()
            .unwrap()
        };
        assert_eq!(on(1, 2, 4), Some((2, 1)));
        assert_eq!(on(0, 2, 4), Some((2, 0)));
        assert_eq!(on(3, 4, 2), Some((2, 1)));
        assert_eq!(on(0, 1, 4), Some((1, 0)));
        assert_eq!(on(2, 4, 1), Some((1, 0)));
    }

    #[cfg(unix)]
    #[test]
    fn each_listener_accepts_on_the_same_port_and_a_taken_port_is_refused() {
        let ls = listeners("127.0.0.1:0".parse().unwrap(), 3).unwrap();
        let port = ls[0].local_addr().unwrap().port();
        assert_ne!(port, 0);
        assert!(ls.iter().all(|l| l.local_addr().unwrap().port() == port));
        // Connections go to one listener or another; every one is accepted by one of them.
        let clients: Vec<_> = (0..24).map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).unwrap()).collect();
        let mut accepted = 0;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while accepted < clients.len() && std::time::Instant::now() < deadline {
            for l in &ls {
                while l.accept().is_ok() {
                    accepted += 1;
                }
            }
        }
        assert_eq!(accepted, clients.len());
        // Taken by these listeners: another relay on the same port is an error, not a sharer.
        let taken = listeners(ls[0].local_addr().unwrap(), 2);
        assert_eq!(taken.err().map(|e| e.kind()), Some(std::io::ErrorKind::AddrInUse));
        // Taken by a socket without SO_REUSEPORT.
        let plain = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        assert!(listeners(plain.local_addr().unwrap(), 2).is_err());
    }
}
