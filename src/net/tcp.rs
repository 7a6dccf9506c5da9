//! TCP: [`TcpListener`] and [`TcpStream`], mirroring `std::net`.
//!
//! Each type is the std socket (non-blocking underneath), its reactor [`Source`] (declared
//! first, so it is dropped, and the fd deleted from the poller, before the socket closes),
//! and the state its clones share ([`Shared`]).

use std::fmt;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::time::Duration;

use super::{LISTEN_BACKLOG, SEND_FLAGS, Shared, connect_timeout_error, each_addr, sys, timeout_error};
use crate::reactor::{Direction, Source};

/// A TCP socket server, listening for connections, like [`std::net::TcpListener`].
///
/// [`accept`](TcpListener::accept) parks the green thread until a connection comes in.
/// Several green threads may accept on one listener (or on clones of it); each connection goes
/// to one of them.
///
/// Accept loops on several workers do not stand in for each other, though. The listener's
/// readiness is watched by the worker whose green thread first waited on it, and while that
/// worker is stuck (a blocking call, a loop without ticks) the acceptors on the others are not
/// woken either: with worker 0 blocked for 2 s, an idle worker 1 accepted nothing until it
/// was free again. Listeners bound per worker with
/// [`bind_reuse_port`](TcpListener::bind_reuse_port) do not depend on each other.
///
/// One accept loop keeps its connections on its own worker, mostly. A handler it spawns may
/// be taken by an idle worker only until it starts, and the accept loop's worker usually
/// starts it first: the loop parks in its next `accept` at once, while an idle peer takes some
/// tens of µs to wake. Green threads never move once started, so a burst of connections that
/// then stay busy (a proxy, bulk transfers) runs on one worker and one core. Measured with a
/// proxy copying 100 connections × 10 MiB each way on 2 workers: 1.85 s of CPU on the accept
/// loop's worker, 0.27 s on the other. To spread connections, spawn the handlers with
/// [`Builder::spread`](crate::Builder::spread), which starts each on the next worker in turn
/// (1.10 s and 1.10 s, 1.17 s and 1.06 s in two runs of the same test), or bind one listener
/// per worker with [`bind_reuse_port`](TcpListener::bind_reuse_port), each with its own
/// accept loop: the kernel spreads connections over them (0.99 s and 1.40 s).
///
/// ```
/// use green::net::{TcpListener, TcpStream};
///
/// green::run(|| {
///     let listener = TcpListener::bind("127.0.0.1:0")?;
///     let addr = listener.local_addr()?;
///     let client = green::spawn(move || TcpStream::connect(addr).map(drop));
///     let (_stream, peer) = listener.accept()?;
///     assert!(peer.ip().is_loopback());
///     client.join().unwrap()
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct TcpListener {
    source: Source,
    inner: std::net::TcpListener,
    /// Shared by clones: the non-blocking flag.
    shared: Shared,
}

