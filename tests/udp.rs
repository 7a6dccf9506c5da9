//! UDP round trips between green threads on different workers, every byte verified; a
//! receive parks until a datagram arrives; several receivers share one socket.

mod io_util;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use green::net::UdpSocket;
use io_util::Rng;

const ROUNDS: usize = 500;

#[test]
fn datagrams_round_trip_between_workers() {
    io_util::runtime(2).block_on(|| {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let server_addr = server.local_addr().unwrap();
        let echo = green::Builder::new()
            .worker(1)
            .spawn(move || {
                let mut buf = [0; 2048];
                for _ in 0..ROUNDS {
                    let (n, from) = server.recv_from(&mut buf).unwrap();
                    server.send_to(&buf[..n], from).unwrap();
                }
            })
            .unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client.connect(server_addr).unwrap();
        let mut rng = Rng::new(3);
        let mut buf = [0; 2048];
        for i in 0..ROUNDS {
            let len = rng.range(1, 1400);
            let payload = rng.bytes(len);
            client.send(&payload).unwrap();
            let n = client.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], &payload[..], "round {i}");
        }
        echo.join().unwrap();
    });
}

#[test]
fn several_receivers_share_one_socket() {
    const RECEIVERS: usize = 6;
    const EACH: usize = 50;
    io_util::runtime(2).block_on(|| {
        let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
        let addr = socket.local_addr().unwrap();
        let received = Arc::new(AtomicUsize::new(0));
        let receivers: Vec<_> = (0..RECEIVERS)
            .map(|i| {
                let socket = socket.clone();
                let received = received.clone();
                green::Builder::new()
                    .worker(i % 2)
                    .spawn(move || {
                        let mut got = Vec::new();
                        let mut buf = [0; 8];
                        for _ in 0..EACH {
                            let (n, _) = socket.recv_from(&mut buf).unwrap();
                            assert_eq!(n, 8);
                            got.push(u64::from_le_bytes(buf));
                            received.fetch_add(1, Ordering::SeqCst);
                        }
                        got
                    })
                    .unwrap()
            })
            .collect();
        green::sleep(std::time::Duration::from_millis(10)); // let them park
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        for id in 0..(RECEIVERS * EACH) as u64 {
            // Never more than 32 in flight: a full receive buffer would drop datagrams.
            while id as usize >= received.load(Ordering::SeqCst) + 32 {
                green::yield_now();
            }
            sender.send_to(&id.to_le_bytes(), addr).unwrap();
        }
        let mut all: Vec<u64> = receivers.into_iter().flat_map(|r| r.join().unwrap()).collect();
        all.sort_unstable();
        assert_eq!(all, (0..(RECEIVERS * EACH) as u64).collect::<Vec<_>>());
    });
}
