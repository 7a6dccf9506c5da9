//! A million green threads at once: spawn N of them, each parks on a gate, and measure what
//! they cost while parked and how long it takes to wake and join them all.
//!
//! ```sh
//! cargo run --release --example million                  # 100,000
//! cargo run --release --example million -- --n 1000000
//! cargo run --release --example million -- --n 100000 --workers 1
//! cargo run --release --example million -- --layout separate   # one mapping per stack: see the check
//! ```
//!
//! # What it reports
//!
//! - **spawn**: the time of the N `green::spawn` calls, and the time until the last green
//!   thread has started (taken its stack, run its first frame) and parked.
//! - **memory**: `VmRSS` per parked green thread, the growth from just before the first spawn
//!   to all parked, divided by N (the budget is 4.5 KB); page tables (`VmPTE`, not part of
//!   `VmRSS`) beside it; kernel mappings (`/proc/self/maps` lines) before and after, against
//!   `vm.max_map_count`.
//! - **wake and join**: the gate opens, each green thread is unparked through its
//!   `JoinHandle`, and all are joined.
//!
//! Every stack has a guard below it. On Linux 6.13 and later the runtime packs stacks into
//! large mappings and installs the guards with `madvise(MADV_GUARD_INSTALL)`, so a million
//! stacks take a handful of mappings. Without that (an older kernel, or `--layout separate`),
//! each stack is a mapping of its own plus a guard mapping: 2 per green thread, against
//! `vm.max_map_count` (65,530 by default). The example checks this, and the memory it will
//! need, before it spawns anything, and says what to change rather than failing halfway.
//!
//! Each green thread is a plain `fn` that captures nothing (its state lives in statics), so
//! the figure is the runtime's own cost per parked green thread: the task, its slot, the page
//! of stack its frames touched, and the `JoinHandle` kept to wake it.

use std::io::{self, IsTerminal};
use std::process::ExitCode;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use green::runtime::StackLayout;

const USAGE: &str = "usage: million [--n N] [--workers W] [--layout auto|separate]";

/// `madvise` advice that installs guard regions (Linux 6.13+); `libc` has no constant for it.
const MADV_GUARD_INSTALL: libc::c_int = 102;

/// Kernel mappings of one stack in the separate layout: the stack and its guard.
const MAPS_PER_SEPARATE_STACK: u64 = 2;
/// Mappings the runtime keeps free below `vm.max_map_count` in the separate layout
/// (`MAP_RESERVE` in `src/stack/separate.rs`), plus room for the workers' own stacks.
const MAP_RESERVE: u64 = 1024 + 64;

/// Memory a parked green thread is expected to take with everything counted (about 4.4 KB of
/// RSS and 0.65 KB of page tables, measured), rounded up, to check the machine has room.
const EXPECTED_BYTES_PER_THREAD: u64 = 6 * 1024;

/// The budget of issue 6 for `VmRSS` per parked green thread: 4.5 KB.
const RSS_BUDGET: f64 = 4.5 * 1024.0;

/// How often the main green thread looks for progress while the spawned ones start.
const CHECK_EVERY: Duration = Duration::from_millis(250);

/// Green threads that have started.
static STARTED: AtomicUsize = AtomicUsize::new(0);
/// How many will start: the last one wakes the main green thread.
static TARGET: AtomicUsize = AtomicUsize::new(usize::MAX);
/// Opened once all have parked.
static GATE: AtomicBool = AtomicBool::new(false);
/// The main green thread, woken by the last one to start.
static MAIN: OnceLock<green::GreenThread> = OnceLock::new();

/// The body of every spawned green thread: count itself started, park until the gate opens.
fn parked() {
    if STARTED.fetch_add(1, Ordering::AcqRel) + 1 == TARGET.load(Ordering::Acquire)
        && let Some(main) = MAIN.get()
    {
        main.unpark();
    }
    while !GATE.load(Ordering::Acquire) {
        green::park();
    }
}

