//! The second load generator, to check the first: no `green` at all, one epoll loop on a plain
//! thread (through `libc`), every connection a small state machine. Same protocol, same
//! checks, same window as [`client_green`](super::client_green); the client has one CPU, so
//! one loop (more threads would only add switches between them).
//!
//! # States of one connection
//!
//! | state | waits for | then |
//! |---|---|---|
//! | `Connecting` | writable: the handshake is over | send request 0: `Waiting` |
//! | `Waiting` | the 64 bytes of the echo | check; request 0: `Ready`; else send the next, or `Done` past the window |
//! | `Ready` | the window (all connections ready) | send request 1: `Waiting` |
//! | `Done` | nothing | |

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use super::args::Timing;
use super::client_green::REPLY_TIMEOUT;
use super::message::{self, MESSAGE, Message};
use super::run::{Load, Sampler};
use crate::CONNECT_CONCURRENCY;

/// Events taken from the kernel per `epoll_wait`.
const EVENTS: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Connecting,
    Waiting,
    Ready,
    Done,
}

struct Conn {
    stream: TcpStream,
    id: u32,
    seq: u64,
    request: Message,
    reply: Message,
    /// Bytes of the echo read so far.
    got: usize,
    sent: Instant,
    state: State,
}

impl Conn {
    /// Sends request `seq`; in ping-pong the send buffer is empty, so 64 bytes always fit.
    fn send(&mut self, seq: u64) -> io::Result<()> {
        self.seq = seq;
        self.request = message::request(self.id, seq);
        self.got = 0;
        self.sent = Instant::now();
        match self.stream.write(&self.request) {
            Ok(MESSAGE) => {
                self.state = State::Waiting;
                Ok(())
            }
            Ok(n) => Err(self.error(&format!("send: only {n} of {MESSAGE} bytes went out"))),
            Err(e) => Err(self.error(&format!("send: {e}"))),
        }
    }

    /// Reads what there is of the echo; true once all of it is in and checked.
    fn receive(&mut self) -> io::Result<bool> {
        while self.got < MESSAGE {
            match self.stream.read(&mut self.reply[self.got..]) {
                Ok(0) => return Err(self.error("echo: the server closed the connection")),
                Ok(n) => self.got += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(self.error(&format!("echo: {e}"))),
            }
        }
        message::check(self.id, self.seq, &self.request, &self.reply)?;
        Ok(true)
    }

    fn error(&self, what: &str) -> io::Error {
        io::Error::other(format!("connection {}, message {}: {what}", self.id, self.seq))
    }
}

pub fn drive(addr: SocketAddr, conns: usize, timing: &Timing, sampler: Sampler) -> io::Result<Load> {
    let epoll = Epoll::new()?;
    let mut all: Vec<Conn> = Vec::with_capacity(conns);
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; EVENTS];

    // Connect, at most CONNECT_CONCURRENCY at a time, each with its first echo.
    let began = Instant::now();
    let (mut in_flight, mut ready) = (0, 0);
    while ready < conns {
        while in_flight < CONNECT_CONCURRENCY && all.len() < conns {
            let id = all.len() as u32;
            let stream =
                connect(addr).map_err(|e| io::Error::new(e.kind(), format!("connection {id}: connect: {e}")))?;
            epoll.add(stream.as_raw_fd(), libc::EPOLLOUT as u32, all.len() as u64)?;
            let now = Instant::now();
            let request = message::request(id, 0);
            all.push(Conn {
                stream,
                id,
                seq: 0,
                request,
                reply: [0; MESSAGE],
                got: 0,
                sent: now,
                state: State::Connecting,
            });
            in_flight += 1;
        }
        for token in epoll.wait(&mut events, None)? {
            let conn = &mut all[token];
            match conn.state {
                State::Connecting => {
                    if let Some(e) = conn.stream.take_error()? {
                        return Err(conn.error(&format!("connect: {e}")));
                    }
                    epoll.modify(conn.stream.as_raw_fd(), libc::EPOLLIN as u32, token as u64)?;
                    conn.send(0)?;
                }
                State::Waiting => {
                    if conn.receive()? {
                        conn.state = State::Ready;
                        ready += 1;
                        in_flight -= 1;
                    }
                }
                State::Ready | State::Done => {}
            }
        }
    }
    let connect_all = began.elapsed();

    // Ping-pong through the window; read the sampler when it opens and when it closes (no
    // connection is done before then: each one's last send starts at the end or later).
    let start = Instant::now() + timing.warmup;
    let end = start + timing.window;
    for conn in &mut all {
        conn.send(1)?;
    }
    let (mut first, mut last) = (None, None);
    let mut latencies = Vec::new();
    let mut done = 0;
    loop {
        let now = Instant::now();
        if first.is_none() && now >= start {
            first = Some(sampler.take()?);
        }
        if last.is_none() && now >= end {
            last = Some(sampler.take()?);
        }
        if done == conns && last.is_some() {
            break;
        }
        let next_reading = if first.is_none() { Some(start) } else { last.is_none().then_some(end) };
        let timeout = next_reading.map(|at| at.saturating_duration_since(now));
        for token in epoll.wait(&mut events, timeout)? {
            let conn = &mut all[token];
            if conn.state != State::Waiting || !conn.receive()? {
                continue;
            }
            let now = Instant::now();
            if now >= start && now < end {
                latencies.push((now - conn.sent).as_nanos() as u64);
            }
            if now < end {
                conn.send(conn.seq + 1)?;
            } else {
                conn.state = State::Done;
                done += 1;
            }
        }
    }
    let (Some(first), Some(last)) = (first, last) else { unreachable!("the loop ends after the last reading") };
    Ok(Load { connect_all, latencies, first, last })
}

