//! A peer that resets the connection (closes with unread data, or with `SO_LINGER` 0) gives
//! a parked reader `ConnectionReset`, as std would.

mod io_util;

use std::io::{ErrorKind, Read, Write};
use std::time::Duration;

use green::net::{TcpListener, TcpStream};

#[test]
fn a_reset_peer_gives_connection_reset() {
    io_util::runtime(2).block_on(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let resetter = green::Builder::new()
            .worker(1)
            .spawn(move || {
                let (s, _) = listener.accept().unwrap();
                green::sleep(Duration::from_millis(20)); // let the reader park
                io_util::reset_on_close(&s);
                drop(s); // close with linger 0 sends RST
            })
            .unwrap();
        let mut client = TcpStream::connect(addr).unwrap();
        let err = client.read(&mut [0; 8]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
        resetter.join().unwrap();
        // Writing to a reset connection is an error too, never a SIGPIPE.
        let err = loop {
            if let Err(e) = client.write(b"x") {
                break e;
            }
        };
        assert!(matches!(err.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset), "{err}");
    });
}
