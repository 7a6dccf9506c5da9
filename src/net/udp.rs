//! UDP: [`UdpSocket`], mirroring `std::net`. Receives park until a datagram arrives; sends park
//! only when the send buffer is full.
//!
//! Every send and receive passes `MSG_DONTWAIT` (through `sys`, not std's methods, which pass
//! no flags), so none blocks the worker even when another handle of the socket made it
//! blocking (see `into_std`).

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::time::Duration;

use super::tcp::fd_traits;
use super::{SEND_FLAGS, Shared, each_addr, resolve, sys, timeout_error, unless_shut_down};
use crate::reactor::{Direction, Source};

/// A UDP socket, like [`std::net::UdpSocket`].
///
/// ```
/// use green::net::UdpSocket;
///
/// green::run(|| {
///     let a = UdpSocket::bind("127.0.0.1:0")?;
///     let b = UdpSocket::bind("127.0.0.1:0")?;
///     a.send_to(b"hello", b.local_addr()?)?;
///     let mut buf = [0; 16];
///     let (n, from) = b.recv_from(&mut buf)?;
///     assert_eq!((&buf[..n], from), (&b"hello"[..], a.local_addr()?));
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct UdpSocket {
    source: Source,
    inner: std::net::UdpSocket,
    shared: Shared,
}

