//! Networking with blocking-looking calls, mirroring [`std::net`]: [`TcpListener`],
//! [`TcpStream`], [`UdpSocket`], and in [`unix`] the Unix domain sockets.
//!
//! A call that would block parks the green thread, and its worker runs others until the
//! socket is ready. On a plain OS thread (outside any green thread) the same types block that
//! thread the way std's do.
//!
//! ```
//! use std::io::{Read, Write};
//! use green::net::{TcpListener, TcpStream};
//!
//! green::run(|| {
//!     let listener = TcpListener::bind("127.0.0.1:0")?;
//!     let addr = listener.local_addr()?;
//!     let server = green::spawn(move || -> std::io::Result<()> {
//!         let (mut stream, _) = listener.accept()?;
//!         let mut buf = [0; 5];
//!         stream.read_exact(&mut buf)?;
//!         stream.write_all(&buf)
//!     });
//!     let mut client = TcpStream::connect(addr)?;
//!     client.write_all(b"hello")?;
//!     let mut echo = [0; 5];
//!     client.read_exact(&mut echo)?;
//!     assert_eq!(&echo, b"hello");
//!     server.join().unwrap()
//! })?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # How a call works
//!
//! Every socket is non-blocking underneath. A call ticks the green thread's budget (so a
//! socket that is always ready cannot starve the worker), tries the syscall, and on
//! `WouldBlock` parks until its worker's poller reports the socket ready, then tries again.
//! Each park is a cancellation point. Every read, write, send and receive passes
//! `MSG_DONTWAIT`, so it never blocks even if another handle of the same socket was made
//! blocking (see `into_std`). `accept` is the exception: no flag makes one `accept4` call
//! non-blocking, so a listener made blocking through another handle blocks the worker in
//! `accept`.
//!
//! # Host names
//!
//! An address given as numbers (`"127.0.0.1:80"`, a [`SocketAddr`]) is used as it is. A host
//! name (`"localhost:80"`, `("example.com", 443)`) needs a lookup (`getaddrinfo`), which may
//! wait seconds for a DNS server: from a green thread it runs on the runtime's
//! [blocking pool](crate::spawn_blocking) while the green thread parks, so a slow lookup never
//! stalls the worker. That wait is a cancellation point. On a plain OS thread the lookup is
//! std's. A `ToSocketAddrs` type from outside std is called in place, as std calls it.
//! To look a name up without connecting (to give each address its own connect timeout, say),
//! call [`lookup_host`], not `to_socket_addrs`, which would run the lookup on the worker.
//!
//! # Differences from std, on purpose
//!
//! - **Timeouts**: [`TcpStream::set_read_timeout`] and friends make a call that waited that
//!   long return the error std gives on Unix: kind [`WouldBlock`](std::io::ErrorKind::WouldBlock)
//!   (`EAGAIN`), not `TimedOut`. [`TcpStream::connect_timeout`] gives `TimedOut`, like std.
//!   Green keeps its own copy of them, shared only by the handles green's `try_clone` makes
//!   (see Conversions). Inside [`crate::timeout`], a call that reaches that deadline first
//!   gives the same kinds, with a [`crate::Elapsed`] inside the error instead of the OS code.
//! - **Listen backlog**: listeners are bound with a backlog of [`LISTEN_BACKLOG`] instead of
//!   std's 128: under a burst of connections, a full queue drops SYNs, and each dropped one
//!   costs the client a one-second retransmit.
//! - **Accepted sockets** come back non-blocking and close-on-exec from one `accept4` call.
//! - **Non-blocking mode** is green's own flag, with std's meaning: after
//!   `set_nonblocking(true)`, a call that would wait returns `WouldBlock` at once instead of
//!   parking. It is shared by the clones `try_clone` makes, as std's (the open file's) is. The
//!   fd itself stays non-blocking whatever the flag says.
//! - **Conversions** (below): the socket becomes non-blocking underneath; `into_std` makes it
//!   blocking again.
//! - **While unwinding**, or inside [`crate::on_worker_stack`], a call that would block makes
//!   one non-blocking attempt and returns a `WouldBlock` error that says why, instead of
//!   parking (see [while unwinding](crate::sync#while-unwinding)).
//!
//! # Conversions
//!
//! `From<std::net::TcpStream>` (and the same for the other types), `From<OwnedFd>` and
//! `FromRawFd` take a socket over: they make it non-blocking underneath, and its calls park.
//! Std's non-blocking mode is not carried over (std code often sets it before it hands a
//! socket to a runtime): call `set_nonblocking(true)` on the green socket for that. Its
//! timeouts are, read once at the conversion. After it, green keeps them for this handle and
//! the clones its `try_clone` makes; a timeout set through another std handle of the same
//! socket converted on its own (a std clone, a dup'd fd) is not seen here, since reading the
//! kernel's copy would cost a system call per call. `into_std` hands the socket back
//! blocking, as std made it, unless `set_nonblocking(true)` is in effect: then it stays
//! non-blocking.
//! `IntoRawFd` and `From<TcpStream> for OwnedFd` hand the fd over as it is, non-blocking.
//!
//! ```
//! use std::os::fd::OwnedFd;
//! use std::time::Duration;
//!
//! let std_socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
//! std_socket.set_read_timeout(Some(Duration::from_secs(3)))?;
//! let socket = green::net::UdpSocket::from(OwnedFd::from(std_socket));
//! assert_eq!(socket.read_timeout()?, Some(Duration::from_secs(3)));
//! socket.set_nonblocking(true)?;
//! let back = socket.into_std()?; // still non-blocking, as std's would be in that mode
//! assert_eq!(back.recv(&mut [0; 8]).unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
//! # Ok::<(), std::io::Error>(())
//! ```

