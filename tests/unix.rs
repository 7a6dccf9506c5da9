//! Unix stream and datagram sockets between green threads on different workers, every byte
//! verified; and the regressions of their addresses, vectored calls, and datagram calls.

mod io_util;

use std::io::{IoSlice, IoSliceMut, Read, Write};

use green::net::unix::{UnixDatagram, UnixListener, UnixStream};
use io_util::Rng;

/// A socket path under the temp directory, removed when dropped, however the test ends.
struct TempPath(std::path::PathBuf);

impl std::ops::Deref for TempPath {
    type Target = std::path::Path;

    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl AsRef<std::path::Path> for TempPath {
    fn as_ref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn temp_path(name: &str) -> TempPath {
    let path = std::env::temp_dir().join(format!("green-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    TempPath(path)
}

#[test]
fn stream_sockets_echo_through_a_listener() {
    const CLIENTS: usize = 50;
    let path = temp_path("unix-stream");
    io_util::runtime(2).block_on(|| {
        let listener = UnixListener::bind(&path).unwrap();
        let server = green::Builder::new()
            .worker(1)
            .spawn(move || {
                let handlers: Vec<_> = listener
                    .incoming()
                    .take(CLIENTS)
                    .map(|s| {
                        let s = s.unwrap();
                        green::spawn(move || io_util::echo(s).unwrap())
                    })
                    .collect();
                handlers.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
            })
            .unwrap();
        let clients: Vec<_> = (0..CLIENTS)
            .map(|i| {
                let path = path.to_path_buf();
                green::spawn(move || {
                    let mut rng = Rng::new(i as u64 + 100);
                    let len = rng.range(1, 100_000);
                    let payload = rng.bytes(len);
                    let stream = UnixStream::connect(&path).unwrap();
                    let mut back = vec![0; payload.len()];
                    green::scope(|s| {
                        s.spawn(|| (&stream).write_all(&payload).unwrap());
                        (&stream).read_exact(&mut back).unwrap();
                    });
                    assert!(back == payload, "client {i}: bytes differ");
                    payload.len() as u64
                })
            })
            .collect();
        let sent: u64 = clients.into_iter().map(|c| c.join().unwrap()).sum();
        assert_eq!(server.join().unwrap(), sent);
    });
}

#[test]
fn a_stream_pair_reports_end_of_stream() {
    io_util::runtime(2).block_on(|| {
        let (a, mut b) = UnixStream::pair().unwrap();
        let writer = green::Builder::new()
            .worker(1)
            .spawn(move || {
                let mut a = a;
                a.write_all(&[7; 300_000]).unwrap();
            })
            .unwrap();
        let mut got = Vec::new();
        b.read_to_end(&mut got).unwrap();
        assert!(got.len() == 300_000 && got.iter().all(|&x| x == 7));
        writer.join().unwrap();
    });
}

#[test]
fn datagrams_round_trip() {
    const ROUNDS: usize = 300;
    let path = temp_path("unix-dgram");
    let _client = TempPath(client_path());
    io_util::runtime(2).block_on(|| {
        let server = UnixDatagram::bind(&path).unwrap();
        let echo = green::Builder::new()
            .worker(1)
            .spawn(move || {
                let mut buf = [0; 4096];
                let (a, b) = UnixDatagram::pair().unwrap();
                for _ in 0..ROUNDS {
                    let (n, _) = server.recv_from(&mut buf).unwrap();
                    a.send(&buf[..n]).unwrap(); // through a pair, for the other calls
                    let m = b.recv(&mut buf).unwrap();
                    assert_eq!(m, n);
                    server.send_to(&buf[..m], client_path()).unwrap();
                }
            })
            .unwrap();
        let client = UnixDatagram::bind(client_path()).unwrap();
        let mut rng = Rng::new(9);
        let mut buf = [0; 4096];
        for i in 0..ROUNDS {
            let len = rng.range(1, 4000);
            let payload = rng.bytes(len);
            client.send_to(&payload, &path).unwrap();
            let (n, from) = client.recv_from(&mut buf).unwrap();
            assert_eq!(from.as_pathname(), Some(&*path));
            assert_eq!(&buf[..n], &payload[..], "round {i}");
        }
        echo.join().unwrap();
    });
}

fn client_path() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("green-test-unix-dgram-client-{}", std::process::id()))
}

/// Regression: an abstract name of 107 bytes, the longest `sun_path` holds
/// after its leading NUL, was refused as too long, though std binds and connects to it.
#[cfg(target_os = "linux")]
#[test]
fn connect_addr_takes_the_longest_abstract_name() {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::SocketAddr;

    let mut name = format!("green-test-longest-{}-", std::process::id()).into_bytes();
    name.resize(107, b'x');
    let addr = SocketAddr::from_abstract_name(&name).unwrap();
    let listener = UnixListener::bind_addr(&addr).unwrap();
    let stream = UnixStream::connect_addr(&addr).unwrap();
    assert_eq!(stream.peer_addr().unwrap().as_abstract_name(), Some(&name[..]));
    drop(listener.accept().unwrap());
    // One byte more is too long, for std and for green alike.
    name.push(b'x');
    assert!(SocketAddr::from_abstract_name(&name).is_err());
    // A pathname of 108 bytes has no room for its NUL.
    let long_path = std::path::PathBuf::from("/".repeat(108));
    let err = UnixStream::connect(&long_path).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    // The error says how long the path is and how long it may be.
    assert!(err.to_string().contains("108 bytes") && err.to_string().contains("107"), "{err}");
}

/// Regression: vectored calls with more slices than `IOV_MAX` (1024) failed
/// with `EMSGSIZE`; like std's, they now pass the first 1024 and return a partial count.
#[test]
fn vectored_calls_with_more_slices_than_iov_max_are_partial() {
    const SLICES: usize = 1100;
    const IOV_MAX: usize = 1024;
    io_util::runtime(1).block_on(|| {
        let (a, b) = UnixStream::pair().unwrap();
        let data: Vec<u8> = (0..SLICES).map(|i| i as u8).collect();
        let out: Vec<IoSlice<'_>> = data.chunks(1).map(IoSlice::new).collect();
        assert_eq!((&a).write_vectored(&out).unwrap(), IOV_MAX);
        drop(a);
        let mut back = vec![0u8; SLICES];
        let mut got = Vec::new();
        loop {
            let mut slices: Vec<IoSliceMut<'_>> = back.chunks_mut(1).map(IoSliceMut::new).collect();
            let n = (&b).read_vectored(&mut slices).unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&back[..n]);
        }
        assert_eq!(got, data[..IOV_MAX]);
    });
}

/// Regression: datagram receives called std's methods, which pass no
/// `MSG_DONTWAIT`. Once `into_std` on a clone had made the socket blocking (`O_NONBLOCK`
/// belongs to the open file, shared by every handle), a receive blocked the worker in the
/// kernel, and the green thread that would send the datagram never ran. On one worker, each
/// receive here can finish only by parking; a watchdog thread ends a stuck one after 5 s, and
/// says so.
#[test]
fn datagram_receives_park_after_a_clone_made_the_socket_blocking() {
    let (a, b) = UnixDatagram::pair().unwrap();
    let blocking = b.try_clone().unwrap().into_std().unwrap();
    let unstick = a.try_clone().unwrap();
    let unstick = move || {
        for _ in 0..2 {
            unstick.send(b"watchdog").unwrap(); // on a plain thread: like std
        }
    };
    let a = std::sync::Arc::new(a);
    let (got, stuck) = io_util::with_watchdog(unstick, || {
        io_util::runtime(1).block_on(move || {
            let mut got = Vec::new();
            for with_address in [false, true] {
                // Queued on this worker, and run only once the receive below parks.
                let sender = green::spawn({
                    let a = a.clone();
                    move || a.send(b"green").unwrap()
                });
                let mut buf = [0; 16];
                let n = if with_address { b.recv_from(&mut buf).unwrap().0 } else { b.recv(&mut buf).unwrap() };
                got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
                sender.join().unwrap();
            }
            got
        })
    });
    assert!(!stuck, "a receive blocked its worker until the watchdog sent");
    assert_eq!(got, ["green", "green"]);
    drop(blocking);
}

/// Received addresses are rebuilt from the kernel's: a path, an abstract name, or unnamed.
#[test]
fn datagram_senders_addresses_come_back_as_std_gives_them() {
    let path = temp_path("unix-dgram-addrs");
    let sender_path = temp_path("unix-dgram-addrs-sender");
    let receiver = UnixDatagram::bind(&path).unwrap();
    let mut buf = [0; 8];
    let named = UnixDatagram::bind(&sender_path).unwrap();
    named.send_to(b"p", &path).unwrap();
    assert_eq!(receiver.recv_from(&mut buf).unwrap().1.as_pathname(), Some(&*sender_path));
    UnixDatagram::unbound().unwrap().send_to(b"u", &path).unwrap();
    assert!(receiver.recv_from(&mut buf).unwrap().1.is_unnamed());
    #[cfg(target_os = "linux")]
    {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("green-test-dgram-sender-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(&name).unwrap();
        UnixDatagram::bind_addr(&addr).unwrap().send_to(b"a", &path).unwrap();
        assert_eq!(receiver.recv_from(&mut buf).unwrap().1.as_abstract_name(), Some(name.as_bytes()));
    }
}

/// A receiver bound at `path` whose queue another socket filled; it returns both.
fn full_receiver(path: &std::path::Path) -> (std::os::unix::net::UnixDatagram, std::os::unix::net::UnixDatagram) {
    let receiver = std::os::unix::net::UnixDatagram::bind(path).unwrap();
    let filler = std::os::unix::net::UnixDatagram::unbound().unwrap();
    filler.set_nonblocking(true).unwrap();
    for sent in 0.. {
        match filler.send_to(b"fill", path) {
            Ok(_) => assert!(sent < 10_000, "the receiver's queue never filled"),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("filling the receiver: {e}"),
        }
    }
    (receiver, filler)
}

/// CPU time this OS thread has used.
fn thread_cpu() -> std::time::Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is valid for writes of a `timespec`.
    assert_eq!(unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) }, 0);
    std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Regression: a datagram sent to a full receiver, from a socket not connected
