//! Helpers shared by the I/O tests.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::process::Output;
use std::time::Duration;

/// A runtime with `n` workers.
pub fn runtime(workers: usize) -> green::Runtime {
    green::Runtime::builder().workers(workers).build().expect("runtime")
}

/// A small deterministic generator (xorshift64*), for payloads that differ per connection.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `lo..hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo) as u64) as usize
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Echoes everything read back until end of stream.
pub fn echo<S>(mut stream: S) -> io::Result<u64>
where
    S: Read + Write,
{
    let mut buf = [0; 4096];
    let mut total = 0;
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(total);
        }
        stream.write_all(&buf[..n])?;
        total += n as u64;
    }
}

#[path = "../common/mod.rs"]
mod common;
#[allow(unused_imports)]
pub use common::child::{CHILD, is_child, run_child};
#[allow(unused_imports)]
pub use common::{bounded, eventually, open_fds};

/// Asserts that a child run printed `child: ok` and exited successfully.
pub fn assert_child_ok(output: &Output) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "child failed: {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}", output.status);
    assert!(stdout.contains("child: ok"), "stdout:\n{stdout}\nstderr:\n{stderr}");
}

/// The number of fds open in this process, counted without opening a new one (works at an
/// exhausted fd limit): the fds below the soft limit that `fcntl` knows.
pub fn open_fds_no_alloc() -> usize {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `limit` is valid for writes of a `rlimit`.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }, 0);
    (0..limit.rlim_cur.min(1 << 20) as i32)
        // SAFETY: F_GETFD on any number has no memory-safety preconditions.
        .filter(|&fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0)
        .count()
}

/// Sets `SO_LINGER` to 0 on `socket`: closing it then sends a reset instead of a FIN.
pub fn reset_on_close(socket: &impl AsRawFd) {
    let linger = libc::linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: the option value points at a live `linger` of the length passed.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const linger).cast(),
            size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "setsockopt(SO_LINGER): {}", io::Error::last_os_error());
}

/// Runs `f` on a green thread of a one-worker runtime, and asserts that it never parked: a
/// green thread spawned just before would have run then.
pub fn without_parking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    runtime(1).block_on(move || {
        let ran = Arc::new(AtomicBool::new(false));
        let other = green::spawn({
            let ran = ran.clone();
            move || ran.store(true, Ordering::SeqCst)
        });
        let out = f();
        assert!(!ran.load(Ordering::SeqCst), "the call parked: another green thread ran meanwhile");
        other.join().unwrap();
        out
    })
}

/// Whether `fd`'s open file is non-blocking (`O_NONBLOCK`).
pub fn is_nonblocking(fd: &impl AsRawFd) -> bool {
    // SAFETY: F_GETFL has no memory-safety preconditions.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    assert!(flags >= 0, "fcntl(F_GETFL): {}", io::Error::last_os_error());
    flags & libc::O_NONBLOCK != 0
}

/// Runs `body`; should it not be done within 5 s, a watchdog thread calls `unstick` (which
/// should let a stuck receive return) once. Returns what `body` returned, and whether the
/// watchdog had to step in.
pub fn with_watchdog<T>(unstick: impl FnOnce() + Send + 'static, body: impl FnOnce() -> T) -> (T, bool) {
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if finished.recv_timeout(Duration::from_secs(5)).is_ok() {
            return false;
        }
        unstick();
        true
    });
    let value = body();
    let _ = done.send(()); // gone if the watchdog gave up waiting
    (value, watchdog.join().unwrap())
}
