//! A TCP read that leaves the receive queue empty lets the next read park without trying
//! (reactor.rs, "Drained reads"). What comes after such a read must still be seen: more data,
//! an end of stream queued together with data, a reset queued together with data, whether
//! or not the reader's worker was busy while they arrived.
//!
//! The peer is a plain OS thread with a std socket; the reader is a green thread on a
//! one-worker runtime. Every read has a timeout, so a missed event fails the test instead of
//! hanging it.

mod io_util;

use std::io::{ErrorKind, IoSliceMut, Read, Write};
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use green::net::TcpStream;

/// Far above any real delay here: reaching it means an event was missed.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// How the peer ends the connection after its second message.
#[derive(Debug, Clone, Copy, PartialEq)]
enum End {
    /// `shutdown(Write)`: a FIN right behind the data.
    Fin,
    /// Close with `SO_LINGER` 0: a reset right behind the data.
    Reset,
}

/// The peer's side of the start: accepts, and once the reader is parked in its first read,
/// sends "one".
fn peer_sends_one(listener: &std::net::TcpListener) -> std::net::TcpStream {
    let (mut s, _) = listener.accept().unwrap();
    s.set_nodelay(true).unwrap(); // later messages must not wait behind Nagle for an ACK
    std::thread::sleep(Duration::from_millis(2)); // the reader parks in its first read
    s.write_all(b"one").unwrap();
    s
}

/// The reader's side of the start: connects and reads "one", a read that empties the queue.
fn reader_reads_one(addr: std::net::SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    let mut buf = [0; 64];
    let n = stream.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"one");
    stream
}

/// A peer on an OS thread that sends once, when told, and then stays quiet until the reader
/// is done: no event after what it sent can wake a reader parked by mistake.
struct QuietPeer {
    go: mpsc::Sender<()>,
    sent: mpsc::Receiver<()>,
    done: mpsc::Sender<()>,
}

impl QuietPeer {
    /// Starts the peer: `start` makes its stream (and sends what comes before), `send` is what
    /// it sends when told. Returns the peer and its thread, to join after the runtime.
    fn spawn<S: 'static>(
        start: impl FnOnce() -> S + Send + 'static,
        send: impl FnOnce(&mut S) + Send + 'static,
    ) -> (QuietPeer, std::thread::JoinHandle<()>) {
        let (go, go_rx) = mpsc::channel::<()>();
        let (sent_tx, sent) = mpsc::channel::<()>();
        let (done, done_rx) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let mut stream = start();
            go_rx.recv().unwrap();
            send(&mut stream);
            sent_tx.send(()).unwrap();
            done_rx.recv_timeout(READ_TIMEOUT * 2).unwrap();
        });
        (QuietPeer { go, sent, done }, thread)
    }

    /// Has the peer send, and returns once all of it is queued on this side (on loopback, a
    /// send returns once the receiver's kernel has queued it). It blocks the worker meanwhile.
    fn send_now(&self) {
        self.go.send(()).unwrap();
        self.sent.recv_timeout(READ_TIMEOUT).unwrap();
    }

    /// The reader is done: the peer may end.
    fn release(self) {
        self.done.send(()).unwrap();
    }
}

/// How the reader's worker learns of readiness.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Worker {
    /// Mostly asleep in its poller between events: they come from its sleep.
    Sleeps,
    /// Never asleep: a green thread beside the reader yields in a loop, so the worker polls
    /// without waiting (every 40 µs) and its events come from those polls.
    Busy,
}
// Both say, on Linux, whether the peer's end came (`EPOLLRDHUP`). Events from `polling`'s own
// wait, which do not, reach a worker only without its timerfd or after a notification; the
// unit tests of `reactor.rs` drive that case.

/// For [`Worker::Busy`], the green thread that keeps the worker from sleeping. Dropped without
/// `stop` (a failed assertion), it still tells the green thread to end, so that the runtime's
/// shutdown does not wait for it.
struct Yielder(Option<(Arc<AtomicBool>, green::JoinHandle<()>)>);

