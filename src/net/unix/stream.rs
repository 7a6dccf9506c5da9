//! Unix stream sockets: [`UnixListener`] and [`UnixStream`].

use std::fmt;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use super::{RETRY_PAUSE, addr_bytes, cannot_park, cannot_wait_error, checked_path, path_bytes, pause_before_retry};
use crate::deadline::elapsed_error;
use crate::net::tcp::fd_traits;
use crate::net::{LISTEN_BACKLOG, SEND_FLAGS, Shared, sys, timeout_error, unless_shut_down};
use crate::reactor::{Direction, Source};

/// A Unix stream socket server, like [`std::os::unix::net::UnixListener`]:
/// [`accept`](UnixListener::accept) parks the green thread until a connection comes in.
///
/// ```
/// use green::net::unix::{UnixListener, UnixStream};
///
/// let dir = std::env::temp_dir().join(format!("green-doc-listener-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let path = dir.join("sock");
/// # let _ = std::fs::remove_file(&path);
/// green::run(|| {
///     let listener = UnixListener::bind(&path)?;
///     let client = green::spawn({
///         let path = path.clone();
///         move || UnixStream::connect(path).map(drop)
///     });
///     let (_stream, _addr) = listener.accept()?;
///     client.join().unwrap()
/// })?;
/// std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct UnixListener {
    source: Source,
    inner: std::os::unix::net::UnixListener,
    /// Shared by clones: the non-blocking flag.
    shared: Shared,
}

