//! yield_now shares a worker fairly, and nothing queued starves behind green threads that only
//! yield.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

mod common;

/// How long a test may take before it counts as hung (a lost wakeup), instead of hanging the run.
const LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

#[test]
fn yielding_green_threads_take_turns() {
    common::bounded(LIMIT, || {
        // Three green threads on one worker, each yielding after every step. Once all three have
        // started, they step in rotation: any three consecutive steps are by three different ones.
        let rt = green::Runtime::builder().workers(1).build().unwrap();
        let steps = Arc::new(std::sync::Mutex::new(Vec::new()));
        rt.block_on(|| {
            let handles: Vec<_> = (0..3)
                .map(|me| {
                    let steps = steps.clone();
                    green::spawn(move || {
                        for _ in 0..500 {
                            steps.lock().unwrap().push(me);
                            green::yield_now();
                        }
                    })
                })
                .collect();
            for h in handles {
                h.join().unwrap();
            }
        });
        let steps = steps.lock().unwrap();
        let all_started = (0..3).map(|me| steps.iter().position(|&s| s == me).unwrap()).max().unwrap();
        let first_done =
            steps.len() - (0..3).map(|me| steps.iter().rev().position(|&s| s == me).unwrap()).max().unwrap();
        assert!(first_done > all_started + 100, "too few steps together: {all_started}..{first_done}");
        for window in steps[all_started..first_done].windows(3) {
            assert!(
                window[0] != window[1] && window[1] != window[2] && window[0] != window[2],
                "out of turn: {window:?}"
            );
        }
    });
}

#[test]
fn children_spawned_behind_two_yield_loops_still_run() {
    common::bounded(LIMIT, || {
        // One worker: two green threads yield to each other until the children have all run. If the
        // worker only ever served its run queue, the children (queued unstarted) would never start.
        let rt = green::Runtime::builder().workers(1).build().unwrap();
        let ran = Arc::new(AtomicUsize::new(0));
        rt.block_on(|| {
            let stop = Arc::new(AtomicBool::new(false));
            let loops: Vec<_> = (0..2)
                .map(|_| {
                    let stop = stop.clone();
                    green::spawn(move || {
                        while !stop.load(Ordering::Acquire) {
                            green::yield_now();
                        }
                    })
                })
                .collect();
            green::yield_now(); // let both loops start
            let children: Vec<_> = (0..100)
                .map(|_| {
                    let ran = ran.clone();
                    green::spawn(move || {
                        ran.fetch_add(1, Ordering::Relaxed);
                    })
                })
                .collect();
            for child in children {
                child.join().unwrap();
            }
            stop.store(true, Ordering::Release);
            for l in loops {
                l.join().unwrap();
            }
        });
        assert_eq!(ran.load(Ordering::Relaxed), 100);
    });
}

#[test]
fn children_spawned_by_a_yield_loop_run_on_a_two_worker_runtime() {
    common::bounded(LIMIT, || {
        let rt = green::Runtime::builder().workers(2).build().unwrap();
        let ran = Arc::new(AtomicUsize::new(0));
        let r = ran.clone();
        rt.block_on(move || {
            let stop = Arc::new(AtomicBool::new(false));
            let s = stop.clone();
            let r2 = r.clone();
            let spinner = green::Builder::new()
                .worker(0)
                .spawn(move || {
                    let children: Vec<_> = (0..100)
                        .map(|_| {
                            let ran = r2.clone();
                            green::spawn(move || ran.fetch_add(1, Ordering::Relaxed))
                        })
                        .collect();
                    while !s.load(Ordering::Acquire) {
                        green::yield_now();
                    }
                    for c in children {
                        c.join().unwrap();
                    }
                })
                .unwrap();
            while r.load(Ordering::Relaxed) < 100 {
                green::yield_now();
            }
            stop.store(true, Ordering::Release);
            spinner.join().unwrap();
        });
        assert_eq!(ran.load(Ordering::Relaxed), 100);
    });
}

