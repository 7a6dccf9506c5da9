//! Unix domain sockets with blocking-looking calls, mirroring [`std::os::unix::net`]:
//! [`UnixListener`], [`UnixStream`], [`UnixDatagram`].
//!
//! They work like their TCP and UDP counterparts in [`crate::net`]: calls that would block park
//! the green thread; on a plain OS thread they block it, like std.
//!
//! ```
//! use std::io::{Read, Write};
//! use green::net::unix::UnixStream;
//!
//! green::run(|| {
//!     let (mut a, mut b) = UnixStream::pair()?;
//!     let echo = green::spawn(move || -> std::io::Result<()> {
//!         let mut buf = [0; 4];
//!         b.read_exact(&mut buf)?;
//!         b.write_all(&buf)
//!     });
//!     a.write_all(b"ping")?;
//!     let mut buf = [0; 4];
//!     a.read_exact(&mut buf)?;
//!     assert_eq!(&buf, b"ping");
//!     echo.join().unwrap()
//! })?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Retries that no readiness announces
//!
//! Two calls fail with `EAGAIN` on Linux where waiting for readiness would not help:
//!
//! - A stream `connect` to a listener whose backlog is full: the socket is not connecting, so
//!   nothing reports when the listener takes connections again.
//! - A datagram sent (`send_to`, `send_to_addr`) to a receiver whose queue is full, from a
//!   socket not connected to it: the sender is still reported writable (the kernel wakes
//!   senders only for the peer they are connected to), and each refused send frees its buffer,
//!   which raises a new writable edge. Parking on readiness would wake at once, again and
//!   again: a worker spinning at full CPU.
//!
//! Both retry after short sleeps (from 20 µs, doubling up to 16 ms, `RETRY_PAUSE`): a green
//! sleep on a green thread, the OS's sleep on a plain thread. A sender that outpaces its
//! receiver's queue (`net.unix.max_dgram_qlen`, 10 datagrams by default on Linux) so waits
//! some tens of µs at a time; `connect` the socket to its receiver where throughput matters:
//! then the kernel wakes it the moment there is room. A datagram send gives up at its
//! write timeout; one refused while the socket is *not* writable (its own send buffer is full)
//! parks on readiness as usual, and so does a connected `send`, whose peer's queue the kernel
//! does watch.
//!
//! # A stream write that no readiness ends
//!
//! A [`UnixStream`] write waiting for room (the peer does not read) is not woken by the kernel
//! when the sending half is shut down while it waits: by this side (`shutdown(Shutdown::Write)`,
//! through any handle) or by the peer (`shutdown(Shutdown::Read)`, its socket still open).
//! Linux then reports the socket neither writable nor hung up, where std's blocking write
//! returns `BrokenPipe` at once. So a waiting write also tries again now and then, after
//! pauses of 10 ms doubling to 500 ms: it returns `BrokenPipe` within that time of the
//! shutdown. TCP streams need no such tries: the kernel reports them writable once shut down
//! for writing.
//!
//! ```
//! use std::io::Write;
//! use std::net::Shutdown;
//! use std::time::Duration;
//!
//! green::run(|| {
//!     let (a, _b) = green::net::unix::UnixStream::pair()?;
//!     let writer = a.try_clone()?;
//!     // `_b` never reads: the write fills the buffers and waits.
//!     let w = green::spawn(move || (&writer).write_all(&vec![0; 8 << 20]));
//!     green::sleep(Duration::from_millis(20));
//!     a.shutdown(Shutdown::Write)?;
//!     assert_eq!(w.join().unwrap().unwrap_err().kind(), std::io::ErrorKind::BrokenPipe);
//!     Ok::<(), std::io::Error>(())
//! })?;
//! # Ok::<(), std::io::Error>(())
//! ```

mod datagram;
mod stream;

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::reactor::cannot_park;

pub use self::datagram::UnixDatagram;
pub use self::stream::{Incoming, UnixListener, UnixStream};
/// std's Unix socket address, which these sockets take and return.
pub use std::os::unix::net::SocketAddr;

/// First and longest pause between the retries of a call refused with `EAGAIN` that no
/// readiness will announce (see the module docs). A receiver that another green thread serves
/// drains a queue of 10 datagrams in microseconds: starting at 20 µs keeps a sender at about
/// std's pace (20,000 small datagrams through a 10-deep queue: 2.0 s with a 1 ms start, 90 ms
/// with this one, std 57 ms), and doubling to 16 ms bounds the cost of a long wait to about 60
/// attempts a second, and the extra latency once there is room to 16 ms.
const RETRY_PAUSE: (Duration, Duration) = (Duration::from_micros(20), Duration::from_millis(16));

/// Sleeps `pause` before such a retry, or less if the caller's `green::timeout` deadline comes
/// first (the caller then returns its timeout error: a socket call does not unwind to it). A
/// green thread parks, a plain thread sleeps (even while unwinding, as std's blocking call
/// would wait). False, without sleeping, where the caller may not wait (a green thread
/// unwinding, or a worker's own stack: rule 3 of docs/design.md; see [`cannot_park`]), or once
/// that deadline has passed: the caller returns its error instead.
fn pause_before_retry(pause: Duration) -> bool {
    let now = Instant::now();
    let until = crate::park::effective_deadline(Some(now + pause)).unwrap_or(now + pause);
    if cannot_park().is_some() || until <= now {
        return false;
    }
    crate::time::pause_until(until);
    true
}

