//! A peer that closes gives `Ok(0)` to a parked reader, and again to every later read.

mod io_util;

use std::io::{Read, Write};
use std::time::Duration;

use green::net::{TcpListener, TcpStream};

#[test]
fn a_peer_close_wakes_a_parked_reader_with_end_of_stream() {
    io_util::runtime(2).block_on(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let closer = green::Builder::new()
            .worker(1)
            .spawn(move || {
                let (mut s, _) = listener.accept().unwrap();
                s.write_all(b"bye").unwrap();
                green::sleep(Duration::from_millis(20)); // let the reader park
            })
            .unwrap();
        let mut client =
            green::Builder::new().worker(0).spawn(move || TcpStream::connect(addr).unwrap()).unwrap().join().unwrap();
        let mut got = Vec::new();
        client.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"bye");
        assert_eq!(client.read(&mut [0; 8]).unwrap(), 0);
        closer.join().unwrap();
    });
}
