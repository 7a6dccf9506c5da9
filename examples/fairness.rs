//! Fairness: an echo service on one worker, beside a CPU burner on the same worker.
//!
//! ```sh
//! cargo run --release --example fairness
//! cargo run --release --example fairness -- --secs 5 --slice-us 50
//! cargo run --release --example fairness -- --budget 256     # ticks between looks at the clock
//! cargo run --example fairness -- --demo      # a tiny run, for a smoke test
//! ```
//!
//! The server runs on a one-worker `green` runtime (pinned to CPU 1): an accept loop, a green
//! thread per connection echoing 64-byte messages, and, in two of the three runs, a green
//! thread that burns CPU in a loop:
//!
//! - **no burner**: the baseline;
//! - **burner without ticks**: the loop never reaches a scheduling point, so it holds the
//!   worker and the echo service stops; the monitor names it (its warning is printed) and
//!   counts the stall in the runtime's metrics (the table's last column);
//! - **`#[preemptible]` burner**: the same loop in a function marked `#[green::preemptible]`,
//!   which puts a tick on its back-edge: the budget lets the echo service in once per time
//!   slice.
//!
//! One client (a single-threaded tokio runtime pinned to CPU 0) drives 100 connections, each
//! sending its next message when the previous echo came back, and reports messages per second
//! and round-trip latency p50 / p99 for each run. Targets: with the ticking burner, at least
//! 90% of the baseline's throughput and a p99 at most twice the baseline's.

mod common;

use std::hint::black_box;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const USAGE: &str = "usage: fairness [--secs S] [--slice-us US] [--budget TICKS] [--demo]";

const CONNECTIONS: usize = 100;
const CLIENT_CPU: usize = 0;
const SERVER_CPU: usize = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Burner {
    None,
    NoTicks,
    Ticks,
}

impl Burner {
    fn name(self) -> &'static str {
        match self {
            Burner::None => "no burner",
            Burner::NoTicks => "burner without ticks",
            Burner::Ticks => "#[preemptible] burner",
        }
    }
}

/// Settings from the command line.
#[derive(Debug, Clone, Copy)]
struct Args {
    /// The measurement window of each run; the warm-up before it is a fifth of it.
    window: Duration,
    /// `--slice-us`: the runtime's time slice, if not its default.
    slice: Option<Duration>,
    /// `--budget`: ticks between looks at the clock, if not the runtime's default.
    budget: Option<u32>,
}

fn parse_args() -> Result<Args, String> {
    let (mut demo, mut window, mut slice, mut budget) = (false, None, None, None);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"));
        match flag.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            "--demo" => demo = true,
            "--secs" => {
                let secs = duration(&flag, value()?, 1.0)?;
                if secs.is_zero() {
                    return Err(format!("--secs must be more than 0\n{USAGE}"));
                }
                window = Some(secs);
            }
            "--slice-us" => slice = Some(duration(&flag, value()?, 1e-6)?),
            "--budget" => {
                let v = value()?;
                let ticks = v.parse::<u32>().ok().filter(|&t| t > 0);
                budget = Some(ticks.ok_or_else(|| {
                    format!("--budget {v}: expected a whole number of ticks, 1 to {}\n{USAGE}", u32::MAX)
                })?);
            }
            _ => return Err(format!("unknown argument {flag}\n{USAGE}")),
        }
    }
    let window = window.unwrap_or(Duration::from_millis(if demo { 300 } else { 3000 }));
    Ok(Args { window, slice, budget })
}

