//! Green threads against thread-per-connection: the same 64-byte echo service written twice,
//! once on `green` and once with one `std::thread` per connection, each run as its own process
//! and driven by one load generator over loopback.
//!
//! ```sh
//! cargo run --release --example versus                   # 100, 1,000, 10,000 connections (< 2 min)
//! cargo run --release --example versus -- --quick        # one short repetition each (< 30 s)
//! cargo run --release --example versus -- --full         # more and longer repetitions
//! cargo run --release --example versus -- --conns 100,1000 --client std --with tokio --with tokio-ct
//! ```
//!
//! # What one run is
//!
//! 1. The program starts itself again as a server (`--serve green|threads|tokio|tokio-ct --port 0`,
//!    hidden options). The server binds port 0, so every run gets a fresh port, and prints
//!    the port on its stdout, which is a pipe to this process. It dies with this process
//!    (`PR_SET_PDEATHSIG`), and this process kills it at the end of the run on every path.
//! 2. The load generator (`--client green`, the default: one green worker holding every
//!    connection) opens the connections, at most [`CONNECT_CONCURRENCY`] at a time, and each
//!    does one checked echo. The time until the last first echo is "connect all".
//! 3. All connections then ping-pong: send a 64-byte request, wait for its echo, compare it
//!    byte for byte with the request (connection number, sequence number, and a pattern of
//!    both: a mismatch fails the run with a message), send the next. After a warm-up, a
//!    measurement window counts the echoes that complete inside it and their round-trip
//!    latencies.
//! 4. At the start and the end of the window, a sampler thread reads the server's CPU time
//!    (`utime`, `stime` in `/proc/<pid>/stat`) and this process's own (`getrusage`); at the end
//!    also the server's `VmRSS` and `Threads` (`/proc/<pid>/status`). The server's memory adds
//!    a kernel stack per thread, [`KERNEL_STACK_BYTES`] (16 KiB on x86_64 and arm64).
//!
//! With at least two CPUs, the load generator is pinned to one and the server to another
//! (`sched_setaffinity`), so each server gets exactly one core and the client never competes
//! with it. A run whose client used 90% of its core or more while the server used less, or 5
//! points less than the client, is flagged client-bound: the server might have gone faster. A green worker spins a while
//! before it sleeps, and the OS counts the spinning as CPU time, so the green server is also
//! asked (a line on its stdin) for its worker's idle time (`WorkerMetrics::idle`): the table
//! shows it beside the server's CPU, and the flag uses the share of the window it had work.
//! `--client std` swaps the load generator for one that does not use `green` (one epoll loop
//! on one thread, through `libc`), to check the first. The CPU time other processes took from
//! the two cores during the window is shown too ("others"): on a shared machine it explains
//! most outliers.
//!
//! Every figure is the median of the repetitions. The table goes to stdout, and a chart of
//! msgs/s and p99 against connections to an SVG file whose path is printed.

mod versus {
    pub mod args;
    pub mod chart;
    pub mod client_green;
    pub mod client_std;
    pub mod limits;
    pub mod message;
    pub mod report;
    pub mod run;
    pub mod server;
    pub mod sys;
}

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Instant;

use versus::args::{Command, Options};
use versus::report::Report;
use versus::{args, chart, limits, report, run, server, sys};

/// Connections that may be between their connect and their first echo at once. Below std's
/// listen backlog of 128, so the thread-per-connection server's accept queue never overflows
/// (an overflow drops the SYN and costs the client a one-second retransmit), and the same for
/// every server so that "connect all" compares like with like.
pub const CONNECT_CONCURRENCY: usize = 100;

/// Kernel stack of each thread: `THREAD_SIZE`, 16 KiB on x86_64 and on arm64 with 4 KiB pages.
/// Not part of `VmRSS`; counted per thread of the server (`Threads` in `/proc/<pid>/status`).
pub const KERNEL_STACK_BYTES: u64 = 16 * 1024;

fn main() -> ExitCode {
    let command = match args::parse(std::env::args().skip(1)) {
        Ok(command) => command,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::FAILURE;
        }
    };
    match command {
        Command::Help => {
            println!("{}", args::USAGE);
            ExitCode::SUCCESS
        }
        Command::Serve(serve) => server::serve(serve),
        Command::Compare(options) => match compare(&options) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("\nversus: {message}");
                ExitCode::FAILURE
            }
        },
    }
}

/// The main job: every connection count, every server, every repetition; then the table, the
/// verdicts and the chart.
fn compare(options: &Options) -> Result<(), String> {
    let began = Instant::now();
    let cpus = sys::Placement::choose();
    println!("{}", cpus.describe());
    println!("{}", sys::Load::now().describe(cpus.available));
    let plan = limits::plan(&options.conns, &options.servers);
    for note in &plan.notes {
        println!("{note}");
    }
    if plan.conns.is_empty() {
        return Err("no connection count left to run".to_owned());
    }
    println!(
        "client: {}; {} repetition(s) of {:.1} s after {:.1} s of warm-up; 64-byte messages, read buffer {} B, \
         connect concurrency {}\n",
        options.client.describe(),
        options.timing.reps,
        options.timing.window.as_secs_f64(),
        options.timing.warmup.as_secs_f64(),
        options.buffer,
        CONNECT_CONCURRENCY,
    );
    if let Some(cpu) = cpus.client {
        sys::pin_to(cpu).map_err(|e| format!("could not pin the client to CPU {cpu}: {e}"))?;
    }

    let total = plan.conns.len() * options.timing.reps * options.servers.len();
    let mut progress = Progress { total, done: 0, tty: std::io::stderr().is_terminal(), last: String::new() };
    let mut report = Report::new(&options.servers);
    for &conns in &plan.conns {
        for rep in 0..options.timing.reps {
            for &server in &options.servers {
                progress.show(&format!(
                    "{} conns, {} server, repetition {}/{}",
                    conns,
                    server.name(),
                    rep + 1,
                    options.timing.reps
                ));
                let outcome = run::measure(server, conns, options, &cpus)
                    .map_err(|e| format!("{} server, {conns} connections: {e}", server.name()))?;
                progress.done += 1;
                progress.last = format!(
                    "last: {} {conns} conns {} msgs/s, server {:.0}% CPU, client {:.0}%, others {:.0}%",
                    server.name(),
                    report::thousands(outcome.msgs_per_sec),
                    outcome.server_busy * 100.0,
                    outcome.client_busy * 100.0,
                    outcome.others_busy * 100.0
                );
                report.add(server, conns, outcome);
            }
        }
    }
    progress.clear();
    println!("{}", report.table());
    println!("{}", report.verdicts());
    let path = options.svg.clone().unwrap_or_else(chart::default_path);
    chart::write(&path, &report, &cpus, options).map_err(|e| format!("could not write {}: {e}", path.display()))?;
    println!("chart: {}", path.display());
    println!("total time: {:.0} s", began.elapsed().as_secs_f64());
    Ok(())
}

/// One line on stderr that says what is running and how the last run went, rewritten in place
/// on a terminal.
struct Progress {
    total: usize,
    done: usize,
    tty: bool,
    /// The result of the run before, shown beside the one running.
    last: String,
}

impl Progress {
    fn show(&self, what: &str) {
        let mut line = format!("[{:>2}/{}] {what}", self.done + 1, self.total);
        if !self.last.is_empty() {
            line = format!("{line} ({})", self.last);
        }
        if self.tty {
            eprint!("\r\x1b[2K{line}");
        } else {
            eprintln!("{line}");
        }
    }

    fn clear(&self) {
        if self.tty {
            eprint!("\r\x1b[2K");
        }
    }
}
