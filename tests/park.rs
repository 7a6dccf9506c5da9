//! park/unpark with std's token semantics, and wakeups racing the park.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

mod common;

/// How long a test may take before it counts as hung (a lost wakeup), instead of hanging the run.
const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn unpark_before_park_makes_park_return() {
    common::bounded(LIMIT, || {
        green::run(|| {
            let me = green::current();
            me.unpark();
            green::park(); // consumes the token, returns at once
        });
    });
}

#[test]
fn unpark_wakes_a_parked_green_thread() {
    common::bounded(LIMIT, || {
        green::run(|| {
            let flag = Arc::new(AtomicBool::new(false));
            let f = flag.clone();
            let h = green::spawn(move || {
                while !f.load(Ordering::Acquire) {
                    green::park();
                }
            });
            green::sleep(Duration::from_millis(5));
            flag.store(true, Ordering::Release);
            h.thread().unpark();
            h.join().unwrap();
        });
    });
}

#[test]
fn unpark_from_an_os_thread() {
    common::bounded(LIMIT, || {
        let rt = green::Runtime::builder().workers(2).build().unwrap();
        let flag = Arc::new(AtomicBool::new(false));
        let f = flag.clone();
        let h = rt.spawn(move || {
            while !f.load(Ordering::Acquire) {
                green::park();
            }
            7
        });
        let thread = h.thread().clone();
        let waker = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(5));
            flag.store(true, Ordering::Release);
            thread.unpark();
        });
        assert_eq!(h.join().unwrap(), 7);
        waker.join().unwrap();
    });
}

/// A user's token must survive a runtime wait (here a sleep): it is not eaten by it.
#[test]
fn a_runtime_wait_does_not_eat_the_token() {
    common::bounded(LIMIT, || {
        green::run(|| {
            green::current().unpark();
            green::sleep(Duration::from_millis(2));
            green::park(); // would hang if the sleep had consumed the token
        });
    });
}

/// Bounded stress: pairs of green threads on both workers, and OS threads, hand a token back
/// and forth with unpark racing park. Every round must complete.
#[test]
fn racing_wakeups_are_never_lost() {
    common::bounded(LIMIT, || {
        const ROUNDS: usize = 2_000;
        const PAIRS: usize = 8;
        let rt = green::Runtime::builder().workers(2).build().unwrap();
        let done = Arc::new(AtomicUsize::new(0));
        rt.block_on(|| {
            let mut handles = Vec::new();
            for pair in 0..PAIRS {
                // turn: even = ping's turn, odd = pong's turn.
                let turn = Arc::new(AtomicUsize::new(0));
                let (t1, t2) = (turn.clone(), turn.clone());
                let ping = green::Builder::new()
                    .worker(pair % 2)
                    .spawn(move || {
                        for round in 0..ROUNDS {
                            while t1.load(Ordering::Acquire) != 2 * round {
                                green::park();
                            }
                            t1.store(2 * round + 1, Ordering::Release);
                        }
                    })
                    .unwrap();
                let ping_thread = ping.thread().clone();
                let d = done.clone();
                let pong = green::Builder::new()
                    .worker((pair + 1) % 2)
                    .spawn(move || {
                        for round in 0..ROUNDS {
                            while t2.load(Ordering::Acquire) != 2 * round + 1 {
                                green::park();
                            }
                            t2.store(2 * round + 2, Ordering::Release);
                            ping_thread.unpark();
                        }
                        d.fetch_add(1, Ordering::Relaxed);
                    })
                    .unwrap();
                // Ping wakes pong each round through a side channel: a green thread that forwards.
                let pong_thread = pong.thread().clone();
                let t3 = turn.clone();
                let forward = green::spawn(move || {
                    for round in 0..ROUNDS {
                        while t3.load(Ordering::Acquire) < 2 * round + 1 {
                            green::yield_now();
                        }
                        pong_thread.unpark();
                    }
                });
                handles.push(ping);
                handles.push(pong);
                handles.push(forward);
            }
            for h in handles {
                h.join().unwrap();
            }
        });
        assert_eq!(done.load(Ordering::Relaxed), PAIRS);
    });
}

