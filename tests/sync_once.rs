//! `OnceLock`, `LazyLock` and `Once`: late arrivals park while the first initializes, so an
//! initializer that parks does not hang its worker, and each value is made once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use green::sync::{LazyLock, Once, OnceLock};

mod common;
use common::{Counted, bounded};

const LIMIT: Duration = Duration::from_secs(20);

/// With std's `OnceLock`, the second green thread would block the only worker inside
/// `get_or_init` while the initializer, parked in its sleep on that same worker, never runs
/// again.
#[test]
fn an_initializer_that_parks_does_not_hang_its_worker() {
    static CELL: OnceLock<u64> = OnceLock::new();
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let values = bounded(LIMIT, || {
        let rt = green::Runtime::builder().workers(1).build().unwrap();
        rt.block_on(|| {
            let readers: Vec<_> = (0..8u64)
                .map(|i| {
                    green::spawn(move || {
                        *CELL.get_or_init(|| {
                            RUNS.fetch_add(1, Ordering::SeqCst);
                            green::sleep(Duration::from_millis(20));
                            i
                        })
                    })
                })
                .collect();
            readers.into_iter().map(|r| r.join().unwrap()).collect::<Vec<_>>()
        })
    });
    assert_eq!(RUNS.load(Ordering::SeqCst), 1);
    // Every reader saw the one value the first initializer made.
    assert!(values.iter().all(|&v| v == values[0]), "{values:?}");
}

#[test]
fn green_and_os_threads_race_and_one_initializer_runs() {
    let runs = Arc::new(AtomicUsize::new(0));
    let cell = Arc::new(OnceLock::new());
    let (green_seen, os_seen) = bounded(LIMIT, {
        let (runs, cell) = (runs.clone(), cell.clone());
        move || {
            let rt = green::Runtime::builder().workers(2).build().unwrap();
            let init = {
                let runs = runs.clone();
                move || {
                    runs.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(5));
                    String::from("made once")
                }
            };
            let os: Vec<_> = (0..4)
                .map(|_| {
                    let (cell, init) = (cell.clone(), init.clone());
                    std::thread::spawn(move || cell.get_or_init(init).clone())
                })
                .collect();
            let green: Vec<_> = (0..16)
                .map(|_| {
                    let (cell, init) = (cell.clone(), init.clone());
                    rt.spawn(move || cell.get_or_init(init).clone())
                })
                .collect();
            let green_seen: Vec<String> = green.into_iter().map(|h| h.join().unwrap()).collect();
            let os_seen: Vec<String> = os.into_iter().map(|h| h.join().unwrap()).collect();
            (green_seen, os_seen)
        }
    });
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert!(green_seen.iter().chain(&os_seen).all(|s| s == "made once"));
    assert_eq!(cell.get().map(String::as_str), Some("made once"));
}

#[test]
fn a_failed_or_panicking_initializer_leaves_the_cell_empty_for_the_next() {
    green::run(|| {
        let cell = OnceLock::new();
        assert_eq!(cell.get_or_try_init(|| Err::<u32, _>("no")), Err("no"));
        assert_eq!(cell.get(), None);
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            cell.get_or_init(|| panic!("initializer fails"));
        }));
        assert!(panicked.is_err());
        assert_eq!(cell.get(), None);
        assert_eq!(*cell.get_or_init(|| 7), 7);
        assert_eq!(cell.set(8), Err(8));
        assert_eq!(cell.get_or_try_init(|| Err::<u32, &str>("unused")), Ok(&7));
    });
}

#[test]
fn the_value_is_dropped_once_and_can_be_taken_out() {
    let drops = Arc::new(AtomicUsize::new(0));
    {
        let cell = OnceLock::new();
        assert!(cell.set(Counted(drops.clone())).is_ok());
        let refused = cell.set(Counted(drops.clone())).unwrap_err();
        drop(refused);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }
    assert_eq!(drops.load(Ordering::SeqCst), 2);

    let mut cell = OnceLock::from(5);
    *cell.get_mut().unwrap() += 1;
    assert_eq!(cell.take(), Some(6));
    assert_eq!(cell.take(), None);
    assert_eq!(cell.clone().into_inner(), None);
    assert_eq!(format!("{:?}", OnceLock::from(3)), "OnceLock(3)");
}

