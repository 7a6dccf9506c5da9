//! Shutdown cancels every live green thread by unwinding it on its own worker, so every
//! destructor runs; destructors may wake others and even spawn.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod common;
use common::Counted;

#[test]
fn run_cancels_the_green_threads_left_when_main_returns() {
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    green::run(move || {
        for i in 0..100 {
            let guard = Counted(d.clone());
            drop(green::spawn(move || {
                let _guard = guard;
                match i % 3 {
                    0 => green::sleep(Duration::from_secs(3600)),
                    1 => loop {
                        green::park();
                    },
                    _ => {
                        let forever = green::spawn(|| green::sleep(Duration::from_secs(3600)));
                        let _ = forever.join();
                    }
                }
            }));
        }
        green::sleep(Duration::from_millis(10)); // let them all start and park
    });
    assert_eq!(drops.load(Ordering::SeqCst), 100);
}

#[test]
fn dropping_a_runtime_cancels_its_green_threads() {
    let drops = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    let rt = green::Runtime::builder().workers(2).build().unwrap();
    for _ in 0..50 {
        let guard = Counted(drops.clone());
        let started = started.clone();
        drop(rt.spawn(move || {
            let _guard = guard;
            started.fetch_add(1, Ordering::SeqCst);
            green::sleep(Duration::from_secs(3600));
        }));
    }
    while started.load(Ordering::SeqCst) < 50 {
        std::thread::sleep(Duration::from_millis(1));
    }
    drop(rt);
    assert_eq!(drops.load(Ordering::SeqCst), 50);
}

