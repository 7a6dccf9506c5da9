//! UDP round trips between green threads on different workers, every byte verified; a
//! receive parks until a datagram arrives; several receivers share one socket; a receive
//! parks even after another handle made the socket blocking; non-blocking mode returns at
//! once.

mod io_util;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use green::net::UdpSocket;
use io_util::Rng;

/// How long a test may take before it counts as hung (a lost wakeup), instead of hanging the run.
const LIMIT: Duration = Duration::from_secs(60);

const ROUNDS: usize = 500;

#[test]
fn datagrams_round_trip_between_workers() {
    io_util::bounded(LIMIT, || {
        io_util::runtime(2).block_on(|| {
            let server = UdpSocket::bind("127.0.0.1:0").unwrap();
            let server_addr = server.local_addr().unwrap();
            let echo = green::Builder::new()
                .worker(1)
                .spawn(move || {
                    let mut buf = [0; 2048];
                    for _ in 0..ROUNDS {
                        let (n, from) = server.recv_from(&mut buf).unwrap();
                        server.send_to(&buf[..n], from).unwrap();
                    }
                })
                .unwrap();
            let client = UdpSocket::bind("127.0.0.1:0").unwrap();
            client.connect(server_addr).unwrap();
            let mut rng = Rng::new(3);
            let mut buf = [0; 2048];
            for i in 0..ROUNDS {
                let len = rng.range(1, 1400);
                let payload = rng.bytes(len);
                client.send(&payload).unwrap();
                let n = client.recv(&mut buf).unwrap();
                assert_eq!(&buf[..n], &payload[..], "round {i}");
            }
            echo.join().unwrap();
        });
    });
}

#[test]
fn several_receivers_share_one_socket() {
    io_util::bounded(LIMIT, || {
        const RECEIVERS: usize = 6;
        const EACH: usize = 50;
        io_util::runtime(2).block_on(|| {
            let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
            let addr = socket.local_addr().unwrap();
            let received = Arc::new(AtomicUsize::new(0));
            let receivers: Vec<_> = (0..RECEIVERS)
                .map(|i| {
                    let socket = socket.clone();
                    let received = received.clone();
                    green::Builder::new()
                        .worker(i % 2)
                        .spawn(move || {
                            let mut got = Vec::new();
                            let mut buf = [0; 8];
                            for _ in 0..EACH {
                                let (n, _) = socket.recv_from(&mut buf).unwrap();
                                assert_eq!(n, 8);
                                got.push(u64::from_le_bytes(buf));
                                received.fetch_add(1, Ordering::SeqCst);
                            }
                            got
                        })
                        .unwrap()
                })
                .collect();
            green::sleep(std::time::Duration::from_millis(10)); // let them park
            let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
            for id in 0..(RECEIVERS * EACH) as u64 {
                // Never more than 32 in flight: a full receive buffer would drop datagrams.
                while id as usize >= received.load(Ordering::SeqCst) + 32 {
                    green::yield_now();
                }
                sender.send_to(&id.to_le_bytes(), addr).unwrap();
            }
            let mut all: Vec<u64> = receivers.into_iter().flat_map(|r| r.join().unwrap()).collect();
            all.sort_unstable();
            assert_eq!(all, (0..(RECEIVERS * EACH) as u64).collect::<Vec<_>>());
        });
    });
}

