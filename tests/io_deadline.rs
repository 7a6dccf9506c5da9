//! A socket call inside `green::timeout` that would wait past the deadline returns the timeout
//! error std gives for that call (a read: `WouldBlock` on Unix), rather than unwinding.

use std::io::Read;
use std::time::{Duration, Instant};

#[test]
fn a_read_under_a_deadline_returns_std_s_timeout_error() {
    green::run(|| {
        let listener = green::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let peer = green::spawn(move || listener.accept().map(|(s, _)| s));
        let mut stream = green::net::TcpStream::connect(addr).unwrap();
        let _server_side = peer.join().unwrap().unwrap(); // keeps the connection open, silent
        let start = Instant::now();
        let outcome = green::timeout(Duration::from_millis(50), || stream.read(&mut [0u8; 16]));
        let took = start.elapsed();
        match outcome {
            Ok(Err(e)) => {
                assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock, "{e}");
                // Told apart from the socket's own timeout by what it carries.
                assert!(e.get_ref().is_some_and(|inner| inner.is::<green::Elapsed>()), "{e:?}");
            }
            other => panic!("expected the read's own timeout error, got {other:?}"),
        }
        assert!(took >= Duration::from_millis(50) && took < Duration::from_secs(5), "took {took:?}");

        // The socket's own timeout, earlier than the deadline, gives std's error as it is.
        stream.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        let outcome = green::timeout(Duration::from_secs(60), || stream.read(&mut [0u8; 16]));
        match outcome {
            Ok(Err(e)) => assert_eq!(e.raw_os_error(), Some(libc::EAGAIN), "{e:?}"),
            other => panic!("expected the socket's own timeout error, got {other:?}"),
        }
    });
}

fn carries_elapsed(e: &std::io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<green::Elapsed>())
}

/// A TCP listener whose accept queue is full (backlog 0, nobody accepting): the next connect
/// hangs in the handshake. Returns the listener's address and the connections that filled it.
fn full_tcp_listener() -> (std::net::TcpListener, std::net::SocketAddr, Vec<green::net::TcpStream>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    // SAFETY: listen has no memory-safety preconditions.
    assert_eq!(unsafe { libc::listen(std::os::fd::AsRawFd::as_raw_fd(&listener), 0) }, 0);
    let addr = listener.local_addr().unwrap();
    let mut held = Vec::new();
    loop {
        match green::net::TcpStream::connect_timeout(&addr, Duration::from_millis(100)) {
            Ok(s) => held.push(s),
            Err(_) => break,
        }
        assert!(held.len() < 64, "the backlog never filled");
    }
    (listener, addr, held)
}

/// A TCP connect that reaches the `green::timeout` deadline (with no timeout of its own, or a
/// longer one) carries an `Elapsed`, and does not say it ran out its own timeout.
#[test]
fn a_tcp_connect_under_a_deadline_carries_elapsed() {
    green::run(|| {
        let (_listener, addr, _held) = full_tcp_listener();
        let outcome = green::timeout(Duration::from_millis(50), || green::net::TcpStream::connect(addr));
        match outcome {
            Ok(Err(e)) => {
                assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}");
                assert!(carries_elapsed(&e), "{e:?}");
            }
            other => panic!("expected the connect's timeout error, got {other:?}"),
        }
        let outcome = green::timeout(Duration::from_millis(50), || {
            green::net::TcpStream::connect_timeout(&addr, Duration::from_secs(60))
        });
        match outcome {
            Ok(Err(e)) => {
                assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}");
                assert!(carries_elapsed(&e), "{e:?}");
                assert!(!e.to_string().contains("60s"), "misreported as its own timeout: {e}");
            }
            other => panic!("expected the connect's timeout error, got {other:?}"),
        }
        // Its own timeout, earlier than the deadline: no Elapsed.
        let outcome = green::timeout(Duration::from_secs(60), || {
            green::net::TcpStream::connect_timeout(&addr, Duration::from_millis(50))
        });
        match outcome {
            Ok(Err(e)) => {
                assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}");
                assert!(!carries_elapsed(&e), "{e:?}");
            }
            other => panic!("expected the connect's own timeout error, got {other:?}"),
        }
    });
}

