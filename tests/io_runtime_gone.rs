//! A socket that outlives its runtime still works on a plain OS thread, and a read from a
//! new runtime's green thread parks on that runtime's poller (the old registration is moved
//! off the closed one).

mod io_util;

use std::io::{Read, Write};
use std::time::Duration;

use green::net::unix::UnixStream;

#[test]
fn a_socket_outlives_its_runtime_and_moves_to_the_next() {
    let (a, b) = UnixStream::pair().unwrap();
    let rt = io_util::runtime(2);
    let (a, b) = rt.block_on(move || {
        // Registered with this runtime's poller by a read that parks.
        let writer = green::spawn(move || {
            green::sleep(Duration::from_millis(5));
            (&b).write_all(b"1").unwrap();
            b
        });
        let mut buf = [0; 1];
        (&a).read_exact(&mut buf).unwrap();
        (a, writer.join().unwrap())
    });
    drop(rt);
    // On this OS thread, it blocks like std: until another thread writes.
    let b = std::thread::scope(|s| {
        let start = std::time::Instant::now();
        let writer = s.spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            (&b).write_all(b"2").unwrap();
            b
        });
        let mut buf = [0; 1];
        (&a).read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"2");
        assert!(start.elapsed() >= Duration::from_millis(15), "the read did not wait for the write");
        writer.join().unwrap()
    });
    // In a new runtime, a read parks on that runtime's poller.
    let rt = io_util::runtime(1);
    rt.block_on(move || {
        let writer = green::spawn(move || {
            green::sleep(Duration::from_millis(10));
            (&b).write_all(b"3").unwrap();
        });
        let mut buf = [0; 1];
        (&a).read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"3");
        writer.join().unwrap();
    });
}
