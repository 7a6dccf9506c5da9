//! Cold spawns: 100,000 green threads that all stay alive, each on a stack never used before.
//!
//! Run it with:
//!
//! ```text
//! cargo run --release --example cold_spawn
//! cargo run --release --example cold_spawn -- --n 200000 --workers 2
//! ```
//!
//! # What it measures
//!
//! In a fresh process, the main green thread spawns `--n` green threads (default 100,000). Each
//! one counts itself as started, then parks on a gate (it loops on `green::park()` until an
//! `AtomicBool` is set). Since none finishes before all have started, no stack is ever reused:
//! every start maps or carves a stack, installs its guard and faults in its first page. The
//! figure is the time from the first spawn until the last green thread has started and
//! parked, per green thread.
//!
//! Beside it, measured in the same process, is the floor the kernel sets for a new stack: one
//! first-touch page fault of a fresh anonymous page, plus one `madvise(MADV_GUARD_INSTALL)` (the
//! guard of a packed stack, Linux 6.13+), done for 10,000 slots of one fresh `MAP_NORESERVE`
//! mapping laid out like the runtime's chunks (guard first, then the top page of the stack, as
//! the runtime does), each call timed on its own. The target for a cold spawn is 1.3 times
//! that floor.
//!
//! Then the memory at `--n` parked green threads: resident memory (`VmRSS`) and page tables
//! (`VmPTE`) per green thread, as the difference from just before the spawns, and the number
//! of kernel mappings (`/proc/self/maps` lines) before and after. The budget is 4.5 KB of RSS
//! per parked green thread. Finally the gate opens, each green thread is unparked through its
//! `JoinHandle::thread()`, and all are joined.

use std::io;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// `madvise` advice that installs guard regions (Linux 6.13+); `libc` has no constant for it.
const MADV_GUARD_INSTALL: libc::c_int = 102;

/// Stack and guard sizes of the runtime's default stacks (256 KiB usable, 64 KiB guard), so
/// that the floor's mapping is laid out like the runtime's chunks.
const STACK_BYTES: usize = 256 * 1024;
const GUARD_BYTES: usize = 64 * 1024;

/// Operations of each kind the floor times.
const FLOOR_OPS: usize = 10_000;

const USAGE: &str = "usage: cold_spawn [--n N] [--workers W]";

fn parse_args() -> Result<(usize, usize), String> {
    let (mut n, mut workers) = (100_000, 1);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let number: usize = value.parse().map_err(|e| format!("{flag} {value}: {e}\n{USAGE}"))?;
        match flag.as_str() {
            "--n" => n = number,
            "--workers" => workers = number,
            _ => return Err(format!("unknown argument {flag}\n{USAGE}")),
        }
    }
    if n == 0 || workers == 0 {
        return Err(format!("--n and --workers must be at least 1\n{USAGE}"));
    }
    Ok((n, workers))
}

/// A field of `/proc/self/status` in kB (`VmRSS`, `VmPTE`).
fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

/// Lines of `/proc/self/maps`: the process's kernel mappings.
fn count_maps() -> usize {
    std::fs::read_to_string("/proc/self/maps").expect("read /proc/self/maps").lines().count()
}

/// A fresh private anonymous mapping laid out like a chunk of stacks, unmapped on drop.
struct Region {
    addr: *mut libc::c_void,
    len: usize,
}

impl Region {
    fn new(len: usize) -> io::Result<Region> {
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE;
        // SAFETY: a new anonymous mapping at an address the kernel picks overlaps nothing.
        let addr = unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, flags, -1, 0) };
        if addr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // Like the runtime's chunks: no transparent huge pages (one would back many stacks).
        // SAFETY: advisory only; the range is our own mapping.
        unsafe { libc::madvise(addr, len, libc::MADV_NOHUGEPAGE) };
        Ok(Region { addr, len })
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: the mapping is ours and nothing points into it past this point.
        unsafe { libc::munmap(self.addr, self.len) };
    }
}

/// Per-op cost of a guard install and of a first-touch page fault, on a fresh mapping laid out
/// like a chunk of stacks. As the runtime does for a new stack, each slot gets its guard
/// installed at its bottom, then the top page of its stack written; each call is timed on its
/// own. The guard install is `None` if the kernel does not support it (`EINVAL`).
fn measure_floor() -> io::Result<(Duration, Option<Duration>)> {
    let slot = GUARD_BYTES + STACK_BYTES;
    let region = Region::new(FLOOR_OPS * slot)?;
    let base = region.addr as usize;
    let (mut touch, mut guard, mut guards_work) = (Duration::ZERO, Duration::ZERO, true);
    for i in 0..FLOOR_OPS {
        let bottom = base + i * slot;
        if guards_work {
            let start = Instant::now();
            // SAFETY: the range lies in our own fresh mapping and holds nothing.
            let rc = unsafe { libc::madvise(bottom as *mut libc::c_void, GUARD_BYTES, MADV_GUARD_INSTALL) };
            guard += start.elapsed();
            if rc != 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::EINVAL) {
                    return Err(e);
                }
                guards_work = false;
            }
        }
        let top_page = bottom + slot - 4096;
        let start = Instant::now();
        // SAFETY: the page lies in our fresh read-write mapping, above the guard; nothing else
        // uses it.
        unsafe { std::ptr::write_volatile(top_page as *mut u64, i as u64) };
        touch += start.elapsed();
    }
    let per_op = |d: Duration| d / FLOOR_OPS as u32;
    Ok((per_op(touch), guards_work.then(|| per_op(guard))))
}

