//! CPU-parallel work: a merge sort that forks with `green::scope`, on one worker and on all.
//!
//! ```sh
//! cargo run --release --example parallel_sort                   # 10,000,000 u64
//! cargo run --release --example parallel_sort -- --n 1000000 --workers 4
//! cargo run --example parallel_sort -- --demo                   # a small checked run
//! ```
//!
//! The shape of the fork is what this example is about (docs/design.md, "CPU-parallel work"):
//!
//! - **Spawn one half, sort the other yourself.** The calling green thread does not park at
//!   the fork; it parks only at the join, when its half is done. Spawning both halves works
//!   too, and costs a park per fork.
//! - **Stealing takes the biggest piece.** A green thread that has started never moves, but an
//!   unstarted one may be taken by an idle worker, oldest first: the first half spawned, the
//!   largest left. The thief's own forks then go to its own deque, so one steal near the root
//!   hands a worker a whole subtree.
//! - **Plain loops in the leaves.** A leaf below the cutoff sorts without spawning and without
//!   ticks. On a runtime that only computes, nothing waits for a leaf to yield, and a leaf
//!   that ticked (`#[green::preemptible]`) would yield to the unstarted halves queued on its
//!   worker, starting them there before an idle worker could take them. The cutoff keeps each
//!   leaf short (about 0.5 ms), so that pieces are left to take until near the end.
//!
//! It prints the time of the same sort without forks on the calling thread, then for each
//! runtime the time and, per worker, the green threads it started, its steals, and the share
//! of the run it spent busy ([`green::Handle::metrics`]). With two workers on an otherwise idle
//! machine, each starts about half of the green threads after a few steals; the merges near the
//! top run on one worker, which keeps the other idle for a while at the end.

use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Below this many values, a slice is sorted without forking: about 0.5 ms of work.
const CUTOFF: usize = 1 << 14;

const USAGE: &str = "usage: parallel_sort [--n VALUES] [--workers W] [--demo]";

#[derive(Debug, Clone, Copy)]
struct Args {
    /// Values to sort.
    n: usize,
    /// Workers of the parallel runtime.
    workers: usize,
    /// A small run whose result is checked.
    demo: bool,
}

fn parse_args() -> Result<Args, String> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut args = Args { n: 10_000_000, workers, demo: false };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            "--demo" => {
                args.demo = true;
                args.n = 200_000;
                args.workers = 2;
                continue;
            }
            _ => {}
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let number: usize = value.parse().map_err(|e| format!("{flag} {value}: {e}\n{USAGE}"))?;
        match flag.as_str() {
            "--n" => args.n = number,
            "--workers" => args.workers = number,
            _ => return Err(format!("unknown argument {flag}\n{USAGE}")),
        }
    }
    if args.workers == 0 {
        return Err(format!("--workers must be at least 1\n{USAGE}"));
    }
    Ok(args)
}

/// Sorts `values`, using `buffer` (as long) for the merges; forks into green threads if `fork`,
/// or runs as a plain recursion on the calling thread.
fn sort(values: &mut [u64], buffer: &mut [u64], fork: bool) {
    if values.len() <= CUTOFF {
        values.sort_unstable();
        return;
    }
    let mid = values.len() / 2;
    let (left, right) = values.split_at_mut(mid);
    let (left_buffer, right_buffer) = buffer.split_at_mut(mid);
    if fork {
        green::scope(|s| {
            // The left half waits, unstarted, in this worker's queue, for this worker to start
            // it once it parks at the join, or for an idle worker to take it first.
            let left_sorted = s.spawn(|| sort(left, left_buffer, true));
            sort(right, right_buffer, true);
            left_sorted.join().expect("the left half panicked");
        });
    } else {
        sort(left, left_buffer, false);
        sort(right, right_buffer, false);
    }
    // The merges near the top run on one worker while the others wait: the part of a merge
    // sort that does not divide.
    merge(left, right, buffer);
    values.copy_from_slice(buffer);
}

/// Merges the sorted `left` and `right` into `out`.
fn merge(left: &[u64], right: &[u64], out: &mut [u64]) {
    let (mut i, mut j) = (0, 0);
    for slot in out.iter_mut() {
        if j == right.len() || (i < left.len() && left[i] <= right[j]) {
            *slot = left[i];
            i += 1;
        } else {
            *slot = right[j];
            j += 1;
        }
    }
}

/// `n` pseudo-random values (xorshift), the same for every run.
fn values(n: usize) -> Vec<u64> {
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        })
        .collect()
}

/// Sorts a fresh copy of `input` on a runtime of `workers`; returns the sorted values, the
/// time, and a line per worker from the runtime's metrics.
fn run(input: &[u64], workers: usize) -> Result<(Vec<u64>, Duration, Vec<String>), String> {
    // A runtime that only computes: nothing waits behind a long merge, so the monitor, which
    // reports a green thread that holds its worker for 100 ms without a scheduling point as
    // blocking code, is turned off.
    let rt = green::Runtime::builder()
        .workers(workers)
        .blocking_threshold(None)
        .build()
        .map_err(|e| format!("could not start a runtime of {workers} worker(s): {e}"))?;
    let mut values = input.to_vec();
    let mut buffer = vec![0; values.len()];
    let before = rt.handle().metrics();
    let start = Instant::now();
    rt.block_on(|| sort(&mut values, &mut buffer, true));
    let elapsed = start.elapsed();
    let after = rt.handle().metrics();
    let lines = before
        .workers
        .iter()
        .zip(&after.workers)
        .enumerate()
        .map(|(i, (b, a))| {
            let idle = a.idle.saturating_sub(b.idle).as_secs_f64();
            let busy = (1.0 - idle / elapsed.as_secs_f64()).clamp(0.0, 1.0);
            format!(
                "    worker {i}: started {:>5}, steals {:>3}, busy {:>3.0}%",
                a.started - b.started,
                a.steals - b.steals,
                busy * 100.0
            )
        })
        .collect();
    Ok((values, elapsed, lines))
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::FAILURE;
        }
    };
    let input = values(args.n);
    let mut expected = input.clone();
    expected.sort_unstable();
    println!("parallel_sort: {} values, cutoff {CUTOFF}", args.n);
    let mut sequential = input.clone();
    let mut buffer = vec![0; sequential.len()];
    let start = Instant::now();
    sort(&mut sequential, &mut buffer, false);
    let sequential_time = start.elapsed();
    if sequential != expected {
        eprintln!("parallel_sort: the sort without forks gave a wrong result");
        return ExitCode::FAILURE;
    }
    println!("  without forks, on this thread: {:8.1} ms", sequential_time.as_secs_f64() * 1e3);
    let mut times = Vec::new();
    for workers in [1, args.workers] {
        let (sorted, elapsed, lines) = match run(&input, workers) {
            Ok(outcome) => outcome,
            Err(message) => {
                eprintln!("parallel_sort: {message}");
                return ExitCode::FAILURE;
            }
        };
        if sorted != expected {
            eprintln!("parallel_sort: the sort on {workers} worker(s) gave a wrong result");
            return ExitCode::FAILURE;
        }
        println!("  green, {workers} worker(s):        {:8.1} ms", elapsed.as_secs_f64() * 1e3);
        for line in lines {
            println!("{line}");
        }
        times.push(elapsed);
    }
    println!(
        "  {} workers against 1: {:.2}x (the machine's other load counts too: compare in one run)",
        args.workers,
        times[0].as_secs_f64() / times[1].as_secs_f64()
    );
    if args.demo {
        println!("demo: all three sorts checked");
    }
    ExitCode::SUCCESS
}
