//! `green::sync::Barrier` and `WaitGroup`: generations across workers and OS threads, one leader
//! per generation, a cancelled waiter counted out, wait groups.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use green::sync::{Barrier, WaitGroup};

mod common;
use common::bounded;

/// Every party records the generation it is in; no party may get ahead of another by a whole
/// generation, and each generation has exactly one leader.
#[test]
fn generations() {
    bounded(Duration::from_secs(60), || {
        const PARTIES: usize = 6;
        const ROUNDS: usize = 300;
        let rt = green::Runtime::builder().workers(2).build().unwrap();
        let barrier = Arc::new(Barrier::new(PARTIES));
        let arrived = Arc::new((0..ROUNDS).map(|_| AtomicUsize::new(0)).collect::<Vec<_>>());
        let leaders = Arc::new(AtomicUsize::new(0));
        let party = |barrier: Arc<Barrier>, arrived: Arc<Vec<AtomicUsize>>, leaders: Arc<AtomicUsize>| {
            move || {
                for round in 0..ROUNDS {
                    arrived[round].fetch_add(1, Ordering::SeqCst);
                    if barrier.wait().is_leader() {
                        leaders.fetch_add(1, Ordering::SeqCst);
                    }
                    // Everyone of this round arrived before anyone left it.
                    assert_eq!(arrived[round].load(Ordering::SeqCst), PARTIES);
                }
            }
        };
        let mut green_parties: Vec<_> =
            (0..PARTIES - 1).map(|_| rt.spawn(party(barrier.clone(), arrived.clone(), leaders.clone()))).collect();
        let os = std::thread::spawn(party(barrier.clone(), arrived.clone(), leaders.clone()));
        green_parties.drain(..).for_each(|p| p.join().unwrap());
        os.join().unwrap();
        assert_eq!(leaders.load(Ordering::SeqCst), ROUNDS);
    });
}

#[test]
fn a_cancelled_waiter_is_counted_out() {
    bounded(Duration::from_secs(20), || {
        green::run(|| {
            let barrier = Arc::new(Barrier::new(2));
            let b = barrier.clone();
            let quitter = green::spawn(move || b.wait());
            green::sleep(Duration::from_millis(2));
            quitter.cancel();
            assert!(quitter.join().unwrap_err().is_cancelled());
            // The barrier still needs two new arrivals.
            let b = barrier.clone();
            let other = green::spawn(move || b.wait().is_leader());
            green::sleep(Duration::from_millis(2));
            assert!(!other.is_finished());
            let me = barrier.wait().is_leader();
            assert_ne!(me, other.join().unwrap());
            // Under a deadline: counted out too.
            assert_eq!(green::timeout(Duration::from_millis(2), || barrier.wait()), Err(green::Elapsed));
            let b = barrier.clone();
            let other = green::spawn(move || b.wait());
            barrier.wait();
            other.join().unwrap();
        });
    });
}

#[test]
fn wait_group() {
    bounded(Duration::from_secs(20), || {
        let rt = green::Runtime::builder().workers(2).build().unwrap();
        rt.block_on(|| {
            let wg = Arc::new(WaitGroup::new());
            let done = Arc::new(AtomicUsize::new(0));
            for i in 0..50 {
                wg.add(1);
                let (wg, done) = (wg.clone(), done.clone());
                drop(green::spawn(move || {
                    green::sleep(Duration::from_micros(100 * (i % 5)));
                    done.fetch_add(1, Ordering::SeqCst);
                    wg.done();
                }));
            }
            let waiters: Vec<_> = (0..3)
                .map(|_| {
                    let (wg, done) = (wg.clone(), done.clone());
                    green::spawn(move || {
                        wg.wait();
                        done.load(Ordering::SeqCst)
                    })
                })
                .collect();
            wg.wait();
            assert_eq!(done.load(Ordering::SeqCst), 50);
            for w in waiters {
                assert_eq!(w.join().unwrap(), 50);
            }
            wg.add(1);
            assert!(!wg.wait_timeout(Duration::from_millis(2)));
            assert_eq!(green::timeout(Duration::from_millis(2), || wg.wait()), Err(green::Elapsed));
            wg.done();
            assert!(wg.wait_timeout(Duration::ZERO));
        });
    });
}

#[test]
#[should_panic(expected = "more times than add")]
fn done_without_add_panics() {
    WaitGroup::new().done();
}

/// A waiter woken by a zero returns even when an `add` raises the count again before it
/// runs: the zero happened. (It used to look at the count again and wait for the next zero.)
#[test]
fn a_waiter_released_by_a_zero_returns_despite_a_quick_add() {
    bounded(Duration::from_secs(20), || {
        let rt = green::Runtime::builder().workers(1).build().unwrap();
        rt.block_on(|| {
            for timed in [false, true] {
                let wg = Arc::new(WaitGroup::new());
                let returned = Arc::new(AtomicUsize::new(0));
                wg.add(1);
                let waiter = {
                    let (wg, returned) = (wg.clone(), returned.clone());
                    green::spawn(move || {
                        let zero = if timed {
                            wg.wait_timeout(Duration::from_secs(10))
                        } else {
                            wg.wait();
                            true
                        };
                        returned.fetch_add(1, Ordering::SeqCst);
                        zero
                    })
                };
                // One worker: the waiter parks in `wait` while this one sleeps.
                green::sleep(Duration::from_millis(10));
                wg.done();
                wg.add(1);
                green::sleep(Duration::from_millis(50));
                let released = returned.load(Ordering::SeqCst) == 1;
                wg.done();
                assert!(waiter.join().unwrap());
                assert!(released, "timed: {timed}: the waiter woken at zero went back to waiting");
            }
        });
    });
}
