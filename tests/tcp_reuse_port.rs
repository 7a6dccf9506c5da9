//! One listener per worker on the same port (`SO_REUSEPORT`), each with its own accept loop:
//! the kernel spreads the connections over them, and each is accepted exactly once.

mod io_util;

use std::collections::HashSet;
use std::io::{Read, Write};

use green::net::{TcpListener, TcpStream};

/// How long a test may take before it counts as hung (a lost wakeup), instead of hanging the run.
const LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

const CONNECTIONS: u64 = 300;

#[test]
fn a_listener_per_worker_shares_one_port() {
    io_util::bounded(LIMIT, || {
        io_util::runtime(2).block_on(|| {
            let first = TcpListener::bind_reuse_port("127.0.0.1:0").unwrap();
            let addr = first.local_addr().unwrap();
            let second = TcpListener::bind_reuse_port(addr).unwrap();
            // A plain bind of the same port is refused: the option is what shares it.
            assert!(TcpListener::bind(addr).is_err());
            let loops: Vec<_> = [first, second]
                .into_iter()
                .enumerate()
                .map(|(worker, listener)| {
                    green::Builder::new()
                        .worker(worker)
                        .spawn(move || {
                            let mut ids = Vec::new();
                            for stream in listener.incoming() {
                                let mut s = stream.unwrap();
                                let mut id = [0; 8];
                                s.read_exact(&mut id).unwrap();
                                let id = u64::from_le_bytes(id);
                                if id == u64::MAX {
                                    break; // the end marker, sent to each listener
                                }
                                s.write_all(b"k").unwrap();
                                ids.push(id);
                            }
                            ids
                        })
                        .unwrap()
                })
                .collect();
            let clients: Vec<_> = (0..CONNECTIONS)
                .map(|id| {
                    green::spawn(move || {
                        let mut s = TcpStream::connect(addr).unwrap();
                        s.write_all(&id.to_le_bytes()).unwrap();
                        let mut ack = [0; 1];
                        s.read_exact(&mut ack).unwrap();
                    })
                })
                .collect();
            for c in clients {
                c.join().unwrap();
            }
            // End each accept loop: keep connecting until both have seen an end marker. The
            // kernel picks the listener by a hash of the connection, so this takes a few tries.
            let mut ended = 0;
            let mut per_listener = Vec::new();
            let mut seen = HashSet::new();
            let mut loops: Vec<_> = loops.into_iter().map(Some).collect();
            while ended < 2 {
                let mut s = TcpStream::connect(addr).unwrap();
                s.write_all(&u64::MAX.to_le_bytes()).unwrap();
                drop(s);
                green::sleep(std::time::Duration::from_millis(1));
                for slot in &mut loops {
                    if slot.as_ref().is_some_and(|h| h.is_finished()) {
                        let ids = slot.take().unwrap().join().unwrap();
                        per_listener.push(ids.len());
                        for id in ids {
                            assert!(seen.insert(id), "connection {id} accepted twice");
                        }
                        ended += 1;
                    }
                }
            }
            assert_eq!(seen.len() as u64, CONNECTIONS, "per listener: {per_listener:?}");
            // The kernel spread them by hash: with this many, each listener got some.
            assert!(per_listener.iter().all(|&n| n > 0), "per listener: {per_listener:?}");
        });
    });
}