impl UnixListener {
    /// Creates a listener bound to `path`, like [`std::os::unix::net::UnixListener::bind`],
    /// with a backlog of [`LISTEN_BACKLOG`](crate::net::LISTEN_BACKLOG).
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("green-doc-bind-{}", std::process::id()));
    /// # let _ = std::fs::remove_file(&path);
    /// let listener = green::net::unix::UnixListener::bind(&path)?;
    /// assert_eq!(listener.local_addr()?.as_pathname(), Some(path.as_path()));
    /// std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixListener> {
        UnixListener::listen(std::os::unix::net::UnixListener::bind(checked_path(path.as_ref())?)?)
    }

    /// Creates a listener bound to `addr` (a path, or on Linux an abstract name), like
    /// [`std::os::unix::net::UnixListener::bind_addr`].
    ///
    /// ```
    /// # #[cfg(target_os = "linux")] {
    /// use std::os::linux::net::SocketAddrExt;
    /// use std::os::unix::net::SocketAddr;
    ///
    /// let name = format!("green-doc-abstract-{}", std::process::id());
    /// let addr = SocketAddr::from_abstract_name(name.as_bytes())?;
    /// let listener = green::net::unix::UnixListener::bind_addr(&addr)?;
    /// assert_eq!(listener.local_addr()?.as_abstract_name(), Some(name.as_bytes()));
    /// # }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind_addr(addr: &SocketAddr) -> io::Result<UnixListener> {
        UnixListener::listen(std::os::unix::net::UnixListener::bind_addr(addr)?)
    }

    fn listen(inner: std::os::unix::net::UnixListener) -> io::Result<UnixListener> {
        sys::listen(inner.as_fd(), LISTEN_BACKLOG)?;
        inner.set_nonblocking(true)?;
        Ok(UnixListener::from_nonblocking(inner, Shared::default()))
    }

    fn from_nonblocking(inner: std::os::unix::net::UnixListener, shared: Shared) -> UnixListener {
        UnixListener { source: Source::new(inner.as_raw_fd()), inner, shared }
    }

    /// Accepts a connection, parking until one comes in, like
    /// [`std::os::unix::net::UnixListener::accept`]. The stream is non-blocking and
    /// close-on-exec from the start.
    ///
    /// A listener shut down through its raw fd (`libc::shutdown`, socket2's
    /// `SockRef::shutdown`: a way to stop an accept loop) fails with `EINVAL` at once, parked
    /// or not, as std's does.
    ///
    /// ```
    /// # #[cfg(target_os = "linux")] {
    /// use std::os::linux::net::SocketAddrExt;
    /// use std::os::unix::net::SocketAddr;
    /// use green::net::unix::{UnixListener, UnixStream};
    ///
    /// green::run(|| {
    ///     let addr = SocketAddr::from_abstract_name(format!("green-doc-accept-{}", std::process::id()))?;
    ///     let listener = UnixListener::bind_addr(&addr)?;
    ///     let client = UnixStream::connect_addr(&addr)?;
    ///     let (server, _) = listener.accept()?;
    ///     assert_eq!(server.local_addr()?.as_abstract_name(), addr.as_abstract_name());
    ///     drop(client);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let mut tries = 0;
        let (fd, _) = self.source.io(Direction::Read, self.shared.read_limit(), timeout_error, || {
            // Shut down through the raw fd: std's blocking accept fails with `EINVAL` at once,
            // where the non-blocking one says `EAGAIN` for good.
            let accepted = sys::accept(self.inner.as_fd(), None);
            unless_shut_down(accepted, &self.source, self.inner.as_raw_fd(), &self.shared, &mut tries, || {
                Err(io::Error::from_raw_os_error(libc::EINVAL))
            })
        })?;
        let stream = std::os::unix::net::UnixStream::from(fd);
        let addr = stream.peer_addr()?;
        Ok((UnixStream::from_nonblocking(stream, Shared::default()), addr))
    }

    /// An iterator over incoming connections; it never returns `None`. See
    /// [`std::os::unix::net::UnixListener::incoming`].
    ///
    /// ```no_run
    /// use std::io::Write;
    ///
    /// green::run(|| {
    ///     let listener = green::net::unix::UnixListener::bind("/tmp/green-example.sock")?;
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

    /// The address the listener is bound to.
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("green-doc-local-{}", std::process::id()));
    /// # let _ = std::fs::remove_file(&path);
    /// let listener = green::net::unix::UnixListener::bind(&path)?;
    /// assert!(listener.local_addr()?.as_pathname().is_some());
    /// std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// A new handle to the same listener; green threads may accept on both.
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("green-doc-lclone-{}", std::process::id()));
    /// # let _ = std::fs::remove_file(&path);
    /// let listener = green::net::unix::UnixListener::bind(&path)?;
    /// let _clone = listener.try_clone()?;
    /// std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_clone(&self) -> io::Result<UnixListener> {
        Ok(UnixListener::from_nonblocking(self.inner.try_clone()?, self.shared.share()))
    }

    /// Moves the socket into or out of non-blocking mode, like
    /// [`std::os::unix::net::UnixListener::set_nonblocking`]. While it is on, a call that would
    /// wait returns at once with kind [`WouldBlock`](io::ErrorKind::WouldBlock) (`EAGAIN`) instead
    /// of parking (or, on a plain thread, blocking). As in std, the mode belongs to the socket:
    /// clones made with `try_clone` share it. The fd itself is non-blocking underneath either way;
    /// see `into_std` for what std gets back.
    ///
    /// ```
    /// use std::io::ErrorKind;
    ///
    /// let path = std::env::temp_dir().join(format!("green-doc-lnonblock-{}", std::process::id()));
    /// # let _ = std::fs::remove_file(&path);
    /// let listener = green::net::unix::UnixListener::bind(&path)?;
    /// listener.set_nonblocking(true)?;
    /// assert_eq!(listener.accept().unwrap_err().kind(), ErrorKind::WouldBlock);
    /// std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.shared.set_nonblocking(nonblocking);
        Ok(())
    }

    /// Takes the pending socket error (`SO_ERROR`).
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("green-doc-lerr-{}", std::process::id()));
    /// # let _ = std::fs::remove_file(&path);
    /// let listener = green::net::unix::UnixListener::bind(&path)?;
    /// assert!(listener.take_error()?.is_none());
    /// std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.inner.take_error()
    }

    /// Hands back the std listener, made blocking again, unless
    /// [`set_nonblocking(true)`](UnixListener::set_nonblocking) is in effect: then it stays
    /// non-blocking, as std's listener in that mode would be. Clones made with
    /// [`try_clone`](UnixListener::try_clone) share the blocking flag (it belongs to the socket,
    /// not the handle), and `accept4` has no flag to override it: an `accept` on them from a
    /// green thread afterwards would block its worker.
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("green-doc-lstd-{}", std::process::id()));
    /// # let _ = std::fs::remove_file(&path);
    /// let listener = green::net::unix::UnixListener::bind(&path)?;
    /// let std_listener = listener.into_std()?;
    /// assert!(std_listener.local_addr()?.as_pathname().is_some());
    /// std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixListener> {
        let UnixListener { source, inner, shared, .. } = self;
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
/// let path = std::env::temp_dir().join(format!("green-doc-lfrom-{}", std::process::id()));
/// # let _ = std::fs::remove_file(&path);
/// let std_listener = std::os::unix::net::UnixListener::bind(&path)?;
/// let listener = green::net::unix::UnixListener::from(std_listener);
/// assert!(listener.local_addr()?.as_pathname().is_some());
/// std::fs::remove_file(&path)?;
/// # Ok::<(), std::io::Error>(())
/// ```
impl From<std::os::unix::net::UnixListener> for UnixListener {
    fn from(inner: std::os::unix::net::UnixListener) -> UnixListener {
        crate::net::make_nonblocking(inner.set_nonblocking(true));
        UnixListener::from_nonblocking(inner, Shared::default())
    }
}

