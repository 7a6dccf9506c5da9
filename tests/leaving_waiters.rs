//! A waiter at the head of a queue leaves (cancelled, at its own timeout, or at its
//! `green::timeout` deadline) at about the moment it is served or would be: the one queued behind
//! it is not stranded. For each primitive with a queue, with the leaving and the serving moved
//! against each other by a seeded jitter, many rounds; a stranded waiter fails its round.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use green::sync::{Condvar, Mutex, OnceLock, RwLock, Semaphore};

mod common;
use common::{Rng, bounded, eventually};

/// Time for a green thread just spawned to queue. Only which path a round takes depends on it:
/// the checks hold in any order.
fn parked_soon() {
    std::thread::sleep(Duration::from_micros(300));
}

/// How the head waiter leaves.
#[derive(Clone, Copy, Debug)]
enum Leave {
    /// Cancelled by another thread.
    Cancel,
    /// Its own timeout (`try_write_for`, `send_timeout`...).
    Own,
    /// Its `green::timeout` deadline.
    Deadline,
}

/// Rounds per test: each costs about a millisecond.
const ROUNDS: usize = 240;

const LEAVES: [Leave; 3] = [Leave::Cancel, Leave::Own, Leave::Deadline];

/// A reader queued behind a writer (readers that come after a waiting writer wait) while the
/// lock is held for reading: the writer leaves, the reader comes in.
#[test]
fn rwlock_reader_behind_a_leaving_writer() {
    bounded(Duration::from_secs(120), || {
        let rt = common::runtime(2);
        let mut rng = Rng(0x1234_5678);
        for round in 0..ROUNDS {
            let leave = LEAVES[round % 3];
            let lock = Arc::new(RwLock::new(()));
            let held = lock.read().unwrap(); // on this OS thread, for the whole round
            let d = rng.micros(400);
            let l = lock.clone();
            let writer = rt.spawn(move || match leave {
                Leave::Cancel => drop(l.write()),
                Leave::Own => drop(l.try_write_for(d)),
                Leave::Deadline => drop(green::timeout(d, || drop(l.write()))),
            });
            parked_soon();
            let l = lock.clone();
            let reader = rt.spawn(move || drop(l.read()));
            if let Leave::Cancel = leave {
                std::thread::sleep(rng.micros(300));
                writer.cancel();
            }
            let _ = writer.join();
            assert!(
                eventually(Duration::from_secs(5), || reader.is_finished()),
                "round {round} {leave:?}: the reader behind a leaving writer is stranded\n{}",
                rt.handle().dump()
            );
            reader.join().unwrap();
            drop(held);
        }
    });
}

/// A request for one permit queued behind one for two, with one free: the large one leaves, the
/// small one gets the free permit.
#[test]
fn semaphore_small_request_behind_a_leaving_large_one() {
    bounded(Duration::from_secs(120), || {
        let rt = common::runtime(2);
        let mut rng = Rng(0x9876_5432);
        for round in 0..ROUNDS {
            let leave = LEAVES[round % 3];
            let sem = Arc::new(Semaphore::new(2));
            let held = sem.acquire(); // one of two, for the whole round
            let d = rng.micros(400);
            let s = sem.clone();
            let large = rt.spawn(move || match leave {
                Leave::Cancel => drop(s.acquire_many(2)),
                Leave::Own => drop(s.try_acquire_many_for(2, d)),
                Leave::Deadline => drop(green::timeout(d, || drop(s.acquire_many(2)))),
            });
            parked_soon();
            let s = sem.clone();
            let small = rt.spawn(move || drop(s.acquire()));
            if let Leave::Cancel = leave {
                std::thread::sleep(rng.micros(300));
                large.cancel();
            }
            let _ = large.join();
            assert!(
                eventually(Duration::from_secs(5), || small.is_finished()),
                "round {round} {leave:?}: the small request behind a leaving large one is stranded"
            );
            small.join().unwrap();
            drop(held);
            assert_eq!(sem.available_permits(), 2);
        }
    });
}

