//! Waiting on the readiness of an fd green does not wrap: a pipe's read end parks until a
//! writer on another worker writes, and its write end parks until a reader makes room; a
//! regular file or a directory is ready at once, as poll(2) says; a deadline gives `TimedOut`.

mod io_util;

use io_util::bounded;

use std::io::{ErrorKind, Read, Write};
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

fn nonblocking_pipe() -> (std::fs::File, std::fs::File) {
    let mut fds = [0; 2];
    // SAFETY: `fds` is valid for two ints, which pipe2 fills.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) }, 0);
    // SAFETY: both fds were just created and are owned by nobody else.
    let (r, w) = unsafe {
        (
            <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fds[0]),
            <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fds[1]),
        )
    };
    (r.into(), w.into())
}

/// How long a test may take before it counts as hung: a wait that blocked its worker instead of
/// parking would keep the writer, on the same worker, from ever running.
const LIMIT: Duration = Duration::from_secs(20);

#[test]
fn a_pipe_read_end_parks_until_data_arrives() {
    bounded(LIMIT, || io_util::runtime(1).block_on(read_end_parks));
}

fn read_end_parks() {
    let (mut r, mut w) = nonblocking_pipe();
    // On the same (only) worker: it runs only if the wait below parks.
    let writer = green::spawn(move || {
        green::sleep(Duration::from_millis(20));
        w.write_all(b"through the pipe").unwrap();
    });
    let mut got = Vec::new();
    let mut buf = [0; 64];
    while got.len() < 16 {
        match r.read(&mut buf) {
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => green::io::wait_readable(&r).unwrap(),
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(got, b"through the pipe");
    writer.join().unwrap();
}

#[test]
fn a_full_pipe_write_end_parks_until_there_is_room() {
    bounded(LIMIT, || io_util::runtime(1).block_on(write_end_parks));
}

fn write_end_parks() {
    let (mut r, mut w) = nonblocking_pipe();
    let chunk = [1u8; 4096];
    let full = loop {
        if let Err(e) = w.write(&chunk) {
            break e;
        }
    };
    assert_eq!(full.kind(), ErrorKind::WouldBlock, "{full}");
    // On the same (only) worker: it runs only if the wait below parks.
    let reader = green::spawn(move || {
        green::sleep(Duration::from_millis(20));
        let mut buf = vec![0; 65536];
        let mut n = 0;
        while n < 65536 {
            match r.read(&mut buf) {
                Ok(k) => n += k,
                Err(e) if e.kind() == ErrorKind::WouldBlock => green::io::wait_readable(&r).unwrap(),
                Err(e) => panic!("{e}"),
            }
        }
        r
    });
    let start = Instant::now();
    green::io::wait_writable(&w).unwrap();
    assert!(start.elapsed() >= Duration::from_millis(10), "it did not wait");
    assert!(w.write(&chunk).is_ok());
    drop(reader.join().unwrap());
}

#[test]
fn a_deadline_gives_timed_out_and_a_regular_file_is_ready_at_once() {
    io_util::runtime(1).block_on(|| {
        let (r, _w) = nonblocking_pipe();
        let start = Instant::now();
        let err = green::io::wait_readable_until(&r, start + Duration::from_millis(20)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
        let named = format!("fd {} did not become readable", std::os::fd::AsRawFd::as_raw_fd(&r));
        assert!(err.to_string().contains(&named), "{err}");
        assert!(start.elapsed() >= Duration::from_millis(20));

        // Always ready, as poll(2) reports them: a wait returns at once, without a deadline.
        let path = std::env::temp_dir().join(format!("green-readiness-{}", std::process::id()));
        let file = std::fs::File::options().read(true).write(true).create(true).truncate(true).open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        green::io::wait_readable(&file).unwrap();
        green::io::wait_writable(&file).unwrap();
        green::io::wait_readable(&std::fs::File::open(".").unwrap()).unwrap();
    });
}

/// At a `green::timeout` deadline a wait gives `TimedOut` with a `green::Elapsed` inside; at
/// its own deadline, the plain `TimedOut` that names the fd. On a green thread and a plain one.
#[test]
fn a_green_timeout_deadline_is_told_from_the_wait_s_own() {
    let check = || {
        let (r, _w) = nonblocking_pipe();
        let start = Instant::now();
        let err = green::timeout(Duration::from_millis(20), || green::io::wait_readable(&r)).unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
        assert!(err.get_ref().is_some_and(|inner| inner.is::<green::Elapsed>()), "{err:?}");
        assert!(start.elapsed() >= Duration::from_millis(20), "early");

        // Its own deadline first: no `Elapsed`.
        let own = Instant::now() + Duration::from_millis(10);
        let err =
            green::timeout(Duration::from_secs(60), || green::io::wait_readable_until(&r, own)).unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
        assert!(err.get_ref().is_some_and(|inner| !inner.is::<green::Elapsed>()), "{err:?}");
        assert!(Instant::now() >= own, "early");
    };
    io_util::runtime(1).block_on(check);
    check();
}

#[test]
fn an_fd_that_a_green_socket_registered_can_be_waited_on_too() {
    io_util::runtime(1).block_on(|| {
        let (a, b) = green::net::unix::UnixStream::pair().unwrap();
        // Register `b` with the worker's poller by a read that parks and times out.
        b.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
        assert!((&b).read(&mut [0; 1]).is_err());
        let writer = green::spawn(move || {
            green::sleep(Duration::from_millis(10));
            (&a).write_all(b"!").unwrap();
            a
        });
        green::io::wait_readable(&b).unwrap();
        let mut byte = [0; 1];
        assert_eq!((&b).read(&mut byte).unwrap(), 1);
        assert_eq!(&byte, b"!");
        drop(writer.join().unwrap());
    });
}

/// The other order: a green thread waits on a green socket's fd before the socket itself has
/// registered, and then a read through the socket parks on the same worker. Both see the data
/// (the read used to fail with `EEXIST`: the wait had registered the socket's own fd number).
#[test]
fn a_socket_can_park_while_its_fd_is_waited_on() {
    io_util::runtime(1).block_on(|| {
        let (a, b) = green::net::unix::UnixStream::pair().unwrap();
        let b = std::sync::Arc::new(b);
        let waiter = {
            let b = b.clone();
            green::spawn(move || green::io::wait_readable(&*b))
        };
        let writer = green::spawn(move || {
            green::sleep(Duration::from_millis(20));
            (&a).write_all(b"hi").unwrap();
            a
        });
        // One worker: the waiter has parked by the time this green thread runs again.
        green::yield_now();
        let mut buf = [0; 2];
        (&*b).read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hi");
        // The read may have taken the data before the waiter looked; the peer's close leaves
        // the fd readable for good.
        drop(writer.join().unwrap());
        waiter.join().unwrap().unwrap();
    });
}

#[test]
fn on_a_plain_os_thread_it_blocks_in_poll() {
    let (mut r, mut w) = nonblocking_pipe();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        w.write_all(b"x").unwrap();
    });
    green::io::wait_readable(&r).unwrap();
    let mut buf = [0; 1];
    assert_eq!(r.read(&mut buf).unwrap(), 1);
    t.join().unwrap();
}
