//! Runtime shutdown while sockets registered with one worker's poller are dropped by
//! destructors of green threads on another worker: every socket is closed, no fd is left.

mod io_util;

use std::io::Read;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use green::net::unix::UnixStream;

#[test]
fn cancelled_green_threads_drop_sockets_registered_on_another_worker() {
    let before = io_util::open_fds();
    let rt = io_util::runtime(2);
    let (parked_tx, parked_rx) = mpsc::channel();
    let mut peers = Vec::new();
    for _ in 0..50 {
        let (a, b) = UnixStream::pair().unwrap();
        let (c, d) = UnixStream::pair().unwrap();
        peers.push((b, d));
        let parked_tx = parked_tx.clone();
        rt.spawn(move || {
            // Register `a` with worker 1's poller: a read there that parks and times out.
            let a = green::Builder::new()
                .worker(1)
                .spawn(move || {
                    a.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
                    assert!((&a).read(&mut [0; 1]).is_err());
                    a.set_read_timeout(None).unwrap();
                    a
                })
                .unwrap()
                .join()
                .unwrap();
            // Then hold it on worker 0, parked on another socket, until shutdown cancels us:
            // unwinding drops `a` here, on worker 0.
            green::Builder::new()
                .worker(0)
                .spawn(move || {
                    let _a = a;
                    parked_tx.send(()).unwrap();
                    let _ = (&c).read(&mut [0; 1]);
                    unreachable!("nothing writes to c");
                })
                .unwrap()
                .join()
                .ok();
        });
    }
    for _ in 0..50 {
        parked_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    }
    let start = Instant::now();
    drop(rt);
    assert!(start.elapsed() < Duration::from_secs(5), "shutdown took {:?}", start.elapsed());
    // Every socket the green threads held was closed: their peers read end of stream.
    for (mut b, mut d) in peers {
        assert_eq!(b.read(&mut [0; 1]).unwrap(), 0);
        assert_eq!(d.read(&mut [0; 1]).unwrap(), 0);
    }
    assert!(io_util::eventually(Duration::from_secs(5), || io_util::open_fds() == before), "fds leaked");
}
