//! `read_vectored` with no room at all (no slices, or only empty ones) returns `Ok(0)` at once,
//! as std's does (`readv` of nothing), instead of waiting for data that it could not take:
//! on a green thread, and on a plain OS thread.

mod io_util;

use std::io::{IoSliceMut, Read};
use std::time::{Duration, Instant};

use green::net::{TcpListener, TcpStream};

fn check(stream: &TcpStream) {
    let start = Instant::now();
    assert_eq!((&*stream).read_vectored(&mut []).unwrap(), 0, "no slices");
    let (mut a, mut b) = ([0u8; 0], [0u8; 0]);
    assert_eq!((&*stream).read_vectored(&mut [IoSliceMut::new(&mut a)]).unwrap(), 0, "one empty slice");
    assert_eq!(
        (&*stream).read_vectored(&mut [IoSliceMut::new(&mut a), IoSliceMut::new(&mut b)]).unwrap(),
        0,
        "two empty slices"
    );
    assert!(start.elapsed() < Duration::from_secs(1), "waited {:?} for nothing", start.elapsed());
}

#[test]
fn an_empty_vectored_read_returns_at_once_like_std() {
    io_util::bounded(Duration::from_secs(30), || {
        // std first: what green mirrors.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        assert_eq!(server.read_vectored(&mut [IoSliceMut::new(&mut [])]).unwrap(), 0);

        // A plain OS thread: no data will ever come, and the timeout is long.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        server.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        check(&server);

        // A green thread.
        io_util::runtime(1).block_on(|| {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (server, _) = listener.accept().unwrap();
            server.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            check(&server);
        });
    });
}

#[test]
fn an_empty_vectored_read_of_a_unix_stream_returns_at_once_too() {
    io_util::bounded(Duration::from_secs(30), || {
        io_util::runtime(1).block_on(|| {
            let (a, _b) = green::net::unix::UnixStream::pair().unwrap();
            a.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let start = Instant::now();
            let mut e = [0u8; 0];
            assert_eq!((&a).read_vectored(&mut [IoSliceMut::new(&mut e)]).unwrap(), 0);
            assert_eq!((&a).read_vectored(&mut []).unwrap(), 0);
            assert!(start.elapsed() < Duration::from_secs(1));
        });
    });
}