/// The error of a retried call that gave up because the caller may not wait (`why`): std's
/// kind for a call that would block, with the reason and the kernel's refusal.
fn cannot_wait_error(why: &str, refused: &io::Error) -> io::Error {
    io::Error::new(io::ErrorKind::WouldBlock, format!("{why} (the kernel said: {refused})"))
}

/// The bytes of a path, as a `sockaddr_un` wants them.
fn path_bytes(path: &Path) -> &[u8] {
    path.as_os_str().as_bytes()
}

/// `path`, checked as `connect` and `send_to` check it, for the calls that hand it to std:
/// a path too long for `sun_path` gets an error that says how long it is and what to do,
/// where std's says only that it must be shorter than `SUN_LEN`.
fn checked_path(path: &Path) -> io::Result<&Path> {
    crate::net::sys::sockaddr_un(path_bytes(path), false).map(|_| path)
}

/// The bytes of a std Unix address, and whether it is an abstract name.
fn addr_bytes(addr: &SocketAddr) -> io::Result<(&[u8], bool)> {
    if let Some(path) = addr.as_pathname() {
        return Ok((path_bytes(path), false));
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        #[cfg(target_os = "android")]
        use std::os::android::net::SocketAddrExt;
        #[cfg(target_os = "linux")]
        use std::os::linux::net::SocketAddrExt;
        if let Some(name) = addr.as_abstract_name() {
            return Ok((name, true));
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        "green: an unnamed Unix socket address cannot be connected or sent to: bind the peer to a path or an abstract name",
    ))
}

/// The std address of the `sockaddr_un` the kernel wrote into `storage` (`len` bytes), as
/// std's `recv_from` makes it. Std has no constructor from raw parts, so it is rebuilt from
/// its parts: a path, an abstract name, or nothing (an unnamed sender).
fn std_addr(storage: &libc::sockaddr_storage, len: libc::socklen_t) -> io::Result<SocketAddr> {
    let base = std::mem::offset_of!(libc::sockaddr_un, sun_path);
    let len = len as usize;
    // Linux writes no address at all (length 0) for a datagram from an unnamed socket.
    if len <= base {
        return Ok(unnamed());
    }
    if storage.ss_family as libc::c_int != libc::AF_UNIX {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("green: a socket address of family {}, not Unix ({})", storage.ss_family, libc::AF_UNIX),
        ));
    }
    // SAFETY: `sockaddr_storage` is at least as large and as aligned as every sockaddr type,
    // `sockaddr_un` included, so the reference is in bounds and aligned; both are plain data,
    // and `storage` is fully initialized (made zeroed by `recv_from`, then written by the
    // kernel). The family check makes the reading meaningful, not safe.
    let addr = unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_un>() };
    let path = &addr.sun_path[..(len - base).min(addr.sun_path.len())];
    // SAFETY: c_char and u8 have the same size and alignment, and every value is a valid u8.
    let bytes = unsafe { std::slice::from_raw_parts(path.as_ptr().cast::<u8>(), path.len()) };
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let [0, name @ ..] = bytes {
        #[cfg(target_os = "android")]
        use std::os::android::net::SocketAddrExt;
        #[cfg(target_os = "linux")]
        use std::os::linux::net::SocketAddrExt;
        return SocketAddr::from_abstract_name(name);
    }
    // A pathname, counted with its terminating NUL (if the kernel kept one).
    let path = bytes.split(|&b| b == 0).next().unwrap_or_default();
    SocketAddr::from_pathname(OsStr::from_bytes(path)).or_else(|refused| full_length_path(storage, len).ok_or(refused))
}

/// The std address of a path that fills all of `sun_path`, with no room for a NUL: a C program
/// can bind one, and std's `recv_from` reports it, but `SocketAddr::from_pathname` refuses it.
/// Std's `peer_addr` builds such an address too, so a socket that is not bound is connected
/// to the address the kernel reported (`storage`, `len` bytes) for the time of that call (a
/// datagram connect only records the destination). The kernel counts a NUL it added past
/// `sun_path` in `len`; `connect` takes no more than a `sockaddr_un`. `None` if that fails (the
/// socket file gone, no permission to write it).
fn full_length_path(storage: &libc::sockaddr_storage, len: usize) -> Option<SocketAddr> {
    let len = len.min(size_of::<libc::sockaddr_un>()) as libc::socklen_t;
    let probe = std::os::unix::net::UnixDatagram::unbound().ok()?;
    // SAFETY: the first `len` bytes of `storage` (no more than a `sockaddr_un`, so within the
    // storage) are the Unix address the kernel wrote there in `recv_from`, std_addr's caller;
    // `probe` is an open socket. (std's `connect` would refuse the path as too long, as
    // `from_pathname` does.)
    let rc = unsafe {
        libc::connect(std::os::fd::AsRawFd::as_raw_fd(&probe), (storage as *const libc::sockaddr_storage).cast(), len)
    };
    if rc != 0 {
        return None;
    }
    probe.peer_addr().ok()
}

/// The unnamed address. An empty pathname makes one (std counts an address with no path
/// bytes as unnamed); should a std version ever see that differently, an unbound socket's
/// own address is one too.
fn unnamed() -> SocketAddr {
    static UNNAMED: OnceLock<SocketAddr> = OnceLock::new();
    UNNAMED
        .get_or_init(|| {
            SocketAddr::from_pathname("")
                .ok()
                .filter(SocketAddr::is_unnamed)
                .or_else(|| std::os::unix::net::UnixDatagram::unbound().and_then(|s| s.local_addr()).ok())
                .expect(internal_error!("could not make an unnamed Unix socket address"))
        })
        .clone()
}
