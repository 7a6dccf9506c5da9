//! Addresses: IPv6 loopback works like IPv4, a host name is resolved (on the blocking pool)
//! and each of its addresses tried in turn, and an address that resolves to nothing is
//! `InvalidInput`, as in std. `lookup_host` gives the addresses of a name without
//! connecting.

mod io_util;

use std::io::{ErrorKind, Read, Write};
use std::time::Duration;

use green::net::{TcpListener, TcpStream, UdpSocket};

#[test]
fn ipv6_loopback_round_trip() {
    let Ok(listener) = TcpListener::bind("[::1]:0") else {
        eprintln!("no IPv6 loopback here: skipped");
        return;
    };
    io_util::runtime(2).block_on(move || {
        let addr = listener.local_addr().unwrap();
        assert!(addr.is_ipv6());
        let server = green::spawn(move || io_util::echo(listener.accept().unwrap().0).unwrap());
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"six").unwrap();
        let mut buf = [0; 3];
        s.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"six");
        drop(s);
        assert_eq!(server.join().unwrap(), 3);
        let udp = UdpSocket::bind("[::1]:0").unwrap();
        udp.send_to(b"v6", udp.local_addr().unwrap()).unwrap();
        assert_eq!(udp.recv_from(&mut buf).unwrap().0, 2);
    });
}

#[test]
fn a_host_name_is_resolved_and_each_address_tried() {
    io_util::runtime(2).block_on(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        // "localhost" may resolve to ::1 first, where nobody listens: then 127.0.0.1 is tried.
        let mut s = TcpStream::connect(("localhost", port)).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        s.write_all(b"hi").unwrap();
        let mut buf = [0; 2];
        server.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hi");
    });
}

/// With several addresses, a connect tries each in turn until one answers.
#[test]
fn a_list_of_addresses_is_tried_in_order() {
    io_util::runtime(1).block_on(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        // A port nobody listens on: bound, then closed.
        let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let addrs = [closed, listener.local_addr().unwrap()];
        let s = TcpStream::connect(&addrs[..]).unwrap();
        assert_eq!(s.peer_addr().unwrap(), addrs[1]);
        let only_closed = TcpStream::connect(&addrs[..1]).unwrap_err();
        assert_eq!(only_closed.kind(), ErrorKind::ConnectionRefused, "{only_closed}");
    });
}

#[test]
fn nothing_to_connect_to_is_invalid_input() {
    io_util::runtime(1).block_on(|| {
        let none: &[std::net::SocketAddr] = &[];
        let err = TcpStream::connect(none).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        let err = TcpListener::bind(none).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    });
}

/// `lookup_host` resolves a name (on the pool) and passes an address through; each address it
/// gives takes a `connect_timeout`; a name that does not resolve says which; no port is
/// `InvalidInput`.
#[test]
fn lookup_host_gives_the_addresses_to_connect_to_one_by_one() {
    io_util::runtime(1).block_on(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let addrs: Vec<_> = green::net::lookup_host(("localhost", port)).unwrap().collect();
        assert!(!addrs.is_empty());
        assert!(addrs.iter().all(|a| a.ip().is_loopback() && a.port() == port), "{addrs:?}");
        let v4 = addrs.iter().find(|a| a.is_ipv4()).expect("localhost has an IPv4 address");
        let s = TcpStream::connect_timeout(v4, Duration::from_secs(10)).unwrap();
        assert_eq!(s.peer_addr().unwrap(), listener.local_addr().unwrap());

        let same: Vec<_> = green::net::lookup_host(listener.local_addr().unwrap()).unwrap().collect();
        assert_eq!(same, [listener.local_addr().unwrap()]);

        let err = green::net::lookup_host("nonexistent.invalid:80").unwrap_err();
        assert!(err.to_string().contains("nonexistent.invalid"), "{err}");
        let err = green::net::lookup_host("localhost").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    });
}
