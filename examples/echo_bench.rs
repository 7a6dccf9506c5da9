//! Echo ping-pong benchmark: 64-byte messages over 100 and 1,000 connections, against three
//! servers in the same run: `green` (one worker), `std` (a thread per connection) and tokio
//! (one worker thread). One client (a single-threaded tokio runtime) drives all connections,
//! each sending its next message when the previous echo came back. The client is pinned to
//! CPU 0 and every server thread to CPU 1.
//!
//! ```sh
//! cargo run --release --example echo_bench             # 3 s per run, after 0.5 s of warm-up
//! cargo run --release --example echo_bench -- --secs 10
//! cargo run --release --example echo_bench -- --only green   # or "std threads", tokio
//! cargo run --release --example echo_bench -- --connections 1,10,100
//! cargo run --example echo_bench -- --demo             # a tiny run, for a smoke test
//! ```
//!
//! It prints, per server and connection count: messages per second, round-trip latency p50 and
//! p99, and the server's CPU time per message, user and kernel (`getrusage` of the process less
//! the client thread's own). The client saturates its core, so msgs/s understates a fast
//! server; CPU per message is the server's own cost.

mod common;

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Bytes per message.
const CLIENT_CPU: usize = 0;
const SERVER_CPU: usize = 1;

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let demo = args.iter().any(|a| a == "--demo");
    let only = args.iter().position(|a| a == "--only").and_then(|i| args.get(i + 1).cloned());
    let secs: f64 = args.iter().position(|a| a == "--secs").and_then(|i| args.get(i + 1)?.parse().ok()).unwrap_or(3.0);
    let chosen: Option<Vec<usize>> = args
        .iter()
        .position(|a| a == "--connections")
        .and_then(|i| args.get(i + 1)?.split(',').map(|n| n.parse().ok()).collect());
    let (counts, window, warmup) = if demo {
        (vec![10], Duration::from_millis(200), Duration::from_millis(50))
    } else {
        (chosen.unwrap_or(vec![100, 1000]), Duration::from_secs_f64(secs), Duration::from_millis(500))
    };
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus < 2 {
        eprintln!("note: {cpus} CPU: client and server share it");
    }
    println!("| server | connections | msgs/s | p50 | p99 | user CPU/msg | kernel CPU/msg | total CPU/msg |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for &connections in &counts {
        for server in [Server::Green, Server::Std, Server::Tokio] {
            if only.as_deref().is_some_and(|o| o != server.name()) {
                continue;
            }
            let result = run(server, connections, warmup, window)?;
            println!(
                "| {} | {connections} | {:.0} | {} | {} | {} | {} | {} |",
                server.name(),
                result.msgs_per_sec,
                micros(result.p50),
                micros(result.p99),
                nanos(result.user_per_msg),
                nanos(result.sys_per_msg),
                nanos(result.user_per_msg + result.sys_per_msg),
            );
        }
    }
    Ok(())
}

fn micros(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn nanos(ns: f64) -> String {
    format!("{ns:.0} ns")
}

#[derive(Debug, Clone, Copy)]
enum Server {
    Green,
    Std,
    Tokio,
}

impl Server {
    fn name(self) -> &'static str {
        match self {
            Server::Green => "green",
            Server::Std => "std threads",
            Server::Tokio => "tokio",
        }
    }
}

struct Outcome {
    msgs_per_sec: f64,
    p50: Duration,
    p99: Duration,
    user_per_msg: f64,
    sys_per_msg: f64,
}

/// Pins the calling thread to `cpu` (if the machine has it).
/// User and kernel CPU time of the process so far, and of the calling thread, in seconds.
/// Per-thread figures in `/proc/self/task/*/stat` are whole clock ticks per thread, useless
/// for a thousand threads that each run a few milliseconds; `getrusage` is exact.
fn cpu_times() -> ((f64, f64), (f64, f64)) {
    let usage = |who| {
        // SAFETY: rusage is plain old data; getrusage fills it.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `u` is valid for writes of a rusage.
        unsafe { libc::getrusage(who, &mut u) };
        let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
        (secs(u.ru_utime), secs(u.ru_stime))
    };
    (usage(libc::RUSAGE_SELF), usage(libc::RUSAGE_THREAD))
}

/// A listener with a backlog large enough for all connections at once.
fn listener() -> io::Result<std::net::TcpListener> {
    green::net::TcpListener::bind("127.0.0.1:0")?.into_std()
}

