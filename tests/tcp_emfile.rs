//! Running out of fds makes `accept` fail with `EMFILE`, as std's does; nothing panics or
//! leaks, and the listener takes the waiting connection once an fd is free again. A readiness
//! wait with no fd left to duplicate still works, and leaves the socket's own registration
//! alone.
//!
//! The limit is process-wide, so the test runs in a child process (this binary, re-run on just
//! this test with `GREEN_TEST_CHILD` set), which lowers its own `RLIMIT_NOFILE`.

mod io_util;

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

const TEST: &str = "accept_after_emfile_takes_the_waiting_connection";
const WAIT_TEST: &str = "readiness_waits_with_no_fd_left_leave_the_socket_s_registration_alone";

#[test]
fn accept_after_emfile_takes_the_waiting_connection() {
    if io_util::is_child() {
        child();
        return;
    }
    io_util::assert_child_ok(&io_util::run_child(TEST, Duration::from_secs(60)));
}

const CHILD_TEST: &str = "waiting_for_a_child_process_with_no_fd_left_looks_again";

/// `green::io::wait_child` with no fd left for its pidfd: it looks again every few
/// milliseconds instead of failing, and gives the child's status.
#[test]
fn waiting_for_a_child_process_with_no_fd_left_looks_again() {
    if io_util::is_child() {
        io_util::runtime(1).block_on(|| {
            let mut child = std::process::Command::new("sh").args(["-c", "sleep 0.05; exit 5"]).spawn().unwrap();
            with_no_fd_left(|| {
                let status = green::io::wait_child(&mut child).expect("a wait with no fd left for a pidfd");
                assert_eq!(status.code(), Some(5));
            });
        });
        println!("child: ok");
        return;
    }
    io_util::assert_child_ok(&io_util::run_child(CHILD_TEST, Duration::from_secs(60)));
}

fn highest_fd() -> i32 {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().to_str().and_then(|s| s.parse().ok()))
        .max()
        .unwrap()
}

fn set_fd_limit(soft: u64) {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `limit` is valid for writes of a `rlimit`.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }, 0);
    limit.rlim_cur = soft;
    // SAFETY: `limit` is a valid `rlimit`.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
}

fn child() {
    let rt = io_util::runtime(1);
    rt.block_on(|| {
        let listener = green::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // Two clients, connected by the kernel before anyone accepts.
        let mut first = std::net::TcpStream::connect(addr).unwrap();
        let mut second = std::net::TcpStream::connect(addr).unwrap();
        first.write_all(b"one").unwrap();
        second.write_all(b"two").unwrap();

        let mut hogs = no_fd_left();
        let before = io_util::open_fds_no_alloc();
        let err = listener.accept().unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EMFILE), "{err}");
        let err = listener.accept().unwrap_err(); // again: nothing broke, nothing leaked
        assert_eq!(err.raw_os_error(), Some(libc::EMFILE), "{err}");
        assert_eq!(io_util::open_fds_no_alloc(), before);

        // Free one fd: the waiting connection is accepted.
        let freed = hogs.pop().unwrap();
        assert!(freed.as_raw_fd() > 0);
        drop(freed);
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0; 3];
        s.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"one");
        drop(s);

        // And the listener keeps working.
        hogs.clear();
        let (mut s, _) = listener.accept().unwrap();
        s.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"two");
        s.write_all(b"ok").unwrap();
        let mut reply = [0; 2];
        second.read_exact(&mut reply).unwrap();
        assert_eq!(&reply, b"ok");
    });
    println!("child: ok");
}

#[test]
fn readiness_waits_with_no_fd_left_leave_the_socket_s_registration_alone() {
    if io_util::is_child() {
        wait_child();
        return;
    }
    io_util::assert_child_ok(&io_util::run_child(WAIT_TEST, Duration::from_secs(60)));
}

/// Leaves no fd number free: the limit goes just above the highest open one, then the gaps
/// are filled. Dropping what it returns frees them.
fn no_fd_left() -> Vec<OwnedFd> {
    let limit = highest_fd() as u64 + 3;
    set_fd_limit(limit);
    let mut hogs: Vec<OwnedFd> = Vec::new();
    while let Ok(f) = std::fs::File::open("/dev/null") {
        hogs.push(f.into());
    }
    hogs
}

/// Runs `f` with [`no_fd_left`], then frees the fds.
fn with_no_fd_left(f: impl FnOnce()) {
    let hogs = no_fd_left();
    f();
    drop(hogs);
}

fn wait_child() {
    let rt = io_util::runtime(1);
    rt.block_on(|| {
        let mut buf = [0; 8];
        // 1. The socket registered first (a read that waited), then a readiness wait for it.
        let (a, b) = green::net::unix::UnixStream::pair().unwrap();
        b.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
        assert_eq!((&b).read(&mut buf).unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
        b.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        with_no_fd_left(|| {
            let writer = green::spawn(move || {
                green::sleep(Duration::from_millis(20));
                (&a).write_all(b"x").unwrap();
                a
            });
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            green::io::wait_readable_until(&b, deadline).expect("a wait with no fd left to duplicate");
            assert_eq!((&b).read(&mut buf).unwrap(), 1);
            drop(writer.join().unwrap());
        });

        // 2. A readiness wait first, then the socket's own read, which registers it.
        let (a, b) = green::net::unix::UnixStream::pair().unwrap();
        b.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let b = std::sync::Arc::new(b);
        with_no_fd_left(|| {
            let waiting = b.clone();
            let waiter = green::spawn(move || {
                green::io::wait_readable_until(&*waiting, std::time::Instant::now() + Duration::from_secs(10))
            });
            green::sleep(Duration::from_millis(5)); // the waiter is pausing
            let writer = green::spawn(move || {
                green::sleep(Duration::from_millis(20));
                (&a).write_all(b"y").unwrap();
                green::sleep(Duration::from_millis(20));
                (&a).write_all(b"z").unwrap(); // what the waiter sees, the read having taken "y"
                a
            });
            let mut one = [0; 1];
            assert_eq!((&*b).read(&mut one).expect("the socket's own read while a wait is pending"), 1);
            assert_eq!(&one, b"y");
            waiter.join().unwrap().expect("the wait");
            drop(writer.join().unwrap());
        });
    });
    println!("child: ok");
}
