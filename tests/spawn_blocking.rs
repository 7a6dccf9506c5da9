//! `spawn_blocking`: values and panics come back through the usual `JoinHandle`, blocking jobs
//! run on the pool's OS threads without holding up the workers, the pool's bound queues excess
//! jobs, pool threads reach the runtime, and shutdown lets running jobs finish.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[test]
fn returns_the_value() {
    let rt = common::runtime(2);
    let sum = rt.block_on(|| {
        let jobs: Vec<_> = (0..10u64).map(|i| green::spawn_blocking(move || i * i)).collect();
        jobs.into_iter().map(|j| j.join().unwrap()).sum::<u64>()
    });
    assert_eq!(sum, 285);
}

#[test]
fn runs_on_a_pool_thread() {
    let name = green::run(|| green::spawn_blocking(|| std::thread::current().name().map(String::from)).join());
    assert_eq!(name.unwrap().as_deref(), Some("green-blocking"));
}

#[test]
fn propagates_the_panic_with_its_payload() {
    let error = green::run(|| green::spawn_blocking(|| std::panic::panic_any(42u32)).join().unwrap_err());
    assert!(error.is_panic(), "{error:?}");
    assert_eq!(*error.into_panic().downcast::<u32>().unwrap(), 42);
}

#[test]
fn handle_spawn_blocking_works_from_an_os_thread() {
    let rt = common::runtime(1);
    let handle = rt.handle().clone();
    let value = std::thread::spawn(move || handle.spawn_blocking(|| "from afar").join().unwrap()).join().unwrap();
    assert_eq!(value, "from afar");
}

#[test]
fn outside_a_runtime_it_panics_with_a_clear_message() {
    let payload = std::panic::catch_unwind(|| green::spawn_blocking(|| 1)).unwrap_err();
    let message = common::panic_text(&*payload);
    assert!(message.contains("spawn_blocking called outside a green runtime"), "{message}");
    assert!(message.contains("Handle::spawn_blocking"), "{message}");
}

/// 200 jobs that each block their thread for 200 ms finish together in well under the 40 s
/// they would take one after another, and the only worker keeps running a green thread
/// meanwhile.
#[test]
fn many_blocking_sleeps_run_at_once_without_blocking_the_worker() {
    const JOBS: usize = 200;
    const NAP: Duration = Duration::from_millis(200);
    let rt = common::runtime(1);
    let (took, turns) = rt.block_on(|| {
        let done = Arc::new(AtomicBool::new(false));
        let turns = Arc::new(AtomicUsize::new(0));
        let ticker = {
            let (done, turns) = (done.clone(), turns.clone());
            green::spawn(move || {
                while !done.load(Ordering::SeqCst) {
                    turns.fetch_add(1, Ordering::SeqCst);
                    green::sleep(Duration::from_millis(2));
                }
            })
        };
        let start = Instant::now();
        let jobs: Vec<_> = (0..JOBS)
            .map(|i| {
                green::spawn_blocking(move || {
                    std::thread::sleep(NAP);
                    i
                })
            })
            .collect();
        for (i, job) in jobs.into_iter().enumerate() {
            assert_eq!(job.join().unwrap(), i);
        }
        let took = start.elapsed();
        done.store(true, Ordering::SeqCst);
        ticker.join().unwrap();
        (took, turns.load(Ordering::SeqCst))
    });
    assert!(took >= NAP, "{took:?}");
    assert!(took < Duration::from_secs(10), "the jobs did not run at once: {took:?}");
    // At least NAP of 2 ms naps: ~100 turns if the worker stayed free; about one if blocked.
    assert!(turns >= 30, "the worker was held up: {turns} turns in {took:?}");
}

/// With a bound of 2 threads, 8 jobs never run more than 2 at a time, all finish, and they
/// start in the order they were submitted.
#[test]
fn the_bound_queues_excess_jobs() {
    const BOUND: usize = 2;
    const JOBS: usize = 8;
    let rt = green::Runtime::builder().workers(1).max_blocking_threads(BOUND).build().unwrap();
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let order = Arc::new(Mutex::new(Vec::new()));
    rt.block_on(|| {
        let jobs: Vec<_> = (0..JOBS)
            .map(|i| {
                let (running, most, order) = (running.clone(), most.clone(), order.clone());
                green::spawn_blocking(move || {
                    order.lock().unwrap().push(i);
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(30));
                    running.fetch_sub(1, Ordering::SeqCst);
                    i
                })
            })
            .collect();
        for (i, job) in jobs.into_iter().enumerate() {
            assert_eq!(job.join().unwrap(), i);
        }
    });
    assert_eq!(most.load(Ordering::SeqCst), BOUND);
    let order = order.lock().unwrap().clone();
    // Two threads take jobs from one FIFO queue: each job starts no later than the one two
    // places after it.
    assert_eq!(order.len(), JOBS);
    for (k, &i) in order.iter().enumerate() {
        assert!(i.abs_diff(k) < BOUND, "start order {order:?}");
    }
}

