//! A green thread that ticks inside a `no_yield` section while others wait on its worker holds
//! that worker as surely as a loop without ticks: the monitor reports it, and says why. Alone on
//! its worker, it holds up nobody and is not reported. Its own test binary: it installs the
//! process's logger.

mod common;

use std::time::{Duration, Instant};

use common::warnings;

/// Ticks inside a `no_yield` section for `busy`, on a one-worker runtime with a 20 ms
/// threshold, a sleeper beside it if `neighbour`. Returns the worker's reported stalls.
fn tick_without_yielding(name: &str, busy: Duration, neighbour: bool) -> u64 {
    let rt = green::Runtime::builder().workers(1).blocking_threshold(Duration::from_millis(20)).build().unwrap();
    let stalls = rt.block_on(|| {
        let ticker = green::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let sleeper = neighbour.then(|| green::spawn(|| green::sleep(Duration::from_millis(1))));
                let no_yield = green::no_yield();
                let start = Instant::now();
                while start.elapsed() < busy {
                    green::tick();
                }
                drop(no_yield);
                if let Some(sleeper) = sleeper {
                    sleeper.join().unwrap();
                }
            })
            .unwrap();
        ticker.join().unwrap();
        green::Handle::current().metrics().workers[0].stalls
    });
    drop(rt);
    stalls
}

#[test]
fn a_long_no_yield_section_with_a_neighbour_waiting_is_reported() {
    warnings::install();
    let stalls = tick_without_yielding("held-in-no-yield", Duration::from_millis(300), true);
    // At least one: a loaded machine may split the 300 ms into two stalls.
    assert!(stalls >= 1, "the worker held inside no_yield for 300 ms was not reported");
    let logs = warnings::logged();
    let report = logs.iter().find(|l| l.contains("held-in-no-yield")).expect("no report names the green thread");
    assert!(report.contains("inside a green::no_yield section"), "the report does not say why: {report}");
}

#[test]
fn a_long_no_yield_section_alone_is_not_reported() {
    warnings::install();
    let stalls = tick_without_yielding("alone-in-no-yield", Duration::from_millis(150), false);
    assert_eq!(stalls, 0, "a green thread alone on its worker, ticking inside no_yield, was reported");
    assert_eq!(warnings::count("alone-in-no-yield"), 0);
}
