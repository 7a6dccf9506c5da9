//! `green::sync::RwLock`: readers share, writers exclude, an invariant checked inside under
//! contention from both workers and OS threads, writers are not starved by readers, timed
//! locking, poisoning only by a panicking writer.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use green::sync::RwLock;

mod common;
use common::bounded;

/// The value is a pair that writers keep equal; readers check it, and count how many read at
/// once (never while a writer is inside).
#[test]
fn contention_with_an_invariant() {
    bounded(Duration::from_secs(120), || {
        let rt = green::Runtime::builder().workers(2).build().unwrap();
        let lock = Arc::new(RwLock::new((0u64, 0u64)));
        let writing = Arc::new(AtomicBool::new(false));
        let readers_inside = Arc::new(AtomicUsize::new(0));
        let max_readers = Arc::new(AtomicUsize::new(0));
        let mut handles = Vec::new();
        for i in 0..8 {
            let (lock, writing, inside, max) =
                (lock.clone(), writing.clone(), readers_inside.clone(), max_readers.clone());
            handles.push(
                green::Builder::new()
                    .worker(i % 2)
                    .spawn_on(rt.handle(), move || {
                        for round in 0..3_000 {
                            if (i + round) % 4 == 0 {
                                let mut w = lock.write().unwrap();
                                assert!(!writing.swap(true, Ordering::SeqCst), "two writers");
                                assert_eq!(inside.load(Ordering::SeqCst), 0, "a reader inside with a writer");
                                w.0 += 1;
                                if round % 32 == 0 {
                                    green::yield_now();
                                }
                                w.1 += 1;
                                writing.store(false, Ordering::SeqCst);
                            } else {
                                let r = lock.read().unwrap();
                                let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                                max.fetch_max(now, Ordering::SeqCst);
                                assert!(!writing.load(Ordering::SeqCst), "a writer inside with a reader");
                                assert_eq!(r.0, r.1, "torn write");
                                if round % 16 == 0 {
                                    green::yield_now();
                                }
                                inside.fetch_sub(1, Ordering::SeqCst);
                            }
                        }
                    })
                    .unwrap(),
            );
        }
        let os: Vec<_> = (0..2)
            .map(|_| {
                let lock = lock.clone();
                std::thread::spawn(move || {
                    for _ in 0..3_000 {
                        let mut w = lock.write().unwrap();
                        w.0 += 1;
                        w.1 += 1;
                        drop(w);
                        let r = lock.read().unwrap();
                        assert_eq!(r.0, r.1);
                    }
                })
            })
            .collect();
        handles.into_iter().for_each(|h| h.join().unwrap());
        os.into_iter().for_each(|t| t.join().unwrap());
        let (a, b) = *lock.read().unwrap();
        assert_eq!(a, b);
        assert_eq!(a, 8 * 3_000 / 4 + 2 * 3_000);
        assert!(max_readers.load(Ordering::SeqCst) >= 2, "readers never shared the lock");
    });
}

/// A stream of overlapping readers cannot keep a writer out: readers that come after a waiting
/// writer queue behind it.
#[test]
fn readers_do_not_starve_a_writer() {
    bounded(Duration::from_secs(30), || {
        green::run(|| {
            let lock = Arc::new(RwLock::new(0));
            let stop = Arc::new(AtomicBool::new(false));
            let readers: Vec<_> = (0..4)
                .map(|_| {
                    let (lock, stop) = (lock.clone(), stop.clone());
                    green::spawn(move || {
                        while !stop.load(Ordering::Relaxed) {
                            let _r = lock.read().unwrap();
                            green::sleep(Duration::from_micros(200));
                        }
                    })
                })
                .collect();
            green::sleep(Duration::from_millis(2));
            let asked = Instant::now();
            *lock.write().unwrap() += 1;
            let waited = asked.elapsed();
            stop.store(true, Ordering::Relaxed);
            readers.into_iter().for_each(|r| r.join().unwrap());
            assert!(waited < Duration::from_secs(1), "the writer waited {waited:?}");
        });
    });
}