/// A datagram sent to a full receiver that reaches the `green::timeout` deadline carries an
/// `Elapsed` too, where its own write timeout gives std's error.
#[test]
fn a_unix_datagram_send_to_a_full_receiver_under_a_deadline_carries_elapsed() {
    use green::net::unix::UnixDatagram;
    green::run(|| {
        let dir = std::env::temp_dir().join(format!("green-dgram-deadline-{}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        let receiver = UnixDatagram::bind(&dir).unwrap();
        let sender = UnixDatagram::unbound().unwrap();
        // Fill the receiver's queue.
        sender.set_nonblocking(true).unwrap();
        let mut sent = 0;
        while sender.send_to(b"x", &dir).is_ok() {
            sent += 1;
            assert!(sent < 100_000, "the receiver's queue never filled");
        }
        sender.set_nonblocking(false).unwrap();
        let outcome = green::timeout(Duration::from_millis(50), || sender.send_to(b"x", &dir));
        match outcome {
            Ok(Err(e)) => {
                assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock, "{e}");
                assert!(carries_elapsed(&e), "{e:?}");
            }
            other => panic!("expected the send's timeout error, got {other:?}"),
        }
        sender.set_write_timeout(Some(Duration::from_millis(30))).unwrap();
        let outcome = green::timeout(Duration::from_secs(60), || sender.send_to(b"x", &dir));
        match outcome {
            Ok(Err(e)) => assert!(!carries_elapsed(&e), "{e:?}"),
            other => panic!("expected the send's own timeout error, got {other:?}"),
        }
        drop(receiver);
        let _ = std::fs::remove_file(&dir);
    });
}

/// A Unix stream connect to a listener whose backlog is full, at the `green::timeout`
/// deadline: a connect's timeout kind, with an `Elapsed` inside.
#[test]
fn a_unix_connect_to_a_full_backlog_under_a_deadline_carries_elapsed() {
    use green::net::unix::UnixStream;
    green::run(|| {
        let path = std::env::temp_dir().join(format!("green-connect-deadline-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        // SAFETY: listen has no memory-safety preconditions.
        assert_eq!(unsafe { libc::listen(std::os::fd::AsRawFd::as_raw_fd(&listener), 0) }, 0);
        let mut held = Vec::new();
        let e = loop {
            match green::timeout(Duration::from_millis(50), || UnixStream::connect(&path)) {
                Ok(Ok(s)) => held.push(s),
                Ok(Err(e)) => break e,
                Err(elapsed) => panic!("unwound to the timeout: {elapsed}"),
            }
            assert!(held.len() < 64, "the backlog never filled");
        };
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}");
        assert!(carries_elapsed(&e), "{e:?}");
        drop(listener);
        let _ = std::fs::remove_file(&path);
    });
}

/// A peer that always has more to send, as fast as the socket takes it: the reader of the
/// other end never waits. Returns the reader's end, and the writer (it ends once that end is
/// closed).
fn firehose() -> (green::net::TcpStream, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let writer = std::thread::spawn(move || {
        let (mut peer, _) = listener.accept().unwrap();
        let chunk = [7u8; 64 * 1024];
        while std::io::Write::write_all(&mut peer, &chunk).is_ok() {}
    });
    let stream = green::net::TcpStream::connect(addr).unwrap();
    // Let the socket fill first: from then on every read finds data.
    let mut first = [0u8; 1];
    stream.peek(&mut first).unwrap();
    green::sleep(Duration::from_millis(20));
    (stream, writer)
}

/// A read that never has to wait still stops at the `green::timeout` deadline (with the
/// read's timeout error, as at a wait), and for a cancellation: it looks once per budget. A
/// reader of an always-ready peer used to read on until the peer stopped.
#[test]
fn reads_that_never_wait_still_stop_at_the_deadline_and_when_cancelled() {
    // Without the look, both loops would run as long as the writer writes: forever.
    let limit = Duration::from_secs(60);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(std::panic::catch_unwind(|| {
            green::run(|| {
                let (mut stream, writer) = firehose();
                let start = Instant::now();
                let mut read = 0u64;
                let outcome = green::timeout(Duration::from_millis(50), || -> std::io::Result<()> {
                    loop {
                        read += stream.read(&mut [0u8; 16])? as u64;
                    }
                });
                let took = start.elapsed();
                match outcome {
                    Ok(Err(e)) => {
                        assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock, "{e}");
                        assert!(carries_elapsed(&e), "{e:?}");
                    }
                    other => panic!("expected the read's timeout error at the deadline, got {other:?}"),
                }
                assert!(read > 0 && took >= Duration::from_millis(50), "{read} bytes in {took:?}");
                drop(stream);
                writer.join().unwrap();

                let (mut stream, writer) = firehose();
                let reader = green::spawn(move || {
                    let mut buf = [0u8; 16];
                    loop {
                        if stream.read(&mut buf).unwrap() == 0 {
                            return;
                        }
                    }
                });
                green::sleep(Duration::from_millis(20));
                reader.cancel();
                assert!(reader.join().unwrap_err().is_cancelled());
                writer.join().unwrap();
            })
        }));
    });
    match rx.recv_timeout(limit) {
        Ok(result) => result.unwrap(),
        Err(_) => panic!("a read loop on an always-ready socket ran on past its deadline or cancellation"),
    }
}