#[test]
fn a_lazy_static_is_made_once_across_workers() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    static TABLE: LazyLock<Vec<u64>> = LazyLock::new(|| {
        RUNS.fetch_add(1, Ordering::SeqCst);
        green::sleep(Duration::from_millis(10));
        (0..100).collect()
    });
    let sums = bounded(LIMIT, || {
        let rt = green::Runtime::builder().workers(2).build().unwrap();
        let handles: Vec<_> = (0..20).map(|_| rt.spawn(|| TABLE.iter().sum::<u64>())).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect::<Vec<_>>()
    });
    assert!(sums.iter().all(|&s| s == 4950), "{sums:?}");
    assert_eq!(RUNS.load(Ordering::SeqCst), 1);
}

#[test]
fn a_lazy_lock_whose_initializer_panicked_is_poisoned() {
    let lazy: LazyLock<u32> = LazyLock::new(|| panic!("no value"));
    let first = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| *lazy));
    assert_eq!(common::panic_text(&*first.unwrap_err()), "no value");
    let again = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| *lazy));
    assert!(common::panic_text(&*again.unwrap_err()).contains("poisoned"));

    let unused = LazyLock::new(|| 4);
    let f = LazyLock::into_inner(unused).unwrap_err();
    assert_eq!(f(), 4);
    let used = LazyLock::new(|| 5);
    assert_eq!(*LazyLock::force(&used), 5);
    assert_eq!(LazyLock::into_inner(used).ok(), Some(5));
}

/// std's `LazyLock::get`, `get_mut`, `force_mut` and `DerefMut`, and `Once::wait_force`, under
/// the same names: none runs the initializer but `force_mut` and `DerefMut`.
#[test]
fn lazy_lock_and_once_have_std_accessors() {
    let mut lazy = LazyLock::new(|| vec![1]);
    assert_eq!(LazyLock::get(&lazy), None);
    assert_eq!(LazyLock::get_mut(&mut lazy), None);
    LazyLock::force_mut(&mut lazy).push(2);
    lazy.push(3);
    assert_eq!(LazyLock::get(&lazy).map(Vec::as_slice), Some(&[1, 2, 3][..]));
    LazyLock::get_mut(&mut lazy).unwrap().clear();
    assert!(lazy.is_empty());

    let mut lost: LazyLock<u32> = LazyLock::new(|| panic!("no value"));
    assert!(std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| *LazyLock::force_mut(&mut lost))).is_err());
    assert_eq!(LazyLock::get(&lost), None);
    let again = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| *LazyLock::force_mut(&mut lost)));
    assert!(common::panic_text(&*again.unwrap_err()).contains("poisoned"));

    bounded(LIMIT, || {
        green::run(|| {
            let once = Arc::new(Once::new());
            let waiter = green::spawn({
                let once = once.clone();
                move || once.wait_force()
            });
            green::sleep(Duration::from_millis(2));
            once.call_once(|| {});
            waiter.join().unwrap();
        })
    });
}

