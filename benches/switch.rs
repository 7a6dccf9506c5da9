//! Yield round trip: two green threads on one worker, against two OS threads.
//!
//! # What it measures
//!
//! - `green/round_trip`: a 1-worker runtime runs two green threads pinned to worker 0. The
//!   partner loops on [`green::yield_now`] until told to stop; the measuring green thread times
//!   `iters` calls of `yield_now`. Each call is one round trip: A suspends to the worker, the
//!   worker resumes B, B yields, the worker resumes A (two coroutine switches there and back,
//!   two trips through the run queue). Criterion reports time per round trip.
//! - `green/self_yield`: the same green thread yields with nobody else ready, so the worker
//!   resumes it at once: one switch there and back plus one trip through the run queue. Half a
//!   round trip, as a reference for where the time goes.
//! - `floor/corosensei`: the same round trip with none of the runtime: two bare `corosensei`
//!   coroutines that suspend at once, resumed in turn from a `VecDeque` (about 7 ns on a quiet
//!   machine of this kind). What the runtime's bookkeeping adds is the difference.
//! - `os/round_trip`: two OS threads ping-pong a token through a pair of `std::sync::mpsc`
//!   channels: one round trip per iteration. This is what a user would write without green
//!   threads, and what a switch between green threads replaces.
//!
//! # Why
//!
//! Every park, wake and yield of the runtime pays this path; it is the floor under channel
//! round trips and I/O readiness handoffs. A bare corosensei switch takes about 2.4 ns and a
//! `VecDeque`-driven round trip of two coroutines about 7 ns on a quiet machine of this kind;
//! the target for the runtime's round trip is 25 ns.
//!
//! Run with `cargo bench --bench switch -- --warm-up-time 1 --measurement-time 3`.

mod common;

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use corosensei::{Coroutine, CoroutineResult, Yielder};
use criterion::{Criterion, criterion_group, criterion_main};

/// Times `iters` yield round trips between the calling green thread and a partner pinned to
/// the same worker. Starting and stopping the partner is outside the timed region.
fn green_round_trips(iters: u64) -> Duration {
    let started = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let partner = {
        let (started, stop) = (started.clone(), stop.clone());
        green::Builder::new()
            .worker(0)
            .spawn(move || {
                started.store(true, Ordering::Release);
                while !stop.load(Ordering::Acquire) {
                    green::yield_now();
                }
            })
            .expect("spawn the partner")
    };
    // The partner is unstarted until the worker gets to it; yield until it has run once, so
    // that from here on both are in the run queue and every yield is a round trip.
    while !started.load(Ordering::Acquire) {
        green::yield_now();
    }
    let start = Instant::now();
    for _ in 0..iters {
        green::yield_now();
    }
    let elapsed = start.elapsed();
    stop.store(true, Ordering::Release);
    partner.join().expect("partner");
    elapsed
}

/// Times `iters` yields of a green thread that is alone on its worker.
fn green_self_yields(iters: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        green::yield_now();
    }
    start.elapsed()
}

/// Times `iters` round trips of two bare coroutines driven from a `VecDeque` run queue.
fn corosensei_round_trips(iters: u64) -> Duration {
    let mut coroutines: Vec<Coroutine<(), (), ()>> = (0..2)
        .map(|_| {
            Coroutine::new(|yielder: &Yielder<(), ()>, ()| {
                loop {
                    yielder.suspend(())
                }
            })
        })
        .collect();
    let mut run_queue: VecDeque<usize> = VecDeque::from([0, 1]);
    let start = Instant::now();
    for _ in 0..2 * iters {
        let next = run_queue.pop_front().expect("two coroutines");
        if let CoroutineResult::Yield(()) = coroutines[next].resume(()) {
            run_queue.push_back(next);
        }
    }
    let elapsed = start.elapsed();
    // Both are suspended in an endless loop: dropping them force-unwinds each, which is fine
    // (no runtime is involved here).
    drop(coroutines);
    elapsed
}

fn switch(c: &mut Criterion) {
    let mut group = c.benchmark_group("switch");
    let rt = green::Runtime::builder().workers(1).build().expect("runtime");
    group.bench_function("green/round_trip", |b| b.iter_custom(|iters| rt.block_on(|| green_round_trips(iters))));
    group.bench_function("green/self_yield", |b| b.iter_custom(|iters| rt.block_on(|| green_self_yields(iters))));
    drop(rt);
    group.bench_function("floor/corosensei", |b| b.iter_custom(corosensei_round_trips));

    // Two OS threads: the bench thread sends a token, the partner sends it back.
    common::os_ping_pong(&mut group, "os/round_trip");
    group.finish();
}

criterion_group! {
    name = benches;
    // Short by default: the machine has two cores and is shared. Command-line flags override.
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = switch
}
criterion_main!(benches);
