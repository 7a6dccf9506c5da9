//! Whole-file reads, opens, reads into a buffer and metadata had on the green thread itself,
//! when the kernel can say they will not wait for a disk, a server or a daemon.
//!
//! Handing a call to the blocking pool costs two wake-ups (tens of µs on a VM), ten times the
//! read of a small file in the page cache. Linux can tell, without blocking, whether a read
//! would need a disk:
//!
//! - `openat2` with `RESOLVE_CACHED` (Linux 5.12) resolves the path from the kernel's caches
//!   only, and fails with `EAGAIN` where it would have to read a directory from the disk or
//!   ask a network file system's server;
//! - `preadv2` with `RWF_NOWAIT` (Linux 4.14) reads only what is in the page cache, and fails
//!   with `EAGAIN` where a page would have to be read (`EOPNOTSUPP` on a file system without
//!   support, such as NFS);
//! - `statx` with `AT_STATX_DONT_SYNC` gives a network file system's cached attributes without
//!   asking its server.
//!
//! io_uring makes the same first attempt before it gives an open to its own threads. [`read`]
//! tries: a path it cannot resolve from the caches is left to the pool whole; a file whose
//! pages are not all cached is left to the pool from where the attempt stopped, open, with
//! what was read so far. The path is first opened with `O_PATH` (which opens nothing: no
//! driver's or file system's `open` runs), so that only a regular file is opened for reading
//! here: opening a FIFO or a device can wait, or have effects, and std's own call on the pool
//! does that. The open for reading is made with `O_NONBLOCK`, so that one that would wait (for
//! another file's lease on it to be given up, say) fails instead, and is made again by std's
//! call on the pool.
//!
//! `RESOLVE_CACHED` rules out waits in the path's lookup only, not in the file system's `open`
//! of the file found: a network file system's may ask its server (NFSv4 sends an `OPEN`; SMB a
//! `CREATE`), and FUSE's asks its daemon (and `close` flushes through it), which may itself wait
//! for a network or never answer. So only a file on a block device's file system (ext4, XFS,
//! F2FS, ...: `statx`'s device has a major number) is opened for reading here; a file of a
//! file system with no device of its own (NFS, SMB, FUSE, 9p, but also tmpfs, procfs and
//! overlayfs, whose devices are anonymous too) goes to the pool whole, as before the attempt.
//! Telling tmpfs or overlayfs apart would not help: on Linux 6.18 both refuse `RWF_NOWAIT`
//! (`EOPNOTSUPP`, checked with a file of each), and a read without it may wait for a page in
//! swap or on the lower layer's disk. Btrfs, whose files have anonymous devices too, is told by
//! the subvolume `statx` gives for its files (Linux 6.10), not by `fstatfs`, which FUSE and
//! network file systems ask of their daemon or server.
//!
//! [`metadata`] needs no open at all: the `O_PATH` fd of a path in the caches, on a block
//! device's file system, is enough for std's own `statx` of it, whatever kind of file it is.
//!
//! [`open`], [`is_local`] and [`read_nowait`] serve `green::fs::File`: its open is [`read`]'s
//! first two steps, and its reads ask the page cache as [`read`] does, into the caller's buffer.
//!
//! What the attempt cannot rule out: a block device's file system whose `open` of a regular
//! file waits: FUSE's `fuseblk` (ntfs-3g, say), or a permission check by a fanotify listener.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};

/// Files larger than this are read on the pool: copying them holds the worker longer than the
/// hand-off costs (a page-cache copy runs at several GB/s; 256 KiB is tens of µs).
const MOST_IN_PLACE: u64 = 256 * 1024;

/// Whether this kernel takes the attempt's `openat2` ([`UNKNOWN`] until the first attempt asks
/// it, [`supported`]).
static SUPPORT: AtomicU8 = AtomicU8::new(UNKNOWN);
const UNKNOWN: u8 = 0;
const TAKEN: u8 = 1;
const REFUSED: u8 = 2;

/// How far the attempt got.
#[derive(Debug)]
pub(super) enum Attempt {
    /// The whole file, read without waiting.
    Read(Vec<u8>),
    /// A regular file, open for reading, with what was read of it so far (the file's position
    /// just past that): the rest may need the disk, or an error is to be had.
    Started(File, Vec<u8>),
    /// Nothing done that std's call on the pool would not redo: a path not in the caches, not
    /// a regular file of a block device's file system, too large, an error std's call will
    /// report, or an old kernel.
    Untried,
}

/// Reads `path` whole if that needs no disk and no server (module docs).
pub(super) fn read(path: &Path) -> Attempt {
    let Some((file, size)) = open_cached_file(path, MOST_IN_PLACE) else { return Attempt::Untried };
    // 3. Read what the page cache holds: one more byte than the size, to see the end.
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0).saturating_add(1));
    loop {
        if bytes.len() == bytes.capacity() {
            if bytes.len() as u64 >= MOST_IN_PLACE {
                return started(file, bytes); // it grew since: the rest on the pool
            }
            bytes.reserve(4096);
        }
        match read_cached(file.as_raw_fd(), bytes.spare_capacity_mut()) {
            Ok(0) => return Attempt::Read(bytes),
            // SAFETY: `read_cached` returns how many bytes the kernel wrote at the start of the
            // spare capacity it was given, at most its length: the first `len + n` bytes are
            // initialised, and within the capacity.
            Ok(n) => unsafe { bytes.set_len(bytes.len() + n) },
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return started(file, bytes),
        }
    }
}

