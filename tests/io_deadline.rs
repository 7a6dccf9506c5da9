//! A socket call inside `green::timeout` that would wait past the deadline returns the timeout
//! error std gives for that call (a read: `WouldBlock` on Unix), rather than unwinding.

use std::io::Read;
use std::time::{Duration, Instant};

#[test]
fn a_read_under_a_deadline_returns_std_s_timeout_error() {
    green::run(|| {
        let listener = green::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let peer = green::spawn(move || listener.accept().map(|(s, _)| s));
        let mut stream = green::net::TcpStream::connect(addr).unwrap();
        let _server_side = peer.join().unwrap().unwrap(); // keeps the connection open, silent
        let start = Instant::now();
        let outcome = green::timeout(Duration::from_millis(50), || stream.read(&mut [0u8; 16]));
        let took = start.elapsed();
        match outcome {
            Ok(Err(e)) => {
                assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock, "{e}");
                // Told apart from the socket's own timeout by what it carries.
                assert!(e.get_ref().is_some_and(|inner| inner.is::<green::Elapsed>()), "{e:?}");
            }
            other => panic!("expected the read's own timeout error, got {other:?}"),
        }
        assert!(took >= Duration::from_millis(50) && took < Duration::from_secs(5), "took {took:?}");

        // The socket's own timeout, earlier than the deadline, gives std's error as it is.
        stream.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        let outcome = green::timeout(Duration::from_secs(60), || stream.read(&mut [0u8; 16]));
        match outcome {
            Ok(Err(e)) => assert_eq!(e.raw_os_error(), Some(libc::EAGAIN), "{e:?}"),
            other => panic!("expected the socket's own timeout error, got {other:?}"),
        }
    });
}