impl fmt::Debug for UnixListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

/// An iterator over the connections of a [`UnixListener`]; see [`UnixListener::incoming`].
///
/// ```
/// use green::net::unix::{UnixListener, UnixStream};
///
/// let path = std::env::temp_dir().join(format!("green-doc-incoming-{}", std::process::id()));
/// # let _ = std::fs::remove_file(&path);
/// let listener = UnixListener::bind(&path)?;
/// let _client = UnixStream::connect(&path)?; // outside a runtime: like std
/// let first = listener.incoming().next().unwrap()?;
/// assert!(first.peer_addr()?.is_unnamed());
/// std::fs::remove_file(&path)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a UnixListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<UnixStream>;

    fn next(&mut self) -> Option<io::Result<UnixStream>> {
        Some(self.listener.accept().map(|(stream, _)| stream))
    }
}

/// It never ends: each `next` accepts a connection (or gives the error).
impl std::iter::FusedIterator for Incoming<'_> {}

/// `for stream in &listener`, as [`UnixListener::incoming`].
impl<'a> IntoIterator for &'a UnixListener {
    type Item = io::Result<UnixStream>;
    type IntoIter = Incoming<'a>;

    fn into_iter(self) -> Incoming<'a> {
        self.incoming()
    }
}

/// A Unix stream connection, like [`std::os::unix::net::UnixStream`]: [`Read`] and [`Write`]
/// (for `&UnixStream` too) park the green thread until the socket is ready.
///
/// ```
/// use std::io::{Read, Write};
///
/// green::run(|| {
///     let (mut a, mut b) = green::net::unix::UnixStream::pair()?;
///     a.write_all(b"hi")?;
///     drop(a);
///     let mut got = Vec::new();
///     b.read_to_end(&mut got)?;
///     assert_eq!(got, b"hi");
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct UnixStream {
    source: Source,
    inner: std::os::unix::net::UnixStream,
    shared: Shared,
}