/// to it, spun a core: Linux refuses it with `EAGAIN` yet reports the sender writable, so each
/// wait for readiness returned at once. It now retries after short sleeps: waiting out a
/// 500 ms write timeout takes a few ms of CPU (spinning took hundreds), on a green thread and
/// on a plain one; once the receiver reads, the send goes through.
#[test]
fn datagram_send_to_a_full_receiver_sleeps_between_retries() {
    const TIMEOUT: std::time::Duration = std::time::Duration::from_millis(500);
    let path = temp_path("unix-dgram-full");
    let (receiver, _filler) = full_receiver(&path);
    let sender = UnixDatagram::unbound().unwrap();
    sender.set_write_timeout(Some(TIMEOUT)).unwrap();
    let sender = std::sync::Arc::new(sender);
    let send = {
        let (sender, path) = (sender.clone(), path.to_path_buf());
        move || {
            let (cpu, start) = (thread_cpu(), std::time::Instant::now());
            let err = sender.send_to(b"x", &path).unwrap_err();
            (err.kind(), start.elapsed(), thread_cpu() - cpu)
        }
    };
    let on_green = io_util::runtime(1).block_on(send.clone()); // one worker: its CPU is ours
    let on_os = send();
    for (kind, waited, cpu) in [on_green, on_os] {
        eprintln!("send_to a full receiver: {kind:?} after {waited:?}, {cpu:?} of CPU");
        assert_eq!(kind, std::io::ErrorKind::WouldBlock);
        assert!(waited >= TIMEOUT, "gave up after {waited:?}");
        assert!(cpu < TIMEOUT / 10, "used {cpu:?} of CPU while waiting {waited:?}");
    }
    // Inside `green::timeout` the send gives its own timeout error at that deadline, as socket
    // calls do, instead of unwinding from one of its pauses.
    sender.set_write_timeout(None).unwrap();
    let under_deadline = {
        let (sender, path) = (sender.clone(), path.to_path_buf());
        move || green::timeout(TIMEOUT / 5, || sender.send_to(b"x", &path).map_err(|e| e.kind()))
    };
    let expected = Ok(Err(std::io::ErrorKind::WouldBlock));
    assert_eq!(io_util::runtime(1).block_on(under_deadline.clone()), expected, "on a green thread");
    assert_eq!(under_deadline(), expected, "on a plain thread");
    // On a worker's own stack it may not wait at all: one attempt, and an error that says why.
    let on_worker_stack = {
        let (sender, path) = (sender.clone(), path.to_path_buf());
        move || green::on_worker_stack(|| sender.send_to(b"x", &path).unwrap_err())
    };
    let err = io_util::runtime(1).block_on(on_worker_stack);
    assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
    assert!(err.to_string().contains("on_worker_stack"), "{err}");
    // Room again: a green sender waiting without a timeout gets through once a green thread
    // (runnable only while the sender sleeps, on this one worker) reads a datagram.
    let (n, receiver) = io_util::runtime(1).block_on(move || {
        let reader = green::spawn(move || {
            receiver.recv(&mut [0; 8]).unwrap();
            receiver // kept open until the send is through
        });
        let n = sender.send_to(b"x", &path).unwrap();
        (n, reader.join().unwrap())
    });
    assert_eq!(n, 1);
    receiver.set_nonblocking(true).unwrap();
    let mut last = Vec::new();
    let mut buf = [0; 8];
    while let Ok(n) = receiver.recv(&mut buf) {
        last = buf[..n].to_vec();
    }
    assert_eq!(last, b"x", "the datagram sent last arrived last");
}