impl UdpSocket {
    /// Creates a socket bound to `addr`, like [`std::net::UdpSocket::bind`].
    ///
    /// ```
    /// let socket = green::net::UdpSocket::bind("127.0.0.1:0")?;
    /// assert_ne!(socket.local_addr()?.port(), 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<UdpSocket> {
        let inner = each_addr(addr, |a| std::net::UdpSocket::bind(a))?;
        inner.set_nonblocking(true)?;
        Ok(UdpSocket::from_nonblocking(inner, Shared::default()))
    }

    fn from_nonblocking(inner: std::net::UdpSocket, shared: Shared) -> UdpSocket {
        UdpSocket { source: Source::new(inner.as_raw_fd()), inner, shared }
    }

    /// Receives one datagram, parking until one arrives, like
    /// [`std::net::UdpSocket::recv_from`]. Bytes that do not fit in `buf` are discarded.
    ///
    /// ```
    /// use green::net::UdpSocket;
    ///
    /// green::run(|| {
    ///     let socket = UdpSocket::bind("127.0.0.1:0")?;
    ///     socket.send_to(b"to myself", socket.local_addr()?)?;
    ///     let mut buf = [0; 32];
    ///     let (n, _) = socket.recv_from(&mut buf)?;
    ///     assert_eq!(&buf[..n], b"to myself");
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let fd = self.inner.as_raw_fd();
        let mut tries = 0;
        let (n, addr) = self.source.io(Direction::Read, self.shared.read_limit(), timeout_error, || {
            self.unless_shut(recv_from(fd, buf, libc::MSG_DONTWAIT), &mut tries, no_sender_error)
        })?;
        crate::coop::tick_bytes(n);
        Ok((n, addr))
    }

    /// Like [`recv_from`](UdpSocket::recv_from), but leaves the datagram queued, like
    /// [`std::net::UdpSocket::peek_from`].
    ///
    /// ```
    /// use green::net::UdpSocket;
    ///
    /// green::run(|| {
    ///     let socket = UdpSocket::bind("127.0.0.1:0")?;
    ///     socket.send_to(b"x", socket.local_addr()?)?;
    ///     let mut buf = [0; 4];
    ///     assert_eq!(socket.peek_from(&mut buf)?.0, 1);
    ///     assert_eq!(socket.recv_from(&mut buf)?.0, 1);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let fd = self.inner.as_raw_fd();
        let mut tries = 0;
        let (n, addr) = self.source.io(Direction::Read, self.shared.read_limit(), timeout_error, || {
            self.unless_shut(recv_from(fd, buf, libc::MSG_PEEK | libc::MSG_DONTWAIT), &mut tries, no_sender_error)
        })?;
        crate::coop::tick_bytes(n);
        Ok((n, addr))
    }

    /// Sends one datagram to `addr` (its first address), like
    /// [`std::net::UdpSocket::send_to`].
    ///
    /// ```
    /// let socket = green::net::UdpSocket::bind("127.0.0.1:0")?;
    /// assert_eq!(socket.send_to(b"abc", socket.local_addr()?)?, 3);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn send_to<A: ToSocketAddrs>(&self, buf: &[u8], addr: A) -> io::Result<usize> {
        let Some(addr) = resolve(addr)?.into_iter().next() else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "no addresses to send data to"));
        };
        let fd = self.inner.as_raw_fd();
        let (addr, len) = sys::sockaddr(&addr);
        let n = self.source.io(Direction::Write, self.shared.write_limit(), timeout_error, || {
            sys::send_to(fd, buf, SEND_FLAGS, &addr, len)
        })?;
        crate::coop::tick_bytes(n);
        Ok(n)
    }

    /// Sets the default destination and the only source datagrams are received from, like
    /// [`std::net::UdpSocket::connect`].
    ///
    /// ```
    /// use green::net::UdpSocket;
    /// let a = UdpSocket::bind("127.0.0.1:0")?;
    /// let b = UdpSocket::bind("127.0.0.1:0")?;
    /// a.connect(b.local_addr()?)?;
    /// assert_eq!(a.peer_addr()?, b.local_addr()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connect<A: ToSocketAddrs>(&self, addr: A) -> io::Result<()> {
        each_addr(addr, |a| self.inner.connect(a))
    }

    /// Sends to the connected peer, like [`std::net::UdpSocket::send`].
    ///
    /// ```
    /// use green::net::UdpSocket;
    ///
    /// green::run(|| {
    ///     let a = UdpSocket::bind("127.0.0.1:0")?;
    ///     let b = UdpSocket::bind("127.0.0.1:0")?;
    ///     a.connect(b.local_addr()?)?;
    ///     b.connect(a.local_addr()?)?;
    ///     a.send(b"ping")?;
    ///     let mut buf = [0; 8];
    ///     assert_eq!(b.recv(&mut buf)?, 4);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
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

    /// Receives from the connected peer, parking until a datagram arrives, like
    /// [`std::net::UdpSocket::recv`].
    ///
    /// # Errors
    ///
    /// Std's. With a read timeout, a receive that waited that long is `WouldBlock`. When the
    /// peer's host answered an earlier send with "port unreachable" (nothing bound there), the
    /// next `recv` or `send` fails with `ConnectionRefused`, once, as with std on Linux: a
    /// client that retransmits counts it as a failed attempt (or gives up on that server) and
    /// goes on; the socket still works.
    ///
    /// Once the socket is shut down for reading (UDP has no `shutdown` method: through the raw
    /// fd, as `libc::shutdown` or socket2's `SockRef::shutdown` do it, say to stop a thread
    /// that waits here), receives return what is queued and then 0 at once, parked or not, as
    /// std's do; `recv_from` and `peek_from` then fail with `InvalidInput`, as std's do (with
    /// no datagram there is no sender).
    ///
    /// ```
    /// use std::io::ErrorKind;
    /// use std::time::Duration;
    /// use green::net::UdpSocket;
    ///
    /// green::run(|| {
    ///     let nobody = UdpSocket::bind("127.0.0.1:0")?.local_addr()?; // bound, then closed
    ///     let socket = UdpSocket::bind("127.0.0.1:0")?;
    ///     socket.connect(nobody)?;
    ///     socket.set_read_timeout(Some(Duration::from_secs(5)))?;
    ///     socket.send(b"request")?;
    ///     let mut buf = [0; 8];
    ///     assert_eq!(socket.recv(&mut buf).unwrap_err().kind(), ErrorKind::ConnectionRefused);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// ```
    /// use green::net::UdpSocket;
    ///
    /// green::run(|| {
    ///     let socket = UdpSocket::bind("127.0.0.1:0")?;
    ///     socket.connect(socket.local_addr()?)?;
    ///     socket.send(b"loop")?;
    ///     let mut buf = [0; 8];
    ///     assert_eq!(socket.recv(&mut buf)?, 4);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let fd = self.inner.as_raw_fd();
        let mut tries = 0;
        let n = self.source.io(Direction::Read, self.shared.read_limit(), timeout_error, || {
            self.unless_shut(sys::recv(fd, buf, libc::MSG_DONTWAIT), &mut tries, || Ok(0))
        })?;
        crate::coop::tick_bytes(n);
        Ok(n)
    }

    /// Like [`recv`](UdpSocket::recv), but leaves the datagram queued, like
    /// [`std::net::UdpSocket::peek`].
    ///
    /// ```
    /// use green::net::UdpSocket;
    ///
    /// green::run(|| {
    ///     let socket = UdpSocket::bind("127.0.0.1:0")?;
    ///     socket.connect(socket.local_addr()?)?;
    ///     socket.send(b"p")?;
    ///     let mut buf = [0; 8];
    ///     assert_eq!(socket.peek(&mut buf)?, 1);
    ///     assert_eq!(socket.recv(&mut buf)?, 1);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        let fd = self.inner.as_raw_fd();
        let mut tries = 0;
        let n = self.source.io(Direction::Read, self.shared.read_limit(), timeout_error, || {
            self.unless_shut(sys::recv(fd, buf, libc::MSG_PEEK | libc::MSG_DONTWAIT), &mut tries, || Ok(0))
        })?;
        crate::coop::tick_bytes(n);
        Ok(n)
    }

    /// The connected peer's address, like [`std::net::UdpSocket::peer_addr`].
    ///
    /// ```
    /// let socket = green::net::UdpSocket::bind("127.0.0.1:0")?;
    /// assert!(socket.peer_addr().is_err()); // not connected
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }

    /// The local address, like [`std::net::UdpSocket::local_addr`].
    ///
    /// ```
    /// let socket = green::net::UdpSocket::bind("127.0.0.1:0")?;
    /// assert!(socket.local_addr()?.ip().is_loopback());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// A new handle to the same socket, like [`std::net::UdpSocket::try_clone`]; timeouts are
    /// shared.
    ///
    /// ```
    /// let socket = green::net::UdpSocket::bind("127.0.0.1:0")?;
    /// let clone = socket.try_clone()?;
    /// assert_eq!(socket.local_addr()?, clone.local_addr()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_clone(&self) -> io::Result<UdpSocket> {
        Ok(UdpSocket::from_nonblocking(self.inner.try_clone()?, self.shared.share()))
    }

    /// Sets how long a receive may wait. One that waited that long fails with kind
    /// [`WouldBlock`](io::ErrorKind::WouldBlock), as std's does on Unix. See
    /// [`std::net::UdpSocket::set_read_timeout`].
    ///
    /// The timeout is the socket's in the kernel too (`SO_RCVTIMEO`, which std sees after
    /// `into_std`), but calls here read green's copy of it, which only the handles made by
    /// [`try_clone`](UdpSocket::try_clone) share. A handle converted from std separately (from a
    /// std `try_clone`, or a dup'd fd) has its own copy: it neither sees this timeout nor
    /// reports it in `read_timeout`. Make clones with green's `try_clone` to share it.
    ///
    /// ```
    /// use std::io::ErrorKind;
    /// use std::time::Duration;
    ///
    /// green::run(|| {
    ///     let socket = green::net::UdpSocket::bind("127.0.0.1:0")?;
    ///     socket.set_read_timeout(Some(Duration::from_millis(5)))?;
    ///     let err = socket.recv_from(&mut [0; 8]).unwrap_err();
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

    /// Sets how long a send may wait; see [`set_read_timeout`](UdpSocket::set_read_timeout).
    ///
    /// ```
    /// use std::time::Duration;
    /// let socket = green::net::UdpSocket::bind("127.0.0.1:0")?;
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
    /// let socket = green::net::UdpSocket::bind("127.0.0.1:0")?;
    /// assert_eq!(socket.read_timeout()?, None);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.shared.read())
    }

    /// The write timeout.
    ///
    /// ```
    /// let socket = green::net::UdpSocket::bind("127.0.0.1:0")?;
    /// assert_eq!(socket.write_timeout()?, None);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.shared.write())
    }

    /// Sets `SO_BROADCAST`, like [`std::net::UdpSocket::set_broadcast`].
    ///
    /// ```
    /// let socket = green::net::UdpSocket::bind("127.0.0.1:0")?;
    /// socket.set_broadcast(true)?;
    /// assert!(socket.broadcast()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_broadcast(&self, broadcast: bool) -> io::Result<()> {
        self.inner.set_broadcast(broadcast)
    }

    /// Gets `SO_BROADCAST`.
    ///
    /// ```
    /// let socket = green::net::UdpSocket::bind("127.0.0.1:0")?;
    /// assert!(!socket.broadcast()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn broadcast(&self) -> io::Result<bool> {
        self.inner.broadcast()
    }

    /// Sets `IP_TTL`, like [`std::net::UdpSocket::set_ttl`].
    ///
    /// ```
    /// let socket = green::net::UdpSocket::bind("127.0.0.1:0")?;
    /// socket.set_ttl(7)?;
    /// assert_eq!(socket.ttl()?, 7);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.inner.set_ttl(ttl)
    }

    /// Gets `IP_TTL`.
    ///
    /// ```
    /// let socket = green::net::UdpSocket::bind("127.0.0.1:0")?;
    /// assert!(socket.ttl()? > 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn ttl(&self) -> io::Result<u32> {
        self.inner.ttl()
    }

    /// Joins an IPv4 multicast group, like [`std::net::UdpSocket::join_multicast_v4`].
    ///
    /// ```
    /// use std::net::Ipv4Addr;
    /// let socket = green::net::UdpSocket::bind("127.0.0.1:0")?;
    /// // Whether it works depends on the machine's interfaces; either way it answers at once.
    /// let _joined = socket.join_multicast_v4(&Ipv4Addr::new(239, 255, 0, 1), &Ipv4Addr::LOCALHOST);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn join_multicast_v4(&self, multiaddr: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.inner.join_multicast_v4(multiaddr, interface)
    }

    /// Leaves an IPv4 multicast group, like [`std::net::UdpSocket::leave_multicast_v4`].
    ///
    /// ```
    /// use std::net::Ipv4Addr;
    /// let socket = green::net::UdpSocket::bind("127.0.0.1:0")?;
    /// // Leaving a group never joined is an error.
    /// assert!(socket.leave_multicast_v4(&Ipv4Addr::new(239, 255, 0, 1), &Ipv4Addr::LOCALHOST).is_err());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn leave_multicast_v4(&self, multiaddr: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.inner.leave_multicast_v4(multiaddr, interface)
    }

    /// Joins an IPv6 multicast group, like [`std::net::UdpSocket::join_multicast_v6`].
    ///
    /// ```
    /// use std::net::Ipv6Addr;
    /// if let Ok(socket) = green::net::UdpSocket::bind("[::1]:0") {
    ///     // Interface 1, the loopback on Linux: the membership report stays on this machine.
    ///     let _ = socket.join_multicast_v6(&Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x123), 1);
    /// }
    /// ```
    pub fn join_multicast_v6(&self, multiaddr: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.inner.join_multicast_v6(multiaddr, interface)
    }

    /// Leaves an IPv6 multicast group, like [`std::net::UdpSocket::leave_multicast_v6`].
    ///
    /// ```
    /// use std::net::Ipv6Addr;
    /// if let Ok(socket) = green::net::UdpSocket::bind("[::1]:0") {
    ///     assert!(socket.leave_multicast_v6(&Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x123), 0).is_err());
    /// }
    /// ```
    pub fn leave_multicast_v6(&self, multiaddr: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.inner.leave_multicast_v6(multiaddr, interface)
    }

    /// Sets `IP_MULTICAST_LOOP`, like [`std::net::UdpSocket::set_multicast_loop_v4`].
    ///
    /// ```
    /// let socket = green::net::UdpSocket::bind("127.0.0.1:0")?;
    /// socket.set_multicast_loop_v4(false)?;
    /// assert!(!socket.multicast_loop_v4()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_multicast_loop_v4(&self, on: bool) -> io::Result<()> {
        self.inner.set_multicast_loop_v4(on)
    }

    /// Gets `IP_MULTICAST_LOOP`.
    ///
    /// ```
    /// let socket = green::net::UdpSocket::bind("127.0.0.1:0")?;
    /// assert!(socket.multicast_loop_v4()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn multicast_loop_v4(&self) -> io::Result<bool> {
        self.inner.multicast_loop_v4()
    }

    /// Sets `IP_MULTICAST_TTL`, like [`std::net::UdpSocket::set_multicast_ttl_v4`].
    ///
    /// ```
    /// let socket = green::net::UdpSocket::bind("127.0.0.1:0")?;
    /// socket.set_multicast_ttl_v4(4)?;
    /// assert_eq!(socket.multicast_ttl_v4()?, 4);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_multicast_ttl_v4(&self, ttl: u32) -> io::Result<()> {
        self.inner.set_multicast_ttl_v4(ttl)
    }

    /// Gets `IP_MULTICAST_TTL`.
    ///
    /// ```
    /// let socket = green::net::UdpSocket::bind("127.0.0.1:0")?;
    /// assert_eq!(socket.multicast_ttl_v4()?, 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn multicast_ttl_v4(&self) -> io::Result<u32> {
        self.inner.multicast_ttl_v4()
    }

    /// Sets `IPV6_MULTICAST_LOOP`, like [`std::net::UdpSocket::set_multicast_loop_v6`].
    ///
    /// ```
    /// if let Ok(socket) = green::net::UdpSocket::bind("[::1]:0") {
    ///     socket.set_multicast_loop_v6(false).unwrap();
    ///     assert!(!socket.multicast_loop_v6().unwrap());
    /// }
    /// ```
    pub fn set_multicast_loop_v6(&self, on: bool) -> io::Result<()> {
        self.inner.set_multicast_loop_v6(on)
    }

    /// Gets `IPV6_MULTICAST_LOOP`.
    ///
    /// ```
    /// if let Ok(socket) = green::net::UdpSocket::bind("[::1]:0") {
    ///     assert!(socket.multicast_loop_v6().unwrap());
    /// }
    /// ```
    pub fn multicast_loop_v6(&self) -> io::Result<bool> {
        self.inner.multicast_loop_v6()
    }

    /// Moves the socket into or out of non-blocking mode, like
    /// [`std::net::UdpSocket::set_nonblocking`]. While it is on, a call that would wait returns at
    /// once with kind [`WouldBlock`](io::ErrorKind::WouldBlock) (`EAGAIN`) instead of parking (or,
    /// on a plain thread, blocking). As in std, the mode belongs to the socket: clones made with
    /// `try_clone` share it. The fd itself is non-blocking underneath either way; see `into_std`
    /// for what std gets back.
    ///
    /// ```
    /// use std::io::ErrorKind;
    ///
    /// let socket = green::net::UdpSocket::bind("127.0.0.1:0")?;
    /// socket.set_nonblocking(true)?;
    /// assert_eq!(socket.recv_from(&mut [0; 8]).unwrap_err().kind(), ErrorKind::WouldBlock);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.shared.set_nonblocking(nonblocking);
        Ok(())
    }

    /// Takes the pending socket error (`SO_ERROR`), like [`std::net::UdpSocket::take_error`].
    ///
    /// ```
    /// let socket = green::net::UdpSocket::bind("127.0.0.1:0")?;
    /// assert!(socket.take_error()?.is_none());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.inner.take_error()
    }

    /// `received`, unless it is the `WouldBlock` of a receive from a socket shut down for
    /// reading through its raw fd or another handle (UDP has no `shutdown` of its own): then
    /// `ended()` (see `unless_shut_down`). `tries` counts this call's refusals.
    fn unless_shut<T>(
        &self,
        received: io::Result<T>,
        tries: &mut u32,
        ended: impl FnOnce() -> io::Result<T>,
    ) -> io::Result<T> {
        unless_shut_down(received, &self.source, self.inner.as_raw_fd(), &self.shared, tries, ended)
    }

    /// Hands back the std socket, made blocking again, unless
    /// [`set_nonblocking(true)`](UdpSocket::set_nonblocking) is in effect: then it stays
    /// non-blocking, as std's socket in that mode would be. Its timeouts carry over. Clones
    /// made with `try_clone` share the blocking flag (it belongs to the socket): green sends and
    /// receives on them still never block (they pass `MSG_DONTWAIT`).
    ///
    /// ```
    /// let socket = green::net::UdpSocket::bind("127.0.0.1:0")?;
    /// let addr = socket.local_addr()?;
    /// assert_eq!(socket.into_std()?.local_addr()?, addr);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn into_std(self) -> io::Result<std::net::UdpSocket> {
        let UdpSocket { source, inner, shared, .. } = self;
        drop(source);
        if !shared.nonblocking() {
            inner.set_nonblocking(false)?;
        }
        Ok(inner)
    }
}

