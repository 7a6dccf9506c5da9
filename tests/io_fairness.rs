//! A green thread that only yields, or only ticks, does not starve a socket on its worker: a
//! ping-pong beside it keeps going (well under a millisecond per round trip on a quiet
//! machine; the bound is loose for loaded ones: starving would mean no progress at all).

mod io_util;

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use green::net::unix::UnixStream;

/// How long a test may take before it counts as hung (a lost wakeup), instead of hanging the run.
const LIMIT: Duration = Duration::from_secs(60);

const ROUND_TRIPS: usize = 200;

fn ping_pong_beside(busy: impl Fn(&AtomicBool) + Send + 'static) -> Duration {
    let rt = io_util::runtime(1);
    let (a, b) = UnixStream::pair().unwrap();
    // The peer is a plain OS thread: only the one worker serves the green side.
    let peer = std::thread::spawn(move || {
        let mut buf = [0; 1];
        for _ in 0..ROUND_TRIPS {
            (&b).read_exact(&mut buf).unwrap();
            (&b).write_all(&buf).unwrap();
        }
    });
    let elapsed = rt.block_on(move || {
        let stop = Arc::new(AtomicBool::new(false));
        let hog = {
            let stop = stop.clone();
            green::spawn(move || busy(&stop))
        };
        green::yield_now(); // let the hog start
        let start = Instant::now();
        let mut buf = [7; 1];
        for _ in 0..ROUND_TRIPS {
            (&a).write_all(&buf).unwrap();
            (&a).read_exact(&mut buf).unwrap();
        }
        let elapsed = start.elapsed();
        stop.store(true, Ordering::Release);
        hog.join().unwrap();
        elapsed
    });
    peer.join().unwrap();
    elapsed / ROUND_TRIPS as u32
}

#[test]
fn a_yield_loop_does_not_starve_a_socket() {
    io_util::bounded(LIMIT, || {
        let per_trip = ping_pong_beside(|stop| {
            while !stop.load(Ordering::Acquire) {
                green::yield_now();
            }
        });
        assert!(per_trip < Duration::from_millis(20), "{per_trip:?} per round trip");
    });
}

#[test]
fn a_ticking_loop_does_not_starve_a_socket() {
    io_util::bounded(LIMIT, || {
        let per_trip = ping_pong_beside(|stop| {
            while !stop.load(Ordering::Acquire) {
                green::tick();
            }
        });
        assert!(per_trip < Duration::from_millis(20), "{per_trip:?} per round trip");
    });
}

/// A green thread that calls `yield_now` after each stretch of work shorter than its budget
/// (here 60 µs without a tick) lets a socket on its worker be polled within a turn or two
/// once `IO_POLL_INTERVAL` has passed. Its budget never ran out, so only the loop's full look
/// every 61 turns asked the OS: a datagram waited up to 61 stretches for its receiver, and a
/// UDP sender that yielded every 50 datagrams overflowed a receiver beside it, which got 612
/// of 5,000 where std's got them all.
#[test]
fn a_yield_loop_with_work_between_yields_does_not_starve_a_socket() {
    use green::net::unix::UnixDatagram;
    const ROUNDS: usize = 20;
    let turns = io_util::bounded(LIMIT, || {
        io_util::runtime(1).block_on(|| {
            let (a, b) = UnixDatagram::pair().unwrap();
            let got = Arc::new(AtomicBool::new(false));
            let receiver = {
                let got = got.clone();
                green::spawn(move || {
                    for _ in 0..ROUNDS {
                        b.recv(&mut [0; 8]).unwrap();
                        got.store(true, Ordering::Release);
                    }
                })
            };
            green::yield_now(); // the receiver parks
            // For each datagram, the stretches of work the sender does until it is received.
            let mut turns = Vec::new();
            for _ in 0..ROUNDS {
                a.send(b"x").unwrap();
                let mut n = 0;
                while !got.swap(false, Ordering::Acquire) {
                    let start = Instant::now();
                    while start.elapsed() < Duration::from_micros(60) {
                        std::hint::spin_loop();
                    }
                    green::yield_now();
                    n += 1;
                }
                turns.push(n);
            }
            receiver.join().unwrap();
            turns
        })
    });
    assert!(turns.iter().all(|&n| n <= 4), "stretches of work before each datagram was received: {turns:?}");
}
