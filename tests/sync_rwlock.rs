//! `green::sync::RwLock`: readers share, writers exclude, an invariant checked inside under
//! contention from both workers and OS threads, writers are not starved by readers, timed
//! locking, poisoning only by a panicking writer; `read` and `write` in a destructor while
//! unwinding wait for holders that run elsewhere, and abort for one on their own worker.

use std::os::unix::process::ExitStatusExt;
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

// ---- while unwinding -------------------------------------------------------------------

/// Locks `lock` in its destructor, for writing or for reading, and records what it found.
struct LocksInDrop {
    lock: Arc<RwLock<u32>>,
    write: bool,
    seen: Arc<AtomicUsize>,
}

impl Drop for LocksInDrop {
    fn drop(&mut self) {
        assert!(std::thread::panicking());
        let value = if self.write {
            let mut w = self.lock.write().unwrap_or_else(|e| e.into_inner());
            *w += 1;
            *w
        } else {
            *self.lock.read().unwrap_or_else(|e| e.into_inner())
        };
        self.seen.store(value as usize, Ordering::SeqCst);
    }
}

/// An OS thread that reads over and over keeps the lock read-held nearly all the time; a
/// green thread whose destructor writes while it unwinds waits for it without parking (the
/// write used to abort the process at once), and gets in: it queues ahead of the reader's
/// next read.
#[test]
fn write_while_unwinding_waits_for_an_os_thread_that_keeps_reading() {
    bounded(Duration::from_secs(60), || {
        let rt = green::Runtime::builder().workers(1).build().unwrap();
        let lock = Arc::new(RwLock::new(0u32));
        let stop = Arc::new(AtomicBool::new(false));
        let reads = Arc::new(AtomicUsize::new(0));
        let (held_tx, held_rx) = std::sync::mpsc::channel();
        let reader = {
            let (lock, stop, reads) = (lock.clone(), stop.clone(), reads.clone());
            std::thread::spawn(move || {
                // The first hold outlasts the start of the unwinding, so the write finds it
                // held; the later ones follow each other with no gap.
                let first = lock.read().unwrap();
                held_tx.send(()).unwrap();
                std::thread::sleep(Duration::from_millis(50));
                drop(first);
                while !stop.load(Ordering::SeqCst) {
                    let r = lock.read().unwrap();
                    let until = Instant::now() + Duration::from_micros(200);
                    while Instant::now() < until {
                        std::hint::spin_loop();
                    }
                    drop(r);
                    reads.fetch_add(1, Ordering::SeqCst);
                }
            })
        };
        held_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        let seen = Arc::new(AtomicUsize::new(0));
        let guard = LocksInDrop { lock: lock.clone(), write: true, seen: seen.clone() };
        let unwinder = rt.spawn(move || {
            let _guard = guard;
            panic!("unwind with a write to make while an OS thread reads");
        });
        assert!(unwinder.join().unwrap_err().is_panic());
        assert_eq!(seen.load(Ordering::SeqCst), 1, "the destructor's write");
        // The reader goes on after the write.
        let before = reads.load(Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(10);
        while reads.load(Ordering::SeqCst) < before + 3 {
            assert!(Instant::now() < deadline, "the reader stopped after the write");
            std::thread::sleep(Duration::from_millis(1));
        }
        stop.store(true, Ordering::SeqCst);
        reader.join().unwrap();
        assert_eq!(*lock.read().unwrap(), 1);
    });
}

/// A holder on the other worker of the runtime lets go without the unwinder's worker: a
/// destructor's `write` waits for a reader there, and its `read` for a writer there.
#[test]
fn lock_while_unwinding_waits_for_a_holder_on_another_worker() {
    bounded(Duration::from_secs(60), || {
        let rt = green::Runtime::builder().workers(2).build().unwrap();
        for write in [true, false] {
            let lock = Arc::new(RwLock::new(0u32));
            let (held_tx, held_rx) = std::sync::mpsc::channel();
            let holder = {
                let lock = lock.clone();
                green::Builder::new()
                    .worker(1)
                    .spawn_on(rt.handle(), move || {
                        let pause = || green::sleep(Duration::from_millis(100));
                        // Long enough for the unwinder to find it held, short against the 5 s.
                        if write {
                            let _r = lock.read().unwrap();
                            held_tx.send(()).unwrap();
                            pause();
                        } else {
                            let mut w = lock.write().unwrap();
                            held_tx.send(()).unwrap();
                            pause();
                            *w += 10;
                        }
                    })
                    .unwrap()
            };
            held_rx.recv_timeout(Duration::from_secs(10)).unwrap();
            let seen = Arc::new(AtomicUsize::new(0));
            let guard = LocksInDrop { lock: lock.clone(), write, seen: seen.clone() };
            let unwinder = green::Builder::new()
                .worker(0)
                .spawn_on(rt.handle(), move || {
                    let _guard = guard;
                    panic!("unwind with a lock held on the other worker");
                })
                .unwrap();
            assert!(unwinder.join().unwrap_err().is_panic());
            holder.join().unwrap();
            // The write came in after the reader, the read after the writer's increment.
            assert_eq!(seen.load(Ordering::SeqCst), if write { 1 } else { 10 });
        }
    });
}

/// A reader parked on the unwinder's own worker cannot let go while the unwinder blocks that
/// worker: the destructor's `write` aborts at once (not at the end of the 5 s wait), naming the
/// unwinder, the lock's state and the green thread that may be the reader. In a child process.
#[test]
fn write_while_unwinding_aborts_for_a_reader_on_its_own_worker() {
    const NAME: &str = "write_while_unwinding_aborts_for_a_reader_on_its_own_worker";
    if !common::child::is_child() {
        let output = common::child::run_child(NAME, Duration::from_secs(60));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.signal(), Some(libc::SIGABRT), "not aborted; stderr:\n{stderr}");
        for needle in [
            "\"unwinder\" tried to lock a green::sync::RwLock for writing while unwinding",
            "1 reader(s) hold it",
            "\"reader\" of its own worker",
            "may be one of them",
        ] {
            assert!(stderr.contains(needle), "stderr lacks {needle:?}:\n{stderr}");
        }
        assert!(!stderr.contains("within 5 s"), "it waited out the bound:\n{stderr}");
        return;
    }
    // One worker: the reader shares the unwinder's.
    green::Runtime::builder().workers(1).build().unwrap().block_on(|| {
        let lock = Arc::new(RwLock::new(0u32));
        let reader = {
            let lock = lock.clone();
            green::Builder::new()
                .name("reader".into())
                .spawn(move || {
                    let _r = lock.read().unwrap();
                    green::sleep(Duration::from_secs(3600));
                })
                .unwrap()
        };
        while lock.try_write().is_ok() {
            green::yield_now();
        }
        let guard = LocksInDrop { lock: lock.clone(), write: true, seen: Arc::default() };
        let unwinder = green::Builder::new()
            .name("unwinder".into())
            .spawn(move || {
                let _guard = guard;
                panic!("unwind with a write to make while a reader of this worker sleeps");
            })
            .unwrap();
        let _ = unwinder.join();
        drop(reader);
    });
    unreachable!("the child should have aborted");
}

