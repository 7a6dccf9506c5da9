//! A reader and a writer green thread on one connection, placed on different workers: once
//! through `try_clone`, once through `&TcpStream`. Every byte is verified.

mod io_util;

use std::io::{Read, Write};
use std::sync::Arc;

use green::net::{TcpListener, TcpStream};
use io_util::Rng;

const BYTES: usize = 4 << 20;

/// Connects a pair and runs an echo server for it on worker 0.
fn echo_pair() -> (TcpStream, green::JoinHandle<u64>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = green::Builder::new()
        .worker(0)
        .spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            io_util::echo(stream).unwrap()
        })
        .unwrap();
    (TcpStream::connect(addr).unwrap(), server)
}

fn payload() -> Vec<u8> {
    Rng::new(7).bytes(BYTES)
}

fn read_all(mut reader: impl Read, expected: &[u8]) {
    let mut got = vec![0; expected.len()];
    reader.read_exact(&mut got).unwrap();
    assert!(got == expected, "bytes differ");
}

#[test]
fn reader_and_writer_through_try_clone_on_different_workers() {
    let rt = io_util::runtime(2);
    rt.block_on(|| {
        let (stream, server) = echo_pair();
        let data = Arc::new(payload());
        let mut writer = stream.try_clone().unwrap();
        let out = data.clone();
        let w = green::Builder::new()
            .worker(1)
            .spawn(move || {
                writer.write_all(&out).unwrap();
                writer.shutdown(std::net::Shutdown::Write).unwrap();
            })
            .unwrap();
        let r = green::Builder::new().worker(0).spawn(move || read_all(stream, &data)).unwrap();
        w.join().unwrap();
        r.join().unwrap();
        assert_eq!(server.join().unwrap(), BYTES as u64);
    });
}

#[test]
fn reader_and_writer_through_a_shared_reference_on_different_workers() {
    let rt = io_util::runtime(2);
    rt.block_on(|| {
        let (stream, server) = echo_pair();
        let stream = Arc::new(stream);
        let data = Arc::new(payload());
        let (s, out) = (stream.clone(), data.clone());
        let w = green::Builder::new()
            .worker(1)
            .spawn(move || {
                (&*s).write_all(&out).unwrap();
                s.shutdown(std::net::Shutdown::Write).unwrap();
            })
            .unwrap();
        let s = stream.clone();
        let r = green::Builder::new().worker(0).spawn(move || read_all(&*s, &data)).unwrap();
        w.join().unwrap();
        r.join().unwrap();
        assert_eq!(server.join().unwrap(), BYTES as u64);
    });
}