/// Starts the [`Yielder`] for `worker`.
fn busy_beside(worker: Worker) -> Yielder {
    Yielder((worker == Worker::Busy).then(|| {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = stop.clone();
        let handle = green::spawn(move || {
            while !seen.load(Ordering::Relaxed) {
                green::yield_now();
            }
        });
        (stop, handle)
    }))
}

impl Yielder {
    fn stop(mut self) {
        if let Some((stop, handle)) = self.0.take() {
            stop.store(true, Ordering::Relaxed);
            handle.join().unwrap();
        }
    }
}

impl Drop for Yielder {
    fn drop(&mut self) {
        if let Some((stop, _)) = &self.0 {
            stop.store(true, Ordering::Relaxed);
        }
    }
}

/// On a [`Worker::Busy`] worker, returns once the worker has polled the OS: what was queued
/// before the call has had its event dispatched. (A busy worker polls before it fires the
/// timers that are due, when 40 µs have passed since its last poll.)
fn wait_for_a_poll() {
    green::sleep(Duration::from_millis(1));
}

/// One connection: the reader waits (so that its fd is registered), reads
/// "one" (a drained read), then, with its worker blocked for `busy` if set, lets the peer
/// send "two" and end the connection; it must then read "two" and see the end.
fn round(end: End, busy: Option<Duration>, peer_delay: Duration) {
    round_on(Worker::Sleeps, end, busy, peer_delay);
}

fn round_on(worker: Worker, end: End, busy: Option<Duration>, peer_delay: Duration) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let peer = std::thread::spawn(move || {
        let mut s = peer_sends_one(&listener);
        go_rx.recv().unwrap();
        std::thread::sleep(peer_delay);
        s.write_all(b"two").unwrap();
        match end {
            End::Fin => s.shutdown(Shutdown::Write).unwrap(),
            End::Reset => io_util::reset_on_close(&s),
        }
        drop(s);
    });
    io_util::runtime(1).block_on(move || {
        let yielder = busy_beside(worker);
        let mut stream = reader_reads_one(addr);
        let mut buf = [0; 64];
        go_tx.send(()).unwrap();
        if let Some(busy) = busy {
            // The worker dispatches nothing meanwhile: "two" and the end arrive unseen.
            std::thread::sleep(busy);
        }
        let start = Instant::now();
        let mut got = Vec::new();
        let last = loop {
            match stream.read(&mut buf) {
                Ok(0) => break Ok(()),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => break Err(e),
            }
        };
        // A read that timed out still tries once, and finds the end: only the time tells.
        assert!(
            start.elapsed() < READ_TIMEOUT,
            "{end:?}, busy {busy:?}: a read waited out its timeout, so an event was missed"
        );
        assert_eq!(got, b"two", "{end:?}, busy {busy:?}: the data after a drained read");
        match (end, last) {
            (End::Fin, Ok(())) => {}
            (End::Reset, Err(e)) if e.kind() == ErrorKind::ConnectionReset => {}
            (_, last) => panic!("{end:?}, busy {busy:?}: the end after a drained read came as {last:?}"),
        }
        yielder.stop();
    });
    peer.join().unwrap();
}

/// `count` messages of 1 to `max_len` random bytes (from `seed`) written to an echo peer, each
/// read back and checked before the next; returns the bytes sent.
fn round_trips(stream: &mut TcpStream, seed: u64, count: usize, max_len: usize) -> u64 {
    let mut rng = io_util::Rng::new(seed);
    let mut sent = 0;
    for _ in 0..count {
        let len = rng.range(1, max_len);
        let msg = rng.bytes(len);
        stream.write_all(&msg).unwrap();
        let mut back = vec![0; len];
        stream.read_exact(&mut back).unwrap();
        assert_eq!(back, msg);
        sent += len as u64;
    }
    sent
}

