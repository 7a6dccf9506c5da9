//! Standard input whose reads park: [`stdin`].

use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::BorrowedFd;
use std::sync::OnceLock;

use crate::sync::{Mutex, MutexGuard};

/// A handle to this process's standard input, shared by every green thread and OS thread
/// that asks for it, like [`std::io::Stdin`], whose reads park the green thread until input
/// comes instead of blocking its worker.
///
/// A read waits for fd 0 to be readable ([`wait_readable`](super::wait_readable)), then
/// reads what is there. Lines are buffered, as std's are, behind a green
/// [`Mutex`](crate::sync::Mutex): a green thread that waits for the lock parks too.
///
/// ```no_run
/// use std::io::BufRead;
///
/// green::run(|| {
///     let ticker = green::spawn(|| loop {
///         green::sleep(std::time::Duration::from_secs(1)); // runs on while input is awaited
///     });
///     for line in green::io::stdin().lines() {
///         println!("you said {}", line?);
///     }
///     ticker.cancel();
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Costs and waits
///
/// A read that finds input waiting costs a lock, a `poll(2)` and a `read(2)`; one that has to
/// wait costs a `dup`, two `epoll_ctl` and a `close` on top (see [`io`](super)). Input
/// redirected from a regular file never waits: the kernel reports such a file always ready.
///
/// - On a plain OS thread a read blocks that thread in `poll(2)`, as std's does.
/// - A read is a cancellation point: a green thread cancelled while it waits for input, or for
///   the lock, unwinds, and the input stays for the next reader.
/// - Inside [`green::timeout`](crate::timeout) a read that waits ends at the deadline with a
///   `TimedOut` error that holds an [`Elapsed`](crate::Elapsed). What `read_line` read of the
///   line by then is in its `String`; [`lines`](Stdin::lines) drops it with the error. Call
///   `read_line` again with the same `String` to finish the line.
/// - While the green thread unwinds, a read that would wait fails with `WouldBlock`, and the
///   lock follows `green::sync::Mutex`'s rules ([while unwinding](crate::sync#while-unwinding)).
///
/// # Mixing with std's
///
/// std's `Stdin` keeps a buffer of its own: input it read ahead is seen by neither this
/// handle's reads nor its waits. Use one of the two in a program, not both. Standard input is
/// left blocking (its file description is shared with the shell and whatever else holds it);
/// the one read after a wait could block only if another reader took the input first, such as
/// std's `Stdin` on another thread. A closed fd 0 reads as end of input, as with std.
#[derive(Debug, Clone, Copy)]
pub struct Stdin {
    buffered: &'static Mutex<BufReader<RawStdin>>,
}

/// A locked [`Stdin`]: buffered reads of standard input, line by line if need be, that other
/// green threads do not interleave with; like [`std::io::StdinLock`].
#[derive(Debug)]
pub struct StdinLock<'a> {
    guard: MutexGuard<'a, BufReader<RawStdin>>,
}

/// The process's [`Stdin`] (see there).
pub fn stdin() -> Stdin {
    static BUFFERED: OnceLock<Mutex<BufReader<RawStdin>>> = OnceLock::new();
    Stdin { buffered: BUFFERED.get_or_init(|| Mutex::new(BufReader::new(RawStdin))) }
}

impl Stdin {
    /// Locks the handle for buffered reads; the lock is released when the guard is dropped.
    /// Parks while another green thread holds it.
    pub fn lock(&self) -> StdinLock<'static> {
        // A reader that panicked while holding the lock left the buffer as it was: still usable.
        StdinLock { guard: self.buffered.lock().unwrap_or_else(|e| e.into_inner()) }
    }

    /// Reads a line, its newline included, and appends it to `buf`; returns the bytes read, 0
    /// at the end of input. As [`BufRead::read_line`] on a lock.
    ///
    /// # Errors
    ///
    /// As [`BufRead::read_line`]; `TimedOut` inside [`green::timeout`](crate::timeout) at its
    /// deadline.
    pub fn read_line(&self, buf: &mut String) -> io::Result<usize> {
        self.lock().read_line(buf)
    }

    /// The lines of standard input, without their newlines, until its end. The iterator holds
    /// the lock, as std's does: other readers park until it is dropped.
    pub fn lines(self) -> io::Lines<StdinLock<'static>> {
        self.lock().lines()
    }
}

impl Read for Stdin {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.lock().read(buf)
    }
}

impl Read for StdinLock<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.guard.read(buf)
    }
}

impl BufRead for StdinLock<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.guard.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        self.guard.consume(amount);
    }
}

/// fd 0, read after waiting for it to be readable.
#[derive(Debug)]
struct RawStdin;

impl Read for RawStdin {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: `borrow_raw` asks that fd 0 stay open while borrowed. The borrow lasts this
        // call, and fd 0 is the process's standard input, which nothing in green closes. Code
        // that closes it meanwhile makes the wait and the read below fail with EBADF (read as
        // the end of input) or reach whatever fd 0 has become, as std's `Stdin` would.
        let fd = unsafe { BorrowedFd::borrow_raw(0) };
        loop {
            match super::wait_readable(&fd) {
                Ok(()) => {}
                Err(e) if is_closed(&e) => return Ok(0),
                Err(e) => return Err(e),
            }
            // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
            let n = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
            if n >= 0 {
                crate::coop::tick_bytes(n as usize);
                return Ok(n as usize);
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock => continue,
                _ if is_closed(&e) => return Ok(0),
                _ => return Err(e),
            }
        }
    }
}

/// fd 0 is not open: std reads that as the end of input, and so does this.
fn is_closed(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EBADF)
}
