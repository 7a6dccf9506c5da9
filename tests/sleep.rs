//! Sleeping: never early, in deadline order, and without holding up the worker.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Generous: the machine is shared and noisy; the point is "not stuck".
const LATE_LIMIT: Duration = Duration::from_secs(5);

#[test]
fn sleep_is_never_early() {
    green::run(|| {
        for ms in [0u64, 1, 5, 20] {
            let d = Duration::from_millis(ms);
            let start = Instant::now();
            green::sleep(d);
            let took = start.elapsed();
            assert!(took >= d, "slept {took:?} for {d:?}");
            assert!(took < d + LATE_LIMIT, "slept {took:?} for {d:?}");
        }
    });
}

#[test]
fn sleepers_wake_in_deadline_order() {
    let order = Arc::new(Mutex::new(Vec::new()));
    let seen = order.clone();
    let rt = green::Runtime::builder().workers(1).build().unwrap();
    rt.block_on(move || {
        // One base for all: deadlines taken as each green thread starts would be ordered by
        // when it got to run, which a loaded machine delays.
        let base = Instant::now();
        let handles: Vec<_> = [50u64, 10, 40, 20, 30]
            .into_iter()
            .map(|ms| {
                let order = seen.clone();
                green::spawn(move || {
                    let deadline = base + Duration::from_millis(ms);
                    green::sleep_until(deadline);
                    assert!(Instant::now() >= deadline);
                    order.lock().unwrap().push(ms);
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    });
    assert_eq!(*order.lock().unwrap(), vec![10, 20, 30, 40, 50]);
}

#[test]
fn many_sleepers_share_one_worker() {
    // 1,000 green threads sleeping 50 ms each on one worker finish in about 50 ms, not 50 s.
    let rt = green::Runtime::builder().workers(1).build().unwrap();
    let start = Instant::now();
    rt.block_on(|| {
        let handles: Vec<_> = (0..1000).map(|_| green::spawn(|| green::sleep(Duration::from_millis(50)))).collect();
        for h in handles {
            h.join().unwrap();
        }
    });
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(50));
    assert!(took < LATE_LIMIT, "took {took:?}");
}

#[test]
fn sleep_on_an_os_thread_blocks_it() {
    let start = Instant::now();
    green::sleep(Duration::from_millis(5));
    assert!(start.elapsed() >= Duration::from_millis(5));
}

#[test]
fn park_timeout_returns_after_the_timeout() {
    green::run(|| {
        let start = Instant::now();
        green::park_timeout(Duration::from_millis(10));
        // Nobody unparks, and green's park does not wake spuriously: never early.
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(10), "returned after {took:?}");
        assert!(took < LATE_LIMIT, "took {took:?}");
    });
}
