//! A TCP reverse proxy: each client is relayed to one of a few upstream echo servers, picked
//! round robin, with two green threads per connection (one per direction), half-close passed
//! through, an idle timeout, a cap on connections, byte counters, and on SIGTERM or Ctrl-C a
//! stop that lets open connections finish for a while and then cuts the rest.
//!
//! ```sh
//! cargo run --example proxy                 # listens on 127.0.0.1:7881; try `nc 127.0.0.1 7881`
//! cargo run --example proxy -- --port 9000  # another port
//! kill -TERM <pid>                          # or Ctrl-C: drains for DRAIN, then exits 0
//! cargo run --example proxy -- --demo       # a free port, checked clients, a SIGTERM mid-load
//! ```
//!
//! The upstreams are echo servers started in the same process, plus one address where nothing
//! listens, to show a failed connect moving on to the next upstream. Every byte is echoed, and
//! a client that shuts down its write side (`nc -N`) gets the rest of the echo and then end of
//! stream: the proxy passes each half-close on with `shutdown(Write)` and keeps relaying the
//! other direction until it ends too.

mod common {
    pub mod server;
}

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::server;
use green::net::{TcpListener, TcpStream};
use green::signal::{Signal, Signals};
use green::sync::{Semaphore, SemaphorePermit};

const USAGE: &str = "usage: proxy [--port N] [--demo]   (default: port 7881)";
const PORT: u16 = 7881;
/// Connections relayed at once. The accept loop takes a permit before it accepts, so a burst
/// beyond this waits in the listener's queue rather than costing fds and green threads.
const MAX_CONNECTIONS: usize = 32;
/// How long a connect to one upstream may take before the next is tried.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// A connection with no byte moving either way for this long is closed (at the next read
/// timeout of a direction: between once and twice this long).
const IDLE: Duration = Duration::from_secs(10);
/// How long open connections get to finish once a stop begins.
const DRAIN: Duration = Duration::from_secs(1);

/// A `static`, so each permit is a `SemaphorePermit<'static>` that can move into the
/// connection's green thread (a permit borrows its semaphore).
static LIMIT: Semaphore = Semaphore::new(MAX_CONNECTIONS);
static NEXT: AtomicUsize = AtomicUsize::new(0);
static OPEN: AtomicUsize = AtomicUsize::new(0);
static CLIENT_TO_UPSTREAM: AtomicU64 = AtomicU64::new(0);
static UPSTREAM_TO_CLIENT: AtomicU64 = AtomicU64::new(0);
static FAILED_CONNECTS: AtomicU64 = AtomicU64::new(0);

