//! `Handle::metrics`: the idle time a worker publishes.

use std::time::{Duration, Instant};

/// Runs `f` on a one-worker runtime; returns how much the worker's idle time grew meanwhile,
/// and how long `f` took.
fn idle_during(f: impl FnOnce() + Send + 'static) -> (Duration, Duration) {
    let rt = green::Runtime::builder().workers(1).build().unwrap();
    rt.block_on(|| {
        let idle = || green::Handle::current().metrics().workers[0].idle;
        let before = idle();
        let start = Instant::now();
        f();
        let took = start.elapsed();
        let grew = idle() - before;
        assert!(grew <= took, "idle grew by {grew:?}, more than the {took:?} that passed");
        (grew, took)
    })
}

/// A worker whose only green thread sleeps has nothing to run for the whole sleep: the idle
/// time grows by most of it (the bound leaves room for the worker's thread being descheduled
/// while it runs the green thread up to its park and back).
#[test]
fn a_sleeping_runtime_counts_the_sleep_as_idle() {
    let (grew, took) = idle_during(|| green::sleep(Duration::from_millis(100)));
    assert!(grew >= Duration::from_millis(50), "idle grew by {grew:?} over a sleep of {took:?}");
}

/// Sleeps shorter than the worker's spin end while it spins, without a sleep in the poller:
/// that spinning is idle time too.
#[test]
fn spinning_between_short_sleeps_counts_as_idle() {
    let (grew, took) = idle_during(|| {
        for _ in 0..1000 {
            green::sleep(Duration::from_micros(10));
        }
    });
    // Each sleep lasts 10 µs at least, nearly all of it with nothing to run.
    assert!(grew >= Duration::from_millis(2), "idle grew by {grew:?} over 1,000 sleeps of 10 µs ({took:?})");
}

/// Read from outside the runtime while its worker sleeps, the idle time grows with the sleep:
/// the stretch in progress counts, not only the stretches that ended.
#[test]
fn idle_time_read_from_another_thread_counts_the_stretch_in_progress() {
    let rt = green::Runtime::builder().workers(1).build().unwrap();
    let sleeper = rt.spawn(|| green::sleep(Duration::from_millis(400)));
    let idle = || rt.handle().metrics().workers[0].idle;
    std::thread::sleep(Duration::from_millis(50)); // the worker is asleep by now
    // The clock is read outside both readings, so the time between them is within `took`.
    let start = Instant::now();
    let before = idle();
    std::thread::sleep(Duration::from_millis(200));
    let grew = idle() - before;
    let took = start.elapsed();
    sleeper.join().unwrap();
    // Whether or not the sleeper had started by the first reading, the worker had nothing to
    // run for nearly all of the 200 ms.
    assert!(grew >= Duration::from_millis(100), "idle grew by {grew:?} in {took:?} while the worker slept");
    assert!(grew <= took, "idle grew by {grew:?}, more than the {took:?} that passed");
}

/// A green thread that keeps running (yielding, with nothing else to run) leaves its worker no
/// idle time.
#[test]
fn a_busy_runtime_counts_no_idle_time() {
    let (grew, took) = idle_during(|| {
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(100) {
            green::yield_now();
        }
    });
    assert!(grew < Duration::from_millis(20), "idle grew by {grew:?} while a green thread ran for {took:?}");
}

/// Metrics print the idle time too.
#[test]
fn the_printed_metrics_show_the_idle_time() {
    let rt = green::Runtime::builder().workers(1).build().unwrap();
    let text = rt.block_on(|| {
        green::sleep(Duration::from_millis(5));
        green::Handle::current().metrics().to_string()
    });
    assert!(text.contains(" s idle,"), "{text}");
    // Parks by reason, those with any only, on a line of their own.
    let parks = text.lines().find(|l| l.trim_start().starts_with("parks:")).unwrap_or_else(|| panic!("{text}"));
    assert!(parks.contains("sleep "), "{text}");
    assert!(!parks.contains(" 0"), "a reason without parks is shown: {text}");
}

/// Green threads parked right now, by reason, on two workers: each counts from its park until
/// it runs again, and the counts go back to zero once they are gone.
#[test]
fn metrics_count_the_green_threads_parked_now_by_reason() {
    use std::io::Read;
    let rt = green::Runtime::builder().workers(2).build().unwrap();
    rt.block_on(|| {
        let (tx, rx) = green::sync::mpmc::channel::<()>();
        let (ours, theirs) = green::net::unix::UnixStream::pair().unwrap();
        let theirs = std::sync::Arc::new(theirs);
        let mut waiters = Vec::new();
        for i in 0..30 {
            let on = green::Builder::new().worker(i % 2);
            waiters.push(
                match i % 3 {
                    0 => on.spawn(|| green::sleep(Duration::from_secs(60))),
                    1 => {
                        let rx = rx.clone();
                        on.spawn(move || {
                            let _ = rx.recv();
                        })
                    }
                    _ => {
                        let theirs = theirs.clone();
                        on.spawn(move || drop((&*theirs).read(&mut [0; 1])))
                    }
                }
                .unwrap(),
            );
        }
        let parked = |reason| green::Handle::current().metrics().parked(reason);
        let start = Instant::now();
        while (parked("sleep"), parked("sync"), parked("io")) != (10, 10, 10) {
            assert!(start.elapsed() < Duration::from_secs(10), "{}", green::Handle::current().metrics());
            green::sleep(Duration::from_millis(5));
        }
        let text = green::Handle::current().metrics().to_string();
        assert!(text.contains("; parked now: sleep 5 sync 5 io 5"), "{text}");
        for waiter in &waiters {
            waiter.cancel();
        }
        for waiter in waiters {
            assert!(waiter.join().is_err());
        }
        // The test's own green thread is the only one left, and it runs.
        let m = green::Handle::current().metrics();
        assert!(m.workers.iter().flat_map(|w| &w.parked).all(|(_, n)| *n == 0), "{m}");
        drop((tx, ours));
    });
}
