//! `green::sync::Condvar`: a producer/consumer queue across workers and OS threads with
//! spurious wakeups tolerated (waiters loop on their condition), `notify_all`, timed waits, and
//! a notification passed on when the waiter it went to is cancelled.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use green::sync::{Condvar, Mutex};

mod common;
use common::bounded;

struct Queue {
    items: Mutex<(VecDeque<u64>, bool)>,
    ready: Condvar,
}

/// Takes items until the queue is closed and empty; every wait is in a loop, so a spurious
/// wakeup only costs a re-check.
fn consume(q: &Queue) -> u64 {
    let mut sum = 0;
    let mut guard = q.items.lock().unwrap();
    loop {
        if let Some(item) = guard.0.pop_front() {
            sum += item;
            continue;
        }
        if guard.1 {
            return sum;
        }
        guard = q.ready.wait(guard).unwrap();
    }
}

#[test]
fn producer_consumer_across_workers_and_os_threads() {
    let total = bounded(Duration::from_secs(60), || {
        let rt = green::Runtime::builder().workers(2).build().unwrap();
        let q = Arc::new(Queue { items: Mutex::new((VecDeque::new(), false)), ready: Condvar::new() });
        let consumers: Vec<_> = (0..4)
            .map(|i| {
                let q = q.clone();
                green::Builder::new().worker(i % 2).spawn_on(rt.handle(), move || consume(&q)).unwrap()
            })
            .collect();
        let os_consumer = {
            let q = q.clone();
            std::thread::spawn(move || consume(&q))
        };
        let producers: Vec<_> = (0..3u64)
            .map(|p| {
                let q = q.clone();
                rt.spawn(move || {
                    for i in 0..5_000 {
                        q.items.lock().unwrap().0.push_back(p * 5_000 + i);
                        q.ready.notify_one();
                    }
                })
            })
            .collect();
        producers.into_iter().for_each(|p| p.join().unwrap());
        q.items.lock().unwrap().1 = true;
        q.ready.notify_all();
        consumers.into_iter().map(|c| c.join().unwrap()).sum::<u64>() + os_consumer.join().unwrap()
    });
    assert_eq!(total, (0..15_000).sum());
}

#[test]
fn notify_all_wakes_everyone() {
    bounded(Duration::from_secs(20), || {
        green::run(|| {
            let state = Arc::new((Mutex::new(false), Condvar::new()));
            let waiting = Arc::new(AtomicUsize::new(0));
            let waiters: Vec<_> = (0..10)
                .map(|_| {
                    let (state, waiting) = (state.clone(), waiting.clone());
                    green::spawn(move || {
                        let g = state.0.lock().unwrap();
                        waiting.fetch_add(1, Ordering::SeqCst);
                        let _g = state.1.wait_while(g, |go| !*go).unwrap();
                    })
                })
                .collect();
            while waiting.load(Ordering::SeqCst) < 10 {
                green::sleep(Duration::from_millis(1));
            }
            *state.0.lock().unwrap() = true;
            state.1.notify_all();
            waiters.into_iter().for_each(|w| w.join().unwrap());
        });
    });
}

#[test]
fn timed_waits() {
    bounded(Duration::from_secs(20), || {
        green::run(|| {
            let (m, cv) = (Mutex::new(0), Condvar::new());
            let start = Instant::now();
            let (g, r) = cv.wait_timeout(m.lock().unwrap(), Duration::from_millis(10)).unwrap();
            assert!(r.timed_out() && start.elapsed() >= Duration::from_millis(10));
            let (g, r) = cv.wait_timeout_while(g, Duration::from_millis(5), |v| *v == 0).unwrap();
            assert!(r.timed_out());
            drop(g);
            let shared = Arc::new((Mutex::new(0), Condvar::new()));
            let s = shared.clone();
            green::spawn(move || {
                green::sleep(Duration::from_millis(2));
                *s.0.lock().unwrap() = 7;
                s.1.notify_one();
            });
            let (g, r) =
                shared.1.wait_timeout_while(shared.0.lock().unwrap(), Duration::from_secs(10), |v| *v == 0).unwrap();
            assert!(!r.timed_out());
            assert_eq!(*g, 7);
            // Inside green::timeout, wait unwinds at the deadline; wait_timeout reports it.
            let r = green::timeout(Duration::from_millis(5), || cv.wait(m.lock().unwrap()).is_ok());
            assert_eq!(r, Err(green::Elapsed));
            let r = green::timeout(Duration::from_millis(5), || {
                cv.wait_timeout(m.lock().unwrap(), Duration::from_secs(60)).unwrap().1.timed_out()
            });
            assert_eq!(r, Ok(true));
        });
    });
}

