//! The raw socket calls `std` does not expose: sockets created non-blocking, `accept4`, a
//! larger listen backlog, `SO_REUSEPORT` before `bind`, `send`/`recv` and `sendto`/`recvfrom`
//! with flags, and the conversions between `SocketAddr` and `sockaddr`. Each is a thin safe
//! wrapper around one libc call.

use std::io;
use std::mem::{MaybeUninit, size_of};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::AtomicU8;
use std::sync::atomic::Ordering::Relaxed;

/// Turns a libc return value into an `io::Result`.
fn cvt(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 { Err(io::Error::last_os_error()) } else { Ok(rc) }
}

fn cvt_size(rc: libc::ssize_t) -> io::Result<usize> {
    if rc < 0 { Err(io::Error::last_os_error()) } else { Ok(rc as usize) }
}

/// A new socket, non-blocking and close-on-exec from the start.
pub(crate) fn socket(domain: libc::c_int, ty: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: socket has no memory-safety preconditions.
    let fd = cvt(unsafe { libc::socket(domain, ty | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: `fd` was just returned by socket, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The address family of `addr`.
pub(crate) fn domain(addr: &SocketAddr) -> libc::c_int {
    match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    }
}

/// Sets an integer socket option.
pub(crate) fn setsockopt_int(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: the option value points at a live c_int of the length passed.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&raw const value).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// Reads an integer socket option.
fn getsockopt_int(fd: BorrowedFd<'_>, level: libc::c_int, name: libc::c_int) -> io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: the option value points at a live c_int, and `len` holds its length.
    cvt(unsafe { libc::getsockopt(fd.as_raw_fd(), level, name, (&raw mut value).cast(), &mut len) })?;
    Ok(value)
}

/// `listen(2)`; on a listening socket it changes the backlog.
pub(crate) fn listen(fd: BorrowedFd<'_>, backlog: libc::c_int) -> io::Result<()> {
    // SAFETY: listen has no memory-safety preconditions.
    cvt(unsafe { libc::listen(fd.as_raw_fd(), backlog) }).map(drop)
}

/// A `sockaddr` for `addr`, in storage large enough for any family.
pub(crate) fn sockaddr(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain old data, for which all zeroes is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(a.ip().octets()) },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for every sockaddr type.
            unsafe { (&raw mut storage).cast::<libc::sockaddr_in>().write(sin) };
            size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr { s6_addr: a.ip().octets() },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: as above.
            unsafe { (&raw mut storage).cast::<libc::sockaddr_in6>().write(sin6) };
            size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// The `SocketAddr` in `storage` (filled by the kernel, `len` bytes).
pub(crate) fn socket_addr(storage: &libc::sockaddr_storage, len: libc::socklen_t) -> io::Result<SocketAddr> {
    let len = len as usize;
    match storage.ss_family as libc::c_int {
        libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a sockaddr_in, and it is long enough.
            let sin = unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Ok(SocketAddr::V4(SocketAddrV4::new(ip, u16::from_be(sin.sin_port))))
        }
        libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: the family says the storage holds a sockaddr_in6, and it is long enough.
            let sin6 = unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Ok(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        family => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "green: a socket address of family {family}, not IPv4 ({}) or IPv6 ({})",
                libc::AF_INET,
                libc::AF_INET6
            ),
        )),
    }
}

/// `bind(2)`.
pub(crate) fn bind(fd: BorrowedFd<'_>, addr: &SocketAddr) -> io::Result<()> {
    let (storage, len) = sockaddr(addr);
    // SAFETY: `storage` holds a valid sockaddr of `len` bytes.
    cvt(unsafe { libc::bind(fd.as_raw_fd(), (&raw const storage).cast(), len) }).map(drop)
}

/// `connect(2)` to `addr`.
///
/// # Safety
///
/// `addr` points to `len` readable bytes that hold a valid sockaddr.
pub(crate) unsafe fn connect_raw(
    fd: BorrowedFd<'_>,
    addr: *const libc::sockaddr,
    len: libc::socklen_t,
) -> io::Result<()> {
    // SAFETY: the caller passes a valid sockaddr of `len` bytes.
    cvt(unsafe { libc::connect(fd.as_raw_fd(), addr, len) }).map(drop)
}

