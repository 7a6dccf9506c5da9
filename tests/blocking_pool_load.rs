//! The blocking pool's load in `Handle::metrics` and `Handle::dump`: a saturated pool is told
//! from slow jobs.

use std::sync::mpsc;
use std::time::Duration;

mod common;

/// One slow job on a pool of one thread, two more behind it: the metrics and the dump say one
/// job runs, two are queued, and that the pool is saturated; once the slow job ends, nothing is
/// queued.
#[test]
fn a_saturated_pool_shows_its_running_and_queued_jobs() {
    common::bounded(Duration::from_secs(60), || {
        let rt = green::Runtime::builder().workers(1).max_blocking_threads(1).build().unwrap();
        rt.block_on(|| {
            let (release, released) = mpsc::channel::<()>();
            let slow = green::spawn_blocking(move || released.recv().unwrap());
            let queued: Vec<_> = (0..2).map(|i| green::spawn_blocking(move || i)).collect();
            let handle = green::Handle::current();
            let saturated = |m: &green::runtime::Metrics| m.blocking_running == 1 && m.blocking_queued == 2;
            let start = std::time::Instant::now();
            while !saturated(&handle.metrics()) && start.elapsed() < Duration::from_secs(10) {
                green::sleep(Duration::from_millis(1));
            }
            let m = handle.metrics();
            assert!(saturated(&m), "{m:?}");
            assert_eq!((m.blocking_threads, m.max_blocking_threads), (1, 1), "{m:?}");
            let printed = m.to_string();
            assert!(
                printed
                    .contains("blocking pool: 1 thread(s) of at most 1, 1 running a job, 2 job(s) queued (saturated"),
                "{printed}"
            );
            let dump = handle.dump().to_string();
            assert!(
                dump.contains("blocking pool: 1 thread(s) of at most 1, 1 running a job, 2 job(s) queued"),
                "{dump}"
            );
            release.send(()).unwrap();
            slow.join().unwrap();
            assert_eq!(queued.into_iter().map(|j| j.join().unwrap()).sum::<i32>(), 1);
            // A pool thread counts itself idle a moment after its job's result went out.
            let idle = |m: &green::runtime::Metrics| (m.blocking_running, m.blocking_queued) == (0, 0);
            let start = std::time::Instant::now();
            while !idle(&handle.metrics()) && start.elapsed() < Duration::from_secs(10) {
                green::sleep(Duration::from_millis(1));
            }
            let m = handle.metrics();
            assert_eq!((m.blocking_running, m.blocking_queued), (0, 0), "{m:?}");
            assert!(!m.to_string().contains("saturated"), "{m}");
        });
    });
}