#[test]
fn once_runs_its_closure_once_among_racing_green_threads() {
    static SETUP: Once = Once::new();
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    bounded(LIMIT, || {
        let rt = green::Runtime::builder().workers(2).build().unwrap();
        let handles: Vec<_> = (0..16)
            .map(|_| {
                rt.spawn(|| {
                    SETUP.call_once(|| {
                        green::sleep(Duration::from_millis(5));
                        RUNS.fetch_add(1, Ordering::SeqCst);
                    });
                    // Whoever returns from `call_once` finds it done.
                    assert!(SETUP.is_completed());
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    });
    assert_eq!(RUNS.load(Ordering::SeqCst), 1);
}

/// Making a cell from a value, or filling an empty one nobody else is filling, waits for no
/// one: not a cancellation point, so a cancelled green thread goes on through them.
#[test]
fn only_waiting_for_an_initializer_is_a_cancellation_point() {
    let went_on = bounded(LIMIT, || {
        green::run(|| {
            let started = Arc::new(AtomicBool::new(false));
            let s = started.clone();
            let worker = green::spawn(move || {
                s.store(true, Ordering::SeqCst);
                while !green::is_cancelled() {
                    std::hint::spin_loop();
                    green::tick();
                }
                let made = OnceLock::from(5u32);
                let empty = OnceLock::new();
                empty.set(6u32).unwrap();
                let cloned = made.clone();
                (made.into_inner(), empty.into_inner(), cloned.into_inner())
            });
            // Cancelled before it starts, it would never run: nothing would go on.
            while !started.load(Ordering::SeqCst) {
                green::sleep(Duration::from_millis(1));
            }
            worker.cancel();
            worker.join()
        })
    });
    assert_eq!(went_on.unwrap(), (Some(5), Some(6), Some(5)));
}

/// A LazyLock whose initializer was cancelled mid-way is poisoned, and says so (not "panicked").
#[test]
fn a_lazy_lock_cancelled_mid_initializer_says_so() {
    static SLOW_BEGAN: AtomicBool = AtomicBool::new(false);
    static SLOW: LazyLock<u32> = LazyLock::new(|| {
        SLOW_BEGAN.store(true, Ordering::SeqCst);
        green::sleep(Duration::from_secs(60));
        1
    });
    let later = bounded(LIMIT, || {
        green::run(|| {
            let first = green::spawn(|| *SLOW);
            // Cancelled before it starts, it would never run the initializer: the later access
            // would, and sleep its 60 s.
            while !SLOW_BEGAN.load(Ordering::SeqCst) {
                green::sleep(Duration::from_millis(1));
            }
            first.cancel();
            assert!(first.join().unwrap_err().is_cancelled());
            let later = std::panic::catch_unwind(|| *SLOW);
            common::panic_text(&*later.unwrap_err())
        })
    });
    assert!(later.contains("cancelled"), "{later}");
    // A timeout ends it the same way.
    static SLOWER: LazyLock<u32> = LazyLock::new(|| {
        green::sleep(Duration::from_secs(60));
        2
    });
    let later = bounded(LIMIT, || {
        green::run(|| {
            assert!(green::timeout(Duration::from_millis(10), || *SLOWER).is_err());
            common::panic_text(&*std::panic::catch_unwind(|| *SLOWER).unwrap_err())
        })
    });
    assert!(later.contains("green::timeout"), "{later}");
}

/// `OnceLock::wait` and `Once::wait` park until another caller initializes, on green threads
/// and on an OS thread alike; under `green::timeout` the wait ends at the deadline.
#[test]
fn wait_parks_until_another_caller_initializes() {
    bounded(Duration::from_secs(30), || {
        let cell = Arc::new(OnceLock::<u32>::new());
        let once = Arc::new(Once::new());
        let os_waiter = std::thread::spawn({
            let (cell, once) = (cell.clone(), once.clone());
            move || {
                once.wait();
                *cell.wait()
            }
        });
        green::Runtime::builder().workers(2).build().unwrap().block_on(|| {
            assert_eq!(green::timeout(Duration::from_millis(20), || *cell.wait()), Err(green::Elapsed));
            let waiters: Vec<_> = (0..8)
                .map(|_| {
                    let (cell, once) = (cell.clone(), once.clone());
                    green::spawn(move || {
                        once.wait();
                        *cell.wait()
                    })
                })
                .collect();
            green::sleep(Duration::from_millis(10));
            assert!(waiters.iter().all(|w| !w.is_finished()), "a wait returned before anyone initialized");
            cell.set(7).unwrap();
            once.call_once(|| {});
            for w in waiters {
                assert_eq!(w.join().unwrap(), 7);
            }
        });
        assert_eq!(os_waiter.join().unwrap(), 7);
    });
}