/// `connect(2)` to an IP address.
pub(crate) fn connect(fd: BorrowedFd<'_>, addr: &SocketAddr) -> io::Result<()> {
    let (storage, len) = sockaddr(addr);
    // SAFETY: `sockaddr` filled `storage` with a valid sockaddr of `len` bytes.
    unsafe { connect_raw(fd, (&raw const storage).cast(), len) }
}

/// `accept4(2)`: the new socket is non-blocking and close-on-exec from the start; the peer's
/// address is written to `storage`.
pub(crate) fn accept(
    fd: BorrowedFd<'_>,
    storage: Option<&mut libc::sockaddr_storage>,
) -> io::Result<(OwnedFd, libc::socklen_t)> {
    let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let (addr, len_ptr) = match storage {
        Some(s) => (std::ptr::from_mut(s).cast::<libc::sockaddr>(), &raw mut len),
        None => (std::ptr::null_mut(), std::ptr::null_mut()),
    };
    // SAFETY: `addr` is null or points at storage of `len` bytes, which the kernel fills.
    let new = cvt(unsafe { libc::accept4(fd.as_raw_fd(), addr, len_ptr, libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC) })?;
    // SAFETY: `new` was just returned by accept4, and nothing else owns it.
    Ok((unsafe { OwnedFd::from_raw_fd(new) }, len))
}

/// `recv(2)` with `flags`.
pub(crate) fn recv(fd: RawFd, buf: &mut [u8], flags: libc::c_int) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of its length.
    cvt_size(unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), flags) })
}

/// `send(2)` with `flags`.
pub(crate) fn send(fd: RawFd, buf: &[u8], flags: libc::c_int) -> io::Result<usize> {
    // SAFETY: `buf` is valid for reads of its length.
    cvt_size(unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), flags) })
}

/// Whether the socket `fd` is shut down for reading, through whatever handle: `poll(2)`
/// reports `POLLRDHUP`, which a datagram socket or a listening socket reports for that alone (a
/// stream reports its peer's end of stream too). A failed `poll` counts as no.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn shut_for_reading(fd: RawFd) -> bool {
    let mut pollfd = libc::pollfd { fd, events: libc::POLLRDHUP, revents: 0 };
    // SAFETY: `pollfd` is a valid array of one element for the duration of the call.
    let rc = unsafe { libc::poll(&mut pollfd, 1, 0) };
    rc > 0 && pollfd.revents & libc::POLLRDHUP != 0
}

/// Elsewhere than Linux there is no `POLLRDHUP` to ask: never known.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn shut_for_reading(_fd: RawFd) -> bool {
    false
}

/// `recvfrom(2)` with `flags`: the bytes received, and the sender's address as the kernel
/// wrote it (`sockaddr_storage` holds any family's, `sockaddr_un` included) with its length.
pub(crate) fn recv_from(
    fd: RawFd,
    buf: &mut [u8],
    flags: libc::c_int,
) -> io::Result<(usize, libc::sockaddr_storage, libc::socklen_t)> {
    let mut addr = storage();
    let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `buf` is valid for writes of its length, and `addr` for writes of `len` bytes,
    // which the kernel fills (and says how many in `len`).
    let n = cvt_size(unsafe {
        libc::recvfrom(fd, buf.as_mut_ptr().cast(), buf.len(), flags, (&raw mut addr).cast(), &raw mut len)
    })?;
    Ok((n, addr, len))
}

/// A type that holds a `sockaddr` the kernel may read.
///
/// # Safety
///
/// Implementors are plain old data with every byte initialized wherever a value is made (each
/// is made zeroed, then filled): `send_to` hands the kernel `len` bytes of one.
pub(crate) unsafe trait SockAddr {}
// SAFETY: C structs of integers and byte arrays, made with `zeroed` in this module.
unsafe impl SockAddr for libc::sockaddr_storage {}
// SAFETY: as above.
unsafe impl SockAddr for libc::sockaddr_un {}

