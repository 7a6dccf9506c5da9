//! Waiting for readiness of any fd: a pipe, stdin, a child process's pipes, another library's
//! socket. Code that `green` does not wrap can park its green thread here instead of
//! blocking the worker. [`stdin`] reads standard input this way, as std's `Stdin` does.
//!
//! The fd should be non-blocking, so that the read or write after the wait cannot block if
//! someone else took the data first; loop on `WouldBlock`:
//!
//! ```
//! use std::io::{ErrorKind, Read, Write};
//! use std::os::unix::net::UnixStream; // std's, not green's: any fd will do
//!
//! green::run(|| {
//!     let (mut a, mut b) = UnixStream::pair()?;
//!     b.set_nonblocking(true)?;
//!     let writer = green::spawn(move || a.write_all(b"ready"));
//!     let mut buf = [0; 5];
//!     let n = loop {
//!         match b.read(&mut buf) {
//!             Err(e) if e.kind() == ErrorKind::WouldBlock => green::io::wait_readable(&b)?,
//!             result => break result?,
//!         }
//!     };
//!     assert_eq!(&buf[..n], b"ready");
//!     writer.join().unwrap()
//! })?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # How
//!
//! A wait first asks `poll(2)` without waiting; if the fd is not ready, it registers a
//! duplicate of the fd with the worker's poller for the length of the wait, parks, and deletes
//! the registration before it returns. A duplicate, not the fd itself: epoll tells
//! registrations apart by fd number, so the fd's own owner (a `green::net` socket, say) can
//! register it at the same time. A [dump](crate::Handle::dump) names the fd you passed, not
//! the duplicate. (At the process's fd limit, with no fd left for a duplicate,
//! a green thread looks again after pauses of 1 ms doubling to 16 ms instead, and registers
//! nothing.) A long-lived fd waited on in a loop costs a `dup`, a `close`
//! and two `epoll_ctl` calls per wait; the `green::net` types keep theirs registered instead.
//!
//! Regular files and directories are always ready, as `poll(2)` reports them (epoll refuses
//! them outright), so a wait on one returns at once: a loop that waits on standard input and
//! then reads works the same when the input is redirected from a file. A read from a slow
//! disk blocks the worker all the same; put such reads on the blocking pool.
//!
//! On a plain OS thread the wait is a blocking `poll(2)`. While the green thread unwinds, or
//! inside [`crate::on_worker_stack`], a wait that would park returns a `WouldBlock` error
//! instead ([while unwinding](crate::sync#while-unwinding)). Every wait ticks the budget; one
//! that parks is a cancellation point (a wait on an fd that is ready returns without one).
//! Inside [`crate::timeout`] a wait ends at that deadline too, on a green thread or a plain
//! one, with a `TimedOut` error that holds a [`green::Elapsed`](crate::Elapsed)
//! (`e.get_ref()`), which tells it from the `TimedOut` of an `_until` form's own deadline, as
//! a socket call's error does.
//!
//! # Child processes
//!
//! [`green::process`](crate::process) mirrors `std::process` with all of this done: use its
//! `Command` unless the child comes from elsewhere (a library that spawns it with std's).
//!
//! The pipes `std::process::Command` gives a child (`ChildStdin`, `ChildStdout`, `ChildStderr`)
//! are blocking, and std has no `set_nonblocking` for them: [`set_nonblocking`] is here for
//! that, and then they read and write as above. A blocking pipe is a trap on the writing side:
//! it is writable as soon as it has room for a page, and a larger write then waits until the
//! child has read all of it, blocking the worker. Read stdout and stderr on green threads of
//! their own, so that a child that fills one pipe while you wait on the other cannot stall.
//!
//! [`wait_child`] waits for a child's exit as `Child::wait` does, parking instead of blocking
//! (on a pidfd, which turns readable when the child ends). [`crate::spawn_blocking`] with
//! `child.wait()` works too, but holds a thread of the blocking pool for the child's lifetime,
//! and a runtime's shutdown waits for it (up to [`crate::runtime::Builder::shutdown_timeout`]).
//!
//! ```
//! use std::io::{ErrorKind, Read};
//! use std::process::{Command, Stdio};
//!
//! green::run(|| {
//!     let mut child = Command::new("echo").arg("hello").stdout(Stdio::piped()).spawn()?;
//!     let mut stdout = child.stdout.take().unwrap();
//!     green::io::set_nonblocking(&stdout, true)?;
//!     let (mut out, mut buf) = (Vec::new(), [0; 4096]);
//!     loop {
//!         match stdout.read(&mut buf) {
//!             Ok(0) => break,
//!             Ok(n) => out.extend_from_slice(&buf[..n]),
//!             Err(e) if e.kind() == ErrorKind::WouldBlock => green::io::wait_readable(&stdout)?,
//!             Err(e) => return Err(e),
//!         }
//!     }
//!     assert_eq!(out, b"hello\n");
//!     assert!(green::io::wait_child(&mut child)?.success()); // parks until it has ended
//!     Ok(())
//! })?;
//! # Ok::<(), std::io::Error>(())
//! ```