impl TcpListener {
    /// Creates a listener bound to `addr`, like [`std::net::TcpListener::bind`] (with
    /// `SO_REUSEADDR`, as std sets it), but with a backlog of [`LISTEN_BACKLOG`]. Port 0 asks
    /// the OS for a free port; see [`local_addr`](TcpListener::local_addr).
    ///
    /// If `addr` yields several addresses, each is tried in turn until one binds.
    ///
    /// ```
    /// let listener = green::net::TcpListener::bind("127.0.0.1:0")?;
    /// assert_ne!(listener.local_addr()?.port(), 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        each_addr(addr, |a| TcpListener::bind_one(a, false))
    }

    /// Like [`bind`](TcpListener::bind), with `SO_REUSEPORT` set as well: several listeners
    /// (in this process or others) can bind the same address and port, and the kernel spreads
    /// incoming connections over them. One listener per worker, each with its own accept loop
    /// (placed with [`crate::Builder::worker`]), spreads the accepting itself.
    ///
    /// ```
    /// use green::net::TcpListener;
    ///
    /// let first = TcpListener::bind_reuse_port("127.0.0.1:0")?;
    /// let second = TcpListener::bind_reuse_port(first.local_addr()?)?;
    /// assert_eq!(first.local_addr()?, second.local_addr()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// A server with an accept loop on every worker:
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use green::net::{TcpListener, TcpStream};
    ///
    /// green::run(|| {
    ///     let first = TcpListener::bind_reuse_port("127.0.0.1:0")?;
    ///     let addr = first.local_addr()?;
    ///     let mut listeners = vec![first];
    ///     for _ in 1..green::Handle::current().workers() {
    ///         listeners.push(TcpListener::bind_reuse_port(addr)?);
    ///     }
    ///     for (worker, listener) in listeners.into_iter().enumerate() {
    ///         green::Builder::new().worker(worker).spawn(move || {
    ///             for stream in listener.incoming() {
    ///                 let mut stream = stream?;
    ///                 // Starts on this worker, unless an idle one takes it first.
    ///                 green::spawn(move || std::io::copy(&mut &stream, &mut &stream));
    ///             }
    ///             Ok::<(), std::io::Error>(())
    ///         })?;
    ///     }
    ///     for _ in 0..4 {
    ///         let mut client = TcpStream::connect(addr)?;
    ///         client.write_all(b"hi")?;
    ///         let mut echo = [0; 2];
    ///         client.read_exact(&mut echo)?;
    ///         assert_eq!(&echo, b"hi");
    ///     }
    ///     Ok::<(), std::io::Error>(()) // returning ends the runtime, and the accept loops
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind_reuse_port<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        each_addr(addr, |a| TcpListener::bind_one(a, true))
    }

    fn bind_one(addr: &SocketAddr, reuse_port: bool) -> io::Result<TcpListener> {
        let fd = sys::socket(sys::domain(addr), libc::SOCK_STREAM)?;
        sys::setsockopt_int(fd.as_fd(), libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
        if reuse_port {
            sys::setsockopt_int(fd.as_fd(), libc::SOL_SOCKET, libc::SO_REUSEPORT, 1)?;
        }
        sys::bind(fd.as_fd(), addr)?;
        sys::listen(fd.as_fd(), LISTEN_BACKLOG)?;
        Ok(TcpListener::from_nonblocking(std::net::TcpListener::from(fd), Shared::default()))
    }

    fn from_nonblocking(inner: std::net::TcpListener, shared: Shared) -> TcpListener {
        TcpListener { source: Source::new(inner.as_raw_fd()), inner, shared }
    }

    /// Accepts a new connection, parking until one comes in, like
    /// [`std::net::TcpListener::accept`]. The stream is non-blocking and close-on-exec from
    /// the start (one `accept4` call).
    ///
    /// Errors are std's: running out of fds gives `EMFILE` (`raw_os_error() == Some(24)`);
    /// the pending connection stays queued, and a later `accept` takes it once fds are free.
    ///
    /// ```
    /// use green::net::{TcpListener, TcpStream};
    ///
    /// green::run(|| {
    ///     let listener = TcpListener::bind("127.0.0.1:0")?;
    ///     let addr = listener.local_addr()?;
    ///     let client = green::spawn(move || TcpStream::connect(addr).map(|s| s.local_addr().unwrap()));
    ///     let (stream, peer) = listener.accept()?;
    ///     assert_eq!(stream.peer_addr()?, peer);
    ///     assert_eq!(client.join().unwrap()?, peer);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let mut storage = sys::storage();
        let (fd, len) = self.source.io(Direction::Read, self.shared.read_limit(), timeout_error, || {
            sys::accept(self.inner.as_fd(), Some(&mut storage))
        })?;
        let addr = sys::socket_addr(&storage, len)?;
        Ok((
            TcpStream::from_nonblocking(std::net::TcpStream::from(fd), Shared::default(), sys::StreamReads::new(true)),
            addr,
        ))
    }

    /// An iterator over incoming connections, like [`std::net::TcpListener::incoming`]: each
    /// item is [`accept`](TcpListener::accept)'s stream. It never returns `None`.
    ///
    /// ```no_run
    /// use std::io::Write;
    ///
    /// green::run(|| {
    ///     let listener = green::net::TcpListener::bind("127.0.0.1:8080")?;
    ///     for stream in listener.incoming() {
    ///         let mut stream = stream?;
    ///         green::spawn(move || stream.write_all(b"hello\n"));
    ///     }
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The local address, like [`std::net::TcpListener::local_addr`].
    ///
    /// ```
    /// let listener = green::net::TcpListener::bind("127.0.0.1:0")?;
    /// assert!(listener.local_addr()?.ip().is_loopback());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// A new handle to the same listening socket, like [`std::net::TcpListener::try_clone`].
    /// Green threads may accept on both.
    ///
    /// ```
    /// let listener = green::net::TcpListener::bind("127.0.0.1:0")?;
    /// let clone = listener.try_clone()?;
    /// assert_eq!(listener.local_addr()?, clone.local_addr()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_clone(&self) -> io::Result<TcpListener> {
        Ok(TcpListener::from_nonblocking(self.inner.try_clone()?, self.shared.share()))
    }

    /// Sets `IP_TTL`, like [`std::net::TcpListener::set_ttl`].
    ///
    /// ```
    /// let listener = green::net::TcpListener::bind("127.0.0.1:0")?;
    /// listener.set_ttl(100)?;
    /// assert_eq!(listener.ttl()?, 100);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.inner.set_ttl(ttl)
    }

    /// Gets `IP_TTL`, like [`std::net::TcpListener::ttl`].
    ///
    /// ```
    /// let listener = green::net::TcpListener::bind("127.0.0.1:0")?;
    /// assert!(listener.ttl()? > 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn ttl(&self) -> io::Result<u32> {
        self.inner.ttl()
    }

    /// Moves the socket into or out of non-blocking mode, like
    /// [`std::net::TcpListener::set_nonblocking`]. While it is on, a call that would wait returns
    /// at once with kind [`WouldBlock`](io::ErrorKind::WouldBlock) (`EAGAIN`) instead of parking
    /// (or, on a plain thread, blocking). As in std, the mode belongs to the socket: clones made
    /// with `try_clone` share it. The fd itself is non-blocking underneath either way; see
    /// `into_std` for what std gets back.
    ///
    /// ```
    /// use std::io::ErrorKind;
    ///
    /// let listener = green::net::TcpListener::bind("127.0.0.1:0")?;
    /// listener.set_nonblocking(true)?;
    /// assert_eq!(listener.accept().unwrap_err().kind(), ErrorKind::WouldBlock); // none queued
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.shared.set_nonblocking(nonblocking);
        Ok(())
    }

    /// Takes the pending socket error (`SO_ERROR`), like
    /// [`std::net::TcpListener::take_error`].
    ///
    /// ```
    /// let listener = green::net::TcpListener::bind("127.0.0.1:0")?;
    /// assert!(listener.take_error()?.is_none());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.inner.take_error()
    }

    /// Hands back the std listener, made blocking again, unless
    /// [`set_nonblocking(true)`](TcpListener::set_nonblocking) is in effect: then it stays
    /// non-blocking, as std's listener in that mode would be. Clones made with
    /// [`try_clone`](TcpListener::try_clone) share the blocking flag (it belongs to the socket,
    /// not the handle), and `accept4` has no flag to override it: an `accept` on them from a
    /// green thread afterwards would block its worker.
    ///
    /// ```
    /// let listener = green::net::TcpListener::bind("127.0.0.1:0")?;
    /// let addr = listener.local_addr()?;
    /// let std_listener: std::net::TcpListener = listener.into_std()?;
    /// assert_eq!(std_listener.local_addr()?, addr);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn into_std(self) -> io::Result<std::net::TcpListener> {
        let TcpListener { source, inner, shared, .. } = self;
        drop(source);
        if !shared.nonblocking() {
            inner.set_nonblocking(false)?;
        }
        Ok(inner)
    }
}

