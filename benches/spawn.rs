//! Spawn and join: green threads on 1 and 2 workers, against `std::thread`.
//!
//! # What it measures
//!
//! - `green/1_worker`, `green/2_workers`: from inside a green thread, spawn a batch of
//!   [`GREEN_BATCH`] green threads that each return their index, join them all in order, check
//!   the sum, repeat. One iteration is one green thread (its spawn, start, stack take and give
//!   back, completion and join), so criterion reports time per green thread. The stacks come
//!   from the worker's pool after the first batch: this is the warm path a server that spawns a
//!   green thread per request lives on.
//! - `os/std_thread`: the same with `std::thread::spawn` and `join`, in batches of
//!   [`OS_BATCH`], reported per thread: what a user would pick instead.
//!
//! On 2 workers, the second worker steals unstarted green threads from the spawner's deque, so
//! that case also prices the steals and the cross-worker wakeups of joins.
//!
//! # Why
//!
//! Cheap spawns are the point of green threads: a green thread per connection or per request
//! must cost about what a heap allocation and a queue push cost. Go's goroutines are measured
//! at 88-220 ns and tokio's tasks at about 170 ns; the target here is 100 ns on 1 and 2 workers.
//!
//! Run with `cargo bench --bench spawn -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};

/// Green threads spawned before they are joined.
const GREEN_BATCH: u64 = 1000;

/// OS threads spawned before they are joined: fewer, since each costs tens of microseconds.
const OS_BATCH: u64 = 100;

/// Runs `iters` spawn+join pairs of green threads in batches of [`GREEN_BATCH`] and returns the
/// time they took. Must run on a green thread. `handles` is reused so that the timing holds no
/// allocation of the vector.
fn green_spawn_join(iters: u64, handles: &mut Vec<green::JoinHandle<u64>>) -> Duration {
    let start = Instant::now();
    let mut left = iters;
    while left > 0 {
        let n = left.min(GREEN_BATCH);
        handles.extend((0..n).map(|i| green::spawn(move || black_box(i))));
        let mut sum = 0;
        for handle in handles.drain(..) {
            sum += handle.join().expect("green thread");
        }
        assert_eq!(sum, n * (n - 1) / 2);
        left -= n;
    }
    start.elapsed()
}

/// As [`green_spawn_join`] with OS threads, in batches of [`OS_BATCH`].
fn os_spawn_join(iters: u64) -> Duration {
    let mut handles = Vec::with_capacity(OS_BATCH as usize);
    let start = Instant::now();
    let mut left = iters;
    while left > 0 {
        let n = left.min(OS_BATCH);
        handles.extend((0..n).map(|i| std::thread::spawn(move || black_box(i))));
        let mut sum = 0;
        for handle in handles.drain(..) {
            sum += handle.join().expect("OS thread");
        }
        assert_eq!(sum, n * (n - 1) / 2);
        left -= n;
    }
    start.elapsed()
}

fn spawn(c: &mut Criterion) {
    let mut group = c.benchmark_group("spawn");
    for workers in [1, 2] {
        let rt = green::Runtime::builder().workers(workers).build().expect("runtime");
        let name = if workers == 1 { "green/1_worker".to_owned() } else { format!("green/{workers}_workers") };
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(|| {
                    let mut handles = Vec::with_capacity(GREEN_BATCH as usize);
                    green_spawn_join(iters, &mut handles)
                })
            })
        });
    }
    group.bench_function("os/std_thread", |b| b.iter_custom(os_spawn_join));
    group.finish();
}

criterion_group! {
    name = benches;
    // Short by default: the machine has two cores and is shared. Command-line flags override.
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = spawn
}
criterion_main!(benches);
