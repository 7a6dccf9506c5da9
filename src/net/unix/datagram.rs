//! Unix datagram sockets: [`UnixDatagram`].
//!
//! Every send and receive passes `MSG_DONTWAIT` (through `sys`, not std's methods, which pass
//! no flags), so none blocks the worker even when another handle of the socket made it
//! blocking (see `into_std`). Received addresses are rebuilt as std's `SocketAddr` from the
//! kernel's `sockaddr_un`.

use std::fmt;
use std::io;
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use super::{
    RETRY_PAUSE, addr_bytes, cannot_park, cannot_wait_error, checked_path, path_bytes, pause_before_retry, std_addr,
};
use crate::deadline::elapsed_error;
use crate::net::tcp::fd_traits;
use crate::net::{SEND_FLAGS, Shared, sys, timeout_error, unless_shut_down};
use crate::park;
use crate::reactor::{Direction, Source};

/// A Unix datagram socket, like [`std::os::unix::net::UnixDatagram`]: receives park until a
/// datagram arrives, sends park while the receiver's queue is full.
///
/// ```
/// green::run(|| {
///     let (a, b) = green::net::unix::UnixDatagram::pair()?;
///     a.send(b"one")?;
///     let mut buf = [0; 8];
///     let n = b.recv(&mut buf)?;
///     assert_eq!(&buf[..n], b"one");
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct UnixDatagram {
    source: Source,
    inner: std::os::unix::net::UnixDatagram,
    shared: Shared,
}