#[test]
fn an_end_of_stream_queued_with_data_while_the_worker_is_busy_is_seen() {
    for _ in 0..5 {
        round(End::Fin, Some(Duration::from_millis(10)), Duration::ZERO);
    }
}

#[test]
fn a_reset_queued_with_data_while_the_worker_is_busy_is_seen() {
    for _ in 0..5 {
        round(End::Reset, Some(Duration::from_millis(10)), Duration::ZERO);
    }
}

/// The same without the busy worker, the peer's second send at varied delays, so that it
/// lands before, during and after the reader's next read.
#[test]
fn an_end_after_a_drained_read_is_seen_at_any_moment() {
    let mut rng = io_util::Rng::new(7);
    for i in 0..40 {
        let end = if i % 2 == 0 { End::Fin } else { End::Reset };
        round(end, None, Duration::from_micros(rng.range(0, 300) as u64));
    }
}

/// The same on a worker that never sleeps: every event comes from its polls that do not wait,
/// which say whether the peer's end came with the data. One that did must stop the read of
/// that data from counting as drained.
#[test]
fn an_end_queued_with_data_is_seen_on_a_worker_that_never_sleeps() {
    for end in [End::Fin, End::Reset, End::Fin, End::Reset] {
        round_on(Worker::Busy, end, Some(Duration::from_millis(10)), Duration::ZERO);
    }
    let mut rng = io_util::Rng::new(9);
    for i in 0..20 {
        let end = if i % 2 == 0 { End::Fin } else { End::Reset };
        round_on(Worker::Busy, end, None, Duration::from_micros(rng.range(0, 300) as u64));
    }
}

/// Urgent data stops a read short of the data queued behind it: that read did not empty the
/// queue, and the next one must not park. The peer sends "ab", the urgent byte "x" and "cd"
/// while the reader's worker is busy, then waits for the reader, so no later event could
/// rescue a reader parked by mistake. The urgent byte itself is out of band (no
/// `SO_OOBINLINE`): the stream reads "abcd". On a worker that sleeps and on one that never does
/// (whose events say that urgent data waits: `EPOLLPRI`).
#[test]
fn data_queued_behind_urgent_data_is_read_after_the_short_read_before_it() {
    urgent_round(Worker::Sleeps);
    urgent_round(Worker::Busy);
}

fn urgent_round(worker: Worker) {
    use std::os::fd::AsRawFd;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (peer, peer_thread) = QuietPeer::spawn(
        move || peer_sends_one(&listener),
        |s| {
            s.write_all(b"ab").unwrap();
            // SAFETY: sends one byte from a live buffer on a socket we own.
            let sent = unsafe { libc::send(s.as_raw_fd(), b"x".as_ptr().cast(), 1, libc::MSG_OOB) };
            assert_eq!(sent, 1, "send(MSG_OOB): {}", std::io::Error::last_os_error());
            s.write_all(b"cd").unwrap();
        },
    );
    io_util::runtime(1).block_on(move || {
        let yielder = busy_beside(worker);
        let mut stream = reader_reads_one(addr);
        let mut buf = [0; 64];
        // The worker dispatches nothing while it blocks here: the data and the urgent byte
        // arrive unseen.
        peer.send_now();
        let start = Instant::now();
        let mut got = Vec::new();
        while got.len() < 4 {
            match stream.read(&mut buf) {
                Ok(0) => panic!("end of stream after {got:?}"),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => panic!("after {got:?} and {:?}: {e}", start.elapsed()),
            }
        }
        assert_eq!(got, b"abcd", "{worker:?}");
        assert!(
            start.elapsed() < READ_TIMEOUT,
            "{worker:?}: a read waited out its timeout: the data behind the urgent byte was missed"
        );
        peer.release();
        yielder.stop();
    });
    peer_thread.join().unwrap();
}

