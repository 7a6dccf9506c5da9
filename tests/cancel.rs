//! Cancellation of a green thread parked in each kind of wait, each verified by a destructor
//! that records it ran; cancellation caught by user code and raised again; a message, lock or
//! notification given to a green thread as it is cancelled goes to another waiter.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use green::sync::{Barrier, Condvar, Mutex, RwLock, Semaphore, WaitGroup, mpmc, oneshot};

mod common;
use common::bounded;

/// Sets its flag when dropped: proof that the cancelled green thread's destructors ran.
struct Recorder(Arc<AtomicBool>);

impl Drop for Recorder {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Spawns a green thread that parks in `wait` forever, cancels it once it is parked (from an
/// OS thread when `from_os` is set), and checks that it unwound through its destructors.
fn cancel_while_parked(rt: &green::Runtime, what: &str, from_os: bool, wait: impl FnOnce() + Send + 'static) {
    let dropped = Arc::new(AtomicBool::new(false));
    let entered = Arc::new(AtomicBool::new(false));
    let (d, e) = (dropped.clone(), entered.clone());
    let handle = rt.spawn(move || {
        let _recorder = Recorder(d);
        e.store(true, Ordering::SeqCst);
        wait();
        panic!("the wait returned");
    });
    while !entered.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_millis(10)); // let it park
    assert!(!handle.is_finished(), "{what}: did not wait");
    let handle = Arc::new(handle);
    if from_os {
        handle.cancel();
    } else {
        let h = handle.clone();
        rt.spawn(move || h.cancel()).join().unwrap();
    }
    let handle = Arc::try_unwrap(handle).unwrap_or_else(|_| panic!("{what}: handle still shared"));
    let err = handle.join().expect_err(what);
    assert!(err.is_cancelled(), "{what}: {err}");
    assert!(dropped.load(Ordering::SeqCst), "{what}: destructors did not run");
}

#[test]
fn cancel_a_green_thread_parked_in_each_kind_of_wait() {
    bounded(Duration::from_secs(60), || {
        let rt = green::Runtime::builder().workers(2).build().unwrap();
        for from_os in [true, false] {
            let (tx, rx) = mpmc::channel::<u32>();
            cancel_while_parked(&rt, "recv", from_os, move || {
                let _ = rx.recv();
            });
            drop(tx);

            let (tx, rx) = mpmc::sync_channel::<u32>(1);
            tx.send(0).unwrap();
            cancel_while_parked(&rt, "send on a full channel", from_os, move || {
                let _ = tx.send(1);
            });
            assert_eq!(rx.try_recv(), Ok(0));
            assert!(rx.try_recv().is_err(), "the cancelled send delivered its value");

            let (tx, rx) = mpmc::sync_channel::<u32>(0);
            cancel_while_parked(&rt, "send on a rendezvous channel", from_os, move || {
                let _ = tx.send(1);
            });
            assert!(rx.try_recv().is_err());

            let (tx, rx) = mpmc::channel::<u32>();
            cancel_while_parked(&rt, "select", from_os, move || {
                green::select! {
                    recv(rx) -> _ => {},
                }
            });
            drop(tx);

            cancel_while_parked(&rt, "sleep", from_os, || green::sleep(Duration::from_secs(3600)));

            // Held here, on the test's thread, for as long as the waiter must wait.
            let m = Arc::new(Mutex::new(()));
            let held = m.lock().unwrap();
            let m2 = m.clone();
            cancel_while_parked(&rt, "lock", from_os, move || drop(m2.lock()));
            drop(held);
            assert!(!m.is_poisoned());
            assert!(m.try_lock().is_ok(), "the cancelled waiter left the mutex locked");

            let lock = Arc::new(RwLock::new(()));
            let w = lock.write().unwrap();
            let (l1, l2) = (lock.clone(), lock.clone());
            cancel_while_parked(&rt, "read", from_os, move || drop(l1.read()));
            cancel_while_parked(&rt, "write", from_os, move || drop(l2.write()));
            drop(w);
            assert!(lock.try_write().is_ok());

            let pair = Arc::new((Mutex::new(()), Condvar::new()));
            let p = pair.clone();
            cancel_while_parked(&rt, "condvar", from_os, move || {
                let g = p.0.lock().unwrap();
                drop(p.1.wait(g));
            });
            assert!(pair.0.try_lock().is_ok(), "the cancelled waiter left the mutex locked");

            let sem = Arc::new(Semaphore::new(0));
            let s = sem.clone();
            cancel_while_parked(&rt, "acquire", from_os, move || drop(s.acquire()));
            sem.add_permits(1);
            assert_eq!(sem.available_permits(), 1);

            let barrier = Arc::new(Barrier::new(2));
            let b = barrier.clone();
            cancel_while_parked(&rt, "barrier", from_os, move || {
                let _ = b.wait();
            });

            let wg = Arc::new(WaitGroup::new());
            wg.add(1);
            let w = wg.clone();
            cancel_while_parked(&rt, "wait group", from_os, move || w.wait());

            let (tx, rx) = oneshot::channel::<u32>();
            cancel_while_parked(&rt, "oneshot", from_os, move || {
                let _ = rx.recv();
            });
            drop(tx);

            cancel_while_parked(&rt, "join", from_os, || {
                let forever = green::spawn(|| green::sleep(Duration::from_secs(3600)));
                drop(forever.join());
            });

            cancel_while_parked(&rt, "park", from_os, || {
                loop {
                    green::park();
                }
            });

            let listener = green::net::TcpListener::bind("127.0.0.1:0").unwrap();
            cancel_while_parked(&rt, "accept", from_os, move || drop(listener.accept()));

            let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr2 = server.local_addr().unwrap();
            let keep = std::thread::spawn(move || server.accept().map(|(s, _)| s));
            cancel_while_parked(&rt, "read", from_os, move || {
                let mut stream = green::net::TcpStream::connect(addr2).unwrap();
                let mut buf = [0; 8];
                drop(stream.read(&mut buf));
            });
            drop(keep.join());
        }
    });
}

/// `join` itself: the joiner is cancelled while the joined green thread runs on.
#[test]
fn cancel_a_joiner() {
    bounded(Duration::from_secs(20), || {
        let rt = green::Runtime::builder().workers(2).build().unwrap();
        let dropped = Arc::new(AtomicBool::new(false));
        let d = dropped.clone();
        let joiner = rt.spawn(move || {
            let _recorder = Recorder(d);
            let sleeper = green::spawn(|| green::sleep(Duration::from_millis(300)));
            sleeper.join().unwrap();
        });
        std::thread::sleep(Duration::from_millis(20));
        joiner.cancel();
        assert!(joiner.join().unwrap_err().is_cancelled());
        assert!(dropped.load(Ordering::SeqCst));
    });
}

/// A green thread that catches its cancellation meets it again at its next cancellation point.
#[test]
fn a_caught_cancellation_is_raised_again() {
    bounded(Duration::from_secs(20), || {
        green::run(|| {
            let caught = Arc::new(AtomicUsize::new(0));
            let c = caught.clone();
            let started = Arc::new(AtomicBool::new(false));
            let s = started.clone();
            let (tx, rx) = mpmc::channel::<u32>();
            let stubborn = green::spawn(move || {
                s.store(true, Ordering::SeqCst);
                for _ in 0..3 {
                    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rx.recv()));
                    if r.is_err() {
                        c.fetch_add(1, Ordering::SeqCst);
                    }
                }
                // Not parked, just a blocking-looking call that completes at once: still a
                // cancellation point.
                let m = Mutex::new(());
                let _g = m.lock();
                unreachable!("the cancellation was swallowed");
            });
            // Cancelled before it starts, it would never run: nothing would be caught.
            while !started.load(Ordering::SeqCst) {
                green::sleep(Duration::from_millis(1));
            }
            stubborn.cancel();
            assert!(stubborn.join().unwrap_err().is_cancelled());
            assert_eq!(caught.load(Ordering::SeqCst), 3);
            assert!(!green::is_cancelled());
            drop(tx);
        });
    });
}

