//! Several green threads accept on one listener (and on a clone of it), on both workers:
//! every connection is accepted exactly once.

mod io_util;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use green::net::{TcpListener, TcpStream};

const ACCEPTORS: usize = 8;
const CONNECTIONS: usize = 400;

#[test]
fn each_connection_is_accepted_once() {
    let rt = io_util::runtime(2);
    rt.block_on(|| {
        let listener = Arc::new(TcpListener::bind("127.0.0.1:0").unwrap());
        let clone = Arc::new(listener.try_clone().unwrap());
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let acceptors: Vec<_> = (0..ACCEPTORS)
            .map(|i| {
                let l = if i % 2 == 0 { listener.clone() } else { clone.clone() };
                let accepted = accepted.clone();
                green::Builder::new()
                    .worker(i % 2)
                    .spawn(move || {
                        let mut ids = Vec::new();
                        while accepted.fetch_add(1, Ordering::SeqCst) < CONNECTIONS {
                            let (mut s, _) = l.accept().unwrap();
                            let mut id = [0; 8];
                            s.read_exact(&mut id).unwrap();
                            s.write_all(&id).unwrap();
                            ids.push(u64::from_le_bytes(id));
                        }
                        ids
                    })
                    .unwrap()
            })
            .collect();
        let clients: Vec<_> = (0..CONNECTIONS as u64)
            .map(|id| {
                green::spawn(move || {
                    let mut s = TcpStream::connect(addr).unwrap();
                    s.write_all(&id.to_le_bytes()).unwrap();
                    let mut back = [0; 8];
                    s.read_exact(&mut back).unwrap();
                    assert_eq!(u64::from_le_bytes(back), id);
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap();
        }
        let mut seen = HashSet::new();
        let mut per_acceptor = Vec::new();
        for a in acceptors {
            let ids = a.join().unwrap();
            per_acceptor.push(ids.len());
            for id in ids {
                assert!(seen.insert(id), "connection {id} accepted twice");
            }
        }
        assert_eq!(seen.len(), CONNECTIONS, "per acceptor: {per_acceptor:?}");
    });
}
