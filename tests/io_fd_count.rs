//! Opening and dropping 10,000 sockets (in batches of 1,000: 500 connections, both ends in
//! this process), each registered with a worker's poller by a read that parked, leaves the
//! number of open fds where it was.

mod io_util;

use std::io::{Read, Write};

use green::net::{TcpListener, TcpStream};

const BATCHES: usize = 10;
const CONNECTIONS_PER_BATCH: usize = 500;

#[test]
fn ten_thousand_sockets_leave_no_fd_behind() {
    let rt = io_util::runtime(2);
    rt.block_on(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let before = io_util::open_fds();
        for batch in 0..BATCHES {
            let mut ends = Vec::new();
            let clients: Vec<_> = (0..CONNECTIONS_PER_BATCH)
                .map(|_| {
                    green::spawn(move || {
                        let mut s = TcpStream::connect(addr).unwrap();
                        let mut b = [0; 1];
                        s.read_exact(&mut b).unwrap(); // parks: registers the fd
                        s.write_all(&b).unwrap();
                        s
                    })
                })
                .collect();
            for _ in 0..CONNECTIONS_PER_BATCH {
                let (mut s, _) = listener.accept().unwrap();
                s.write_all(&[batch as u8]).unwrap();
                ends.push(s);
            }
            for s in &mut ends {
                let mut b = [0; 1];
                s.read_exact(&mut b).unwrap();
                assert_eq!(b[0], batch as u8);
            }
            let clients: Vec<TcpStream> = clients.into_iter().map(|c| c.join().unwrap()).collect();
            assert_eq!(clients.len() + ends.len(), 2 * CONNECTIONS_PER_BATCH);
            drop(clients);
            drop(ends);
            assert_eq!(io_util::open_fds(), before, "after batch {batch}");
        }
    });
}
