//! A `log` logger that keeps the warnings, for tests of what the runtime reports. A test
//! binary has one logger, which all its tests share: each tells its own warnings apart (by a
//! green thread's name, say).

use std::sync::{Mutex, MutexGuard};

/// Collects the messages of warnings and errors.
struct Capture(Mutex<Vec<String>>);

impl log::Log for Capture {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Warn
    }
    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            self.0.lock().unwrap().push(record.args().to_string());
        }
    }
    fn flush(&self) {}
}

static CAPTURE: Capture = Capture(Mutex::new(Vec::new()));

/// Makes the capture the process's logger, at `Warn`; later calls find it there.
pub fn install() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        log::set_logger(&CAPTURE).unwrap();
        log::set_max_level(log::LevelFilter::Warn);
    });
}

/// The warnings so far, oldest first.
pub fn logged() -> MutexGuard<'static, Vec<String>> {
    CAPTURE.0.lock().unwrap()
}

/// How many warnings so far contain `needle`.
pub fn count(needle: &str) -> usize {
    logged().iter().filter(|l| l.contains(needle)).count()
}
