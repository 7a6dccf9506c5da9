//! Echo ping-pong benchmark: 64-byte messages over 100 and 1,000 connections, against three
//! servers in the same run: `green` (one worker), `std` (a thread per connection) and tokio
//! (one worker thread). One client drives all connections, each sending its next message when
//! the previous echo came back: a single-threaded tokio runtime, or with `--client green` a
//! one-worker green runtime. The client is pinned to CPU 0 and every server thread to CPU 1.
//!
//! ```sh
//! cargo run --release --example echo_bench             # 3 s per run, after 0.5 s of warm-up
//! cargo run --release --example echo_bench -- --secs 10
//! cargo run --release --example echo_bench -- --only green   # or std, tokio
//! cargo run --release --example echo_bench -- --client green # the load generator on green
//! cargo run --release --example echo_bench -- --connections 1,10,100
//! cargo run --example echo_bench -- --demo             # a tiny run, for a smoke test
//! ```
//!
//! It prints, per server and connection count: messages per second, round-trip latency p50 and
//! p99, and the server's CPU time per message, user and kernel (`getrusage` of the process less
//! the client thread's own). The client saturates its core, so msgs/s understates a fast
//! server; CPU per message is the server's own cost. The kernel splits each CPU time into user
//! and kernel in proportion to sampled ticks, for the process and for the thread separately,
//! so when the server's share is small the difference can come out a little below zero; such
//! a figure is shown as 0.
//!
//! For `green`, the last column is the share of the window its worker had nothing to run
//! (`WorkerMetrics::idle`): it spins up to 25 µs before it sleeps, and the spinning is in its
//! user and kernel CPU (a poll of the OS every microsecond or so), so in a run where the client
//! is the bound, part of green's CPU per message is time spent waiting for the client.
//!
//! Client and server run in this one process, so each connection holds two fds in it: at
//! start the soft open-file limit (`ulimit -n`) is raised to the hard one, as `versus` does,
//! and a connection count that still does not fit is refused before anything runs.

mod common;

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

const USAGE: &str =
    "usage: echo_bench [--secs S] [--connections 100,1000] [--only green|std|tokio] [--client green|tokio] [--demo]";

/// The CPU the client thread is pinned to.
const CLIENT_CPU: usize = 0;
/// The CPU every server thread is pinned to.
const SERVER_CPU: usize = 1;

/// Open files this process needs besides its connections: the listener, the runtimes' pollers
/// and their eventfds, the std streams.
const FD_RESERVE: u64 = 64;

/// How long a server's accept loop waits after `accept` failed for want of a resource
/// (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`): the pending connection stays queued and the
/// listener readable, so trying again at once would only spin on the server's core.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Settings from the command line.
#[derive(Debug, Clone)]
struct Args {
    /// Connection counts to measure, each against every server.
    counts: Vec<usize>,
    /// `--only`: the one server to measure.
    only: Option<Server>,
    /// `--client`: the load generator's runtime.
    client: Client,
    /// Warm-up before each measurement window.
    warmup: Duration,
    /// The measurement window.
    window: Duration,
}