/// A message handed to a receiver that is cancelled before it runs goes to the next receiver.
#[test]
fn a_message_for_a_cancelled_receiver_goes_to_another() {
    bounded(Duration::from_secs(30), || {
        green::Runtime::builder().workers(1).build().unwrap().block_on(|| {
            for cap in [None, Some(0), Some(1)] {
                for _ in 0..20 {
                    let (tx, rx) = match cap {
                        Some(cap) => mpmc::sync_channel::<u32>(cap),
                        None => mpmc::channel::<u32>(),
                    };
                    let (rx1, rx2) = (rx.clone(), rx);
                    let first = green::spawn(move || rx1.recv());
                    let second = green::spawn(move || rx2.recv());
                    green::sleep(Duration::from_millis(1)); // both parked, `first` queued first
                    if cap == Some(0) {
                        // A rendezvous send would wait for the receiver it chose; on one
                        // worker, send from another green thread and cancel before anyone runs.
                        let tx2 = tx.clone();
                        let sender = green::spawn(move || tx2.send(7).unwrap());
                        green::yield_now();
                        first.cancel();
                        sender.join().unwrap();
                    } else {
                        tx.send(7).unwrap(); // chooses `first`, which has not run yet
                        first.cancel();
                    }
                    assert!(first.join().unwrap_err().is_cancelled());
                    assert_eq!(second.join().unwrap(), Ok(7));
                }
            }
        });
    });
}

