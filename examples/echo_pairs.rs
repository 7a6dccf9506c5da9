//! Many echo connections inside one process on one worker: the runtime's cost per round trip
//! with every connection's state out of the caches, without a second process or core.
//!
//! ```sh
//! cargo run --release --example echo_pairs                         # 1,000 pairs, 50 rounds
//! cargo run --release --example echo_pairs -- --pairs 100 --rounds 500
//! ```
//!
//! Each pair is a loopback TCP connection with a green thread at each end, all on the
//! runtime's only worker: the client writes a 64-byte request and reads its echo, the server
//! reads what is there into a 1 KiB buffer and writes it back, `--rounds` times. With a
//! thousand pairs, each round trip resumes two green threads whose stacks, sockets and tasks a
//! thousand others have used since: the cache lines they touch are what this measures. The
//! figures are wall-clock time over the rounds (the connections are made first, outside it).
//!
//! The count of those lines is deterministic under cachegrind, where the time is not. Run it
//! twice with different `--rounds` and take the difference, so that setup cancels out:
//!
//! ```sh
//! cargo build --release --example echo_pairs
//! for r in 10 50; do
//!   valgrind --tool=cachegrind --cache-sim=yes --D1=32768,8,64 --LL=1048576,16,64 \
//!     --cachegrind-out-file=cg.$r target/release/examples/echo_pairs --pairs 1000 --rounds $r
//! done
//! # (summary of cg.50 - summary of cg.10) / 40,000 = per round trip
//! ```
//!
//! Cachegrind simulates caches indexed by virtual address, and every green thread's stack has
//! the same alignment, so its "last level" misses overstate what a physically indexed L2 sees;
//! its L1 misses (`D1mr`, `D1mw`) are the firmer count of lines touched.

use std::io::{Read, Write};
use std::process::ExitCode;
use std::time::Instant;

use green::net::{TcpListener, TcpStream};

const USAGE: &str = "usage: echo_pairs [--pairs N] [--rounds R]";
const MESSAGE: usize = 64;

fn main() -> ExitCode {
    let (mut pairs, mut rounds) = (1000usize, 50usize);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let parsed = match (flag.as_str(), args.next()) {
            ("--pairs", Some(v)) => v.parse().ok().filter(|n| *n > 0).map(|n| pairs = n),
            ("--rounds", Some(v)) => v.parse().ok().filter(|n| *n > 0).map(|n| rounds = n),
            _ => None,
        };
        if parsed.is_none() {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    }
    // Both ends of each connection count against the fd limit.
    let needed = 2 * pairs as u64 + 64;
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `limit` is valid for the kernel to write.
    let soft = (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0).then_some(limit.rlim_cur);
    match soft {
        Some(soft) if soft < needed => {
            eprintln!(
                "echo_pairs: {pairs} pairs need {needed} open files, and the soft limit is {soft}: \
                 raise it (`ulimit -n {needed}`) or ask for fewer pairs"
            );
            return ExitCode::FAILURE;
        }
        _ => {}
    }
    match run(pairs, rounds) {
        Ok(elapsed) => {
            let trips = (pairs * rounds) as f64;
            println!(
                "{pairs} pairs x {rounds} rounds on one worker: {:.0} round trips/s, {:.2} µs per round trip",
                trips / elapsed,
                elapsed / trips * 1e6
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("echo_pairs: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Connects the pairs, then times the rounds; returns the seconds they took.
fn run(pairs: usize, rounds: usize) -> std::io::Result<f64> {
    let rt = green::Runtime::builder().workers(1).build()?;
    rt.block_on(move || {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let mut clients = Vec::with_capacity(pairs);
        let mut servers = Vec::with_capacity(pairs);
        for _ in 0..pairs {
            let client = TcpStream::connect(addr)?;
            let (server, _) = listener.accept()?;
            client.set_nodelay(true)?;
            server.set_nodelay(true)?;
            servers.push(green::spawn(move || echo(server)));
            clients.push(client);
        }
        let start = Instant::now();
        let clients: Vec<_> = clients.into_iter().map(|client| green::spawn(move || ping(client, rounds))).collect();
        for client in clients {
            client.join().map_err(|e| std::io::Error::other(format!("a client panicked: {e}")))??;
        }
        let elapsed = start.elapsed().as_secs_f64();
        // The clients are gone, so each server reads the end of its stream and returns.
        for server in servers {
            server.join().map_err(|e| std::io::Error::other(format!("a server panicked: {e}")))??;
        }
        Ok(elapsed)
    })
}

fn echo(mut stream: TcpStream) -> std::io::Result<()> {
    let mut buf = [0u8; 1024];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        stream.write_all(&buf[..n])?;
    }
}

fn ping(mut stream: TcpStream, rounds: usize) -> std::io::Result<()> {
    let mut reply = [0u8; MESSAGE];
    for round in 0..rounds {
        let request = [round as u8; MESSAGE];
        stream.write_all(&request)?;
        stream.read_exact(&mut reply)?;
        if reply != request {
            return Err(std::io::Error::other(format!("round {round}: the echo differs from the request")));
        }
    }
    Ok(())
}
