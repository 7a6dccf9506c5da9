//! Connecting to a port nobody listens on gives `ConnectionRefused`, from a green thread and
//! from a plain OS thread, and leaks no fd.

mod io_util;

use std::io::ErrorKind;

use green::net::TcpStream;

fn closed_port() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap() // closed when the listener drops here
}

#[test]
fn a_refused_connection_is_connection_refused() {
    let addr = closed_port();
    let before = io_util::open_fds();
    let err = io_util::runtime(1).block_on(|| TcpStream::connect(addr).unwrap_err());
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
    let err = TcpStream::connect(addr).unwrap_err(); // on this OS thread
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
    // Runtime threads are gone; the failed sockets must be closed too.
    assert!(io_util::eventually(std::time::Duration::from_secs(5), || io_util::open_fds() <= before));
}