/// What the green part measured.
struct GreenFigures {
    spawn_all: Duration,
    release_join: Duration,
    rss_kb: (u64, u64),
    pte_kb: (u64, u64),
    maps: (usize, usize),
}

fn spawn_parked(n: usize) -> GreenFigures {
    let started = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(AtomicBool::new(false));
    let main = green::current();
    let mut handles = Vec::with_capacity(n);
    let rss_before = status_kb("VmRSS");
    let pte_before = status_kb("VmPTE");
    let maps_before = count_maps();

    let start = Instant::now();
    for _ in 0..n {
        let (started, gate, main) = (started.clone(), gate.clone(), main.clone());
        handles.push(green::spawn(move || {
            // The last one to start wakes the main green thread.
            if started.fetch_add(1, Ordering::AcqRel) + 1 == n {
                main.unpark();
            }
            while !gate.load(Ordering::Acquire) {
                green::park();
            }
        }));
    }
    // Park (not yield) so that the worker turns to the unstarted green threads at once.
    while started.load(Ordering::Acquire) < n {
        green::park();
    }
    let spawn_all = start.elapsed();

    let rss_after = status_kb("VmRSS");
    let pte_after = status_kb("VmPTE");
    let maps_after = count_maps();

    let start = Instant::now();
    gate.store(true, Ordering::Release);
    for handle in &handles {
        handle.thread().unpark();
    }
    for handle in handles {
        handle.join().expect("parked green thread");
    }
    let release_join = start.elapsed();
    GreenFigures {
        spawn_all,
        release_join,
        rss_kb: (rss_before, rss_after),
        pte_kb: (pte_before, pte_after),
        maps: (maps_before, maps_after),
    }
}

fn main() -> ExitCode {
    let (n, workers) = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::FAILURE;
        }
    };
    let (touch, guard) = match measure_floor() {
        Ok(floor) => floor,
        Err(e) => {
            eprintln!("cold_spawn: measuring the floor failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    let rt = match green::Runtime::builder().workers(workers).build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cold_spawn: could not start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let g = rt.block_on(|| spawn_parked(n));
    drop(rt);

    let ns = |d: Duration| d.as_nanos() as f64;
    let per_spawn = ns(g.spawn_all) / n as f64;
    println!("cold_spawn: {n} green threads parked at once, {workers} worker(s)");
    println!();
    println!("{:<44} {:>12}", "what", "per op");
    println!("{:<44} {:>9.0} ns", "cold spawn, until started and parked", per_spawn);
    println!("{:<44} {:>9.0} ns", "floor: first touch of a fresh page", ns(touch));
    match guard {
        Some(guard) => {
            let floor = ns(touch) + ns(guard);
            println!("{:<44} {:>9.0} ns", "floor: madvise(MADV_GUARD_INSTALL)", ns(guard));
            println!("{:<44} {:>9.0} ns", "floor: touch + guard install", floor);
            let ratio = per_spawn / floor;
            let verdict = if ratio <= 1.3 { "met" } else { "missed" };
            println!("{:<44} {:>9.2} x   (target <= 1.3x: {verdict})", "cold spawn / floor", ratio);
        }
        None => println!("{:<44} {:>12}", "floor: madvise(MADV_GUARD_INSTALL)", "guard install unsupported"),
    }
    println!("{:<44} {:>9.0} ns", "unpark + join, per green thread", ns(g.release_join) / n as f64);
    println!();
    let rss_per = (g.rss_kb.1.saturating_sub(g.rss_kb.0)) as f64 * 1024.0 / n as f64;
    let pte_per = (g.pte_kb.1.saturating_sub(g.pte_kb.0)) as f64 * 1024.0 / n as f64;
    let verdict = if rss_per <= 4.5 * 1024.0 { "met" } else { "missed" };
    println!("{:<44} {:>9} kB -> {} kB", "VmRSS before -> all parked", g.rss_kb.0, g.rss_kb.1);
    println!("{:<44} {:>9.0} B    (budget <= 4608 B: {verdict})", "RSS per parked green thread", rss_per);
    println!("{:<44} {:>9} kB -> {} kB", "VmPTE before -> all parked", g.pte_kb.0, g.pte_kb.1);
    println!("{:<44} {:>9.0} B", "page tables per parked green thread", pte_per);
    println!("{:<44} {:>9} -> {}", "mappings (/proc/self/maps lines)", g.maps.0, g.maps.1);
    ExitCode::SUCCESS
}
