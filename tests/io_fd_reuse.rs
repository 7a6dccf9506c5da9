//! Stale events after fd reuse are harmless: sockets registered with worker 0's poller are
//! made ready and closed from worker 1 while worker 0 polls, and their fd numbers are reused
//! at once by new sockets with readers parked on them. No reader is woken for someone else's
//! data, none hangs, every byte arrives. (`reactor.rs` has the exact sequence as a unit test:
//! an event collected, the fd closed and reused, then the event dispatched.)

mod io_util;

use std::io::{Read, Write};
use std::time::Duration;

use green::net::unix::UnixStream;

const ROUNDS: u32 = 2000;

#[test]
fn closing_and_reusing_fds_under_events_in_flight() {
    let reused = io_util::bounded(Duration::from_secs(120), || io_util::runtime(2).block_on(rounds));
    // The test is about reused numbers: most rounds must have reused one (the lowest free fd is
    // the one just closed, unless a concurrent test took it).
    assert!(reused >= ROUNDS * 9 / 10, "only {reused} of {ROUNDS} rounds reused the fd number");
}

/// Runs the rounds; returns how many reused the closed fd's number.
fn rounds() -> u32 {
    let mut reused = 0;
    for round in 0..ROUNDS {
        let (a, b) = UnixStream::pair().unwrap();
        // A reader on worker 0 parks on `a`, registering it there.
        let reader = green::Builder::new()
            .worker(0)
            .spawn(move || {
                let mut buf = [0; 1];
                (&a).read_exact(&mut buf).unwrap();
                assert_eq!(buf[0], 1);
                a
            })
            .unwrap();
        // A writer on worker 1 wakes it, and keeps the fd busy with more events.
        let writer = green::Builder::new()
            .worker(1)
            .spawn(move || {
                (&b).write_all(&[1]).unwrap();
                for _ in 0..(round % 4) {
                    green::yield_now();
                }
                let _ = (&b).write_all(&[2, 3]);
                b
            })
            .unwrap();
        let a = reader.join().unwrap();
        // Close `a` on worker 1 while events for it may be in flight on worker 0, then
        // reuse its fd number for a new socket whose reader parks on worker 0.
        let check = green::Builder::new()
            .worker(1)
            .spawn(move || {
                let old = std::os::fd::AsRawFd::as_raw_fd(&a);
                drop(a);
                let (c, d) = UnixStream::pair().unwrap();
                let reused = std::os::fd::AsRawFd::as_raw_fd(&c) == old;
                let reader = green::Builder::new()
                    .worker(0)
                    .spawn(move || {
                        let mut buf = [0; 3];
                        (&c).read_exact(&mut buf).unwrap();
                        buf
                    })
                    .unwrap();
                green::sleep(Duration::from_micros(50));
                (&d).write_all(b"new").unwrap();
                assert_eq!(&reader.join().unwrap(), b"new");
                reused
            })
            .unwrap();
        reused += u32::from(check.join().unwrap());
        drop(writer.join().unwrap());
    }
    reused
}