/// Makes the socket non-blocking underneath and takes over its timeouts, read once here:
/// from then on they are this handle's and its green clones' (see
/// [`set_read_timeout`](UdpSocket::set_read_timeout)). See
/// [Conversions](crate::net#conversions).
///
/// ```
/// let std_socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
/// let socket = green::net::UdpSocket::from(std_socket);
/// assert!(socket.local_addr()?.port() > 0);
/// # Ok::<(), std::io::Error>(())
/// ```
impl From<std::net::UdpSocket> for UdpSocket {
    fn from(inner: std::net::UdpSocket) -> UdpSocket {
        super::make_nonblocking(inner.set_nonblocking(true));
        let shared = Shared::from_std(inner.read_timeout(), inner.write_timeout());
        UdpSocket::from_nonblocking(inner, shared)
    }
}

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

fd_traits!(UdpSocket, std::net::UdpSocket);

/// The error of a `recv_from` or `peek_from` on a socket shut down for reading with nothing
/// queued: no datagram, so no sender's address. Std's kind: its `recv_from` fails so too.
fn no_sender_error<T>() -> io::Result<T> {
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        "the UDP socket is shut down for reading and no datagram is queued, so there is no sender's address to \
         return; stop receiving from it (recv returns 0 in this state)",
    ))
}

/// `recvfrom(2)` with `flags`, and the sender's address.
fn recv_from(fd: RawFd, buf: &mut [u8], flags: libc::c_int) -> io::Result<(usize, SocketAddr)> {
    let (n, addr, len) = sys::recv_from(fd, buf, flags)?;
    Ok((n, sys::socket_addr(&addr, len)?))
}