/// `set_nonblocking`, as std has it, on the three Unix socket types. While it
/// is on, an accept, a read, a receive, or a send to a full receiver returns `WouldBlock` at
/// once, without parking (or sleeping between retries). Clones share the mode, and `into_std`
/// leaves the socket non-blocking only while it is on. `From<OwnedFd>` takes a socket over.
#[test]
fn non_blocking_mode_returns_would_block_instead_of_waiting() {
    use std::io::ErrorKind::WouldBlock;
    use std::os::fd::OwnedFd;

    let path = temp_path("unix-nonblocking");
    let listener = UnixListener::from(OwnedFd::from(std::os::unix::net::UnixListener::bind(&path).unwrap()));
    let (a, _b) = UnixStream::pair().unwrap();
    let (c, _d) = UnixDatagram::pair().unwrap();
    let full = temp_path("unix-nonblocking-full");
    let (receiver, _filler) = full_receiver(&full);
    let sender = UnixDatagram::from(OwnedFd::from(std::os::unix::net::UnixDatagram::unbound().unwrap()));
    assert!(io_util::is_nonblocking(&listener) && io_util::is_nonblocking(&sender));
    listener.set_nonblocking(true).unwrap();
    a.try_clone().unwrap().set_nonblocking(true).unwrap(); // through a clone
    c.set_nonblocking(true).unwrap();
    sender.set_nonblocking(true).unwrap();
    let (listener, a) = io_util::without_parking(move || {
        assert_eq!(listener.accept().unwrap_err().kind(), WouldBlock);
        assert_eq!((&a).read(&mut [0; 8]).unwrap_err().kind(), WouldBlock);
        assert_eq!(c.recv(&mut [0; 8]).unwrap_err().kind(), WouldBlock);
        assert_eq!(c.recv_from(&mut [0; 8]).unwrap_err().kind(), WouldBlock);
        assert_eq!(sender.send_to(b"x", &full).unwrap_err().kind(), WouldBlock);
        drop(receiver);
        (listener, a)
    });
    assert!(io_util::is_nonblocking(&a.into_std().unwrap()), "into_std keeps the mode");
    listener.set_nonblocking(false).unwrap();
    assert!(!io_util::is_nonblocking(&listener.into_std().unwrap()));
}

