//! A stall that ends while the monitor is busy writing its report, just before every worker
//! goes to sleep, is counted to its end in the metrics. Its own test binary: it installs the
//! process's logger.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long the logger takes over the first stall report (a slow terminal, a full pipe).
const SLOW: Duration = Duration::from_millis(500);

/// How long the runtime stays idle after the stall.
const IDLE: Duration = Duration::from_secs(3);

static REPORTS: AtomicUsize = AtomicUsize::new(0);

/// Counts the stuck-worker reports, and takes `SLOW` over the first.
struct SlowLogger;

impl log::Log for SlowLogger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        if record.args().to_string().contains("without reaching a scheduling point")
            && REPORTS.fetch_add(1, Ordering::SeqCst) == 0
        {
            std::thread::sleep(SLOW);
        }
    }

    fn flush(&self) {}
}

/// The stall (300 ms) ends while the monitor writes its report, and the worker then sleeps:
/// the monitor's next look at the worker comes only once it is busy again, after `IDLE`. The
/// stall used to be counted up to that look, the idle spell included.
#[test]
fn a_stall_that_ends_during_its_report_is_not_counted_through_the_idle_spell() {
    log::set_logger(&SlowLogger).unwrap();
    log::set_max_level(log::LevelFilter::Warn);
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
    assert!(REPORTS.load(Ordering::SeqCst) >= 1, "no stall report");
    let worker = &metrics.workers[0];
    assert_eq!(worker.stalls, 1, "{metrics}");
    // The stall, and the slow report the monitor was busy with when it ended; not the idle spell.
    assert!(worker.stalled >= Duration::from_millis(75) && worker.stalled < IDLE - SLOW, "{metrics}");
}
