//! A logger that counts the monitor's stuck-worker reports and takes a while over the first, as
//! a slow terminal or a full pipe would. It becomes the process's logger: one test binary each.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

pub struct SlowFirstReport {
    delay: Duration,
    reports: AtomicUsize,
}

impl SlowFirstReport {
    /// Takes `delay` over the first report.
    pub const fn new(delay: Duration) -> SlowFirstReport {
        SlowFirstReport { delay, reports: AtomicUsize::new(0) }
    }

    /// Installs it as the process's logger, hearing warnings.
    pub fn install(&'static self) {
        log::set_logger(self).unwrap();
        log::set_max_level(log::LevelFilter::Warn);
    }

    /// Stuck-worker reports so far.
    pub fn reports(&self) -> usize {
        self.reports.load(Ordering::SeqCst)
    }
}

impl log::Log for SlowFirstReport {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        if record.args().to_string().contains("without reaching a scheduling point")
            && self.reports.fetch_add(1, Ordering::SeqCst) == 0
        {
            std::thread::sleep(self.delay);
        }
    }

    fn flush(&self) {}
}