/// Destructors of cancelled green threads wake another doomed green thread and spawn a new one;
/// every destructor still runs and the shutdown still ends.
#[test]
fn destructors_may_wake_others_and_spawn() {
    struct WakesOther(green::GreenThread, Arc<AtomicUsize>);
    impl Drop for WakesOther {
        fn drop(&mut self) {
            self.0.unpark();
            self.1.fetch_add(1, Ordering::SeqCst);
        }
    }
    struct Spawns(Arc<AtomicUsize>);
    impl Drop for Spawns {
        fn drop(&mut self) {
            let guard = Counted(self.0.clone());
            // Spawning during shutdown works; the new green thread is dropped unstarted (its
            // closure, and so `guard`, is dropped) or cancelled.
            drop(green::spawn(move || {
                let _guard = guard;
                green::sleep(Duration::from_secs(3600));
            }));
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    green::run(move || {
        let parked = green::spawn({
            let guard = Counted(d.clone());
            move || {
                let _guard = guard;
                loop {
                    green::park();
                }
            }
        });
        let waker = WakesOther(parked.thread().clone(), d.clone());
        drop(green::spawn(move || {
            let _waker = waker;
            green::sleep(Duration::from_secs(3600));
        }));
        let spawner = Spawns(d.clone());
        drop(green::spawn(move || {
            let _spawner = spawner;
            green::sleep(Duration::from_secs(3600));
        }));
        drop(parked);
        green::sleep(Duration::from_millis(10));
    });
    // parked's guard, WakesOther, Spawns, and the guard of the green thread Spawns spawned.
    assert_eq!(drops.load(Ordering::SeqCst), 4);
}

#[test]
fn unstarted_green_threads_are_dropped_at_shutdown() {
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    let rt = green::Runtime::builder().workers(1).build().unwrap();
    rt.block_on(move || {
        // Keep the only worker busy so none of these start, then shut down.
        for _ in 0..20 {
            let guard = Counted(d.clone());
            drop(green::spawn(move || drop(guard)));
        }
    });
    drop(rt);
    assert_eq!(drops.load(Ordering::SeqCst), 20);
}

#[test]
fn a_cancelled_green_thread_reports_cancelled_to_its_joiner() {
    let outcome = Arc::new(Mutex::new(None));
    let o = outcome.clone();
    let rt = green::Runtime::builder().workers(2).build().unwrap();
    let victim = rt.spawn(|| green::sleep(Duration::from_secs(3600)));
    let watcher = std::thread::spawn(move || {
        *o.lock().unwrap() = Some(victim.join().map_err(|e| e.is_cancelled()));
    });
    std::thread::sleep(Duration::from_millis(10));
    drop(rt);
    watcher.join().unwrap();
    assert_eq!(*outcome.lock().unwrap(), Some(Err(true)));
}

/// A green thread that swallows its cancellation is leaked once the shutdown timeout passes,
/// even when it was given a time slice and a budget far longer than the timeout: during a
/// shutdown every spent budget gives the worker back.
#[test]
fn a_green_thread_that_swallows_cancellation_is_leaked_after_the_timeout() {
    for (slice, budget) in [(None, None), (Some(Duration::from_secs(3600)), Some(u32::MAX))] {
        let prefix = format!("swallow-{}", budget.is_some());
        let mut builder =
            green::Runtime::builder().workers(1).thread_name(&*prefix).shutdown_timeout(Duration::from_millis(100));
        if let (Some(slice), Some(budget)) = (slice, budget) {
            builder = builder.time_slice(slice).budget(budget);
        }
        let rt = builder.build().unwrap();
        let started = Arc::new(AtomicUsize::new(0));
        let s = started.clone();
        drop(rt.spawn(move || {
            s.fetch_add(1, Ordering::SeqCst);
            loop {
                // Catch the cancellation every time and carry on: the runtime cannot end this one.
                let _ = std::panic::catch_unwind(|| green::sleep(Duration::from_millis(1)));
            }
        }));
        while started.load(Ordering::SeqCst) == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        let start = std::time::Instant::now();
        let dropper = std::thread::spawn(move || drop(rt));
        assert!(
            common::eventually(Duration::from_secs(10), || dropper.is_finished()),
            "slice {slice:?}: the drop did not end"
        );
        dropper.join().unwrap();
        assert!(start.elapsed() >= Duration::from_millis(100));
        // Leaked, not left running: the worker thread has exited.
        assert!(
            common::eventually(Duration::from_secs(10), || common::threads_named(&prefix).is_empty()),
            "slice {slice:?}: worker threads still running: {:?}",
            common::threads_named(&prefix)
        );
    }
}

/// The same for a green thread that is busy when the shutdown begins, ticking with the largest
/// budget and an hour-long slice: it reaches no cancellation point, and its spent budget is
/// where the worker gets back to leak it once the timeout has passed.
#[test]
fn a_busy_green_thread_with_the_largest_budget_is_leaked_after_the_timeout() {
    let rt = green::Runtime::builder()
        .workers(1)
        .shutdown_timeout(Duration::from_millis(100))
        .time_slice(Duration::from_secs(3600))
        .budget(u32::MAX)
        .build()
        .unwrap();
    let started = Arc::new(AtomicUsize::new(0));
    let s = started.clone();
    drop(rt.spawn(move || {
        s.fetch_add(1, Ordering::SeqCst);
        loop {
            green::tick();
        }
    }));
    while started.load(Ordering::SeqCst) == 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
    let dropper = std::thread::spawn(move || drop(rt));
    assert!(common::eventually(Duration::from_secs(10), || dropper.is_finished()), "the drop did not end");
    dropper.join().unwrap();
}

/// A runtime dropped inside one of its own green threads cannot wait for its threads, but
/// they all end by themselves: the workers, the monitor and the dump thread.
/// (The monitor used to run for good, holding the runtime's shared state and its fds.)
#[test]
fn a_runtime_dropped_inside_its_own_green_thread_leaves_no_thread_behind() {
    let rt = green::Runtime::builder().workers(2).thread_name("selfdrop").build().unwrap();
    rt.handle().spawn_blocking(|| ()).join().unwrap();
    assert!(!common::threads_named("selfdrop").is_empty());
    let handle = rt.handle().clone();
    let (dropped, done) = std::sync::mpsc::channel();
    drop(handle.spawn(move || {
        drop(rt);
        dropped.send(()).unwrap();
    }));
    done.recv_timeout(Duration::from_secs(10)).expect("the drop returned");
    assert!(
        common::eventually(Duration::from_secs(10), || common::threads_named("selfdrop").is_empty()),
        "threads left: {:?}",
        common::threads_named("selfdrop")
    );
}

/// A runtime dropped by one of its own blocking jobs waits for the pool's other jobs, not for
/// the one doing the drop (which cannot end meanwhile): the drop is quick, not the whole
/// shutdown timeout.
#[test]
fn a_runtime_dropped_on_its_own_blocking_pool_does_not_wait_for_itself() {
    let rt = green::Runtime::builder().workers(1).shutdown_timeout(Duration::from_secs(20)).build().unwrap();
    let handle = rt.handle().clone();
    let (took, done) = std::sync::mpsc::channel();
    drop(handle.spawn_blocking(move || {
        let start = std::time::Instant::now();
        drop(rt);
        took.send(start.elapsed()).unwrap();
    }));
    let took = done.recv_timeout(Duration::from_secs(60)).expect("the drop returned");
    assert!(took < Duration::from_secs(10), "the drop took {took:?}");
}

/// A worker stuck in blocking code cannot start counting its shutdown timeout: dropping the
/// runtime still returns soon after the timeout, leaving that worker to finish on its own.
#[test]
fn dropping_a_runtime_with_a_worker_stuck_in_blocking_code_is_bounded() {
    let rt = green::Runtime::builder().workers(1).shutdown_timeout(Duration::from_millis(100)).build().unwrap();
    let started = Arc::new(std::sync::Barrier::new(2));
    let blocked = started.clone();
    rt.spawn(move || {
        blocked.wait();
        std::thread::sleep(Duration::from_secs(3)); // blocks the worker: no tick, no park
    });
    started.wait();
    let start = std::time::Instant::now();
    drop(rt);
    let took = start.elapsed();
    // Let the detached worker end before the test does (it wakes after its 3 s).
    std::thread::sleep(Duration::from_secs(3).saturating_sub(took) + Duration::from_millis(200));
    assert!(took < Duration::from_secs(2), "dropping the runtime waited {took:?} for a worker stuck for 3 s");
}

/// A green thread leaked at the shutdown timeout is said on stderr even without a logger:
/// it keeps what it owns (sockets, files) for the rest of the process.
#[test]
fn a_leak_at_the_shutdown_timeout_is_told_without_a_logger() {
    if !common::child::is_child() {
        let output = common::child::run_child(
            "a_leak_at_the_shutdown_timeout_is_told_without_a_logger",
            Duration::from_secs(60),
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{:?}\n{stderr}", output.status);
        assert!(stderr.contains("1 green thread(s) did not end within the shutdown timeout"), "{stderr}");
        assert!(stderr.contains("\"swallower\""), "the leaked green thread is named: {stderr}");
        return;
    }
    let value = green::Runtime::builder()
        .workers(1)
        .shutdown_timeout(Duration::from_millis(100))
        .run(|| {
            green::Builder::new()
                .name("swallower".into())
                .spawn(|| {
                    loop {
                        let _ = std::panic::catch_unwind(|| green::sleep(Duration::from_millis(1)));
                    }
                })
                .unwrap();
            green::sleep(Duration::from_millis(5));
            5
        })
        .unwrap();
    assert_eq!(value, 5);
}

/// A leak of many green threads at the shutdown timeout names the first few and counts the
/// rest: the warning used to list every id, one line of megabytes for a million.
#[test]
fn a_leak_of_many_green_threads_names_a_few() {
    const NAME: &str = "a_leak_of_many_green_threads_names_a_few";
    const SWALLOWERS: usize = 200;
    if !common::child::is_child() {
        let output = common::child::run_child(NAME, Duration::from_secs(60));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{:?}\n{stderr}", output.status);
        let warning = stderr.lines().find(|l| l.contains("did not end within the shutdown timeout")).unwrap_or("");
        assert!(warning.contains("200 green thread(s) did not end"), "{stderr}");
        assert!(warning.contains("and 180 more."), "the rest are not counted: {warning}");
        assert_eq!(warning.matches("\"swallower\"").count(), 20, "not 20 named: {warning}");
        return;
    }
    green::Runtime::builder()
        .workers(1)
        .shutdown_timeout(Duration::from_millis(100))
        .run(|| {
            for _ in 0..SWALLOWERS {
                green::Builder::new()
                    .name("swallower".into())
                    .spawn(|| {
                        loop {
                            let _ = std::panic::catch_unwind(|| green::sleep(Duration::from_millis(1)));
                        }
                    })
                    .unwrap();
            }
            green::sleep(Duration::from_millis(5));
        })
        .unwrap();
}

/// Green threads the shutdown timeout cut off before their worker got to them (a cancellation
/// costs microseconds: many sleepers take long) are told apart in the leak warning from those
/// that ran on: they did nothing wrong, and a longer timeout would have let them end.
#[test]
fn a_leak_says_which_green_threads_the_shutdown_had_not_reached() {
    const NAME: &str = "a_leak_says_which_green_threads_the_shutdown_had_not_reached";
    const SLEEPERS: usize = 30_000;
    if !common::child::is_child() {
        let output = common::child::run_child(NAME, Duration::from_secs(60));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{:?}\n{stderr}", output.status);
        let warning = stderr.lines().find(|l| l.contains("did not end within the shutdown timeout")).unwrap_or("");
        assert!(warning.contains("of them had not run since their cancellation"), "{stderr}");
        return;
    }
    green::Runtime::builder()
        .workers(1)
        .shutdown_timeout(Duration::from_millis(1))
        .run(|| {
            for _ in 0..SLEEPERS {
                green::spawn(|| green::sleep(Duration::from_secs(3600)));
            }
            green::sleep(Duration::from_millis(50));
        })
        .unwrap();
}

/// Drops a one-worker runtime (shutdown timeout 100 ms, no blocking reports) while a green
/// thread runs `blocking` on its worker, started before the drop: the drop leaves the worker
/// stuck in it, detached, once the timeout and its grace are past.
fn drop_a_runtime_whose_worker_runs(blocking: impl FnOnce() + Send + 'static) {
    let rt = green::Runtime::builder()
        .workers(1)
        .shutdown_timeout(Duration::from_millis(100))
        .blocking_threshold(None)
        .build()
        .unwrap();
    let started = Arc::new(std::sync::Barrier::new(2));
    let blocked = started.clone();
    rt.spawn(move || {
        blocked.wait();
        blocking();
    });
    started.wait();
    drop(rt);
}

/// A worker left stuck in blocking code by a runtime's drop is said on stderr even without a
/// logger: it keeps its OS thread, and the green thread on it, for as long as that code runs.
#[test]
fn a_worker_left_stuck_at_the_drop_is_told_without_a_logger() {
    if !common::child::is_child() {
        let output = common::child::run_child(
            "a_worker_left_stuck_at_the_drop_is_told_without_a_logger",
            Duration::from_secs(60),
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{:?}\n{stderr}", output.status);
        assert!(stderr.contains("1 worker(s) still busy"), "{stderr}");
        return;
    }
    // Blocks the worker: no tick, no park.
    drop_a_runtime_whose_worker_runs(|| std::thread::sleep(Duration::from_secs(2)));
    // Let the detached worker end before the child does.
    std::thread::sleep(Duration::from_millis(2000));
}

/// A green thread on a worker left stuck by the drop, that looks a host name up once its
/// blocking code returns (the blocking pool has stopped by then), unwinds as cancelled, as at
/// any wait during a shutdown: it used to get an error back ("its blocking pool takes no more
/// jobs") and go on running after its runtime was gone.
#[test]
fn a_lookup_on_a_worker_left_stuck_at_the_drop_unwinds() {
    if !common::child::is_child() {
        common::child::expect_child_ok("a_lookup_on_a_worker_left_stuck_at_the_drop_unwinds", Duration::from_secs(60));
        return;
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let (dropped_tx, dropped_rx) = std::sync::mpsc::channel::<()>();
    drop_a_runtime_whose_worker_runs(move || {
        // Blocks the worker until the drop has returned, past the shutdown timeout and its grace,
        // and past the pool's stop.
        let _ = dropped_rx.recv();
        let got = green::net::lookup_host(("localhost", 80)).map(|addrs| addrs.count());
        tx.send(format!("{got:?}")).unwrap();
    });
    dropped_tx.send(()).unwrap();
    // The sender goes with the green thread's unwinding; a result would come first.
    match rx.recv_timeout(Duration::from_secs(30)) {
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {}
        other => panic!("the lookup returned instead of unwinding: {other:?}"),
    }
    println!("child: ok");
}

/// A green thread that only computes is leaked at the timeout, and the warning says how such
/// a loop can end: a tick is no cancellation point, `is_cancelled` tells it.
#[test]
fn a_leaked_loop_of_ticks_is_told_to_look_at_is_cancelled() {
    if !common::child::is_child() {
        let output =
            common::child::run_child("a_leaked_loop_of_ticks_is_told_to_look_at_is_cancelled", Duration::from_secs(60));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{:?}\n{stderr}", output.status);
        assert!(stderr.contains("1 green thread(s) did not end within the shutdown timeout"), "{stderr}");
        assert!(stderr.contains("green::is_cancelled()"), "{stderr}");
        return;
    }
    green::Runtime::builder()
        .workers(1)
        .shutdown_timeout(Duration::from_millis(100))
        .run(|| {
            green::spawn(|| {
                loop {
                    green::tick();
                }
            });
            green::sleep(Duration::from_millis(5));
        })
        .unwrap();
}

/// `shutdown_timeout` returns soon after its timeout even when a worker is held by a green
/// thread that reaches no scheduling point: the dump of what is left names that worker as busy
/// in it after a short wait. (The dump used to wait its usual second for the worker's answer,
/// so a 50 ms timeout took more than a second.)
#[test]
fn shutdown_timeout_beside_a_loop_without_ticks_returns_soon_after_its_timeout() {
    let rt = green::Runtime::builder()
        .workers(1)
        .thread_name("heldloop")
        .blocking_threshold(None)
        .shutdown_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let started = Arc::new(std::sync::Barrier::new(2));
    let (s, b) = (stop.clone(), started.clone());
    drop(green::Builder::new().name("spinner".into()).spawn_on(rt.handle(), move || {
        b.wait();
        // No tick, no park: the worker is held until `stop`.
        while !s.load(Ordering::Relaxed) {
            std::hint::spin_loop();
        }
    }));
    started.wait();
    let timeout = Duration::from_millis(50);
    let start = std::time::Instant::now();
    let err = rt.shutdown_timeout(timeout).unwrap_err();
    let took = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    assert!(took >= timeout, "returned after {took:?}, before its timeout");
    assert!(took < Duration::from_secs(1), "returned only after {took:?}, for a timeout of {timeout:?}");
    let text = err.to_string();
    assert!(text.contains("busy in green thread") && text.contains("\"spinner\""), "{text}");
    assert!(
        common::eventually(Duration::from_secs(10), || common::threads_named("heldloop").is_empty()),
        "threads left: {:?}",
        common::threads_named("heldloop")
    );
}
