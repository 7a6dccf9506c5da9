//! `green::timeout`: around each kind of wait; timed operations return their own timeout error
//! at the deadline, once; operations that need not wait complete, but a loop of them looks at the
//! deadline once per budget; nesting takes the earliest
//! deadline; the deadline is restored afterwards; it works on OS threads too.

mod common;
use common::bounded;

use std::cell::Cell;
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use green::Elapsed;
use green::sync::mpmc::{self, RecvTimeoutError, SendTimeoutError};
use green::sync::{Barrier, Condvar, Mutex, RwLock, Semaphore, WaitGroup, oneshot};

const SHORT: Duration = Duration::from_millis(10);
const HOUR: Duration = Duration::from_secs(3600);

struct Recorder(Arc<AtomicBool>);

impl Drop for Recorder {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// `f` waits forever; `green::timeout(SHORT, f)` must return `Err(Elapsed)` after about
/// `SHORT`, having run `f`'s destructors.
fn expires(what: &str, f: impl FnOnce()) {
    let dropped = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let r = green::timeout(SHORT, || {
        let _recorder = Recorder(dropped.clone());
        f();
    });
    let took = start.elapsed();
    assert_eq!(r, Err(Elapsed), "{what}");
    assert!(took >= SHORT, "{what}: returned after {took:?}");
    assert!(took < Duration::from_secs(2), "{what}: took {took:?}");
    assert!(dropped.load(Ordering::SeqCst), "{what}: destructors did not run");
}

/// An I/O call that waits forever, under a `SHORT` deadline: it returns after about `SHORT`,
/// with a timeout error or by unwinding to the `green::timeout`.
fn io_expires(what: &str, mut f: impl FnMut() -> std::io::Result<()>) {
    let start = Instant::now();
    let r = green::timeout(SHORT, &mut f);
    let took = start.elapsed();
    match r {
        Err(Elapsed) => {}
        Ok(Err(e)) if matches!(e.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock) => {}
        other => panic!("{what}: {other:?}"),
    }
    assert!(took >= SHORT && took < Duration::from_secs(2), "{what}: returned after {took:?}");
}

#[test]
fn around_each_kind_of_wait() {
    bounded(Duration::from_secs(60), || {
        green::Runtime::builder().workers(2).build().unwrap().block_on(|| {
            let (tx, rx) = mpmc::channel::<u32>();
            expires("recv", || {
                let _ = rx.recv();
            });
            let (full, _keep) = mpmc::sync_channel::<u32>(0);
            expires("send", || {
                let _ = full.send(1);
            });
            expires("select", || {
                green::select! {
                    recv(rx) -> _ => {},
                    send(full, 2) -> _ => {},
                }
            });
            expires("sleep", || green::sleep(HOUR));
            let forever = green::spawn(|| green::sleep(HOUR));
            expires("join", || drop(forever.join()));
            // Locks held by another green thread (a relock by the holder panics).
            let (m, rw) = (Arc::new(Mutex::new(())), Arc::new(RwLock::new(())));
            let (held_tx, held_rx) = mpmc::channel();
            let holder = {
                let (m, rw) = (m.clone(), rw.clone());
                green::spawn(move || {
                    let (_held, _w) = (m.lock().unwrap(), rw.write().unwrap());
                    held_tx.send(()).unwrap();
                    green::sleep(HOUR);
                })
            };
            held_rx.recv().unwrap();
            expires("lock", || drop(m.lock()));
            expires("read", || drop(rw.read()));
            expires("write", || drop(rw.write()));
            holder.cancel();
            assert!(holder.join().is_err());
            let (cm, cv) = (Mutex::new(()), Condvar::new());
            expires("condvar", || drop(cv.wait(cm.lock().unwrap())));
            assert!(cm.try_lock().is_ok());
            let sem = Semaphore::new(0);
            expires("acquire", || drop(sem.acquire()));
            let barrier = Barrier::new(2);
            expires("barrier", || {
                let _ = barrier.wait();
            });
            let wg = WaitGroup::new();
            wg.add(1);
            expires("wait group", || wg.wait());
            let (_otx, orx) = oneshot::channel::<u32>();
            expires("oneshot", move || {
                let _ = orx.recv();
            });
            // `park` may return spuriously: at the deadline it returns, and parking again
            // unwinds to the timeout.
            expires("park", || {
                loop {
                    green::park();
                }
            });
            // I/O: either its own timeout error (the kind std uses for a socket timeout) or,
            // where it does not read the deadline itself, the unwinding to `green::timeout`.
            let listener = green::net::TcpListener::bind("127.0.0.1:0").unwrap();
            io_expires("accept", || listener.accept().map(drop));
            let addr = listener.local_addr().unwrap();
            let mut stream = green::net::TcpStream::connect(addr).unwrap();
            let _server_side = listener.accept().unwrap();
            io_expires("read", || stream.read(&mut [0; 8]).map(drop));
            let (_a, b) = std::os::unix::net::UnixStream::pair().unwrap();
            io_expires("wait_readable", || green::io::wait_readable(&b));
            drop(tx);
        });
    });
}

/// Operations with a timeout of their own report it at the `green::timeout` deadline, and the
/// closure goes on.
#[test]
fn timed_operations_return_their_own_error() {
    bounded(Duration::from_secs(30), || {
        green::run(|| {
            // One per scope: a second would unwind (the test below).
            fn own<T>(f: impl FnOnce() -> T) -> T {
                green::timeout(SHORT, f).expect("the timed operation returned its own error")
            }
            let (tx, rx) = mpmc::sync_channel::<u32>(0);
            assert_eq!(own(|| rx.recv_timeout(HOUR)), Err(RecvTimeoutError::Timeout));
            assert_eq!(own(|| tx.send_timeout(1, HOUR)), Err(SendTimeoutError::Timeout(1)));
            let arm = own(|| {
                green::select! {
                    recv(rx) -> _ => "recv",
                    timeout(HOUR) => "timeout arm",
                }
            });
            assert_eq!(arm, "timeout arm");
            let m = Mutex::new(());
            let _g = m.lock().unwrap();
            assert!(own(|| m.try_lock_for(HOUR).is_err()));
            let (cm, cv) = (Mutex::new(()), Condvar::new());
            assert!(own(|| cv.wait_timeout(cm.lock().unwrap(), HOUR).unwrap().1.timed_out()));
            let sem = Semaphore::new(0);
            assert!(own(|| sem.try_acquire_for(HOUR).is_none()));
            let wg = WaitGroup::new();
            wg.add(1);
            assert!(own(|| !wg.wait_timeout(HOUR)));
        });
    });
}

/// A timeout error reports the deadline once: a loop that takes it for a cue to try again ends
/// at the next attempt, which unwinds to the `green::timeout`, instead of failing at once
/// forever. For each kind of timed call, on a green thread.
#[test]
fn a_timeout_error_reports_the_deadline_once() {
    bounded(Duration::from_secs(60), || {
        green::run(|| {
            /// Runs `attempt` in a loop under a `SHORT` deadline, as a retry loop would: once
            /// the deadline has passed, it must fail exactly once, then unwind. (Before, its
            /// own timeout may fail it any number of times.)
            fn retried(what: &str, mut attempt: impl FnMut() -> bool) {
                let mut late_failures = 0;
                let deadline = Instant::now() + SHORT;
                let r = green::timeout_at(deadline, || {
                    while late_failures < 1_000 {
                        assert!(!attempt(), "{what}: succeeded");
                        late_failures += usize::from(Instant::now() >= deadline);
                    }
                });
                assert_eq!((r, late_failures), (Err(Elapsed), 1), "{what}");
                assert!(Instant::now() >= deadline, "{what}: early");
            }
            let (tx, rx) = mpmc::sync_channel::<u32>(0);
            retried("recv_timeout", || rx.recv_timeout(Duration::from_millis(1)).is_ok());
            retried("send_timeout", || tx.send_timeout(1, HOUR).is_ok());
            retried("select! timeout arm", || {
                green::select! {
                    recv(rx) -> _ => true,
                    timeout(Duration::from_millis(1)) => false,
                }
            });
            let (_otx, orx) = oneshot::channel::<u32>();
            retried("oneshot recv_timeout", || orx.recv_timeout(HOUR).is_ok());
            let m = Mutex::new(());
            let rw = RwLock::new(());
            let (_g, _w) = (m.lock().unwrap(), rw.write().unwrap());
            retried("Mutex::try_lock_for", || m.try_lock_for(HOUR).is_ok());
            retried("RwLock::try_read_for", || rw.try_read_for(HOUR).is_ok());
            let (cm, cv) = (Mutex::new(()), Condvar::new());
            retried("Condvar::wait_timeout", || !cv.wait_timeout(cm.lock().unwrap(), HOUR).unwrap().1.timed_out());
            let sem = Semaphore::new(0);
            retried("Semaphore::try_acquire_for", || sem.try_acquire_for(HOUR).is_some());
            let wg = WaitGroup::new();
            wg.add(1);
            retried("WaitGroup::wait_timeout", || wg.wait_timeout(HOUR));

            let listener = green::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let stream = green::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let _server_side = listener.accept().unwrap();
            // The socket's own read timeout first, then the deadline's.
            stream.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
            let mut reads = 0;
            let mut deadline_errors = 0;
            let r = green::timeout(SHORT, || {
                while reads < 1_000_000 {
                    reads += 1;
                    match (&stream).read(&mut [0; 8]) {
                        Err(e) if e.get_ref().is_some_and(|inner| inner.is::<Elapsed>()) => deadline_errors += 1,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        other => panic!("read: {other:?}"),
                    }
                }
            });
            assert_eq!((r, deadline_errors), (Err(Elapsed), 1), "a read retried on WouldBlock, {reads} reads");
            retried("accept", || listener.accept().is_ok());
            let (_a, b) = std::os::unix::net::UnixStream::pair().unwrap();
            retried("green::io::wait_readable", || green::io::wait_readable(&b).is_ok());
        });
    });
}

/// After the deadline's report, calls that need not wait still complete (an answer to the
/// timeout can be sent), and the next one that would wait unwinds.
#[test]
fn after_the_report_calls_that_need_not_wait_still_complete() {
    green::run(|| {
        let (tx, rx) = mpmc::channel::<u32>();
        let mut steps = Vec::new();
        let r = green::timeout(SHORT, || {
            steps.push(format!("{:?}", rx.recv_timeout(HOUR)));
            tx.send(1).unwrap();
            steps.push(format!("{:?}", rx.recv_timeout(HOUR)));
            let _ = rx.recv_timeout(HOUR);
            unreachable!("the deadline was reported already");
        });
        assert_eq!(r, Err(Elapsed));
        assert_eq!(steps, ["Err(Timeout)", "Ok(1)"]);
    });
}

/// The same on a plain OS thread: a retry loop on a timed receive ends at the deadline.
#[test]
fn a_timeout_error_reports_the_deadline_once_on_an_os_thread() {
    let (_tx, rx) = mpmc::channel::<u32>();
    let mut errors = 0;
    let r = green::timeout(SHORT, || {
        while errors < 1_000 {
            assert_eq!(rx.recv_timeout(HOUR), Err(RecvTimeoutError::Timeout));
            errors += 1;
        }
    });
    assert_eq!((r, errors), (Err(Elapsed), 1));
}

/// An inner `green::timeout` that inherits the outer deadline shares its report; one with an
/// earlier deadline of its own does not use up the outer one's.
#[test]
fn nested_scopes_share_the_report_of_one_deadline() {
    green::run(|| {
        let (_tx, rx) = mpmc::channel::<u32>();
        let r = green::timeout(SHORT, || {
            let inner = green::timeout(HOUR, || rx.recv_timeout(HOUR));
            assert_eq!(inner, Ok(Err(RecvTimeoutError::Timeout)));
            let _ = rx.recv_timeout(HOUR);
            unreachable!("the outer deadline was reported inside the inner scope");
        });
        assert_eq!(r, Err(Elapsed));

        let r = green::timeout(Duration::from_secs(5), || {
            let inner = green::timeout(Duration::from_millis(1), || rx.recv_timeout(HOUR));
            assert_eq!(inner, Ok(Err(RecvTimeoutError::Timeout)));
            // The outer deadline has not passed: its first report is still to come.
            rx.recv_timeout(Duration::from_millis(1))
        });
        assert_eq!(r, Ok(Err(RecvTimeoutError::Timeout)));
    });
}

#[test]
fn operations_that_need_not_wait_are_not_affected() {
    green::run(|| {
        let (tx, rx) = mpmc::channel();
        tx.send(1).unwrap();
        let m = Mutex::new(2);
        let r = green::timeout(Duration::ZERO, || {
            std::thread::sleep(Duration::from_millis(1)); // the deadline has passed
            (rx.recv().unwrap(), *m.lock().unwrap(), tx.send(3).is_ok())
        });
        assert_eq!(r, Ok((1, 2, true)));
    });
}

/// A sleep that need not wait (zero, or until an instant already reached) returns, as a
/// `recv` with a message there does, on a green thread and on an OS thread alike; so does one
/// that ends exactly at the deadline.
#[test]
fn a_sleep_that_need_not_wait_is_not_affected() {
    let check = || {
        let r = green::timeout(Duration::ZERO, || {
            std::thread::sleep(Duration::from_millis(1)); // the deadline has passed
            green::sleep(Duration::ZERO);
            green::sleep_until(Instant::now() - Duration::from_millis(1));
            7
        });
        assert_eq!(r, Ok(7));
        let at = Instant::now() + Duration::from_millis(5);
        assert_eq!(green::timeout_at(at, || green::sleep_until(at)), Ok(()));
        // It still unwinds when the sleep would wait past the deadline.
        assert_eq!(green::timeout(Duration::from_millis(1), || green::sleep(HOUR)), Err(Elapsed));
    };
    bounded(Duration::from_secs(30), move || {
        green::run(check);
        check();
    });
}

/// A deadline that passes between a wait's last look at it and its park still ends the park:
/// the wait does not go on to its own end (or for good). Deadlines a few hundred nanoseconds
/// away, stepped through that window: a sleep of 10 s or a join of a green thread that ends
/// 10 s later must each come back at once (within 5 s, on a loaded machine). Neither wait's own
/// end costs anything when the test passes: the deadline ends the sleep, the sender's drop the
/// joined green thread's receive.
#[test]
fn a_deadline_that_passes_as_the_wait_parks_still_ends_it() {
    const OWN: Duration = Duration::from_secs(10);
    bounded(Duration::from_secs(60), || {
        let rt = green::Runtime::builder().workers(1).build().unwrap();
        rt.block_on(|| {
            let start = Instant::now();
            for round in 0..3000u64 {
                if start.elapsed() > Duration::from_secs(20) {
                    break;
                }
                let near = Duration::from_nanos(round * 13 % 5000);
                let t0 = Instant::now();
                let r = green::timeout(near, || green::sleep(OWN));
                let took = t0.elapsed();
                assert!(took < OWN / 2, "round {round}: timeout({near:?}, sleep) took {took:?} and gave {r:?}");

                let (tx, rx) = mpmc::channel::<()>();
                let target = green::spawn(move || {
                    let _ = rx.recv_timeout(OWN);
                });
                let t0 = Instant::now();
                let r = green::timeout(near, || target.join().is_ok());
                let took = t0.elapsed();
                drop(tx);
                assert!(took < OWN / 2, "round {round}: timeout({near:?}, join) took {took:?} and gave {r:?}");
            }
        });
    });
}

#[test]
fn nested_deadlines_take_the_earliest() {
    bounded(Duration::from_secs(30), || {
        green::run(|| {
            let (_tx, rx) = mpmc::channel::<u32>();
            // The outer deadline is earlier: it passes through the inner timeout.
            let start = Instant::now();
            let outer = green::timeout(SHORT, || {
                let inner = green::timeout(HOUR, || rx.recv());
                unreachable!("the inner timeout returned {inner:?}");
            });
            assert_eq!(outer, Err::<(), _>(Elapsed));
            assert!(start.elapsed() < Duration::from_secs(2));
            // The inner deadline is earlier: it ends the inner closure only.
            let outer = green::timeout(HOUR, || {
                let inner = green::timeout(SHORT, || rx.recv());
                assert_eq!(inner, Err(Elapsed));
                // The outer deadline is back in force, and far.
                rx.recv_timeout(Duration::from_millis(1))
            });
            assert_eq!(outer, Ok(Err(RecvTimeoutError::Timeout)));
            // After the scopes, no deadline is left behind.
            let (tx2, rx2) = mpmc::channel();
            green::spawn(move || {
                green::sleep(Duration::from_millis(30));
                tx2.send(5).unwrap();
            });
            assert_eq!(rx2.recv(), Ok(5));
        });
    });
}

#[test]
fn a_panic_goes_through_and_the_value_comes_back() {
    green::run(|| {
        assert_eq!(green::timeout(HOUR, || 42), Ok(42));
        let r = std::panic::catch_unwind(|| green::timeout(HOUR, || panic!("inside")));
        assert_eq!(*r.unwrap_err().downcast::<&str>().unwrap(), "inside");
    });
}

/// Green threads spawned inside do not inherit the deadline.
#[test]
fn spawned_green_threads_have_their_own_deadline() {
    bounded(Duration::from_secs(30), || {
        green::run(|| {
            let child = green::timeout(SHORT, || {
                green::spawn(|| {
                    green::sleep(Duration::from_millis(30));
                    "slept"
                })
            })
            .unwrap();
            assert_eq!(child.join().unwrap(), "slept");
        });
    });
}

#[test]
fn on_an_os_thread() {
    bounded(Duration::from_secs(30), || {
        let (_tx, rx) = mpmc::channel::<u32>();
        let start = Instant::now();
        assert_eq!(green::timeout(SHORT, || rx.recv()), Err(Elapsed));
        assert!(start.elapsed() >= SHORT);
        assert_eq!(green::timeout(SHORT, || rx.recv_timeout(HOUR)), Ok(Err(RecvTimeoutError::Timeout)));
        // A sleep ends at the deadline too, and unwinds to it; a wait for readiness returns
        // its timeout error, as a socket call does.
        let start = Instant::now();
        assert_eq!(green::timeout(SHORT, || green::sleep(HOUR)), Err(Elapsed));
        let (_a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let waited = green::timeout(SHORT, || green::io::wait_readable(&b).map_err(|e| e.kind()));
        assert_eq!(waited, Ok(Err(std::io::ErrorKind::TimedOut)));
        assert!(start.elapsed() < Duration::from_secs(20), "{:?}", start.elapsed());
    });
}

/// An OS thread unwinding out of a `green::timeout` whose deadline has passed: a destructor
/// that locks a mutex held elsewhere, or receives, waits as std would (the deadline cannot
/// unwind a caller that is unwinding already) instead of aborting the process.
#[test]
fn an_os_thread_unwinding_past_the_deadline_waits_in_destructors() {
    if !common::child::is_child() {
        let out = common::child::run_child(
            "an_os_thread_unwinding_past_the_deadline_waits_in_destructors",
            Duration::from_secs(30),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "the child failed ({:?}):\n{stderr}", out.status);
        return;
    }
    let mutex = Arc::new(Mutex::new(0u32));
    let held = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpmc::channel::<u32>();
    let holder = {
        let (mutex, held) = (mutex.clone(), held.clone());
        std::thread::spawn(move || {
            let mut guard = mutex.lock().unwrap();
            held.store(true, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(200));
            *guard = 1;
            drop(guard);
            tx.send(2).unwrap();
        })
    };
    while !held.load(Ordering::SeqCst) {
        std::thread::yield_now();
    }

    /// Locks and receives in its destructor.
    struct WaitsOnDrop(Arc<Mutex<u32>>, mpmc::Receiver<u32>, Arc<std::sync::Mutex<Vec<u32>>>);
    impl Drop for WaitsOnDrop {
        fn drop(&mut self) {
            let locked = *self.0.lock().unwrap_or_else(|e| e.into_inner());
            let received = self.1.recv().unwrap();
            self.2.lock().unwrap().extend([locked, received]);
        }
    }
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let guard = WaitsOnDrop(mutex, rx, seen.clone());
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        green::timeout(SHORT, move || {
            let _guard = guard;
            std::thread::sleep(SHORT * 3);
            panic!("expected in this test: unwinding past the deadline");
        })
    }));
    assert!(unwound.is_err());
    holder.join().unwrap();
    assert_eq!(*seen.lock().unwrap(), [1, 2], "the destructor got the lock and the message after they came");
}

