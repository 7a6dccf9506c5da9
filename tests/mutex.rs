//! `green::sync::Mutex`: contention from green threads on both workers and from OS threads with
//! an invariant checked inside the critical section, the slowest waiter's wait, poisoning by a
//! panic but not by a cancellation or a deadline, timed locking, guards held across parks.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use green::sync::{Mutex, TryLockError};

/// Runs `f` on its own thread and fails the test if it has not finished within `limit`.
fn bounded<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(std::panic::catch_unwind(AssertUnwindSafe(f)));
    });
    match rx.recv_timeout(limit) {
        Ok(Ok(value)) => value,
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => panic!("the test did not finish within {limit:?}: a lost wakeup or a deadlock"),
    }
}

#[derive(Default)]
struct Guarded {
    inside: bool,
    count: u64,
}

/// Locks `m` `rounds` times, checking that nobody else is inside, and returns the longest it
/// waited for the lock, in nanoseconds.
fn hammer(m: &Mutex<Guarded>, rounds: u64, park_inside: bool) -> u64 {
    let mut slowest = 0;
    for i in 0..rounds {
        let asked = Instant::now();
        let mut g = m.lock().unwrap();
        slowest = slowest.max(asked.elapsed().as_nanos() as u64);
        assert!(!g.inside, "two holders at once");
        g.inside = true;
        g.count += 1;
        if park_inside && i % 64 == 0 {
            green::yield_now(); // hold the lock across a switch now and then
        }
        g.inside = false;
    }
    slowest
}

/// Green threads on both workers and OS threads contend for one mutex; the invariant holds, no
/// increment is lost, and the slowest waiter's wait is bounded (it is printed: run with
/// `--nocapture` to see it).
#[test]
fn contention_from_both_workers_and_os_threads() {
    let slowest = bounded(Duration::from_secs(120), || {
        const ROUNDS: u64 = 20_000;
        let rt = green::Runtime::builder().workers(2).build().unwrap();
        let m = Arc::new(Mutex::new(Guarded::default()));
        let slowest = Arc::new(AtomicU64::new(0));
        let mut green_threads = Vec::new();
        for i in 0..8 {
            let (m, slowest) = (m.clone(), slowest.clone());
            green_threads.push(
                green::Builder::new()
                    .worker(i % 2)
                    .spawn_on(rt.handle(), move || {
                        slowest.fetch_max(hammer(&m, ROUNDS, true), Ordering::Relaxed);
                    })
                    .unwrap(),
            );
        }
        let os_threads: Vec<_> = (0..2)
            .map(|_| {
                let (m, slowest) = (m.clone(), slowest.clone());
                std::thread::spawn(move || {
                    slowest.fetch_max(hammer(&m, ROUNDS, false), Ordering::Relaxed);
                })
            })
            .collect();
        green_threads.into_iter().for_each(|g| g.join().unwrap());
        os_threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(m.lock().unwrap().count, 10 * ROUNDS);
        Duration::from_nanos(slowest.load(Ordering::Relaxed))
    });
    println!("slowest wait for the lock: {slowest:?}");
    // Handoff after MUTEX_HANDOFF_AFTER bounds a waiter's wait to about that beyond its turn;
    // allow a wide margin for a shared machine.
    assert!(slowest < Duration::from_secs(2), "a waiter waited {slowest:?}");
}

/// A green thread that relocks in a tight loop cannot starve a waiter on the same worker: the
/// lock is handed over once the waiter has waited `MUTEX_HANDOFF_AFTER`.
#[test]
fn a_relocking_holder_cannot_starve_a_waiter() {
    bounded(Duration::from_secs(30), || {
        let rt = green::Runtime::builder().workers(1).build().unwrap();
        rt.block_on(|| {
            let m = Arc::new(Mutex::new(0u64));
            let stop = Arc::new(AtomicBool::new(false));
            let hog = {
                let (m, stop) = (m.clone(), stop.clone());
                green::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let mut g = m.lock().unwrap();
                        *g += 1;
                        green::yield_now(); // let the waiter run while we hold it
                    }
                })
            };
            green::sleep(Duration::from_millis(1));
            let asked = Instant::now();
            let waited = {
                let _g = m.lock().unwrap();
                asked.elapsed()
            };
            stop.store(true, Ordering::Relaxed);
            hog.join().unwrap();
            assert!(waited < Duration::from_secs(1), "waited {waited:?}");
        });
    });
}