/// Makes the listener non-blocking underneath; see [Conversions](crate::net#conversions).
///
/// ```
/// let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let listener = green::net::TcpListener::from(std_listener);
/// assert!(listener.local_addr()?.port() > 0);
/// # Ok::<(), std::io::Error>(())
/// ```
impl From<std::net::TcpListener> for TcpListener {
    fn from(inner: std::net::TcpListener) -> TcpListener {
        super::make_nonblocking(inner.set_nonblocking(true));
        TcpListener::from_nonblocking(inner, Shared::default())
    }
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

/// An iterator over the connections of a [`TcpListener`]; see [`TcpListener::incoming`].
///
/// ```
/// use green::net::{TcpListener, TcpStream};
///
/// green::run(|| {
///     let listener = TcpListener::bind("127.0.0.1:0")?;
///     let addr = listener.local_addr()?;
///     let clients = green::spawn(move || (0..3).map(|_| TcpStream::connect(addr)).collect::<Vec<_>>());
///     let accepted = listener.incoming().take(3).collect::<Result<Vec<_>, _>>()?;
///     assert_eq!(accepted.len(), 3);
///     drop(clients.join().unwrap());
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;

    fn next(&mut self) -> Option<io::Result<TcpStream>> {
        Some(self.listener.accept().map(|(stream, _)| stream))
    }
}