impl UnixStream {
    /// Connects to the socket at `path`, like [`std::os::unix::net::UnixStream::connect`].
    /// If the listener's backlog is full it retries (see the [module docs](super)).
    ///
    /// ```
    /// use green::net::unix::{UnixListener, UnixStream};
    ///
    /// let path = std::env::temp_dir().join(format!("green-doc-connect-{}", std::process::id()));
    /// # let _ = std::fs::remove_file(&path);
    /// let listener = UnixListener::bind(&path)?;
    /// let stream = UnixStream::connect(&path)?;
    /// assert_eq!(stream.peer_addr()?.as_pathname(), Some(path.as_path()));
    /// drop(listener);
    /// std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connect<P: AsRef<Path>>(path: P) -> io::Result<UnixStream> {
        UnixStream::connect_bytes(path_bytes(path.as_ref()), false)
    }

    /// Connects to `addr` (a path, or on Linux an abstract name), like
    /// [`std::os::unix::net::UnixStream::connect_addr`].
    ///
    /// ```
    /// # #[cfg(target_os = "linux")] {
    /// use std::os::linux::net::SocketAddrExt;
    /// use std::os::unix::net::SocketAddr;
    /// use green::net::unix::{UnixListener, UnixStream};
    ///
    /// let addr = SocketAddr::from_abstract_name(format!("green-doc-caddr-{}", std::process::id()))?;
    /// let _listener = UnixListener::bind_addr(&addr)?;
    /// let stream = UnixStream::connect_addr(&addr)?;
    /// assert_eq!(stream.peer_addr()?.as_abstract_name(), addr.as_abstract_name());
    /// # }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connect_addr(addr: &SocketAddr) -> io::Result<UnixStream> {
        let (bytes, abstract_name) = addr_bytes(addr)?;
        UnixStream::connect_bytes(bytes, abstract_name)
    }

    fn connect_bytes(bytes: &[u8], abstract_name: bool) -> io::Result<UnixStream> {
        let (addr, len) = sys::sockaddr_un(bytes, abstract_name)?;
        let fd = sys::socket(libc::AF_UNIX, libc::SOCK_STREAM)?;
        let stream = UnixStream::from_nonblocking(std::os::unix::net::UnixStream::from(fd), Shared::default());
        let mut pause = RETRY_PAUSE.0;
        loop {
            crate::coop::tick_op();
            // SAFETY: `sockaddr_un` filled `addr` with a valid sockaddr of `len` bytes.
            match unsafe { sys::connect_raw(stream.inner.as_fd(), (&raw const addr).cast(), len) } {
                Ok(()) => return Ok(stream),
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => {
                    // The backlog is full, and nothing will say when it is not: retry soon.
                    if let Some(why) = cannot_park() {
                        return Err(cannot_wait_error(why, &e));
                    }
                    if !pause_before_retry(pause) {
                        // Inside `green::timeout`, its deadline: a connect's timeout error.
                        return Err(if crate::deadline::passed() { elapsed_error(io::ErrorKind::TimedOut) } else { e });
                    }
                    pause = (pause * 2).min(RETRY_PAUSE.1);
                }
                Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {
                    stream.source.io(Direction::Write, None, timeout_error, || match stream.inner.take_error()? {
                        Some(e) => Err(e),
                        None => stream.inner.peer_addr().map(drop).map_err(|e| match e.raw_os_error() {
                            Some(libc::ENOTCONN) => io::ErrorKind::WouldBlock.into(),
                            _ => e,
                        }),
                    })?;
                    return Ok(stream);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// A connected pair of streams, like [`std::os::unix::net::UnixStream::pair`].
    ///
    /// ```
    /// let (a, b) = green::net::unix::UnixStream::pair()?;
    /// assert!(a.peer_addr()?.is_unnamed() && b.local_addr()?.is_unnamed());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = std::os::unix::net::UnixStream::pair()?;
        a.set_nonblocking(true)?;
        b.set_nonblocking(true)?;
        Ok((UnixStream::from_nonblocking(a, Shared::default()), UnixStream::from_nonblocking(b, Shared::default())))
    }

    fn from_nonblocking(inner: std::os::unix::net::UnixStream, shared: Shared) -> UnixStream {
        UnixStream { source: Source::new(inner.as_raw_fd()), inner, shared }
    }

    /// The local address.
    ///
    /// ```
    /// let (a, _b) = green::net::unix::UnixStream::pair()?;
    /// assert!(a.local_addr()?.is_unnamed());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// The peer's address.
    ///
    /// ```
    /// let (a, _b) = green::net::unix::UnixStream::pair()?;
    /// assert!(a.peer_addr()?.is_unnamed());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }

    /// Shuts down the read half, the write half or both.
    ///
    /// A write that waits for room in the socket meanwhile returns `BrokenPipe` within half a
    /// second, not at once as std's; see
    /// [the module docs](super#a-stream-write-that-no-readiness-ends).
    ///
    /// ```
    /// use std::io::Read;
    /// use std::net::Shutdown;
    ///
    /// green::run(|| {
    ///     let (a, mut b) = green::net::unix::UnixStream::pair()?;
    ///     a.shutdown(Shutdown::Write)?;
    ///     assert_eq!(b.read(&mut [0; 4])?, 0);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.shutdown(how)
    }

    /// A new handle to the same connection; timeouts are shared.
    ///
    /// ```
    /// let (a, _b) = green::net::unix::UnixStream::pair()?;
    /// let clone = a.try_clone()?;
    /// assert!(clone.peer_addr()?.is_unnamed());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_clone(&self) -> io::Result<UnixStream> {
        Ok(UnixStream::from_nonblocking(self.inner.try_clone()?, self.shared.share()))
    }

    /// Sets how long a read may wait; one that waited that long fails with kind
    /// [`WouldBlock`](io::ErrorKind::WouldBlock), as std's does.
    ///
    /// The timeout is the socket's in the kernel too (`SO_RCVTIMEO`, which std sees after
    /// `into_std`), but calls here read green's copy of it, which only the handles made by
    /// [`try_clone`](UnixStream::try_clone) share. A handle converted from std separately (from a
    /// std `try_clone`, or a dup'd fd) has its own copy: it neither sees this timeout nor
    /// reports it in `read_timeout`. Make clones with green's `try_clone` to share it.
    ///
    /// ```
    /// use std::io::{ErrorKind, Read};
    /// use std::time::Duration;
    ///
    /// green::run(|| {
    ///     let (mut a, _b) = green::net::unix::UnixStream::pair()?;
    ///     a.set_read_timeout(Some(Duration::from_millis(5)))?;
    ///     assert_eq!(a.read(&mut [0; 4]).unwrap_err().kind(), ErrorKind::WouldBlock);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.inner.set_read_timeout(timeout)?;
        self.shared.set_read(timeout);
        Ok(())
    }

    /// Sets how long a write may wait; see [`set_read_timeout`](UnixStream::set_read_timeout).
    ///
    /// ```
    /// use std::time::Duration;
    /// let (a, _b) = green::net::unix::UnixStream::pair()?;
    /// a.set_write_timeout(Some(Duration::from_secs(2)))?;
    /// assert_eq!(a.write_timeout()?, Some(Duration::from_secs(2)));
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
    /// let (a, _b) = green::net::unix::UnixStream::pair()?;
    /// assert_eq!(a.read_timeout()?, None);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.shared.read())
    }

    /// The write timeout.
    ///
    /// ```
    /// let (a, _b) = green::net::unix::UnixStream::pair()?;
    /// assert_eq!(a.write_timeout()?, None);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.shared.write())
    }

    /// Reads without removing the data from the queue (`MSG_PEEK`), parking until there is some
    /// (or end of stream: `Ok(0)`), as [`TcpStream::peek`](crate::net::TcpStream::peek) does.
    /// Std has it too, not yet stable (`unix_socket_peek`).
    ///
    /// ```
    /// use std::io::{Read, Write};
    ///
    /// let (mut a, mut b) = green::net::unix::UnixStream::pair()?;
    /// a.write_all(b"abc")?;
    /// let mut buf = [0; 3];
    /// assert_eq!(b.peek(&mut buf)?, 3);
    /// b.read_exact(&mut buf)?; // still there
    /// assert_eq!(&buf, b"abc");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        let fd = self.inner.as_raw_fd();
        let n = self.source.io(Direction::Read, self.shared.read_limit(), timeout_error, || {
            sys::recv(fd, buf, libc::MSG_PEEK | libc::MSG_DONTWAIT)
        })?;
        crate::coop::tick_bytes(n);
        Ok(n)
    }

    /// Moves the socket into or out of non-blocking mode, like
    /// [`std::os::unix::net::UnixStream::set_nonblocking`]. While it is on, a call that would wait
    /// returns at once with kind [`WouldBlock`](io::ErrorKind::WouldBlock) (`EAGAIN`) instead of
    /// parking (or, on a plain thread, blocking). As in std, the mode belongs to the socket: clones
    /// made with `try_clone` share it. The fd itself is non-blocking underneath either way; see
    /// `into_std` for what std gets back.
    ///
    /// ```
    /// use std::io::{ErrorKind, Read};
    ///
    /// let (mut a, _b) = green::net::unix::UnixStream::pair()?;
    /// a.set_nonblocking(true)?;
    /// assert_eq!(a.read(&mut [0; 8]).unwrap_err().kind(), ErrorKind::WouldBlock);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.shared.set_nonblocking(nonblocking);
        Ok(())
    }

    /// Takes the pending socket error (`SO_ERROR`).
    ///
    /// ```
    /// let (a, _b) = green::net::unix::UnixStream::pair()?;
    /// assert!(a.take_error()?.is_none());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.inner.take_error()
    }

    /// Hands back the std stream, made blocking again, unless
    /// [`set_nonblocking(true)`](UnixStream::set_nonblocking) is in effect: then it stays
    /// non-blocking, as std's stream in that mode would be. Its timeouts carry over. Clones
    /// made with [`try_clone`](UnixStream::try_clone) share the blocking flag (it belongs to
    /// the socket): green reads and writes on them still never block (they pass
    /// `MSG_DONTWAIT`).
    ///
    /// ```
    /// let (a, _b) = green::net::unix::UnixStream::pair()?;
    /// let std_stream = a.into_std()?;
    /// assert!(std_stream.peer_addr()?.is_unnamed());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixStream> {
        let UnixStream { source, inner, shared, .. } = self;
        drop(source);
        if !shared.nonblocking() {
            inner.set_nonblocking(false)?;
        }
        Ok(inner)
    }

    fn read_inner(&self, buf: &mut [u8]) -> io::Result<usize> {
        let fd = self.inner.as_raw_fd();
        let n = self
            .source
            .io(Direction::Read, self.shared.read_limit(), timeout_error, || sys::recv(fd, buf, libc::MSG_DONTWAIT))?;
        crate::coop::tick_bytes(n);
        Ok(n)
    }

    fn read_vectored_inner(&self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        // As std's `readv`: no room at all returns 0 at once (see `TcpStream`'s).
        if bufs.iter().all(|b| b.is_empty()) {
            crate::coop::tick_op();
            return Ok(0);
        }
        let fd = self.inner.as_raw_fd();
        let n = self.source.io(Direction::Read, self.shared.read_limit(), timeout_error, || {
            sys::recv_vectored(fd, bufs, libc::MSG_DONTWAIT)
        })?;
        crate::coop::tick_bytes(n);
        Ok(n)
    }

    fn write_inner(&self, buf: &[u8]) -> io::Result<usize> {
        let fd = self.inner.as_raw_fd();
        let n =
            self.source.write_rechecked(self.shared.write_limit(), timeout_error, || sys::send(fd, buf, SEND_FLAGS))?;
        crate::coop::tick_bytes(n);
        Ok(n)
    }

    fn write_vectored_inner(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let fd = self.inner.as_raw_fd();
        let n = self
            .source
            .write_rechecked(self.shared.write_limit(), timeout_error, || sys::send_vectored(fd, bufs, SEND_FLAGS))?;
        crate::coop::tick_bytes(n);
        Ok(n)
    }
}

impl Read for UnixStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_inner(buf)
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.read_vectored_inner(bufs)
    }
}

impl Read for &UnixStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_inner(buf)
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.read_vectored_inner(bufs)
    }
}

impl Write for UnixStream {
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

impl Write for &UnixStream {
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
/// [`set_read_timeout`](UnixStream::set_read_timeout)). See
/// [Conversions](crate::net#conversions).
///
/// ```
/// let (a, _b) = std::os::unix::net::UnixStream::pair()?;
/// let a = green::net::unix::UnixStream::from(a);
/// assert!(a.peer_addr()?.is_unnamed());
/// # Ok::<(), std::io::Error>(())
/// ```
impl From<std::os::unix::net::UnixStream> for UnixStream {
    fn from(inner: std::os::unix::net::UnixStream) -> UnixStream {
        crate::net::make_nonblocking(inner.set_nonblocking(true));
        let shared = Shared::from_std(inner.read_timeout(), inner.write_timeout());
        UnixStream::from_nonblocking(inner, shared)
    }
}

impl fmt::Debug for UnixStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

fd_traits!(UnixListener, std::os::unix::net::UnixListener);
fd_traits!(UnixStream, std::os::unix::net::UnixStream);