/// A timeout too long for an `Instant` is no limit, as with std: the park waits for its token
/// on a green thread and on an OS thread alike.
#[test]
fn park_timeout_with_the_largest_duration_waits_for_the_token() {
    green::run(|| {
        let parked = Arc::new(AtomicBool::new(false));
        let released = Arc::new(AtomicBool::new(false));
        let waiter = {
            let (parked, released) = (parked.clone(), released.clone());
            green::spawn(move || {
                parked.store(true, Ordering::SeqCst);
                green::park_timeout(Duration::MAX);
                // Not a timeout taken as "now": it waited for the unpark.
                assert!(released.load(Ordering::SeqCst), "park_timeout(Duration::MAX) returned before the unpark");
            })
        };
        while !parked.load(Ordering::SeqCst) {
            green::yield_now();
        }
        green::sleep(Duration::from_millis(30));
        released.store(true, Ordering::SeqCst);
        waiter.thread().unpark();
        waiter.join().unwrap();
    });
    let released = Arc::new(AtomicBool::new(false));
    let me = std::thread::current();
    let unparker = {
        let released = released.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            released.store(true, Ordering::SeqCst);
            me.unpark();
        })
    };
    green::park_timeout(Duration::MAX);
    assert!(released.load(Ordering::SeqCst), "park_timeout(Duration::MAX) returned before the unpark on an OS thread");
    unparker.join().unwrap();
}

/// On a plain OS thread `current()` is that thread, as std's: a stable id distinct from every
/// green thread's, its name, and an `unpark` (here from a green thread) that wakes its `park`.
#[test]
fn current_on_an_os_thread_is_that_thread() {
    common::bounded(LIMIT, || {
        let (tx, rx) = std::sync::mpsc::channel();
        let released = Arc::new(AtomicBool::new(false));
        let os = {
            let released = released.clone();
            std::thread::Builder::new()
                .name("plain-os".into())
                .spawn(move || {
                    let me = green::current();
                    assert!(green::try_current().is_none());
                    assert_eq!(me.id(), green::current().id(), "the id is kept");
                    assert_eq!(me.name(), Some("plain-os"));
                    tx.send(me).unwrap();
                    while !released.load(Ordering::SeqCst) {
                        green::park();
                    }
                })
                .unwrap()
        };
        let handle = rx.recv().unwrap();
        let other = std::thread::spawn(|| green::current().id()).join().unwrap();
        assert_ne!(handle.id(), other, "two OS threads share an id");
        let green_id = green::run(move || {
            green::sleep(Duration::from_millis(10));
            released.store(true, Ordering::SeqCst);
            handle.unpark();
            green::current().id()
        });
        os.join().unwrap();
        assert_ne!(green_id, other);
    });
}

/// On a worker's own stack (here: the destructor of a detached green thread's result, which the
/// worker drops after the green thread ended) there is neither a green thread nor a plain
/// thread to hand out: `current()` panics, `try_current()` is `None`.
#[test]
fn current_on_a_worker_stack_panics() {
    struct Probe(std::sync::mpsc::Sender<(bool, bool)>);
    impl Drop for Probe {
        fn drop(&mut self) {
            let none = green::try_current().is_none();
            let panicked = std::panic::catch_unwind(green::current).is_err();
            let _ = self.0.send((none, panicked));
        }
    }
    let (tx, rx) = std::sync::mpsc::channel();
    common::bounded(LIMIT, move || {
        let rt = green::Runtime::builder().workers(1).build().unwrap();
        rt.block_on(move || {
            let (go_tx, go_rx) = green::sync::oneshot::channel::<()>();
            // Detached while it waits: its result is dropped by the worker when it returns.
            drop(green::spawn(move || {
                let _ = go_rx.recv();
                Probe(tx)
            }));
            go_tx.send(()).unwrap();
            green::sleep(Duration::from_millis(20));
        });
    });
    assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), (true, true));
}