mod stdin;

pub use stdin::{Stdin, StdinLock, stdin};

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use crate::reactor::{Direction, Source};
use crate::runtime::context;

/// Parks until `fd` is readable (or at end of file, or in error).
///
/// # Errors
///
/// An fd that epoll refuses and `poll(2)` does not report ready gives `Unsupported`; see the
/// [module docs](self) for the rest.
///
/// ```
/// use std::io::Write;
/// use std::os::unix::net::UnixStream;
///
/// green::run(|| {
///     let (mut a, b) = UnixStream::pair()?;
///     a.write_all(b"x")?;
///     green::io::wait_readable(&b)
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn wait_readable(fd: &impl AsFd) -> io::Result<()> {
    wait(fd.as_fd(), Direction::Read, None)
}

/// Parks until `fd` is writable (or in error).
///
/// # Errors
///
/// As for [`wait_readable`].
///
/// ```
/// use std::os::unix::net::UnixStream;
///
/// green::run(|| {
///     let (a, _b) = UnixStream::pair()?;
///     green::io::wait_writable(&a)
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn wait_writable(fd: &impl AsFd) -> io::Result<()> {
    wait(fd.as_fd(), Direction::Write, None)
}

/// Like [`wait_readable`], but gives up at `deadline` with a `TimedOut` error.
///
/// # Errors
///
/// `TimedOut` at the deadline; otherwise as for [`wait_readable`].
///
/// ```
/// use std::io::ErrorKind;
/// use std::os::unix::net::UnixStream;
/// use std::time::{Duration, Instant};
///
/// green::run(|| {
///     let (_a, b) = UnixStream::pair()?;
///     let err = green::io::wait_readable_until(&b, Instant::now() + Duration::from_millis(5)).unwrap_err();
///     assert_eq!(err.kind(), ErrorKind::TimedOut);
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn wait_readable_until(fd: &impl AsFd, deadline: Instant) -> io::Result<()> {
    wait(fd.as_fd(), Direction::Read, Some(deadline))
}

/// Like [`wait_writable`], but gives up at `deadline` with a `TimedOut` error.
///
/// # Errors
///
/// As for [`wait_readable_until`].
///
/// ```
/// use std::os::unix::net::UnixStream;
/// use std::time::{Duration, Instant};
///
/// green::run(|| {
///     let (a, _b) = UnixStream::pair()?;
///     green::io::wait_writable_until(&a, Instant::now() + Duration::from_secs(1))
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn wait_writable_until(fd: &impl AsFd, deadline: Instant) -> io::Result<()> {
    wait(fd.as_fd(), Direction::Write, Some(deadline))
}