/// Connects to the next upstream in turn; one that refuses or does not answer within
/// [`CONNECT_TIMEOUT`] is skipped for the one after it.
fn connect_upstream(upstreams: &[SocketAddr]) -> io::Result<TcpStream> {
    let first = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut last = None;
    for i in 0..upstreams.len() {
        let addr = upstreams[(first + i) % upstreams.len()];
        match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
            Ok(stream) => return Ok(stream),
            Err(e) => {
                FAILED_CONNECTS.fetch_add(1, Ordering::Relaxed);
                // std's messages do not name the address: add it.
                last = Some(io::Error::new(e.kind(), format!("upstream {addr}: {e}")));
            }
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no upstream configured")))
}

/// When a byte last moved either way, as milliseconds since `start`: a direction whose read
/// timed out goes on waiting while the other one is busy (a short request, a long download).
struct Activity {
    start: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn touch(&self) {
        self.last_ms.store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        self.start.elapsed().saturating_sub(Duration::from_millis(self.last_ms.load(Ordering::Relaxed)))
    }
}

/// Copies `from` to `to` until `from` ends, then passes the end on with `shutdown(Write)`.
/// A read timeout is std's on Unix: kind `WouldBlock`.
fn relay(mut from: &TcpStream, mut to: &TcpStream, bytes: &AtomicU64, activity: &Activity) -> io::Result<()> {
    let mut buf = vec![0; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && activity.idle_for() < IDLE => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Err(io::Error::new(io::ErrorKind::TimedOut, format!("idle for {IDLE:?}")));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_all(&buf[..n])?;
        bytes.fetch_add(n as u64, Ordering::Relaxed);
        activity.touch();
    }
    match to.shutdown(Shutdown::Write) {
        // `to` was reset, or cut because the other direction failed: that one reports it.
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
        done => done,
    }
}

/// Relays one client: client to upstream in a scoped green thread, upstream to client in this
/// one. When a direction fails, both sockets are shut down, so the other direction ends too.
fn serve(client: TcpStream, upstreams: &[SocketAddr]) -> io::Result<()> {
    let upstream = connect_upstream(upstreams)?;
    for stream in [&client, &upstream] {
        // The write timeout ends a relay stuck on a peer that stopped reading.
        stream.set_read_timeout(Some(IDLE))?;
        stream.set_write_timeout(Some(IDLE))?;
    }
    let activity = Activity { start: Instant::now(), last_ms: AtomicU64::new(0) };
    let cut = || {
        let _ = client.shutdown(Shutdown::Both);
        let _ = upstream.shutdown(Shutdown::Both);
    };
    green::scope(|s| {
        let up = s.spawn(|| relay(&client, &upstream, &CLIENT_TO_UPSTREAM, &activity).inspect_err(|_| cut()));
        let down = relay(&upstream, &client, &UPSTREAM_TO_CLIENT, &activity).inspect_err(|_| cut());
        let up = up.join().expect("the client-to-upstream relay panicked");
        down.map_err(|e| io::Error::new(e.kind(), format!("upstream to client: {e}")))?;
        up.map_err(|e| io::Error::new(e.kind(), format!("client to upstream: {e}")))
    })
}

/// A connection's slot: its permit, and its place in the count of open connections. Both are
/// given back on drop, so also when the stop cancels the connection (cancellation unwinds).
struct Slot {
    _permit: SemaphorePermit<'static>,
}

impl Slot {
    fn new(permit: SemaphorePermit<'static>) -> Slot {
        OPEN.fetch_add(1, Ordering::Relaxed);
        Slot { _permit: permit }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        OPEN.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Takes a connection slot, then accepts, until cancelled; keeps each connection's handle for
/// the stop. As in `examples/kv.rs`, nothing between an accept and the push of its handle is a
/// cancellation point (`open` keeps them under std's `Mutex`).
fn accept_loop(listener: TcpListener, upstreams: Vec<SocketAddr>, open: Arc<server::Connections>) {
    while !green::is_cancelled() {
        let permit: SemaphorePermit<'static> = LIMIT.acquire();
        let (client, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(e) => {
                server::accept_failed(&e);
                continue;
            }
        };
        let upstreams = upstreams.clone();
        let slot = Slot::new(permit);
        let connection = green::Builder::new().name(format!("proxy {peer}")).spread().spawn(move || {
            let _slot = slot;
            if let Err(e) = serve(client, &upstreams) {
                eprintln!("{peer}: {e}");
            }
        });
        open.keep(peer, connection);
    }
}

/// An upstream: echoes each connection, and shuts down its write side once the other side has.
fn echo_server(listener: TcpListener) {
    for stream in listener.incoming().flatten() {
        green::spawn(move || -> io::Result<()> {
            io::copy(&mut &stream, &mut &stream)?;
            stream.shutdown(Shutdown::Write)
        });
    }
}

fn main() -> std::process::ExitCode {
    server::main(USAGE, PORT, |args, listener, addr| {
        // First, before any client: from now on SIGTERM and SIGINT wait here.
        let signals = Signals::new(&[Signal::Terminate, Signal::Interrupt]).map_err(|e| format!("signals: {e}"))?;
        let mut upstreams = Vec::new();
        for _ in 0..3 {
            let upstream = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("an upstream: {e}"))?;
            upstreams.push(upstream.local_addr().map_err(|e| e.to_string())?);
            green::spawn(move || echo_server(upstream));
        }
        // A port that was free a moment ago: connects there are refused.
        let down = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| e.to_string())?;
        upstreams.insert(1, down);
        let open = Arc::default();
        let acceptor = {
            let (upstreams, open) = (upstreams.clone(), Arc::clone(&open));
            green::spawn(move || accept_loop(listener, upstreams, open))
        };
        println!("proxy on {addr}, upstreams {upstreams:?} ({down} is down)");
        let demo = args.demo.then(|| green::spawn(move || demo::run(addr)));

        let signal = signals.recv().map_err(|e| format!("signals: {e}"))?;
        drop(signals); // a second Ctrl-C ends the process at once
        println!("{signal}: stopping");
        acceptor.cancel();
        let _ = acceptor.join();
        let deadline = Instant::now() + DRAIN;
        let cancelled = open.drain(deadline);
        println!(
            "relayed {} bytes up, {} down; {} failed upstream connect(s)",
            CLIENT_TO_UPSTREAM.load(Ordering::Relaxed),
            UPSTREAM_TO_CLIENT.load(Ordering::Relaxed),
            FAILED_CONNECTS.load(Ordering::Relaxed)
        );
        if let Some(demo) = demo {
            demo.join().map_err(|e| e.to_string())??;
            if cancelled != 1 || OPEN.load(Ordering::Relaxed) != 0 {
                return Err(format!(
                    "{cancelled} cancelled (expected the slow client), {} open",
                    OPEN.load(Ordering::Relaxed)
                ));
            }
            println!("demo: every byte came back in order");
        }
        Ok(())
    })
}

/// The `--demo` clients.
mod demo {
    use super::*;

    /// The byte at `offset` of client `seed`'s stream.
    fn byte(seed: u64, offset: u64) -> u8 {
        (offset.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 8) as u8
    }

    /// Writes `len` bytes in one green thread while this one reads the echo and checks each
    /// byte; the writer then shuts down its side, and the echo must end right after the last.
    fn echo_client(addr: SocketAddr, seed: u64, len: u64) -> Result<(), String> {
        let stream = TcpStream::connect(addr).map_err(|e| format!("client {seed}: {e}"))?;
        let writer = stream.try_clone().map_err(|e| e.to_string())?;
        let writer = green::spawn(move || -> io::Result<()> {
            let mut chunk = Vec::with_capacity(64 * 1024);
            for start in (0..len).step_by(64 * 1024) {
                chunk.clear();
                chunk.extend((start..len.min(start + 64 * 1024)).map(|i| byte(seed, i)));
                (&writer).write_all(&chunk)?;
            }
            writer.shutdown(Shutdown::Write)
        });
        let (mut got, mut buf) = (0, vec![0; 32 * 1024]);
        loop {
            let n = (&stream).read(&mut buf).map_err(|e| format!("client {seed}: read at byte {got}: {e}"))?;
            if n == 0 {
                break;
            }
            if let Some(k) = (0..n).find(|&k| buf[k] != byte(seed, got + k as u64)) {
                return Err(format!("client {seed}: byte {} is wrong", got + k as u64));
            }
            got += n as u64;
        }
        writer.join().map_err(|e| e.to_string())?.map_err(|e| format!("client {seed}: write: {e}"))?;
        match got == len {
            true => Ok(()),
            false => Err(format!("client {seed}: {got} bytes came back of {len}")),
        }
    }

    /// Twice [`MAX_CONNECTIONS`] checked clients at once (a few of them sending megabytes), one
    /// that goes away mid-stream, then a SIGTERM while a slow client still talks: the stop cuts
    /// it at the deadline.
    pub fn run(addr: SocketAddr) -> Result<(), String> {
        let clients: Vec<_> = (0..2 * MAX_CONNECTIONS as u64)
            .map(|seed| {
                let len = if seed % 16 == 0 { 4 << 20 } else { seed * 997 };
                green::spawn(move || echo_client(addr, seed, len))
            })
            .collect();
        // Reads a little of its echo and leaves: the proxy sees a reset and closes both sides.
        let mut gone = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        (&gone).write_all(&[1; 256 * 1024]).map_err(|e| e.to_string())?;
        gone.read_exact(&mut [0; 100]).map_err(|e| e.to_string())?;
        drop(gone);
        for client in clients {
            client.join().map_err(|e| e.to_string())??;
        }
        let started = Instant::now();
        while OPEN.load(Ordering::Relaxed) > 0 && started.elapsed() < Duration::from_secs(10) {
            green::sleep(Duration::from_millis(5));
        }
        if OPEN.load(Ordering::Relaxed) != 0 {
            return Err(format!("{} connection(s) still open after the clients left", OPEN.load(Ordering::Relaxed)));
        }
        let slow = green::spawn(move || -> io::Result<u32> {
            let mut stream = TcpStream::connect(addr)?;
            let mut round_trips = 0;
            // Until the stop cuts it: end of stream, or a reset.
            while stream.write_all(b".").is_ok() && matches!(stream.read(&mut [0; 1]), Ok(1)) {
                round_trips += 1;
                green::sleep(Duration::from_millis(50));
            }
            Ok(round_trips)
        });
        green::sleep(Duration::from_millis(200));
        // SAFETY: raise has no memory-safety preconditions; SIGTERM is listened for.
        unsafe { libc::raise(libc::SIGTERM) };
        let round_trips = slow.join().map_err(|e| e.to_string())?.map_err(|e| format!("the slow client: {e}"))?;
        println!("demo: the slow client was cut after {round_trips} round trips");
        Ok(())
    }
}