mod sys;

pub(crate) use self::sys::describe_fd;
mod tcp;
mod udp;
pub mod unix;

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::reactor::Source;

pub use self::tcp::{Incoming, TcpListener, TcpStream};
pub use self::udp::UdpSocket;
/// std's address types, here too, so that `use std::net::{..}` becomes `use green::net::{..}`.
pub use std::net::{
    AddrParseError, IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, SocketAddrV4, SocketAddrV6, ToSocketAddrs,
};

/// The backlog listeners are created with, as `listen(2)` takes it (the kernel caps it at
/// `net.core.somaxconn`, 4096 by default since Linux 5.4). Std's 128 overflows under a burst
/// of connections: the kernel then drops SYNs, and each costs its client a 1 s retransmit.
///
/// ```
/// // A burst of connections before anyone accepts: all of them get through at once.
/// let listener = green::net::TcpListener::bind("127.0.0.1:0")?;
/// let addr = listener.local_addr()?;
/// let clients: Vec<_> = (0..200).map(|_| std::net::TcpStream::connect(addr)).collect::<Result<_, _>>()?;
/// for _ in &clients {
///     listener.accept()?; // outside a runtime: blocks like std
/// }
/// assert!(green::net::LISTEN_BACKLOG >= 1024);
/// # Ok::<(), std::io::Error>(())
/// ```
pub const LISTEN_BACKLOG: i32 = 4096;

/// Resolves `addr` to socket addresses. Addresses given as numbers take no time; host names
/// are looked up on the runtime's blocking pool when called from a green thread, so a slow DNS
/// lookup never stalls a worker.
fn resolve<A: ToSocketAddrs>(addr: A) -> io::Result<Vec<SocketAddr>> {
    crate::blocking::resolve(addr)
}

/// Looks up the socket addresses of `addr` (`"host:port"`, `("host", port)`, or an address),
/// like [`addr.to_socket_addrs()`](ToSocketAddrs::to_socket_addrs), but from a green thread a
/// host name is looked up on the runtime's blocking pool while the green thread parks, as
/// `TcpStream::connect` does it (see [Host names](self#host-names)). Calling
/// `to_socket_addrs` yourself on a green thread runs `getaddrinfo` on the worker, which then
/// runs nothing else until the DNS server answers.
///
/// For what `connect` does not do with a name: a connect timeout per address (std's
/// [`TcpStream::connect_timeout`] takes one [`SocketAddr`]), addresses looked up once and
/// reused, or a choice among them. The wait for a lookup is a cancellation point, and a
/// [`crate::timeout`] bounds it. On a plain OS thread this is std's lookup.
///
/// # Errors
///
/// Std's kinds: a name that does not resolve is the error `getaddrinfo` gave, with the name
/// in its message; a string without a port number is `InvalidInput`, and says so. A green
/// thread that cannot park ([while unwinding](crate::sync#while-unwinding), or inside
/// [`on_worker_stack`](crate::on_worker_stack)) gets `WouldBlock` for a host name, and an
/// address still passes through.
///
/// ```
/// use std::time::Duration;
/// use green::net::{TcpListener, TcpStream};
///
/// green::run(|| {
///     let listener = TcpListener::bind("127.0.0.1:0")?;
///     let port = listener.local_addr()?.port();
///     // Each address of the name in turn, each given one second.
///     let mut last = None;
///     for addr in green::net::lookup_host(("localhost", port))? {
///         match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
///             Ok(stream) => return Ok(stream.peer_addr()?),
///             Err(e) => last = Some(e),
///         }
///     }
///     Err(last.unwrap_or_else(|| std::io::ErrorKind::InvalidInput.into()))
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn lookup_host<A: ToSocketAddrs>(addr: A) -> io::Result<std::vec::IntoIter<SocketAddr>> {
    resolve(addr).map(Vec::into_iter)
}

