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
//! A stream `connect` to a listener whose backlog is full fails with `EAGAIN` on Linux
//! rather than reporting readiness later, so `UnixStream::connect` retries it after short
//! sleeps (from 1 ms, doubling up to 16 ms) until the listener takes it.

mod datagram;
mod stream;

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

pub use self::datagram::UnixDatagram;
pub use self::stream::{Incoming, UnixListener, UnixStream};

/// First and longest pause between the retries of a stream connect refused with `EAGAIN`.
const CONNECT_RETRY: (Duration, Duration) = (Duration::from_millis(1), Duration::from_millis(16));

/// The bytes of a path, as a `sockaddr_un` wants them.
fn path_bytes(path: &Path) -> &[u8] {
    path.as_os_str().as_bytes()
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
    Err(io::Error::new(io::ErrorKind::InvalidInput, "green: cannot connect to an unnamed Unix socket address"))
}