/// Starts `server`; returns its address and a guard that stops it.
fn start(server: Server) -> io::Result<(SocketAddr, Box<dyn FnOnce()>)> {
    let listener = listener()?;
    let addr = listener.local_addr()?;
    match server {
        Server::Green => {
            let rt = green::Runtime::builder().workers(1).thread_name("srv-green").build()?;
            rt.block_on(|| common::pin(SERVER_CPU));
            let listener = green::net::TcpListener::from(listener);
            rt.spawn(move || {
                for stream in listener.incoming() {
                    let Ok(mut stream) = stream else { continue };
                    green::spawn(move || {
                        let _ = stream.set_nodelay(true);
                        let mut buf = [0; 4096];
                        while let Ok(n @ 1..) = stream.read(&mut buf) {
                            if stream.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    });
                }
            });
            Ok((addr, Box::new(move || drop(rt))))
        }
        Server::Std => {
            let stop = Arc::new(AtomicBool::new(false));
            let flag = stop.clone();
            std::thread::Builder::new().name("srv-std-accept".into()).spawn(move || {
                common::pin(SERVER_CPU);
                for stream in listener.incoming() {
                    if flag.load(Ordering::Acquire) {
                        break;
                    }
                    let Ok(mut stream) = stream else { continue };
                    let _ = std::thread::Builder::new().name("srv-std".into()).stack_size(64 * 1024).spawn(move || {
                        common::pin(SERVER_CPU);
                        let _ = stream.set_nodelay(true);
                        let mut buf = [0; 4096];
                        while let Ok(n @ 1..) = stream.read(&mut buf) {
                            if stream.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    });
                }
            })?;
            Ok((
                addr,
                Box::new(move || {
                    stop.store(true, Ordering::Release);
                    let _ = std::net::TcpStream::connect(addr); // wake the accept loop
                }),
            ))
        }
        Server::Tokio => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("srv-tokio")
                .on_thread_start(|| common::pin(SERVER_CPU))
                .enable_all()
                .build()?;
            listener.set_nonblocking(true)?;
            rt.spawn(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    let Ok((mut stream, _)) = listener.accept().await else { continue };
                    tokio::spawn(async move {
                        let _ = stream.set_nodelay(true);
                        let mut buf = [0; 4096];
                        while let Ok(n @ 1..) = stream.read(&mut buf).await {
                            if stream.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    });
                }
            });
            Ok((addr, Box::new(move || rt.shutdown_timeout(Duration::from_secs(1)))))
        }
    }
}

/// One measurement: `connections` ping-pong loops for `warmup + window`, counting only what
/// completes inside the window.
fn run(server: Server, connections: usize, warmup: Duration, window: Duration) -> io::Result<Outcome> {
    let (addr, stop_server) = start(server)?;
    let client = std::thread::Builder::new().name("bench-client".into()).spawn(move || {
        common::pin(CLIENT_CPU);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(client(addr, connections, warmup, window))
    })?;
    let (latencies, cpu) = client.join().expect("the client panicked")?;
    stop_server();
    let mut latencies = latencies;
    latencies.sort_unstable();
    let count = latencies.len().max(1);
    let at = |q: f64| {
        Duration::from_nanos(latencies.get(((count as f64 * q) as usize).min(count - 1)).copied().unwrap_or(0))
    };
    Ok(Outcome {
        msgs_per_sec: latencies.len() as f64 / window.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
        user_per_msg: cpu.0 * 1e9 / count as f64,
        sys_per_msg: cpu.1 * 1e9 / count as f64,
    })
}

/// The client: connects everything, then runs every connection's loop; CPU times are read at
/// the start and the end of the window.
async fn client(
    addr: SocketAddr,
    connections: usize,
    warmup: Duration,
    window: Duration,
) -> io::Result<(Vec<u64>, (f64, f64))> {
    let mut streams = Vec::with_capacity(connections);
    for _ in 0..connections {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        streams.push(stream);
    }
    let start = Instant::now() + warmup;
    let end = start + window;
    let tasks: Vec<_> = streams.into_iter().map(|stream| tokio::spawn(common::ping_pong(stream, start, end))).collect();
    tokio::time::sleep_until(start.into()).await;
    let (all_start, client_start) = cpu_times();
    tokio::time::sleep_until(end.into()).await;
    let (all_end, client_end) = cpu_times();
    // The server's share: the whole process but this (client) thread; the other threads
    // (this program's main thread, blocked in a join) use next to nothing.
    let user = (all_end.0 - all_start.0) - (client_end.0 - client_start.0);
    let sys = (all_end.1 - all_start.1) - (client_end.1 - client_start.1);
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("a client task panicked")?);
    }
    Ok((all, (user, sys)))
}