/// The value of `flag`, a number of `unit` seconds, as a `Duration`.
fn duration(flag: &str, value: String, unit: f64) -> Result<Duration, String> {
    let why = match value.parse::<f64>() {
        Ok(n) if n >= 0.0 => match Duration::try_from_secs_f64(n * unit) {
            Ok(d) => return Ok(d),
            Err(_) => "too large",
        },
        _ => "expected a number, 0 or more",
    };
    Err(format!("{flag} {value}: {why}\n{USAGE}"))
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::FAILURE;
        }
    };
    match measure(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fairness: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The three runs, one table.
fn measure(Args { window, slice, budget }: Args) -> io::Result<()> {
    let warmup = window / 5;
    println!("| run | msgs/s | vs. no burner | p50 | p99 | p99 vs. no burner | burner iterations | stalls (monitor) |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let mut baseline: Option<(f64, Duration)> = None;
    for burner in [Burner::None, Burner::NoTicks, Burner::Ticks] {
        let r = run(burner, slice, budget, warmup, window)?;
        let (base_rate, base_p99) = *baseline.get_or_insert((r.rate, r.p99));
        println!(
            "| {} | {:.0} | {:.0}% | {:.1} µs | {:.1} µs | {:.2}× | {} | {}, {:.1} s |",
            burner.name(),
            r.rate,
            100.0 * r.rate / base_rate,
            r.p50.as_secs_f64() * 1e6,
            r.p99.as_secs_f64() * 1e6,
            r.p99.as_secs_f64() / base_p99.as_secs_f64().max(1e-9),
            r.burned,
            r.stalls,
            r.stalled.as_secs_f64(),
        );
    }
    Ok(())
}

struct Outcome {
    rate: f64,
    p50: Duration,
    p99: Duration,
    burned: u64,
    /// The stalls the monitor reported (`WorkerMetrics::stalls`), and how long they held the worker.
    stalls: u64,
    stalled: Duration,
}

/// One unit of the burner's work: a dependent arithmetic chain the optimiser cannot remove.
#[inline(always)]
fn burn(x: u64) -> u64 {
    black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407))
}

/// Burns CPU until `stop`; returns the iterations done. Never reaches a scheduling point.
fn burn_plain(stop: &AtomicBool) -> u64 {
    let (mut x, mut n) = (1u64, 0u64);
    while !stop.load(Ordering::Relaxed) {
        x = burn(x);
        n += 1;
    }
    black_box(x);
    n
}

/// The same loop, with a tick on its back-edge.
#[green::preemptible]
fn burn_preemptible(stop: &AtomicBool) -> u64 {
    let (mut x, mut n) = (1u64, 0u64);
    while !stop.load(Ordering::Relaxed) {
        x = burn(x);
        n += 1;
    }
    black_box(x);
    n
}

fn run(
    burner: Burner,
    slice: Option<Duration>,
    budget: Option<u32>,
    warmup: Duration,
    window: Duration,
) -> io::Result<Outcome> {
    let mut builder = green::Runtime::builder().workers(1).thread_name("fair-srv");
    if let Some(budget) = budget {
        builder = builder.budget(budget);
    }
    if let Some(slice) = slice {
        builder = builder.time_slice(slice);
    }
    let rt = builder.build()?;
    rt.block_on(|| common::pin(SERVER_CPU));
    let listener = green::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
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
    let stop = Arc::new(AtomicBool::new(false));
    let burned = Arc::new(AtomicU64::new(0));
    if burner != Burner::None {
        let (stop, burned) = (stop.clone(), burned.clone());
        drop(green::Builder::new().name("burner".into()).spawn_on(rt.handle(), move || {
            let n = if burner == Burner::Ticks { burn_preemptible(&stop) } else { burn_plain(&stop) };
            burned.store(n, Ordering::Relaxed);
        })?);
    }
    let client = std::thread::spawn(move || {
        common::pin(CLIENT_CPU);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(client(addr, warmup, window))
    });
    let latencies = client.join().expect("the client panicked");
    stop.store(true, Ordering::Relaxed);
    let metrics = rt.handle().metrics();
    drop(rt);
    let mut latencies = latencies?;
    latencies.sort_unstable();
    let at = |q: f64| {
        let i = ((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1));
        Duration::from_nanos(latencies.get(i).copied().unwrap_or(0))
    };
    Ok(Outcome {
        rate: latencies.len() as f64 / window.as_secs_f64(),
        p50: at(0.5),
        p99: at(0.99),
        burned: burned.load(Ordering::Relaxed),
        stalls: metrics.workers[0].stalls,
        stalled: metrics.workers[0].stalled,
    })
}

async fn client(addr: SocketAddr, warmup: Duration, window: Duration) -> io::Result<Vec<u64>> {
    let connect_by = Instant::now() + Duration::from_secs(10);
    let mut streams = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        // A server whose worker is held by a burner accepts nothing: give up at a deadline.
        match tokio::time::timeout_at(connect_by.into(), tokio::net::TcpStream::connect(addr)).await {
            Ok(stream) => {
                let stream = stream?;
                stream.set_nodelay(true)?;
                streams.push(stream);
            }
            Err(_) => break,
        }
    }
    let start = Instant::now() + warmup;
    let end = start + window;
    common::PingPongs::spawn(streams, start, end).join().await
}
