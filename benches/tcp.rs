//! TCP ping-pong round trip over loopback: 64-byte messages between a client and an echo server,
//! as green threads and as OS threads.
//!
//! # What it measures
//!
//! One round trip: the client writes a 64-byte request, the server reads it and writes it back,
//! the client reads the echo. Each side parks (or blocks) in its read while the other runs, so
//! a round trip is two sends, two receives, two parks and two wakes, and the kernel's loopback
//! path twice. Criterion reports time per round trip. Each case opens a fresh connection per
//! sample, outside the timed part, and warms it with one round trip.
//!
//! All green cases run on one two-worker runtime:
//!
//! - `green/one_worker/read`: client and server pinned to worker 0; the client reads the echo
//!   into a 1 KiB buffer, so its reads come back short (the receive queue is known empty after
//!   each, and the next read parks without a system call).
//! - `green/one_worker/read_exact`: the same, the client reading with `read_exact` into a
//!   64-byte buffer: full reads, which count what they leave with `TCP_INQ` once the stream
//!   has switched (`net/sys.rs`, `StreamReads`).
//! - `green/two_workers`: client on worker 0, server on worker 1: each wake crosses CPUs through
//!   the other worker's poller.
//! - `os/threads`: a blocking std client on the bench thread and a std echo server on its own
//!   thread: thread per connection.
//!
//! No targets; the figures go to `docs/benchmarks.md`. Run with
//! `cargo bench --bench tcp -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};

/// Bytes of each request and echo.
const MESSAGE: usize = 64;

/// How the client reads each echo.
#[derive(Clone, Copy)]
enum Reads {
    /// `read` into a larger buffer until the echo is in: short reads.
    Short,
    /// `read_exact` into a buffer of the echo's size: full reads.
    Exact,
}

/// `iters` round trips on `stream` after one that is not timed; returns the time they took.
fn round_trips(stream: &mut (impl Read + Write), reads: Reads, iters: u64) -> Duration {
    one_round_trip(stream, reads);
    let start = Instant::now();
    for _ in 0..iters {
        one_round_trip(stream, reads);
    }
    start.elapsed()
}

/// Sends a request and reads its echo.
#[inline(always)]
fn one_round_trip(stream: &mut (impl Read + Write), reads: Reads) {
    let request = [7u8; MESSAGE];
    let mut echo = [0u8; 1024];
    stream.write_all(&request).expect("send the request");
    match reads {
        Reads::Exact => stream.read_exact(&mut echo[..MESSAGE]).expect("read the echo"),
        Reads::Short => {
            let mut got = 0;
            while got < MESSAGE {
                match stream.read(&mut echo[got..]).expect("read the echo") {
                    0 => panic!("the echo server closed the connection"),
                    n => got += n,
                }
            }
        }
    }
    black_box(&echo);
}

/// The server's side: echoes what it reads until the client closes.
fn echo(mut stream: impl Read + Write) {
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if stream.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

fn green_round_trips(rt: &green::Runtime, client: usize, server: usize, reads: Reads, iters: u64) -> Duration {
    let listener = green::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback listener");
    let addr = listener.local_addr().expect("the listener's address");
    let server = green::Builder::new()
        .worker(server)
        .spawn_on(rt.handle(), move || {
            let (stream, _) = listener.accept().expect("accept the client");
            stream.set_nodelay(true).expect("TCP_NODELAY");
            echo(stream);
        })
        .expect("spawn the server");
    let elapsed = green::Builder::new()
        .worker(client)
        .spawn_on(rt.handle(), move || {
            let mut stream = green::net::TcpStream::connect(addr).expect("connect");
            stream.set_nodelay(true).expect("TCP_NODELAY");
            round_trips(&mut stream, reads, iters)
        })
        .expect("spawn the client")
        .join()
        .expect("the client");
    server.join().expect("the server");
    elapsed
}

fn os_round_trips(iters: u64) -> Duration {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback listener");
    let addr: SocketAddr = listener.local_addr().expect("the listener's address");
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept the client");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        echo(stream);
    });
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream.set_nodelay(true).expect("TCP_NODELAY");
    let elapsed = round_trips(&mut stream, Reads::Short, iters);
    drop(stream);
    server.join().expect("the server");
    elapsed
}

fn tcp(c: &mut Criterion) {
    let mut group = c.benchmark_group("tcp");
    let rt = green::Runtime::builder().workers(2).build().expect("runtime");
    let cases = [
        ("green/one_worker/read", 0, 0, Reads::Short),
        ("green/one_worker/read_exact", 0, 0, Reads::Exact),
        ("green/two_workers", 0, 1, Reads::Short),
    ];
    for (name, client, server, reads) in cases {
        group.bench_function(name, |b| b.iter_custom(|iters| green_round_trips(&rt, client, server, reads, iters)));
    }
    drop(rt);
    group.bench_function("os/threads", |b| b.iter_custom(os_round_trips));
    group.finish();
}

criterion_group! {
    name = benches;
    // Short by default: the machine has two cores and is shared. Command-line flags override.
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = tcp
}
criterion_main!(benches);