/// It never ends: each `next` accepts a connection (or gives the error).
impl std::iter::FusedIterator for Incoming<'_> {}

/// A TCP connection, like [`std::net::TcpStream`]: [`Read`] and [`Write`] (for `&TcpStream`
/// too) park the green thread until the socket is ready.
///
/// A reader and a writer may work on one stream at once, through `&TcpStream` or through
/// [`try_clone`](TcpStream::try_clone), from green threads on any workers.
///
/// ```
/// use std::io::{Read, Write};
/// use green::net::{TcpListener, TcpStream};
///
/// green::run(|| {
///     let listener = TcpListener::bind("127.0.0.1:0")?;
///     let mut client = TcpStream::connect(listener.local_addr()?)?;
///     let (mut server, _) = listener.accept()?;
///     client.write_all(b"ping")?;
///     let mut buf = [0; 4];
///     server.read_exact(&mut buf)?;
///     assert_eq!(&buf, b"ping");
///     drop(client);
///     assert_eq!(server.read(&mut buf)?, 0); // the peer closed
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct TcpStream {
    source: Source,
    inner: std::net::TcpStream,
    shared: Shared,
    /// How reads learn that they drained the receive queue, sparing the next read its system
    /// call ("Drained reads" in `reactor.rs`). Streams this crate connected or accepted are TCP;
    /// a socket taken over is asked once.
    reads: sys::StreamReads,
}