/// `sendto(2)` with `flags`, to the first `len` bytes of `addr` (at most its size).
pub(crate) fn send_to<A: SockAddr>(
    fd: RawFd,
    buf: &[u8],
    flags: libc::c_int,
    addr: &A,
    len: libc::socklen_t,
) -> io::Result<usize> {
    assert!(len as usize <= size_of::<A>(), internal_error!("a socket address longer than its storage"));
    // SAFETY: `buf` is valid for reads of its length, and `addr` for reads of `len` bytes
    // (checked above), all initialized (`SockAddr`); the kernel checks what they say.
    cvt_size(unsafe { libc::sendto(fd, buf.as_ptr().cast(), buf.len(), flags, std::ptr::from_ref(addr).cast(), len) })
}

/// `recvmsg(2)` into several buffers.
pub(crate) fn recv_vectored(fd: RawFd, bufs: &mut [io::IoSliceMut<'_>], flags: libc::c_int) -> io::Result<usize> {
    // `IoSliceMut` is guaranteed to be ABI compatible with `iovec` on Unix.
    let mut msg = msghdr(bufs.as_mut_ptr().cast(), bufs.len());
    // SAFETY: `msg` points at `bufs`, valid for writes for the call.
    cvt_size(unsafe { libc::recvmsg(fd, &mut msg, flags) })
}

/// How a stream's reads learn that they left the receive queue empty, which spares the next
/// read the system call that would only say `WouldBlock` (see "Drained reads" in
/// `reactor.rs`). One per `TcpStream`; a clone starts from its original's state.
///
/// A TCP read that comes back short (it took something, and less than one call can take into
/// its buffers: the kernel fills at most [`MAX_IOV`] slices and [`MAX_RW_COUNT`] bytes) found
/// the receive queue empty when the kernel stopped copying. A read that fills its buffers
/// cannot tell, so code that reads exact sizes (`read_exact` of a frame, a length prefix)
/// would pay a `WouldBlock` call before each wait. On Linux such a stream switches to
/// `recvmsg` with `TCP_INQ`, whose control message counts the bytes left: it does so whenever
/// a read that filled its buffers is followed by one that would block, and goes back to
/// plain `recv` (about 0.1 µs cheaper per read) after [`LEAVE_AFTER`] short reads in a row,
/// which need no count. The option is set on the socket once and stays on until `into_std`
/// hands the socket back to std and turns it off ([`StreamReads::restore`]); `into_raw_fd`
/// hands the fd over as it is, so a `recvmsg` with room for control data then gets a
/// `TCP_CM_INQ` message too.
///
/// The modes are hints: each read's flag comes from what its own call reported, whichever
/// mode chose the call. A flagged read can still have an error queued behind it (a reset
/// that came with the data): the reactor's events cover that, as for every flagged read.
#[derive(Debug)]
pub(crate) struct StreamReads {
    /// One of the states below, with [`INQ_SET`] once `TCP_INQ` is on for the socket.
    mode: AtomicU8,
}

/// Not TCP: a short read says nothing (a Unix socket stops at a message that carries fds,
/// SCTP at a message's end), and reads are never flagged.
const NOT_TCP: u8 = 0;
/// Plain `recv` for good, a short read flagged: `TCP_INQ` is refused (Linux before 4.18) or
/// not there.
const NO_INQ: u8 = 1;
/// Plain `recv`; a short read is flagged.
const SHORT: u8 = 2;
/// As [`SHORT`], after a read that filled its buffers.
const FILLED: u8 = 3;
/// `recvmsg` with `TCP_INQ`: a read that left 0 bytes behind is flagged. `INQ + k` counts `k`
/// short reads in a row.
const INQ: u8 = 4;
/// Short reads in a row after which a counting stream goes back to plain `recv`.
const LEAVE_AFTER: u8 = 8;
/// Flag beside the state: `TCP_INQ` is on for the socket, so counting needs no `setsockopt`.
const INQ_SET: u8 = 0x80;

impl StreamReads {
    /// The reads of a socket; `tcp` says whether it is a TCP one (see [`is_tcp`]).
    pub(crate) fn new(tcp: bool) -> StreamReads {
        StreamReads { mode: AtomicU8::new(if tcp { SHORT } else { NOT_TCP }) }
    }

    /// The reads of a clone of this stream (the same socket through another fd).
    pub(crate) fn for_clone(&self) -> StreamReads {
        StreamReads { mode: AtomicU8::new(self.mode.load(Relaxed)) }
    }

    /// Reads into `bufs` with `flags` (not `MSG_PEEK`: a peek leaves the queue as it was); the
    /// flag beside the count is true if the read took something and left the receive queue
    /// empty, by the rules above. `read_shut` turns true (for any clone) before the socket is
    /// shut down for reading, and is asked after the call: a read after such a shutdown is
    /// never flagged, its event having perhaps been dispatched already.
    pub(crate) fn recv(
        &self,
        fd: BorrowedFd<'_>,
        bufs: &mut [io::IoSliceMut<'_>],
        flags: libc::c_int,
        read_shut: impl FnOnce() -> bool,
    ) -> io::Result<(usize, bool)> {
        debug_assert_eq!(flags & libc::MSG_PEEK, 0, "a peek is not a read that drains");
        let mode = self.mode.load(Relaxed);
        let (state, set) = (mode & !INQ_SET, mode & INQ_SET);
        let room = bufs.iter().take(MAX_IOV).map(|b| b.len()).fold(0usize, usize::saturating_add).min(MAX_RW_COUNT);
        if state >= INQ {
            let (n, left) = recv_inq(fd, bufs, flags)?;
            if 0 < n {
                let shorts = if n < room { state - INQ + 1 } else { 0 };
                let next = if shorts == LEAVE_AFTER { SHORT } else { INQ + shorts };
                self.set(mode, next | set);
            }
            return Ok((n, 0 < n && left == Some(0) && !read_shut()));
        }
        let result = match bufs {
            [buf] => recv(fd.as_raw_fd(), buf, flags),
            _ => recv_vectored(fd.as_raw_fd(), bufs, flags),
        };
        if state == NOT_TCP {
            return result.map(|n| (n, false));
        }
        let n = match result {
            Ok(n) => n,
            Err(e) => {
                if state == FILLED && e.kind() == io::ErrorKind::WouldBlock {
                    self.set(mode, if set != 0 { INQ | set } else { inq_on(fd) });
                }
                return Err(e);
            }
        };
        let short = 0 < n && n < room;
        if state != NO_INQ && 0 < n {
            self.set(mode, if short { SHORT } else { FILLED } | set);
        }
        Ok((n, short && !read_shut()))
    }

    /// Turns `TCP_INQ` off again if this stream turned it on, for a socket handed back to std
    /// as green found it. A clone still reading through green then just gets no count, and
    /// its reads go unflagged (and so cost a call that would block) until it leaves counting.
    pub(crate) fn restore(&self, fd: BorrowedFd<'_>) -> io::Result<()> {
        if self.mode.load(Relaxed) & INQ_SET == 0 {
            return Ok(());
        }
        #[cfg(any(target_os = "linux", target_os = "android"))]
        setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_INQ, 0)?;
        let _ = fd;
        Ok(())
    }

    /// Stores `next` if it differs from `mode`, what was loaded: no store, and no cache line
    /// made dirty, while reads keep to one state.
    fn set(&self, mode: u8, next: u8) {
        if next != mode {
            self.mode.store(next, Relaxed);
        }
    }
}

/// Turns `TCP_INQ` on for `fd`: the mode its reads take next.
fn inq_on(fd: BorrowedFd<'_>) -> u8 {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        if setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_INQ, 1).is_ok() { INQ | INQ_SET } else { NO_INQ }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = fd;
        NO_INQ
    }
}

