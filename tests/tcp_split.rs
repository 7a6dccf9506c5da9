//! A reader and a writer green thread on one connection, placed on different workers: once
//! through `try_clone`, once through `&TcpStream`. Every byte is verified. A shutdown through
//! one handle waking both when parked. And a write or read split over more slices than one
//! system call takes.

mod io_util;

use std::io::{ErrorKind, IoSlice, IoSliceMut, Read, Write};
use std::net::Shutdown;
use std::sync::Arc;
use std::time::Duration;

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

/// What a relay does when one direction fails: it shuts the connection down through its own
/// handle, and the other direction's green threads, parked on another worker in a read (nothing
/// comes) and in a write (the peer reads nothing), wake with end of stream and `BrokenPipe`.
#[test]
fn a_shutdown_through_one_handle_wakes_reader_and_writer_parked_on_another_worker() {
    const WAKE_LIMIT: Duration = Duration::from_secs(10);
    io_util::runtime(2).block_on(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (peer, _) = listener.accept().unwrap(); // neither reads nor writes
        let (reader, writer) = (stream.try_clone().unwrap(), stream.try_clone().unwrap());
        let mut read =
            green::Builder::new().worker(1).spawn(move || (&reader).read(&mut [0; 16]).map_err(|e| e.kind())).unwrap();
        let mut write = green::Builder::new()
            .worker(1)
            .spawn(move || {
                let chunk = vec![0; 1 << 20];
                let mut written = 0usize;
                loop {
                    match (&writer).write(&chunk) {
                        Ok(n) => written += n,
                        Err(e) => return (written, e.kind()),
                    }
                }
            })
            .unwrap();
        green::sleep(Duration::from_millis(100)); // both park: nothing to read, buffers full
        assert!(!read.is_finished() && !write.is_finished(), "nothing to wait for: the test tests nothing");
        let shut = green::Builder::new().worker(0).spawn(move || stream.shutdown(Shutdown::Both)).unwrap();
        shut.join().unwrap().unwrap();
        let (read_woke, write_woke) = (read.wait_timeout(WAKE_LIMIT), write.wait_timeout(WAKE_LIMIT));
        if !(read_woke && write_woke) {
            read.cancel();
            write.cancel();
            panic!("still parked {WAKE_LIMIT:?} after the shutdown: reader {}, writer {}", !read_woke, !write_woke);
        }
        assert_eq!(read.join().unwrap(), Ok(0));
        let (written, kind) = write.join().unwrap();
        assert!(written > 0, "the writer never filled the buffers");
        assert_eq!(kind, ErrorKind::BrokenPipe);
        drop(peer);
    });
}

/// Regression: vectored calls with more slices than `IOV_MAX` (1024) failed
/// with `EMSGSIZE`. Std passes the first 1024 and returns a partial count; so does green now,
/// before and after a read that would block has registered the fd.
#[test]
fn vectored_calls_with_more_slices_than_iov_max_are_partial() {
    const SLICES: usize = 1100;
    const IOV_MAX: usize = 1024;
    io_util::runtime(1).block_on(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let mut back = vec![0u8; SLICES];
        let mut slices: Vec<IoSliceMut<'_>> = back.chunks_mut(1).map(IoSliceMut::new).collect();
        // Nothing sent yet: a read that times out (and registers the fd).
        server.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
        let err = (&server).read_vectored(&mut slices).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock, "{err}");
        server.set_read_timeout(None).unwrap();

        let data: Vec<u8> = (0..SLICES).map(|i| i as u8).collect();
        let out: Vec<IoSlice<'_>> = data.chunks(1).map(IoSlice::new).collect();
        assert_eq!((&client).write_vectored(&out).unwrap(), IOV_MAX);
        client.shutdown(std::net::Shutdown::Write).unwrap();

        let mut got = Vec::new();
        loop {
            let mut slices: Vec<IoSliceMut<'_>> = back.chunks_mut(1).map(IoSliceMut::new).collect();
            let n = (&server).read_vectored(&mut slices).unwrap();
            if n == 0 {
                break;
            }
            assert!(n <= IOV_MAX, "read {n} bytes into one-byte slices");
            got.extend_from_slice(&back[..n]);
        }
        assert_eq!(got, data[..IOV_MAX]);
    });
}