/// A reader that was granted the lock while it waited, but has not run since, holds it: the
/// destructor's `write`, on the same worker, aborts at once instead of waiting for a reader
/// that cannot run. In a child process.
#[test]
fn write_while_unwinding_aborts_for_a_reader_granted_on_its_own_worker() {
    const NAME: &str = "write_while_unwinding_aborts_for_a_reader_granted_on_its_own_worker";
    if !common::child::is_child() {
        let output = common::child::run_child(NAME, Duration::from_secs(60));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.signal(), Some(libc::SIGABRT), "not aborted; stderr:\n{stderr}");
        for needle in ["\"unwinder\"", "1 reader(s) hold it", "\"reader\" of its own worker", "granted the lock"] {
            assert!(stderr.contains(needle), "stderr lacks {needle:?}:\n{stderr}");
        }
        return;
    }

    /// Has the OS thread let go of its write lock, then writes.
    struct WritesAfterRelease {
        lock: Arc<RwLock<u32>>,
        release: std::sync::mpsc::Sender<()>,
        released: Arc<AtomicBool>,
    }

    impl Drop for WritesAfterRelease {
        fn drop(&mut self) {
            self.release.send(()).unwrap();
            // Spins without yielding: the reader is granted the lock meanwhile, and cannot run.
            while !self.released.load(Ordering::SeqCst) {
                std::hint::spin_loop();
            }
            drop(self.lock.write());
        }
    }

    green::Runtime::builder().workers(1).build().unwrap().block_on(|| {
        let lock = Arc::new(RwLock::new(0u32));
        let released = Arc::new(AtomicBool::new(false));
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let (held_tx, held_rx) = std::sync::mpsc::channel();
        let writer = {
            let (lock, released) = (lock.clone(), released.clone());
            std::thread::spawn(move || {
                let w = lock.write().unwrap();
                held_tx.send(()).unwrap();
                release_rx.recv().unwrap();
                drop(w);
                released.store(true, Ordering::SeqCst);
            })
        };
        while held_rx.try_recv().is_err() {
            green::sleep(Duration::from_millis(1));
        }
        let asking = Arc::new(AtomicBool::new(false));
        let reader = {
            let (lock, asking) = (lock.clone(), asking.clone());
            green::Builder::new()
                .name("reader".into())
                .spawn(move || {
                    asking.store(true, Ordering::SeqCst);
                    let _r = lock.read().unwrap();
                    green::sleep(Duration::from_secs(3600));
                })
                .unwrap()
        };
        // One worker: once we run again after the flag, the reader has queued and parked.
        while !asking.load(Ordering::SeqCst) {
            green::yield_now();
        }
        let guard = WritesAfterRelease { lock: lock.clone(), release: release_tx, released };
        let unwinder = green::Builder::new()
            .name("unwinder".into())
            .spawn(move || {
                let _guard = guard;
                panic!("unwind with a write to make once the reader is granted");
            })
            .unwrap();
        let _ = unwinder.join();
        drop((reader, writer));
    });
    unreachable!("the child should have aborted");
}