/// `path` opened for reading as `std::fs::File::open` would, if its path is in the kernel's
/// caches and it is a regular file of a block device's file system (module docs); `None`
/// otherwise, or on any error (std's call on the pool reports it).
pub(super) fn open(path: &Path) -> Option<File> {
    let (file, _) = open_cached_file(path, u64::MAX)?;
    blocking_again(&file).then_some(file)
}

/// Steps 1 and 2 of [`read`]: `path` opened for reading with `O_NONBLOCK`, and its size, if
/// it is a regular file of a block device's file system no larger than `most`.
fn open_cached_file(path: &Path, most: u64) -> Option<(File, u64)> {
    if !supported() {
        return None;
    }
    let path = CString::new(path.as_os_str().as_bytes()).ok()?;
    // 1. Find the file from the caches, and look at it without opening it.
    // Any failure is left to std's call on the pool, which reports it as std does.
    let found = open_cached(&path, libc::O_PATH).ok()?;
    if block_device_file_size(found.as_raw_fd())? > most {
        return None;
    }
    drop(found);
    // 2. Open it for reading (its path is cached now). `O_NONBLOCK`: an open that would wait
    //    fails with `EWOULDBLOCK` instead, and std's call on the pool waits: one that must break
    //    another file's lease first (until its holder gives it up, up to the lease-break time,
    //    45 s by default), or a FIFO put in the file's place meanwhile (looked at again below).
    let fd = open_cached(&path, libc::O_RDONLY | libc::O_NOCTTY | libc::O_NONBLOCK).ok()?;
    let size = block_device_file_size(fd.as_raw_fd())?;
    Some((File::from(fd), size))
}

/// Whether the file open as `file` is a regular file of a block device's file system (module
/// docs), asked of the attributes the kernel holds (no server or daemon is asked). Not a FIFO
/// or a device node living there: their reads and seeks are their driver's, which may take
/// locks of its own.
pub(super) fn is_local(file: &File) -> bool {
    block_device_file_size(file.as_raw_fd()).is_some()
}

/// Reads into `buf` at `file`'s position what the page cache holds: `WouldBlock` where a page
/// would have to be read, `Unsupported` (`EOPNOTSUPP`) for a file that cannot say.
pub(super) fn read_nowait(file: &File, buf: &mut [u8]) -> io::Result<usize> {
    if !supported() {
        return Err(io::Error::from(io::ErrorKind::Unsupported));
    }
    // SAFETY: `[u8]` and `[MaybeUninit<u8>]` have one layout, and the caller's bytes stay
    // initialised: `read_cached` only lets the kernel write bytes into the slice, and never
    // writes an uninitialised value there.
    let buf = unsafe { &mut *(std::ptr::from_mut(buf) as *mut [std::mem::MaybeUninit<u8>]) };
    read_cached(file.as_raw_fd(), buf)
}

/// `path`'s metadata, `follow`ing a symbolic link at its end or not, if the kernel's caches
/// hold the path and its file system is a block device's (module docs): std's own, asked of
/// an `O_PATH` fd, which opens nothing, so any kind of file will do. `None` otherwise, or on
/// any error (std's call on the pool reports it).
pub(super) fn metadata(path: &Path, follow: bool) -> Option<std::fs::Metadata> {
    if !supported() {
        return None;
    }
    let path = CString::new(path.as_os_str().as_bytes()).ok()?;
    let found = open_cached(&path, libc::O_PATH | if follow { 0 } else { libc::O_NOFOLLOW }).ok()?;
    let stx = cached_statx(found.as_raw_fd())?;
    if !on_block_device(&stx) {
        return None;
    }
    // std's `statx` of the fd itself: a block device's file system holds the attributes.
    File::from(found).metadata().ok()
}

/// The attempt on `file` stopped with `bytes` read: the rest for the pool, on a file as std's
/// `open` would have left it (without the `O_NONBLOCK` the attempt opened it with).
fn started(file: File, bytes: Vec<u8>) -> Attempt {
    // Not cleared (never seen): the file is dropped, and std's call on the pool starts over.
    if blocking_again(&file) { Attempt::Started(file, bytes) } else { Attempt::Untried }
}

/// Clears the `O_NONBLOCK` the attempt opened `file` with; false if that failed.
fn blocking_again(file: &File) -> bool {
    // SAFETY: `file` is an open fd; these commands change no memory of ours.
    unsafe {
        let flags = libc::fcntl(file.as_raw_fd(), libc::F_GETFL);
        flags >= 0 && libc::fcntl(file.as_raw_fd(), libc::F_SETFL, flags & !libc::O_NONBLOCK) == 0
    }
}

