//! Blocks shorter than the blocking threshold are not reported, but counted as slow slices.

use std::time::{Duration, Instant};

/// The threshold: the monitor looks every quarter of it (250 ms).
const THRESHOLD: Duration = Duration::from_millis(1000);

/// A 700 ms `std::thread::sleep` spans at least one of the monitor's looks and ends before the
/// threshold: no stall, a slow slice. Retried a few times, as a machine busy enough may space
/// the monitor's looks past the sleep.
#[test]
fn a_block_under_the_threshold_counts_as_a_slow_slice() {
    let rt = green::Runtime::builder().workers(1).blocking_threshold(THRESHOLD).build().unwrap();
    let start = Instant::now();
    for _ in 0..5 {
        rt.block_on(|| std::thread::sleep(Duration::from_millis(700)));
        // The monitor counts a slice when it sees it has ended: busy for a few looks.
        rt.block_on(|| {
            let start = Instant::now();
            while start.elapsed() < THRESHOLD {
                green::yield_now();
            }
        });
        if rt.handle().metrics().workers[0].slow_slices >= 1 {
            break;
        }
    }
    let metrics = rt.handle().metrics();
    drop(rt);
    assert!(metrics.workers[0].slow_slices >= 1, "after {:?}: {metrics}", start.elapsed());
    assert!(metrics.to_string().contains("slow slices (held a look, not the threshold): "), "{metrics}");
}

/// Green threads that only park and yield hold their worker for no look: no slow slice.
#[test]
fn parking_and_yielding_make_no_slow_slice() {
    let rt = green::Runtime::builder().workers(1).blocking_threshold(THRESHOLD).build().unwrap();
    rt.block_on(|| {
        let start = Instant::now();
        while start.elapsed() < THRESHOLD * 2 {
            green::sleep(Duration::from_millis(1));
            green::yield_now();
        }
    });
    let metrics = rt.handle().metrics();
    drop(rt);
    assert_eq!(metrics.workers[0].slow_slices, 0, "{metrics}");
    assert!(!metrics.to_string().contains("slow slices"), "{metrics}");
}