/// A datagram from a sender bound to a path that fills all 108 bytes of `sun_path` (no NUL: a
/// C program can bind one; `SocketAddr::from_pathname` refuses it) is received with that
/// address, as std's `recv_from` gives it, not lost behind an error.
#[test]
fn a_datagram_from_a_108_byte_path_is_received_with_its_address() {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let receiver_path = temp_path("long-receiver");
    let dir = std::env::temp_dir();
    let prefix = format!("{}/green-{}-", dir.display(), std::process::id());
    let long = format!("{prefix}{}", "x".repeat(108 - prefix.len()));
    assert_eq!(long.len(), 108);
    let sender_path = TempPath(long.clone().into());
    // SAFETY: socket has no preconditions; the fd is owned at once.
    let sender = unsafe { OwnedFd::from_raw_fd(libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0)) };
    // SAFETY: all-zero bytes are a valid sockaddr_un; the path is copied into its 108 bytes.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (dst, src) in addr.sun_path.iter_mut().zip(long.bytes()) {
        *dst = src as libc::c_char;
    }
    let len = (std::mem::offset_of!(libc::sockaddr_un, sun_path) + 108) as libc::socklen_t;
    // SAFETY: `addr` is a valid sockaddr_un of `len` bytes, `sender` an open socket.
    let bound = unsafe { libc::bind(sender.as_raw_fd(), (&raw const addr).cast(), len) };
    assert_eq!(bound, 0, "bind to a 108-byte path: {}", std::io::Error::last_os_error());
    let sender = std::os::unix::net::UnixDatagram::from(sender);
    io_util::runtime(1).block_on(|| {
        let receiver = UnixDatagram::bind(&receiver_path).unwrap();
        sender.send_to(b"hey", &receiver_path).unwrap();
        let mut buf = [0; 8];
        let (n, from) = receiver.recv_from(&mut buf).expect("the datagram and its sender's address");
        assert_eq!(&buf[..n], b"hey");
        assert_eq!(from.as_pathname(), Some(std::path::Path::new(&long)));
    });
    drop(sender_path);
}