/// A non-blocking connect in progress to an IPv4 `addr`.
fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let SocketAddr::V4(v4) = addr else {
        return Err(io::Error::new(io::ErrorKind::Unsupported, "the std client speaks IPv4 only"));
    };
    // SAFETY: socket has no memory preconditions; the result is checked.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new socket that nothing else owns.
    let stream = TcpStream::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: v4.port().to_be(),
        sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(v4.ip().octets()) },
        sin_zero: [0; 8],
    };
    // SAFETY: `sin` is a valid sockaddr_in of the length passed; `fd` is an open socket.
    let rc = unsafe { libc::connect(fd, (&raw const sin).cast(), size_of::<libc::sockaddr_in>() as libc::socklen_t) };
    if rc != 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINPROGRESS) {
            return Err(e);
        }
    }
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// An epoll instance, level-triggered, closed on drop.
struct Epoll(OwnedFd);

impl Epoll {
    fn new() -> io::Result<Epoll> {
        // SAFETY: epoll_create1 has no memory preconditions; the result is checked.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a new epoll fd that nothing else owns.
        Ok(Epoll(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
        let mut event = libc::epoll_event { events, u64: token };
        // SAFETY: `event` is a valid epoll_event; both fds are open.
        if unsafe { libc::epoll_ctl(self.0.as_raw_fd(), op, fd, &mut event) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn add(&self, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, events, token)
    }

    fn modify(&self, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, events, token)
    }

    /// Waits for events, at most `timeout` (rounded up to whole milliseconds); the tokens of the
    /// ready fds. Nothing ready for [`REPLY_TIMEOUT`] is an error: the server is stuck.
    fn wait(&self, events: &mut [libc::epoll_event], timeout: Option<Duration>) -> io::Result<Vec<usize>> {
        let limit = timeout.unwrap_or(REPLY_TIMEOUT).min(REPLY_TIMEOUT);
        let ms = limit.as_micros().div_ceil(1000) as libc::c_int;
        loop {
            // SAFETY: `events` is valid for writes of `events.len()` epoll_events.
            let n =
                unsafe { libc::epoll_wait(self.0.as_raw_fd(), events.as_mut_ptr(), events.len() as libc::c_int, ms) };
            match n {
                0 if limit < REPLY_TIMEOUT => return Ok(Vec::new()),
                0 => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no echo on any connection within {} s", REPLY_TIMEOUT.as_secs()),
                    ));
                }
                n if n > 0 => return Ok(events[..n as usize].iter().map(|e| e.u64 as usize).collect()),
                _ => {
                    let e = io::Error::last_os_error();
                    if e.kind() != io::ErrorKind::Interrupted {
                        return Err(e);
                    }
                }
            }
        }
    }
}