/// Regression: receives called std's methods, which pass no `MSG_DONTWAIT`.
/// Once `into_std` on a clone had made the socket blocking (`O_NONBLOCK` belongs to the open
/// file, shared by every handle), a receive blocked the worker in the kernel, and the green
/// thread that would send the datagram never ran. On one worker, each receive here can finish
/// only by parking; a watchdog thread ends a stuck one after 5 s, and says so.
#[test]
fn receives_park_after_a_clone_made_the_socket_blocking() {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    let blocking = socket.try_clone().unwrap().into_std().unwrap();
    let unstick = move || {
        let unstick = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for _ in 0..3 {
            unstick.send_to(b"watchdog", addr).unwrap();
        }
    };
    let (got, stuck) = io_util::with_watchdog(unstick, || {
        io_util::runtime(1).block_on(move || {
            let mut got = Vec::new();
            for peek in [false, true] {
                // Queued on this worker, and run only once the receive below parks.
                let sender = green::spawn(move || {
                    UdpSocket::bind("127.0.0.1:0").unwrap().send_to(b"green", addr).unwrap();
                });
                let mut buf = [0; 16];
                let (n, _) = if peek { socket.peek_from(&mut buf) } else { socket.recv_from(&mut buf) }.unwrap();
                got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
                if peek {
                    socket.recv_from(&mut buf).unwrap();
                }
                sender.join().unwrap();
            }
            got
        })
    });
    assert!(!stuck, "a receive blocked its worker until the watchdog sent");
    assert_eq!(got, ["green", "green"]);
    drop(blocking);
}

/// `set_nonblocking`, as std has it. While it is on, every receive that would
/// wait returns `WouldBlock` at once: on a green thread without parking, on a plain thread
/// without blocking. Clones share the mode, `false` makes receives wait again, and `into_std`
/// leaves the socket non-blocking only while the mode is on. `From<OwnedFd>` takes one over.
#[test]
fn non_blocking_mode_returns_would_block_instead_of_waiting() {
    use std::io::ErrorKind::WouldBlock;
    use std::os::fd::OwnedFd;

    let socket = UdpSocket::from(OwnedFd::from(std::net::UdpSocket::bind("127.0.0.1:0").unwrap()));
    assert!(io_util::is_nonblocking(&socket));
    let clone = socket.try_clone().unwrap();
    clone.set_nonblocking(true).unwrap();
    assert_eq!(socket.recv_from(&mut [0; 8]).unwrap_err().kind(), WouldBlock); // a plain thread
    let socket = io_util::without_parking(move || {
        let mut buf = [0; 8];
        assert_eq!(socket.recv_from(&mut buf).unwrap_err().kind(), WouldBlock);
        assert_eq!(socket.peek_from(&mut buf).unwrap_err().kind(), WouldBlock);
        socket.connect(socket.local_addr().unwrap()).unwrap();
        assert_eq!(socket.recv(&mut buf).unwrap_err().kind(), WouldBlock);
        assert_eq!(socket.peek(&mut buf).unwrap_err().kind(), WouldBlock);
        socket
    });
    // Off again: a receive waits, here until its timeout.
    clone.set_nonblocking(false).unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    let start = std::time::Instant::now();
    assert_eq!(socket.recv(&mut [0; 8]).unwrap_err().kind(), WouldBlock);
    assert!(start.elapsed() >= Duration::from_millis(20), "returned after {:?}", start.elapsed());
    clone.set_nonblocking(true).unwrap();
    assert!(io_util::is_nonblocking(&clone.into_std().unwrap()), "into_std keeps the mode");
    socket.set_nonblocking(false).unwrap();
    assert!(!io_util::is_nonblocking(&socket.into_std().unwrap()));
}

/// Shuts `socket` down for reading through its raw fd, as std code does to stop a thread
/// blocked in a receive (`libc::shutdown`, socket2's `SockRef::shutdown`). On a socket that is
/// not connected Linux says `ENOTCONN`, and shuts it down all the same.
fn shut_down_through_the_fd(fd: std::os::fd::RawFd) {
    // SAFETY: shutdown has no memory-safety preconditions; the caller keeps `fd` open.
    unsafe { libc::shutdown(fd, libc::SHUT_RD) };
}