/// Many messages, each read in one piece and answered: every read after the first finds the
/// previous one drained. Nothing is lost, and the reader does not wait for a timeout.
#[test]
fn a_ping_pong_over_drained_reads_loses_nothing() {
    io_util::runtime(1).block_on(|| {
        let listener = green::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = green::spawn(move || {
            let (s, _) = listener.accept().unwrap();
            s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
            io_util::echo(s).unwrap()
        });
        let mut client = TcpStream::connect(addr).unwrap();
        client.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        client.set_nodelay(true).unwrap();
        let sent = round_trips(&mut client, 11, 2000, 200);
        client.shutdown(Shutdown::Write).unwrap();
        assert_eq!(client.read(&mut [0; 8]).unwrap(), 0);
        assert_eq!(server.join().unwrap(), sent);
    });
}

/// Exact reads (`read_exact` of a fixed size, as framed protocols do) fill their buffers, and
/// a full read cannot say whether it emptied the queue. Once a full read has been followed by
/// a read that would block, the stream counts what each read leaves behind (`TCP_INQ`). Two
/// frames queued at once must then both be read, the second with no event to wake it: the
/// peer stays quiet after sending them.
#[test]
fn two_frames_queued_at_once_are_both_read_by_exact_reads() {
    for worker in [Worker::Sleeps, Worker::Busy] {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (peer, peer_thread) =
            QuietPeer::spawn(move || peer_sends_one(&listener), |s| s.write_all(b"twothr").unwrap());
        io_util::runtime(1).block_on(move || {
            let yielder = busy_beside(worker);
            let mut stream = TcpStream::connect(addr).unwrap();
            stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
            let mut frame = [0; 3];
            stream.read_exact(&mut frame).unwrap();
            assert_eq!(&frame, b"one");
            // A read that would block, right after a full one: the switch to counting.
            stream.set_nonblocking(true).unwrap();
            assert_eq!(stream.read(&mut frame).unwrap_err().kind(), ErrorKind::WouldBlock);
            stream.set_nonblocking(false).unwrap();
            peer.send_now();
            wait_for_a_poll();
            let start = Instant::now();
            for expected in [b"two", b"thr"] {
                stream.read_exact(&mut frame).unwrap();
                assert_eq!(&frame, expected, "{worker:?}");
            }
            assert!(start.elapsed() < READ_TIMEOUT, "{worker:?}: the second frame waited out the read timeout");
            peer.release();
            yielder.stop();
        });
        peer_thread.join().unwrap();
    }
}

/// After `shutdown(Read)` on this side, every read returns `Ok(0)` at once, as std's does,
/// whether data was still queued (taken first) and whether the shutdown came through a clone.
/// The kernel counts 0 left there without a FIN, and the shutdown's own event has been
/// dispatched before the reads.
#[test]
fn reads_after_a_local_read_shutdown_end_at_once() {
    for (data_queued, through_clone) in [(false, false), (true, false), (true, true), (false, true)] {
        let case = format!("data queued {data_queued}, through a clone {through_clone}");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let peer = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            std::thread::sleep(Duration::from_millis(2)); // the reader parks in its first read
            s.write_all(b"a").unwrap();
            if go_rx.recv().is_ok() {
                s.write_all(b"bc").unwrap();
            }
            let _ = done_rx.recv(); // keep the connection open until the reader is done
        });
        io_util::runtime(1).block_on(|| {
            let mut stream = TcpStream::connect(addr).unwrap();
            stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
            let mut buf = [0; 64];
            let n = stream.read(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"a");
            if data_queued {
                go_tx.send(()).unwrap();
                green::sleep(Duration::from_millis(30)); // "bc" is in, its event dispatched
            }
            drop(go_tx);
            if through_clone {
                stream.try_clone().unwrap().shutdown(Shutdown::Read).unwrap();
            } else {
                stream.shutdown(Shutdown::Read).unwrap();
            }
            green::sleep(Duration::from_millis(20)); // the shutdown's event is dispatched
            let start = Instant::now();
            if data_queued {
                let n = stream.read(&mut buf).unwrap();
                assert_eq!(&buf[..n], b"bc", "{case}");
            }
            for _ in 0..2 {
                assert_eq!(stream.read(&mut buf).unwrap(), 0, "{case}");
            }
            assert!(start.elapsed() < READ_TIMEOUT, "{case}: a read after the shutdown waited out its timeout");
        });
        drop(done_tx);
        peer.join().unwrap();
    }
}