fn parse_args() -> Result<Args, String> {
    let (mut demo, mut counts, mut only, mut window) = (false, None, None, None);
    let mut client = Client::Tokio;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"));
        match flag.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            "--demo" => demo = true,
            "--only" => {
                let v = value()?;
                only = Some(Server::parse(&v).ok_or_else(|| {
                    format!("--only {v}: expected green, std (or \"std threads\") or tokio\n{USAGE}")
                })?);
            }
            "--client" => {
                client = match value()?.as_str() {
                    "green" => Client::Green,
                    "tokio" => Client::Tokio,
                    v => return Err(format!("--client {v}: expected green or tokio\n{USAGE}")),
                };
            }
            "--secs" => {
                let v = value()?;
                let secs = v.parse::<f64>().ok().and_then(|s| Duration::try_from_secs_f64(s).ok());
                window = Some(
                    secs.filter(|d| !d.is_zero())
                        .ok_or_else(|| format!("--secs {v}: expected a number of seconds, more than 0\n{USAGE}"))?,
                );
            }
            "--connections" => {
                let v = value()?;
                let list: Option<Vec<usize>> =
                    v.split(',').map(|n| n.trim().replace('_', "").parse().ok().filter(|&n| n > 0)).collect();
                counts = Some(list.ok_or_else(|| {
                    format!("--connections {v}: expected counts of at least 1, comma-separated\n{USAGE}")
                })?);
            }
            _ => return Err(format!("unknown argument {flag}\n{USAGE}")),
        }
    }
    // Explicit values win over --demo's.
    let (default_counts, default_window, warmup) = if demo {
        (vec![10], Duration::from_millis(200), Duration::from_millis(50))
    } else {
        (vec![100, 1000], Duration::from_secs(3), Duration::from_millis(500))
    };
    Ok(Args {
        counts: counts.unwrap_or(default_counts),
        only,
        client,
        warmup,
        window: window.unwrap_or(default_window),
    })
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(message) = check_fd_limit(&args.counts) {
        eprintln!("echo_bench: {message}");
        return ExitCode::FAILURE;
    }
    match measure(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("echo_bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Every connection count against every server (or the `--only` one), one table.
fn measure(args: &Args) -> io::Result<()> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus < 2 {
        eprintln!("note: {cpus} CPU: client and server share it");
    }
    println!("| server | connections | msgs/s | p50 | p99 | user CPU/msg | kernel CPU/msg | total CPU/msg | idle |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &connections in &args.counts {
        for server in [Server::Green, Server::Std, Server::Tokio] {
            if args.only.is_some_and(|only| only != server) {
                continue;
            }
            let result = run(server, args.client, connections, args.warmup, args.window)?;
            println!(
                "| {} | {connections} | {:.0} | {} | {} | {} | {} | {} | {} |",
                server.name(),
                result.msgs_per_sec,
                micros(result.p50),
                micros(result.p99),
                nanos(result.user_per_msg),
                nanos(result.sys_per_msg),
                nanos(result.user_per_msg + result.sys_per_msg),
                result.idle.map_or("".to_owned(), |idle| format!("{:.0}%", idle * 100.0)),
            );
        }
    }
    Ok(())
}

/// Raises the soft open-file limit to the hard one (as `versus` does), and checks that the
/// largest connection count fits: two fds per connection, the client's and the server's.
fn check_fd_limit(counts: &[usize]) -> Result<(), String> {
    let largest = counts.iter().copied().max().unwrap_or(0) as u64;
    let needed = 2 * largest + FD_RESERVE;
    let limit = raise_fd_limit().map_err(|e| format!("could not read or raise the open-file limit: {e}"))?;
    if needed > limit {
        return Err(format!(
            "{largest} connections need about {needed} open files in this process (the client's and the \
             server's socket for each, and {FD_RESERVE} more), but the limit is {limit}, its hard limit. \
             Measure fewer (--connections {}), or raise the hard limit (as root: `ulimit -Hn {needed}` in \
             the shell that runs this, or `nofile` in /etc/security/limits.conf).",
            limit.saturating_sub(FD_RESERVE) / 2
        ));
    }
    Ok(())
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the limit now in force.
fn raise_fd_limit() -> io::Result<u64> {
    // SAFETY: rlimit is plain old data.
    let mut limit: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: `limit` is valid for writes of an rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max;
        // SAFETY: `limit` is a valid rlimit; raising the soft limit up to the hard one is allowed.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(limit.rlim_cur)
}

/// What a server's accept loop does when `accept` fails: say so, and return how long to wait
/// before the next try, if waiting helps (see [`ACCEPT_BACKOFF`]).
fn accept_failed(server: Server, e: &io::Error) -> Option<Duration> {
    eprintln!("{} server: accept failed: {e}", server.name());
    let out_of_resources = matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM));
    out_of_resources.then_some(ACCEPT_BACKOFF)
}

fn micros(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn nanos(ns: f64) -> String {
    format!("{ns:.0} ns")
}

/// The load generator: one thread, pinned to [`CLIENT_CPU`], driving every connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Client {
    /// A one-worker green runtime, a green thread per connection (without a monitor thread:
    /// the client is this one thread).
    Green,
    /// A current-thread tokio runtime, a task per connection.
    Tokio,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

    /// The server `--only` names: its table name, or `std` for the std one.
    fn parse(name: &str) -> Option<Server> {
        match name {
            "green" => Some(Server::Green),
            "std" | "std threads" => Some(Server::Std),
            "tokio" => Some(Server::Tokio),
            _ => None,
        }
    }
}

