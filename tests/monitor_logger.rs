//! A logger that blocks does not hold up a runtime's drop: the monitor, which calls it, is left
//! to finish on its own after a bounded wait. Its own test binary: it installs the process's
//! logger.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long the logger blocks on the monitor's report.
const STUCK: Duration = Duration::from_secs(4);

static BLOCKED: AtomicBool = AtomicBool::new(false);

struct BlockingLogger;

impl log::Log for BlockingLogger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        if record.args().to_string().contains("without reaching a scheduling point")
            && !BLOCKED.swap(true, Ordering::SeqCst)
        {
            std::thread::sleep(STUCK);
        }
    }

    fn flush(&self) {}
}

#[test]
fn a_logger_that_blocks_does_not_hold_up_the_drop() {
    log::set_logger(&BlockingLogger).unwrap();
    log::set_max_level(log::LevelFilter::Warn);
    let rt = green::Runtime::builder().workers(1).blocking_threshold(Some(Duration::from_millis(50))).build().unwrap();
    rt.block_on(|| std::thread::sleep(Duration::from_millis(300))); // reported as blocking
    let deadline = Instant::now() + Duration::from_secs(10);
    while !BLOCKED.load(Ordering::SeqCst) {
        assert!(Instant::now() < deadline, "the monitor never reported the blocking sleep");
        std::thread::sleep(Duration::from_millis(5));
    }
    let start = Instant::now();
    drop(rt);
    let took = start.elapsed();
    // Let the monitor's thread end (the logger returns after STUCK) before the test does.
    std::thread::sleep(STUCK.saturating_sub(took) + Duration::from_millis(200));
    assert!(took < Duration::from_secs(3), "the drop waited {took:?} for a logger blocked {STUCK:?}");
}