/// A `notify_one` that reaches a waiter about to be cancelled goes on to another waiter.
#[test]
fn a_notification_to_a_cancelled_waiter_is_passed_on() {
    bounded(Duration::from_secs(30), || {
        let rt = green::Runtime::builder().workers(1).build().unwrap();
        rt.block_on(|| {
            for _ in 0..50 {
                let state = Arc::new((Mutex::new(0u32), Condvar::new()));
                let parked = Arc::new(AtomicUsize::new(0));
                let spawn_waiter = |state: Arc<(Mutex<u32>, Condvar)>, parked: Arc<AtomicUsize>| {
                    green::spawn(move || {
                        let g = state.0.lock().unwrap();
                        parked.fetch_add(1, Ordering::SeqCst);
                        let mut g = state.1.wait_while(g, |items| *items == 0).unwrap();
                        *g -= 1;
                    })
                };
                let first = spawn_waiter(state.clone(), parked.clone());
                let second = spawn_waiter(state.clone(), parked.clone());
                while parked.load(Ordering::SeqCst) < 2 {
                    green::yield_now();
                }
                green::yield_now();
                // One item, one notification: it goes to `first`, which is cancelled before it
                // runs; `second` must get it.
                *state.0.lock().unwrap() += 1;
                state.1.notify_one();
                first.cancel();
                assert!(first.join().unwrap_err().is_cancelled());
                second.join().unwrap();
                assert_eq!(*state.0.lock().unwrap(), 0);
            }
        });
    });
}

/// `wait_timeout_while` stops where `wait_timeout` does: at the `green::timeout` deadline
/// (not at its own, much later timeout, spinning until then), and at once in a green thread
/// that is unwinding.
#[test]
fn wait_timeout_while_stops_at_the_caller_deadline_and_while_unwinding() {
    bounded(Duration::from_secs(20), || {
        let rt = green::Runtime::builder().workers(1).build().unwrap();
        rt.block_on(|| {
            let (m, cv) = (Mutex::new(()), Condvar::new());
            let start = Instant::now();
            let r = green::timeout(Duration::from_millis(20), || {
                let (_g, r) = cv.wait_timeout_while(m.lock().unwrap(), Duration::from_secs(5), |_| true).unwrap();
                r.timed_out()
            });
            let took = start.elapsed();
            assert_eq!(r, Ok(true));
            assert!(took < Duration::from_secs(4), "returned after {took:?}, not at the 20 ms deadline");

            /// Waits on a condition that never holds, in its destructor.
            struct WaitsOnDrop(Arc<(Mutex<()>, Condvar)>, Arc<std::sync::Mutex<Option<Duration>>>);
            impl Drop for WaitsOnDrop {
                fn drop(&mut self) {
                    let start = Instant::now();
                    let (m, cv) = &*self.0;
                    let (_g, r) = cv.wait_timeout_while(m.lock().unwrap(), Duration::from_secs(5), |_| true).unwrap();
                    assert!(r.timed_out());
                    *self.1.lock().unwrap() = Some(start.elapsed());
                }
            }
            let pair = Arc::new((Mutex::new(()), Condvar::new()));
            let took = Arc::new(std::sync::Mutex::new(None));
            let guard = WaitsOnDrop(pair, took.clone());
            let panicker = green::spawn(move || {
                let _guard = guard;
                panic!("expected in this test: unwinding through a timed condition wait");
            });
            assert!(panicker.join().is_err());
            let took = took.lock().unwrap().expect("the destructor finished its wait");
            assert!(took < Duration::from_secs(4), "an unwinding green thread waited {took:?}");
        });
    });
}

/// The relock after a timed wait is a `lock`: inside `green::timeout`, with the mutex held by
/// another green thread across the deadline, it unwinds to the `green::timeout` (documented on
/// `Condvar`), having no guard to return.
#[test]
fn a_relock_that_must_wait_past_the_deadline_unwinds() {
    bounded(Duration::from_secs(20), || {
        let rt = green::Runtime::builder().workers(1).build().unwrap();
        rt.block_on(|| {
            let pair = Arc::new((Mutex::new(()), Condvar::new()));
            let holder = {
                let pair = pair.clone();
                green::spawn(move || {
                    green::sleep(Duration::from_millis(5));
                    let _held = pair.0.lock().unwrap();
                    green::sleep(Duration::from_millis(200));
                })
            };
            let (m, cv) = &*pair;
            let r = green::timeout(Duration::from_millis(30), || {
                cv.wait_timeout(m.lock().unwrap(), Duration::from_secs(5)).unwrap().1.timed_out()
            });
            assert_eq!(r, Err(green::Elapsed));
            holder.join().unwrap();
        });
    });
}