/// A message handed to a receiver that is cancelled before it runs, with every sender gone
/// meanwhile, still reaches the other receiver: the disconnection waits for it.
#[test]
fn a_message_in_flight_outlives_the_disconnection() {
    bounded(Duration::from_secs(30), || {
        green::Runtime::builder().workers(1).build().unwrap().block_on(|| {
            for _ in 0..20 {
                let (tx, rx) = mpmc::channel::<u32>();
                let (rx1, rx2) = (rx.clone(), rx);
                let first = green::spawn(move || rx1.recv());
                green::sleep(Duration::from_millis(1)); // `first` queued first
                let second = green::spawn(move || (rx2.recv(), rx2.recv()));
                green::sleep(Duration::from_millis(1));
                tx.send(7).unwrap(); // into `first`'s slot; `first` has not run yet
                first.cancel();
                drop(tx); // the last sender goes while 7 is in flight
                assert!(first.join().unwrap_err().is_cancelled());
                assert_eq!(second.join().unwrap(), (Ok(7), Err(mpmc::RecvError)));
            }
        });
    });
}

/// `is_cancelled` reports the flag before the next cancellation point.
#[test]
fn is_cancelled_before_the_next_cancellation_point() {
    green::run(|| {
        let seen = Arc::new(AtomicBool::new(false));
        let s = seen.clone();
        let go = Arc::new(AtomicBool::new(false));
        let g = go.clone();
        let started = Arc::new(AtomicBool::new(false));
        let st = started.clone();
        let busy = green::spawn(move || {
            st.store(true, Ordering::SeqCst);
            while !g.load(Ordering::SeqCst) {
                green::tick();
            }
            s.store(green::is_cancelled(), Ordering::SeqCst);
            green::yield_now();
        });
        // Cancelled before it starts, it would never run, and never look at the flag.
        while !started.load(Ordering::SeqCst) {
            green::sleep(Duration::from_millis(1));
        }
        busy.cancel();
        go.store(true, Ordering::SeqCst);
        assert!(busy.join().unwrap_err().is_cancelled());
        assert!(seen.load(Ordering::SeqCst));
    });
}

/// A `select!` that may wait is a cancellation point even when an arm is ready at once, as
/// `recv` is: a loop whose channels always have something for it still stops when cancelled.
#[test]
fn a_select_with_a_ready_arm_is_a_cancellation_point() {
    bounded(Duration::from_secs(20), || {
        green::run(|| {
            for timed in [false, true] {
                // A closed channel is always ready; the loop has no other cancellation point.
                let (tx, closed) = mpmc::channel::<u32>();
                drop(tx);
                let (_keep, open) = mpmc::channel::<u32>();
                let busy = green::spawn(move || {
                    loop {
                        if timed {
                            green::select! {
                                recv(closed) -> v => assert!(v.is_err()),
                                timeout(Duration::from_secs(10)) => unreachable!(),
                            }
                        } else {
                            green::select! {
                                recv(open) -> _ => unreachable!(),
                                recv(closed) -> v => assert!(v.is_err()),
                            }
                        }
                    }
                });
                green::sleep(Duration::from_millis(5));
                busy.cancel();
                assert!(busy.join().unwrap_err().is_cancelled(), "timed: {timed}");
            }
        });
    });
}