fn wait(fd: BorrowedFd<'_>, dir: Direction, deadline: Option<Instant>) -> io::Result<()> {
    crate::coop::tick_op();
    // Inside `green::timeout` the wait ends at that deadline too, with an `Elapsed` inside its
    // error, as a socket's read does (on a green thread and on a plain one alike).
    let own = deadline;
    let deadline = crate::park::effective_deadline(own);
    // The source and the duplicate it watches, if any; a tuple drops the source (its
    // registration) before the duplicate closes.
    let mut registered: Option<(Source, Option<OwnedFd>)> = None;
    // Set when a green thread waits by looking again after each pause (no fd left to duplicate).
    let mut pause: Option<Duration> = None;
    loop {
        // Ready now? Then no registration at all.
        let seen = registered.as_ref().map(|(source, _)| source.tick(dir));
        if ready_now(fd, dir)? {
            return Ok(());
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            if deadline != own {
                return Err(crate::deadline::elapsed_error(io::ErrorKind::TimedOut));
            }
            let what = match dir {
                Direction::Read => "readable",
                Direction::Write => "writable",
            };
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("green::io: fd {fd} did not become {what} before the deadline", fd = fd.as_raw_fd()),
            ));
        }
        if let Some(current) = pause {
            pause_without_fd(current, deadline)?;
            pause = Some((current * 2).min(MAX_PAUSE));
            continue;
        }
        if registered.is_none() {
            // A duplicate: registering the caller's own fd number would make its owner's
            // registration with this poller fail with EEXIST while this wait lasts (or this
            // wait's, if the owner registers first). With no fd left for one, a green thread
            // looks again after growing pauses; a plain thread's wait is a poll(2) of the fd
            // itself, which registers nothing.
            registered = Some(match fd.try_clone_to_owned() {
                Ok(dup) => (Source::new(dup.as_raw_fd()), Some(dup)),
                Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                    if context::in_green_thread() {
                        log::warn!(
                            "green::io: no fd left to wait for fd {} with ({e}): looking again every {} to {} ms \
                             instead. Close files or raise the fd limit ({}) to wait without looking",
                            fd.as_raw_fd(),
                            FIRST_PAUSE.as_millis(),
                            MAX_PAUSE.as_millis(),
                            crate::rlimit::Limit::Fds.describe()
                        );
                        pause = Some(FIRST_PAUSE);
                        continue;
                    }
                    (Source::new(fd.as_raw_fd()), None)
                }
                Err(e) => return Err(e),
            });
        }
        let (source, _dup) = registered.as_ref().expect(internal_error!("a readiness wait lost its registration"));
        // Dumps name the caller's fd, not the duplicate, which the caller never sees.
        source.wait_as(fd.as_raw_fd(), dir, seen.unwrap_or(0), deadline)?;
    }
}

/// Turns `O_NONBLOCK` on or off for `fd`, as the `set_nonblocking` of std's sockets does, for
/// fds that std gives no such method: a child's pipes, a terminal, another library's fd. The
/// flag belongs to the open file, so every fd that shares it (a `dup`, the other end of a
/// `fork`) sees the change.
///
/// # Errors
///
/// What `fcntl(2)` reports: `EBADF` for an fd that is not open, say.
///
/// ```
/// use std::io::{ErrorKind, Read};
///
/// let (mut reader, _writer) = std::io::pipe()?;
/// green::io::set_nonblocking(&reader, true)?;
/// assert_eq!(reader.read(&mut [0; 8]).unwrap_err().kind(), ErrorKind::WouldBlock);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn set_nonblocking(fd: &impl AsFd, nonblocking: bool) -> io::Result<()> {
    let fd = fd.as_fd().as_raw_fd();
    // SAFETY: F_GETFL takes no pointer; `fd` is borrowed, so open for the call.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    let wanted = if nonblocking { flags | libc::O_NONBLOCK } else { flags & !libc::O_NONBLOCK };
    // SAFETY: as above; F_SETFL takes an int.
    if wanted != flags && unsafe { libc::fcntl(fd, libc::F_SETFL, wanted) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Waits for `child` to end and returns its exit status, as [`std::process::Child::wait`]
/// does, parking the green thread meanwhile (on a plain OS thread it blocks in `poll(2)`).
/// Like std's, it closes the child's stdin first, so a child that reads until end of input
/// can end.
///
/// The wait parks on a pidfd (`pidfd_open(2)`, Linux 5.3 and later), which turns readable when
/// the child ends; where there is none (or a sandbox refuses it, or no fd is left for it), it
/// looks every few milliseconds instead. It is a cancellation point, and inside
/// [`crate::timeout`] it gives `TimedOut` at that deadline, with a [`crate::Elapsed`] inside
/// (the child then runs on; wait again or kill it).
///
/// # Errors
///
/// What `Child::try_wait` or the wait for the pidfd reports.
///
/// ```
/// use std::process::Command;
///
/// green::run(|| {
///     let mut child = Command::new("sh").args(["-c", "exit 3"]).spawn()?;
///     assert_eq!(green::io::wait_child(&mut child)?.code(), Some(3));
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn wait_child(child: &mut std::process::Child) -> io::Result<std::process::ExitStatus> {
    drop(child.stdin.take());
    // Reaped already (std keeps the status), or ended: no pidfd needed. Until `try_wait` has
    // reaped it, the pid stays the child's, so the pidfd below cannot name another process.
    if let Some(status) = child.try_wait()? {
        return Ok(status);
    }
    let Some(pidfd) = pidfd_open(child.id())? else {
        // No pidfd: look again after growing pauses, until the `green::timeout` deadline if any.
        let deadline = crate::park::effective_deadline(None);
        let mut pause = FIRST_PAUSE;
        loop {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(crate::deadline::elapsed_error(io::ErrorKind::TimedOut));
            }
            pause_without_fd(pause, deadline)?;
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            pause = (pause * 2).min(MAX_PAUSE);
        }
    };
    wait_readable(&pidfd)?;
    // Readable: the child has ended, and this reaps it without blocking.
    child.wait()
}

