//! A timed wait that ended early leaves its timer entry in the heap until its deadline; that
//! entry wakes nobody, so it must not hold back the possible-deadlock report. Its own test
//! binary: it installs the process's logger.

use std::time::{Duration, Instant};

mod common;
use common::warnings;

#[test]
fn a_timer_left_by_a_wait_that_ended_early_does_not_delay_the_deadlock_report() {
    warnings::install();
    let rt = green::Runtime::builder().workers(1).shutdown_timeout(Duration::from_secs(5)).build().unwrap();
    let (tx, rx) = green::sync::mpmc::channel::<u32>();
    let early = tx.clone();
    rt.spawn(move || {
        // Answered after 20 ms of a 120 s wait: the entry at 120 s stays in the heap.
        let sender = green::spawn(move || {
            green::sleep(Duration::from_millis(20));
            early.send(1).unwrap();
        });
        assert_eq!(rx.recv_timeout(Duration::from_secs(120)), Ok(1));
        sender.join().unwrap();
        // Then a wait only the test's OS thread can end: the runtime is quiet.
        while rx.recv().is_ok() {}
    });
    let start = Instant::now();
    while warnings::count("possible deadlock") == 0 && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let waited = start.elapsed();
    drop(tx);
    drop(rt);
    assert_eq!(
        warnings::count("possible deadlock"),
        1,
        "no report within {waited:?} (the stale timer is due in 120 s): {:?}",
        *warnings::logged()
    );
}