/// Runs `f` on each address of `addr` until one succeeds, like std's `each_addr`.
fn each_addr<A: ToSocketAddrs, T>(addr: A, mut f: impl FnMut(&SocketAddr) -> io::Result<T>) -> io::Result<T> {
    let mut last = None;
    for addr in resolve(addr)? {
        match f(&addr) {
            Ok(t) => return Ok(t),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "could not resolve to any addresses")))
}

/// The error of a read or write that waited its whole timeout: what std returns on Unix
/// (`EAGAIN`, kind `WouldBlock`).
fn timeout_error() -> io::Error {
    io::Error::from_raw_os_error(libc::EAGAIN)
}

/// The error of a connect that waited its whole timeout, as std's `connect_timeout` gives it.
fn connect_timeout_error() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "connection timed out")
}

/// `received`, unless it is the `WouldBlock` of a receive or an `accept` from a socket shut
/// down for reading: then `ended()`, what std's blocking call gives (a receive 0 once the
/// queue is empty, an `accept` `EINVAL`). The kernel refuses the non-blocking attempt with
/// `EAGAIN` from then on while it reports the socket readable: a green thread would wait out
/// its timeout, or for good, and a plain thread would spin a core in `poll(2)`. In
/// non-blocking mode the `WouldBlock` stands, as std's non-blocking call gives it.
///
/// A shutdown through a green handle (`UnixDatagram::shutdown`, on it or a clone) is known
/// from `shared` without a system call. One through a handle green does not see, its raw fd
/// (`libc::shutdown`, socket2's `SockRef::shutdown`, a common way to stop a thread blocked on
/// a socket) or another handle converted from std on its own, is asked of the kernel with a
/// `poll(2)`, so only where it may be behind the refusal: after a wait that ended in another
/// refusal (`tries` counts this call's refusals), or once an event has ended the source (the
/// shutdown's event may have come before this call, with no other to follow; an error ends it
/// too, so a UDP socket once refused by its peer asks at each refusal). A receive that meets
/// an empty queue at its first try, as a busy server's does, costs nothing more.
fn unless_shut_down<T>(
    received: io::Result<T>,
    source: &Source,
    fd: RawFd,
    shared: &Shared,
    tries: &mut u32,
    ended: impl FnOnce() -> io::Result<T>,
) -> io::Result<T> {
    let Err(e) = &received else { return received };
    if e.kind() != io::ErrorKind::WouldBlock || shared.nonblocking() {
        return received;
    }
    *tries += 1;
    let shut = shared.read_shut() || ((*tries > 1 || source.ended()) && sys::shut_for_reading(fd));
    if shut { ended() } else { received }
}

/// Flags of every `send` and `sendto`: never block, never raise `SIGPIPE` (a closed peer is an
/// `EPIPE` error instead, as std has it).
const SEND_FLAGS: libc::c_int = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;

/// What the handles of one socket made by green's `try_clone` share: its read and write
/// timeouts and its non-blocking flag (in std both are the socket's, so shared by every
/// clone), and for a TCP stream whether it was shut down for reading. Handles converted from
/// std separately (two std clones, or a dup'd fd) share nothing here: each has its own. The
/// timeouts are also set in the kernel (`SO_RCVTIMEO`, `SO_SNDTIMEO`), where they do not
/// affect non-blocking calls but carry over to `into_std`.
///
/// Allocated the first time a handle needs them: a timeout set, non-blocking turned on, a
/// clone made, a shutdown for reading, or a std socket taken over with a timeout. Most
/// sockets (a server's connections, say) never do, and so cost neither the allocation nor,
/// at each read, the cache line.
#[derive(Debug, Default)]
struct Shared(OnceLock<Arc<SharedValues>>);

/// The values behind [`Shared`]: atomics, so that any handle on any thread reads and sets
/// them without a lock.
#[derive(Debug, Default)]
struct SharedValues {
    /// Nanoseconds; 0 for none.
    read: AtomicU64,
    /// Nanoseconds; 0 for none.
    write: AtomicU64,
    /// TCP streams and Unix datagram sockets, shared here because clones share it too: set
    /// before the socket is shut down for reading (see `sys::StreamReads::recv` and
    /// `unless_shut_down`).
    read_shut: AtomicBool,
    /// `set_nonblocking(true)` is in effect: a call that would wait returns `WouldBlock` at
    /// once instead. The fd is non-blocking underneath either way.
    nonblocking: AtomicBool,
}

