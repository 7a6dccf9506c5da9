//! An I/O call that would block never parks while its green thread unwinds, nor inside
//! `on_worker_stack` (rule 3 of docs/design.md): it makes one attempt and returns an error that says
//! why. Data already there is still read.

mod io_util;

use std::io::{ErrorKind, Read, Write};

use green::net::unix::UnixStream;

struct ReadOnDrop(UnixStream, std::sync::mpsc::Sender<(Vec<u8>, std::io::Error)>);

impl Drop for ReadOnDrop {
    fn drop(&mut self) {
        let mut buf = [0; 8];
        let n = self.0.read(&mut buf).unwrap(); // data is there: one attempt reads it
        let err = self.0.read(&mut buf).unwrap_err(); // none left: would park
        self.1.send((buf[..n].to_vec(), err)).unwrap();
    }
}

#[test]
fn a_read_while_unwinding_returns_an_error_instead_of_parking() {
    io_util::runtime(1).block_on(|| {
        let (a, mut b) = UnixStream::pair().unwrap();
        b.write_all(b"last").unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let panicking = green::spawn(move || {
            let _guard = ReadOnDrop(a, tx);
            panic!("on purpose");
        });
        assert!(panicking.join().is_err());
        let (data, err) = rx.recv().unwrap();
        assert_eq!(data, b"last");
        assert_eq!(err.kind(), ErrorKind::WouldBlock);
        assert!(err.to_string().contains("unwinding"), "{err}");
        drop(b);
    });
}

#[test]
fn a_read_on_the_worker_stack_returns_an_error_instead_of_parking() {
    io_util::runtime(1).block_on(|| {
        let (a, _b) = UnixStream::pair().unwrap();
        let err = green::on_worker_stack(|| (&a).read(&mut [0; 8]).unwrap_err());
        assert_eq!(err.kind(), ErrorKind::WouldBlock);
        assert!(err.to_string().contains("on_worker_stack"), "{err}");
    });
}