/// Regression: a socket shut down for reading through its raw fd made std's blocking receive
/// return 0 at once, but green's waited out its read timeout (or for good), parked on a green
/// thread and spinning a core in `poll` on a plain one: the kernel refuses the non-blocking
/// receive with `EAGAIN` from then on, while it reports the socket readable. Now a receive
/// returns what is queued, then 0 (`recv_from` and `peek_from` fail with `InvalidInput`, as
/// std's do: there is no sender), whether it was parked at the shutdown or came after it; in
/// non-blocking mode it still says `WouldBlock`.
#[test]
fn receives_end_at_a_shutdown_through_the_raw_fd_as_std() {
    use std::io::ErrorKind::{InvalidInput, WouldBlock};
    use std::os::fd::AsRawFd;
    use std::time::Instant;
    const LONG: Duration = Duration::from_secs(10);

    // std, for reference.
    let std_socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    shut_down_through_the_fd(std_socket.as_raw_fd());
    assert_eq!(std_socket.recv(&mut [0; 4]).unwrap(), 0);
    assert_eq!(std_socket.recv_from(&mut [0; 4]).unwrap_err().kind(), InvalidInput);

    // A plain thread blocked in a receive; another thread shuts the socket down.
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(LONG)).unwrap();
    let fd = socket.as_raw_fd();
    let shutter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        shut_down_through_the_fd(fd);
    });
    let start = Instant::now();
    assert_eq!(socket.recv(&mut [0; 8]).unwrap(), 0);
    assert!(start.elapsed() < LONG / 2, "returned at the shutdown, not after {:?}", start.elapsed());
    shutter.join().unwrap();
    // Datagrams still come in after a shutdown for reading; what is queued comes first.
    socket.send_to(b"late", socket.local_addr().unwrap()).unwrap();
    assert_eq!(socket.peek_from(&mut [0; 8]).unwrap().0, 4);
    assert_eq!(socket.recv(&mut [0; 8]).unwrap(), 4);
    assert_eq!(socket.peek(&mut [0; 8]).unwrap(), 0);
    assert_eq!(socket.recv_from(&mut [0; 8]).unwrap_err().kind(), InvalidInput);
    assert_eq!(socket.peek_from(&mut [0; 8]).unwrap_err().kind(), InvalidInput);
    socket.set_nonblocking(true).unwrap();
    assert_eq!(socket.recv(&mut [0; 8]).unwrap_err().kind(), WouldBlock);

    io_util::bounded(LIMIT, || {
        io_util::runtime(2).block_on(|| {
            // Green threads parked in each receive, on both workers.
            let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
            socket.set_read_timeout(Some(LONG)).unwrap();
            let receivers: Vec<_> = (0..4)
                .map(|i| {
                    let socket = socket.clone();
                    green::Builder::new()
                        .worker(i % 2)
                        .spawn(move || {
                            let start = Instant::now();
                            let mut buf = [0; 8];
                            let got = match i {
                                0 => socket.recv(&mut buf),
                                1 => socket.peek(&mut buf),
                                2 => socket.recv_from(&mut buf).map(|(n, _)| n),
                                _ => socket.peek_from(&mut buf).map(|(n, _)| n),
                            };
                            (i, got.map_err(|e| e.kind()), start.elapsed())
                        })
                        .unwrap()
                })
                .collect();
            green::sleep(Duration::from_millis(50));
            let fd = socket.as_raw_fd();
            std::thread::spawn(move || shut_down_through_the_fd(fd)).join().unwrap();
            for receiver in receivers {
                let (i, got, waited) = receiver.join().unwrap();
                assert_eq!(got, if i < 2 { Ok(0) } else { Err(InvalidInput) }, "receive {i}");
                assert!(waited < LONG / 2, "receive {i} returned at the shutdown, not after {waited:?}");
            }

            // The shutdown's event came and went before the receive: nothing else will come.
            let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
            socket.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
            assert_eq!(socket.recv(&mut [0; 8]).unwrap_err().kind(), WouldBlock); // now registered
            shut_down_through_the_fd(socket.as_raw_fd());
            green::sleep(Duration::from_millis(20));
            socket.set_read_timeout(Some(LONG)).unwrap();
            let start = Instant::now();
            assert_eq!(socket.recv(&mut [0; 8]).unwrap(), 0);
            assert!(start.elapsed() < LONG / 2, "returned at once, not after {:?}", start.elapsed());
        });
    });
}