impl Shared {
    fn from_std(read: io::Result<Option<Duration>>, write: io::Result<Option<Duration>>) -> Shared {
        let t = Shared::default();
        t.set_read(read.ok().flatten());
        t.set_write(write.ok().flatten());
        t
    }

    /// The values, allocated now if no handle needed them before.
    fn values(&self) -> &SharedValues {
        self.0.get_or_init(Arc::default)
    }

    /// The timeouts of a clone: the same values.
    fn share(&self) -> Shared {
        Shared(OnceLock::from(Arc::clone(self.0.get_or_init(Arc::default))))
    }

    fn store(slot: &AtomicU64, value: Option<Duration>) {
        let nanos = value.map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1));
        slot.store(nanos, Ordering::Relaxed);
    }

    fn load(slot: &AtomicU64) -> Option<Duration> {
        match slot.load(Ordering::Relaxed) {
            0 => None,
            n => Some(Duration::from_nanos(n)),
        }
    }

    /// How long a read may wait: what a call passes to `Source::io`. Zero when non-blocking,
    /// so that the call makes its one attempt and returns `EAGAIN`, as std's would.
    fn read_limit(&self) -> Option<Duration> {
        let values = self.0.get()?;
        if values.nonblocking.load(Ordering::Relaxed) {
            return Some(Duration::ZERO);
        }
        Shared::load(&values.read)
    }

    /// How long a write may wait; see [`read_limit`](Shared::read_limit).
    fn write_limit(&self) -> Option<Duration> {
        let values = self.0.get()?;
        if values.nonblocking.load(Ordering::Relaxed) {
            return Some(Duration::ZERO);
        }
        Shared::load(&values.write)
    }

    fn set_nonblocking(&self, on: bool) {
        // No values yet means no clone and the flag off: nothing to clear.
        if on || self.0.get().is_some() {
            self.values().nonblocking.store(on, Ordering::Relaxed);
        }
    }

    fn nonblocking(&self) -> bool {
        self.0.get().is_some_and(|t| t.nonblocking.load(Ordering::Relaxed))
    }

    /// The read timeout, as `read_timeout` reports it.
    fn read(&self) -> Option<Duration> {
        self.0.get().and_then(|t| Shared::load(&t.read))
    }

    /// The write timeout, as `write_timeout` reports it.
    fn write(&self) -> Option<Duration> {
        self.0.get().and_then(|t| Shared::load(&t.write))
    }

    fn set_read(&self, value: Option<Duration>) {
        // No values yet means no clone and no timeout: nothing to clear.
        if value.is_some() || self.0.get().is_some() {
            Shared::store(&self.values().read, value);
        }
    }

    fn set_write(&self, value: Option<Duration>) {
        if value.is_some() || self.0.get().is_some() {
            Shared::store(&self.values().write, value);
        }
    }

    /// To be called before the socket is shut down for reading.
    fn shutting_read(&self) {
        self.values().read_shut.store(true, Ordering::SeqCst);
    }

    /// True once some handle said it shuts the socket down for reading. A read that saw the
    /// shutdown's effect sees this too: the flag was set before the shutdown call.
    fn read_shut(&self) -> bool {
        self.0.get().is_some_and(|t| t.read_shut.load(Ordering::SeqCst))
    }
}

/// Makes a socket handed in from outside non-blocking. `From` cannot fail; `fcntl` on an
/// open socket fails only for a bad fd, which an owned socket is not.
fn make_nonblocking(result: io::Result<()>) {
    if let Err(e) = result {
        panic!(
            "green: could not make a socket handed in with From non-blocking: {e}; was its fd closed by other code?"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Shared;

    #[test]
    fn shared_values_are_allocated_only_when_something_is_set() {
        let shared = Shared::default();
        shared.set_read(None);
        shared.set_write(None);
        shared.set_nonblocking(false);
        assert!(shared.0.get().is_none(), "nothing set, nothing allocated");
        assert_eq!((shared.read_limit(), shared.write_limit()), (None, None));
        shared.set_nonblocking(true);
        let clone = shared.share();
        assert_eq!((clone.read_limit(), clone.write_limit()), (Some(Duration::ZERO), Some(Duration::ZERO)));
        clone.set_read(Some(Duration::from_secs(1)));
        clone.set_nonblocking(false);
        assert_eq!((shared.read_limit(), shared.write_limit()), (Some(Duration::from_secs(1)), None));
        assert!(!shared.nonblocking());
    }

    #[test]
    fn socket_types_are_send_and_sync() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<super::TcpListener>();
        send_sync::<super::TcpStream>();
        send_sync::<super::UdpSocket>();
        send_sync::<super::unix::UnixListener>();
        send_sync::<super::unix::UnixStream>();
        send_sync::<super::unix::UnixDatagram>();
    }
}
