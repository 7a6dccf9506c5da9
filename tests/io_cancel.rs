//! Cancelling a green thread parked in I/O: it unwinds from the park, its sockets are closed
//! by its destructors, and the waiter it left takes no readiness from the others (another
//! green thread accepting on the same listener still gets the next connection).

mod io_util;

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use green::net::unix::UnixStream;
use green::net::{TcpListener, TcpStream};

#[test]
fn a_green_thread_parked_in_read_is_cancelled_and_closes_its_socket() {
    io_util::runtime(2).block_on(|| {
        let (a, mut b) = UnixStream::pair().unwrap();
        let reader = green::Builder::new()
            .worker(1)
            .spawn(move || {
                let mut a = a;
                let _ = a.read(&mut [0; 8]);
                unreachable!("nothing was written");
            })
            .unwrap();
        green::sleep(Duration::from_millis(10)); // let it park
        reader.cancel();
        assert!(reader.join().unwrap_err().is_cancelled());
        assert_eq!(b.read(&mut [0; 8]).unwrap(), 0, "the reader's socket was closed");
    });
}

#[test]
fn a_cancelled_acceptor_does_not_take_the_next_connection_from_another() {
    io_util::runtime(2).block_on(|| {
        let listener = Arc::new(TcpListener::bind("127.0.0.1:0").unwrap());
        let addr = listener.local_addr().unwrap();
        // Two acceptors park on the listener, the first before the second.
        let first = {
            let l = listener.clone();
            green::Builder::new().worker(0).spawn(move || l.accept().map(drop)).unwrap()
        };
        green::sleep(Duration::from_millis(10));
        let second = {
            let l = listener.clone();
            green::Builder::new()
                .worker(1)
                .spawn(move || {
                    let (mut s, _) = l.accept().unwrap();
                    s.write_all(b"second").unwrap();
                })
                .unwrap()
        };
        green::sleep(Duration::from_millis(10));
        // The first is cancelled while parked: the next connection must reach the second.
        first.cancel();
        assert!(first.join().unwrap_err().is_cancelled());
        let mut client = TcpStream::connect(addr).unwrap();
        client.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0; 6];
        client.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"second");
        second.join().unwrap();
    });
}

/// The same with the cancelled acceptor's worker stuck in blocking code while the connection
/// comes in: when the worker is free again, the cancelled acceptor must unwind from its park,
/// not retry its `accept` first (which took the connection and dropped it with its frame).
#[test]
fn an_acceptor_cancelled_while_its_worker_is_stuck_leaves_the_connection_to_another() {
    // Worker 0 is stuck on purpose: no report of it.
    let runtime = green::Runtime::builder().workers(2).blocking_threshold(None).build().unwrap();
    let listener = Arc::new(TcpListener::bind("127.0.0.1:0").unwrap());
    cancel_the_first_of_two_acceptors_on_a_stuck_worker(&runtime, &listener);
}

/// As above, with the listener watched by the other worker, which is free: its dispatcher
/// hands the connection's readiness to the first waiter, the cancelled acceptor that has not
/// run yet. That one must pass it on as it unwinds, or the second acceptor waits for good.
#[test]
fn a_readiness_handed_to_a_cancelled_acceptor_goes_on_to_the_next() {
    let runtime = green::Runtime::builder().workers(2).blocking_threshold(None).build().unwrap();
    let listener = Arc::new(TcpListener::bind("127.0.0.1:0").unwrap());
    // A first wait from worker 1 registers the listener with worker 1's poller.
    let l = listener.clone();
    let timed_out = on_worker(&runtime, 1, move || green::timeout(Duration::from_millis(10), || l.accept().map(drop)));
    assert!(!matches!(timed_out.join().unwrap(), Ok(Ok(()))), "no connection yet");
    cancel_the_first_of_two_acceptors_on_a_stuck_worker(&runtime, &listener);
}

/// An acceptor on worker 0, then one on worker 1; worker 0 blocks (it neither resumes the
/// first acceptor nor polls its sockets) while the first is cancelled and a client connects:
/// the connection must reach the second acceptor.
fn cancel_the_first_of_two_acceptors_on_a_stuck_worker(runtime: &green::Runtime, listener: &Arc<TcpListener>) {
    let first = {
        let l = listener.clone();
        on_worker(runtime, 0, move || l.accept().map(drop))
    };
    std::thread::sleep(Duration::from_millis(20));
    let second = {
        let l = listener.clone();
        on_worker(runtime, 1, move || {
            let (mut s, _) = l.accept().unwrap();
            s.write_all(b"second").unwrap();
        })
    };
    std::thread::sleep(Duration::from_millis(20));
    let stuck = on_worker(runtime, 0, || std::thread::sleep(Duration::from_millis(300)));
    std::thread::sleep(Duration::from_millis(50));
    first.cancel();
    let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    client.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0; 6];
    client.read_exact(&mut buf).expect("the connection reaches the acceptor that was not cancelled");
    assert_eq!(&buf, b"second");
    assert!(first.join().unwrap_err().is_cancelled());
    second.join().unwrap();
    stuck.join().unwrap();
}

fn on_worker<T: Send + 'static>(
    runtime: &green::Runtime,
    worker: usize,
    f: impl FnOnce() -> T + Send + 'static,
) -> green::JoinHandle<T> {
    green::Builder::new().worker(worker).spawn_on(runtime.handle(), f).unwrap()
}
