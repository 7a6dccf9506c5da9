//! 1,000 connections at once, each echoing random payloads of random sizes through a green
//! server; every byte is verified. Both ends live in this process: 2,000 fds at the peak.

mod io_util;

use std::io::{Read, Write};
use std::time::Duration;

use green::net::{TcpListener, TcpStream};
use io_util::Rng;

const CONNECTIONS: usize = 1000;
const ROUNDS: usize = 4;
const MAX_PAYLOAD: usize = 24 * 1024;

#[test]
fn a_thousand_connections_echo_random_payloads() {
    let rt = io_util::runtime(2);
    let total = rt.block_on(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = green::spawn(move || {
            let mut handlers = Vec::new();
            for _ in 0..CONNECTIONS {
                let (stream, _) = listener.accept().unwrap();
                handlers.push(green::spawn(move || io_util::echo(stream).unwrap()));
            }
            handlers.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
        });
        let clients: Vec<_> = (0..CONNECTIONS)
            .map(|i| {
                green::spawn(move || {
                    let mut rng = Rng::new(i as u64 + 1);
                    let stream = TcpStream::connect(addr).unwrap();
                    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                    let mut sent = 0u64;
                    for _ in 0..ROUNDS {
                        let len = rng.range(1, MAX_PAYLOAD);
                        let payload = rng.bytes(len);
                        // Write and read at once: a payload larger than the socket buffers
                        // would deadlock a client that writes it all before reading.
                        let mut back = vec![0; payload.len()];
                        green::scope(|s| {
                            s.spawn(|| (&stream).write_all(&payload).unwrap());
                            (&stream).read_exact(&mut back).unwrap();
                        });
                        assert!(back == payload, "connection {i}: echoed bytes differ");
                        sent += payload.len() as u64;
                    }
                    sent
                })
            })
            .collect();
        let sent: u64 = clients.into_iter().map(|c| c.join().unwrap()).sum();
        let echoed = server.join().unwrap();
        assert_eq!(sent, echoed);
        sent
    });
    assert!(total > 0);
}