/// A pidfd for process `pid`, or `None` where the kernel has no `pidfd_open`.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn pidfd_open(pid: u32) -> io::Result<Option<OwnedFd>> {
    use std::os::fd::FromRawFd;
    let pid = libc::pid_t::try_from(pid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: pidfd_open takes no pointers.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        let e = io::Error::last_os_error();
        // EPERM: a seccomp filter that refuses system calls it does not know, as the default
        // profiles of container runtimes from before pidfd_open did. EMFILE, ENFILE: no fd left
        // for it; the wait needs none without it (as `wait` does with no fd to duplicate).
        let without = matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EPERM | libc::EMFILE | libc::ENFILE));
        return if without { Ok(None) } else { Err(e) };
    }
    // SAFETY: pidfd_open returned a new fd, close-on-exec, that nothing else owns.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) }))
}

/// No pidfds here: the wait looks again and again.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn pidfd_open(_pid: u32) -> io::Result<Option<OwnedFd>> {
    Ok(None)
}

/// The first and the longest pause of a green thread that waits for readiness by looking again,
/// having no fd left to register a duplicate with.
const FIRST_PAUSE: Duration = Duration::from_millis(1);
const MAX_PAUSE: Duration = Duration::from_millis(16);

/// Pauses a green thread for `pause`, or until `deadline` if sooner, before it looks at an fd
/// again. On the worker's own stack or while unwinding it cannot wait: then the error a
/// registered wait gives there.
fn pause_without_fd(pause: Duration, deadline: Option<Instant>) -> io::Result<()> {
    if let Some(why) = crate::reactor::cannot_park() {
        return Err(io::Error::new(io::ErrorKind::WouldBlock, why));
    }
    let until = Instant::now() + pause;
    crate::time::pause_until(deadline.map_or(until, |d| d.min(until)));
    Ok(())
}

/// One `poll(2)` that does not wait: true if `fd` is ready in `dir` (or in error).
pub(crate) fn ready_now(fd: BorrowedFd<'_>, dir: Direction) -> io::Result<bool> {
    let events = match dir {
        Direction::Read => libc::POLLIN,
        Direction::Write => libc::POLLOUT,
    };
    let mut pollfd = libc::pollfd { fd: fd.as_raw_fd(), events, revents: 0 };
    // SAFETY: `pollfd` is a valid array of one element for the duration of the call.
    let rc = unsafe { libc::poll(&mut pollfd, 1, 0) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted { Ok(false) } else { Err(e) };
    }
    if pollfd.revents & libc::POLLNVAL != 0 {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    Ok(pollfd.revents != 0)
}