/// A datagram socket shut down for reading (through itself or a clone) delivers what was
/// queued, then receives return 0 at once, as std's blocking calls do; in non-blocking mode
/// they say `WouldBlock`, as std's do too. The kernel refuses the non-blocking attempt with
/// `EAGAIN` while reporting the socket readable: a parked receive waited out its whole
/// timeout, and on a plain thread spun a core in `poll` meanwhile.
#[test]
fn datagram_receives_after_shutdown_for_reading_return_zero_as_std() {
    use std::net::Shutdown;
    use std::time::{Duration, Instant};
    const LONG: Duration = Duration::from_secs(10);

    // std, for reference.
    let (_a, b) = std::os::unix::net::UnixDatagram::pair().unwrap();
    b.shutdown(Shutdown::Read).unwrap();
    assert_eq!(b.recv(&mut [0; 4]).unwrap(), 0);
    let (n, from) = b.recv_from(&mut [0; 4]).unwrap();
    assert!(n == 0 && from.is_unnamed());
    b.set_nonblocking(true).unwrap();
    assert_eq!(b.recv(&mut [0; 4]).unwrap_err().kind(), std::io::ErrorKind::WouldBlock);

    // A plain thread.
    let (a, b) = UnixDatagram::pair().unwrap();
    b.set_read_timeout(Some(LONG)).unwrap();
    a.send(b"queued").unwrap();
    b.shutdown(Shutdown::Read).unwrap();
    let start = Instant::now();
    assert_eq!(b.recv(&mut [0; 8]).unwrap(), 6, "what was queued comes first");
    assert_eq!(b.recv(&mut [0; 8]).unwrap(), 0);
    let (n, from) = b.recv_from(&mut [0; 8]).unwrap();
    assert!(n == 0 && from.is_unnamed());
    assert!(start.elapsed() < LONG / 2, "returned at once, not at the timeout");
    b.set_nonblocking(true).unwrap();
    assert_eq!(b.recv(&mut [0; 4]).unwrap_err().kind(), std::io::ErrorKind::WouldBlock);

    // Green threads parked in both calls, on both workers; the shutdown through a clone.
    io_util::runtime(2).block_on(|| {
        let (_a, b) = UnixDatagram::pair().unwrap();
        b.set_read_timeout(Some(LONG)).unwrap();
        let b = std::sync::Arc::new(b);
        let receivers: Vec<_> = (0..4)
            .map(|i| {
                let b = b.clone();
                green::Builder::new()
                    .worker(i % 2)
                    .spawn(move || {
                        let start = Instant::now();
                        let n = if i < 2 { b.recv(&mut [0; 8]) } else { b.recv_from(&mut [0; 8]).map(|(n, _)| n) };
                        (n.map_err(|e| e.kind()), start.elapsed())
                    })
                    .unwrap()
            })
            .collect();
        green::sleep(Duration::from_millis(50));
        b.try_clone().unwrap().shutdown(Shutdown::Read).unwrap();
        for receiver in receivers {
            let (n, waited) = receiver.join().unwrap();
            assert_eq!(n, Ok(0));
            assert!(waited < LONG / 2, "a parked receive returned at the shutdown, not after {waited:?}");
        }
    });
}