/// A loop that only computes ends at the deadline if it yields now and then: `yield_now`
/// unwinds to an expired `green::timeout`, on a green thread and on an OS thread. A tick does
/// not (never a cancellation point), and the loop's own exit is then the only way out.
#[test]
fn yield_now_ends_a_computation_at_the_deadline() {
    fn spin_yielding() -> Result<(), Elapsed> {
        green::timeout(Duration::from_millis(5), || {
            loop {
                std::hint::black_box((0..100u64).sum::<u64>());
                green::yield_now();
            }
        })
    }
    fn spin_ticking(rounds: u64) -> Result<u64, Elapsed> {
        let start = Instant::now();
        green::timeout(Duration::from_millis(1), || {
            let mut n = 0;
            while start.elapsed() < Duration::from_millis(20) && n < rounds {
                n += 1;
                green::tick();
            }
            n
        })
    }
    bounded(Duration::from_secs(30), || {
        assert_eq!(green::Runtime::builder().workers(1).build().unwrap().block_on(spin_yielding), Err(Elapsed));
        assert_eq!(spin_yielding(), Err(Elapsed), "on an OS thread");
        let ticked = green::Runtime::builder().workers(1).build().unwrap().block_on(|| spin_ticking(u64::MAX));
        assert!(ticked.is_ok(), "a tick unwound to the deadline");
    });
}

