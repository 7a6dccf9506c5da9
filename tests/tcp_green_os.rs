//! Green threads and plain OS threads on the two ends of one connection, both ways round:
//! outside a runtime the green types block the OS thread like std's.

mod io_util;

use std::io::{Read, Write};

use io_util::Rng;

const BYTES: usize = 1 << 20;

#[test]
fn green_server_and_os_thread_client() {
    let rt = io_util::runtime(2);
    let listener = green::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = rt.spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        io_util::echo(stream).unwrap()
    });
    // A std client on this OS thread.
    let payload = Rng::new(1).bytes(BYTES);
    let client = std::net::TcpStream::connect(addr).unwrap();
    let mut writer = client.try_clone().unwrap();
    let out = payload.clone();
    let w = std::thread::spawn(move || {
        writer.write_all(&out).unwrap();
        writer.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let mut back = Vec::new();
    (&client).read_to_end(&mut back).unwrap();
    w.join().unwrap();
    assert!(back == payload, "bytes differ");
    assert_eq!(server.join().unwrap(), BYTES as u64);
}

#[test]
fn green_types_on_os_threads_talk_to_a_green_client() {
    let rt = io_util::runtime(2);
    // The server runs green's types on plain OS threads: they block like std's.
    let listener = green::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        io_util::echo(stream).unwrap()
    });
    let payload = Rng::new(2).bytes(BYTES);
    let back = rt.block_on(|| {
        let stream = green::net::TcpStream::connect(addr).unwrap();
        let mut back = vec![0; BYTES];
        green::scope(|s| {
            s.spawn(|| {
                (&stream).write_all(&payload).unwrap();
                stream.shutdown(std::net::Shutdown::Write).unwrap();
            });
            (&stream).read_exact(&mut back).unwrap();
        });
        back
    });
    assert!(back == payload, "bytes differ");
    assert_eq!(server.join().unwrap(), BYTES as u64);
}