/// Room for one `int` control message, aligned for `cmsghdr`.
#[cfg(any(target_os = "linux", target_os = "android"))]
type InqControl = [u64; 4];
#[cfg(any(target_os = "linux", target_os = "android"))]
const _: () = assert!(size_of::<InqControl>() >= 24, "CMSG_SPACE(size_of::<c_int>()) on 64-bit Linux");

/// A `recvmsg` into `bufs` with room for the `TCP_CM_INQ` control message: the count read and
/// the bytes it left in the receive queue, if the kernel said. The kernel counts the peer's
/// FIN as a byte left, so a read with the FIN behind it is never flagged; a reset is not
/// counted.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn recv_inq(
    fd: BorrowedFd<'_>,
    bufs: &mut [io::IoSliceMut<'_>],
    flags: libc::c_int,
) -> io::Result<(usize, Option<libc::c_int>)> {
    let mut control: InqControl = [0; 4];
    // `IoSliceMut` is guaranteed to be ABI compatible with `iovec` on Unix.
    let mut msg = msghdr(bufs.as_mut_ptr().cast(), bufs.len());
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of_val(&control) as _;
    // SAFETY: `msg` points at `bufs` and `control`, both valid for writes for the call.
    let n = cvt_size(unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, flags) })?;
    if msg.msg_flags & libc::MSG_CTRUNC != 0 {
        return Ok((n, None));
    }
    let mut left = None;
    // SAFETY: `msg` is the header `recvmsg` just filled: its control pointer and length describe
    // `control`, holding `msg_controllen` bytes of control messages the kernel wrote;
    // CMSG_FIRSTHDR and CMSG_NXTHDR step only within that length, and a message's data is read
    // only if its `cmsg_len` covers an `int`.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            let c = &*cmsg;
            if c.cmsg_level == libc::IPPROTO_TCP
                && c.cmsg_type == libc::TCP_CM_INQ
                && c.cmsg_len as usize >= libc::CMSG_LEN(size_of::<libc::c_int>() as u32) as usize
            {
                left = Some(libc::CMSG_DATA(cmsg).cast::<libc::c_int>().read_unaligned());
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok((n, left))
}