impl TcpStream {
    /// Opens a connection to `addr`, parking until it is established, like
    /// [`std::net::TcpStream::connect`]. Each address `addr` yields is tried in turn; the last
    /// error is returned if none accepts. A refused connection is `ConnectionRefused`.
    ///
    /// # Errors
    ///
    /// Std's, unchanged, so `raw_os_error` and `kind` are what std code matches on: the OS
    /// error of the last address tried. Nothing listening there is `ConnectionRefused`, at
    /// once. A host that never answers (or a listener whose accept queue stays full) is
    /// `TimedOut` only after the kernel gives up its SYN retransmits, about two minutes with
    /// Linux's default `net.ipv4.tcp_syn_retries`: bound the wait with
    /// [`connect_timeout`](TcpStream::connect_timeout) or [`crate::timeout`]. Like std's, these
    /// messages do not name the address; a client talking to many servers adds it with
    /// `map_err`. A host name that does not resolve gives the lookup's error, which names it.
    ///
    /// ```
    /// use green::net::{TcpListener, TcpStream};
    ///
    /// green::run(|| {
    ///     let listener = TcpListener::bind("127.0.0.1:0")?;
    ///     let stream = TcpStream::connect(listener.local_addr()?)?;
    ///     assert_eq!(stream.peer_addr()?, listener.local_addr()?);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connect<A: ToSocketAddrs>(addr: A) -> io::Result<TcpStream> {
        each_addr(addr, |a| TcpStream::connect_one(a, None))
    }

    /// Opens a connection to `addr`, giving up after `timeout` with a `TimedOut` error, like
    /// [`std::net::TcpStream::connect_timeout`]. A zero timeout is an `InvalidInput` error.
    ///
    /// The timeout bounds the handshake: a refused connection fails at once, and a host that
    /// does not answer (or a listener whose accept queue is full) takes the whole timeout. For
    /// a host name, look it up with [`lookup_host`](super::lookup_host) and try each address,
    /// or bound the whole `connect` (lookup included) with [`crate::timeout`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use green::net::{TcpListener, TcpStream};
    ///
    /// green::run(|| {
    ///     let listener = TcpListener::bind("127.0.0.1:0")?;
    ///     let stream = TcpStream::connect_timeout(&listener.local_addr()?, Duration::from_secs(1))?;
    ///     assert!(stream.local_addr()?.ip().is_loopback());
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "cannot set a 0 duration timeout"));
        }
        TcpStream::connect_one(addr, Some(timeout))
    }

    fn connect_one(addr: &SocketAddr, timeout: Option<Duration>) -> io::Result<TcpStream> {
        let fd = sys::socket(sys::domain(addr), libc::SOCK_STREAM)?;
        let stream =
            TcpStream::from_nonblocking(std::net::TcpStream::from(fd), Shared::default(), sys::StreamReads::new(true));
        match sys::connect(stream.inner.as_fd(), addr) {
            Ok(()) => return Ok(stream),
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(e),
        }
        // Writable means the handshake is over: the pending error says how it went.
        let connected = stream.source.io(Direction::Write, timeout, connect_timeout_error, || {
            if let Some(e) = stream.inner.take_error()? {
                return Err(e);
            }
            match stream.inner.peer_addr() {
                Ok(_) => Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => Err(io::ErrorKind::WouldBlock.into()),
                Err(e) => Err(e),
            }
        });
        match connected {
            Ok(()) => Ok(stream),
            // The `green::timeout` deadline: the error keeps its `Elapsed`, which tells it from
            // the connect's own timeout.
            Err(e) if crate::Elapsed::is_in(&e) => Err(e),
            // green's own timeout (the kernel's `ETIMEDOUT` passes as it is): the kind std
            // gives, with what timed out.
            Err(e) if e.kind() == io::ErrorKind::TimedOut && e.raw_os_error().is_none() => Err(io::Error::new(
                e.kind(),
                match timeout {
                    Some(timeout) => format!("connection to {addr} timed out after {timeout:?}"),
                    None => format!("connection to {addr} timed out"),
                },
            )),
            Err(e) => Err(e),
        }
    }

    fn from_nonblocking(inner: std::net::TcpStream, shared: Shared, reads: sys::StreamReads) -> TcpStream {
        TcpStream { source: Source::new(inner.as_raw_fd()), inner, shared, reads }
    }

    /// The remote address, like [`std::net::TcpStream::peer_addr`].
    ///
    /// ```
    /// use green::net::{TcpListener, TcpStream};
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?; // outside a runtime: blocks
    /// assert_eq!(stream.peer_addr()?, listener.local_addr()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }

    /// The local address, like [`std::net::TcpStream::local_addr`].
    ///
    /// ```
    /// use green::net::{TcpListener, TcpStream};
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// assert!(stream.local_addr()?.ip().is_loopback());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// Shuts down the read half, the write half or both, like
    /// [`std::net::TcpStream::shutdown`]. After `Shutdown::Write` the peer reads end of stream.
    ///
    /// # Errors
    ///
    /// As std's on Linux: a second `shutdown` of a connection still open is `Ok`, but once the
    /// connection is over (the peer reset it, or both sides have sent their end of stream) any
    /// `shutdown` is `NotConnected`. A relay that passes a half-close on (`shutdown(Write)` on
    /// one socket after reading end of stream from the other) meets this when the far side is
    /// gone already, or when it cut both sockets itself after the other direction failed:
    /// that error says nothing new, and such a relay can take `NotConnected` as done
    /// (`examples/proxy.rs` does).
    ///
    /// ```
    /// use std::io::Read;
    /// use std::net::Shutdown;
    /// use green::net::{TcpListener, TcpStream};
    ///
    /// green::run(|| {
    ///     let listener = TcpListener::bind("127.0.0.1:0")?;
    ///     let client = TcpStream::connect(listener.local_addr()?)?;
    ///     let (mut server, _) = listener.accept()?;
    ///     client.shutdown(Shutdown::Write)?;
    ///     assert_eq!(server.read(&mut [0; 8])?, 0);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        if how != Shutdown::Write {
            self.shared.shutting_read();
        }
        self.inner.shutdown(how)
    }

    /// A new handle to the same connection, like [`std::net::TcpStream::try_clone`]: one green
    /// thread can read while another writes. Timeouts and the non-blocking flag belong to the
    /// socket, as with std: setting them through one handle sets them for both.
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use green::net::{TcpListener, TcpStream};
    ///
    /// green::run(|| {
    ///     let listener = TcpListener::bind("127.0.0.1:0")?;
    ///     let client = TcpStream::connect(listener.local_addr()?)?;
    ///     let (mut server, _) = listener.accept()?;
    ///     let mut writer = client.try_clone()?;
    ///     let w = green::spawn(move || writer.write_all(b"hi"));
    ///     let mut buf = [0; 2];
    ///     server.read_exact(&mut buf)?;
    ///     w.join().unwrap()?;
    ///     assert_eq!(&buf, b"hi");
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        Ok(TcpStream::from_nonblocking(self.inner.try_clone()?, self.shared.share(), self.reads.for_clone()))
    }

    /// Sets how long a read may wait, like [`std::net::TcpStream::set_read_timeout`]. A read
    /// that waited that long fails with kind [`WouldBlock`](io::ErrorKind::WouldBlock)
    /// (`EAGAIN`), as std's does on Unix. `None` waits forever; a zero duration is an
    /// `InvalidInput` error.
    ///
    /// The timeout bounds each read on its own: a peer that sends a byte now and then keeps
    /// every read under it, however long the whole request takes. To bound the whole, read
    /// inside [`green::timeout`](crate::timeout); a read that reaches its deadline first fails
    /// with the same kind, with a [`green::Elapsed`](crate::Elapsed) inside the error.
    ///
    /// The timeout is the socket's in the kernel too (`SO_RCVTIMEO`, which std sees after
    /// `into_std`), but calls here read green's copy of it, which only the handles made by
    /// [`try_clone`](TcpStream::try_clone) share. A handle converted from std separately (from a
    /// std `try_clone`, or a dup'd fd) has its own copy: it neither sees this timeout nor
    /// reports it in `read_timeout`. Make clones with green's `try_clone` to share it.
    ///
    /// ```
    /// use std::io::{ErrorKind, Read};
    /// use std::time::Duration;
    /// use green::net::{TcpListener, TcpStream};
    ///
    /// green::run(|| {
    ///     let listener = TcpListener::bind("127.0.0.1:0")?;
    ///     let mut client = TcpStream::connect(listener.local_addr()?)?;
    ///     client.set_read_timeout(Some(Duration::from_millis(10)))?;
    ///     let err = client.read(&mut [0; 8]).unwrap_err();
    ///     assert_eq!(err.kind(), ErrorKind::WouldBlock);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.inner.set_read_timeout(timeout)?;
        self.shared.set_read(timeout);
        Ok(())
    }

    /// Sets how long a write may wait; see [`set_read_timeout`](TcpStream::set_read_timeout).
    ///
    /// ```
    /// use std::time::Duration;
    /// use green::net::{TcpListener, TcpStream};
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// stream.set_write_timeout(Some(Duration::from_secs(1)))?;
    /// assert_eq!(stream.write_timeout()?, Some(Duration::from_secs(1)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.inner.set_write_timeout(timeout)?;
        self.shared.set_write(timeout);
        Ok(())
    }

    /// The read timeout, like [`std::net::TcpStream::read_timeout`].
    ///
    /// ```
    /// use green::net::{TcpListener, TcpStream};
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// assert_eq!(stream.read_timeout()?, None);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.shared.read())
    }

    /// The write timeout, like [`std::net::TcpStream::write_timeout`].
    ///
    /// ```
    /// use green::net::{TcpListener, TcpStream};
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// assert_eq!(stream.write_timeout()?, None);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.shared.write())
    }

    /// Reads without removing the data from the queue, like [`std::net::TcpStream::peek`];
    /// parks until there is some (or end of stream: `Ok(0)`).
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use green::net::{TcpListener, TcpStream};
    ///
    /// green::run(|| {
    ///     let listener = TcpListener::bind("127.0.0.1:0")?;
    ///     let mut client = TcpStream::connect(listener.local_addr()?)?;
    ///     let (mut server, _) = listener.accept()?;
    ///     client.write_all(b"abc")?;
    ///     let mut buf = [0; 3];
    ///     let n = server.peek(&mut buf)?;
    ///     assert_eq!(&buf[..n], &b"abc"[..n]);
    ///     server.read_exact(&mut buf)?; // still there
    ///     assert_eq!(&buf, b"abc");
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        let fd = self.inner.as_raw_fd();
        let n = self.source.io(Direction::Read, self.shared.read_limit(), timeout_error, || {
            sys::recv(fd, buf, libc::MSG_PEEK | libc::MSG_DONTWAIT)
        })?;
        // It copies as a read does (`recv_inner`).
        crate::coop::tick_bytes(n);
        Ok(n)
    }

    /// Sets `TCP_NODELAY`, like [`std::net::TcpStream::set_nodelay`].
    ///
    /// Off by default, as in std: a request written in two pieces (a header, then a body)
    /// and answered before the next goes out then waits for the peer's delayed ACK, about
    /// 40 ms per round trip on Linux. Turn it on for such request/response protocols, or write
    /// each message in one call (`write_vectored`, or a `BufWriter` flushed once).
    ///
    /// ```
    /// use green::net::{TcpListener, TcpStream};
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// stream.set_nodelay(true)?;
    /// assert!(stream.nodelay()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.inner.set_nodelay(nodelay)
    }

    /// Gets `TCP_NODELAY`, like [`std::net::TcpStream::nodelay`].
    ///
    /// ```
    /// use green::net::{TcpListener, TcpStream};
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// assert!(!stream.nodelay()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn nodelay(&self) -> io::Result<bool> {
        self.inner.nodelay()
    }

    /// Sets `TCP_QUICKACK`, like std's
    /// [`TcpStreamExt::set_quickack`](std::os::linux::net::TcpStreamExt::set_quickack): the
    /// next ACKs go out at once instead of delayed. The kernel clears it again on its own.
    ///
    /// Std's trait is sealed, so green cannot implement it: the method is inherent here, and
    /// `stream.set_quickack(true)` compiles unchanged after `use green::net::TcpStream;` (the
    /// import of std's trait is then unused).
    ///
    /// ```
    /// use green::net::{TcpListener, TcpStream};
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// stream.set_quickack(true)?;
    /// assert!(stream.quickack()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[cfg(target_os = "linux")]
    pub fn set_quickack(&self, quickack: bool) -> io::Result<()> {
        std::os::linux::net::TcpStreamExt::set_quickack(&self.inner, quickack)
    }

    /// Gets `TCP_QUICKACK`, like std's
    /// [`TcpStreamExt::quickack`](std::os::linux::net::TcpStreamExt::quickack); see
    /// [`set_quickack`](TcpStream::set_quickack).
    ///
    /// ```
    /// use green::net::{TcpListener, TcpStream};
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// stream.set_quickack(false)?;
    /// assert!(!stream.quickack()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[cfg(target_os = "linux")]
    pub fn quickack(&self) -> io::Result<bool> {
        std::os::linux::net::TcpStreamExt::quickack(&self.inner)
    }

    /// Sets `IP_TTL`, like [`std::net::TcpStream::set_ttl`].
    ///
    /// ```
    /// use green::net::{TcpListener, TcpStream};
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// stream.set_ttl(42)?;
    /// assert_eq!(stream.ttl()?, 42);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.inner.set_ttl(ttl)
    }

    /// Gets `IP_TTL`, like [`std::net::TcpStream::ttl`].
    ///
    /// ```
    /// use green::net::{TcpListener, TcpStream};
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// assert!(stream.ttl()? > 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn ttl(&self) -> io::Result<u32> {
        self.inner.ttl()
    }

    /// Moves the socket into or out of non-blocking mode, like
    /// [`std::net::TcpStream::set_nonblocking`]. While it is on, a call that would wait returns at
    /// once with kind [`WouldBlock`](io::ErrorKind::WouldBlock) (`EAGAIN`) instead of parking (or,
    /// on a plain thread, blocking). As in std, the mode belongs to the socket: clones made with
    /// `try_clone` share it. The fd itself is non-blocking underneath either way; see `into_std`
    /// for what std gets back.
    ///
    /// ```
    /// use std::io::{ErrorKind, Read};
    /// use green::net::{TcpListener, TcpStream};
    ///
    /// green::run(|| {
    ///     let listener = TcpListener::bind("127.0.0.1:0")?;
    ///     let mut stream = TcpStream::connect(listener.local_addr()?)?;
    ///     stream.set_nonblocking(true)?;
    ///     assert_eq!(stream.read(&mut [0; 8]).unwrap_err().kind(), ErrorKind::WouldBlock);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.shared.set_nonblocking(nonblocking);
        Ok(())
    }

    /// Takes the pending socket error (`SO_ERROR`), like [`std::net::TcpStream::take_error`].
    ///
    /// ```
    /// use green::net::{TcpListener, TcpStream};
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// assert!(stream.take_error()?.is_none());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.inner.take_error()
    }

    /// Hands back the std stream, made blocking again, unless
    /// [`set_nonblocking(true)`](TcpStream::set_nonblocking) is in effect: then it stays
    /// non-blocking, as std's stream in that mode would be. Its timeouts carry over. Clones
    /// made with [`try_clone`](TcpStream::try_clone) share the blocking flag (it belongs to the
    /// socket): green reads and writes on them still never block (they pass `MSG_DONTWAIT`).
    /// A socket option green set for its own reads (`TCP_INQ` on Linux) is turned off again.
    ///
    /// ```
    /// use green::net::{TcpListener, TcpStream};
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// let std_stream: std::net::TcpStream = stream.into_std()?;
    /// assert_eq!(std_stream.peer_addr()?, listener.local_addr()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn into_std(self) -> io::Result<std::net::TcpStream> {
        let TcpStream { source, inner, shared, reads } = self;
        drop(source);
        reads.restore(inner.as_fd())?;
        if !shared.nonblocking() {
            inner.set_nonblocking(false)?;
        }
        Ok(inner)
    }

    fn read_inner(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.recv_inner(&mut [IoSliceMut::new(buf)])
    }

    fn read_vectored_inner(&self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        // Std's `read_vectored` is a `readv`, which returns 0 at once when there is no room at
        // all; a `recv` or `recvmsg` of nothing says `EAGAIN` until data comes, so this would
        // wait for data it cannot take (for good, if none comes). A plain `read` of an empty
        // buffer is std's `recv`, which does wait: that one goes through as it is.
        if bufs.iter().all(|b| b.is_empty()) {
            crate::coop::tick_op();
            return Ok(0);
        }
        self.recv_inner(bufs)
    }

    fn recv_inner(&self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        let fd = self.inner.as_fd();
        let n = self.source.read_hinted(self.shared.read_limit(), timeout_error, || {
            self.reads.recv(fd, bufs, libc::MSG_DONTWAIT, || self.shared.read_shut())
        })?;
        crate::coop::tick_bytes(n);
        Ok(n)
    }

    fn write_inner(&self, buf: &[u8]) -> io::Result<usize> {
        let fd = self.inner.as_raw_fd();
        let n = self
            .source
            .io(Direction::Write, self.shared.write_limit(), timeout_error, || sys::send(fd, buf, SEND_FLAGS))?;
        crate::coop::tick_bytes(n);
        Ok(n)
    }

    fn write_vectored_inner(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let fd = self.inner.as_raw_fd();
        let n = self.source.io(Direction::Write, self.shared.write_limit(), timeout_error, || {
            sys::send_vectored(fd, bufs, SEND_FLAGS)
        })?;
        crate::coop::tick_bytes(n);
        Ok(n)
    }
}