/// Whether this kernel takes `openat2` with `RESOLVE_CACHED`, asked once with the current
/// directory, which the kernel always holds: `ENOSYS` before Linux 5.6, `EINVAL` before 5.12,
/// and `EPERM` or `ENOSYS` from a seccomp filter say no, for good. (Asked of a path, those
/// errors could be that path's own, and would turn the attempt off for every other.)
fn supported() -> bool {
    // An ILP32 ABI of a 64-bit CPU (x86_64's x32, aarch64's ilp32, mips64's n32) takes
    // preadv2's offset whole in one 64-bit register, which `read_cached`'s two 32-bit halves do
    // not fill with -1: the read would be made at offset 2^32 - 1 and find nothing there.
    if cfg!(all(
        target_pointer_width = "32",
        any(target_arch = "x86_64", target_arch = "aarch64", target_arch = "mips64")
    )) {
        return false;
    }
    match SUPPORT.load(Ordering::Relaxed) {
        TAKEN => true,
        REFUSED => false,
        _ => {
            let refused = match open_cached(c".", libc::O_PATH) {
                Ok(_) => false,
                Err(e) => matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EINVAL | libc::EPERM)),
            };
            SUPPORT.store(if refused { REFUSED } else { TAKEN }, Ordering::Relaxed);
            !refused
        }
    }
}

/// `openat2(path, flags | O_CLOEXEC, RESOLVE_CACHED)`; `EAGAIN` if the path is not all in the
/// kernel's caches.
fn open_cached(path: &CStr, flags: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: `open_how` is plain integers; zero is "no flags, no mode, no resolve flags".
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_CACHED;
    // SAFETY: a NUL-terminated path and a `struct open_how` of the size given, both alive
    // across the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            libc::c_long::from(libc::AT_FDCWD),
            path.as_ptr(),
            &raw const how,
            size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the call returned a new fd, ours alone.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// The size of the regular file open as `fd`, from cached attributes, if it is on a block
/// device's file system (module docs); `None` for anything else, or if the call fails.
fn block_device_file_size(fd: RawFd) -> Option<u64> {
    let stx = cached_statx(fd)?;
    let regular = u32::from(stx.stx_mode) & libc::S_IFMT == libc::S_IFREG;
    (regular && on_block_device(&stx)).then_some(stx.stx_size)
}

/// The type and size of the file open as `fd` (an `O_PATH` one will do), its device, and its
/// subvolume where it has one, from the attributes the kernel holds (`AT_STATX_DONT_SYNC`: a
/// network file system's or FUSE's are not asked of its server or daemon); `None` if the call
/// fails or gives less.
fn cached_statx(fd: RawFd) -> Option<libc::statx> {
    // SAFETY: `statx` is plain integers.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: an empty path with AT_EMPTY_PATH names `fd` itself; `stx` is alive and writable.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_statx,
            libc::c_long::from(fd),
            c"".as_ptr(),
            libc::c_long::from(libc::AT_EMPTY_PATH | libc::AT_STATX_DONT_SYNC),
            (libc::STATX_TYPE | libc::STATX_SIZE | libc::STATX_SUBVOL) as libc::c_long,
            &raw mut stx,
        )
    };
    let wanted = libc::STATX_TYPE | libc::STATX_SIZE;
    (rc == 0 && stx.stx_mask & wanted == wanted).then_some(stx)
}

/// Whether the file of attributes `stx` is on a block device's file system: a major number
/// (the device is given whatever the mask asks; 0 is an anonymous device), or a subvolume's id,
/// which only Btrfs and bcachefs give (Linux 6.10): their files have anonymous devices, one per
/// subvolume. (Not `fstatfs`'s magic number: FUSE asks its daemon for `statfs`, a network file
/// system its server, and the worker would wait for them. On kernels before 6.10, a Btrfs file
/// goes to the pool.)
fn on_block_device(stx: &libc::statx) -> bool {
    stx.stx_dev_major != 0 || stx.stx_mask & libc::STATX_SUBVOL != 0
}

/// `preadv2(fd, buf, -1, RWF_NOWAIT)`: reads at the file's position what the page cache holds.
fn read_cached(fd: RawFd, buf: &mut [std::mem::MaybeUninit<u8>]) -> io::Result<usize> {
    let iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    // The offset -1 (both halves of it: a 64-bit kernel ignores the high one) means the file's
    // position, which the read moves, so that a read finished on the pool goes on from there.
    let (low, high): (libc::c_ulong, libc::c_ulong) = (!0, !0);
    // Integers go to `syscall` as `c_long`s, as glibc reads them: a 32-bit `int` passed to a
    // variadic function may leave the top half of its 64-bit register anything (harmless for
    // the kernel's `int` parameters, not for `vlen`, an `unsigned long`).
    // SAFETY: one iovec over `buf`, writable for its length, alive across the call.
    let n = unsafe {
        libc::syscall(
            libc::SYS_preadv2,
            libc::c_long::from(fd),
            &raw const iov,
            1 as libc::c_long,
            low,
            high,
            libc::c_long::from(libc::RWF_NOWAIT),
        )
    };
    if n < 0 { Err(io::Error::last_os_error()) } else { Ok(n as usize) }
}