/// Elsewhere no mode counts (`inq_on` never turns it on): a plain read that says nothing.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn recv_inq(
    fd: BorrowedFd<'_>,
    bufs: &mut [io::IoSliceMut<'_>],
    flags: libc::c_int,
) -> io::Result<(usize, Option<libc::c_int>)> {
    recv_vectored(fd.as_raw_fd(), bufs, flags).map(|n| (n, None))
}

/// The most bytes one `read`, `recv` or `recvmsg` moves on Linux (`MAX_RW_COUNT`: `INT_MAX`
/// rounded down to a page); larger requests come back short. Elsewhere, no smaller limit is
/// assumed than what `isize` allows.
#[cfg(any(target_os = "linux", target_os = "android"))]
const MAX_RW_COUNT: usize = 0x7fff_f000;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const MAX_RW_COUNT: usize = isize::MAX as usize;

/// True if `fd` is a TCP socket, whose short reads mean an empty receive queue (see
/// [`StreamReads`]). Other stream sockets stop a read short for other reasons too: a Unix
/// socket at a message that carries fds, SCTP at a message's end. Where the protocol cannot be
/// asked (`SO_PROTOCOL` is Linux's), the answer is no; sockets that `connect` and `accept`
/// made need no asking, anywhere.
pub(crate) fn is_tcp(fd: BorrowedFd<'_>) -> bool {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_PROTOCOL).is_ok_and(|p| p == libc::IPPROTO_TCP)
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = fd;
        false
    }
}

/// The most buffers one `sendmsg` or `recvmsg` takes: the kernel refuses more with `EMSGSIZE`
/// (`UIO_MAXIOV`, 1024 on Linux; elsewhere the 16 POSIX guarantees). Std passes no more than
/// this either, so more slices make a partial read or write, as they do with std.
#[cfg(any(target_os = "linux", target_os = "android"))]
const MAX_IOV: usize = libc::UIO_MAXIOV as usize;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const MAX_IOV: usize = 16;