struct Outcome {
    msgs_per_sec: f64,
    p50: Duration,
    p99: Duration,
    user_per_msg: f64,
    sys_per_msg: f64,
    /// Green's worker's idle share of the window.
    idle: Option<f64>,
}

/// A running server: where it listens, how to read its idle time (green's), how to stop it.
struct Running {
    addr: SocketAddr,
    idle: Option<IdleClock>,
    stop: Box<dyn FnOnce()>,
}

/// Reads a green runtime's idle time so far (its one worker's).
type IdleClock = Box<dyn Fn() -> Duration + Send>;

/// What a client brings back: the round-trip times (ns) that fell inside the window, the
/// server's user and kernel CPU seconds over the window, and green's idle time over it.
type ClientResult = io::Result<(Vec<u64>, (f64, f64), Option<Duration>)>;

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

/// Starts `server`.
fn start(server: Server) -> io::Result<Running> {
    let listener = listener()?;
    let addr = listener.local_addr()?;
    match server {
        Server::Green => {
            let rt = green::Runtime::builder().workers(1).thread_name("srv-green").build()?;
            rt.block_on(|| common::pin(SERVER_CPU));
            let listener = green::net::TcpListener::from(listener);
            rt.spawn(move || {
                for stream in listener.incoming() {
                    let mut stream = match stream {
                        Ok(stream) => stream,
                        Err(e) => {
                            if let Some(pause) = accept_failed(server, &e) {
                                green::sleep(pause);
                            }
                            continue;
                        }
                    };
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
            let handle = rt.handle().clone();
            let idle: IdleClock = Box::new(move || handle.metrics().workers.iter().map(|w| w.idle).sum());
            Ok(Running { addr, idle: Some(idle), stop: Box::new(move || drop(rt)) })
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
                    let mut stream = match stream {
                        Ok(stream) => stream,
                        Err(e) => {
                            if let Some(pause) = accept_failed(server, &e) {
                                std::thread::sleep(pause);
                            }
                            continue;
                        }
                    };
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
            let stop = Box::new(move || {
                stop.store(true, Ordering::Release);
                let _ = std::net::TcpStream::connect(addr); // wake the accept loop
            });
            Ok(Running { addr, idle: None, stop })
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
                    let mut stream = match listener.accept().await {
                        Ok((stream, _)) => stream,
                        Err(e) => {
                            if let Some(pause) = accept_failed(server, &e) {
                                tokio::time::sleep(pause).await;
                            }
                            continue;
                        }
                    };
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
            Ok(Running { addr, idle: None, stop: Box::new(move || rt.shutdown_timeout(Duration::from_secs(1))) })
        }
    }
}

/// One measurement: `connections` ping-pong loops for `warmup + window`, counting only what
/// completes inside the window.
fn run(server: Server, client: Client, connections: usize, warmup: Duration, window: Duration) -> io::Result<Outcome> {
    let Running { addr, idle, stop } = start(server)?;
    let plan = Plan { warmup, window, idle };
    let client = std::thread::Builder::new().name("bench-client".into()).spawn(move || {
        common::pin(CLIENT_CPU);
        match client {
            Client::Tokio => {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                rt.block_on(client_tokio(addr, connections, plan))
            }
            // The worker inherits the pinning.
            Client::Green => green::Runtime::builder()
                .workers(1)
                .blocking_threshold(None)
                .thread_name("bench-client")
                .build()?
                .block_on(|| client_green(addr, connections, plan)),
        }
    })?;
    let (latencies, cpu, idle) = client.join().expect("the client panicked")?;
    stop();
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
        // Below zero only through the kernel's user/kernel split (see the top of the file).
        user_per_msg: cpu.0.max(0.0) * 1e9 / count as f64,
        sys_per_msg: cpu.1.max(0.0) * 1e9 / count as f64,
        idle: idle.map(|idle| idle.as_secs_f64() / window.as_secs_f64()),
    })
}

/// The tokio client: connects everything, then runs every connection's loop; the server's
/// CPU time (and green's idle time) is read at the start and the end of the window.
async fn client_tokio(addr: SocketAddr, connections: usize, plan: Plan) -> ClientResult {
    let mut streams = Vec::with_capacity(connections);
    for _ in 0..connections {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        streams.push(stream);
    }
    let (start, end) = plan.window();
    let connections = common::PingPongs::spawn(streams, start, end);
    tokio::time::sleep_until(start.into()).await;
    let first = Reading::take(plan.idle.as_ref());
    tokio::time::sleep_until(end.into()).await;
    let (cpu, idle) = first.until(Reading::take(plan.idle.as_ref()));
    let all = connections.join().await?;
    Ok((all, cpu, idle))
}

/// The green client, as [`client_tokio`]: a green thread per connection, a blocking-style loop
/// of `write_all` and `read_exact` each, and one list of round-trip times behind a
/// `green::sync::Mutex`. Runs on the client's one worker, so [`Reading`] reads that thread.
fn client_green(addr: SocketAddr, connections: usize, plan: Plan) -> ClientResult {
    let mut streams = Vec::with_capacity(connections);
    for _ in 0..connections {
        let stream = green::net::TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        // Far above any round trip here: reaching it means the server stopped answering.
        stream.set_read_timeout(Some(Duration::from_secs(20)))?;
        streams.push(stream);
    }
    let (start, end) = plan.window();
    let latencies = Arc::new(green::sync::Mutex::new(Vec::new()));
    let loops: Vec<_> = streams
        .into_iter()
        .map(|mut stream| {
            let latencies = latencies.clone();
            green::spawn(move || -> io::Result<()> {
                let message = [7u8; common::MESSAGE];
                let mut back = [0u8; common::MESSAGE];
                let mut sent = Instant::now();
                while sent < end {
                    stream.write_all(&message)?;
                    stream.read_exact(&mut back)?;
                    assert_eq!(back, message, "echo mismatch");
                    let done = Instant::now();
                    if sent >= start && done <= end {
                        latencies.lock().unwrap().push((done - sent).as_nanos() as u64);
                    }
                    sent = done;
                }
                Ok(())
            })
        })
        .collect();
    green::sleep_until(start);
    let first = Reading::take(plan.idle.as_ref());
    green::sleep_until(end);
    let (cpu, idle) = first.until(Reading::take(plan.idle.as_ref()));
    for handle in loops {
        handle.join().expect("a client connection panicked")?;
    }
    let all = std::mem::take(&mut *latencies.lock().unwrap());
    Ok((all, cpu, idle))
}

/// When a client measures, and how it reads green's idle time.
struct Plan {
    warmup: Duration,
    window: Duration,
    idle: Option<IdleClock>,
}

impl Plan {
    /// The window's start and end, counted from now.
    fn window(&self) -> (Instant, Instant) {
        let start = Instant::now() + self.warmup;
        (start, start + self.window)
    }
}

/// CPU times of the process and of the client's thread (it must be taken there), and green's
/// idle time, at one instant.
struct Reading {
    cpu: ((f64, f64), (f64, f64)),
    idle: Option<Duration>,
}

impl Reading {
    fn take(idle: Option<&IdleClock>) -> Reading {
        Reading { cpu: cpu_times(), idle: idle.map(|idle| idle()) }
    }

    /// The server's user and kernel CPU seconds from this reading to `end`, and green's idle
    /// time. The server's share is the whole process but the client's thread; the other
    /// threads (this program's main thread, blocked in a join) use next to nothing.
    fn until(self, end: Reading) -> ((f64, f64), Option<Duration>) {
        let ((all_start, client_start), (all_end, client_end)) = (self.cpu, end.cpu);
        let user = (all_end.0 - all_start.0) - (client_end.0 - client_start.0);
        let sys = (all_end.1 - all_start.1) - (client_end.1 - client_start.1);
        let idle = end.idle.zip(self.idle).map(|(end, start)| end.saturating_sub(start));
        ((user, sys), idle)
    }
}
