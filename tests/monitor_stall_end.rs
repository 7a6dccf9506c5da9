//! A stall that ends while the monitor is busy writing its report, just before every worker
//! goes to sleep, is counted to its end in the metrics. Its own test binary: it installs the
//! process's logger.

use std::time::{Duration, Instant};

mod common;
use common::slow_logger::SlowFirstReport;

/// How long the logger takes over the first stall report (a slow terminal, a full pipe).
const SLOW: Duration = Duration::from_millis(500);

/// How long the runtime stays idle after the stall.
const IDLE: Duration = Duration::from_secs(3);

/// Counts the stuck-worker reports, and takes `SLOW` over the first.
static LOGGER: SlowFirstReport = SlowFirstReport::new(SLOW);

/// The stall (300 ms) ends while the monitor writes its report, and the worker then sleeps:
/// the monitor's next look at the worker comes only once it is busy again, after `IDLE`. The
/// stall used to be counted up to that look, the idle spell included.
#[test]
fn a_stall_that_ends_during_its_report_is_not_counted_through_the_idle_spell() {
    LOGGER.install();
    let rt = green::Runtime::builder().workers(1).blocking_threshold(Some(Duration::from_millis(100))).build().unwrap();
    rt.block_on(|| std::thread::sleep(Duration::from_millis(300)));
    std::thread::sleep(IDLE);
    // Busy again, long enough for the monitor to look at the worker.
    rt.block_on(|| {
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(300) {
            green::yield_now();
        }
    });
    let metrics = rt.handle().metrics();
    drop(rt);
    assert!(LOGGER.reports() >= 1, "no stall report");
    let worker = &metrics.workers[0];
    assert_eq!(worker.stalls, 1, "{metrics}");
    // The stall, and the slow report the monitor was busy with when it ended; not the idle spell.
    assert!(worker.stalled >= Duration::from_millis(75) && worker.stalled < IDLE - SLOW, "{metrics}");
}