/// An unwinding `read` takes the lock beside its readers even though a writer waits for them:
/// it cannot queue behind that writer, which waits for a reader of its own worker.
#[test]
fn read_while_unwinding_joins_the_readers_past_a_queued_writer() {
    bounded(Duration::from_secs(60), || {
        green::Runtime::builder().workers(1).build().unwrap().block_on(|| {
            let lock = Arc::new(RwLock::new(7u32));
            let r = lock.read().unwrap();
            let writer = {
                let lock = lock.clone();
                green::spawn(move || *lock.write().unwrap() += 1)
            };
            // The writer queues behind our read guard: new readers now queue behind it.
            while lock.try_read().is_ok() {
                green::yield_now();
            }
            let seen = Arc::new(AtomicUsize::new(0));
            let guard = LocksInDrop { lock: lock.clone(), write: false, seen: seen.clone() };
            let unwinder = green::spawn(move || {
                let _guard = guard;
                panic!("unwind with a read to make while a writer waits");
            });
            assert!(unwinder.join().unwrap_err().is_panic());
            assert_eq!(seen.load(Ordering::SeqCst), 7, "the destructor read before the writer");
            assert!(!writer.is_finished(), "the writer got in past a read guard");
            drop(r);
            writer.join().unwrap();
            assert_eq!(*lock.read().unwrap(), 8);
        });
    });
}