#[test]
fn a_guard_may_be_held_across_a_park() {
    bounded(Duration::from_secs(20), || {
        green::run(|| {
            let m = Arc::new(Mutex::new(Vec::new()));
            let holder = {
                let m = m.clone();
                green::spawn(move || {
                    let mut g = m.lock().unwrap();
                    g.push("holder in");
                    green::sleep(Duration::from_millis(10));
                    g.push("holder out");
                })
            };
            // The waiters come once the holder has the lock (on a loaded machine the holder may
            // start after them).
            while m.try_lock().is_ok() {
                green::sleep(Duration::from_millis(1));
            }
            let waiters: Vec<_> = (0..4)
                .map(|_| {
                    let m = m.clone();
                    green::spawn(move || m.lock().unwrap().push("waiter"))
                })
                .collect();
            holder.join().unwrap();
            waiters.into_iter().for_each(|w| w.join().unwrap());
            let log = m.lock().unwrap();
            assert_eq!(&log[..2], ["holder in", "holder out"]);
            assert_eq!(log.len(), 6);
        });
    });
}

#[test]
fn a_panic_poisons() {
    green::run(|| {
        let m = Arc::new(Mutex::new(1));
        let m2 = m.clone();
        let result = green::spawn(move || {
            let _g = m2.lock().unwrap();
            panic!("while holding the lock");
        })
        .join();
        assert!(result.unwrap_err().is_panic());
        assert!(m.is_poisoned());
        let g = m.lock().unwrap_err().into_inner();
        assert_eq!(*g, 1);
        drop(g);
        m.clear_poison();
        assert!(m.lock().is_ok());
    });
}

#[test]
fn a_cancellation_does_not_poison() {
    bounded(Duration::from_secs(20), || {
        green::run(|| {
            let m = Arc::new(Mutex::new(0));
            let m2 = m.clone();
            let holder = green::spawn(move || {
                let mut g = m2.lock().unwrap();
                *g = 1;
                green::sleep(Duration::from_secs(3600)); // cancelled here, holding the lock
                *g = 2;
            });
            while m.try_lock().is_ok() {
                green::sleep(Duration::from_millis(1));
            }
            holder.cancel();
            assert!(holder.join().unwrap_err().is_cancelled());
            assert!(!m.is_poisoned());
            assert_eq!(*m.lock().unwrap(), 1);
        });
    });
}

#[test]
fn an_expired_deadline_does_not_poison() {
    green::run(|| {
        let m = Mutex::new(0);
        let r = green::timeout(Duration::from_millis(2), || {
            let _g = m.lock().unwrap();
            green::sleep(Duration::from_secs(3600));
        });
        assert_eq!(r, Err(green::Elapsed));
        assert!(!m.is_poisoned());
        assert!(m.try_lock().is_ok());
    });
}

#[test]
fn try_lock_for_times_out_and_succeeds() {
    bounded(Duration::from_secs(20), || {
        green::run(|| {
            let m = Arc::new(Mutex::new(()));
            let g = m.lock().unwrap();
            let start = Instant::now();
            assert!(matches!(m.try_lock_for(Duration::from_millis(10)), Err(TryLockError::WouldBlock)));
            assert!(start.elapsed() >= Duration::from_millis(10));
            let m2 = m.clone();
            let later = green::spawn(move || m2.try_lock_for(Duration::from_secs(10)).is_ok());
            green::sleep(Duration::from_millis(2));
            drop(g);
            assert!(later.join().unwrap());
        });
    });
}

/// Waiters that time out or are cancelled leave the queue and pass on what they were given:
/// after a storm of them, the lock still works and the last waiter gets it.
#[test]
fn leaving_waiters_do_not_lose_the_lock() {
    bounded(Duration::from_secs(30), || {
        let rt = green::Runtime::builder().workers(2).build().unwrap();
        let m = Arc::new(Mutex::new(0u32));
        for round in 0..50 {
            let g = m.lock().unwrap();
            let quitters: Vec<_> = (0..6)
                .map(|i| {
                    let m = m.clone();
                    rt.spawn(move || {
                        if i % 2 == 0 {
                            let _ = m.try_lock_for(Duration::from_micros(50 * i));
                        } else {
                            let _g = m.lock().unwrap();
                        }
                    })
                })
                .collect();
            let stayer = {
                let m = m.clone();
                rt.spawn(move || *m.lock().unwrap() += 1)
            };
            std::thread::sleep(Duration::from_micros(200));
            for (i, q) in quitters.iter().enumerate() {
                if i % 2 == 1 && round % 2 == 0 {
                    q.cancel();
                }
            }
            drop(g);
            for q in quitters {
                let _ = q.join();
            }
            stayer.join().unwrap();
        }
        assert_eq!(*m.lock().unwrap(), 50);
    });
}