#[test]
fn handle_current_works_inside_the_pool() {
    let rt = common::runtime(2);
    let same = rt.block_on(|| {
        let outer = green::Handle::current();
        let job = green::spawn_blocking(move || {
            let inner = green::Handle::current();
            // A green thread spawned from the pool, joined by blocking the pool thread.
            let child = inner.spawn(|| green::current().id().as_u64().get());
            let id = child.join().unwrap();
            // And a blocking job spawned from a blocking job.
            let nested = green::spawn_blocking(|| 5).join().unwrap();
            (inner.workers() == outer.workers(), id > 0, nested)
        });
        job.join().unwrap()
    });
    assert_eq!(same, (true, true, 5));
    // An OS thread of no runtime has no handle.
    assert!(green::Handle::try_current().is_none());
}

/// `green::spawn` and `green::Builder::spawn` inside a job spawn on the pool's runtime, as
/// `Handle::current`, `green::scope` and `green::spawn_blocking` do there.
#[test]
fn spawn_works_inside_the_pool() {
    let rt = common::runtime(2);
    let (plain, built) = rt.block_on(|| {
        green::spawn_blocking(|| {
            let plain = green::spawn(|| 6 * 7).join().unwrap();
            let built =
                green::Builder::new().name("from-a-job".into()).spawn(|| green::current().name().map(String::from));
            (plain, built.unwrap().join().unwrap())
        })
        .join()
        .unwrap()
    });
    assert_eq!(plain, 42);
    assert_eq!(built.as_deref(), Some("from-a-job"));
    // An OS thread of no runtime still gets the error.
    let error = green::Builder::new().spawn(|| ()).unwrap_err();
    assert!(error.to_string().contains("spawn called outside a green runtime"), "{error}");
}

#[test]
fn cancel_reports_at_once_and_the_job_still_finishes() {
    let finished = Arc::new(AtomicBool::new(false));
    let flag = finished.clone();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let rt = common::runtime(1);
    rt.block_on(move || {
        // The job runs until it is released, which happens only after the join returned.
        let job = green::spawn_blocking(move || {
            let _ = released.recv_timeout(Duration::from_secs(30));
            flag.store(true, Ordering::SeqCst);
        });
        green::sleep(Duration::from_millis(20));
        job.cancel();
        assert!(job.join().unwrap_err().is_cancelled());
    });
    assert!(!finished.load(Ordering::SeqCst), "join waited for the job");
    release.send(()).unwrap();
    // Dropping the runtime waits for the running job.
    drop(rt);
    assert!(finished.load(Ordering::SeqCst), "shutdown did not let the running job finish");
}

/// Dropping the runtime joins the pool's threads: the destructors of the thread-locals its jobs
/// used have run when it returns, as after a join in std (a process that exits then would
/// skip them: a job's buffered writer lost its lines).
#[test]
fn dropping_the_runtime_runs_the_pool_threads_thread_locals_destructors() {
    static MADE: AtomicUsize = AtomicUsize::new(0);
    static DROPPED: AtomicUsize = AtomicUsize::new(0);
    struct Flushed;
    impl Drop for Flushed {
        fn drop(&mut self) {
            std::thread::sleep(Duration::from_millis(20)); // a slow flush
            DROPPED.fetch_add(1, Ordering::SeqCst);
        }
    }
    thread_local!(static BUFFER: Flushed = {
        MADE.fetch_add(1, Ordering::SeqCst);
        Flushed
    });
    let rt = green::Runtime::builder().workers(1).max_blocking_threads(4).build().unwrap();
    rt.block_on(|| {
        let jobs: Vec<_> = (0..4)
            .map(|_| {
                green::spawn_blocking(|| {
                    BUFFER.with(|_| ());
                    std::thread::sleep(Duration::from_millis(20));
                })
            })
            .collect();
        jobs.into_iter().for_each(|j| j.join().unwrap());
    });
    drop(rt);
    let made = MADE.load(Ordering::SeqCst);
    assert!(made >= 1);
    assert_eq!(DROPPED.load(Ordering::SeqCst), made, "a pool thread's thread-local was not dropped yet");
}