/// A receive, send or `select!` that never has to wait still stops at the deadline: it looks
/// once per budget. A consumer kept fed (here, a channel filled beforehand) used to run on for
/// as long as messages came. With the deadline passed from the start, it stops within one
/// budget's worth of calls, far before the channel empties.
#[test]
fn channel_calls_that_never_wait_still_stop_at_the_deadline() {
    const FILLED: usize = 100_000;
    green::run(|| {
        let (tx, rx) = green::sync::mpmc::channel::<u32>();
        for i in 0..FILLED {
            tx.send(i as u32).unwrap();
        }
        let received = Cell::new(0);
        let outcome = green::timeout(Duration::ZERO, || {
            loop {
                rx.recv().unwrap();
                received.set(received.get() + 1);
            }
        });
        assert!(outcome.is_err(), "the loop ended without its deadline");
        assert!(received.get() < 1000, "{} messages received past the deadline", received.get());

        let received = Cell::new(0);
        let outcome = green::timeout(Duration::ZERO, || {
            loop {
                match rx.recv_timeout(HOUR) {
                    Ok(_) => received.set(received.get() + 1),
                    Err(e) => return e,
                }
            }
        });
        assert_eq!(outcome, Ok(green::sync::mpmc::RecvTimeoutError::Timeout), "the first report is the error");
        assert!(received.get() < 1000, "{} messages received past the deadline", received.get());

        // A loop that takes the error for a cue to go on: a budget more, then it unwinds.
        let received = Cell::new(0);
        let outcome = green::timeout(Duration::ZERO, || {
            loop {
                if rx.recv_timeout(HOUR).is_ok() {
                    received.set(received.get() + 1);
                }
            }
        });
        assert!(outcome.is_err(), "the loop ended without its deadline");
        assert!(received.get() < 1000, "{} messages received past the deadline", received.get());

        let received = Cell::new(0);
        let outcome = green::timeout(Duration::ZERO, || {
            loop {
                green::select! { recv(rx) -> _ => received.set(received.get() + 1) }
            }
        });
        assert!(outcome.is_err(), "the loop ended without its deadline");
        assert!(received.get() < 1000, "{} messages selected past the deadline", received.get());

        let (tx, _rx) = green::sync::mpmc::channel::<u32>();
        let sent = Cell::new(0);
        let outcome = green::timeout(Duration::ZERO, || {
            loop {
                tx.send(0).unwrap();
                sent.set(sent.get() + 1);
            }
        });
        assert!(outcome.is_err(), "the loop ended without its deadline");
        assert!(sent.get() < 1000, "{} messages sent past the deadline", sent.get());
    });
}
