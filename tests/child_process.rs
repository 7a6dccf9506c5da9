//! `green::io::wait_child` and `green::io::set_nonblocking`: a child's exit and pipes without
//! blocking the worker.

use std::io::{ErrorKind, Read};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

mod common;

/// A child that runs 100 ms: the wait parks, so another green thread on the only worker keeps
/// running meanwhile; the exit code comes back as std's `wait` gives it.
#[test]
fn waiting_for_a_child_parks_and_gives_its_status() {
    common::bounded(Duration::from_secs(60), || {
        common::runtime(1).block_on(|| {
            let mut child = Command::new("sh").args(["-c", "sleep 0.1; exit 3"]).spawn().unwrap();
            let done = Arc::new(AtomicBool::new(false));
            let turns = Arc::new(AtomicUsize::new(0));
            let other = {
                let (done, turns) = (done.clone(), turns.clone());
                green::spawn(move || {
                    while !done.load(Ordering::Acquire) {
                        turns.fetch_add(1, Ordering::Relaxed);
                        green::sleep(Duration::from_millis(5));
                    }
                })
            };
            let start = Instant::now();
            let status = green::io::wait_child(&mut child).unwrap();
            done.store(true, Ordering::Release);
            other.join().unwrap();
            assert_eq!(status.code(), Some(3));
            assert!(start.elapsed() >= Duration::from_millis(100), "returned before the child ended");
            assert!(turns.load(Ordering::Relaxed) >= 5, "the worker was blocked: {turns:?} turns");
            // Reaped: std's own wait gives the same status again, at once.
            assert_eq!(child.wait().unwrap().code(), Some(3));
            assert_eq!(green::io::wait_child(&mut child).unwrap().code(), Some(3));
        });
    });
}

/// On a plain OS thread the wait blocks, as std's does; a `green::timeout` ends it there too,
/// with an `Elapsed` inside the `TimedOut`, and the child runs on.
#[test]
fn on_a_plain_thread_it_blocks_and_a_green_timeout_ends_it() {
    common::bounded(Duration::from_secs(60), || {
        let mut child = Command::new("sh").args(["-c", "exit 0"]).spawn().unwrap();
        assert!(green::io::wait_child(&mut child).unwrap().success());

        let mut child = Command::new("sleep").arg("10").spawn().unwrap();
        let start = Instant::now();
        let err = green::timeout(Duration::from_millis(50), || green::io::wait_child(&mut child)).unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
        assert!(err.get_ref().is_some_and(|inner| inner.is::<green::Elapsed>()), "{err:?}");
        assert!(start.elapsed() >= Duration::from_millis(50));
        assert_eq!(child.try_wait().unwrap(), None, "the child runs on");
        child.kill().unwrap();
        assert!(!green::io::wait_child(&mut child).unwrap().success());
    });
}

/// A child's stdout, made non-blocking, is read to its end by a green thread that parks
/// between reads; stdin is closed by the wait, so a child that reads to the end finishes.
#[test]
fn a_child_s_pipes_are_read_through_readiness() {
    common::bounded(Duration::from_secs(60), || {
        common::runtime(1).block_on(|| {
            let mut child = Command::new("sh")
                .args(["-c", "cat >/dev/null; for i in 1 2 3; do echo line $i; sleep 0.01; done"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let mut stdout = child.stdout.take().unwrap();
            green::io::set_nonblocking(&stdout, true).unwrap();
            assert_eq!(stdout.read(&mut [0; 8]).unwrap_err().kind(), ErrorKind::WouldBlock);
            let reader = green::spawn(move || {
                let (mut out, mut buf) = (Vec::new(), [0; 64]);
                loop {
                    match stdout.read(&mut buf) {
                        Ok(0) => return out,
                        Ok(n) => out.extend_from_slice(&buf[..n]),
                        Err(e) if e.kind() == ErrorKind::WouldBlock => green::io::wait_readable(&stdout).unwrap(),
                        Err(e) => panic!("{e}"),
                    }
                }
            });
            // The child waits for the end of its input: the wait closes stdin first.
            assert!(green::io::wait_child(&mut child).unwrap().success());
            assert_eq!(reader.join().unwrap(), b"line 1\nline 2\nline 3\n");
        });
    });
}

/// `set_nonblocking(false)` turns the flag off again; a closed fd is an error, not a panic.
#[test]
fn set_nonblocking_turns_the_flag_both_ways() {
    let (mut reader, writer) = std::io::pipe().unwrap();
    green::io::set_nonblocking(&reader, true).unwrap();
    assert_eq!(reader.read(&mut [0; 1]).unwrap_err().kind(), ErrorKind::WouldBlock);
    green::io::set_nonblocking(&reader, false).unwrap();
    drop(writer);
    assert_eq!(reader.read(&mut [0; 1]).unwrap(), 0, "blocking again: end of file, not WouldBlock");
}

/// Where `pidfd_open` is refused with `EPERM` (the seccomp profiles of older container runtimes
/// refuse system calls they do not know so), the wait looks again every few milliseconds, as
/// where there is no pidfd at all.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
#[test]
fn without_a_pidfd_allowed_it_still_waits() {
    common::bounded(Duration::from_secs(60), || {
        // On a thread of its own: a seccomp filter stays with the thread that installs it.
        std::thread::spawn(|| {
            refuse_pidfd_open();
            let mut child = Command::new("sh").args(["-c", "sleep 0.05; exit 4"]).spawn().unwrap();
            assert_eq!(green::io::wait_child(&mut child).unwrap().code(), Some(4));
        })
        .join()
        .unwrap();
    });
}

/// Makes `pidfd_open` fail with `EPERM` on the calling thread (and threads and processes it
/// starts).
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
fn refuse_pidfd_open() {
    const NR: u32 = 0; // offset of `nr` in `struct seccomp_data`
    let filter = [
        libc::sock_filter { code: (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16, jt: 0, jf: 0, k: NR },
        libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            jt: 0,
            jf: 1,
            k: libc::SYS_pidfd_open as u32,
        },
        libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
        },
        libc::sock_filter { code: (libc::BPF_RET | libc::BPF_K) as u16, jt: 0, jf: 0, k: libc::SECCOMP_RET_ALLOW },
    ];
    let program = libc::sock_fprog { len: filter.len() as u16, filter: filter.as_ptr().cast_mut() };
    // SAFETY: prctl with these options reads `program`, valid for the call; the filter only
    // changes what one system call returns, on this thread.
    unsafe {
        assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
        assert_eq!(
            libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &raw const program),
            0,
            "{}",
            std::io::Error::last_os_error()
        );
    }
}
