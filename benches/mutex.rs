//! Contended mutex increments: green threads on two workers against OS threads with
//! `std::sync::Mutex`.
//!
//! # What it measures
//!
//! - `mutex/green/contended`: 8 green threads, 4 pinned to each of two workers, each
//!   incrementing one shared `green::sync::Mutex<u64>` in a loop. Time per increment (all
//!   threads' increments counted).
//! - `mutex/green/one_worker`: the same 8 green threads all on worker 0: contention between
//!   green threads that never run at once (the lock is only ever contended across a switch).
//! - `mutex/green/uncontended`: one green thread: the cost of `lock` + `unlock` alone.
//! - `mutex/os/std_mutex`: 2 OS threads (one per core) incrementing a `std::sync::Mutex<u64>`.
//! - `mutex/os/std_mutex_8`: 8 OS threads, as many as the green threads above.
//!
//! Run with `cargo bench --bench mutex -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};

const GREEN_THREADS: usize = 8;

/// `threads` green threads placed by `worker_of`, sharing `iters` increments; time from all
/// started to all done.
fn green_increments(rt: &green::Runtime, threads: usize, worker_of: fn(usize) -> usize, iters: u64) -> Duration {
    let m = Arc::new(green::sync::Mutex::new(0u64));
    let start_line = Arc::new(green::sync::Barrier::new(threads + 1));
    let per_thread = iters.div_ceil(threads as u64);
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            let (m, start_line) = (m.clone(), start_line.clone());
            green::Builder::new()
                .worker(worker_of(i))
                .spawn_on(rt.handle(), move || {
                    start_line.wait();
                    for _ in 0..per_thread {
                        *m.lock().unwrap() += 1;
                    }
                })
                .expect("spawn")
        })
        .collect();
    start_line.wait(); // from this OS thread: blocks until every green thread is at the line
    let start = Instant::now();
    handles.into_iter().for_each(|h| h.join().expect("green thread"));
    let elapsed = start.elapsed();
    assert_eq!(*m.lock().unwrap(), per_thread * threads as u64);
    // Report per increment asked for, correcting for the rounding up of `per_thread`.
    elapsed.mul_f64(iters as f64 / (per_thread * threads as u64) as f64)
}

fn green_uncontended(rt: &green::Runtime, iters: u64) -> Duration {
    rt.block_on(|| {
        let m = green::sync::Mutex::new(0u64);
        let start = Instant::now();
        for _ in 0..iters {
            *m.lock().unwrap() += 1;
        }
        let elapsed = start.elapsed();
        black_box(*m.lock().unwrap());
        elapsed
    })
}

fn std_increments(threads: usize, iters: u64) -> Duration {
    let m = Arc::new(std::sync::Mutex::new(0u64));
    let start_line = Arc::new(Barrier::new(threads + 1));
    let per_thread = iters.div_ceil(threads as u64);
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (m, start_line) = (m.clone(), start_line.clone());
            std::thread::spawn(move || {
                start_line.wait();
                for _ in 0..per_thread {
                    *m.lock().unwrap() += 1;
                }
            })
        })
        .collect();
    start_line.wait();
    let start = Instant::now();
    handles.into_iter().for_each(|h| h.join().expect("OS thread"));
    let elapsed = start.elapsed();
    assert_eq!(*m.lock().unwrap(), per_thread * threads as u64);
    elapsed.mul_f64(iters as f64 / (per_thread * threads as u64) as f64)
}

fn mutex(c: &mut Criterion) {
    let mut group = c.benchmark_group("mutex");
    let rt = green::Runtime::builder().workers(2).build().expect("runtime");
    group.bench_function("green/contended", |b| {
        b.iter_custom(|iters| green_increments(&rt, GREEN_THREADS, |i| i % 2, iters))
    });
    group.bench_function("green/one_worker", |b| {
        b.iter_custom(|iters| green_increments(&rt, GREEN_THREADS, |_| 0, iters))
    });
    group.bench_function("green/uncontended", |b| b.iter_custom(|iters| green_uncontended(&rt, iters)));
    drop(rt);
    group.bench_function("os/std_mutex", |b| b.iter_custom(|iters| std_increments(2, iters)));
    group.bench_function("os/std_mutex_8", |b| b.iter_custom(|iters| std_increments(GREEN_THREADS, iters)));
    group.finish();
}

criterion_group! {
    name = benches;
    // Short by default: the machine has two cores and is shared. Command-line flags override.
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = mutex
}
criterion_main!(benches);
