//! Per-spawn budget and time slice (`green::Builder::budget`, `green::Builder::time_slice`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

fn budget_checks(rt: &green::Runtime) -> u64 {
    rt.handle().metrics().workers.iter().map(|w| w.budget_checks).sum()
}

fn forced_yields(rt: &green::Runtime) -> u64 {
    rt.handle().metrics().workers.iter().map(|w| w.forced_yields).sum()
}

/// A green thread with its own budget looks at the clock once per that many ticks.
#[test]
fn a_spawn_budget_sets_how_often_the_clock_is_read() {
    const TICKS: u64 = 20_000;
    let rt = green::Runtime::builder().workers(1).build().unwrap();
    let ticker = || {
        for _ in 0..TICKS {
            green::tick();
        }
    };
    let before = budget_checks(&rt);
    rt.block_on(|| green::Builder::new().budget(100).spawn(ticker).unwrap().join().unwrap());
    let small = budget_checks(&rt) - before;
    let before = budget_checks(&rt);
    rt.block_on(|| green::spawn(ticker).join().unwrap());
    let default = budget_checks(&rt) - before;
    // 20,000 ticks: about 200 checks with a budget of 100, about 20 with the default 1,024.
    assert!(small >= TICKS / 100 - 5, "budget 100: {small} checks");
    assert!(default <= TICKS / 1024 + 5, "default budget: {default} checks");
}

/// Sums a range in chunks, as `#[preemptible]` does for a light loop.
#[green::preemptible]
fn chunked_sum(n: u64) -> u64 {
    let mut total = 0u64;
    for i in 0..n {
        total = total.wrapping_add(i);
    }
    total
}

/// A light loop counted in chunks follows its green thread's budget too: a chunk never runs
/// past the point where the budget runs out, so a small budget gets short chunks.
#[test]
fn a_spawn_budget_bounds_the_chunks_of_a_light_loop() {
    const ITEMS: u64 = 1 << 22;
    let rt = green::Runtime::builder().workers(1).build().unwrap();
    let sum = move || std::hint::black_box(chunked_sum(std::hint::black_box(ITEMS)));
    let before = budget_checks(&rt);
    let small_sum = rt.block_on(|| green::Builder::new().budget(16).spawn(sum).unwrap().join().unwrap());
    let small = budget_checks(&rt) - before;
    let before = budget_checks(&rt);
    let default_sum = rt.block_on(|| green::spawn(sum).join().unwrap());
    let default = budget_checks(&rt) - before;
    assert_eq!(small_sum, ITEMS * (ITEMS - 1) / 2);
    assert_eq!(default_sum, small_sum);
    // 64 items a tick: a budget of 16 pays for 1,024 items, the default 1,024 for 65,536.
    assert!(small >= ITEMS / 1024 * 9 / 10, "budget 16: {small} checks");
    assert!(default <= ITEMS / 65536 + 5, "default budget: {default} checks");
}

/// A light body over an iterator that is no slice or range: the work is in its `next`.
#[green::preemptible]
fn mapped_sum(n: u64) -> u64 {
    let mut total = 0u64;
    for x in (0..n).map(|i| std::hint::black_box(i * 3)) {
        total = total.wrapping_add(x);
    }
    total
}

/// A light loop over any other iterator spends a tick per item, charged by chunks: its `next`
/// is a call of unknown cost (it used to be a tick per 64 items, so a light body over
/// `lines.iter().map(parse)` looked at the clock once per 65,536 parses).
#[test]
fn a_light_loop_over_another_iterator_spends_a_tick_per_item() {
    const ITEMS: u64 = 1 << 16;
    let rt = green::Runtime::builder().workers(1).build().unwrap();
    let sum = move || mapped_sum(std::hint::black_box(ITEMS));
    for budget in [16, 1024] {
        let before = budget_checks(&rt);
        let total = rt.block_on(|| green::Builder::new().budget(budget).spawn(sum).unwrap().join().unwrap());
        let checks = budget_checks(&rt) - before;
        assert_eq!(total, 3 * ITEMS * (ITEMS - 1) / 2);
        let want = ITEMS / u64::from(budget);
        assert!(checks >= want * 9 / 10 && checks <= want + 5, "budget {budget}: {checks} checks, want {want}");
    }
}

/// Counts down in a `while` loop, whose back-edges `#[preemptible]` counts in batches.
#[green::preemptible]
fn count_down(mut n: u64) -> u64 {
    let mut steps = 0;
    while n > 0 {
        n = std::hint::black_box(n - 1);
        steps += 1;
    }
    steps
}