/// A connected pair over loopback whose reading end holds `len` bytes, which a `peek` never
/// takes: a loop of peeks never has to wait. Returns the reading end and its peer (keep it).
fn holding(len: usize) -> (green::net::TcpStream, std::net::TcpStream) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let stream = green::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (mut peer, _) = listener.accept().unwrap();
    std::io::Write::write_all(&mut peer, &vec![7u8; len]).unwrap();
    // Wait until all of it is in the reading end's queue.
    let mut buf = vec![0u8; len];
    let start = Instant::now();
    while stream.peek(&mut buf).unwrap() < len {
        assert!(start.elapsed() < Duration::from_secs(10), "{len} bytes never arrived over loopback");
        green::sleep(Duration::from_millis(1));
    }
    (stream, peer)
}

/// The look of a call that never waits comes when the call's own tick spends the budget; the
/// bytes a read moves are charged too (a tick per 256), and a read of 4 KiB (16 ticks for the
/// call, 16 for its bytes: 1,024 is 32 of them) or of 64 KiB always left the last spend to its
/// bytes, so a bulk reader never looked at its deadline or its cancellation. Peeks of a queue
/// that holds enough stand for a peer that always has more, without a race with its writer.
#[test]
fn reads_whose_bytes_spend_the_budget_still_look_at_the_deadline_and_cancellation() {
    let limit = Duration::from_secs(30);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(std::panic::catch_unwind(|| {
            green::run(|| {
                for size in [4 * 1024, 64 * 1024] {
                    let (stream, _peer) = holding(size);
                    let mut buf = vec![0u8; size];
                    let mut peeks = 0u64;
                    let outcome = green::timeout(Duration::from_millis(20), || -> std::io::Result<()> {
                        loop {
                            assert_eq!(stream.peek(&mut buf)?, size);
                            peeks += 1;
                        }
                    });
                    match outcome {
                        Ok(Err(e)) => assert!(carries_elapsed(&e), "peeks of {size} bytes: {e:?}"),
                        other => panic!("peeks of {size} bytes: expected the deadline's error, got {other:?}"),
                    }
                    assert!(peeks > 0, "peeks of {size} bytes");

                    let (stream, peer) = holding(size);
                    let peeker = green::spawn(move || {
                        let mut buf = vec![0u8; size];
                        while stream.peek(&mut buf).unwrap() > 0 {}
                    });
                    green::sleep(Duration::from_millis(20));
                    peeker.cancel();
                    assert!(peeker.join().unwrap_err().is_cancelled(), "peeks of {size} bytes");
                    drop(peer);
                }
            })
        }));
    });
    match rx.recv_timeout(limit) {
        Ok(result) => result.unwrap(),
        Err(_) => panic!("a loop of peeks of 4 or 64 KiB ran on past its deadline or cancellation"),
    }
}