/// `notify_one` at about the moment the first of two waiters leaves: either the first returns
/// notified, or the notification goes on to the second.
#[test]
fn condvar_notification_to_a_leaving_waiter() {
    bounded(Duration::from_secs(120), || {
        let rt = common::runtime(2);
        let mut rng = Rng(0x5555_1234);
        for round in 0..ROUNDS {
            let leave = LEAVES[round % 3];
            let pair = Arc::new((Mutex::new(()), Condvar::new()));
            let d = rng.micros(500);
            let first_notified = Arc::new(AtomicBool::new(false));
            let (p, f) = (pair.clone(), first_notified.clone());
            let entered = Arc::new(AtomicUsize::new(0));
            let e = entered.clone();
            let first = rt.spawn(move || {
                let g = p.0.lock().unwrap();
                e.fetch_add(1, Ordering::SeqCst);
                match leave {
                    Leave::Cancel => {
                        drop(p.1.wait(g));
                        f.store(true, Ordering::SeqCst);
                    }
                    Leave::Own => {
                        let (_g, r) = p.1.wait_timeout(g, d).unwrap();
                        f.store(!r.timed_out(), Ordering::SeqCst);
                    }
                    Leave::Deadline => {
                        if green::timeout(d, || drop(p.1.wait(g))).is_ok() {
                            f.store(true, Ordering::SeqCst);
                        }
                    }
                }
            });
            parked_soon();
            let woken = Arc::new(AtomicUsize::new(0));
            let (p, w, e) = (pair.clone(), woken.clone(), entered.clone());
            let second = rt.spawn(move || {
                let g = p.0.lock().unwrap();
                e.fetch_add(1, Ordering::SeqCst);
                drop(p.1.wait(g));
                w.fetch_add(1, Ordering::SeqCst);
            });
            // Both queued: each released the mutex only once it was.
            while entered.load(Ordering::SeqCst) < 2 {
                std::thread::yield_now();
            }
            drop(pair.0.lock().unwrap());
            if let Leave::Cancel = leave {
                let p = pair.clone();
                let t = rng.micros(100);
                let notifier = std::thread::spawn(move || {
                    std::thread::sleep(t);
                    p.1.notify_one();
                });
                std::thread::sleep(rng.micros(100));
                first.cancel();
                notifier.join().unwrap();
            } else {
                std::thread::sleep(rng.micros(500));
                pair.1.notify_one();
            }
            let _ = first.join();
            assert!(
                eventually(Duration::from_secs(5), || {
                    first_notified.load(Ordering::SeqCst) || woken.load(Ordering::SeqCst) > 0
                }),
                "round {round} {leave:?}: a notify_one was lost"
            );
            pair.1.notify_all();
            assert!(eventually(Duration::from_secs(5), || second.is_finished()));
            second.join().unwrap();
        }
    });
}

/// An initializer that is cancelled or runs out of time while others wait for it: one of them
/// initializes.
#[test]
fn once_lock_initializer_leaves_while_others_wait() {
    bounded(Duration::from_secs(120), || {
        let rt = common::runtime(2);
        let mut rng = Rng(0x7777_1111);
        for round in 0..ROUNDS {
            let leave = [Leave::Cancel, Leave::Deadline][round % 2];
            let cell = Arc::new(OnceLock::<u32>::new());
            let d = rng.micros(400);
            let c = cell.clone();
            let first = rt.spawn(move || match leave {
                Leave::Cancel | Leave::Own => {
                    c.get_or_init(|| {
                        green::sleep(Duration::from_secs(3600));
                        1
                    });
                }
                Leave::Deadline => {
                    let _ = green::timeout(d, || {
                        c.get_or_init(|| {
                            green::sleep(Duration::from_secs(3600));
                            1
                        });
                    });
                }
            });
            parked_soon();
            let others: Vec<_> = (0..2)
                .map(|i| {
                    let c = cell.clone();
                    rt.spawn(move || *c.get_or_init(|| 2 + i))
                })
                .collect();
            if let Leave::Cancel = leave {
                std::thread::sleep(rng.micros(300));
                first.cancel();
            }
            let _ = first.join();
            for o in others {
                assert!(
                    eventually(Duration::from_secs(5), || o.is_finished()),
                    "round {round} {leave:?}: a waiter for a cancelled initializer is stranded\n{}",
                    rt.handle().dump()
                );
                let v = o.join().unwrap();
                assert!(v == 2 || v == 3, "{v}");
            }
        }
    });
}

/// A full bounded channel: the first queued sender leaves as a receive frees the slot; the
/// second must get it without another receive.
#[test]
fn channel_sender_behind_a_leaving_sender() {
    use green::sync::mpmc;
    bounded(Duration::from_secs(120), || {
        let rt = common::runtime(2);
        let mut rng = Rng(0x4242_4242);
        for round in 0..ROUNDS {
            let leave = LEAVES[round % 3];
            let (tx, rx) = mpmc::sync_channel::<u32>(1);
            tx.send(0).unwrap();
            let d = rng.micros(500);
            let t1 = tx.clone();
            let first = rt.spawn(move || match leave {
                Leave::Cancel => t1.send(1).is_ok(),
                Leave::Own => t1.send_timeout(1, d).is_ok(),
                Leave::Deadline => green::timeout(d, || t1.send(1).is_ok()).unwrap_or(false),
            });
            parked_soon();
            let t2 = tx.clone();
            let second = rt.spawn(move || t2.send(2).is_ok());
            parked_soon();
            if let Leave::Cancel = leave {
                let c = rng.micros(100);
                let n = std::thread::spawn({
                    let t = rng.micros(100);
                    let rx = rx.clone();
                    move || {
                        std::thread::sleep(t);
                        rx.recv().unwrap()
                    }
                });
                std::thread::sleep(c);
                first.cancel();
                assert_eq!(n.join().unwrap(), 0);
            } else {
                std::thread::sleep(rng.micros(500));
                assert_eq!(rx.recv().unwrap(), 0);
            }
            let first_sent = first.join().unwrap_or(false);
            if !first_sent {
                assert!(
                    eventually(Duration::from_secs(5), || second.is_finished()),
                    "round {round} {leave:?}: the second sender is stranded behind a leaving first"
                );
                assert!(second.join().unwrap());
                assert_eq!(rx.try_recv(), Ok(2));
            } else {
                assert_eq!(rx.recv().unwrap(), 1);
                assert!(second.join().unwrap());
                assert_eq!(rx.recv().unwrap(), 2);
            }
            assert!(rx.try_recv().is_err());
        }
    });
}

