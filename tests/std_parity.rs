//! Code written against std ports by changing its `use` lines: the types of `green::net`,
//! `green::net::unix`, `green::thread` and `green::sync::mpsc` have std's method signatures,
//! trait impls and auto traits. Most of this file is checked by the compiler (a signature
//! that drifts from std's stops it building); the tests run a little of each to be sure.

use std::fmt::Debug;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::panic::{RefUnwindSafe, UnwindSafe};
use std::path::Path;
use std::time::Duration;

use green::net::unix::{self, UnixDatagram, UnixListener, UnixStream};
use green::net::{TcpListener, TcpStream, UdpSocket};
use green::sync::mpsc;
use green::thread;

mod common;

const LIMIT: Duration = Duration::from_secs(60);

fn send_sync<T: Send + Sync>() {}
fn unwind_safe<T: UnwindSafe + RefUnwindSafe>() {}
fn debug<T: Debug>() {}
fn error<E: std::error::Error + Send + Sync + 'static>() {}
fn owns_fd<T: AsFd + AsRawFd + FromRawFd + IntoRawFd + From<OwnedFd> + Into<OwnedFd>>() {}
fn read_write<T>()
where
    T: Read + Write,
    for<'a> &'a T: Read + Write,
{
}

/// Std's signatures, as function pointer types each method must coerce to.
#[allow(clippy::type_complexity)]
fn net_signatures() {
    let _: fn(&TcpListener) -> io::Result<(TcpStream, SocketAddr)> = TcpListener::accept;
    let _: fn(&TcpListener) -> green::net::Incoming<'_> = TcpListener::incoming;
    let _: fn(&TcpListener, u32) -> io::Result<()> = TcpListener::set_ttl;
    let _: fn(&TcpListener) -> io::Result<Option<io::Error>> = TcpListener::take_error;
    let _: fn(&SocketAddr, Duration) -> io::Result<TcpStream> = TcpStream::connect_timeout;
    let _: fn(&TcpStream, Shutdown) -> io::Result<()> = TcpStream::shutdown;
    let _: fn(&TcpStream, &mut [u8]) -> io::Result<usize> = TcpStream::peek;
    let _: fn(&TcpStream, Option<Duration>) -> io::Result<()> = TcpStream::set_read_timeout;
    let _: fn(&TcpStream) -> io::Result<Option<Duration>> = TcpStream::write_timeout;
    let _: fn(&TcpStream, bool) -> io::Result<()> = TcpStream::set_nodelay;
    let _: fn(&TcpStream, bool) -> io::Result<()> = TcpStream::set_quickack;
    let _: fn(&TcpStream) -> io::Result<bool> = TcpStream::quickack;
    let _: fn(&UdpSocket, &mut [u8]) -> io::Result<(usize, SocketAddr)> = UdpSocket::peek_from;
    let _: fn(&UdpSocket, &[u8], SocketAddr) -> io::Result<usize> = UdpSocket::send_to::<SocketAddr>;
    let _: fn(&UdpSocket, SocketAddr) -> io::Result<()> = UdpSocket::connect::<SocketAddr>;
    let _: fn(&UdpSocket, &Ipv4Addr, &Ipv4Addr) -> io::Result<()> = UdpSocket::join_multicast_v4;
    let _: fn(&UdpSocket, &Ipv6Addr, u32) -> io::Result<()> = UdpSocket::leave_multicast_v6;
    let _: fn(&UdpSocket, u32) -> io::Result<()> = UdpSocket::set_multicast_ttl_v4;
    let _: fn(&UdpSocket, bool) -> io::Result<()> = UdpSocket::set_broadcast;
    let _: fn(&unix::SocketAddr) -> io::Result<UnixListener> = UnixListener::bind_addr;
    let _: fn(&UnixListener) -> io::Result<(UnixStream, unix::SocketAddr)> = UnixListener::accept;
    let _: fn(&'static Path) -> io::Result<UnixStream> = UnixStream::connect::<&'static Path>;
    let _: fn() -> io::Result<(UnixStream, UnixStream)> = UnixStream::pair;
    let _: fn() -> io::Result<UnixDatagram> = UnixDatagram::unbound;
    let _: fn(&UnixDatagram, &[u8], &unix::SocketAddr) -> io::Result<usize> = UnixDatagram::send_to_addr;
    let _: fn(&UnixDatagram, &mut [u8]) -> io::Result<(usize, unix::SocketAddr)> = UnixDatagram::recv_from;
    let _: fn(&UnixDatagram, Shutdown) -> io::Result<()> = UnixDatagram::shutdown;
    // Std's own address type, so its Linux extension (abstract names) works unchanged.
    let _: fn(&'static [u8]) -> io::Result<std::os::unix::net::SocketAddr> =
        <unix::SocketAddr as std::os::linux::net::SocketAddrExt>::from_abstract_name::<&'static [u8]>;
}

#[allow(clippy::type_complexity)]
fn thread_signatures() {
    let _: fn(fn() -> u8) -> thread::JoinHandle<u8> = thread::spawn;
    let _: fn(thread::Builder, String) -> thread::Builder = thread::Builder::name;
    let _: fn(thread::Builder, usize) -> thread::Builder = thread::Builder::stack_size;
    let _: fn(thread::Builder, fn() -> u8) -> io::Result<thread::JoinHandle<u8>> = thread::Builder::spawn;
    let _: fn(&thread::JoinHandle<u8>) -> &thread::Thread = thread::JoinHandle::thread;
    let _: fn(&thread::JoinHandle<u8>) -> bool = thread::JoinHandle::is_finished;
    let _: fn(thread::JoinHandle<u8>) -> thread::Result<u8> = thread::JoinHandle::join;
    let _: for<'a> fn(&'a thread::ScopedJoinHandle<'static, u8>) -> &'a thread::Thread =
        thread::ScopedJoinHandle::thread;
    let _: fn(&thread::Thread) -> Option<&str> = thread::Thread::name;
    let _: fn(&thread::Thread) -> thread::ThreadId = thread::Thread::id;
    let _: fn(&thread::Thread) = thread::Thread::unpark;
    let _: fn() -> thread::Thread = thread::current;
    let _: fn() = thread::park;
    let _: fn(Duration) = thread::park_timeout;
    let _: fn(Duration) = thread::sleep;
    let _: fn() = thread::yield_now;
    let _: fn() -> bool = thread::panicking;
    let _: fn() -> io::Result<std::num::NonZeroUsize> = thread::available_parallelism;
}

fn channel_signatures() {
    let _: fn() -> (mpsc::Sender<u8>, mpsc::Receiver<u8>) = mpsc::channel;
    let _: fn(usize) -> (mpsc::SyncSender<u8>, mpsc::Receiver<u8>) = mpsc::sync_channel;
    let _: fn(&mpsc::Sender<u8>, u8) -> Result<(), mpsc::SendError<u8>> = mpsc::Sender::send;
    let _: fn(&mpsc::SyncSender<u8>, u8) -> Result<(), mpsc::TrySendError<u8>> = mpsc::SyncSender::try_send;
    let _: fn(&mpsc::Receiver<u8>) -> Result<u8, mpsc::RecvError> = mpsc::Receiver::recv;
    let _: fn(&mpsc::Receiver<u8>) -> Result<u8, mpsc::TryRecvError> = mpsc::Receiver::try_recv;
    let _: fn(&mpsc::Receiver<u8>, Duration) -> Result<u8, mpsc::RecvTimeoutError> = mpsc::Receiver::recv_timeout;
    let _: fn(&mpsc::Receiver<u8>) -> mpsc::Iter<'_, u8> = mpsc::Receiver::iter;
    let _: fn(&mpsc::Receiver<u8>) -> mpsc::TryIter<'_, u8> = mpsc::Receiver::try_iter;
    let _: fn(mpsc::Receiver<u8>) -> mpsc::IntoIter<u8> = IntoIterator::into_iter;
}

#[test]
fn types_have_std_traits() {
    // Sockets: Send, Sync, unwind safe, Debug, the fd conversions both ways.
    send_sync::<TcpListener>();
    send_sync::<TcpStream>();
    send_sync::<UdpSocket>();
    send_sync::<UnixListener>();
    send_sync::<UnixStream>();
    send_sync::<UnixDatagram>();
    send_sync::<green::net::Incoming<'static>>();
    send_sync::<unix::Incoming<'static>>();
    unwind_safe::<TcpStream>();
    unwind_safe::<UnixDatagram>();
    debug::<TcpListener>();
    debug::<UdpSocket>();
    debug::<UnixStream>();
    debug::<green::net::Incoming<'static>>();
    debug::<unix::Incoming<'static>>();
    owns_fd::<TcpListener>();
    owns_fd::<TcpStream>();
    owns_fd::<UdpSocket>();
    owns_fd::<UnixListener>();
    owns_fd::<UnixStream>();
    owns_fd::<UnixDatagram>();
    read_write::<TcpStream>();
    read_write::<UnixStream>();
    // Threads: std's JoinHandle<T> is Send and Sync for any T, its Thread and Builder too.
    send_sync::<thread::JoinHandle<std::cell::Cell<u8>>>();
    send_sync::<thread::ScopedJoinHandle<'static, u8>>();
    send_sync::<thread::Scope<'static, 'static>>();
    send_sync::<thread::Thread>();
    send_sync::<thread::Builder>();
    unwind_safe::<thread::Thread>();
    debug::<thread::JoinHandle<u8>>();
    debug::<thread::Builder>();
    debug::<thread::LocalKey<u8>>();
    fn id<T: Copy + Eq + std::hash::Hash + Debug + Send + Sync>() {}
    id::<thread::ThreadId>();
    error::<thread::AccessError>();
    // Channels: std's error types themselves, so their Display and Error impls are std's.
    send_sync::<mpsc::Sender<u8>>();
    send_sync::<mpsc::SyncSender<u8>>();
    fn send<T: Send>() {}
    send::<mpsc::Receiver<u8>>();
    unwind_safe::<mpsc::Sender<u8>>();
    unwind_safe::<mpsc::Receiver<u8>>();
    debug::<mpsc::Receiver<u8>>();
    debug::<mpsc::IntoIter<u8>>();
    error::<mpsc::RecvError>();
    error::<mpsc::RecvTimeoutError>();
    error::<mpsc::TryRecvError>();
    error::<mpsc::SendError<u8>>();
    error::<mpsc::TrySendError<u8>>();
    net_signatures();
    thread_signatures();
    channel_signatures();
}

/// A small std-shaped program, run: connections through `incoming`, a datagram round trip,
/// and TCP options set the way std code sets them.
#[test]
fn std_shaped_networking_runs() {
    common::bounded(LIMIT, || {
        green::run(|| {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let client = thread::spawn(move || {
                let mut stream = TcpStream::connect(addr).unwrap();
                stream.set_nodelay(true).unwrap();
                stream.set_quickack(true).unwrap();
                assert!(stream.quickack().unwrap());
                stream.write_all(b"ping").unwrap();
                stream.shutdown(Shutdown::Write).unwrap();
                let mut back = String::new();
                stream.read_to_string(&mut back).unwrap();
                back
            });
            for stream in listener.incoming().take(1) {
                let mut stream = stream.unwrap();
                let mut got = Vec::new();
                stream.read_to_end(&mut got).unwrap();
                (&stream).write_all(&got).unwrap();
            }
            assert_eq!(client.join().unwrap(), "ping");

            let a = UdpSocket::bind("127.0.0.1:0").unwrap();
            let b = UdpSocket::bind("127.0.0.1:0").unwrap();
            a.connect(b.local_addr().unwrap()).unwrap();
            a.send(b"dgram").unwrap();
            let mut buf = [0; 16];
            let (n, from) = b.peek_from(&mut buf).unwrap();
            assert_eq!((&buf[..n], from), (&b"dgram"[..], a.local_addr().unwrap()));
            assert_eq!(b.recv(&mut buf).unwrap(), 5);

            let (x, y) = UnixStream::pair().unwrap();
            (&x).write_all(b"unix").unwrap();
            drop(x);
            let mut s = String::new();
            (&y).read_to_string(&mut s).unwrap();
            assert_eq!(s, "unix");
        });
    });
}

/// Threads and channels used as std code uses them.
#[test]
fn std_shaped_threads_and_channels_run() {
    common::bounded(LIMIT, || {
        green::run(|| {
            let (tx, rx) = mpsc::sync_channel(1);
            let producer = thread::Builder::new()
                .name("producer".into())
                .spawn(move || {
                    for i in 0..3 {
                        tx.send(i).unwrap();
                    }
                })
                .unwrap();
            let name = producer.thread().name();
            assert_eq!(name, Some("producer"));
            assert_eq!(rx.iter().collect::<Vec<i32>>(), [0, 1, 2]);
            producer.join().unwrap();
            assert_eq!(rx.recv_timeout(Duration::from_millis(1)), Err(mpsc::RecvTimeoutError::Disconnected));
            assert_eq!(rx.try_iter().count(), 0);
            assert_eq!(mpsc::SendError(1).to_string(), "sending on a closed channel");

            let mut counts = [0u32; 2];
            thread::scope(|s| {
                for (i, c) in counts.iter_mut().enumerate() {
                    let h = s.spawn(move || *c += i as u32 + 1);
                    assert!(h.thread().id() != thread::current().id());
                }
            });
            assert_eq!(counts, [1, 2]);
        });
    });
}