#[test]
fn lock_under_a_deadline_unwinds_to_it() {
    bounded(Duration::from_secs(20), || {
        green::run(|| {
            let m = Arc::new(Mutex::new(()));
            let _held = m.lock().unwrap();
            let dropped = Arc::new(AtomicUsize::new(0));
            struct Count(Arc<AtomicUsize>);
            impl Drop for Count {
                fn drop(&mut self) {
                    self.0.fetch_add(1, Ordering::SeqCst);
                }
            }
            let d = dropped.clone();
            let m2 = m.clone();
            let r = green::spawn(move || {
                green::timeout(Duration::from_millis(5), || {
                    let _count = Count(d);
                    let _g = m2.lock().unwrap();
                    unreachable!("the lock is held");
                })
            })
            .join()
            .unwrap();
            assert_eq!(r, Err(green::Elapsed));
            assert_eq!(dropped.load(Ordering::SeqCst), 1);
            // try_lock_for reports its own timeout at the deadline.
            let r = green::timeout(Duration::from_millis(5), || m.try_lock_for(Duration::from_secs(60)).is_err());
            assert_eq!(r, Ok(true));
        });
    });
}

#[test]
fn mutex_basics() {
    let mut m = Mutex::new(vec![1]);
    m.get_mut().unwrap().push(2);
    assert_eq!(format!("{:?}", m), "Mutex { data: [1, 2], poisoned: false, .. }");
    let g = m.lock().unwrap();
    assert_eq!(format!("{:?}", m), "Mutex { data: <locked>, poisoned: false, .. }");
    drop(g);
    assert_eq!(m.into_inner().unwrap(), [1, 2]);
    let unsized_: &Mutex<[u8]> = &Mutex::new([1u8, 2, 3]);
    assert_eq!(unsized_.lock().unwrap().len(), 3);
}

/// A green thread that locks a mutex it holds already panics, naming itself, instead of
/// waiting for itself for good; the lock is released by the unwinding and poisoned, as for
/// any panic under a guard. Another green thread's hold is waited for as usual.
#[test]
fn a_relock_by_the_holder_panics_instead_of_hanging() {
    bounded(Duration::from_secs(30), || {
        green::run(|| {
            let m = Arc::new(Mutex::new(0));
            let relock = {
                let m = m.clone();
                green::Builder::new()
                    .name("relocker".into())
                    .spawn(move || {
                        let _first = m.lock().unwrap();
                        let _second = m.lock();
                    })
                    .unwrap()
            };
            let message = relock.join().unwrap_err().into_panic();
            let message = message.downcast_ref::<String>().expect("a formatted message");
            assert!(message.contains("\"relocker\"") && message.contains("not re-entrant"), "{message}");
            assert!(m.is_poisoned());
            m.clear_poison();

            // Held by another green thread: a wait, not a panic.
            let guard = m.lock().unwrap();
            let waiter = {
                let m = m.clone();
                green::spawn(move || *m.lock().unwrap() += 1)
            };
            green::sleep(Duration::from_millis(5));
            drop(guard);
            waiter.join().unwrap();
            assert_eq!(*m.lock().unwrap(), 1);
        });
    });
}

/// A guard handed to another green thread (through `spawn_local`) is that one's to drop: the
/// green thread that took it is no longer the holder, and may lock again, waiting its turn.
#[test]
fn a_guard_moved_to_another_green_thread_is_not_a_relock() {
    static M: Mutex<u32> = Mutex::new(0);
    static RW: green::sync::RwLock<u32> = green::sync::RwLock::new(0);
    bounded(Duration::from_secs(30), || {
        green::run(|| {
            let guard = M.lock().unwrap();
            let keeper = green::spawn_local(move || {
                green::sleep(Duration::from_millis(5));
                drop(guard);
            });
            *M.lock().unwrap() += 1;
            keeper.join().unwrap();

            let write = RW.write().unwrap();
            let keeper = green::spawn_local(move || {
                green::sleep(Duration::from_millis(5));
                drop(write);
            });
            *RW.write().unwrap() += 1;
            assert_eq!(*RW.read().unwrap(), 1);
            keeper.join().unwrap();
        });
    });
}