/// A `msghdr` with no address and no control data, over the `len` buffers at `iov` (at most
/// [`MAX_IOV`] of them are passed).
fn msghdr(iov: *mut libc::iovec, len: usize) -> libc::msghdr {
    // SAFETY: msghdr is plain old data, for which all zeroes is a valid value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov;
    msg.msg_iovlen = len.min(MAX_IOV) as _;
    msg
}

/// `sendmsg(2)` from several buffers.
pub(crate) fn send_vectored(fd: RawFd, bufs: &[io::IoSlice<'_>], flags: libc::c_int) -> io::Result<usize> {
    // `IoSlice` is guaranteed to be ABI compatible with `iovec` on Unix; sendmsg only reads.
    let msg = msghdr(bufs.as_ptr().cast_mut().cast(), bufs.len());
    // SAFETY: `msg` points at `bufs`, valid for reads for the call.
    cvt_size(unsafe { libc::sendmsg(fd, &msg, flags) })
}

/// What fd `fd` is, for a dump's line: a socket's address and its peer's (`listening` for a
/// listener), or else what `/proc/self/fd` says of it (`pipe:[81233]`, a path). Best effort: an
/// fd the kernel says nothing of is `?`. The caller keeps `fd` open for the call (a dump: the
/// frame of the green thread parked on it borrows its owner, see `Core::answer_dump`).
pub(crate) fn describe_fd(fd: RawFd) -> String {
    // `getsockname` or `getpeername` of `fd`, as an IP address.
    let name = |peer: bool| {
        let mut storage = storage();
        let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        let ptr = (&raw mut storage).cast::<libc::sockaddr>();
        // SAFETY: `storage` is valid for writes of `len` bytes, and `len` says so.
        let rc =
            unsafe { if peer { libc::getpeername(fd, ptr, &mut len) } else { libc::getsockname(fd, ptr, &mut len) } };
        if rc == 0 { socket_addr(&storage, len).ok() } else { None }
    };
    match (name(false), name(true)) {
        (Some(local), Some(peer)) => format!("socket {local}, peer {peer}"),
        (Some(local), None) => {
            // SAFETY: the borrow lasts for this call only, and the caller keeps `fd` open for
            // the call (this function's contract).
            let fd = unsafe { BorrowedFd::borrow_raw(fd) };
            let listening = getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_ACCEPTCONN).is_ok_and(|on| on != 0);
            format!("{}socket {local}", if listening { "listening " } else { "" })
        }
        _ => match std::fs::read_link(format!("/proc/self/fd/{fd}")) {
            Ok(what) => what.to_string_lossy().into_owned(),
            Err(_) => "?".to_owned(),
        },
    }
}

/// An uninitialized `sockaddr_storage` for the kernel to fill.
pub(crate) fn storage() -> libc::sockaddr_storage {
    // SAFETY: sockaddr_storage is plain old data, for which all zeroes is a valid value.
    unsafe { MaybeUninit::zeroed().assume_init() }
}