/// A stream write that waits for room returns `BrokenPipe` once the sending half is shut down,
/// by this side or by the peer, as std's does (within the pauses of its tries: the kernel
/// reports no readiness for it). On a green thread and a plain one; std for reference.
#[test]
fn a_stream_write_waiting_for_room_ends_at_a_send_side_shutdown() {
    use std::io;
    use std::net::Shutdown;
    use std::time::{Duration, Instant};
    const LIMIT: Duration = Duration::from_secs(10);
    const BIG: usize = 8 << 20;

    // Shuts the sending half of `a` down 50 ms after a write of `BIG` bytes through a clone
    // has started (by `a` itself, or by `b` refusing to read), and returns what the write gave.
    fn check(local: bool, spawn: &dyn Fn(Box<dyn FnOnce() -> io::Result<()> + Send>) -> io::Result<()>) {
        let (a, b) = UnixStream::pair().unwrap();
        let writer = a.try_clone().unwrap();
        let start = Instant::now();
        let result = spawn(Box::new(move || {
            // The other side, 50 ms in.
            let shutter = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                if local { a.shutdown(Shutdown::Write) } else { b.shutdown(Shutdown::Read) }.unwrap();
                (a, b)
            });
            let result = (&writer).write_all(&vec![0; BIG]);
            drop(shutter.join().unwrap());
            result
        }));
        assert_eq!(result.unwrap_err().kind(), io::ErrorKind::BrokenPipe, "local: {local}");
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(50) && took < LIMIT / 2, "local: {local}, took {took:?}");
    }

    // std, for reference.
    for local in [true, false] {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let writer = a.try_clone().unwrap();
        let shutter = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            if local { a.shutdown(Shutdown::Write) } else { b.shutdown(Shutdown::Read) }.unwrap();
            (a, b)
        });
        assert_eq!((&writer).write_all(&vec![0; BIG]).unwrap_err().kind(), io::ErrorKind::BrokenPipe);
        drop(shutter.join().unwrap());
    }
    io_util::bounded(LIMIT, || {
        for local in [true, false] {
            check(local, &|f| f()); // a plain thread
            check(local, &|f| io_util::runtime(1).block_on(f)); // a green thread
        }
    });
}