/// At shutdown the pool lets the running job finish and drops the queued one unrun.
#[test]
fn shutdown_finishes_running_jobs_and_drops_queued_ones() {
    let rt = green::Runtime::builder().workers(1).max_blocking_threads(1).build().unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(AtomicBool::new(false));
    let (running, queued) = rt.block_on(|| {
        let (ran1, started1) = (ran.clone(), started.clone());
        let running = green::spawn_blocking(move || {
            started1.store(true, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(200));
            ran1.fetch_add(1, Ordering::SeqCst);
        });
        let ran2 = ran.clone();
        let queued = green::spawn_blocking(move || {
            ran2.fetch_add(10, Ordering::SeqCst);
        });
        // The first job runs; the second waits for the only thread.
        while !started.load(Ordering::SeqCst) {
            green::sleep(Duration::from_millis(1));
        }
        (running, queued)
    });
    let start = Instant::now();
    drop(rt);
    assert!(start.elapsed() >= Duration::from_millis(100), "drop did not wait for the running job");
    assert_eq!(ran.load(Ordering::SeqCst), 1, "the running job finished and the queued one never ran");
    // Their green threads were cancelled by the shutdown.
    assert!(running.join().unwrap_err().is_cancelled());
    assert!(queued.join().unwrap_err().is_cancelled());
}

/// A keep-alive or shutdown timeout too long for an `Instant` means "no limit": the pool's
/// threads stay, later jobs run on them, and the runtime shuts down once they are idle.
#[test]
fn durations_too_long_for_an_instant_mean_no_limit() {
    let rt = green::Runtime::builder()
        .workers(1)
        .blocking_keep_alive(Duration::MAX)
        .shutdown_timeout(Duration::MAX)
        .build()
        .unwrap();
    rt.block_on(|| {
        assert_eq!(green::spawn_blocking(|| 1).join().unwrap(), 1);
        // The first job's thread is idle now, with an endless keep-alive.
        green::sleep(Duration::from_millis(20));
        let second = green::spawn_blocking(|| 2);
        assert_eq!(green::timeout(Duration::from_secs(10), || second.join().unwrap()), Ok(2));
    });
    let start = Instant::now();
    drop(rt);
    assert!(start.elapsed() < Duration::from_secs(10), "shutdown took {:?}", start.elapsed());
}

/// `shutdown_timeout(t)` waits for running blocking jobs at most what is left of `t`, not the
/// builder's (longer) shutdown timeout; the job is left to finish on its own thread.
#[test]
fn shutdown_timeout_bounds_the_wait_for_blocking_jobs() {
    let rt = green::Runtime::builder().workers(1).shutdown_timeout(Duration::from_secs(30)).build().unwrap();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let job = rt.handle().spawn_blocking(move || {
        started_tx.send(()).unwrap();
        // Until the test lets it go (or 20 s, should the test fail first).
        let _ = release_rx.recv_timeout(Duration::from_secs(20));
        done_tx.send(()).unwrap();
    });
    started_rx.recv().unwrap();
    let start = Instant::now();
    assert!(rt.shutdown_timeout(Duration::from_millis(100)).is_ok(), "no green thread was left");
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(90), "did not wait for the job: {took:?}");
    assert!(took < Duration::from_secs(10), "waited the builder's 30 s timeout, not 100 ms: {took:?}");
    // The job's green thread was cancelled by the shutdown; the job itself still finishes, on
    // its own thread.
    assert!(job.join().unwrap_err().is_cancelled());
    release_tx.send(()).unwrap();
    done_rx.recv_timeout(Duration::from_secs(10)).expect("the job was left to finish, and did");
}

/// The green thread that stands for a job is named for it: the join's error after the runtime
/// has shut down (and a dump) says what it was.
#[test]
fn a_job_s_green_thread_is_named_for_it() {
    let rt = green::Runtime::builder().workers(1).build().unwrap();
    let handle = rt.handle().clone();
    let name = rt.block_on(|| green::spawn_blocking(|| ()).thread().name().map(str::to_owned));
    assert_eq!(name.as_deref(), Some("spawn_blocking job"));
    drop(rt);
    let err = handle.spawn_blocking(|| 1).join().unwrap_err();
    assert!(err.is_cancelled() && err.to_string().contains("\"spawn_blocking job\""), "{err}");
}
