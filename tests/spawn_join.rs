//! Spawning and joining green threads.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

mod common;
use common::Counted;

/// How long a test may take before it counts as hung (a lost wakeup), instead of hanging the run.
const LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

#[test]
fn run_returns_the_value_of_main() {
    assert_eq!(green::run(|| 40 + 2), 42);
}

#[test]
fn join_returns_each_value() {
    let sum = green::run(|| {
        let handles: Vec<_> = (0..1000u64).map(|i| green::spawn(move || i)).collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
    });
    assert_eq!(sum, 499_500);
}

#[test]
fn every_green_thread_runs_once() {
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    green::run(move || {
        let handles: Vec<_> = (0..500)
            .map(|_| {
                let count = seen.clone();
                green::spawn(move || {
                    count.fetch_add(1, Ordering::Relaxed);
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    });
    assert_eq!(count.load(Ordering::Relaxed), 500);
}

#[test]
fn join_from_an_os_thread() {
    let rt = green::Runtime::builder().workers(2).build().unwrap();
    let handle = rt.spawn(|| "from green");
    let value = std::thread::spawn(move || handle.join().unwrap()).join().unwrap();
    assert_eq!(value, "from green");
}

#[test]
fn block_on_borrows_from_the_caller() {
    let rt = green::Runtime::builder().workers(2).build().unwrap();
    let data = [1, 2, 3];
    let sum = rt.block_on(|| data.iter().sum::<i32>());
    assert_eq!(sum, 6);
}

#[test]
fn is_finished_and_thread_identity() {
    common::bounded(LIMIT, || {
        green::run(|| {
            let h = green::Builder::new().name("ident".into()).spawn(|| green::current().id()).unwrap();
            let id = h.thread().id();
            assert_eq!(h.thread().name(), Some("ident"));
            while !h.is_finished() {
                green::yield_now();
            }
            assert_eq!(h.join().unwrap(), id);
        });
    });
}

/// std lends the handle's `Thread` (`fn thread(&self) -> &Thread`): code that keeps its name
/// past the statement, or names that signature, compiles against green's as it did against
/// std's. It did not while `thread` returned a handle by value: the name borrowed a temporary.
#[test]
fn thread_is_borrowed_from_the_join_handle_as_in_std() {
    fn lent<T>(handle: &green::thread::JoinHandle<T>) -> &green::thread::Thread {
        handle.thread()
    }
    common::bounded(LIMIT, || {
        green::run(|| {
            let h = green::Builder::new().name("lender".into()).spawn(|| 5).unwrap();
            let name = h.thread().name();
            assert_eq!(name, Some("lender"));
            assert!(std::ptr::eq(lent(&h), h.thread()), "one handle, lent each time");
            let kept = h.thread().clone();
            assert_eq!(h.join().unwrap(), 5);
            assert_eq!(kept.name(), Some("lender"));
            green::scope(|s| {
                let scoped = s.spawn(|| green::current().id());
                let id = scoped.thread().id();
                let thread: &green::thread::Thread = scoped.thread();
                assert_eq!(thread.id(), id);
                assert_eq!(scoped.join().unwrap(), id);
            });
        });
    });
}

#[test]
fn detached_green_threads_still_run() {
    common::bounded(LIMIT, || {
        let count = Arc::new(AtomicUsize::new(0));
        let seen = count.clone();
        green::run(move || {
            for _ in 0..100 {
                let count = seen.clone();
                drop(green::spawn(move || count.fetch_add(1, Ordering::Relaxed)));
            }
            while seen.load(Ordering::Relaxed) < 100 {
                green::yield_now();
            }
        });
        assert_eq!(count.load(Ordering::Relaxed), 100);
    });
}

#[test]
fn every_result_is_dropped_once_whoever_lets_go_last() {
    common::bounded(LIMIT, || {
        const EACH: usize = 2_000;
        let drops = Arc::new(AtomicUsize::new(0));
        let rt = green::Runtime::builder().workers(2).build().expect("runtime");
        rt.block_on(|| {
            // Handles dropped at once: most results are made after the handle is gone.
            for _ in 0..EACH {
                let drops = drops.clone();
                drop(green::spawn(move || Counted(drops)));
            }
            while drops.load(Ordering::Relaxed) < EACH {
                green::yield_now();
            }
            assert_eq!(drops.load(Ordering::Relaxed), EACH);
            // Handles dropped once the green thread has finished.
            let late: Vec<_> = (0..EACH)
                .map(|_| {
                    let drops = drops.clone();
                    green::spawn(move || Counted(drops))
                })
                .collect();
            while !late.iter().all(green::JoinHandle::is_finished) {
                green::yield_now();
            }
            drop(late);
            assert_eq!(drops.load(Ordering::Relaxed), 2 * EACH);
            // Joined: the caller owns the result and drops it itself.
            for _ in 0..EACH {
                let drops = drops.clone();
                let result = green::spawn(move || Counted(drops)).join().expect("joined");
                drop(result);
            }
        });
        assert_eq!(drops.load(Ordering::Relaxed), 3 * EACH);
    });
}

/// A spawn wakes a sleeping peer: with both workers asleep, a green thread spawns a child and
/// then holds its own worker (no ticks, a plain OS sleep), so only the peer can run the child,
/// and only if the spawn woke it (its own next timer is a second or more away).
#[test]
fn a_spawn_wakes_a_sleeping_peer() {
    use std::time::{Duration, Instant};
    let rt = green::Runtime::builder().workers(2).blocking_threshold(None).build().unwrap();
    let (waited, parent_worker, child_worker) = rt.block_on(|| {
        // Both workers go idle and fall asleep.
        green::sleep(Duration::from_millis(50));
        let ran = Arc::new(AtomicUsize::new(0));
        let child = {
            let ran = ran.clone();
            green::spawn(move || {
                ran.store(1, Ordering::SeqCst);
                std::thread::current().name().map(String::from)
            })
        };
        let start = Instant::now();
        while ran.load(Ordering::SeqCst) == 0 && start.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_micros(200));
        }
        let waited = start.elapsed();
        let me = std::thread::current().name().map(String::from);
        (waited, me, child.join().unwrap())
    });
    assert_ne!(parent_worker, child_worker, "the child ran on the blocked worker");
    assert!(waited < Duration::from_secs(2), "the sleeping peer took {waited:?} to take the child");
}

/// Rule 1 of docs/design.md: once started, a green thread runs on one OS thread for life,
/// whoever wakes it (a green thread on the other worker, an OS thread) and however often.
#[test]
fn a_started_green_thread_stays_on_its_os_thread() {
    common::bounded(LIMIT, || {
        let rt = green::Runtime::builder().workers(2).build().unwrap();
        let (to_green, from_os) =
            (green::sync::mpmc::sync_channel::<u32>(0), green::sync::mpmc::sync_channel::<u32>(0));
        let (tx_green, rx_green) = to_green;
        let (tx_os, rx_os) = from_os;
        let watched = rt.spawn(move || {
            let home = std::thread::current().id();
            let mut moved = 0;
            for _ in 0..200 {
                // Woken by the waker green thread, then by the OS thread.
                rx_green.recv().unwrap();
                moved += u32::from(std::thread::current().id() != home);
                rx_os.recv().unwrap();
                moved += u32::from(std::thread::current().id() != home);
                green::sleep(std::time::Duration::from_micros(50));
                moved += u32::from(std::thread::current().id() != home);
            }
            moved
        });
        let waker = rt.spawn(move || {
            for i in 0..200 {
                tx_green.send(i).unwrap();
            }
        });
        let os = std::thread::spawn(move || {
            for i in 0..200 {
                tx_os.send(i).unwrap();
            }
        });
        assert_eq!(watched.join().unwrap(), 0, "the green thread changed OS threads");
        waker.join().unwrap();
        os.join().unwrap();
    });
}

/// The runtime's default stack size is the one green threads get: 600 KiB of locals (a few
/// copies of them in a debug build) fit in a 4 MiB stack; in the default 256 KiB they would
/// overflow, which aborts the test process.
#[test]
fn the_runtimes_stack_size_is_applied() {
    #[inline(never)]
    fn deep(n: usize) -> u8 {
        let buf = std::hint::black_box([n as u8; 600 * 1024]);
        buf[n % buf.len()]
    }
    let rt = green::Runtime::builder().workers(1).stack_size(4 << 20).build().unwrap();
    assert_eq!(rt.block_on(|| green::spawn(|| deep(5)).join().unwrap()), 5);
}