/// On one worker, with a sleeper parked for 1 ms: `compute` runs until the sleeper's flag is
/// set (which needs the sleeper to get a turn) or 10 s pass; the flag must be set.
fn lets_a_sleeper_run(compute: impl FnOnce(&AtomicBool, std::time::Instant) + Send + 'static) {
    common::bounded(LIMIT, || {
        let rt = green::Runtime::builder().workers(1).build().unwrap();
        rt.block_on(|| {
            let woke = Arc::new(AtomicBool::new(false));
            let w = woke.clone();
            let sleeper = green::spawn(move || {
                green::sleep(std::time::Duration::from_millis(1));
                w.store(true, Ordering::Release);
            });
            green::yield_now(); // the sleeper starts and parks
            compute(&woke, std::time::Instant::now());
            assert!(woke.load(Ordering::Acquire), "the sleeper never got a turn");
            sleeper.join().unwrap();
        });
    });
}

/// A green thread that computes, calling `tick`, lets a sleeping one wake and finish while it is
/// still computing.
#[test]
fn a_cpu_bound_green_thread_that_ticks_lets_a_sleeper_run() {
    lets_a_sleeper_run(|woke, start| {
        let mut x = 0u64;
        while !woke.load(Ordering::Acquire) && start.elapsed() < std::time::Duration::from_secs(10) {
            green::tick();
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
    });
}

/// `ticking()` shares the worker as `tick` does.
#[test]
fn a_ticking_iterator_lets_a_sleeper_run() {
    use green::TickingExt;
    lets_a_sleeper_run(|woke, start| {
        // An endless iterator, ended only by the sleeper's flag (or the time limit).
        let steps = (0u64..)
            .ticking()
            .take_while(|_| !woke.load(Ordering::Acquire) && start.elapsed() < std::time::Duration::from_secs(10))
            .count();
        std::hint::black_box(steps);
    });
}

/// A forced yield for a due timer gives the worker to the green thread that timer wakes at
/// once, not after the busy one has used up dozens more slices. With a 2 ms slice, a 5 ms sleep
/// beside a green thread that only ticks ends within a few slices of its deadline. The slices
/// are counted, not timed: the busy one is forced to yield only while someone waits (here, past
/// the deadline), once per slice, however long the OS keeps the worker off its CPU meanwhile.
#[test]
fn a_forced_yield_for_a_due_timer_lets_its_sleeper_run_within_a_slice_or_two() {
    use std::time::{Duration, Instant};
    const SLICE: Duration = Duration::from_millis(2);
    common::bounded(LIMIT, || {
        let rt = green::Runtime::builder().workers(1).time_slice(SLICE).blocking_threshold(None).build().unwrap();
        let forced_yields = || green::Handle::current().metrics().workers[0].forced_yields;
        let (late, forced) = rt.block_on(|| {
            let stop = Arc::new(AtomicBool::new(false));
            let busy = {
                let stop = stop.clone();
                green::spawn(move || {
                    let start = Instant::now();
                    let mut x = 0u64;
                    while !stop.load(Ordering::Acquire) && start.elapsed() < Duration::from_secs(10) {
                        green::tick();
                        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                    }
                    std::hint::black_box(x);
                })
            };
            green::yield_now(); // the busy one starts
            let before = forced_yields();
            let asked = Instant::now() + Duration::from_millis(5);
            green::sleep_until(asked);
            let forced = forced_yields() - before;
            let late = asked.elapsed();
            stop.store(true, Ordering::Release);
            busy.join().unwrap();
            (late, forced)
        });
        // One slice, and the budget's granularity, is what it should take; 61 turns of 2 ms
        // (the worker's forced look at its timers), each a forced yield, is what it took.
        assert!(
            forced <= 5,
            "the busy loop was made to yield {forced} times before the sleeper ran, {late:?} after its deadline"
        );
    });
}