/// Regression: a datagram socket or a listener shut down for reading through its raw fd
/// (`libc::shutdown`, socket2's `SockRef::shutdown`: how std code stops a thread blocked on
/// one) made std's blocking `recv` return 0 and its `accept` fail with `EINVAL` at once, but
/// green's waited, parked on a green thread or spinning a core in `poll` on a plain one (an
/// `accept` for good: it has no timeout): the kernel refuses the non-blocking call with
/// `EAGAIN` from then on, while it reports the socket readable. Now they end as std's do,
/// parked at the shutdown or coming after its event; in non-blocking mode they still say
/// `WouldBlock`.
#[test]
fn receives_and_accepts_end_at_a_shutdown_through_the_raw_fd_as_std() {
    use std::os::fd::{AsRawFd, RawFd};
    use std::time::{Duration, Instant};
    const LONG: Duration = Duration::from_secs(10);
    fn shut_down(fd: RawFd) {
        // SAFETY: shutdown has no memory-safety preconditions; the caller keeps `fd` open.
        assert_eq!(unsafe { libc::shutdown(fd, libc::SHUT_RDWR) }, 0);
    }
    /// Runs `call` on this thread while another shuts `fd` down 50 ms in; how long it took.
    fn shut_while_waiting<T>(fd: RawFd, call: impl FnOnce() -> T) -> (T, Duration) {
        let shutter = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            shut_down(fd);
        });
        let start = Instant::now();
        let got = call();
        shutter.join().unwrap();
        (got, start.elapsed())
    }
    let path = temp_path("raw-shutdown");
    // A hang (the plain thread's accept spun for good) fails the test instead.
    io_util::bounded(Duration::from_secs(60), move || {
        // std, for reference.
        let std_listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        shut_down(std_listener.as_raw_fd());
        assert_eq!(std_listener.accept().unwrap_err().raw_os_error(), Some(libc::EINVAL));
        drop((std_listener, std::fs::remove_file(&path)));

        // Plain threads.
        let listener = UnixListener::bind(&path).unwrap();
        let (accepted, waited) = shut_while_waiting(listener.as_raw_fd(), || listener.accept().map(drop));
        assert_eq!(accepted.unwrap_err().raw_os_error(), Some(libc::EINVAL));
        assert!(waited < LONG / 2, "accept returned at the shutdown, not after {waited:?}");
        listener.set_nonblocking(true).unwrap();
        assert_eq!(listener.accept().unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
        drop((listener, std::fs::remove_file(&path)));
        let (_a, b) = UnixDatagram::pair().unwrap();
        b.set_read_timeout(Some(LONG)).unwrap();
        let (received, waited) = shut_while_waiting(b.as_raw_fd(), || b.recv(&mut [0; 8]));
        assert_eq!(received.unwrap(), 0);
        assert!(waited < LONG / 2, "recv returned at the shutdown, not after {waited:?}");
        let (n, from) = b.recv_from(&mut [0; 8]).unwrap();
        assert!(n == 0 && from.is_unnamed());
        b.set_nonblocking(true).unwrap();
        assert_eq!(b.recv(&mut [0; 8]).unwrap_err().kind(), std::io::ErrorKind::WouldBlock);

        // Green threads: parked at the shutdown, then after its event.
        io_util::runtime(2).block_on(|| {
            let listener = std::sync::Arc::new(UnixListener::bind(&path).unwrap());
            let (_a, b) = UnixDatagram::pair().unwrap();
            b.set_read_timeout(Some(LONG)).unwrap();
            let b = std::sync::Arc::new(b);
            let waiters: Vec<_> = (0..3)
                .map(|i| {
                    let (listener, b) = (listener.clone(), b.clone());
                    green::Builder::new()
                        .worker(i % 2)
                        .spawn(move || {
                            let start = Instant::now();
                            let got = match i {
                                0 => listener.accept().map(|_| 0),
                                1 => b.recv(&mut [0; 8]),
                                _ => b.recv_from(&mut [0; 8]).map(|(n, _)| n),
                            };
                            (i, got.map_err(|e| e.raw_os_error()), start.elapsed())
                        })
                        .unwrap()
                })
                .collect();
            green::sleep(Duration::from_millis(50));
            let fds = [listener.as_raw_fd(), b.as_raw_fd()];
            std::thread::spawn(move || fds.into_iter().for_each(shut_down)).join().unwrap();
            for waiter in waiters {
                let (i, got, waited) = waiter.join().unwrap();
                assert_eq!(got, if i == 0 { Err(Some(libc::EINVAL)) } else { Ok(0) }, "call {i}");
                assert!(waited < LONG / 2, "call {i} returned at the shutdown, not after {waited:?}");
            }
            drop((listener, std::fs::remove_file(&path)));

            let listener = UnixListener::bind(&path).unwrap();
            let (_a, b) = UnixDatagram::pair().unwrap();
            // Registered by a wait that timed out; then the shutdown's event comes and goes.
            b.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
            assert!(b.recv(&mut [0; 8]).is_err());
            let waited = green::timeout(Duration::from_millis(10), || listener.accept().map(drop));
            assert_eq!(
                waited.expect("accept returned its timeout error").unwrap_err().kind(),
                std::io::ErrorKind::WouldBlock
            );
            shut_down(listener.as_raw_fd());
            shut_down(b.as_raw_fd());
            green::sleep(Duration::from_millis(20));
            b.set_read_timeout(Some(LONG)).unwrap();
            let start = Instant::now();
            assert_eq!(b.recv(&mut [0; 8]).unwrap(), 0);
            let accepted = green::timeout(LONG, || listener.accept().map(drop));
            assert_eq!(accepted.expect("accept returned").unwrap_err().raw_os_error(), Some(libc::EINVAL));
            assert!(start.elapsed() < LONG / 2, "returned at once, not after {:?}", start.elapsed());
        });
    });
}