/// A rendezvous channel: the first queued receiver leaves as a sender hands it a message; the
/// second receiver must get it.
#[test]
fn channel_receiver_behind_a_leaving_receiver() {
    use green::sync::mpmc;
    bounded(Duration::from_secs(120), || {
        let rt = common::runtime(2);
        let mut rng = Rng(0x2424_2424);
        for round in 0..ROUNDS {
            let leave = LEAVES[round % 3];
            let rendezvous = round % 2 == 0;
            let (tx, rx) = if rendezvous { mpmc::sync_channel::<u32>(0) } else { mpmc::channel::<u32>() };
            let d = rng.micros(500);
            let r1 = rx.clone();
            let first = rt.spawn(move || match leave {
                Leave::Cancel => r1.recv().ok(),
                Leave::Own => r1.recv_timeout(d).ok(),
                Leave::Deadline => green::timeout(d, || r1.recv().ok()).unwrap_or(None),
            });
            parked_soon();
            let r2 = rx.clone();
            let second = rt.spawn(move || r2.recv().ok());
            parked_soon();
            let sender = {
                let t = rng.micros(200);
                let tx = tx.clone();
                std::thread::spawn(move || {
                    std::thread::sleep(t);
                    tx.send(9).unwrap()
                })
            };
            if let Leave::Cancel = leave {
                std::thread::sleep(rng.micros(200));
                first.cancel();
            }
            let got_first = first.join().unwrap_or(None);
            sender.join().unwrap();
            if got_first.is_none() {
                assert!(
                    eventually(Duration::from_secs(5), || second.is_finished()),
                    "round {round} {leave:?} rendezvous {rendezvous}: the message is stranded"
                );
                assert_eq!(second.join().unwrap(), Some(9));
            } else {
                drop(tx);
                assert_eq!(second.join().unwrap(), None);
            }
        }
    });
}

/// Two readers of one socket: the first leaves as a byte arrives; the second must get it.
#[test]
fn socket_reader_behind_a_leaving_reader() {
    use std::io::{Read, Write};
    bounded(Duration::from_secs(120), || {
        let rt = common::runtime(2);
        let mut rng = Rng(0x3131_3131);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut a = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (b, _) = listener.accept().unwrap();
        let b = Arc::new(rt.block_on(move || green::net::TcpStream::from(b)));
        for round in 0..ROUNDS {
            let leave = [Leave::Cancel, Leave::Deadline][round % 2];
            let d = rng.micros(500);
            let s = b.clone();
            let first = rt.spawn(move || {
                let mut buf = [0u8; 1];
                match leave {
                    Leave::Cancel | Leave::Own => (&*s).read(&mut buf).ok(),
                    Leave::Deadline => green::timeout(d, || (&*s).read(&mut buf).ok()).unwrap_or(None),
                }
            });
            parked_soon();
            let s = b.clone();
            let second = rt.spawn(move || {
                let mut buf = [0u8; 1];
                (&*s).read(&mut buf).ok()
            });
            parked_soon();
            let w = rng.micros(300);
            let c = rng.micros(300);
            let writer = {
                let mut a = a.try_clone().unwrap();
                std::thread::spawn(move || {
                    std::thread::sleep(w);
                    a.write_all(&[7]).unwrap();
                })
            };
            if let Leave::Cancel = leave {
                std::thread::sleep(c);
                first.cancel();
            }
            let got_first = first.join().unwrap_or(None);
            writer.join().unwrap();
            if got_first.is_none() {
                assert!(
                    eventually(Duration::from_secs(5), || second.is_finished()),
                    "round {round} {leave:?}: the byte is stranded\n{}",
                    rt.handle().dump()
                );
                assert_eq!(second.join().unwrap(), Some(1));
            } else {
                a.write_all(&[8]).unwrap();
                assert_eq!(second.join().unwrap(), Some(1));
            }
        }
        drop(a);
    });
}
