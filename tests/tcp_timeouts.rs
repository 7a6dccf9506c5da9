//! Read, write and connect timeouts give the errors std gives on Unix: `WouldBlock` for reads
//! and writes, `TimedOut` for `connect_timeout`; and they are shared by clones.

mod io_util;

use std::io::{ErrorKind, Read, Write};
use std::time::{Duration, Instant};

use green::net::{TcpListener, TcpStream};

const TIMEOUT: Duration = Duration::from_millis(50);

#[test]
fn a_read_that_waits_too_long_gives_would_block() {
    io_util::runtime(2).block_on(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        client.set_read_timeout(Some(TIMEOUT)).unwrap();
        let start = Instant::now();
        let err = client.read(&mut [0; 16]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WouldBlock);
        assert_eq!(err.raw_os_error(), Some(libc::EAGAIN), "the error std gives: {err}");
        assert!(start.elapsed() >= TIMEOUT, "returned after {:?}", start.elapsed());
        assert!(start.elapsed() < TIMEOUT * 20, "returned after {:?}", start.elapsed());
        // The socket still works after a timeout.
        let (mut server, _) = listener.accept().unwrap();
        server.write_all(b"late").unwrap();
        let mut buf = [0; 4];
        client.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"late");
    });
}

#[test]
fn a_write_that_waits_too_long_gives_would_block() {
    io_util::runtime(2).block_on(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_server, _) = listener.accept().unwrap(); // never reads
        client.set_write_timeout(Some(TIMEOUT)).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        let start = Instant::now();
        let err = loop {
            match client.write(&chunk) {
                Ok(n) => assert!(n > 0 && start.elapsed() < Duration::from_secs(10), "the buffers never filled"),
                Err(e) => break e,
            }
        };
        assert_eq!(err.kind(), ErrorKind::WouldBlock, "{err}");
    });
}

#[test]
fn a_timeout_is_shared_with_clones_and_reported() {
    io_util::runtime(1).block_on(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let clone = client.try_clone().unwrap();
        client.set_read_timeout(Some(TIMEOUT)).unwrap();
        assert_eq!(clone.read_timeout().unwrap(), Some(TIMEOUT));
        // The kernel keeps it in clock ticks: compare to the nearest 10 ms.
        let in_std = clone.into_std().unwrap().read_timeout().unwrap().expect("carried to std");
        assert!(in_std.abs_diff(TIMEOUT) <= Duration::from_millis(10), "{in_std:?}");
        let zero = client.set_read_timeout(Some(Duration::ZERO)).unwrap_err();
        assert_eq!(zero.kind(), ErrorKind::InvalidInput);
    });
}

#[test]
fn timeouts_set_before_a_clone_or_taken_over_from_std_are_shared_too() {
    io_util::runtime(1).block_on(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        assert_eq!(client.read_timeout().unwrap(), None);
        client.set_write_timeout(Some(TIMEOUT)).unwrap();
        let clone = client.try_clone().unwrap();
        assert_eq!(clone.write_timeout().unwrap(), Some(TIMEOUT), "set before the clone");
        clone.set_write_timeout(None).unwrap();
        assert_eq!(client.write_timeout().unwrap(), None, "cleared through the clone");
        // A std stream's timeouts come along, and the clones of the green one share them.
        let (server, _) = listener.accept().unwrap();
        let std_stream = server.into_std().unwrap();
        std_stream.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let taken = TcpStream::from(std_stream);
        // The kernel keeps it in clock ticks: compare to the nearest 10 ms.
        let off_by = |d: Option<Duration>| d.expect("a timeout").abs_diff(Duration::from_millis(200));
        assert!(off_by(taken.read_timeout().unwrap()) <= Duration::from_millis(10));
        let taken_clone = taken.try_clone().unwrap();
        taken.set_read_timeout(None).unwrap();
        assert_eq!(taken_clone.read_timeout().unwrap(), None);
    });
}

#[test]
fn a_connect_that_waits_too_long_gives_timed_out() {
    io_util::runtime(1).block_on(|| {
        // A listener whose backlog is full: with a backlog of 0 and nobody accepting, the
        // kernel drops further SYNs, so the next connect hangs in the handshake.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        // SAFETY: listen has no memory-safety preconditions.
        assert_eq!(unsafe { libc::listen(std::os::fd::AsRawFd::as_raw_fd(&listener), 0) }, 0);
        let addr = listener.local_addr().unwrap();
        let mut held = Vec::new();
        let start = Instant::now();
        let err = loop {
            match TcpStream::connect_timeout(&addr, TIMEOUT) {
                Ok(s) => held.push(s),
                Err(e) => break e,
            }
            assert!(held.len() < 64, "the backlog never filled");
        };
        assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
        assert!(start.elapsed() >= TIMEOUT);
        let zero = TcpStream::connect_timeout(&addr, Duration::ZERO).unwrap_err();
        assert_eq!(zero.kind(), ErrorKind::InvalidInput);
    });
}
