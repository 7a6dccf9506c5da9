//! The load generator on `green`: one worker, one green thread per connection, each a plain
//! blocking-style loop of `write_all` and `read`s until the echo is in.
//!
//! # Protocol
//!
//! 1. The controller (the first green thread) spawns the connections, keeping at most
//!    [`CONNECT_CONCURRENCY`] between their connect and their first echo: it parks while that
//!    many are in flight, and each connection unparks it when its first echo is checked.
//! 2. Each connection connects, echoes request 0, counts itself ready (or failed), unparks the
//!    controller, and parks until the window is known.
//! 3. Once all are ready, the controller publishes the window (or, if any failed, that there is
//!    none) and unparks every connection.
//! 4. Each connection ping-pongs until its next send would start after the window closes; it
//!    keeps the round-trip times of the echoes that completed inside the window.
//! 5. The controller sleeps until the window opens and takes the first reading of the sampler,
//!    then sleeps until it closes and takes the last: no connection has closed by then, since
//!    each one's last send starts at the end of the window or later.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use green::net::TcpStream;

use super::args::Timing;
use super::message;
use super::run::{Load, Sampler, Window};
use crate::CONNECT_CONCURRENCY;

/// How long a connection waits for an echo before it calls the server stuck.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(20);

/// What the connections and the controller share.
struct Shared {
    /// Connections between their connect and the end of their first echo.
    in_flight: AtomicUsize,
    /// Connections whose first echo came back right.
    ready: AtomicUsize,
    /// Connections that failed before their first echo.
    failed: AtomicUsize,
    /// The window, once every connection is ready; `None` if some failed: stop at once.
    window: OnceLock<Option<Window>>,
    /// The round-trip times of the echoes that completed inside the window, in nanoseconds.
    /// One list for all: a list per connection would put one more cold cache line and page
    /// under each message (with 1,000 connections, about 0.4 µs per message, 5% of the client).
    latencies: green::sync::Mutex<Vec<u64>>,
}

pub fn drive(addr: SocketAddr, conns: usize, timing: &Timing, sampler: Sampler) -> io::Result<Load> {
    // The calling thread is pinned to the client CPU already: the worker inherits it.
    let rt = green::Runtime::builder().workers(1).thread_name("versus-client").build()?;
    rt.block_on(|| control(addr, conns, timing, sampler))
}

fn control(addr: SocketAddr, conns: usize, timing: &Timing, sampler: Sampler) -> io::Result<Load> {
    let shared = Arc::new(Shared {
        in_flight: AtomicUsize::new(0),
        ready: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
        window: OnceLock::new(),
        latencies: green::sync::Mutex::new(Vec::new()),
    });
    let me = green::current();
    let began = Instant::now();
    let mut handles = Vec::with_capacity(conns);
    for id in 0..conns {
        while shared.in_flight.load(Ordering::Acquire) >= CONNECT_CONCURRENCY {
            green::park();
        }
        shared.in_flight.fetch_add(1, Ordering::AcqRel);
        let (shared, me) = (shared.clone(), me.clone());
        handles.push(green::spawn(move || connection(id as u32, addr, &shared, &me)));
    }
    while shared.ready.load(Ordering::Acquire) + shared.failed.load(Ordering::Acquire) < conns {
        green::park();
    }
    let connect_all = began.elapsed();

    let window = if shared.failed.load(Ordering::Acquire) == 0 {
        let start = Instant::now() + timing.warmup;
        Some(Window { start, end: start + timing.window })
    } else {
        None
    };
    let _ = shared.window.set(window);
    for handle in &handles {
        handle.thread().unpark();
    }
    let readings = window.map(|window| {
        green::sleep_until(window.start);
        let first = sampler.take()?;
        green::sleep_until(window.end);
        io::Result::Ok((first, sampler.take()?))
    });

    let mut first_error = None;
    for handle in handles {
        match handle.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(e) => {
                first_error.get_or_insert(io::Error::other(format!("a client connection panicked: {e:?}")));
            }
        }
    }
    let latencies = std::mem::take(&mut *shared.latencies.lock().unwrap());
    match (first_error, readings) {
        (Some(e), _) => Err(e),
        (None, Some(Ok((first, last)))) => Ok(Load { connect_all, latencies, first, last }),
        (None, Some(Err(e))) => Err(io::Error::new(e.kind(), format!("sampling the server: {e}"))),
        (None, None) => Err(io::Error::other("no connection failed, yet there was no window")),
    }
}

/// One connection: connect, first echo, wait for the window, ping-pong through it.
fn connection(id: u32, addr: SocketAddr, shared: &Shared, controller: &green::GreenThread) -> io::Result<()> {
    let first = open(id, addr);
    shared.in_flight.fetch_sub(1, Ordering::AcqRel);
    match first {
        Ok(_) => shared.ready.fetch_add(1, Ordering::AcqRel),
        Err(_) => shared.failed.fetch_add(1, Ordering::AcqRel),
    };
    controller.unpark();
    let mut stream = first?;

    let Window { start, end } = loop {
        match shared.window.get() {
            Some(Some(window)) => break *window,
            Some(None) => return Ok(()),
            None => green::park(),
        }
    };
    // Each request goes out as the last echo is checked: one look at the clock per message.
    let mut sent = Instant::now();
    for seq in 1.. {
        if sent >= end {
            break;
        }
        ping(&mut stream, id, seq)?;
        let done = Instant::now();
        if done >= start && done < end {
            shared.latencies.lock().unwrap().push((done - sent).as_nanos() as u64);
        }
        sent = done;
    }
    Ok(())
}

fn open(id: u32, addr: SocketAddr) -> io::Result<TcpStream> {
    let mut stream =
        TcpStream::connect(addr).map_err(|e| io::Error::new(e.kind(), format!("connection {id}: connect: {e}")))?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(REPLY_TIMEOUT))?;
    ping(&mut stream, id, 0)?;
    Ok(stream)
}

/// Sends request `seq` and checks its echo.
fn ping(stream: &mut TcpStream, id: u32, seq: u64) -> io::Result<()> {
    let request = message::request(id, seq);
    stream.write_all(&request).map_err(|e| annotate(e, id, seq, "send"))?;
    // Read into room for more than the echo: a read that comes back short tells the socket
    // its queue is drained (see `StreamReads`), which a read of exactly 64 bytes learns only
    // through `recvmsg`'s `TCP_INQ`, a little dearer than `recv`.
    let mut room = [0u8; 4 * message::MESSAGE];
    let mut got = 0;
    while got < message::MESSAGE {
        match stream.read(&mut room[got..]).map_err(|e| annotate(e, id, seq, "echo"))? {
            0 => {
                let e = io::Error::from(io::ErrorKind::UnexpectedEof);
                return Err(annotate(e, id, seq, "echo"));
            }
            n => got += n,
        }
    }
    if got > message::MESSAGE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("connection {id}, message {seq}: {got} bytes came back for a {}-byte request", message::MESSAGE),
        ));
    }
    let reply: &message::Message = room[..message::MESSAGE].try_into().expect("64 bytes");
    message::check(id, seq, &request, reply)
}

fn annotate(e: io::Error, id: u32, seq: u64, what: &str) -> io::Error {
    let detail = match e.kind() {
        io::ErrorKind::UnexpectedEof => "the server closed the connection".to_owned(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            format!("no echo within {} s", REPLY_TIMEOUT.as_secs())
        }
        _ => e.to_string(),
    };
    io::Error::new(e.kind(), format!("connection {id}, message {seq}: {what}: {detail}"))
}
