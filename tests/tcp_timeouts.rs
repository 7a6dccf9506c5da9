//! Read, write and connect timeouts give the errors std gives on Unix: `WouldBlock` for reads
//! and writes, `TimedOut` for `connect_timeout`; and they are shared by clones. Non-blocking
//! mode, std's zero wait, gives `WouldBlock` at once.

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

/// `set_nonblocking`, as std has it. While it is on, an accept, a read or a
/// write that would wait returns `WouldBlock` at once: on a green thread without parking, on a
/// plain thread without blocking. Clones share the mode; `false` makes calls wait again; the
/// fd stays non-blocking underneath, and `into_std` leaves it so only while the mode is on.
#[test]
fn non_blocking_mode_returns_would_block_instead_of_waiting() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.try_clone().unwrap().set_nonblocking(true).unwrap(); // through a clone
    assert_eq!(listener.accept().unwrap_err().kind(), ErrorKind::WouldBlock); // a plain thread
    let listener = io_util::without_parking(move || {
        assert_eq!(listener.accept().unwrap_err().kind(), ErrorKind::WouldBlock);
        listener
    });
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap(); // one is queued: taken at once
    assert!(io_util::is_nonblocking(&listener.into_std().unwrap()), "into_std keeps the mode");

    client.set_nonblocking(true).unwrap();
    assert_eq!(fill_send_buffer(&client).kind(), ErrorKind::WouldBlock);
    assert_eq!((&client).read(&mut [0; 8]).unwrap_err().kind(), ErrorKind::WouldBlock);
    let client = io_util::without_parking(move || {
        assert_eq!((&client).read(&mut [0; 8]).unwrap_err().kind(), ErrorKind::WouldBlock);
        // The kernel may have made room since (the buffers grow as the peer's window opens):
        // fill it again, then the write that would wait returns at once.
        assert_eq!(fill_send_buffer(&client).kind(), ErrorKind::WouldBlock);
        client
    });

    // Off again, through a clone: a read waits for the data another green thread writes.
    let clone = client.try_clone().unwrap();
    clone.set_nonblocking(false).unwrap();
    assert!(io_util::is_nonblocking(&client), "the fd stays non-blocking underneath");
    let client = io_util::runtime(1).block_on(move || {
        let writer = green::spawn(move || (&server).write_all(b"late").map(|()| server));
        let mut buf = [0; 4];
        (&client).read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"late");
        drop(writer.join().unwrap().unwrap());
        client
    });

    // Back to std: non-blocking while the mode is on, blocking once it is off.
    clone.set_nonblocking(true).unwrap();
    let std_clone = clone.into_std().unwrap();
    assert!(io_util::is_nonblocking(&std_clone));
    client.set_nonblocking(false).unwrap();
    let std_client = client.into_std().unwrap();
    assert!(!io_util::is_nonblocking(&std_client));
}

/// `From<OwnedFd>`, as std has it, takes a socket over like `From<std>`:
/// non-blocking underneath, calls that park (std's non-blocking mode is not carried over),
/// and its timeouts.
#[test]
fn a_socket_taken_over_from_an_owned_fd_parks_and_keeps_its_timeouts() {
    use std::os::fd::OwnedFd;

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let std_stream = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    std_stream.set_nonblocking(true).unwrap();
    std_stream.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let stream = TcpStream::from(OwnedFd::from(std_stream));
    assert!(io_util::is_nonblocking(&stream));
    let off_by = stream.read_timeout().unwrap().expect("a timeout").abs_diff(Duration::from_millis(200));
    assert!(off_by <= Duration::from_millis(10), "the kernel keeps it in clock ticks");
    let (mut peer, _) = listener.accept().unwrap();
    let read = io_util::runtime(1).block_on(move || {
        let writer = green::spawn(move || peer.write_all(b"x").map(|()| peer));
        let mut buf = [0; 1];
        let read = (&stream).read(&mut buf).map(|n| buf[..n].to_vec());
        drop(writer.join().unwrap().unwrap());
        read
    });
    assert_eq!(read.unwrap(), b"x", "the read parked until the green writer ran");
}

/// Writes 64 KiB at a time until a write fails, and returns that error (at most 256 MiB).
fn fill_send_buffer(stream: &TcpStream) -> std::io::Error {
    let chunk = vec![7; 1 << 16];
    let mut written = 0;
    loop {
        match (&*stream).write(&chunk) {
            Ok(n) => written += n,
            Err(e) => return e,
        }
        assert!(written < 1 << 28, "the send buffer never filled");
    }
}