/// The `sockaddr_un` for a Unix socket address given as raw bytes: a path (no NUL inside), or
/// with `abstract_name` a Linux abstract name.
pub(crate) fn sockaddr_un(bytes: &[u8], abstract_name: bool) -> io::Result<(libc::sockaddr_un, libc::socklen_t)> {
    // SAFETY: sockaddr_un is plain old data, for which all zeroes is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let base = std::mem::offset_of!(libc::sockaddr_un, sun_path);
    let start = usize::from(abstract_name);
    if !abstract_name && bytes.contains(&0) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "paths must not contain interior null bytes"));
    }
    // A pathname needs room for its terminating NUL; an abstract name needs none, only its
    // leading NUL: both come to at most `sun_path.len()` bytes, as std counts them.
    if start + bytes.len() + usize::from(!abstract_name) > addr.sun_path.len() {
        let room = addr.sun_path.len() - 1;
        let what = if abstract_name { "abstract name" } else { "path" };
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "Unix socket {what} of {} bytes is too long: at most {room} fit in sun_path; use a \
                 shorter (relative) path, or an abstract name",
                bytes.len()
            ),
        ));
    }
    for (dst, src) in addr.sun_path[start..].iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    // A pathname is counted with its terminating NUL (unless empty: an unnamed address); an
    // abstract name with its leading NUL and nothing after.
    let len = if abstract_name {
        base + 1 + bytes.len()
    } else if bytes.is_empty() {
        base
    } else {
        base + bytes.len() + 1
    };
    Ok((addr, len as libc::socklen_t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{IoSliceMut, Write};
    use std::os::fd::AsFd;
    use std::time::{Duration, Instant};

    /// A connected loopback pair: the reading end non-blocking, the writing end with Nagle off.
    fn pair() -> (std::net::TcpStream, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let writer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        writer.set_nodelay(true).unwrap();
        let (reader, _) = listener.accept().unwrap();
        reader.set_nonblocking(true).unwrap();
        (reader, writer)
    }

    /// Sends `data` and waits until all of it is queued at `reader` (on loopback it is by the
    /// time the send returns; the wait only guards against a slower path).
    fn send(writer: &mut std::net::TcpStream, reader: &std::net::TcpStream, data: &[u8]) {
        writer.write_all(data).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut peek = [0; 64];
        while recv(reader.as_raw_fd(), &mut peek, libc::MSG_PEEK | libc::MSG_DONTWAIT).unwrap_or(0) < data.len() {
            assert!(Instant::now() < deadline, "{} bytes sent on loopback never arrived", data.len());
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn read(reads: &StreamReads, reader: &std::net::TcpStream, len: usize) -> io::Result<(Vec<u8>, bool)> {
        let mut buf = vec![0; len];
        let (n, drained) =
            reads.recv(reader.as_fd(), &mut [IoSliceMut::new(&mut buf)], libc::MSG_DONTWAIT, || false)?;
        buf.truncate(n);
        Ok((buf, drained))
    }

    fn mode(reads: &StreamReads) -> u8 {
        reads.mode.load(Relaxed)
    }

    #[test]
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn exact_reads_switch_to_counting_what_is_left_and_short_reads_switch_back() {
        let (reader, mut writer) = pair();
        let reads = StreamReads::new(true);
        assert_eq!(mode(&reads), SHORT);

        send(&mut writer, &reader, b"abc");
        assert_eq!(read(&reads, &reader, 3).unwrap(), (b"abc".to_vec(), false), "a full read cannot tell");
        assert_eq!(mode(&reads), FILLED);
        assert_eq!(read(&reads, &reader, 3).unwrap_err().kind(), io::ErrorKind::WouldBlock);
        assert_eq!(mode(&reads), INQ | INQ_SET, "a full read and then a call that would block switch to TCP_INQ");

        send(&mut writer, &reader, b"defghi");
        assert_eq!(read(&reads, &reader, 3).unwrap(), (b"def".to_vec(), false), "3 bytes were left");
        assert_eq!(read(&reads, &reader, 3).unwrap(), (b"ghi".to_vec(), true), "a full read that left nothing");
        assert_eq!(mode(&reads), INQ | INQ_SET);

        // Short reads keep counting for a while, then go back to plain reads.
        for i in 1..=LEAVE_AFTER {
            send(&mut writer, &reader, b"jk");
            assert_eq!(read(&reads, &reader, 3).unwrap(), (b"jk".to_vec(), true), "a short read left nothing");
            let expected = if i < LEAVE_AFTER { (INQ + i) | INQ_SET } else { SHORT | INQ_SET };
            assert_eq!(mode(&reads), expected, "after {i} short reads in a row");
        }
        assert_eq!(mode(&reads.for_clone()), SHORT | INQ_SET);

        // Back to counting, the option being on already; the end of stream after data: the
        // count says 1 once the FIN is in, never 0.
        send(&mut writer, &reader, b"lmn");
        assert_eq!(read(&reads, &reader, 3).unwrap(), (b"lmn".to_vec(), false));
        assert_eq!(mode(&reads), FILLED | INQ_SET);
        let _ = read(&reads, &reader, 3).unwrap_err();
        assert_eq!(mode(&reads), INQ | INQ_SET);
        send(&mut writer, &reader, b"opq");
        writer.shutdown(std::net::Shutdown::Write).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !fin_in(&reader) {
            assert!(Instant::now() < deadline, "the FIN sent on loopback never arrived");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(read(&reads, &reader, 3).unwrap(), (b"opq".to_vec(), false), "data with the end behind it");
        assert_eq!(read(&reads, &reader, 3).unwrap(), (Vec::new(), false));
    }

    /// A stream whose frames come split (a short read, then a full one that ends the frame,
    /// then a wait) keeps counting: it never goes back and forth.
    #[test]
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn frames_that_come_split_keep_the_stream_counting() {
        let (reader, mut writer) = pair();
        let reads = StreamReads::new(true);
        for frame in 0..4 * LEAVE_AFTER {
            send(&mut writer, &reader, b"abcd");
            assert_eq!(read(&reads, &reader, 6).unwrap(), (b"abcd".to_vec(), true), "frame {frame}, first part");
            send(&mut writer, &reader, b"ef");
            // Counted from the second frame on: the full read that ends it says it drained.
            assert_eq!(read(&reads, &reader, 2).unwrap(), (b"ef".to_vec(), frame > 0), "frame {frame}, second part");
            let _ = read(&reads, &reader, 6).unwrap_err();
            assert_eq!(mode(&reads), INQ | INQ_SET, "frame {frame}");
        }
    }

    /// `TCP_INQ` is set once per stream; later switches to counting only change the mode. Seen
    /// by turning the option off behind the stream's back: its counted reads then say nothing.
    #[test]
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn the_option_is_set_once() {
        let (reader, mut writer) = pair();
        let reads = StreamReads::new(true);
        send(&mut writer, &reader, b"abc");
        let _ = read(&reads, &reader, 3).unwrap();
        let _ = read(&reads, &reader, 3).unwrap_err();
        for _ in 0..LEAVE_AFTER {
            send(&mut writer, &reader, b"d");
            let _ = read(&reads, &reader, 3).unwrap();
        }
        assert_eq!(mode(&reads), SHORT | INQ_SET);
        setsockopt_int(reader.as_fd(), libc::IPPROTO_TCP, libc::TCP_INQ, 0).unwrap();
        send(&mut writer, &reader, b"efg");
        let _ = read(&reads, &reader, 3).unwrap();
        let _ = read(&reads, &reader, 3).unwrap_err();
        assert_eq!(mode(&reads), INQ | INQ_SET);
        send(&mut writer, &reader, b"hij");
        assert_eq!(read(&reads, &reader, 3).unwrap(), (b"hij".to_vec(), false), "TCP_INQ was set again");
    }

    /// True once the peer's FIN is queued at `reader`: `poll` reports `POLLRDHUP`.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn fin_in(reader: &std::net::TcpStream) -> bool {
        let mut fd = libc::pollfd { fd: reader.as_raw_fd(), events: libc::POLLRDHUP, revents: 0 };
        // SAFETY: one live pollfd, for a call that does not wait.
        unsafe { libc::poll(&mut fd, 1, 0) == 1 && fd.revents & libc::POLLRDHUP != 0 }
    }

    #[test]
    fn reads_of_other_sockets_are_never_flagged_and_never_switch() {
        let (reader, mut writer) = pair();
        let reads = StreamReads::new(false);
        send(&mut writer, &reader, b"abc");
        assert_eq!(read(&reads, &reader, 3).unwrap(), (b"abc".to_vec(), false));
        assert_eq!(read(&reads, &reader, 3).unwrap_err().kind(), io::ErrorKind::WouldBlock);
        send(&mut writer, &reader, b"de");
        assert_eq!(read(&reads, &reader, 3).unwrap(), (b"de".to_vec(), false));
        assert_eq!(mode(&reads), NOT_TCP);
    }
}