/// A path too long for `sun_path` gets one error from every call that takes a path, saying
/// how long it is and what to do: `bind` and a datagram `connect` gave std's bare "path must be
/// shorter than SUN_LEN", `UnixStream::connect` and `send_to` green's own. The kind is std's.
#[test]
fn a_path_too_long_gets_the_same_helpful_error_from_every_call() {
    let long = std::env::temp_dir().join("x".repeat(200));
    let unbound = UnixDatagram::unbound().unwrap();
    let errors = [
        UnixListener::bind(&long).map(drop).unwrap_err(),
        UnixDatagram::bind(&long).map(drop).unwrap_err(),
        unbound.connect(&long).unwrap_err(),
        UnixStream::connect(&long).map(drop).unwrap_err(),
        unbound.send_to(b"x", &long).map(drop).unwrap_err(),
    ];
    let len = long.as_os_str().len();
    for (i, e) in errors.iter().enumerate() {
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "call {i}: {e}");
        let message = e.to_string();
        assert!(message.contains(&format!("of {len} bytes is too long")), "call {i}: {message}");
        assert!(message.contains("abstract name"), "call {i} says what to do: {message}");
    }
    assert_eq!(
        std::os::unix::net::UnixListener::bind(&long).map(drop).unwrap_err().kind(),
        std::io::ErrorKind::InvalidInput,
        "std's kind"
    );
    assert!(!long.exists());
}

/// `peek` and `peek_from` (std's are not yet stable): they park until something arrives, on
/// a worker other than the sender's, and leave it queued; a datagram longer than the buffer
/// fills it; a socket shut down for reading peeks 0.
#[test]
fn peeks_park_until_data_and_leave_it_queued() {
    use std::net::Shutdown;
    io_util::bounded(std::time::Duration::from_secs(60), || {
        io_util::runtime(2).block_on(|| {
            let (a, b) = UnixDatagram::pair().unwrap();
            let (mut c, d) = UnixStream::pair().unwrap();
            let peeker = green::Builder::new()
                .worker(1)
                .spawn(move || {
                    let mut buf = [0; 4];
                    let n = b.peek(&mut buf).unwrap();
                    let (m, from) = b.peek_from(&mut buf).unwrap();
                    assert!(from.is_unnamed());
                    assert_eq!((n, m, &buf), (4, 4, b"long"), "as much as fits");
                    assert_eq!(b.recv(&mut [0; 16]).unwrap(), 12, "still queued, whole");
                    assert_eq!(d.peek(&mut buf).unwrap(), 3);
                    assert_eq!(&buf[..3], b"abc");
                    assert_eq!((&d).read(&mut buf).unwrap(), 3, "still queued");
                    b.shutdown(Shutdown::Read).unwrap();
                    (b.peek(&mut buf).unwrap(), b.peek_from(&mut buf).unwrap().0)
                })
                .unwrap();
            green::sleep(std::time::Duration::from_millis(20));
            a.send(b"long message").unwrap();
            c.write_all(b"abc").unwrap();
            assert_eq!(peeker.join().unwrap(), (0, 0));
        });
    });
}
