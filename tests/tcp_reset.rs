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
        // Writing to a reset connection is an error too.
        let err = write_until_error(&mut client);
        assert!(matches!(err.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset), "{err}");
    });
}

/// Writes a byte at a time until a write fails (at most a thousand tries).
fn write_until_error(stream: &mut impl Write) -> std::io::Error {
    for _ in 0..1000 {
        if let Err(e) = stream.write(b"x") {
            return e;
        }
    }
    panic!("a thousand writes to a closed peer all succeeded");
}

/// Test binaries ignore SIGPIPE, as Rust programs do, so this runs in a child that restores
/// the default action, which kills the process: a write to a closed peer must be an error
/// (sends pass `MSG_NOSIGNAL`), never that signal, on TCP and Unix streams alike.
#[test]
fn writes_to_a_closed_peer_raise_no_sigpipe() {
    const NAME: &str = "writes_to_a_closed_peer_raise_no_sigpipe";
    if !io_util::is_child() {
        let out = io_util::run_child(NAME, Duration::from_secs(30));
        assert!(
            out.status.success(),
            "the child ended with {:?}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    // SAFETY: restores the default action of one signal; no handler is involved.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    io_util::runtime(1).block_on(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        io_util::reset_on_close(&server);
        drop(server);
        let err = write_until_error(&mut client);
        assert!(matches!(err.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset), "{err}");

        let (mut a, b) = green::net::unix::UnixStream::pair().unwrap();
        drop(b);
        let err = write_until_error(&mut a);
        assert_eq!(err.kind(), ErrorKind::BrokenPipe, "{err}");
    });
}
