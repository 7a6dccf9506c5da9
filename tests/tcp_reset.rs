//! A peer that resets the connection (closes with unread data, or with `SO_LINGER` 0) gives
//! a parked reader `ConnectionReset`, as std would.

mod io_util;

use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
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
                let linger = libc::linger { l_onoff: 1, l_linger: 0 };
                // SAFETY: the option value points at a live `linger` of the length passed.
                let rc = unsafe {
                    libc::setsockopt(
                        s.as_raw_fd(),
                        libc::SOL_SOCKET,
                        libc::SO_LINGER,
                        (&raw const linger).cast(),
                        size_of::<libc::linger>() as libc::socklen_t,
                    )
                };
                assert_eq!(rc, 0);
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
