//! A join that finds its green thread cancelled by the runtime's shutdown unwinds the joiner as
//! cancelled, as the shutdown is about to do anyway, instead of returning that cancellation as
//! an error: `child.join().unwrap()` in a green thread (and `spawn_blocking(f).join().unwrap()`,
//! whose job stands behind a green thread of its own) used to panic in routine shutdowns, in
//! about one runtime drop in two with a few such joiners under way.

use std::sync::mpsc;
use std::time::Duration;

mod common;

const LIMIT: Duration = Duration::from_secs(60);
const ROUNDS: usize = 10;

/// The joiner was parked in `join` (or about to park) while the shutdown cancelled the child on
/// another worker, before its own worker came round to cancel the joiner.
#[test]
fn a_join_of_a_child_the_shutdown_cancelled_unwinds_the_joiner() {
    common::bounded(LIMIT, || {
        let (mut reached, mut returned) = (0, Vec::new());
        for _ in 0..ROUNDS {
            let rt = green::Runtime::builder().workers(2).build().unwrap();
            let (running_tx, running_rx) = mpsc::channel();
            let (seen_tx, seen_rx) = mpsc::channel();
            let joiner = green::Builder::new().worker(0).spawn_on(rt.handle(), move || {
                let child = green::Builder::new().worker(1).spawn(|| green::sleep(Duration::from_secs(3600))).unwrap();
                running_tx.send(()).unwrap();
                // Keeps worker 0, without parking, until worker 1 has cancelled the child (or
                // dropped it unstarted): the joiner is not cancelled yet.
                while !child.is_finished() {
                    std::thread::sleep(Duration::from_micros(200));
                }
                seen_tx.send("reached".to_string()).unwrap();
                let got = child.join();
                seen_tx.send(format!("{got:?}")).unwrap();
            });
            drop(joiner.unwrap());
            running_rx.recv().unwrap();
            drop(rt);
            let seen: Vec<String> = seen_rx.try_iter().collect();
            reached += usize::from(seen.first().is_some_and(|s| s == "reached"));
            returned.extend(seen.into_iter().skip(1));
        }
        assert!(returned.is_empty(), "joins of children the shutdown cancelled returned {returned:?}");
        assert!(reached > 0, "no round reached its join: the test shows nothing");
    });
}

/// A green thread spawned, or a job handed to the pool, just as the shutdown begins is dropped
/// unrun; the join of its handle, by a green thread not yet cancelled, unwinds too.
#[test]
fn a_join_of_work_refused_at_the_shutdown_unwinds_the_joiner() {
    common::bounded(LIMIT, || {
        let (reached, returned) = common::calls_made_as_the_shutdown_begins(ROUNDS, |round| {
            move |hold: &dyn Fn()| {
                hold();
                match round % 2 {
                    0 => format!("spawn: {:?}", green::spawn(|| 1).join()),
                    _ => format!("spawn_blocking: {:?}", green::spawn_blocking(|| 1).join()),
                }
            }
        });
        assert!(returned.is_empty(), "joins made as the shutdown began returned {returned:?}");
        assert!(reached > 0, "no round reached its join: the test shows nothing");
    });
}

/// Outside a shutdown, a cancelled child's join still reports the cancellation.
#[test]
fn a_join_of_a_cancelled_child_reports_it_outside_a_shutdown() {
    common::bounded(LIMIT, || {
        green::Runtime::builder().workers(2).build().unwrap().block_on(|| {
            let child = green::spawn(|| green::sleep(Duration::from_secs(3600)));
            child.cancel();
            let err = child.join().unwrap_err();
            assert!(err.is_cancelled(), "{err}");
        });
    });
}
