//! Generations of green threads: every green thread spawns the next generation, waits for it,
//! and reports how many green threads its subtree held.
//!
//! Run it with:
//!
//! ```text
//! cargo run --release --example spawn_tree
//! cargo run --release --example spawn_tree -- --n 1000000 --fanout 10 --depth 100 --chains 1000 --workers 2
//! ```
//!
//! The teaching article behind this project builds a cooperative scheduler out of Python
//! generators and lets each task add the next generation of tasks to the event loop. Here the
//! same idea runs on real stacks, with plain blocking-looking code (`spawn`, then `join`):
//!
//! - **tree**: the root stands for `--n` green threads in all (default 100,000). Each green thread
//!   keeps one for itself and splits the rest among up to `--fanout` children (default 10), which
//!   do the same. Every green thread returns the size of its subtree, so the root's answer must
//!   be exactly `--n`. All children of a green thread are spawned before the first is joined,
//!   so many are alive at once.
//! - **chain**: generation `g` spawns generation `g + 1` and joins it, until `--depth`
//!   generations (default 100) are alive at once, each parked on its child. The chain is run
//!   `--chains` times (default 1,000) so that the time is long enough to read.
//!
//! For each it prints the number of green threads, the elapsed time, and the time per spawn
//! (spawn, first start on a stack, completion and join, all included).

use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Settings from the command line.
#[derive(Debug, Clone, Copy)]
struct Args {
    /// Green threads in the tree, the root included.
    n: u64,
    /// Children per green thread in the tree, at most.
    fanout: u64,
    /// Generations alive at once in the chain.
    depth: u64,
    /// How many times the chain is run.
    chains: u64,
    /// Worker OS threads.
    workers: usize,
}

const USAGE: &str = "usage: spawn_tree [--n N] [--fanout F] [--depth D] [--chains C] [--workers W]";

fn parse_args() -> Result<Args, String> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut args = Args { n: 100_000, fanout: 10, depth: 100, chains: 1000, workers };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let number: u64 = value.parse().map_err(|e| format!("{flag} {value}: {e}\n{USAGE}"))?;
        match flag.as_str() {
            "--n" => args.n = number,
            "--fanout" => args.fanout = number,
            "--depth" => args.depth = number,
            "--chains" => args.chains = number,
            "--workers" => args.workers = number as usize,
            _ => return Err(format!("unknown argument {flag}\n{USAGE}")),
        }
    }
    if args.n == 0 || args.fanout == 0 || args.depth == 0 || args.workers == 0 {
        return Err(format!("--n, --fanout, --depth and --workers must be at least 1\n{USAGE}"));
    }
    Ok(args)
}

/// One green thread of the tree, standing for `size` green threads: itself and its
/// descendants. Returns how many green threads its subtree really held.
fn tree(size: u64, fanout: u64) -> u64 {
    let below = size - 1;
    let children = below.min(fanout);
    let handles: Vec<_> = (0..children)
        .map(|k| {
            // Split `below` as evenly as possible: the first `below % children` get one more.
            let share = below / children + u64::from(k < below % children);
            green::spawn(move || tree(share, fanout))
        })
        .collect();
    1 + handles.into_iter().map(|h| h.join().expect("tree green thread")).sum::<u64>()
}

/// Generation `generation` of the chain: spawns the next one, waits for it, and returns how
/// many generations there were from here down.
fn chain(generation: u64, depth: u64) -> u64 {
    if generation + 1 == depth {
        return 1;
    }
    1 + green::spawn(move || chain(generation + 1, depth)).join().expect("chain green thread")
}

fn report(what: &str, count: u64, elapsed: Duration) {
    let per = elapsed.as_nanos() as f64 / count as f64;
    println!("{what:<28} {count:>10} green threads {:>10.2} ms {per:>9.1} ns/spawn", elapsed.as_secs_f64() * 1e3);
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::FAILURE;
        }
    };
    let rt = match green::Runtime::builder().workers(args.workers).build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("spawn_tree: could not start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("spawn_tree: {} worker(s)", args.workers);
    rt.block_on(|| {
        // The first run maps stacks and grows the pools; the second shows the warm path.
        for run in ["cold", "warm"] {
            let start = Instant::now();
            let count = green::spawn(move || tree(args.n, args.fanout)).join().expect("tree root");
            let elapsed = start.elapsed();
            assert_eq!(count, args.n, "the tree lost green threads");
            report(&format!("tree fanout {} ({run})", args.fanout), count, elapsed);
        }
        let start = Instant::now();
        let mut count = 0;
        for _ in 0..args.chains {
            count += green::spawn(move || chain(0, args.depth)).join().expect("chain root");
        }
        let elapsed = start.elapsed();
        assert_eq!(count, args.depth * args.chains, "the chain lost generations");
        report(&format!("chain {} deep x {}", args.depth, args.chains), count, elapsed);
    });
    ExitCode::SUCCESS
}