/// A stream registered with one worker's poller and then read on another: the reader's parks
/// after drained reads are woken through the other worker's inbox, and nothing is lost.
#[test]
fn drained_reads_on_a_worker_that_does_not_poll_the_stream() {
    io_util::runtime(2).block_on(|| {
        let listener = green::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let echo = green::Builder::new()
            .worker(0)
            .spawn(move || {
                let (s, _) = listener.accept().unwrap();
                io_util::echo(s).unwrap()
            })
            .unwrap();
        // First waits on worker 0, which registers the stream with worker 0's poller.
        let stream = green::Builder::new()
            .worker(0)
            .spawn(move || {
                let mut c = TcpStream::connect(addr).unwrap();
                c.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
                c.write_all(b"first").unwrap();
                let mut back = [0; 5];
                c.read_exact(&mut back).unwrap();
                assert_eq!(&back, b"first");
                c
            })
            .unwrap()
            .join()
            .unwrap();
        // Then every read happens on worker 1.
        let sent = green::Builder::new()
            .worker(1)
            .spawn(move || {
                let mut stream = stream;
                let sent = 5 + round_trips(&mut stream, 5, 500, 100);
                stream.shutdown(Shutdown::Write).unwrap();
                assert_eq!(stream.read(&mut [0; 8]).unwrap(), 0);
                sent
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(echo.join().unwrap(), sent);
    });
}

/// A read into more slices than one call takes (1,024 on Linux) fills only those it passes:
/// coming back with less than all the slices hold, it is still not a drained read, and the
/// next read finds the rest. On a worker that never sleeps, so that the event for the data is
/// one that says no end came, and with the peer quiet afterwards: no later event could rescue
/// a reader parked by mistake.
#[test]
fn a_read_into_more_slices_than_one_call_takes_is_not_drained() {
    const SENT: usize = 2000;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (peer, peer_thread) = QuietPeer::spawn(move || peer_sends_one(&listener), |s| s.write_all(&[7; SENT]).unwrap());
    io_util::runtime(1).block_on(move || {
        let yielder = busy_beside(Worker::Busy);
        let mut stream = reader_reads_one(addr);
        peer.send_now();
        wait_for_a_poll();
        let mut bytes = vec![0; SENT];
        let mut slices: Vec<IoSliceMut<'_>> = bytes.chunks_mut(1).map(IoSliceMut::new).collect();
        let start = Instant::now();
        let first = stream.read_vectored(&mut slices).unwrap();
        assert!(first < SENT, "one call filled {first} of {SENT} one-byte slices");
        let mut rest = 0;
        let mut buf = [0; SENT];
        while first + rest < SENT {
            rest += stream.read(&mut buf).unwrap();
        }
        assert!(start.elapsed() < READ_TIMEOUT, "a read waited out its timeout with {} bytes queued", SENT - first);
        peer.release();
        yielder.stop();
    });
    peer_thread.join().unwrap();
}

/// A Unix stream socket taken over as a `TcpStream` (through `FromRawFd`): its reads stop at a
/// message that carries fds, short with data still queued behind. It is not TCP, so no read
/// of it counts as drained. The peer sends "ab" with an fd attached, then "cd", then waits.
#[test]
fn a_stream_socket_that_is_not_tcp_never_counts_a_read_as_drained() {
    use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    let says_one = move || {
        let mut s = theirs;
        std::thread::sleep(Duration::from_millis(2)); // the reader parks in its first read
        s.write_all(b"one").unwrap();
        s
    };
    let (peer, peer_thread) = QuietPeer::spawn(says_one, |s| {
        let fd = s.as_raw_fd();
        let mut data = *b"ab";
        let mut iov = libc::iovec { iov_base: data.as_mut_ptr().cast(), iov_len: data.len() };
        let mut control = [0u64; 4];
        // SAFETY: the header points at `iov` and `control`, both live for the call; the one
        // control message is written within `control` (CMSG_SPACE of one int fits 32 bytes).
        let sent = unsafe {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = libc::CMSG_SPACE(size_of::<libc::c_int>() as u32) as _;
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(size_of::<libc::c_int>() as u32) as _;
            libc::CMSG_DATA(cmsg).cast::<libc::c_int>().write_unaligned(fd);
            libc::sendmsg(fd, &msg, 0)
        };
        assert_eq!(sent, 2, "sendmsg(SCM_RIGHTS): {}", std::io::Error::last_os_error());
        s.write_all(b"cd").unwrap();
    });
    io_util::runtime(1).block_on(move || {
        let yielder = busy_beside(Worker::Busy);
        ours.set_nonblocking(true).unwrap();
        // SAFETY: the fd is open and owned by nothing else once `into_raw_fd` gave it up.
        let mut stream = unsafe { TcpStream::from_raw_fd(ours.into_raw_fd()) };
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        let mut buf = [0; 64];
        assert_eq!(stream.read(&mut buf).unwrap(), 3);
        peer.send_now();
        wait_for_a_poll();
        let start = Instant::now();
        let mut got = Vec::new();
        while got.len() < 4 {
            let n = stream.read(&mut buf).unwrap();
            assert!(n > 0, "end of stream after {got:?}");
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, b"abcd");
        assert!(start.elapsed() < READ_TIMEOUT, "a read waited out its timeout with \"cd\" queued");
        peer.release();
        yielder.stop();
    });
    peer_thread.join().unwrap();
}

/// `TCP_INQ` as the kernel has it for `fd`.
fn tcp_inq(fd: std::os::fd::RawFd) -> libc::c_int {
    let mut value: libc::c_int = -1;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` and `len` are valid for writes and `len` is `value`'s size.
    let rc = unsafe { libc::getsockopt(fd, libc::IPPROTO_TCP, libc::TCP_INQ, (&raw mut value).cast(), &mut len) };
    assert_eq!(rc, 0, "getsockopt(TCP_INQ): {}", std::io::Error::last_os_error());
    value
}

/// An exact read followed by a wait turns `TCP_INQ` on; `into_std` hands the socket back
/// with it off, as std would have it.
#[cfg(target_os = "linux")]
#[test]
fn into_std_turns_tcp_inq_off() {
    use std::os::fd::AsRawFd;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (wait_tx, wait_rx) = mpsc::channel::<()>();
    let peer = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_nodelay(true).unwrap();
        s.write_all(b"abcd").unwrap();
        wait_rx.recv().unwrap(); // the reader has its four bytes and reads again
        std::thread::sleep(Duration::from_millis(20)); // the read finds nothing and waits
        s.write_all(b"ef").unwrap();
        s
    });
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    let mut buf = [0; 4];
    stream.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"abcd");
    wait_tx.send(()).unwrap();
    let mut rest = [0; 8];
    let n = stream.read(&mut rest).unwrap();
    assert_eq!(&rest[..n], b"ef");
    assert_eq!(tcp_inq(stream.as_raw_fd()), 1, "a full read and then a wait turn TCP_INQ on");
    let std_stream = stream.into_std().unwrap();
    assert_eq!(tcp_inq(std_stream.as_raw_fd()), 0, "into_std leaves TCP_INQ on");
    drop(peer.join().unwrap());
}
