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
/// own. A port taken by another socket is an error, as with one listener, and so is a port
/// that another relay starting at the same moment claims: the first listener binds and
/// listens *without* `SO_REUSEPORT`, which no other socket on that port lets through, and
/// only then turns it on so that the others can join it. The kernel checks `SO_REUSEPORT` on
/// both sides at each bind and listen, so from that listen on, a second relay's first
/// listener (without it) is refused; two first listeners bound before either listens (both
/// have `SO_REUSEADDR`, for the `TIME_WAIT` sockets of a previous run) are told apart at
/// `listen`, where the later one is refused. What this cannot see: a process of the same
/// user that binds with `SO_REUSEPORT` from the start (not a relay) may still join the group;
/// Linux refuses that to other users. A port 0 is resolved to the one the kernel picked for
/// the first listener.
#[cfg(unix)]
pub fn listeners(addr: SocketAddr, count: usize) -> std::io::Result<Vec<std::net::TcpListener>> {
    let first = bound(addr, false)?;
    listen(&first)?;
    first.set_reuse_port(true)?;
    let addr = first.local_addr()?.as_socket().ok_or(std::io::ErrorKind::AddrNotAvailable)?;
    let mut all = vec![first.into()];
    for _ in 1..count.max(1) {
        let socket = bound(addr, true)?;
        listen(&socket)?;
        all.push(socket.into());
    }
    Ok(all)
}

/// A non-blocking TCP socket bound to `addr` with `SO_REUSEADDR` (as `TcpListener::bind`
/// sets it), and `SO_REUSEPORT` when `reuse_port`.
#[cfg(unix)]
fn bound(addr: SocketAddr, reuse_port: bool) -> std::io::Result<socket2::Socket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(reuse_port)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket)
}

#[cfg(unix)]
fn listen(socket: &socket2::Socket) -> std::io::Result<()> {
    // tokio's own backlog for `TcpListener::bind`.
    socket.listen(1024)
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
        let mut accepted = [0; 3];
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while accepted.iter().sum::<usize>() < clients.len() && std::time::Instant::now() < deadline {
            for (l, n) in ls.iter().zip(&mut accepted) {
                while l.accept().is_ok() {
                    *n += 1;
                }
            }
        }
        assert_eq!(accepted.iter().sum::<usize>(), clients.len());
        // One group: the kernel spreads connections over the listeners (24 on one of three
        // by chance: 3⁻²³), the first one included.
        assert!(accepted.iter().filter(|&&n| n > 0).count() >= 2, "{accepted:?}");
        // Taken by these listeners: another relay on the same port is an error, not a sharer.
        let taken = listeners(ls[0].local_addr().unwrap(), 2);
        assert_eq!(taken.err().map(|e| e.kind()), Some(std::io::ErrorKind::AddrInUse));
        // Taken by a socket without SO_REUSEPORT.
        let plain = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        assert!(listeners(plain.local_addr().unwrap(), 2).is_err());
    }

    /// Two relays starting at the same moment: whatever the order of their steps, the second
    /// to claim the port is refused rather than joining the first one's listeners.
    #[cfg(unix)]
    #[test]
    fn a_relay_starting_at_the_same_moment_is_refused_at_every_step() {
        let in_use = |r: std::io::Result<()>| r.err().map(|e| e.kind()) == Some(std::io::ErrorKind::AddrInUse);
        // Once the first listener listens, even before the others bind, a second relay is
        // refused (the window of a check socket dropped before the listeners bind).
        let first = bound("127.0.0.1:0".parse().unwrap(), false).unwrap();
        listen(&first).unwrap();
        first.set_reuse_port(true).unwrap();
        let addr = first.local_addr().unwrap().as_socket().unwrap();
        assert!(in_use(listeners(addr, 2).map(drop)));
        // ...while this relay's own listeners still join it.
        let second = bound(addr, true).unwrap();
        listen(&second).unwrap();
        drop((first, second));
        // Both first listeners bound (SO_REUSEADDR lets them) before either listens: the later
        // listen is refused, whichever relay it is.
        let a = bound("127.0.0.1:0".parse().unwrap(), false).unwrap();
        let addr = a.local_addr().unwrap().as_socket().unwrap();
        let b = bound(addr, false).unwrap();
        listen(&b).unwrap();
        b.set_reuse_port(true).unwrap();
        assert!(in_use(listen(&a)));
        assert!(in_use(bound(addr, false).map(drop)));
    }
}