impl Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_inner(buf)
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.read_vectored_inner(bufs)
    }
}

impl Read for &TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_inner(buf)
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.read_vectored_inner(bufs)
    }
}

impl Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_inner(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.write_vectored_inner(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for &TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_inner(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.write_vectored_inner(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Makes the stream non-blocking underneath and takes over its timeouts, read once here:
/// from then on they are this handle's and its green clones' (see
/// [`set_read_timeout`](TcpStream::set_read_timeout)). See
/// [Conversions](crate::net#conversions).
///
/// ```
/// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let std_stream = std::net::TcpStream::connect(listener.local_addr()?)?;
/// let stream = green::net::TcpStream::from(std_stream);
/// assert_eq!(stream.peer_addr()?, listener.local_addr()?);
/// # Ok::<(), std::io::Error>(())
/// ```
impl From<std::net::TcpStream> for TcpStream {
    fn from(inner: std::net::TcpStream) -> TcpStream {
        super::make_nonblocking(inner.set_nonblocking(true));
        let shared = Shared::from_std(inner.read_timeout(), inner.write_timeout());
        let reads = sys::StreamReads::new(sys::is_tcp(inner.as_fd()));
        TcpStream::from_nonblocking(inner, shared, reads)
    }
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

macro_rules! fd_traits {
    ($ty:ident, $std:ty) => {
        impl AsFd for $ty {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.inner.as_fd()
            }
        }

        impl AsRawFd for $ty {
            fn as_raw_fd(&self) -> RawFd {
                self.inner.as_raw_fd()
            }
        }

        /// Hands over the fd, still non-blocking.
        impl IntoRawFd for $ty {
            fn into_raw_fd(self) -> RawFd {
                let $ty { source, inner, .. } = self;
                drop(source);
                inner.into_raw_fd()
            }
        }

        /// Takes over the fd and makes it non-blocking, as `From<std>` does.
        impl FromRawFd for $ty {
            unsafe fn from_raw_fd(fd: RawFd) -> $ty {
                // SAFETY: forwarded: the caller hands over an open socket fd of this kind.
                $ty::from(unsafe { <$std>::from_raw_fd(fd) })
            }
        }

        /// Takes over the socket and makes it non-blocking, through `From<std>`.
        impl From<OwnedFd> for $ty {
            fn from(fd: OwnedFd) -> $ty {
                $ty::from(<$std>::from(fd))
            }
        }

        impl From<$ty> for OwnedFd {
            fn from(socket: $ty) -> OwnedFd {
                let $ty { source, inner, .. } = socket;
                drop(source);
                inner.into()
            }
        }
    };
}
pub(crate) use fd_traits;

fd_traits!(TcpListener, std::net::TcpListener);
fd_traits!(TcpStream, std::net::TcpStream);
