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