/// A loop's back-edges, counted in batches of 256, follow a budget smaller than a batch: a
/// budget of 16 looks at the clock every 16 iterations, as a tick each would (it used to be
/// every 256, whatever the budget).
#[test]
fn a_spawn_budget_smaller_than_a_batch_of_back_edges_is_kept() {
    const ITERATIONS: u64 = 1 << 16;
    let rt = green::Runtime::builder().workers(1).build().unwrap();
    let count = move || count_down(std::hint::black_box(ITERATIONS));
    for budget in [16, 100, 1000] {
        let before = budget_checks(&rt);
        let steps = rt.block_on(|| green::Builder::new().budget(budget).spawn(count).unwrap().join().unwrap());
        let checks = budget_checks(&rt) - before;
        assert_eq!(steps, ITERATIONS);
        let want = ITERATIONS / u64::from(budget);
        assert!(checks >= want * 9 / 10 && checks <= want + 5, "budget {budget}: {checks} checks, want {want}");
    }
}

/// A green thread with a time slice longer than its run never yields to a waiting neighbour;
/// with the default slice it does.
#[test]
fn a_spawn_time_slice_sets_when_a_busy_green_thread_yields() {
    let rt = green::Runtime::builder().workers(1).build().unwrap();
    let busy_for = |slice: Option<Duration>| {
        let before = forced_yields(&rt);
        rt.block_on(|| {
            let stop = Arc::new(AtomicBool::new(false));
            // The neighbour keeps someone waiting on the worker.
            let neighbour = {
                let stop = stop.clone();
                green::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        green::yield_now();
                    }
                })
            };
            let builder = match slice {
                Some(slice) => green::Builder::new().time_slice(slice),
                None => green::Builder::new(),
            };
            let busy = builder
                .spawn(|| {
                    let start = Instant::now();
                    while start.elapsed() < Duration::from_millis(20) {
                        green::tick();
                    }
                })
                .unwrap();
            busy.join().unwrap();
            stop.store(true, Ordering::Relaxed);
            neighbour.join().unwrap();
        });
        forced_yields(&rt) - before
    };
    assert_eq!(busy_for(Some(Duration::from_secs(3600))), 0, "a slice of an hour never ends in 20 ms");
    assert!(busy_for(None) >= 1, "the default slice (50 µs) ends many times in 20 ms");
}

/// A busy `#[preemptible]` green thread on a one-worker runtime lets a green thread spawned
/// from an OS thread (through the runtime's injector) run.
#[test]
fn a_busy_green_thread_yields_to_one_spawned_from_outside() {
    #[green::preemptible]
    fn spin_until(flag: &AtomicBool, limit: Duration) -> bool {
        let start = Instant::now();
        while !flag.load(Ordering::Acquire) {
            if start.elapsed() > limit {
                return false;
            }
        }
        true
    }
    let rt = green::Runtime::builder().workers(1).build().unwrap();
    let flag = Arc::new(AtomicBool::new(false));
    let handle = rt.handle().clone();
    let seen = rt.block_on(|| {
        let spawner = {
            let flag = flag.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(5));
                drop(handle.spawn(move || flag.store(true, Ordering::Release)));
            })
        };
        let seen = spin_until(&flag, Duration::from_secs(10));
        spawner.join().unwrap();
        seen
    });
    assert!(seen, "the green thread spawned from outside never ran while another was busy");
}

/// A `no_yield` section belongs to the green thread that opened it: while that green thread
/// is parked inside it, a busy neighbour on the same worker is still made to yield. (The
/// depth used to be the worker thread's, so the neighbour spun with no forced yield at all.)
#[test]
fn a_no_yield_section_parked_in_does_not_shield_the_neighbours() {
    let rt = green::Runtime::builder().workers(1).build().unwrap();
    let (neighbour_ran, holder_kept_its_section) = rt.block_on(|| {
        let holder = green::spawn(|| {
            let _section = green::no_yield();
            green::sleep(Duration::from_millis(20));
            // Back from the park, the section is still this green thread's: with a neighbour
            // ready, still no forced yield.
            let neighbour = green::spawn(|| ());
            let before = green::Handle::current().metrics().workers[0].forced_yields;
            let start = Instant::now();
            while start.elapsed() < Duration::from_millis(5) {
                green::tick();
            }
            let kept = green::Handle::current().metrics().workers[0].forced_yields == before;
            neighbour.join().unwrap();
            kept
        });
        green::sleep(Duration::from_millis(5)); // the holder parks inside its section
        let flag = Arc::new(AtomicBool::new(false));
        let setter = {
            let flag = flag.clone();
            green::spawn(move || flag.store(true, Ordering::Release))
        };
        let start = Instant::now();
        while !flag.load(Ordering::Acquire) && start.elapsed() < Duration::from_secs(5) {
            green::tick();
        }
        let ran = flag.load(Ordering::Acquire);
        setter.join().unwrap();
        (ran, holder.join().unwrap())
    });
    assert!(neighbour_ran, "the busy green thread was never made to yield to its ready neighbour");
    assert!(holder_kept_its_section, "the section was lost across the park");
}