#[test]
fn timed_locking() {
    bounded(Duration::from_secs(20), || {
        green::run(|| {
            let lock = Arc::new(RwLock::new(1));
            let r = lock.read().unwrap();
            assert!(lock.try_read().is_ok());
            assert!(lock.try_write().is_err());
            assert!(lock.try_write_for(Duration::from_millis(5)).is_err());
            let l2 = lock.clone();
            let writer = green::spawn(move || *l2.try_write_for(Duration::from_secs(10)).unwrap() = 2);
            green::sleep(Duration::from_millis(2));
            // A writer waits: a new reader queues behind it.
            assert!(lock.try_read().is_err());
            drop(r);
            writer.join().unwrap();
            assert_eq!(*lock.try_read_for(Duration::from_millis(5)).unwrap(), 2);
            let r = green::timeout(Duration::from_millis(5), || {
                let _w = lock.write().unwrap();
                let l3 = lock.clone();
                green::spawn(move || drop(l3.read())).join().is_ok()
            });
            // The reader spawned inside has no deadline: it waits for the write guard, which the
            // timeout's unwinding drops; the join is what times out.
            assert_eq!(r, Err(green::Elapsed));
        });
    });
}

#[test]
fn only_a_panicking_writer_poisons() {
    green::run(|| {
        let lock = Arc::new(RwLock::new(0));
        let l = lock.clone();
        let _ = green::spawn(move || {
            let _r = l.read().unwrap();
            panic!("reader");
        })
        .join();
        assert!(!lock.is_poisoned());
        let l = lock.clone();
        let _ = green::spawn(move || {
            let _w = l.write().unwrap();
            panic!("writer");
        })
        .join();
        assert!(lock.is_poisoned());
        assert!(lock.read().is_err());
        lock.clear_poison();
        assert!(lock.write().is_ok());
        // A cancelled writer does not poison.
        let l = lock.clone();
        let w = green::spawn(move || {
            let _w = l.write().unwrap();
            green::sleep(Duration::from_secs(3600));
        });
        while lock.try_read().is_ok() {
            green::sleep(Duration::from_millis(1));
        }
        w.cancel();
        assert!(w.join().unwrap_err().is_cancelled());
        assert!(!lock.is_poisoned());
        assert_eq!(*lock.read().unwrap(), 0);
    });
}

/// A downgraded write lock lets the queued readers in at once, keeps writers out until the
/// read guard goes, and shows what was written.
#[test]
fn downgrade_lets_queued_readers_in_and_keeps_writers_out() {
    use green::sync::RwLockWriteGuard;
    bounded(Duration::from_secs(20), || {
        // One worker: the readers queue before the writer, in spawn order.
        green::Runtime::builder().workers(1).build().unwrap().block_on(|| {
            let lock = Arc::new(RwLock::new(1));
            let mut w = lock.write().unwrap();
            *w = 2;
            let readers: Vec<_> = (0..3)
                .map(|_| {
                    let lock = lock.clone();
                    green::spawn(move || *lock.read().unwrap())
                })
                .collect();
            let writer = {
                let lock = lock.clone();
                green::spawn(move || *lock.write().unwrap() = 3)
            };
            // Let them all queue behind the write lock.
            for _ in 0..10 {
                green::yield_now();
            }
            let r = RwLockWriteGuard::downgrade(w);
            assert_eq!(*r, 2);
            // The readers got in while the downgraded guard is held.
            assert_eq!(readers.into_iter().map(|h| h.join().unwrap()).collect::<Vec<_>>(), [2, 2, 2]);
            assert!(!writer.is_finished(), "a writer got in past the downgraded guard");
            drop(r);
            writer.join().unwrap();
            assert_eq!(*lock.read().unwrap(), 3);
        });
    });
}

/// A green thread that holds the write lock and asks for it again, to read or to write,
/// panics, naming itself, instead of waiting for itself for good.
#[test]
fn a_relock_by_the_writer_panics_instead_of_hanging() {
    bounded(Duration::from_secs(30), || {
        green::run(|| {
            let lock = Arc::new(RwLock::new(0));
            for read in [true, false] {
                let lock = lock.clone();
                let relock = green::Builder::new()
                    .name("rewriter".into())
                    .spawn(move || {
                        // The first round's panic poisoned it.
                        let _w = lock.write().unwrap_or_else(|poisoned| poisoned.into_inner());
                        if read {
                            drop(lock.read());
                        } else {
                            drop(lock.write());
                        }
                    })
                    .unwrap();
                let message = relock.join().unwrap_err().into_panic();
                let message = message.downcast_ref::<String>().expect("a formatted message");
                assert!(message.contains("\"rewriter\"") && message.contains("not re-entrant"), "{message}");
            }
            lock.clear_poison();
            assert_eq!(*lock.read().unwrap(), 0);
        });
    });
}