struct Args {
    n: usize,
    workers: Option<usize>,
    separate: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args { n: 100_000, workers: None, separate: false };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let number = || value.replace('_', "").parse::<usize>().map_err(|e| format!("{flag} {value}: {e}\n{USAGE}"));
        match flag.as_str() {
            "--n" => args.n = number()?,
            "--workers" => args.workers = Some(number()?),
            "--layout" => {
                args.separate = match value.as_str() {
                    "auto" => false,
                    "separate" => true,
                    _ => return Err(format!("--layout {value}: expected auto or separate\n{USAGE}")),
                }
            }
            _ => return Err(format!("unknown argument {flag}\n{USAGE}")),
        }
    }
    if args.n == 0 || args.workers == Some(0) {
        return Err(format!("--n and --workers must be at least 1\n{USAGE}"));
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::FAILURE;
        }
    };
    let packed = !args.separate && guard_installs_work();
    if let Err(message) = preflight(args.n as u64, packed, args.separate) {
        eprintln!("million: {message}");
        return ExitCode::FAILURE;
    }
    let mut builder =
        green::Runtime::builder().stack_layout(if args.separate { StackLayout::Separate } else { StackLayout::Auto });
    if let Some(workers) = args.workers {
        builder = builder.workers(workers);
    }
    let rt = match builder.build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("million: could not start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let workers = rt.handle().workers();
    println!("million: {} green threads, each parked on a gate; {workers} worker(s)", thousands(args.n as u64));
    println!(
        "stack layout: {}",
        if packed {
            "packed (MADV_GUARD_INSTALL works here): a guard below every stack, no mapping per stack"
        } else {
            "separate: every stack its own mapping and a guard mapping"
        }
    );
    let result = rt.block_on(|| spawn_park_wake(args.n));
    drop(rt);
    match result {
        Ok(figures) => {
            figures.print(args.n);
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("million: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Says, before anything is spawned, whether N green threads fit: mappings in the separate
/// layout, memory in any.
fn preflight(n: u64, packed: bool, forced: bool) -> Result<(), String> {
    let max_map_count = read_number("/proc/sys/vm/max_map_count").unwrap_or(65_530);
    let maps_now = count_maps() as u64;
    if !packed {
        let needed = MAPS_PER_SEPARATE_STACK * n + maps_now + MAP_RESERVE;
        if needed > max_map_count {
            let why = if forced {
                "--layout separate was given"
            } else {
                "this kernel has no MADV_GUARD_INSTALL (it needs Linux 6.13 or later)"
            };
            let fit = max_map_count.saturating_sub(maps_now + MAP_RESERVE) / MAPS_PER_SEPARATE_STACK;
            return Err(format!(
                "{} green threads do not fit in vm.max_map_count = {max_map_count}.\n\
                 Every stack has a 64 KiB guard below it. Here each stack is its own mapping plus a guard \
                 mapping ({why}): {MAPS_PER_SEPARATE_STACK} per green thread, so {} green threads need \
                 {} + {maps_now} mappings in use now + {MAP_RESERVE} kept in reserve = {} mappings; \
                 about {} fit.\n\
                 Raise the limit first:\n\n    sudo sysctl -w vm.max_map_count={needed}\n",
                thousands(n),
                thousands(n),
                thousands(MAPS_PER_SEPARATE_STACK * n),
                thousands(needed),
                thousands(fit),
            ));
        }
    }
    if read_number("/proc/sys/vm/overcommit_memory") == Some(2) {
        return Err(format!(
            "vm.overcommit_memory is 2 (strict): the kernel would count every stack's full size \
             against the commit limit ({} green threads x 256 KiB). Allow overcommit first:\n\n    \
             sudo sysctl -w vm.overcommit_memory=0\n",
            thousands(n)
        ));
    }
    let needed = n * EXPECTED_BYTES_PER_THREAD;
    if let Some(available) = meminfo_kb("MemAvailable").map(|kb| kb * 1024)
        && needed > available
    {
        return Err(format!(
            "{} parked green threads need about {:.1} GiB ({} KiB each, page tables included), and \
             MemAvailable is {:.1} GiB. Use a smaller --n.",
            thousands(n),
            gib(needed),
            EXPECTED_BYTES_PER_THREAD / 1024,
            gib(available)
        ));
    }
    Ok(())
}

/// What the run measured.
struct Figures {
    spawn_calls: Duration,
    all_parked: Duration,
    wake: Duration,
    wake_and_join: Duration,
    rss: (u64, u64),
    pte: (u64, u64),
    maps: (usize, usize),
}

/// Runs on the main green thread: spawn, wait for all to park, measure, open the gate, join.
fn spawn_park_wake(n: usize) -> Result<Figures, String> {
    TARGET.store(n, Ordering::Release);
    let _ = MAIN.set(green::current());
    let progress = io::stderr().is_terminal();
    let mut handles = Vec::with_capacity(n);
    let (rss0, pte0, maps0) = (status_kb("VmRSS"), status_kb("VmPTE"), count_maps());

    let start = Instant::now();
    for _ in 0..n {
        handles.push(green::spawn(parked));
    }
    let spawn_calls = start.elapsed();
    let mut seen = 0;
    while STARTED.load(Ordering::Acquire) < n {
        green::park_timeout(CHECK_EVERY);
        let started = STARTED.load(Ordering::Acquire);
        if progress {
            eprint!("\r\x1b[2K{} of {} started", thousands(started as u64), thousands(n as u64));
        }
        // No progress in a whole check: one may have failed to start (no stack).
        if started == seen
            && let Some(failed) = handles.iter().position(|h| h.is_finished())
        {
            let message = match handles.swap_remove(failed).join() {
                Err(e) => e.start_error().map_or_else(|| e.to_string(), |s| s.to_string()),
                Ok(()) => "a green thread ended before the gate opened".to_owned(),
            };
            GATE.store(true, Ordering::Release);
            handles.iter().for_each(|h| h.thread().unpark());
            return Err(format!("after {} green threads had started: {message}", thousands(started as u64)));
        }
        seen = started;
    }
    let all_parked = start.elapsed();
    if progress {
        eprint!("\r\x1b[2K");
    }
    let (rss1, pte1, maps1) = (status_kb("VmRSS"), status_kb("VmPTE"), count_maps());

    let start = Instant::now();
    GATE.store(true, Ordering::Release);
    for handle in &handles {
        handle.thread().unpark();
        // A long loop of plain calls: tick, so the green threads woken so far may run (and
        // the runtime's monitor does not take this loop for blocking code).
        green::tick();
    }
    let wake = start.elapsed();
    for handle in handles {
        handle.join().map_err(|e| format!("a parked green thread failed: {e}"))?;
    }
    let wake_and_join = start.elapsed();
    Ok(Figures {
        spawn_calls,
        all_parked,
        wake,
        wake_and_join,
        rss: (rss0, rss1),
        pte: (pte0, pte1),
        maps: (maps0, maps1),
    })
}

impl Figures {
    fn print(&self, n: usize) {
        let per = |d: Duration| format!("{:.0} ns", d.as_nanos() as f64 / n as f64);
        let grown = |(a, b): (u64, u64)| b.saturating_sub(a) as f64 * 1024.0 / n as f64;
        let rss = grown(self.rss);
        let verdict = if rss <= RSS_BUDGET { "met" } else { "MISSED" };
        let max_map_count = read_number("/proc/sys/vm/max_map_count").unwrap_or(0);
        println!();
        println!("| what | total | per green thread |");
        println!("|---|---:|---:|");
        println!(
            "| {} calls to green::spawn | {} | {} |",
            thousands(n as u64),
            secs(self.spawn_calls),
            per(self.spawn_calls)
        );
        println!("| spawn until all started and parked | {} | {} |", secs(self.all_parked), per(self.all_parked));
        println!(
            "| VmRSS, before → all parked | {:.1} MiB → {:.1} MiB | **{:.0} B** (budget ≤ 4.5 KB = 4608 B: {verdict}) |",
            self.rss.0 as f64 / 1024.0,
            self.rss.1 as f64 / 1024.0,
            rss
        );
        println!(
            "| VmPTE (page tables, not in VmRSS) | {:.1} MiB → {:.1} MiB | {:.0} B |",
            self.pte.0 as f64 / 1024.0,
            self.pte.1 as f64 / 1024.0,
            grown(self.pte)
        );
        println!(
            "| mappings (/proc/self/maps lines) | {} → {} | vm.max_map_count = {} |",
            self.maps.0,
            self.maps.1,
            thousands(max_map_count)
        );
        println!("| open the gate, unpark all (some already run) | {} | {} |", secs(self.wake), per(self.wake));
        println!("| unpark and join all | {} | {} |", secs(self.wake_and_join), per(self.wake_and_join));
    }
}

/// Whether `madvise(MADV_GUARD_INSTALL)` works here, tried on a scratch mapping of two pages
/// (the runtime probes the same way).
fn guard_installs_work() -> bool {
    let len = 2 * 4096;
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE;
    // SAFETY: a new anonymous mapping at an address the kernel picks overlaps nothing.
    let addr = unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, flags, -1, 0) };
    if addr == libc::MAP_FAILED {
        return false;
    }
    // SAFETY: the range is the first page of our own fresh mapping, which holds nothing.
    let works = unsafe { libc::madvise(addr, 4096, MADV_GUARD_INSTALL) } == 0;
    // SAFETY: the mapping is ours and nothing points into it.
    unsafe { libc::munmap(addr, len) };
    works
}

/// A field of `/proc/self/status` in kB (`VmRSS`, `VmPTE`).
fn status_kb(field: &str) -> u64 {
    proc_kb("/proc/self/status", field).unwrap_or(0)
}

fn meminfo_kb(field: &str) -> Option<u64> {
    proc_kb("/proc/meminfo", field)
}

fn proc_kb(path: &str, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Lines of `/proc/self/maps`: the process's kernel mappings.
fn count_maps() -> usize {
    std::fs::read_to_string("/proc/self/maps").map_or(0, |maps| maps.lines().count())
}

fn read_number(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

fn gib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 30) as f64
}

fn thousands(x: u64) -> String {
    let digits = x.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
