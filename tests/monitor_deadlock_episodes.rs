//! The possible-deadlock report comes once per episode, and a new episode, after the green
//! threads made progress, is reported again, even when the monitor never saw a worker awake
//! in between. Its own test binary: it installs the process's logger.

use std::time::{Duration, Instant};

mod common;
use common::warnings;

fn reports() -> usize {
    warnings::count("possible deadlock")
}

fn wait_for_reports(n: usize, limit: Duration) -> bool {
    let start = Instant::now();
    while reports() < n {
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

/// A green thread waits for messages that only an OS thread sends: each wait is a quiet
/// episode. One message between two of them is progress: the second episode is reported too.
#[test]
fn a_new_deadlock_episode_after_progress_is_reported_again() {
    warnings::install();
    let rt = green::Runtime::builder().workers(1).shutdown_timeout(Duration::from_secs(5)).build().unwrap();
    let (tx, rx) = green::sync::mpmc::channel::<u32>();
    rt.spawn(move || while rx.recv().is_ok() {});
    assert!(wait_for_reports(1, Duration::from_secs(10)), "the first episode was not reported");
    // Let the report's dump settle, then one message: the green thread runs, and waits again.
    std::thread::sleep(Duration::from_millis(300));
    tx.send(1).unwrap();
    // Generous: the monitor's longest nap (8 thresholds) plus a quiet period, twice over.
    let second = wait_for_reports(2, Duration::from_secs(20));
    // Each report doubles the quiet the next needs (now 4 s): messages 1.5 s apart make quiet
    // spells that are not reported again.
    if second {
        for n in 2..6 {
            std::thread::sleep(Duration::from_millis(1500));
            tx.send(n).unwrap();
        }
    }
    drop(tx);
    // The metrics count what the log says.
    let counted = rt.handle().metrics().possible_deadlocks;
    drop(rt);
    assert!(second, "the second episode was never reported: {:?}", *warnings::logged());
    assert_eq!(reports(), 2, "spells shorter than the doubled quiet were reported");
    assert_eq!(counted, 2, "Metrics::possible_deadlocks");
}