impl UnixDatagram {
    /// Creates a socket bound to `path`, like [`std::os::unix::net::UnixDatagram::bind`].
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("green-doc-dbind-{}", std::process::id()));
    /// # let _ = std::fs::remove_file(&path);
    /// let socket = green::net::unix::UnixDatagram::bind(&path)?;
    /// assert_eq!(socket.local_addr()?.as_pathname(), Some(path.as_path()));
    /// std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixDatagram> {
        UnixDatagram::nonblocking(std::os::unix::net::UnixDatagram::bind(checked_path(path.as_ref())?)?)
    }

    /// Creates a socket bound to `addr`, like
    /// [`std::os::unix::net::UnixDatagram::bind_addr`].
    ///
    /// ```
    /// # #[cfg(target_os = "linux")] {
    /// use std::os::linux::net::SocketAddrExt;
    /// use std::os::unix::net::SocketAddr;
    /// let addr = SocketAddr::from_abstract_name(format!("green-doc-dbaddr-{}", std::process::id()))?;
    /// let socket = green::net::unix::UnixDatagram::bind_addr(&addr)?;
    /// assert_eq!(socket.local_addr()?.as_abstract_name(), addr.as_abstract_name());
    /// # }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind_addr(addr: &SocketAddr) -> io::Result<UnixDatagram> {
        UnixDatagram::nonblocking(std::os::unix::net::UnixDatagram::bind_addr(addr)?)
    }

    /// Creates a socket bound to no address, like
    /// [`std::os::unix::net::UnixDatagram::unbound`].
    ///
    /// ```
    /// let socket = green::net::unix::UnixDatagram::unbound()?;
    /// assert!(socket.local_addr()?.is_unnamed());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn unbound() -> io::Result<UnixDatagram> {
        UnixDatagram::nonblocking(std::os::unix::net::UnixDatagram::unbound()?)
    }

    /// A connected pair of sockets, like [`std::os::unix::net::UnixDatagram::pair`].
    ///
    /// ```
    /// let (a, b) = green::net::unix::UnixDatagram::pair()?;
    /// assert!(a.peer_addr()?.is_unnamed() && b.peer_addr()?.is_unnamed());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = std::os::unix::net::UnixDatagram::pair()?;
        Ok((UnixDatagram::nonblocking(a)?, UnixDatagram::nonblocking(b)?))
    }

    fn nonblocking(inner: std::os::unix::net::UnixDatagram) -> io::Result<UnixDatagram> {
        inner.set_nonblocking(true)?;
        Ok(UnixDatagram::from_nonblocking(inner, Shared::default()))
    }

    fn from_nonblocking(inner: std::os::unix::net::UnixDatagram, shared: Shared) -> UnixDatagram {
        UnixDatagram { source: Source::new(inner.as_raw_fd()), inner, shared }
    }

    /// Sets the default destination (and the only source), like
    /// [`std::os::unix::net::UnixDatagram::connect`].
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("green-doc-dconn-{}", std::process::id()));
    /// # let _ = std::fs::remove_file(&path);
    /// let server = green::net::unix::UnixDatagram::bind(&path)?;
    /// let client = green::net::unix::UnixDatagram::unbound()?;
    /// client.connect(&path)?;
    /// assert_eq!(client.peer_addr()?.as_pathname(), Some(path.as_path()));
    /// drop(server);
    /// std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connect<P: AsRef<Path>>(&self, path: P) -> io::Result<()> {
        self.inner.connect(checked_path(path.as_ref())?)
    }

    /// Connects to `addr`, like [`std::os::unix::net::UnixDatagram::connect_addr`].
    ///
    /// ```
    /// # #[cfg(target_os = "linux")] {
    /// use std::os::linux::net::SocketAddrExt;
    /// use std::os::unix::net::SocketAddr;
    /// use green::net::unix::UnixDatagram;
    /// let addr = SocketAddr::from_abstract_name(format!("green-doc-dcaddr-{}", std::process::id()))?;
    /// let _server = UnixDatagram::bind_addr(&addr)?;
    /// let client = UnixDatagram::unbound()?;
    /// client.connect_addr(&addr)?;
    /// # }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connect_addr(&self, addr: &SocketAddr) -> io::Result<()> {
        self.inner.connect_addr(addr)
    }

    /// Sends to the connected peer, parking while its queue is full.
    ///
    /// ```
    /// let (a, _b) = green::net::unix::UnixDatagram::pair()?;
    /// assert_eq!(a.send(b"abc")?, 3);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        let fd = self.inner.as_raw_fd();
        let n = self
            .source
            .io(Direction::Write, self.shared.write_limit(), timeout_error, || sys::send(fd, buf, SEND_FLAGS))?;
        crate::coop::tick_bytes(n);
        Ok(n)
    }

    /// Receives from the connected peer, parking until a datagram arrives.
    ///
    /// ```
    /// green::run(|| {
    ///     let (a, b) = green::net::unix::UnixDatagram::pair()?;
    ///     let sender = green::spawn(move || a.send(b"late"));
    ///     let mut buf = [0; 8];
    ///     assert_eq!(b.recv(&mut buf)?, 4);
    ///     sender.join().unwrap()?;
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.recv_with(buf, 0)
    }

    /// Like [`recv`](UnixDatagram::recv), but leaves the datagram queued (`MSG_PEEK`). Std has
    /// it too, not yet stable (`unix_socket_peek`).
    ///
    /// ```
    /// let (a, b) = green::net::unix::UnixDatagram::pair()?;
    /// a.send(b"first")?;
    /// let mut buf = [0; 8];
    /// assert_eq!(b.peek(&mut buf)?, 5);
    /// assert_eq!(b.recv(&mut buf)?, 5); // still there
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.recv_with(buf, libc::MSG_PEEK)
    }

    /// `recv` with `flags` beside `MSG_DONTWAIT`.
    fn recv_with(&self, buf: &mut [u8], flags: libc::c_int) -> io::Result<usize> {
        let fd = self.inner.as_raw_fd();
        let mut tries = 0;
        let n = self.source.io(Direction::Read, self.shared.read_limit(), timeout_error, || {
            self.unless_shut(sys::recv(fd, buf, flags | libc::MSG_DONTWAIT), &mut tries, || 0)
        })?;
        crate::coop::tick_bytes(n);
        Ok(n)
    }

    /// Sends to the socket at `path`, like [`std::os::unix::net::UnixDatagram::send_to`].
    /// While the receiver's queue is full, it retries after short sleeps (see the
    /// [module docs](super)), until the write timeout if one is set.
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("green-doc-dsendto-{}", std::process::id()));
    /// # let _ = std::fs::remove_file(&path);
    /// let server = green::net::unix::UnixDatagram::bind(&path)?;
    /// let client = green::net::unix::UnixDatagram::unbound()?;
    /// client.send_to(b"hi", &path)?;
    /// let mut buf = [0; 4];
    /// assert_eq!(server.recv(&mut buf)?, 2);
    /// std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn send_to<P: AsRef<Path>>(&self, buf: &[u8], path: P) -> io::Result<usize> {
        let (addr, len) = sys::sockaddr_un(path_bytes(path.as_ref()), false)?;
        self.send_to_raw(buf, &addr, len)
    }

    /// Sends to `addr`, like [`std::os::unix::net::UnixDatagram::send_to_addr`].
    ///
    /// ```
    /// # #[cfg(target_os = "linux")] {
    /// use std::os::linux::net::SocketAddrExt;
    /// use std::os::unix::net::SocketAddr;
    /// use green::net::unix::UnixDatagram;
    /// let addr = SocketAddr::from_abstract_name(format!("green-doc-dsaddr-{}", std::process::id()))?;
    /// let server = UnixDatagram::bind_addr(&addr)?;
    /// UnixDatagram::unbound()?.send_to_addr(b"x", &addr)?;
    /// assert_eq!(server.recv(&mut [0; 4])?, 1);
    /// # }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn send_to_addr(&self, buf: &[u8], addr: &SocketAddr) -> io::Result<usize> {
        let (bytes, abstract_name) = addr_bytes(addr)?;
        let (addr, len) = sys::sockaddr_un(bytes, abstract_name)?;
        self.send_to_raw(buf, &addr, len)
    }

    /// Receives one datagram and its sender's address, parking until one arrives.
    ///
    /// ```
    /// green::run(|| {
    ///     let (a, b) = green::net::unix::UnixDatagram::pair()?;
    ///     a.send(b"who")?;
    ///     let mut buf = [0; 8];
    ///     let (n, from) = b.recv_from(&mut buf)?;
    ///     assert_eq!((n, from.is_unnamed()), (3, true));
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.recv_from_with(buf, 0)
    }

    /// Like [`recv_from`](UnixDatagram::recv_from), but leaves the datagram queued
    /// (`MSG_PEEK`). Std has it too, not yet stable (`unix_socket_peek`).
    ///
    /// ```
    /// let (a, b) = green::net::unix::UnixDatagram::pair()?;
    /// a.send(b"who")?;
    /// let mut buf = [0; 8];
    /// let (n, from) = b.peek_from(&mut buf)?;
    /// assert_eq!((n, from.is_unnamed()), (3, true));
    /// assert_eq!(b.recv_from(&mut buf)?.0, 3); // still there
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.recv_from_with(buf, libc::MSG_PEEK)
    }

    /// `recvfrom` with `flags` beside `MSG_DONTWAIT`.
    fn recv_from_with(&self, buf: &mut [u8], flags: libc::c_int) -> io::Result<(usize, SocketAddr)> {
        let fd = self.inner.as_raw_fd();
        let mut tries = 0;
        self.source
            .io(Direction::Read, self.shared.read_limit(), timeout_error, || {
                let received = sys::recv_from(fd, buf, flags | libc::MSG_DONTWAIT);
                let (n, addr, len) = self.unless_shut(received, &mut tries, || (0, sys::storage(), 0))?;
                Ok((n, std_addr(&addr, len)?))
            })
            .inspect(|&(n, _)| crate::coop::tick_bytes(n))
    }

    /// `received`, unless it is the `EAGAIN` of a receive after the socket was shut down for
    /// reading, through [`shutdown`](UnixDatagram::shutdown) on this handle or a clone, or
    /// through the raw fd or another handle: then `ended`, the 0 that std's blocking receive
    /// returns once the queue is empty (see `unless_shut_down`; `tries` counts this call's
    /// refusals).
    fn unless_shut<T>(&self, received: io::Result<T>, tries: &mut u32, ended: impl FnOnce() -> T) -> io::Result<T> {
        unless_shut_down(received, &self.source, self.inner.as_raw_fd(), &self.shared, tries, || Ok(ended()))
    }

    /// Sends to the address in `addr` (`len` bytes). A send refused while the socket is
    /// writable met a full receiver, which no readiness announces: it is retried after short
    /// sleeps until the write timeout (see "Retries that no readiness announces" in the
    /// [module docs](super)). One refused while the socket is not writable parks on readiness.
    fn send_to_raw(&self, buf: &[u8], addr: &libc::sockaddr_un, len: libc::socklen_t) -> io::Result<usize> {
        let fd = self.inner.as_fd();
        let deadline = self.shared.write_limit().and_then(|t| Instant::now().checked_add(t));
        let mut pause = RETRY_PAUSE.0;
        loop {
            // `None`: refused, with the socket writable.
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            let sent = self.source.io(Direction::Write, left, timeout_error, || {
                match sys::send_to(fd.as_raw_fd(), buf, SEND_FLAGS, addr, len) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock && crate::io::ready_now(fd, Direction::Write)? => {
                        Ok(None)
                    }
                    result => result.map(Some),
                }
            })?;
            if let Some(n) = sent {
                crate::coop::tick_bytes(n);
                return Ok(n);
            }
            // The receiver's queue is full: sleep, but not past the write timeout (at which the
            // call gives up with its timeout error) or the caller's `green::timeout`.
            let effective = park::effective_deadline(deadline);
            let left = effective.map(|d| d.saturating_duration_since(Instant::now()));
            if let Some(why) = cannot_park() {
                return Err(cannot_wait_error(why, &timeout_error()));
            }
            if left.is_some_and(|left| left.is_zero()) || !pause_before_retry(left.map_or(pause, |l| l.min(pause))) {
                // At the `green::timeout` deadline (earlier than the write timeout), as
                // `Source::io` gives it: std's kind with an `Elapsed` inside.
                return Err(if effective != deadline {
                    elapsed_error(io::ErrorKind::WouldBlock)
                } else {
                    timeout_error()
                });
            }
            pause = (pause * 2).min(RETRY_PAUSE.1);
        }
    }

    /// The local address.
    ///
    /// ```
    /// let socket = green::net::unix::UnixDatagram::unbound()?;
    /// assert!(socket.local_addr()?.is_unnamed());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// The connected peer's address.
    ///
    /// ```
    /// let socket = green::net::unix::UnixDatagram::unbound()?;
    /// assert!(socket.peer_addr().is_err());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }

    /// Shuts down the read half, the write half or both, like
    /// [`std::os::unix::net::UnixDatagram::shutdown`]. Once the read half is shut, receives
    /// return what was queued and then 0, at once, as std's do; so does a receive parked at
    /// the time (a way to stop a green thread that serves the socket). A shutdown through the
    /// raw fd (`libc::shutdown`, socket2's `SockRef::shutdown`) ends receives too, at the cost
    /// of a `poll(2)` when one is refused after a wait.
    ///
    /// ```
    /// use std::net::Shutdown;
    /// let (a, b) = green::net::unix::UnixDatagram::pair()?;
    /// a.send(b"last")?;
    /// b.shutdown(Shutdown::Read)?;
    /// assert_eq!(b.recv(&mut [0; 8])?, 4);
    /// assert_eq!(b.recv(&mut [0; 8])?, 0);
    /// a.shutdown(Shutdown::Both)?;
    /// assert!(a.send(b"x").is_err());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        if how != Shutdown::Write {
            self.shared.shutting_read();
        }
        self.inner.shutdown(how)
    }

    /// A new handle to the same socket; timeouts are shared.
    ///
    /// ```
    /// let socket = green::net::unix::UnixDatagram::unbound()?;
    /// let _clone = socket.try_clone()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_clone(&self) -> io::Result<UnixDatagram> {
        Ok(UnixDatagram::from_nonblocking(self.inner.try_clone()?, self.shared.share()))
    }

    /// Sets how long a receive may wait; one that waited that long fails with kind
    /// [`WouldBlock`](io::ErrorKind::WouldBlock), as std's does.
    ///
    /// The timeout is the socket's in the kernel too (`SO_RCVTIMEO`, which std sees after
    /// `into_std`), but calls here read green's copy of it, which only the handles made by
    /// [`try_clone`](UnixDatagram::try_clone) share. A handle converted from std separately (from a
    /// std `try_clone`, or a dup'd fd) has its own copy: it neither sees this timeout nor
    /// reports it in `read_timeout`. Make clones with green's `try_clone` to share it.
    ///
    /// ```
    /// use std::io::ErrorKind;
    /// use std::time::Duration;
    ///
    /// green::run(|| {
    ///     let (a, _b) = green::net::unix::UnixDatagram::pair()?;
    ///     a.set_read_timeout(Some(Duration::from_millis(5)))?;
    ///     assert_eq!(a.recv(&mut [0; 4]).unwrap_err().kind(), ErrorKind::WouldBlock);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.inner.set_read_timeout(timeout)?;
        self.shared.set_read(timeout);
        Ok(())
    }

    /// Sets how long a send may wait; see
    /// [`set_read_timeout`](UnixDatagram::set_read_timeout).
    ///
    /// ```
    /// use std::time::Duration;
    /// let socket = green::net::unix::UnixDatagram::unbound()?;
    /// socket.set_write_timeout(Some(Duration::from_secs(1)))?;
    /// assert_eq!(socket.write_timeout()?, Some(Duration::from_secs(1)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.inner.set_write_timeout(timeout)?;
        self.shared.set_write(timeout);
        Ok(())
    }

    /// The read timeout.
    ///
    /// ```
    /// let socket = green::net::unix::UnixDatagram::unbound()?;
    /// assert_eq!(socket.read_timeout()?, None);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.shared.read())
    }

    /// The write timeout.
    ///
    /// ```
    /// let socket = green::net::unix::UnixDatagram::unbound()?;
    /// assert_eq!(socket.write_timeout()?, None);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.shared.write())
    }

    /// Moves the socket into or out of non-blocking mode, like
    /// [`std::os::unix::net::UnixDatagram::set_nonblocking`]. While it is on, a call that would
    /// wait returns at once with kind [`WouldBlock`](io::ErrorKind::WouldBlock) (`EAGAIN`) instead
    /// of parking (or, on a plain thread, blocking). As in std, the mode belongs to the socket:
    /// clones made with `try_clone` share it. The fd itself is non-blocking underneath either way;
    /// see `into_std` for what std gets back.
    ///
    /// ```
    /// use std::io::ErrorKind;
    ///
    /// let (a, _b) = green::net::unix::UnixDatagram::pair()?;
    /// a.set_nonblocking(true)?;
    /// assert_eq!(a.recv(&mut [0; 8]).unwrap_err().kind(), ErrorKind::WouldBlock);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.shared.set_nonblocking(nonblocking);
        Ok(())
    }

    /// Takes the pending socket error (`SO_ERROR`).
    ///
    /// ```
    /// let socket = green::net::unix::UnixDatagram::unbound()?;
    /// assert!(socket.take_error()?.is_none());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.inner.take_error()
    }

    /// Hands back the std socket, made blocking again, unless
    /// [`set_nonblocking(true)`](UnixDatagram::set_nonblocking) is in effect: then it stays
    /// non-blocking, as std's socket in that mode would be. Its timeouts carry over. Clones
    /// made with `try_clone` share the blocking flag (it belongs to the socket): green sends and
    /// receives on them still never block (they pass `MSG_DONTWAIT`).
    ///
    /// ```
    /// let socket = green::net::unix::UnixDatagram::unbound()?;
    /// let std_socket = socket.into_std()?;
    /// assert!(std_socket.local_addr()?.is_unnamed());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixDatagram> {
        let UnixDatagram { source, inner, shared, .. } = self;
        drop(source);
        if !shared.nonblocking() {
            inner.set_nonblocking(false)?;
        }
        Ok(inner)
    }
}

/// Makes the socket non-blocking underneath and takes over its timeouts, read once here:
/// from then on they are this handle's and its green clones' (see
/// [`set_read_timeout`](UnixDatagram::set_read_timeout)). See
/// [Conversions](crate::net#conversions).
///
/// ```
/// let std_socket = std::os::unix::net::UnixDatagram::unbound()?;
/// let socket = green::net::unix::UnixDatagram::from(std_socket);
/// assert!(socket.local_addr()?.is_unnamed());
/// # Ok::<(), std::io::Error>(())
/// ```
impl From<std::os::unix::net::UnixDatagram> for UnixDatagram {
    fn from(inner: std::os::unix::net::UnixDatagram) -> UnixDatagram {
        crate::net::make_nonblocking(inner.set_nonblocking(true));
        let shared = Shared::from_std(inner.read_timeout(), inner.write_timeout());
        UnixDatagram::from_nonblocking(inner, shared)
    }
}

impl fmt::Debug for UnixDatagram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

fd_traits!(UnixDatagram, std::os::unix::net::UnixDatagram);
