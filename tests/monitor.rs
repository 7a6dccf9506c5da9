//! The monitor names a green thread that blocks its worker, and reports its recovery.

use std::sync::Mutex;
use std::time::Duration;

/// Collects warnings from the `log` facade.
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

#[test]
fn a_green_thread_calling_thread_sleep_is_named() {
    log::set_logger(&CAPTURE).unwrap();
    log::set_max_level(log::LevelFilter::Warn);
    let rt = green::Runtime::builder().workers(1).blocking_threshold(Duration::from_millis(100)).build().unwrap();
    rt.block_on(|| {
        let queued: Vec<_> = (0..3).map(|_| green::spawn(|| ())).collect();
        let culprit =
            green::Builder::new().name("sleepy").spawn(|| std::thread::sleep(Duration::from_millis(300))).unwrap();
        culprit.join().unwrap();
        for q in queued {
            q.join().unwrap();
        }
    });
    drop(rt);
    let logs = CAPTURE.0.lock().unwrap();
    let report = logs.iter().find(|l| l.contains("\"sleepy\"")).unwrap_or_else(|| panic!("no report in {logs:?}"));
    assert!(report.contains("tests/monitor.rs"), "spawn site missing: {report}");
    assert!(report.contains("ms"), "{report}");
    assert!(report.contains("blocked in a system call"), "{report}");
    assert!(logs.iter().any(|l| l.contains("making progress again")), "no recovery report in {logs:?}");
}
